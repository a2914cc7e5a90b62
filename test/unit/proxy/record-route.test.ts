import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { RecordRoute } from '../../../proxy/record-route.js';
import { flowOf, harness } from './harness.js';

const secret = Buffer.from('test secret');
const rr = new RecordRoute(secret);

describe('RecordRoute flow tokens (RFC 5626 §5.2 style)', () => {
  it('writes base64url(flowId) "." the first 10 characters of base64url(NMAC-SHA256(keys from secret, flowId))', () => {
    const key = (use: string) => createHmac('sha256', secret).update(use).digest('hex');
    const sha = (text: string) => createHash('sha256').update(text);
    const mac = sha(key('keyed-mac outer') + sha(key('keyed-mac inner') + 'ws:t-1').digest('hex')).digest('base64url').slice(0, 10);
    assert.equal(rr.flowToken('ws:t-1'), `${Buffer.from('ws:t-1').toString('base64url')}.${mac}`);
    assert.deepEqual(rr.check(rr.flowToken('ws:t-1'), undefined), { valid: true, flowId: 'ws:t-1' });
  });

  it('refuses a token made with another secret, a changed flow id, or garbage', () => {
    const other = new RecordRoute(Buffer.from('another secret'));
    assert.equal(rr.check(other.flowToken('ws:t-1'), undefined).valid, false);
    const [, mac] = rr.flowToken('ws:t-1').split('.');
    assert.equal(rr.check(`${Buffer.from('ws:t-2').toString('base64url')}.${mac}`, undefined).valid, false);
    for (const junk of [undefined, '', 'alice', '.', 'abc.', 'rr.short']) assert.equal(rr.check(junk, 'c').valid, false);
  });

  it('signs a marker with the Call-ID for a leg without a flow', () => {
    assert.deepEqual(rr.check(rr.marker('call-1'), 'call-1'), { valid: true });
    assert.equal(rr.check(rr.marker('call-1'), 'call-2').valid, false);
  });

  it('puts an IPv6 listener in brackets', async () => {
    const h = await harness({ listeners: [{ protocol: 'udp', address: '2001:db8::1', port: 5060 }, { protocol: 'tcp', address: '2001:db8::1', port: 5060 }] });
    const values = rr.values(h.stack, {
      inbound: flowOf({ protocol: 'udp', address: '2001:db8::7', port: 5060 }),
      outbound: { protocol: 'tcp', address: '2001:db8::9', port: 5060 },
    }, 'call-1');
    assert.equal(values.length, 2);
    assert.match(values[0]!, /^<sip:rr\.[\w-]{10}@\[2001:db8::1\]:5060;transport=tcp;lr>$/);
    assert.match(values[1]!, /^<sip:rr\.[\w-]{10}@\[2001:db8::1\]:5060;transport=udp;lr>$/);
  });
});
