import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isStun, stunBindingResponse } from '../../../src/transport/stun.js';
import { sipRequest } from './helpers.js';

const TXID = Buffer.from('abcdefghijkl');
const BINDING = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), TXID]);

describe('STUN keep-alive (RFC 5626 §4.4.2, RFC 5389)', () => {
  it('tells a STUN message from a SIP message by its first bits and magic cookie', () => {
    assert.equal(isStun(BINDING), true);
    assert.equal(isStun(sipRequest('x')), false);
    assert.equal(isStun(Buffer.from('\r\n\r\n')), false);
  });

  it('XORs an IPv6 mapped address with the magic cookie and the transaction id', () => {
    const res = stunBindingResponse(BINDING, { address: '2001:db8::1', port: 5060 });
    assert.ok(res);
    assert.equal(res.readUInt16BE(2), 4 + 4 + 16);
    assert.equal(res.readUInt8(25), 0x02);
    assert.equal(res.readUInt16BE(26) ^ 0x2112, 5060);
    const key = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), TXID]);
    const addr = Buffer.from(res.subarray(28, 44).map((b, i) => b ^ key[i]!));
    assert.deepEqual(addr, Buffer.from('20010db8000000000000000000000001', 'hex'));
  });

  it('answers only Binding requests whose length matches', () => {
    const indication = Buffer.from(BINDING);
    indication.writeUInt16BE(0x0011, 0);
    assert.equal(stunBindingResponse(indication, { address: '127.0.0.1', port: 1 }), undefined);
    const truncated = Buffer.from(BINDING);
    truncated.writeUInt16BE(8, 2);
    assert.equal(stunBindingResponse(truncated, { address: '127.0.0.1', port: 1 }), undefined);
  });
});
