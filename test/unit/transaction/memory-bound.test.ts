/**
 * The bytes held by server transactions: counted, given back, reduced once a final response is out, and
 * bounded (over the bound, new requests outside a dialog are refused before a transaction exists).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse } from '../../../src/sip/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { TransactionLayer, TransactionState, createCancel } from '../../../src/transaction/index.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeTransport } from '../../helpers/fake-transport.js';
import { flow, makeRequest } from './fixtures.js';

function layer(memoryLimit?: number): { layer: TransactionLayer; clock: FakeClock } {
  const clock = new FakeClock();
  return { clock, layer: new TransactionLayer({ transport: new FakeTransport(), logger: silentLogger(), timers: clock, sendTrying: false, memoryLimit }) };
}

/** An INVITE of about `size` octets: a long SDP-like body and a long Contact list, as a flood would send. */
function bigInvite(branch: string, size = 20_000) {
  const contacts = Array.from({ length: 50 }, (_, i) => `Contact: <sip:u${i}@198.51.100.7:5060;transport=udp>`);
  return makeRequest('INVITE', { branch, callId: `${branch}@flood`, extra: [...contacts, `X-Pad: ${'p'.repeat(Math.max(0, size - 3000))}`] });
}

describe('TransactionLayer: memory held by server transactions', () => {
  it('a server transaction holds about its request, and gives it back when it terminates', () => {
    const { layer: l, clock } = layer();
    const r = l.receiveRequest(bigInvite('z9hG4bKh1'), flow());
    assert.equal(r.kind, 'new');
    assert.ok(l.heldBytes > 19_000 && l.heldBytes < 22_000, `held ${l.heldBytes}`);
    if (r.kind !== 'new') return;
    r.transaction.respond(createResponse(r.transaction.request, 407, { toTag: 't' }));
    clock.tick(64 * 500 + 1); // Timer H
    assert.equal(r.transaction.state, TransactionState.Terminated);
    assert.equal(l.heldBytes, 0);
  });

  it('after its final response a server transaction keeps only the fields a response echoes (Via, From, To, Call-ID, CSeq)', () => {
    const { layer: l } = layer();
    const r = l.receiveRequest(bigInvite('z9hG4bKh2'), flow());
    if (r.kind !== 'new') throw new Error('expected a new transaction');
    r.transaction.respond(createResponse(r.transaction.request, 407, { toTag: 't' }));
    assert.equal(r.transaction.state, TransactionState.Completed);
    assert.ok(l.heldBytes < 1500, `held ${l.heldBytes}`);
    const kept = r.transaction.request;
    assert.deepEqual([...new Set(kept.headers.map((h) => h.key))].sort(), ['call-id', 'cseq', 'from', 'to', 'via']);
    assert.equal(kept.callId, 'z9hG4bKh2@flood');
    assert.equal(kept.topVia?.branch, 'z9hG4bKh2');
    // The retransmitted INVITE still gets the 407 again, the ACK still matches.
    assert.equal(l.receiveRequest(bigInvite('z9hG4bKh2'), flow()).kind, 'retransmission');
    assert.equal(l.receiveRequest(makeRequest('ACK', { branch: 'z9hG4bKh2', callId: 'z9hG4bKh2@flood', toTag: 't' }), flow()).kind, 'ack-absorbed');
    assert.equal(r.transaction.state, TransactionState.Confirmed);
  });

  it('over memoryLimit a new request outside a dialog is refused before a transaction is created', () => {
    const { layer: l } = layer(50_000);
    const held = [];
    for (let i = 0; i < 3; i++) held.push(l.receiveRequest(bigInvite(`z9hG4bKm${i}`), flow()));
    assert.ok(l.heldBytes > 50_000);
    assert.equal(l.stats.server, 3);
    assert.deepEqual(l.receiveRequest(bigInvite('z9hG4bKm9'), flow()), { kind: 'over-budget' });
    assert.equal(l.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKo1' }), flow()).kind, 'over-budget');
    assert.equal(l.stats.server, 3);
    // Still accepted: retransmissions, CANCEL of what is held, requests within a dialog.
    assert.equal(l.receiveRequest(bigInvite('z9hG4bKm0'), flow()).kind, 'retransmission');
    const first = held[0]!;
    if (first.kind !== 'new') throw new Error('expected a new transaction');
    assert.equal(l.receiveRequest(createCancel(first.transaction.request), flow()).kind, 'new');
    assert.equal(l.receiveRequest(makeRequest('BYE', { branch: 'z9hG4bKb1', toTag: 'dlg' }), flow()).kind, 'new');
    // Answering what is held frees the room again.
    for (const h of held) if (h.kind === 'new') h.transaction.respond(createResponse(h.transaction.request, 486, { toTag: 'x' }));
    assert.ok(l.heldBytes < 50_000, `held ${l.heldBytes}`);
    assert.equal(l.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKo2' }), flow()).kind, 'new');
  });
});
