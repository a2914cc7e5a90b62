import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log/index.js';
import { DialogTracker, type DialogInit, type DialogSnapshot } from '../../../src/dialog/index.js';
import { FakeClock } from '../../helpers/fake-clock.js';

function tracker(maxDurationMs = 60_000): { dialogs: DialogTracker; clock: FakeClock; events: string[] } {
  const clock = new FakeClock();
  const dialogs = new DialogTracker({ logger: silentLogger(), maxDurationMs, timers: clock, now: () => clock.now, owner: 3 });
  const events: string[] = [];
  for (const e of ['created', 'early', 'confirmed', 'ended', 'restored'] as const) dialogs.on(e, (d) => events.push(`${e}:${d.callId}`));
  return { dialogs, clock, events };
}

const call = (callId: string): DialogInit => ({
  callId,
  fromTag: 'ft',
  caller: { uri: 'sip:alice@example.com', user: 'alice', domain: 'example.com' },
  callee: { uri: 'sip:bob@example.com', user: 'bob', domain: 'example.com' },
  direction: 'user-user',
});

describe('dialog tracker', () => {
  it('a dialog is created on the forwarded INVITE, early on ringing, confirmed by the 2xx and ended by the BYE, each event once', () => {
    const { dialogs, clock, events } = tracker();
    const d = dialogs.create(call('c1'));
    assert.equal(d.owner, 3);
    clock.tick(1000);
    dialogs.early(d, 'tt');
    dialogs.early(d, 'tt2');
    clock.tick(2000);
    dialogs.confirm(d, { toTag: 'tt', code: 200, reason: 'OK', answeredBy: { aor: 'bob@example.com', contact: 'sip:bob@10.0.0.2' } });
    clock.tick(5000);
    assert.equal(dialogs.endByRequest('c1', 'tt', { cause: 'bye' }), true);
    dialogs.end(d, { cause: 'bye' });
    assert.deepEqual(events, ['created:c1', 'early:c1', 'confirmed:c1', 'ended:c1']);
    const s = d.snapshot();
    assert.equal(s.ringingAt! - s.createdAt, 1000);
    assert.equal(s.answeredAt! - s.createdAt, 3000);
    assert.equal(s.endedAt! - s.createdAt, 8000);
    assert.equal(s.hangupBy, 'callee');
    assert.equal(s.endCause, 'bye');
    assert.equal(s.finalCode, 200);
    assert.equal(dialogs.active, 0);
  });

  it('list() gives the calls not ended yet, oldest first; an ended one leaves it', () => {
    const { dialogs } = tracker();
    const first = dialogs.create(call('c1'));
    dialogs.create(call('c2'));
    dialogs.create(call('c1'));
    assert.deepEqual(dialogs.list().map((d) => d.callId), ['c1', 'c2']);
    dialogs.end(first, { cause: 'cancel' });
    assert.deepEqual(dialogs.list().map((d) => d.callId), ['c2']);
  });

  it('the BYE from the caller (its From tag is the dialog\'s) says the caller hung up', () => {
    const { dialogs } = tracker();
    const d = dialogs.create(call('c1'));
    dialogs.confirm(d, { toTag: 'tt', code: 200 });
    dialogs.endByRequest('c1', 'ft', { cause: 'bye' });
    assert.equal(d.hangupBy, 'caller');
  });

  it('a call whose BYE never comes is ended by maxDuration with cause timeout, by the system', () => {
    const { dialogs, clock, events } = tracker(10_000);
    const d = dialogs.create(call('c1'));
    dialogs.confirm(d, { toTag: 'tt', code: 200 });
    clock.tick(9_999);
    assert.equal(d.ended, false);
    clock.tick(1);
    assert.equal(d.endCause, 'timeout');
    assert.equal(d.hangupBy, 'system');
    assert.equal(events.at(-1), 'ended:c1');
    assert.equal(clock.pending, 0);
  });

  it('active dialogs are counted per user (caller and callee) and per backend until they end', () => {
    const { dialogs } = tracker();
    const a = dialogs.create(call('c1'));
    const b = dialogs.create({ ...call('c2'), callee: { uri: 'sip:+4930@x', number: '+4930' }, direction: 'user-pstn' });
    dialogs.confirm(b, { toTag: 't', code: 200, backend: { id: 7, set: 'pstn', uri: 'sip:10.0.0.5' } });
    assert.equal(dialogs.activeForUser('Alice@example.com'), 2);
    assert.equal(dialogs.activeForUser('bob@example.com'), 1);
    assert.equal(dialogs.activeAtBackend('sip:10.0.0.5'), 1);
    assert.deepEqual(dialogs.stats(), { active: 2, early: 0, confirmed: 1, backends: { 'sip:10.0.0.5': 1 }, users: { 'alice@example.com': 2, 'bob@example.com': 1 } });
    assert.deepEqual(dialogs.stats(1).users, { 'alice@example.com': 2 });
    dialogs.end(a, { cause: 'failure', code: 486 });
    dialogs.end(b, { cause: 'bye' });
    assert.equal(dialogs.activeForUser('alice@example.com'), 0);
    assert.equal(dialogs.activeAtBackend('sip:10.0.0.5'), 0);
    assert.equal(dialogs.active, 0);
  });

  it('a failure before any answer keeps its final code; an answered call keeps its 2xx', () => {
    const { dialogs } = tracker();
    const d = dialogs.create(call('c1'));
    dialogs.end(d, { cause: 'failure', code: 486, reason: 'Busy Here' });
    assert.equal(d.finalCode, 486);
    assert.equal(d.finalReason, 'Busy Here');
  });

  it('an INVITE of a Call-ID still up (a spiral) finds the same dialog', () => {
    const { dialogs, events } = tracker();
    const a = dialogs.create(call('c1'));
    assert.equal(dialogs.create(call('c1')), a);
    assert.deepEqual(events, ['created:c1']);
  });

  it('a BYE for a dialog held elsewhere goes to the remote holder, which ends it with the side that hung up', () => {
    const here = tracker();
    const there = tracker();
    const held = there.dialogs.create(call('c9'));
    there.dialogs.confirm(held, { toTag: 'tt', code: 200 });
    here.dialogs.setRemote({ end: (callId, fromTag, end) => there.dialogs.endFromRemote(callId, fromTag, end) });
    assert.equal(here.dialogs.endByRequest('c9', 'ft', { cause: 'bye' }), false);
    assert.equal(held.ended, true);
    assert.equal(held.hangupBy, 'caller');
  });

  it('persisted confirmed dialogs are taken up after a restart, with their remaining maxDuration', () => {
    const first = tracker(10_000);
    const d = first.dialogs.create(call('c1'));
    first.dialogs.confirm(d, { toTag: 'tt', code: 200, backend: { id: 1, set: 's', uri: 'sip:fs1' } });
    const early = first.dialogs.create(call('c2'));
    const saved: DialogSnapshot[] = [JSON.parse(JSON.stringify(d.snapshot())), early.snapshot()];
    const second = tracker(10_000);
    second.clock.now = 4_000;
    assert.equal(second.dialogs.restore(saved), 1);
    assert.deepEqual(second.events, ['restored:c1']);
    const back = second.dialogs.get('c1')!;
    assert.equal(back.id, d.id);
    assert.equal(second.dialogs.activeAtBackend('sip:fs1'), 1);
    second.clock.tick(5_999);
    assert.equal(back.ended, false);
    second.clock.tick(1);
    assert.equal(back.endCause, 'timeout');
  });

  it('a listener that throws does not stop the others or the caller', () => {
    const { dialogs } = tracker();
    let heard = 0;
    dialogs.on('created', () => {
      throw new Error('boom');
    });
    dialogs.on('created', () => heard++);
    dialogs.create(call('c1'));
    assert.equal(heard, 1);
  });
});

