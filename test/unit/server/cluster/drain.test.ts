/**
 * Stack.drain, the first step of a graceful stop (SIGTERM, or a worker replaced by a rolling restart): new
 * requests outside a dialog are refused with 503 + Retry-After (RFC 3261 §21.5.4) or handed off, while
 * what belongs to work under way (retransmissions, CANCEL, in-dialog requests, responses) is still handled.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseUri } from '../../../../src/sip/index.js';
import type { Flow } from '../../../../src/transport/types.js';
import { cancelFor, harness, request, udp } from '../../proxy/harness.js';

const TO_BOB = { uri: parseUri('sip:bob@203.0.113.9'), destination: udp('203.0.113.9') };

describe('Stack.drain', () => {
  it('answers a new request outside a dialog 503 with Retry-After and passes it to no one; the ACK of the 503 is absorbed', async () => {
    const h = await harness();
    h.policy.route = () => [TO_BOB];
    h.stack.drain({ retryAfter: 7 });
    h.receive(request({ method: 'OPTIONS', branch: 'z9hG4bKopt1' }));
    h.receive(request({ branch: 'z9hG4bKinv1', callId: 'new-call' }));
    const statuses = h.responses().map((r) => r.status);
    assert.deepEqual(statuses.filter((s) => s >= 200), [503, 503]);
    for (const r of h.responses().filter((x) => x.status === 503)) assert.equal(r.get('retry-after'), '7');
    h.receive(request({ method: 'ACK', branch: 'z9hG4bKinv1', callId: 'new-call', toTag: h.responses().at(-1)!.to!.tag }));
    assert.equal(h.requests('INVITE').length + h.requests('OPTIONS').length + h.requests('ACK').length, 0);
  });

  it('keeps a retransmission and the CANCEL of an INVITE that came in before the drain with its transaction, and relays its answer', async () => {
    const h = await harness();
    h.policy.route = () => [TO_BOB];
    h.receive(request({ branch: 'z9hG4bKlive' }));
    assert.equal(h.requests('INVITE').length, 1);
    assert.equal(h.stack.transactions.pending, 2, 'the server and the client INVITE transaction await a final response');
    h.answer(h.requests('INVITE')[0]!, 180); // §9.1: a CANCEL goes downstream only after a provisional response
    h.stack.drain({ retryAfter: 5 });
    h.receive(request({ branch: 'z9hG4bKlive' }));
    h.receive(cancelFor({ branch: 'z9hG4bKlive' }));
    assert.ok(!h.responses().some((r) => r.status === 503), 'nothing refused');
    assert.equal(h.requests('INVITE').length, 1, 'the retransmission was absorbed');
    assert.equal(h.requests('CANCEL').length, 1, 'the CANCEL went downstream');
    h.answer(h.requests('INVITE')[0]!, 487);
    assert.ok(h.responses().some((r) => r.status === 487));
  });

  it('still routes an in-dialog request (the BYE of a call in progress)', async () => {
    const h = await harness();
    h.policy.route = () => [TO_BOB];
    h.stack.drain({ retryAfter: 5 });
    h.receive(request({ method: 'BYE', branch: 'z9hG4bKbye', toTag: 'callee-tag' }));
    assert.equal(h.requests('BYE').length, 1);
    assert.ok(!h.responses().some((r) => r.status === 503));
  });

  it('hands off, raw, what no live transaction claims when a successor takes it (rolling restart)', async () => {
    const h = await harness();
    h.policy.route = () => [TO_BOB];
    h.receive(request({ branch: 'z9hG4bKmine' }));
    const handed: Array<{ text: string; flow: Flow }> = [];
    h.stack.drain({ retryAfter: 5, handOff: (data, flow) => (handed.push({ text: data.toString('latin1'), flow }), true) });
    h.receive(request({ branch: 'z9hG4bKmine' })); // a retransmission: stays
    h.receive(request({ branch: 'z9hG4bKnew', callId: 'other-call' }));
    h.receive(request({ method: 'BYE', branch: 'z9hG4bKbye2', toTag: 't', callId: 'third-call' }));
    assert.deepEqual(handed.map((x) => x.text.slice(0, x.text.indexOf(' '))), ['INVITE', 'BYE']);
    assert.ok(handed[0]!.text.includes('other-call') && !handed[0]!.text.includes('received='), 'the bytes as they arrived');
    assert.equal(h.requests('INVITE').length, 1);
    assert.ok(!h.responses().some((r) => r.status === 503));
  });

  it('whenIdle resolves once no transaction awaits a final response and nothing has come for the quiet time', async () => {
    const h = await harness();
    h.policy.route = () => [TO_BOB];
    h.receive(request({ branch: 'z9hG4bKslow' }));
    h.stack.drain({ retryAfter: 5 });
    let idle = false;
    const keepAlive = setInterval(() => undefined, 1000); // whenIdle's poll does not keep the process up
    const done = h.stack.whenIdle(100).then(() => (idle = true));
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(idle, false, 'the INVITE is still pending');
    h.answer(h.requests('INVITE')[0]!, 200);
    assert.equal(h.stack.transactions.pending, 0);
    await done;
    clearInterval(keepAlive);
    assert.equal(idle, true);
  });
});
