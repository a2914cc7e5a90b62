import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { KeyedMac, computeDigestResponse, digestOf, equalText } from '../../../src/sip/index.js';

describe('digestOf (one-shot hashing)', () => {
  it('gives the digest createHash gives, for text (as UTF-8) and for bytes', () => {
    for (const algorithm of ['md5', 'sha256', 'sha512-256']) {
      for (const data of ['', 'alice:example.com:secret', 'grüße', Buffer.from([0, 0xff, 0x80, 1])]) {
        for (const encoding of ['hex', 'base64url'] as const) {
          assert.equal(digestOf(algorithm, data, encoding), createHash(algorithm).update(data).digest(encoding), `${algorithm} ${String(data)}`);
        }
      }
    }
  });

  it('hashes a digest input with octets above 0x7f as latin1 octets, as RFC 2617 wire strings are', () => {
    // RFC 3261 §25: a quoted-string may carry UTF-8; the digest is over the octets sent, here one octet 0xfc.
    const expected = createHash('md5').update(Buffer.from('GET:sip:b\xfc@x', 'latin1')).digest('hex');
    const viaDigest = computeDigestResponse({ algorithm: 'MD5', ha1: 'a'.repeat(32), nonce: 'n', method: 'GET', uri: 'sip:b\xfc@x' });
    const ha2 = expected;
    assert.equal(viaDigest, createHash('md5').update(`${'a'.repeat(32)}:n:${ha2}`).digest('hex'));
  });
});

describe('KeyedMac (NMAC over SHA-256 with keys derived from the secret)', () => {
  const secret = Buffer.from('a secret of some length');

  it('is sha256(outer key ‖ hex sha256(inner key ‖ data)), each key one 64-character block', () => {
    const inner = createHmac('sha256', secret).update('keyed-mac inner').digest('hex');
    const outer = createHmac('sha256', secret).update('keyed-mac outer').digest('hex');
    assert.equal(inner.length, 64);
    const expected = createHash('sha256').update(outer + createHash('sha256').update(inner + 'flow-1').digest('hex')).digest('base64url');
    assert.equal(new KeyedMac(secret).mac('flow-1'), expected);
  });

  it('differs with the secret and with the data, and refuses an empty secret', () => {
    const a = new KeyedMac(secret);
    assert.notEqual(a.mac('x'), new KeyedMac(Buffer.from('another secret')).mac('x'));
    assert.notEqual(a.mac('x'), a.mac('y'));
    assert.throws(() => new KeyedMac(Buffer.alloc(0)), TypeError);
  });
});

describe('equalText', () => {
  it('is true only for the same characters at the same length', () => {
    assert.equal(equalText('abc', 'abc'), true);
    assert.equal(equalText('abc', 'abd'), false);
    assert.equal(equalText('abc', 'abcd'), false);
    assert.equal(equalText('', ''), true);
  });
});
