/**
 * The embedded TURN server's STUN codec (turn/stun.ts) against the RFC 5769 vectors the test client is checked
 * with, against the independent test client (test/helpers/turn-client.ts) in both directions, and against
 * garbage: decoding never throws.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  Attr, Method, attr, checkIntegrity, crc32, decodeChannelData, decodeStun, decodeXorAddress, encodeChannelData, encodeStun,
  encodeXorAddress, errorCode, longTermKey, messageType,
} from '../../../turn/stun.js';
import * as client from '../../helpers/turn-client.js';
import {
  NONCE, REALM, RFC5769_IPV4_RESPONSE, RFC5769_LONG_TERM_REQUEST, RFC5769_RESPONSE_TRANSACTION_ID, RFC5769_SHORT_TERM_PASSWORD,
  RFC5769_XOR_MAPPED_IPV4, RFC5769_XOR_MAPPED_IPV6, USERNAME,
} from '../../helpers/rfc5769.js';

/** The §2.4 password after SASLprep (the server's passwords are base64, which SASLprep leaves alone). */
const PREPPED_PASSWORD = 'TheMatrIX';

describe('turn/stun.ts: the STUN codec against the RFC 5769 vectors', () => {
  it('decodes the RFC 5769 §2.4 long-term request and verifies its MESSAGE-INTEGRITY only with MD5(username:realm:password)', () => {
    const message = decodeStun(RFC5769_LONG_TERM_REQUEST);
    assert.ok(message);
    assert.equal(message.method, Method.Binding);
    assert.equal(message.cls, 'request');
    assert.equal(attr(message, Attr.Username)?.toString('utf8'), USERNAME);
    assert.equal(attr(message, Attr.Nonce)?.toString('utf8'), NONCE);
    assert.equal(attr(message, Attr.Realm)?.toString('utf8'), REALM);
    assert.equal(checkIntegrity(RFC5769_LONG_TERM_REQUEST, message, longTermKey(USERNAME, REALM, PREPPED_PASSWORD)), true);
    assert.equal(checkIntegrity(RFC5769_LONG_TERM_REQUEST, message, longTermKey(USERNAME, REALM, 'TheMatrix')), false);
    assert.equal(checkIntegrity(RFC5769_LONG_TERM_REQUEST, message, longTermKey(USERNAME, 'example.com', PREPPED_PASSWORD)), false);
  });

  it('encodes the RFC 5769 §2.4 request\'s attributes and MESSAGE-INTEGRITY byte for byte, followed by a FINGERPRINT', () => {
    const encoded = encodeStun({
      method: Method.Binding, cls: 'request', transactionId: RFC5769_LONG_TERM_REQUEST.subarray(8, 20),
      attributes: [
        { type: Attr.Username, value: Buffer.from(USERNAME, 'utf8') },
        { type: Attr.Nonce, value: Buffer.from(NONCE, 'utf8') },
        { type: Attr.Realm, value: Buffer.from(REALM, 'utf8') },
      ],
    }, longTermKey(USERNAME, REALM, PREPPED_PASSWORD));
    // the vector has no FINGERPRINT: everything up to it is the vector, with the length counting the 8 more bytes
    const expected = Buffer.from(RFC5769_LONG_TERM_REQUEST);
    expected.writeUInt16BE(expected.readUInt16BE(2) + 8, 2);
    assert.equal(encoded.subarray(0, expected.length).toString('hex'), expected.toString('hex'));
    assert.equal(client.verifyFingerprint(encoded), true);
    assert.equal(client.verifyIntegrity(encoded, longTermKey(USERNAME, REALM, PREPPED_PASSWORD)), true, 'the MESSAGE-INTEGRITY length excludes the FINGERPRINT');
  });

  it('decodes the RFC 5769 §2.2 response: its FINGERPRINT matches, its MESSAGE-INTEGRITY verifies with the short-term password, and one flipped bit makes it "not STUN"', () => {
    const message = decodeStun(RFC5769_IPV4_RESPONSE);
    assert.ok(message);
    assert.equal(message.cls, 'success');
    assert.equal(checkIntegrity(RFC5769_IPV4_RESPONSE, message, Buffer.from(RFC5769_SHORT_TERM_PASSWORD)), true);
    assert.equal(checkIntegrity(RFC5769_IPV4_RESPONSE, message, Buffer.from('wrong')), false);
    assert.deepEqual(decodeXorAddress(attr(message, Attr.XorMappedAddress)!, message.transactionId), { address: '192.0.2.1', port: 32853 });
    const flipped = Buffer.from(RFC5769_IPV4_RESPONSE);
    flipped[30] = flipped[30]! ^ 1;
    assert.equal(decodeStun(flipped), undefined);
  });

  it('encodes and decodes the RFC 5769 §2.2 and §2.3 XOR-MAPPED-ADDRESS values (IPv4 and IPv6)', () => {
    for (const v of [RFC5769_XOR_MAPPED_IPV4, RFC5769_XOR_MAPPED_IPV6]) {
      assert.equal(encodeXorAddress(v, RFC5769_RESPONSE_TRANSACTION_ID).toString('hex'), v.value.toString('hex'));
      const back = decodeXorAddress(v.value, RFC5769_RESPONSE_TRANSACTION_ID);
      assert.deepEqual(client.decodeXorAddress(encodeXorAddress(back!, RFC5769_RESPONSE_TRANSACTION_ID), RFC5769_RESPONSE_TRANSACTION_ID), { address: v.address, port: v.port });
    }
  });

  it('computes the ISO CRC-32 (check value of "123456789" is 0xcbf43926)', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });
});

