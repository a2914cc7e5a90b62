import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SipRequest } from '../../../src/sip/index.js';
import { TransactionState } from '../../../src/transaction/index.js';
import { RecordingUser, destination, flow, flush, makeRequest, makeResponse, setup } from './fixtures.js';

function options(transport = 'UDP'): SipRequest {
  return makeRequest('OPTIONS', { branch: 'z9hG4bKnict1', sentBy: '192.0.2.1:5060', transport });
}

/** Clock times at which the transport sent something, sampling every `step` ms up to `until`. */
function sendTimes(clock: { tick(ms: number): void; now: number }, transport: { sent: unknown[] }, until: number, step = 100): number[] {
  const out: number[] = [];
  while (clock.now < until) {
    const before = transport.sent.length;
    clock.tick(step);
    if (transport.sent.length > before) out.push(clock.now);
  }
  return out;
}

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it('in Trying, Timer E retransmits the request with an interval that doubles and is capped at T2 (§17.1.2.2)', () => {
    const { clock, transport, layer } = setup();
    layer.sendRequest(options(), destination('udp'), new RecordingUser());
    // E = 500, 1000, 2000, 4000, 4000, 4000 …
    assert.deepEqual(sendTimes(clock, transport, 20_000), [500, 1500, 3500, 7500, 11500, 15500, 19500]);
  });

  it('in Proceeding, Timer E retransmits the request and is reset to T2 (§17.1.2.2)', () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    const req = options();
    const tx = layer.sendRequest(req, destination('udp'), user);
    clock.tick(600); // one retransmission at 500, next E due at 1500
    layer.receiveResponse(makeResponse(req, 100), flow());
    assert.equal(tx.state, TransactionState.Proceeding);
    assert.deepEqual(user.statuses, [100]);
    assert.deepEqual(sendTimes(clock, transport, 14_000), [1500, 5500, 9500, 13500]);
  });

  it('when Timer F fires in Trying or Proceeding it informs the TU about the timeout and terminates (§17.1.2.2)', () => {
    for (const provisional of [false, true]) {
      const { clock, layer } = setup();
      const user = new RecordingUser();
      const req = options();
      const tx = layer.sendRequest(req, destination('udp'), user);
      if (provisional) layer.receiveResponse(makeResponse(req, 180), flow());
      clock.tick(31_999);
      assert.equal(user.timeouts, 0);
      clock.tick(1);
      assert.equal(user.timeouts, 1);
      assert.equal(tx.state, TransactionState.Terminated);
      assert.equal(clock.pending, 0);
      assert.equal(layer.stats.client, 0);
    }
  });

  it('over a reliable transport the request is not retransmitted; only Timer F runs (§17.1.2.2)', () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    layer.sendRequest(options('TCP'), destination('tcp'), user);
    assert.equal(clock.pending, 1);
    clock.tick(32_000);
    assert.equal(transport.sent.length, 1);
    assert.equal(user.timeouts, 1);
  });

  it('a final response is passed to the TU and it enters Completed, where Timer K (T4) absorbs retransmissions (§17.1.2.2)', () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    const req = options();
    const tx = layer.sendRequest(req, destination('udp'), user);
    const ok = makeResponse(req, 200);
    layer.receiveResponse(ok, flow());
    assert.equal(tx.state, TransactionState.Completed);
    assert.deepEqual(clock.pendingIn, [5000], 'only Timer K');
    assert.equal(layer.receiveResponse(ok, flow()), true);
    assert.equal(layer.receiveResponse(makeResponse(req, 180), flow()), true);
    assert.deepEqual(user.statuses, [200], 'retransmissions are not passed up');
    clock.tick(5000);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.deepEqual(transport.log, ['OPTIONS']);
    assert.equal(layer.receiveResponse(ok, flow()), false);
  });

  it('Timer K is zero over reliable transports (§17.1.2.2)', () => {
    const { clock, layer } = setup();
    const user = new RecordingUser();
    const req = options('TLS');
    const tx = layer.sendRequest(req, destination('tls'), user);
    layer.receiveResponse(makeResponse(req, 404), flow('tls'));
    assert.deepEqual(user.states, [TransactionState.Completed]);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(clock.pending, 0);
  });

  it('a transport error is reported to the TU and the transaction terminates (§17.1.4)', async () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    const tx = layer.sendRequest(options(), destination('udp'), user);
    await flush();
    transport.failNextSend();
    clock.tick(500); // Timer E retransmission fails
    await flush();
    assert.equal(user.errors.length, 1);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(clock.pending, 0);
  });

  it('retransmissions use the flow the first transmission went out on', async () => {
    const { clock, transport, layer } = setup();
    layer.sendRequest(options(), destination('udp'), new RecordingUser());
    await flush();
    clock.tick(500);
    assert.equal(transport.sent[0]!.destination.flowId, undefined);
    assert.equal(transport.sent[1]!.destination.flowId, 'udp:203.0.113.9:5060');
  });
});
