import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BencodeError, bdecode, bencode } from '../../../media/index.js';

const text = (b: Buffer): string => b.toString('latin1');

describe('bencode', () => {
  it('encodes the ng ping exactly as the rtpengine docs show it', () => {
    assert.equal(text(bencode({ command: 'ping' })), 'd7:command4:pinge');
    assert.deepEqual(bdecode('d6:result4:ponge'), { result: 'pong' });
  });

  it('writes dictionary keys sorted by their raw bytes, whatever the insertion order', () => {
    assert.equal(text(bencode({ 'to-tag': 'b', 'call-id': 'x', 'from-tag': 'a', ICE: 'force' })), 'd3:ICE5:force7:call-id1:x8:from-tag1:a6:to-tag1:be');
    // byte order, not locale order: "Z" (0x5a) before "a" (0x61), "é" (0xc3 0xa9) after "z"
    assert.equal(text(bencode({ é: 1, a: 2, Z: 3, z: 4 })), `d1:Zi3e1:ai2e1:zi4e${Buffer.from('2:é', 'utf8').toString('latin1')}i1ee`);
  });

  it('round-trips nested dictionaries, lists, integers and UTF-8 strings', () => {
    const value = {
      command: 'offer',
      'rtcp-mux': ['offer', 'require'],
      codec: { transcode: ['PCMU', 'PCMA'] },
      n: [0, -1, 42, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER],
      empty: { list: [], dict: {}, string: '' },
      name: 'Zoë ☎',
    };
    assert.deepEqual(bdecode(bencode(value)), value);
  });

  it('counts string lengths in bytes, not characters', () => {
    assert.equal(text(bencode('☎')), `3:${Buffer.from('☎').toString('latin1')}`);
  });

  it('encodes Buffers as byte strings and can decode every value as a Buffer', () => {
    const bytes = Buffer.from([0x00, 0xff, 0x80, 0x20]);
    const enc = bencode({ key: bytes, text: 'ok' });
    assert.deepEqual(bdecode(enc, { strings: 'buffer' }), { key: bytes, text: Buffer.from('ok') });
  });

  it('decodes a byte string that is not UTF-8 to a Buffer rather than mangling it', () => {
    const enc = Buffer.concat([Buffer.from('l2:'), Buffer.from([0xc3, 0x28]), Buffer.from('2:oke')]);
    assert.deepEqual(bdecode(enc), [Buffer.from([0xc3, 0x28]), 'ok']);
  });

  it('accepts dictionaries whose keys are not sorted (rtpengine does not sort its replies)', () => {
    assert.deepEqual(bdecode('d6:result2:ok3:sdp3:v=0e'), { result: 'ok', sdp: 'v=0' });
    assert.deepEqual(bdecode('d3:sdp3:v=06:result2:oke'), { result: 'ok', sdp: 'v=0' });
  });

  it('decodes integers beyond 2^53 as bigint and encodes bigint back', () => {
    const big = 2n ** 63n - 1n;
    assert.equal(bdecode(`i${big}e`), big);
    assert.equal(text(bencode(big)), `i${big}e`);
    assert.equal(bdecode('i9007199254740991e'), Number.MAX_SAFE_INTEGER);
  });

  it('skips undefined dictionary entries (optional ng keys)', () => {
    assert.equal(text(bencode({ 'call-id': 'c', 'via-branch': undefined })), 'd7:call-id1:ce');
  });

  it('keeps a "__proto__" key as data, never as the prototype', () => {
    const v = bdecode('d9:__proto__d5:admini1eee') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['__proto__']);
    assert.equal((v as { admin?: unknown }).admin, undefined);
  });

  it('refuses values bencode cannot carry with a TypeError', () => {
    for (const bad of [1.5, NaN, 2 ** 53, true, null, () => 1, Symbol('s')]) {
      assert.throws(() => bencode(bad as never), TypeError, String(bad));
    }
    assert.throws(() => bencode([undefined] as never), TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => bencode(cyclic as never), /cyclic/);
  });

  const malformed: Array<[string, string | Buffer]> = [
    ['empty input', ''],
    ['unknown type byte', 'x'],
    ['unterminated integer', 'i42'],
    ['empty integer', 'ie'],
    ['negative zero', 'i-0e'],
    ['leading zero', 'i03e'],
    ['plus sign', 'i+3e'],
    ['non-digit in integer', 'i4x2e'],
    ['string running past the end', '5:abc'],
    ['string length with leading zero', '03:abc'],
    ['negative string length', '-1:a'],
    ['missing colon', '3abc'],
    ['unterminated list', 'l1:a'],
    ['unterminated dictionary', 'd1:a1:b'],
    ['integer dictionary key', 'di1e1:ae'],
    ['dictionary key without value', 'd1:ae'],
    ['duplicate dictionary key', 'd1:ai1e1:ai2ee'],
    ['trailing data', 'i1ei2e'],
    ['trailing garbage after a dictionary', 'd1:ai1eeX'],
    ['non-UTF-8 dictionary key', Buffer.concat([Buffer.from('d2:'), Buffer.from([0xc3, 0x28]), Buffer.from('i1ee')])],
  ];
  for (const [name, input] of malformed) {
    it(`throws BencodeError on malformed input: ${name}`, () => {
      assert.throws(() => bdecode(input), (err: unknown) => err instanceof BencodeError && err.code === 'BENCODE_ERR_MALFORMED');
    });
  }

  it('refuses nesting deeper than maxDepth instead of overflowing the stack', () => {
    const deep = 'l'.repeat(100_000) + 'e'.repeat(100_000);
    assert.throws(() => bdecode(deep), /nesting deeper than 64/);
    assert.deepEqual(bdecode('llee', { maxDepth: 2 }), [[]]);
    assert.throws(() => bdecode('llee', { maxDepth: 1 }), BencodeError);
  });

  it('tells where decoding stopped', () => {
    assert.throws(() => bdecode('l1:ai0'), (err: unknown) => err instanceof BencodeError && err.offset === 4);
  });
});