describe('dialog tracker: hand-over between the processes of a slot (rolling restart)', () => {
  it('hands its confirmed calls over without ending them; the successor holds them from then on', () => {
    const old = tracker();
    const d = old.dialogs.create(call('c1'));
    old.dialogs.confirm(d, { toTag: 'tt', code: 200 });
    old.dialogs.create(call('c2'));
    const handed = old.dialogs.handOver();
    assert.deepEqual(handed.map((s) => s.callId), ['c1']);
    assert.equal(old.dialogs.get('c1'), undefined);
    assert.deepEqual(old.events, ['created:c1', 'confirmed:c1', 'created:c2'], 'no ended: the call goes on');
    const next = tracker();
    next.dialogs.restore(handed);
    assert.equal(next.dialogs.get('c1')?.id, d.id);
  });

  it('a BYE that arrives before its dialog is handed over ends the dialog as it arrives, once', () => {
    const old = tracker();
    const d = old.dialogs.create(call('c1'));
    old.dialogs.confirm(d, { toTag: 'tt', code: 200 });
    const next = tracker();
    next.dialogs.setRemote({ end: () => undefined });
    next.clock.now = 5_000;
    assert.equal(next.dialogs.endByRequest('c1', 'tt', { cause: 'bye' }), false);
    next.dialogs.restore(old.dialogs.handOver());
    assert.deepEqual(next.events, ['restored:c1', 'ended:c1']);
    assert.equal(next.dialogs.active, 0);
    next.dialogs.restore([{ ...d.snapshot(), callId: 'c1' }]);
    assert.equal(next.dialogs.active, 1, 'the remembered BYE is used once');
  });
});

