import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  StunAttr, StunMethod, attribute, crc32, decodeStun, decodeXorAddress, encodeStun, encodeXorAddress, longTermKey,
  messageType, saslprep, verifyFingerprint, verifyIntegrity,
} from '../../helpers/turn-client.js';
import { NONCE, PASSWORD, REALM, RFC5769_LONG_TERM_REQUEST, RFC5769_RESPONSE_TRANSACTION_ID, RFC5769_XOR_MAPPED_IPV4, RFC5769_XOR_MAPPED_IPV6, USERNAME } from '../../helpers/rfc5769.js';


describe('TURN test client: STUN encoding (RFC 5389) against the RFC 5769 vectors', () => {
  it('SASLprep turns the sample password "The<U+00AD>M<U+00AA>tr<U+2168>" into "TheMatrIX" (RFC 5769 §2.4)', () => {
    assert.equal(saslprep(PASSWORD), 'TheMatrIX');
    assert.equal(saslprep('plain-ascii:pass'), 'plain-ascii:pass');
  });

  it('encodes the RFC 5769 §2.4 long-term request byte for byte, MESSAGE-INTEGRITY keyed by MD5(username:realm:SASLprep(password))', () => {
    const encoded = encodeStun({
      method: StunMethod.Binding,
      class: 'request',
      transactionId: RFC5769_LONG_TERM_REQUEST.subarray(8, 20),
      attributes: [
        { type: StunAttr.Username, value: Buffer.from(USERNAME, 'utf8') },
        { type: StunAttr.Nonce, value: Buffer.from(NONCE, 'utf8') },
        { type: StunAttr.Realm, value: Buffer.from(REALM, 'utf8') },
      ],
    }, { key: longTermKey(USERNAME, REALM, PASSWORD) });
    assert.equal(encoded.toString('hex'), RFC5769_LONG_TERM_REQUEST.toString('hex'));
  });

  it('decodes the RFC 5769 §2.4 request and verifies its MESSAGE-INTEGRITY only with the right password', () => {
    const message = decodeStun(RFC5769_LONG_TERM_REQUEST);
    assert.ok(message);
    assert.equal(message.method, StunMethod.Binding);
    assert.equal(message.class, 'request');
    assert.equal(attribute(message, StunAttr.Username)?.toString('utf8'), USERNAME);
    assert.equal(attribute(message, StunAttr.Realm)?.toString('utf8'), REALM);
    assert.equal(attribute(message, StunAttr.Nonce)?.toString('utf8'), NONCE);
    assert.equal(verifyIntegrity(RFC5769_LONG_TERM_REQUEST, longTermKey(USERNAME, REALM, PASSWORD)), true);
    assert.equal(verifyIntegrity(RFC5769_LONG_TERM_REQUEST, longTermKey(USERNAME, REALM, 'TheMatrix')), false);
    assert.equal(verifyIntegrity(RFC5769_LONG_TERM_REQUEST, longTermKey(USERNAME, 'example.com', PASSWORD)), false);
  });

  it('decodes the XOR-MAPPED-ADDRESS of the RFC 5769 §2.2 response as 192.0.2.1:32853, and encodes it back', () => {
    const transactionId = RFC5769_RESPONSE_TRANSACTION_ID;
    const { value, address, port } = RFC5769_XOR_MAPPED_IPV4;
    assert.deepEqual(decodeXorAddress(value, transactionId), { address, port });
    assert.equal(encodeXorAddress({ address, port }, transactionId).toString('hex'), value.toString('hex'));
  });

  it('decodes the RFC 5769 §2.3 IPv6 XOR-MAPPED-ADDRESS as [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
    const transactionId = RFC5769_RESPONSE_TRANSACTION_ID;
    const { value, address, port } = RFC5769_XOR_MAPPED_IPV6;
    assert.deepEqual(decodeXorAddress(value, transactionId), { address, port });
    assert.equal(encodeXorAddress({ address, port }, transactionId).toString('hex'), value.toString('hex'));
  });

  it('writes an IPv4-mapped peer given as ::ffff:10.0.0.1 like ::ffff:a00:1, and reads IPv6 back compressed', () => {
    const transactionId = Buffer.alloc(12, 9);
    const dotted = encodeXorAddress({ address: '::ffff:10.0.0.1', port: 0 }, transactionId);
    assert.equal(dotted.toString('hex'), encodeXorAddress({ address: '::ffff:a00:1', port: 0 }, transactionId).toString('hex'));
    assert.deepEqual(decodeXorAddress(dotted, transactionId), { address: '::ffff:a00:1', port: 0 });
    assert.deepEqual(decodeXorAddress(encodeXorAddress({ address: '::1', port: 3478 }, transactionId), transactionId), { address: '::1', port: 3478 });
  });

  it('puts the class bits where RFC 5389 §6 says: Allocate request 0x0003, its error 0x0113, CreatePermission success 0x0108', () => {
    assert.equal(messageType(StunMethod.Allocate, 'request'), 0x0003);
    assert.equal(messageType(StunMethod.Allocate, 'error'), 0x0113);
    assert.equal(messageType(StunMethod.CreatePermission, 'success'), 0x0108);
    assert.equal(messageType(StunMethod.Binding, 'indication'), 0x0011);
    const decoded = decodeStun(encodeStun({ method: StunMethod.CreatePermission, class: 'error', transactionId: Buffer.alloc(12, 7), attributes: [] }));
    assert.equal(decoded?.method, StunMethod.CreatePermission);
    assert.equal(decoded?.class, 'error');
  });

  it('FINGERPRINT is the ISO CRC-32 XOR 0x5354554e over the message before it, and a flipped byte fails it (RFC 5389 §15.5)', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    const signed = encodeStun({
      method: StunMethod.Allocate, class: 'request', transactionId: Buffer.alloc(12, 1),
      attributes: [{ type: StunAttr.RequestedTransport, value: Buffer.from([17, 0, 0, 0]) }],
    }, { key: longTermKey('u', 'r', 'p'), fingerprint: true });
    assert.equal(verifyFingerprint(signed), true);
    // MESSAGE-INTEGRITY stays valid with FINGERPRINT after it: its length field ended at MESSAGE-INTEGRITY
    assert.equal(verifyIntegrity(signed, longTermKey('u', 'r', 'p')), true);
    const tampered = Buffer.from(signed);
    tampered[24] = 6; // REQUESTED-TRANSPORT: TCP
    assert.equal(verifyFingerprint(tampered), false);
    assert.equal(verifyIntegrity(tampered, longTermKey('u', 'r', 'p')), false);
  });

  it('refuses bytes that are not STUN: no magic cookie, top bits set, or a length past the end', () => {
    const good = encodeStun({ method: StunMethod.Binding, class: 'request', transactionId: Buffer.alloc(12), attributes: [] });
    assert.ok(decodeStun(good));
    const noCookie = Buffer.from(good);
    noCookie.writeUInt32BE(0, 4);
    assert.equal(decodeStun(noCookie), undefined);
    const rtp = Buffer.from(good);
    rtp[0] = 0x80;
    assert.equal(decodeStun(rtp), undefined);
    const long = Buffer.from(good);
    long.writeUInt16BE(8, 2);
    assert.equal(decodeStun(long), undefined);
  });
});
