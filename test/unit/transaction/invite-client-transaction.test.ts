import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SipRequest } from '../../../src/sip/index.js';
import { TransactionState } from '../../../src/transaction/index.js';
import { RecordingUser, destination, flow, flush, makeRequest, makeResponse, setup } from './fixtures.js';

const ROUTES = ['Route: <sip:p1.example.com;lr>', 'Route: <sip:p2.example.com;lr>'];

function invite(extra: string[] = []): SipRequest {
  return makeRequest('INVITE', { branch: 'z9hG4bKclient1', sentBy: '192.0.2.1:5060', extra });
}

describe('INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §8.4)', () => {
  it('in Calling, Timer A fires and the request is retransmitted, doubling the interval without a T2 cap (§17.1.1.2)', () => {
    const { clock, transport, layer } = setup();
    const tx = layer.sendRequest(invite(), destination('udp'), new RecordingUser());
    assert.equal(tx.state, TransactionState.Calling);
    assert.equal(transport.sent.length, 1);
    const sendsAt: number[] = [];
    for (let t = 0; t < 31_000; t += 100) {
      const before = transport.sent.length;
      clock.tick(100);
      if (transport.sent.length > before) sendsAt.push(clock.now);
    }
    // A = 500, 1000, 2000, 4000, 8000, 16000: retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s.
    assert.deepEqual(sendsAt, [500, 1500, 3500, 7500, 15500]);
    clock.tick(500);
    assert.equal(transport.sent.length, 7);
    assert.ok(transport.requests.every((r) => r.method === 'INVITE'));
  });

  it('if still in Calling when Timer B fires (64*T1), it informs the TU of a timeout and terminates (§17.1.1.2)', () => {
    const { clock, layer } = setup();
    const user = new RecordingUser();
    const tx = layer.sendRequest(invite(), destination('udp'), user);
    let timeoutEvents = 0;
    tx.on('timeout', () => timeoutEvents++);
    clock.tick(31_999);
    assert.equal(user.timeouts, 0);
    clock.tick(1);
    assert.equal(user.timeouts, 1);
    assert.equal(timeoutEvents, 1);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(layer.stats.client, 0);
    assert.equal(clock.pending, 0);
  });

  it('over a reliable transport the INVITE is not retransmitted; only Timer B runs (§17.1.1.2)', () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    layer.sendRequest(invite(), destination('tcp'), user);
    assert.equal(clock.pending, 1);
    clock.tick(31_999);
    assert.equal(transport.sent.length, 1);
    clock.tick(1);
    assert.equal(user.timeouts, 1);
  });

  it('a provisional response in Calling moves it to Proceeding, goes to the TU, and retransmissions stop (§17.1.1.2)', () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    const req = invite();
    const tx = layer.sendRequest(req, destination('udp'), user);
    assert.equal(layer.receiveResponse(makeResponse(req, 100), flow()), true);
    assert.equal(layer.receiveResponse(makeResponse(req, 180), flow()), true);
    assert.equal(tx.state, TransactionState.Proceeding);
    assert.deepEqual(user.statuses, [100, 180]);
    assert.equal(clock.pending, 0);
    clock.tick(60_000);
    assert.equal(transport.sent.length, 1);
    assert.equal(user.timeouts, 0);
  });

  it('on a 300-699 response it passes it to the TU and generates the ACK of §17.1.1.3', () => {
    const { transport, layer } = setup();
    const user = new RecordingUser();
    const req = makeRequest('INVITE', {
      branch: 'z9hG4bKclient1', sentBy: 'proxy.example.com', lowerVias: ['SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bKuac;received=198.51.100.7'], extra: ROUTES,
    });
    const tx = layer.sendRequest(req, destination('udp'), user);
    const resp = makeResponse(req, 486, 'callee-tag');
    layer.receiveResponse(resp, flow());
    assert.equal(tx.state, TransactionState.Completed);
    assert.deepEqual(user.statuses, [486]);
    assert.deepEqual(user.states, [TransactionState.Completed]);

    assert.deepEqual(transport.log, ['INVITE', 'ACK']);
    const ack = transport.requests[1]!;
    assert.equal(ack.uri, req.uri);
    assert.equal(ack.callId, req.callId);
    assert.equal(ack.get('from'), req.get('from'));
    assert.equal(ack.get('to'), resp.get('to'));
    assert.equal(ack.to?.tag, 'callee-tag');
    assert.deepEqual(ack.cseq, { seq: 314159, method: 'ACK' });
    assert.equal(ack.via.length, 1, 'only the top Via of the INVITE');
    assert.equal(ack.via[0]!.toString(), req.topVia!.toString());
    assert.deepEqual(ack.getAll('route'), req.getAll('route'));
    assert.equal(ack.maxForwards, 70);
    assert.deepEqual(transport.sent[1]!.destination.address, destination('udp').address);
  });

  it('in Completed, a retransmitted final response makes it re-send the ACK and is not passed to the TU (§17.1.1.2)', () => {
    const { transport, layer } = setup();
    const user = new RecordingUser();
    const req = invite();
    layer.sendRequest(req, destination('udp'), user);
    const resp = makeResponse(req, 404);
    layer.receiveResponse(resp, flow());
    assert.equal(layer.receiveResponse(resp, flow()), true);
    assert.equal(layer.receiveResponse(resp, flow()), true);
    assert.deepEqual(transport.log, ['INVITE', 'ACK', 'ACK', 'ACK']);
    assert.deepEqual(transport.sent[1]!.data, transport.sent[3]!.data);
    assert.deepEqual(user.statuses, [404]);
  });

  it('Timer D holds Completed for 32 s over UDP, then it terminates (§17.1.1.2)', () => {
    const { clock, layer } = setup();
    const req = invite();
    const tx = layer.sendRequest(req, destination('udp'), new RecordingUser());
    clock.tick(1000);
    layer.receiveResponse(makeResponse(req, 503), flow());
    assert.deepEqual(clock.pendingIn, [32_000]);
    clock.tick(31_999);
    assert.equal(tx.state, TransactionState.Completed);
    clock.tick(1);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(layer.stats.client, 0);
  });

  it('Timer D is zero over reliable transports: Completed ends at once, after the ACK (§17.1.1.2)', () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    const req = makeRequest('INVITE', { branch: 'z9hG4bKclient1', transport: 'TCP' });
    const tx = layer.sendRequest(req, destination('tcp'), user);
    layer.receiveResponse(makeResponse(req, 600), flow('tcp'));
    assert.deepEqual(user.states, [TransactionState.Completed], 'the TU sees Completed');
    assert.equal(tx.state, TransactionState.Terminated);
    assert.deepEqual(transport.log, ['INVITE', 'ACK']);
    assert.equal(clock.pending, 0);
  });

  it('the ACK goes to the same place as the INVITE, over the flow the INVITE used (§17.1.1.3)', async () => {
    const { transport, layer } = setup();
    const req = makeRequest('INVITE', { branch: 'z9hG4bKclient1', transport: 'TCP' });
    const tx = layer.sendRequest(req, destination('tcp'), new RecordingUser());
    await flush();
    assert.equal(tx.flow?.id, 'tcp:203.0.113.9:5060');
    layer.receiveResponse(makeResponse(req, 480), flow('tcp'));
    assert.equal(transport.sent[1]!.destination.flowId, 'tcp:203.0.113.9:5060');
    assert.equal(transport.sent[1]!.destination.address, '203.0.113.9');
  });

  it('on a 2xx in Calling or Proceeding it enters Accepted, passes the 2xx to the TU and does not ACK it (RFC 6026 §8.4)', () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    const req = invite();
    const tx = layer.sendRequest(req, destination('udp'), user);
    layer.receiveResponse(makeResponse(req, 180), flow());
    layer.receiveResponse(makeResponse(req, 200), flow());
    assert.equal(tx.state, TransactionState.Accepted);
    assert.deepEqual(transport.log, ['INVITE']);
    assert.deepEqual(clock.pendingIn, [32_000], 'only Timer M, 64*T1');
  });

  it('in Accepted, every 2xx — retransmissions and other forks — is passed to the TU; Timer M then terminates (RFC 6026 §8.4)', () => {
    const { clock, layer } = setup();
    const user = new RecordingUser();
    const req = invite();
    const tx = layer.sendRequest(req, destination('udp'), user);
    const ok = makeResponse(req, 200, 'fork-a');
    layer.receiveResponse(ok, flow());
    clock.tick(4000);
    assert.equal(layer.receiveResponse(ok, flow()), true);
    assert.equal(layer.receiveResponse(makeResponse(req, 200, 'fork-b'), flow()), true);
    assert.equal(layer.receiveResponse(makeResponse(req, 486), flow()), true, 'matched, but absorbed');
    assert.deepEqual(user.statuses, [200, 200, 200]);
    assert.deepEqual(user.responses.map((r) => r.to?.tag), ['fork-a', 'fork-a', 'fork-b']);
    clock.tick(28_000);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(layer.receiveResponse(ok, flow()), false, 'after Timer M a 2xx is stray, for the core');
  });

  it('when the transport cannot send the INVITE it informs the TU and terminates (§17.1.4)', async () => {
    const { clock, transport, layer } = setup();
    const user = new RecordingUser();
    transport.failNextSend();
    const errors: Error[] = [];
    const tx = layer.sendRequest(invite(), destination('udp'), user);
    tx.on('transportError', (e) => errors.push(e));
    await flush();
    assert.equal(user.errors.length, 1);
    assert.equal((user.errors[0] as Error & { code: string }).code, 'TRANSPORT_ERR_SEND');
    assert.equal(errors.length, 1);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(layer.stats.client, 0);
    assert.equal(clock.pending, 0);
  });

  it('a TU callback that throws does not break the transaction', () => {
    const { clock, transport, layer } = setup();
    const req = invite();
    const tx = layer.sendRequest(req, destination('udp'), {
      onResponse() {
        throw new Error('TU bug');
      },
    });
    layer.receiveResponse(makeResponse(req, 500), flow());
    assert.equal(tx.state, TransactionState.Completed);
    assert.deepEqual(transport.log, ['INVITE', 'ACK']);
    assert.deepEqual(clock.pendingIn, [32_000]);
  });
});
