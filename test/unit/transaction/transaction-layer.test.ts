import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createResponse, newBranch } from '../../../src/sip/index.js';
import { silentLogger } from '../../../src/log/index.js';
import {
  type InviteServerTransaction, TransactionError, TransactionLayer, TransactionState, createCancel,
} from '../../../src/transaction/index.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeTransport } from '../../helpers/fake-transport.js';
import { RecordingUser, destination, flow, makeRequest, makeResponse, setup } from './fixtures.js';

describe('TransactionLayer: matching requests to server transactions (§17.2.3)', () => {
  it('a request matches when branch, sent-by and method are equal; ACK matches the INVITE (§17.2.3)', () => {
    const { layer } = setup();
    layer.receiveRequest(makeRequest('INVITE', { branch: 'z9hG4bKa' }), flow());
    assert.equal(layer.receiveRequest(makeRequest('INVITE', { branch: 'z9hG4bKa' }), flow()).kind, 'retransmission');
    assert.equal(layer.receiveRequest(makeRequest('INVITE', { branch: 'z9hG4bKb' }), flow()).kind, 'new', 'other branch');
    assert.equal(
      layer.receiveRequest(makeRequest('INVITE', { branch: 'z9hG4bKa', sentBy: '198.51.100.8:5060' }), flow()).kind,
      'new',
      'same branch, other sent-by',
    );
    assert.equal(layer.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKa' }), flow()).kind, 'new', 'same branch, other method');
    assert.equal(layer.stats.server, 4);
  });

  it('sent-by is compared with the host case-insensitively', () => {
    const { layer } = setup();
    layer.receiveRequest(makeRequest('MESSAGE', { branch: 'z9hG4bKa', sentBy: 'PC33.Example.com' }), flow());
    assert.equal(layer.receiveRequest(makeRequest('MESSAGE', { branch: 'z9hG4bKa', sentBy: 'pc33.example.com' }), flow()).kind, 'retransmission');
  });

  it('an ACK that matches no transaction goes to the TU without one', () => {
    const { layer } = setup();
    assert.deepEqual(layer.receiveRequest(makeRequest('ACK', { branch: 'z9hG4bKnone', toTag: 'x' }), flow()), { kind: 'ack' });
  });

  it('a CANCEL creates its own transaction and names the INVITE server transaction it matches (§9.2)', () => {
    const { transport, layer } = setup();
    const inv = makeRequest('INVITE', { branch: 'z9hG4bKinv' });
    const invTx = layer.receiveRequest(inv, flow());
    assert.equal(invTx.kind, 'new');
    const cancel = createCancel(inv);
    const res = layer.receiveRequest(cancel, flow());
    assert.equal(res.kind, 'new');
    if (res.kind !== 'new') return;
    assert.equal(res.transaction.kind, 'non-invite-server');
    assert.equal(res.cancels, invTx.transaction);
    const target = res.cancels as InviteServerTransaction;
    assert.equal(target.cancelled, true);
    // The TU: 200 to the CANCEL, 487 to the INVITE.
    res.transaction.respond(createResponse(cancel, 200));
    target.respond(createResponse(target.request, 487, { toTag: 'uas' }));
    assert.deepEqual(transport.log, [100, 200, 487]);
    assert.equal(transport.responses[1]!.cseq?.method, 'CANCEL');
    assert.equal(target.state, TransactionState.Completed);
    // A retransmitted CANCEL is matched to the CANCEL transaction.
    assert.equal(layer.receiveRequest(createCancel(inv), flow()).kind, 'retransmission');
    assert.deepEqual(transport.log, [100, 200, 487, 200]);
  });

  it('a CANCEL with no matching INVITE has no `cancels` (the TU answers 481, §9.2)', () => {
    const { layer } = setup();
    layer.receiveRequest(makeRequest('INVITE', { branch: 'z9hG4bKinv' }), flow());
    const res = layer.receiveRequest(makeRequest('CANCEL', { branch: 'z9hG4bKother' }), flow());
    assert.equal(res.kind, 'new');
    assert.equal(res.kind === 'new' ? res.cancels : 'x', undefined);
  });

  it('a request without a Via is a TypeError', () => {
    const { layer } = setup();
    const req = makeRequest('OPTIONS');
    req.remove('via');
    assert.throws(() => layer.receiveRequest(req, flow()), TypeError);
  });
});

describe('TransactionLayer: the RFC 2543 fallback of §17.2.3', () => {
  const old = (method: string, o: Parameters<typeof makeRequest>[1] = {}) => makeRequest(method, { branch: '', ...o });

  it('without a magic-cookie branch, a retransmission matches on Request-URI, tags, Call-ID, CSeq and top Via', () => {
    const { transport, layer } = setup();
    const first = layer.receiveRequest(old('INVITE'), flow());
    assert.equal(first.kind, 'new');
    assert.equal(layer.receiveRequest(old('INVITE'), flow()).kind, 'retransmission');
    assert.equal(layer.receiveRequest(old('INVITE', { callId: 'other@x' }), flow()).kind, 'new');
    assert.equal(layer.receiveRequest(old('INVITE', { fromTag: 'other' }), flow()).kind, 'new');
    assert.equal(layer.receiveRequest(old('INVITE', { cseq: 2 }), flow()).kind, 'new');
    assert.equal(layer.receiveRequest(old('INVITE', { uri: 'sip:carol@example.com' }), flow()).kind, 'new');
    assert.equal(layer.receiveRequest(old('INVITE', { sentBy: '198.51.100.9' }), flow()).kind, 'new');
    assert.equal(layer.receiveRequest(old('INVITE', { toTag: 'in-dialog' }), flow()).kind, 'new');
    assert.equal(transport.log.filter((x) => x === 100).length, 8);
  });

  it('an ACK matches when the To tag equals the tag of the response sent, and is absorbed in Completed', () => {
    const { layer } = setup();
    const res = layer.receiveRequest(old('INVITE'), flow());
    if (res.kind !== 'new') throw new Error('expected new');
    const tx = res.transaction as InviteServerTransaction;
    tx.respond(createResponse(tx.request, 486, { toTag: 'resp-tag' }));
    assert.deepEqual(layer.receiveRequest(old('ACK', { toTag: 'wrong-tag' }), flow()), { kind: 'ack' });
    assert.equal(tx.state, TransactionState.Completed);
    assert.equal(layer.receiveRequest(old('ACK', { toTag: 'resp-tag' }), flow()).kind, 'ack-absorbed');
    assert.equal(tx.state, TransactionState.Confirmed);
  });

  it('an ACK for a re-INVITE (To tag already in the INVITE) matches too', () => {
    const { layer } = setup();
    const res = layer.receiveRequest(old('INVITE', { toTag: 'dlg' }), flow());
    if (res.kind !== 'new') throw new Error('expected new');
    const tx = res.transaction as InviteServerTransaction;
    tx.respond(createResponse(tx.request, 491));
    assert.equal(tx.lastResponse?.to?.tag, 'dlg');
    assert.equal(layer.receiveRequest(old('ACK', { toTag: 'dlg' }), flow()).kind, 'ack-absorbed');
  });

  it('a CANCEL without a cookie matches its INVITE the same way (§9.2)', () => {
    const { layer } = setup();
    const inv = layer.receiveRequest(old('INVITE'), flow());
    const res = layer.receiveRequest(old('CANCEL'), flow());
    assert.equal(res.kind === 'new' && inv.kind === 'new' && res.cancels === inv.transaction, true);
  });

  it('a branch of just the bare magic cookie "z9hG4bK" is treated as no cookie (RFC 4475 §3.2.1)', () => {
    const { layer } = setup();
    const a = layer.receiveRequest(old('INVITE', { branch: 'z9hG4bK', callId: 'call-a' }), flow());
    const b = layer.receiveRequest(old('INVITE', { branch: 'z9hG4bK', callId: 'call-b' }), flow());
    assert.equal(a.kind, 'new');
    assert.equal(b.kind, 'new', 'RFC 3261 matching would have called this a retransmission');
    assert.equal(layer.receiveRequest(old('INVITE', { branch: 'z9hG4bK', callId: 'call-a' }), flow()).kind, 'retransmission');
    assert.equal(layer.stats.server, 2);
  });
});

describe('TransactionLayer: client side (§17.1.3)', () => {
  it('a response matches by top Via branch and CSeq method; anything else is stray and returns false', () => {
    const { layer } = setup();
    const user = new RecordingUser();
    const inv = makeRequest('INVITE', { branch: 'z9hG4bKc1' });
    layer.sendRequest(inv, destination(), user);
    const cancel = createCancel(inv);
    const cancelUser = new RecordingUser();
    layer.sendRequest(cancel, destination(), cancelUser);
    assert.equal(layer.stats.client, 2, 'INVITE and CANCEL share the branch, not the key');
    assert.equal(layer.receiveResponse(makeResponse(cancel, 200), flow()), true);
    assert.deepEqual(cancelUser.statuses, [200]);
    assert.deepEqual(user.statuses, []);
    assert.equal(layer.receiveResponse(makeResponse(makeRequest('INVITE', { branch: 'z9hG4bKother' }), 180), flow()), false);
    assert.equal(layer.receiveResponse(makeResponse(makeRequest('OPTIONS', { branch: 'z9hG4bKc1' }), 200), flow()), false);
    const noVia = makeResponse(inv, 180);
    noVia.remove('via');
    assert.equal(layer.receiveResponse(noVia, flow()), false);
  });

  it('sendRequest refuses ACK, a request without a magic-cookie branch, a CSeq of another method, and a branch in use', () => {
    const { layer } = setup();
    const user = new RecordingUser();
    assert.throws(() => layer.sendRequest(makeRequest('ACK', { toTag: 't' }), destination(), user), TypeError);
    assert.throws(() => layer.sendRequest(makeRequest('OPTIONS', { branch: 'old' }), destination(), user), TypeError);
    assert.throws(() => layer.sendRequest(makeRequest('OPTIONS', { branch: 'z9hG4bK' }), destination(), user), TypeError);
    const wrong = makeRequest('OPTIONS', { branch: newBranch() });
    wrong.set('cseq', '1 INFO');
    assert.throws(() => layer.sendRequest(wrong, destination(), user), TypeError);
    const req = makeRequest('OPTIONS', { branch: 'z9hG4bKdup' });
    layer.sendRequest(req, destination(), user);
    assert.throws(
      () => layer.sendRequest(req, destination(), user),
      (e: unknown) => e instanceof TransactionError && e.code === 'TRANSACTION_ERR_EXISTS',
    );
  });
});

describe('TransactionLayer: lifecycle', () => {
  it('terminated transactions leave the tables', () => {
    const { clock, layer } = setup();
    layer.sendRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKo1' }), destination(), new RecordingUser());
    layer.receiveRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKo2' }), flow());
    assert.deepEqual(layer.stats, { client: 1, server: 1 });
    clock.tick(32_000); // Timer F; the server transaction was never answered and stays
    assert.deepEqual(layer.stats, { client: 0, server: 1 });
  });

  it('stop() terminates every transaction and leaves no pending timer; the layer is then closed', () => {
    const { clock, layer } = setup();
    const terminated: string[] = [];
    for (let i = 0; i < 5; i++) {
      layer.sendRequest(makeRequest('INVITE', { branch: `z9hG4bKi${i}` }), destination(), new RecordingUser()).on('terminated', () => terminated.push('c'));
      const res = layer.receiveRequest(makeRequest('INVITE', { branch: `z9hG4bKs${i}` }), flow());
      if (res.kind !== 'new') throw new Error('expected new');
      res.transaction.on('terminated', () => terminated.push('s'));
      res.transaction.respond(createResponse(res.transaction.request, 486, { toTag: 't' }));
    }
    assert.ok(clock.pending > 0);
    layer.stop();
    assert.equal(clock.pending, 0);
    assert.deepEqual(layer.stats, { client: 0, server: 0 });
    assert.equal(terminated.length, 10);
    assert.throws(
      () => layer.receiveRequest(makeRequest('OPTIONS'), flow()),
      (e: unknown) => e instanceof TransactionError && e.code === 'TRANSACTION_ERR_STOPPED',
    );
  });

  it('bad timing values are a TypeError', () => {
    assert.throws(
      () => new TransactionLayer({ transport: new FakeTransport(), logger: silentLogger(), timers: new FakeClock(), timing: { T1: 0 } }),
      TypeError,
    );
  });

  it('custom T1/T2/T4 drive every timer', () => {
    const { clock, layer } = setup({ timing: { T1: 100, T2: 400, T4: 1000 } });
    const user = new RecordingUser();
    layer.sendRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKt' }), destination(), user);
    assert.deepEqual(clock.pendingIn, [100, 6400]);
    clock.tick(6400);
    assert.equal(user.timeouts, 1);
  });
});