describe('turn/stun.ts and the independent test client understand each other', () => {
  const key = longTermKey('1700000000:alice', 'turn.test', 'cGFzc3dvcmQ=');

  it('a message the client signs decodes here with its attributes, and verifies with the same long-term key', () => {
    const transactionId = randomBytes(12);
    const packet = client.encodeStun({
      method: client.StunMethod.Allocate, class: 'request', transactionId,
      attributes: [{ type: client.StunAttr.RequestedTransport, value: Buffer.from([17, 0, 0, 0]) }, { type: client.StunAttr.Username, value: Buffer.from('1700000000:alice') }],
    }, { key, fingerprint: true });
    const message = decodeStun(packet);
    assert.ok(message);
    assert.equal(message.method, Method.Allocate);
    assert.equal(message.cls, 'request');
    assert.deepEqual(message.transactionId, transactionId);
    assert.deepEqual([...attr(message, Attr.RequestedTransport)!], [17, 0, 0, 0]);
    assert.equal(checkIntegrity(packet, message, key), true);
  });

  it('an error response encoded here decodes in the client with its class, code, reason and valid MESSAGE-INTEGRITY and FINGERPRINT', () => {
    const transactionId = randomBytes(12);
    const packet = encodeStun({ method: Method.CreatePermission, cls: 'error', transactionId, attributes: [{ type: Attr.ErrorCode, value: errorCode(403, 'Forbidden') }] }, key);
    assert.equal(packet.readUInt16BE(0), messageType(Method.CreatePermission, 'error'));
    assert.equal(packet.readUInt16BE(0), 0x0118);
    const decoded = client.decodeStun(packet);
    assert.equal(decoded?.class, 'error');
    const value = client.attribute(decoded!, client.StunAttr.ErrorCode)!;
    assert.equal((value[2]! & 7) * 100 + value[3]!, 403);
    assert.equal(value.subarray(4).toString(), 'Forbidden');
    assert.equal(client.verifyIntegrity(packet, key), true);
    assert.equal(client.verifyFingerprint(packet), true);
  });

  it('XOR-PEER-ADDRESS of IPv4, IPv6 and IPv4-mapped peers round-trips between the two implementations', () => {
    const transactionId = randomBytes(12);
    for (const peer of [{ address: '203.0.113.7', port: 5000 }, { address: '2001:db8::1', port: 65535 }, { address: '::ffff:127.0.0.1', port: 1 }]) {
      const mine = decodeXorAddress(client.encodeXorAddress(peer, transactionId), transactionId);
      assert.ok(mine);
      assert.deepEqual(client.decodeXorAddress(encodeXorAddress(mine, transactionId), transactionId), client.decodeXorAddress(client.encodeXorAddress(peer, transactionId), transactionId));
    }
  });

  it('ChannelData (RFC 5766 §11.4): channel, length and data, with or without padding; channels outside 0x4000-0x7FFF are not ChannelData', () => {
    const frame = encodeChannelData(0x4001, Buffer.from('hello'));
    assert.equal(frame.toString('hex'), '40010005' + Buffer.from('hello').toString('hex'));
    assert.deepEqual(decodeChannelData(frame), { channel: 0x4001, data: Buffer.from('hello') });
    assert.deepEqual(decodeChannelData(Buffer.concat([frame, Buffer.alloc(3)])), { channel: 0x4001, data: Buffer.from('hello') });
    assert.equal(decodeChannelData(frame.subarray(0, 6)), undefined, 'a length past the end');
    assert.equal(decodeChannelData(Buffer.from('80000000', 'hex')), undefined);
  });
});

describe('turn/stun.ts never throws on garbage', () => {
  it('gives undefined for random bytes, truncated messages, bad lengths and attributes running past the end', () => {
    const good = encodeStun({ method: Method.Binding, cls: 'request', transactionId: randomBytes(12), attributes: [{ type: Attr.Username, value: Buffer.from('abc') }] });
    for (let cut = 0; cut < good.length; cut++) assert.equal(decodeStun(good.subarray(0, cut)), undefined, `cut at ${cut}`);
    const longAttr = Buffer.from(good);
    longAttr.writeUInt16BE(200, 22);
    assert.equal(decodeStun(longAttr), undefined);
    const oddLength = Buffer.from(good);
    oddLength.writeUInt16BE(oddLength.readUInt16BE(2) - 2, 2);
    assert.equal(decodeStun(oddLength), undefined);
    for (let i = 0; i < 20_000; i++) {
      const junk = randomBytes(20 + (i % 200));
      if (i % 2 === 0) junk.writeUInt32BE(0x2112a442, 4); // past the cookie check half the time
      junk[0] = junk[0]! & 0x3f;
      decodeStun(junk);
      decodeChannelData(junk);
    }
  });

  it('gives undefined for an XOR address of the wrong length or family, and a MESSAGE-INTEGRITY of the wrong length does not verify', () => {
    const tid = randomBytes(12);
    assert.equal(decodeXorAddress(Buffer.from('0001'), tid), undefined);
    assert.equal(decodeXorAddress(Buffer.from('0003a147e112a643', 'hex'), tid), undefined);
    assert.equal(decodeXorAddress(Buffer.from('0002a147e112a643', 'hex'), tid), undefined);
    const packet = client.encodeStun({ method: 1, class: 'request', transactionId: tid, attributes: [{ type: Attr.MessageIntegrity, value: Buffer.alloc(8) }] });
    const message = decodeStun(packet);
    assert.ok(message);
    assert.equal(checkIntegrity(packet, message, Buffer.alloc(16)), false);
  });
});