describe('dialog tracker: a hang-up from outside (DELETE /v1/active-calls/:id)', () => {
  const leg = (identity: string, cseq: number) => ({
    identity, target: 'sip:x@192.0.2.9', routeSet: [], destination: { protocol: 'udp' as const, address: '192.0.2.9', port: 5060 }, cseq,
  });
  const legs = () => ({ caller: leg('<sip:alice@example.com>;tag=ft', 2), callee: leg('<sip:bob@example.com>;tag=tt', 0) });

  it('an answered call asked to hang up is ended at once as a BYE by the system, and its record says so', () => {
    const { dialogs, events } = tracker();
    const asked: string[] = [];
    dialogs.setHangup({ hangUp: (d) => (asked.push(`${d.state}:${d.callId}`), 'bye') });
    const d = dialogs.create(call('c1'));
    dialogs.confirm(d, { toTag: 'tt', code: 200, legs: legs() });
    assert.equal(dialogs.hangUp(d.id), 'bye');
    assert.deepEqual(asked, ['confirmed:c1']);
    assert.deepEqual({ cause: d.endCause, by: d.hangupBy }, { cause: 'bye', by: 'system' });
    assert.deepEqual(events, ['created:c1', 'confirmed:c1', 'ended:c1']);
    assert.equal(dialogs.hangUp(d.id), 'unknown', 'an ended call is no longer there to hang up');
  });

  it('a ringing call whose branches are being CANCELled is not ended before its final response', () => {
    const { dialogs } = tracker();
    dialogs.setHangup({ hangUp: () => 'cancel' });
    const d = dialogs.create(call('c1'));
    dialogs.early(d, 'tt');
    assert.equal(dialogs.hangUp(d.id), 'cancel');
    assert.equal(d.state, 'early');
  });

  it('an id nobody holds is unknown; a call the proxy cannot end is unreachable and stays up', () => {
    const { dialogs } = tracker();
    const d = dialogs.create(call('c1'));
    assert.equal(dialogs.hangUp(d.id), 'unreachable', 'no proxy to end it');
    dialogs.setHangup({ hangUp: () => undefined });
    assert.equal(dialogs.hangUp(d.id), 'unreachable');
    assert.equal(dialogs.hangUp('no-such-id'), 'unknown');
    assert.equal(dialogs.active, 1);
  });

  it('raises the CSeq of the side that sent an in-dialog request, never lowers it, and keeps the legs in the snapshot', () => {
    const { dialogs } = tracker();
    const d = dialogs.create(call('c1'));
    dialogs.confirm(d, { toTag: 'tt', code: 200, legs: legs() });
    const updated: number[] = [];
    dialogs.on('updated', (u) => updated.push(u.legs!.callee.cseq + u.legs!.caller.cseq));
    dialogs.requestSeen('c1', 'tt', 17);
    dialogs.requestSeen('c1', 'ft', 5);
    dialogs.requestSeen('c1', 'ft', 3);
    assert.deepEqual(updated, [19, 22], '`updated` (what is persisted follows) only when a CSeq rose');
    const s = d.snapshot();
    assert.deepEqual({ caller: s.legs?.caller.cseq, callee: s.legs?.callee.cseq }, { caller: 5, callee: 17 });
    const next = tracker().dialogs;
    next.restore([JSON.parse(JSON.stringify(s)) as DialogSnapshot]);
    assert.equal(next.get('c1')?.legs?.callee.cseq, 17, 'a restarted process can still hang the call up');
  });

  it('listAll adds the other workers\' calls, oldest first, and counts the silent ones; hangUpAnywhere asks them for a call not held here', async () => {
    const { dialogs, clock } = tracker();
    dialogs.create(call('mine'));
    clock.tick(10);
    const theirs = { ...dialogs.list()[0]!.snapshot(), id: 'x1', callId: 'theirs', owner: 1, createdAt: clock.now - 1000 };
    const asked: string[] = [];
    dialogs.setPeers({
      list: async () => ({ dialogs: [theirs], missing: 1 }),
      hangUp: async (id) => (asked.push(id), { result: id === 'x1' ? 'bye' : 'unknown', missing: 0 }),
    });
    const all = await dialogs.listAll(100);
    assert.deepEqual(all.dialogs.map((d) => d.callId), ['theirs', 'mine']);
    assert.equal(all.missing, 1);
    assert.deepEqual(await dialogs.hangUpAnywhere('x1', 100), { result: 'bye', missing: 0 });
    dialogs.setHangup({ hangUp: () => 'cancel' });
    assert.deepEqual(await dialogs.hangUpAnywhere(dialogs.get('mine')!.id, 100), { result: 'cancel', missing: 0 });
    assert.deepEqual(asked, ['x1'], 'a call held here is not asked of the others');
  });
});

describe('dialog tracker: CSeqs of a call held by another worker', () => {
  it('an in-dialog request of a call not held here goes to DialogRemote.seen; the holder raises that side\'s CSeq', () => {
    const here = tracker().dialogs;
    const seen: Array<[string, string | undefined, number]> = [];
    here.setRemote({ end: () => undefined, seen: (callId, fromTag, cseq) => void seen.push([callId, fromTag, cseq]) });
    here.requestSeen('elsewhere', 'tt', 9);
    assert.deepEqual(seen, [['elsewhere', 'tt', 9]]);

    const holder = tracker().dialogs;
    const d = holder.create(call('elsewhere'));
    const leg = (cseq: number) => ({ identity: 'x', target: 'sip:x@192.0.2.9', routeSet: [], destination: { protocol: 'udp' as const, address: '192.0.2.9', port: 5060 }, cseq });
    holder.confirm(d, { toTag: 'tt', code: 200, legs: { caller: leg(1), callee: leg(0) } });
    assert.equal(holder.requestSeenRemotely('elsewhere', 'tt', 9), true);
    assert.equal(d.legs?.callee.cseq, 9);
    assert.equal(holder.requestSeenRemotely('unknown', 'tt', 9), false);
  });
});
