import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse } from '../../../src/sip/index.js';
import { type InviteServerTransaction, TransactionError, TransactionState } from '../../../src/transaction/index.js';
import { flow, flush, makeRequest, setup } from './fixtures.js';

const VIA_NAT = ';received=198.51.100.7;rport=40000';

function invite(transport = 'UDP') {
  return makeRequest('INVITE', { branch: 'z9hG4bKuas1', transport, viaParams: VIA_NAT });
}

function ackFor(transport = 'UDP', toTag = 'uas-tag', branch = 'z9hG4bKuas1') {
  return makeRequest('ACK', { branch, transport, toTag, viaParams: VIA_NAT });
}

function newInvite(layer: ReturnType<typeof setup>['layer'], transport = 'UDP'): InviteServerTransaction {
  const res = layer.receiveRequest(invite(transport), flow(transport === 'UDP' ? 'udp' : 'tcp', { address: '198.51.100.7', port: 40000 }));
  assert.equal(res.kind, 'new');
  return res.transaction as InviteServerTransaction;
}

describe('INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §8.5–8.7)', () => {
  it('a new INVITE creates a transaction in Proceeding and a 100 Trying is sent at once (§17.2.1)', () => {
    const { transport, layer } = setup();
    const tx = newInvite(layer);
    assert.equal(tx.kind, 'invite-server');
    assert.equal(tx.state, TransactionState.Proceeding);
    assert.deepEqual(transport.log, [100]);
    const trying = transport.responses[0]!;
    assert.equal(trying.to?.tag, undefined, 'no To tag on 100');
    assert.deepEqual(transport.sent[0]!.destination, { protocol: 'udp', address: '198.51.100.7', port: 40000, flowId: 'udp:198.51.100.7:40000' });
  });

  it('with sendTrying deferred the 100 waits for the TU: none when the TU answers in the same turn, one when it has not', async () => {
    const { transport, layer } = setup({ sendTrying: 'deferred' });
    const challenged = newInvite(layer);
    challenged.respond(createResponse(challenged.request, 407, { toTag: 'uas-tag' }));
    await flush();
    assert.deepEqual(transport.log, [407], 'a challenge sent at once goes out alone');
    transport.clear();
    const res = layer.receiveRequest(makeRequest('INVITE', { branch: 'z9hG4bKuas2', viaParams: VIA_NAT }), flow());
    assert.equal(res.kind, 'new');
    assert.deepEqual(transport.log, [], 'nothing before the turn ends');
    await flush();
    assert.deepEqual(transport.log, [100], 'a TU still deciding gets the 100 sent for it');
  });

  it('with sendTrying false no 100 is sent', () => {
    const { transport, layer } = setup({ sendTrying: false });
    newInvite(layer);
    assert.equal(transport.sent.length, 0);
  });

  it('a retransmitted INVITE in Proceeding is absorbed and the most recent provisional response is re-sent (§17.2.1)', () => {
    const { transport, layer } = setup();
    const tx = newInvite(layer);
    assert.equal(layer.receiveRequest(invite(), flow()).kind, 'retransmission');
    tx.respond(createResponse(tx.request, 180, { toTag: 'uas-tag' }));
    assert.equal(layer.receiveRequest(invite(), flow()).kind, 'retransmission');
    assert.deepEqual(transport.log, [100, 100, 180, 180]);
    assert.equal(layer.stats.server, 1);
  });

  it('a 300-699 response moves it to Completed; over UDP Timer G retransmits it, doubling up to T2 (§17.2.1)', () => {
    const { clock, transport, layer } = setup();
    const tx = newInvite(layer);
    transport.clear();
    tx.respond(createResponse(tx.request, 486, { toTag: 'uas-tag' }));
    assert.equal(tx.state, TransactionState.Completed);
    const times: number[] = [];
    while (clock.now < 20_000) {
      const before = transport.sent.length;
      clock.tick(100);
      if (transport.sent.length > before) times.push(clock.now);
    }
    // G = 500, 1000, 2000, 4000, 4000 …
    assert.deepEqual(times, [500, 1500, 3500, 7500, 11500, 15500, 19500]);
    assert.ok(transport.responses.every((r) => r.status === 486));
  });

  it('if Timer H fires in Completed the ACK never came: it terminates and indicates the failure to the TU (§17.2.1)', () => {
    const { clock, layer } = setup();
    const tx = newInvite(layer);
    let timeouts = 0;
    let terminated = 0;
    tx.on('timeout', () => timeouts++).on('terminated', () => terminated++);
    tx.respond(createResponse(tx.request, 603, { toTag: 'uas-tag' }));
    clock.tick(31_999);
    assert.equal(timeouts, 0);
    clock.tick(1);
    assert.equal(timeouts, 1);
    assert.equal(terminated, 1);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(clock.pending, 0);
    assert.equal(layer.stats.server, 0);
  });

  it('a retransmitted INVITE in Completed makes it re-send the final response (§17.2.1)', () => {
    const { transport, layer } = setup();
    const tx = newInvite(layer);
    tx.respond(createResponse(tx.request, 404, { toTag: 'uas-tag' }));
    assert.equal(layer.receiveRequest(invite(), flow()).kind, 'retransmission');
    assert.deepEqual(transport.log, [100, 404, 404]);
  });

  it('an ACK in Completed is absorbed and moves it to Confirmed; retransmissions stop and Timer I (T4) ends it (§17.2.1)', () => {
    const { clock, transport, layer } = setup();
    const tx = newInvite(layer);
    tx.respond(createResponse(tx.request, 486, { toTag: 'uas-tag' }));
    assert.equal(layer.receiveRequest(ackFor(), flow()).kind, 'ack-absorbed');
    assert.equal(tx.state, TransactionState.Confirmed);
    assert.deepEqual(clock.pendingIn, [5000], 'only Timer I');
    assert.equal(layer.receiveRequest(ackFor(), flow()).kind, 'ack-absorbed', 'further ACKs absorbed in Confirmed');
    assert.equal(layer.receiveRequest(invite(), flow()).kind, 'retransmission');
    clock.tick(5000);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.deepEqual(transport.log, [100, 486], 'nothing re-sent after the ACK');
  });

  it('over a reliable transport Timer G is not set, Timer H is, and Timer I is zero (§17.2.1)', () => {
    const { clock, transport, layer } = setup();
    const tx = newInvite(layer, 'TCP');
    tx.respond(createResponse(tx.request, 486, { toTag: 'uas-tag' }));
    assert.deepEqual(clock.pendingIn, [32_000], 'Timer H only');
    clock.tick(10_000);
    assert.deepEqual(transport.log, [100, 486]);
    assert.equal(layer.receiveRequest(ackFor('TCP'), flow('tcp')).kind, 'ack-absorbed');
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(clock.pending, 0);
  });

  it('a 2xx from the TU moves it to Accepted with Timer L = 64*T1 (RFC 6026 §8.5)', () => {
    const { clock, transport, layer } = setup();
    const tx = newInvite(layer);
    tx.respond(createResponse(tx.request, 200, { toTag: 'uas-tag' }));
    assert.equal(tx.state, TransactionState.Accepted);
    assert.deepEqual(clock.pendingIn, [32_000]);
    clock.tick(10_000);
    assert.deepEqual(transport.log, [100, 200], 'the transaction never retransmits a 2xx itself');
  });

  it('in Accepted retransmitted INVITEs are absorbed, 2xx from the TU are sent, ACKs go to the TU, and Timer L ends it (RFC 6026 §8.7)', () => {
    const { clock, transport, layer } = setup();
    const tx = newInvite(layer);
    const ok = createResponse(tx.request, 200, { toTag: 'uas-tag' });
    tx.respond(ok);
    assert.equal(layer.receiveRequest(invite(), flow()).kind, 'retransmission');
    tx.respond(ok); // a proxy forwarding the UAS's 2xx retransmission
    tx.respond(createResponse(tx.request, 486, { toTag: 'x' })); // discarded
    assert.deepEqual(transport.log, [100, 200, 200]);
    const res = layer.receiveRequest(ackFor(), flow());
    assert.equal(res.kind, 'ack');
    assert.equal(res.kind === 'ack' ? res.transaction : undefined, tx);
    assert.equal(tx.state, TransactionState.Accepted);
    clock.tick(32_000);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(layer.stats.server, 0);
  });

  it('an ACK for a 2xx with its own branch is not matched and goes to the TU (§17.1.1.3)', () => {
    const { layer } = setup();
    const tx = newInvite(layer);
    tx.respond(createResponse(tx.request, 200, { toTag: 'uas-tag' }));
    const res = layer.receiveRequest(ackFor('UDP', 'uas-tag', 'z9hG4bKack2xx'), flow());
    assert.deepEqual(res, { kind: 'ack' });
  });

  it('a 100 (or any response) after a final response is ignored', () => {
    const { transport, layer } = setup();
    const tx = newInvite(layer);
    tx.respond(createResponse(tx.request, 486, { toTag: 'uas-tag' }));
    tx.respond(createResponse(tx.request, 100));
    tx.respond(createResponse(tx.request, 500, { toTag: 'uas-tag' }));
    assert.deepEqual(transport.log, [100, 486]);
    assert.equal(tx.lastResponse?.status, 486);
  });

  it('respond() on a terminated transaction throws TRANSACTION_ERR_TERMINATED; a bad status throws TypeError', () => {
    const { layer } = setup();
    const tx = newInvite(layer);
    assert.throws(() => tx.respond(createResponse(tx.request, 700)), TypeError);
    tx.terminate();
    assert.throws(
      () => tx.respond(createResponse(tx.request, 200)),
      (e: unknown) => e instanceof TransactionError && e.code === 'TRANSACTION_ERR_TERMINATED',
    );
  });

  it('when a response cannot be sent it emits transportError and terminates (§17.2.4)', async () => {
    const { clock, transport, layer } = setup();
    const tx = newInvite(layer);
    const errors: Error[] = [];
    tx.on('transportError', (e) => errors.push(e));
    transport.failNextSend();
    tx.respond(createResponse(tx.request, 486, { toTag: 'uas-tag' }));
    await flush();
    assert.equal(errors.length, 1);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(clock.pending, 0);
    assert.equal(layer.stats.server, 0);
  });

  it('a listener that throws is logged and the others still run', () => {
    const { layer } = setup();
    const tx = newInvite(layer);
    const seen: string[] = [];
    tx.on('stateChanged', () => {
      throw new Error('listener bug');
    });
    tx.on('stateChanged', (to, from) => seen.push(`${from}→${to}`));
    tx.respond(createResponse(tx.request, 486, { toTag: 'uas-tag' }));
    assert.deepEqual(seen, ['Proceeding→Completed']);
  });
});
