import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  StunAttr, StunMethod, attribute, crc32, decodeStun, decodeXorAddress, encodeStun, encodeXorAddress, longTermKey,
  messageType, saslprep, verifyFingerprint, verifyIntegrity,
} from '../../helpers/turn-client.js';

/** RFC 5769 §2.4, "Sample Request with Long-Term Authentication", byte for byte (its padding is zero bytes). */
const RFC5769_LONG_TERM_REQUEST = Buffer.from([
  0x00, 0x01, 0x00, 0x60, //    Request type and message length
  0x21, 0x12, 0xa4, 0x42, //    Magic cookie
  0x78, 0xad, 0x34, 0x33, // }
  0xc6, 0xad, 0x72, 0xc0, // }  Transaction ID
  0x29, 0xda, 0x41, 0x2e, // }
  0x00, 0x06, 0x00, 0x12, //    USERNAME attribute header
  0xe3, 0x83, 0x9e, 0xe3, // }
  0x83, 0x88, 0xe3, 0x83, // }
  0xaa, 0xe3, 0x83, 0x83, // }  Username value (18 bytes) and padding (2 bytes)
  0xe3, 0x82, 0xaf, 0xe3, // }
  0x82, 0xb9, 0x00, 0x00, // }
  0x00, 0x15, 0x00, 0x1c, //    NONCE attribute header
  0x66, 0x2f, 0x2f, 0x34, // }
  0x39, 0x39, 0x6b, 0x39, // }
  0x35, 0x34, 0x64, 0x36, // }
  0x4f, 0x4c, 0x33, 0x34, // }  Nonce value
  0x6f, 0x4c, 0x39, 0x46, // }
  0x53, 0x54, 0x76, 0x79, // }
  0x36, 0x34, 0x73, 0x41, // }
  0x00, 0x14, 0x00, 0x0b, //    REALM attribute header
  0x65, 0x78, 0x61, 0x6d, // }
  0x70, 0x6c, 0x65, 0x2e, // }  Realm value (11 bytes) and padding (1 byte)
  0x6f, 0x72, 0x67, 0x00, // }
  0x00, 0x08, 0x00, 0x14, //    MESSAGE-INTEGRITY attribute header
  0xf6, 0x70, 0x24, 0x65, // }
  0x6d, 0xd6, 0x4a, 0x3e, // }
  0x02, 0xb8, 0xe0, 0x71, // }  HMAC-SHA1 fingerprint
  0x2e, 0x85, 0xc9, 0xa2, // }
  0x8c, 0xa8, 0x96, 0x66, // }
]);
/** The sample's parameters (RFC 5769 §2.4): the username is "matrix" in katakana, the password needs SASLprep. */
const USERNAME = '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9';
const PASSWORD = 'The\u00ADM\u00AAtr\u2168';
const NONCE = 'f//499k954d6OL34oL9FSTvy64sA';
const REALM = 'example.org';

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
    const transactionId = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
    const value = Buffer.from('0001a147e112a643', 'hex');
    assert.deepEqual(decodeXorAddress(value, transactionId), { address: '192.0.2.1', port: 32853 });
    assert.equal(encodeXorAddress({ address: '192.0.2.1', port: 32853 }, transactionId).toString('hex'), value.toString('hex'));
  });

  it('decodes the RFC 5769 §2.3 IPv6 XOR-MAPPED-ADDRESS as [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
    const transactionId = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
    const value = Buffer.from('0002a1470113a9faa5d3f179bc25f4b5bed2b9d9', 'hex');
    assert.deepEqual(decodeXorAddress(value, transactionId), { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
    assert.equal(encodeXorAddress({ address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 }, transactionId).toString('hex'), value.toString('hex'));
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
