/**
 * What the presence server knows of each user (presence/presence-state.ts), alone: publications with their
 * entity-tags and expiry (RFC 3903), reachability from a fake registrar, and calls from DialogSnapshots built
 * here, merged by view() into what watchers are told (RFC 3856, RPID `on-the-phone`, RFC 4480) and listed by
 * dialogInfo() for the dialog package (RFC 4235). Timers and the clock are node:test's mock timers.
 */
import { describe, it, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { PresenceState } from '../../../presence/presence-state.js';
import type { Reachability } from '../../../presence/types.js';
import type { DialogSnapshot } from '../../../src/dialog/index.js';

const T0 = 1_700_000_000_000;
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

/** A registrar that says what the test sets; `offline` for anyone not named. */
function fakeReachability(): { of: Map<string, Reachability>; fn: (user: string) => Reachability } {
  const of = new Map<string, Reachability>();
  return { of, fn: (user) => of.get(user) ?? 'offline' };
}

/** A call alice → bob through this server, as the dialog module reports it. */
function call(over: Partial<DialogSnapshot> = {}): DialogSnapshot {
  return {
    id: 'dlg-1',
    owner: 0,
    callId: 'call-1@198.51.100.7',
    fromTag: 'from-1',
    caller: { uri: 'sip:alice@example.com', user: 'alice', domain: 'example.com', displayName: 'Alice' },
    callee: { uri: 'sip:bob@example.com', user: 'bob', domain: 'example.com', displayName: 'Bob' },
    direction: 'user-user',
    state: 'created',
    mediaRelayed: false,
    createdAt: T0,
    ...over,
  };
}

const confirmed = (over: Partial<DialogSnapshot> = {}): DialogSnapshot =>
  call({ state: 'confirmed', toTag: 'to-1', answeredBy: { aor: BOB, contact: 'sip:bob@198.51.100.9:5060' }, answeredAt: T0 + 2000, ...over });

const ended = (over: Partial<DialogSnapshot> = {}): DialogSnapshot =>
  confirmed({ state: 'ended', endedAt: T0 + 9000, endCause: 'bye', hangupBy: 'caller', ...over });

describe('PresenceState', () => {
  let reach: ReturnType<typeof fakeReachability>;
  let state: PresenceState;
  let changes: string[];

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    reach = fakeReachability();
    state = new PresenceState({ reachability: reach.fn, clock: () => Date.now() });
    changes = [];
    state.on('changed', (user) => changes.push(user));
  });

  afterEach(() => {
    state.stop();
    mock.timers.reset();
  });

  describe('view()', () => {
    it('offline: closed, no activity and no note, even with a publication and during a call', () => {
      state.publish(ALICE, undefined, { basic: 'open', activities: ['busy'], note: 'In a meeting' }, 600);
      state.dialog(confirmed());
      const view = state.view(ALICE);
      assert.deepEqual(view, { entity: `sip:${ALICE}`, basic: 'closed', activities: [], reachability: 'offline', onThePhone: false });
    });

    it('online without a publication: open, no activity, no note', () => {
      reach.of.set(ALICE, 'online');
      assert.deepEqual(state.view(ALICE), { entity: `sip:${ALICE}`, basic: 'open', activities: [], note: undefined, reachability: 'online', onThePhone: false });
    });

    it('online with a publication: its status, activities (RFC 4480 §3.2) and note', () => {
      reach.of.set(ALICE, 'online');
      state.publish(ALICE, undefined, { basic: 'closed', activities: ['away', 'other:gardening'], note: 'Back at 3' }, 600);
      const view = state.view(ALICE);
      assert.equal(view.basic, 'closed');
      assert.deepEqual(view.activities, ['away', 'other:gardening']);
      assert.equal(view.note, 'Back at 3');
      assert.equal(view.reachability, 'online');
    });

    it('push: only sleeping push devices (RFC 8599) — the publication still counts and the reachability says push', () => {
      reach.of.set(ALICE, 'push');
      state.publish(ALICE, undefined, { basic: 'open', activities: ['vacation'], note: undefined }, 600);
      const view = state.view(ALICE);
      assert.equal(view.reachability, 'push');
      assert.equal(view.basic, 'open');
      assert.deepEqual(view.activities, ['vacation']);
    });

    it('the newest of several publications (one per device) is what watchers are told', () => {
      reach.of.set(ALICE, 'online');
      state.publish(ALICE, undefined, { basic: 'open', activities: ['away'], note: 'phone' }, 600);
      mock.timers.tick(1000);
      state.publish(ALICE, undefined, { basic: 'open', activities: ['busy'], note: 'desk' }, 600);
      assert.deepEqual(state.view(ALICE).activities, ['busy']);
      assert.equal(state.view(ALICE).note, 'desk');
    });

    it('RFC 3903 §4.3: a refresh (no body) only extends a publication: what watchers are told does not change', () => {
      // Two devices publish; the older one then refreshes without a body. The refresh carries no state, so the
      // merged view must stay the newer device's (and no `changed` fires, so watchers could not learn otherwise).
      reach.of.set(ALICE, 'online');
      const phone = state.publish(ALICE, undefined, { basic: 'open', activities: ['away'], note: 'phone' }, 600);
      mock.timers.tick(1000);
      state.publish(ALICE, undefined, { basic: 'open', activities: ['busy'], note: 'desk' }, 600);
      const before = state.view(ALICE);
      mock.timers.tick(1000);
      const n = changes.length;
      state.publish(ALICE, phone.etag, undefined, 600);
      assert.equal(changes.length, n, 'a refresh without a body announces no change');
      assert.deepEqual(state.view(ALICE), before);
    });

    it('RFC 4480 on-the-phone is added during a confirmed call for both parties, and removed once it ended', () => {
      reach.of.set(ALICE, 'online');
      reach.of.set(BOB, 'online');
      state.publish(ALICE, undefined, { basic: 'open', activities: ['away'], note: undefined }, 600);
      state.dialog(call());
      state.dialog(confirmed());
      assert.deepEqual(state.view(ALICE).activities, ['away', 'on-the-phone']);
      assert.equal(state.view(ALICE).onThePhone, true);
      assert.deepEqual(state.view(BOB).activities, ['on-the-phone']);
      assert.equal(state.view(BOB).onThePhone, true);
      state.dialog(ended());
      assert.deepEqual(state.view(ALICE).activities, ['away']);
      assert.equal(state.view(ALICE).onThePhone, false);
      assert.deepEqual(state.view(BOB).activities, []);
      assert.equal(state.onThePhone(BOB), false);
    });

    it('on-the-phone is not listed twice when the user published it too', () => {
      reach.of.set(ALICE, 'online');
      state.publish(ALICE, undefined, { basic: 'open', activities: ['on-the-phone'], note: undefined }, 600);
      state.dialog(confirmed());
      assert.deepEqual(state.view(ALICE).activities, ['on-the-phone']);
    });

    it('a ringing callee is not on the phone yet; the caller placing the call is', () => {
      reach.of.set(ALICE, 'online');
      reach.of.set(BOB, 'online');
      state.dialog(call({ state: 'early', toTag: 'to-1', ringingAt: T0 + 500 }));
      assert.equal(state.view(BOB).onThePhone, false);
      assert.deepEqual(state.view(BOB).activities, []);
      assert.equal(state.view(ALICE).onThePhone, true);
    });
  });

  describe('publications (RFC 3903)', () => {
    it('§6 step 8: each publish, refresh included, gets a new entity-tag; the old one is no longer valid', () => {
      const first = state.publish(ALICE, undefined, { basic: 'open', activities: ['away'], note: undefined }, 600);
      const second = state.publish(ALICE, first.etag, undefined, 600);
      assert.notEqual(second.etag, first.etag);
      assert.equal(state.publication(ALICE, first.etag), undefined);
      assert.deepEqual(state.publication(ALICE, second.etag)?.state, { basic: 'open', activities: ['away'], note: undefined });
      assert.equal(state.publicationCount(ALICE), 1);
    });

    it('a new publication or a modification emits changed; unpublish of an unknown tag is false and emits nothing', () => {
      const p = state.publish(ALICE, undefined, { basic: 'open', activities: [], note: undefined }, 600);
      state.publish(ALICE, p.etag, { basic: 'open', activities: ['busy'], note: undefined }, 600);
      assert.deepEqual(changes, [ALICE, ALICE]);
      assert.equal(state.unpublish(ALICE, 'no-such-tag'), false);
      assert.equal(changes.length, 2);
    });

    it('a publication expires after its Expires: it is removed and changed is emitted', () => {
      reach.of.set(ALICE, 'online');
      const p = state.publish(ALICE, undefined, { basic: 'open', activities: ['away'], note: undefined }, 60);
      changes.length = 0;
      mock.timers.tick(59_999);
      assert.ok(state.publication(ALICE, p.etag));
      assert.deepEqual(changes, []);
      mock.timers.tick(1);
      assert.equal(state.publication(ALICE, p.etag), undefined);
      assert.equal(state.publicationCount(ALICE), 0);
      assert.deepEqual(changes, [ALICE]);
      assert.deepEqual(state.view(ALICE).activities, []);
    });

    it('unpublish removes the publication and emits changed', () => {
      const p = state.publish(ALICE, undefined, { basic: 'open', activities: ['away'], note: undefined }, 600);
      changes.length = 0;
      assert.equal(state.unpublish(ALICE, p.etag), true);
      assert.equal(state.publicationCount(ALICE), 0);
      assert.deepEqual(changes, [ALICE]);
    });
  });

  describe('dialogInfo() (RFC 4235 §4.1)', () => {
    it('a new call is trying for the caller and proceeding for the callee, with each side\'s tags and identities', () => {
      state.dialog(call());
      assert.deepEqual(state.dialogInfo(ALICE), [{
        id: 'dlg-1', callId: 'call-1@198.51.100.7', localTag: 'from-1', remoteTag: undefined, direction: 'initiator', state: 'trying',
        remoteIdentity: 'sip:bob@example.com', remoteDisplay: 'Bob', localIdentity: `sip:${ALICE}`,
      }]);
      assert.deepEqual(state.dialogInfo(BOB), [{
        id: 'dlg-1', callId: 'call-1@198.51.100.7', localTag: undefined, remoteTag: 'from-1', direction: 'recipient', state: 'proceeding',
        remoteIdentity: 'sip:alice@example.com', remoteDisplay: 'Alice', localIdentity: `sip:${BOB}`,
      }]);
      assert.deepEqual(changes.sort(), [ALICE, BOB]);
    });

    it('confirmed: both sides confirmed, the callee\'s local tag is the To tag', () => {
      state.dialog(confirmed());
      assert.equal(state.dialogInfo(ALICE)[0]?.state, 'confirmed');
      assert.equal(state.dialogInfo(ALICE)[0]?.remoteTag, 'to-1');
      assert.equal(state.dialogInfo(BOB)[0]?.state, 'confirmed');
      assert.equal(state.dialogInfo(BOB)[0]?.localTag, 'to-1');
    });

    it('the answering device\'s AoR is the recipient when the call was answered elsewhere than the dialled user', () => {
      state.dialog(confirmed({ answeredBy: { aor: 'carol@example.com' } }));
      assert.equal(state.dialogInfo('carol@example.com')[0]?.direction, 'recipient');
      assert.deepEqual(state.dialogInfo(BOB), []);
    });

    it('§4.1.6.2: a terminated dialog is kept a few seconds, then dropped', () => {
      state.dialog(confirmed());
      state.dialog(ended());
      assert.equal(state.dialogInfo(ALICE)[0]?.state, 'terminated');
      mock.timers.tick(4999);
      assert.equal(state.dialogInfo(ALICE).length, 1);
      mock.timers.tick(1);
      assert.deepEqual(state.dialogInfo(ALICE), []);
      assert.deepEqual(state.dialogInfo(BOB), []);
    });

    const events: Array<[string, Partial<DialogSnapshot>, string, string]> = [
      ['a CANCEL is cancelled', { endCause: 'cancel', hangupBy: undefined }, 'cancelled', 'cancelled'],
      ['a failure final response is rejected', { endCause: 'failure', hangupBy: undefined }, 'rejected', 'rejected'],
      ['dialog.maxDuration is timeout', { endCause: 'timeout', hangupBy: 'system' }, 'timeout', 'timeout'],
      ['a BYE from the caller is local-bye for the caller, remote-bye for the callee', { endCause: 'bye', hangupBy: 'caller' }, 'local-bye', 'remote-bye'],
      ['a BYE from the callee is remote-bye for the caller, local-bye for the callee', { endCause: 'bye', hangupBy: 'callee' }, 'remote-bye', 'local-bye'],
      ['a dead leg found by the keep-alive is error', { endCause: 'keepalive', hangupBy: 'system' }, 'error', 'error'],
    ];
    for (const [name, end, callerEvent, calleeEvent] of events) {
      it(`§4.1.6.2 event: ${name}`, () => {
        state.dialog(confirmed());
        state.dialog(ended(end));
        assert.equal(state.dialogInfo(ALICE)[0]?.event, callerEvent);
        assert.equal(state.dialogInfo(BOB)[0]?.event, calleeEvent);
      });
    }

    it('an ended dialog of a user with no dialog here adds nothing', () => {
      state.dialog(ended());
      assert.deepEqual(state.dialogInfo(ALICE), []);
      assert.deepEqual(changes, []);
    });

    it('a party that is not a user of ours (no user/domain) gets no entry', () => {
      state.dialog(call({ callee: { uri: 'sip:+15550100@trunk.example.net', number: '+15550100' }, direction: 'user-pstn' }));
      assert.equal(state.dialogInfo(ALICE).length, 1);
      assert.deepEqual(changes, [ALICE]);
    });
  });
});
