import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse } from '../../../src/sip/index.js';
import { type NonInviteServerTransaction, TransactionState } from '../../../src/transaction/index.js';
import { flow, makeRequest, setup } from './fixtures.js';

function register(transport = 'UDP') {
  return makeRequest('REGISTER', { branch: 'z9hG4bKreg1', transport, uri: 'sip:example.com', viaParams: ';received=198.51.100.7' });
}

function newRegister(layer: ReturnType<typeof setup>['layer'], transport = 'UDP'): NonInviteServerTransaction {
  const res = layer.receiveRequest(register(transport), flow(transport === 'UDP' ? 'udp' : 'tcp'));
  assert.equal(res.kind, 'new');
  return res.transaction as NonInviteServerTransaction;
}

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('is created in Trying, with no 100 Trying sent, and retransmissions in Trying are discarded (§17.2.2)', () => {
    const { transport, layer } = setup();
    const tx = newRegister(layer);
    assert.equal(tx.kind, 'non-invite-server');
    assert.equal(tx.state, TransactionState.Trying);
    assert.equal(layer.receiveRequest(register(), flow()).kind, 'retransmission');
    assert.equal(transport.sent.length, 0);
  });

  it('a provisional response moves it to Proceeding; a retransmission then re-sends the most recent provisional (§17.2.2)', () => {
    const { transport, layer } = setup();
    const tx = newRegister(layer);
    tx.respond(createResponse(tx.request, 100));
    assert.equal(tx.state, TransactionState.Proceeding);
    assert.equal(layer.receiveRequest(register(), flow()).kind, 'retransmission');
    assert.deepEqual(transport.log, [100, 100]);
  });

  it('a final response moves it to Completed; retransmissions get the final response again and Timer J (64*T1) ends it (§17.2.2)', () => {
    const { clock, transport, layer } = setup();
    const tx = newRegister(layer);
    tx.respond(createResponse(tx.request, 200, { toTag: 't' }));
    assert.equal(tx.state, TransactionState.Completed);
    assert.deepEqual(clock.pendingIn, [32_000]);
    assert.equal(layer.receiveRequest(register(), flow()).kind, 'retransmission');
    tx.respond(createResponse(tx.request, 500, { toTag: 't' })); // discarded in Completed
    assert.deepEqual(transport.log, [200, 200]);
    clock.tick(31_999);
    assert.equal(tx.state, TransactionState.Completed);
    clock.tick(1);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(layer.stats.server, 0);
    assert.equal(layer.receiveRequest(register(), flow()).kind, 'new', 'after Timer J it is a new request');
  });

  it('Timer J is zero over reliable transports (§17.2.2)', () => {
    const { clock, transport, layer } = setup();
    const tx = newRegister(layer, 'TCP');
    tx.respond(createResponse(tx.request, 401, { toTag: 't' }));
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(clock.pending, 0);
    assert.equal(layer.stats.server, 0);
    assert.deepEqual(transport.sent[0]!.destination, { protocol: 'tcp', address: '198.51.100.7', port: 5060, flowId: 'tcp:198.51.100.7:5060' });
  });
});
