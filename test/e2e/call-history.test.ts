/**
 * Dialogs and call history with real clients (issue 13): SIP.js and JsSIP softphones over WSS, SIPp over UDP,
 * the FreeSWITCH stand-in (test/helpers/fake-freeswitch.ts) on 127.0.0.2 and 127.0.0.3 as the backend set,
 * rtpengine for the DID call that bridges plain RTP to WebRTC. Every call ends in exactly one record; what the
 * record says is what the apps show (answered, missed, busy…), read back through GET /v1/calls.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type FakeFreeswitch, startFakeFreeswitch } from '../helpers/fake-freeswitch.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';
import { runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, SoftphoneError, createPhone } from '../helpers/softphone.js';
import type { CallRecord } from '../../platform/store/index.js';

const DOMAIN = 'example.com';
const USERS = { alice: 'alice-history-secret', bob: 'bob-history-secret', carol: 'carol-history-secret' } as const;
const DID = '+4930555000';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The records written since `mark` (ids seen before are left out), oldest first. */
async function recordsSince(t: TestServer, seen: Set<string>): Promise<CallRecord[]> {
  await t.server.history!.flush(5000);
  const page = await t.server.store.calls.list({ limit: 50 });
  const fresh = page.calls.filter((c) => !seen.has(c.id)).reverse();
  for (const c of fresh) seen.add(c.id);
  return fresh;
}

/** Waits until exactly one new record is there and returns it. */
async function oneNewRecord(t: TestServer, seen: Set<string>, timeoutMs = 5000): Promise<CallRecord> {
  const end = Date.now() + timeoutMs;
  const got: CallRecord[] = [];
  for (;;) {
    got.push(...(await recordsSince(t, seen)));
    if (got.length > 0 || Date.now() > end) break;
    await sleep(50);
  }
  // A second record for the same call would show up with the first: give it a moment.
  await sleep(200);
  got.push(...(await recordsSince(t, seen)));
  assert.equal(got.length, 1, `one record for the call, got ${JSON.stringify(got, null, 1)}`);
  return got[0]!;
}

describe('call history: one record per call, as the apps show it', { timeout: 180_000 }, () => {
  let t: TestServer;
  let fs1: FakeFreeswitch;
  let fs2: FakeFreeswitch;
  let rtpengine: RtpengineHandle;
  let alice: Softphone;
  let bob: Softphone;
  let bobDesk: Softphone;
  let carol: Softphone;
  let adminToken: string;
  const seen = new Set<string>();

  const api = async (path: string, token = adminToken): Promise<{ status: number; body: any }> => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.json() };
  };

  /** alice dials `number` with SIPp over UDP (407, then the authenticated INVITE). */
  const aliceDialsWithSipp = (number: string) => runSipp({
    scenario: 'fs-uac-pstn-call.xml', target: t.addr('udp'), calls: 1, rate: 1, timeoutSeconds: 15,
    extra: ['-key', 'aor_user', 'alice', '-key', 'aor_domain', DOMAIN, '-key', 'callee', number,
      '-au', 'alice', '-ap', USERS.alice, '-auth_uri', `${number}@${DOMAIN}`],
  });

  before(async () => {
    fs1 = await startFakeFreeswitch({ host: '127.0.0.2', challengeRegister: false });
    fs2 = await startFakeFreeswitch({ host: '127.0.0.3', challengeRegister: false });
    rtpengine = await startRtpengine();
    t = await startTestServer({ balancer: { probeInterval: 1, failoverTimeout: 1, reloadInterval: 0 }, media: { rtpengine: [rtpengine.ng] } });
    for (const [user, password] of Object.entries(USERS)) await t.addUser(`${user}@${DOMAIN}`, password);
    const routing = t.server.store.routing;
    await routing.addBackend({ set: 'pstn', uri: fs1.uri });
    await routing.addBackend({ set: 'pstn', uri: fs2.uri });
    await routing.addRoute({ pattern: '\\+[1-9][0-9]{6,14}', replace: '', set: 'pstn', priority: 20, description: 'E.164' });
    await routing.addDid({ number: DID, username: 'bob', domain: DOMAIN });
    await t.server.reload();
    adminToken = (await t.server.store.tokens.create({ name: 'history-test', expiresAt: Date.now() + 600_000 })).token;
    const wsUrl = `wss://${t.addr('wss')}`;
    alice = await createPhone('sip.js', { uri: `sip:alice@${DOMAIN}`, password: USERS.alice, wsUrl });
    bob = await createPhone('jssip', { uri: `sip:bob@${DOMAIN}`, password: USERS.bob, wsUrl });
    carol = await createPhone('jssip', { uri: `sip:carol@${DOMAIN}`, password: USERS.carol, wsUrl });
    for (const p of [alice, bob, carol]) await p.register();
  });

  after(async () => {
    for (const p of [alice, bob, bobDesk, carol]) await p?.stop();
    await t?.stop();
    await Promise.all([fs1?.close(), fs2?.close()]);
    await rtpengine?.stop();
  });

  it('an answered call between two WebRTC users is one record: answered, user→user, who answered, who hung up, billed from the answer', async () => {
    const incoming = bob.waitForIncoming(5000);
    const calling = alice.call(`sip:bob@${DOMAIN}`);
    const answered = await (await incoming).accept();
    const call = await calling;
    await sleep(1100);
    await call.hangup();
    await answered.waitForEnded(5000);
    const r = await oneNewRecord(t, seen);
    assert.equal(r.disposition, 'answered');
    assert.equal(r.direction, 'user-user');
    assert.deepEqual([r.caller.user, r.caller.domain, r.callee.user, r.callee.domain], ['alice', DOMAIN, 'bob', DOMAIN]);
    assert.equal(r.answeredAor, `bob@${DOMAIN}`);
    assert.ok(r.answeredDevice, 'the device that answered');
    assert.equal(r.hangupBy, 'caller');
    assert.equal(r.endCause, 'bye');
    assert.equal(r.finalCode, 200);
    assert.ok(r.billableSeconds >= 1 && r.billableSeconds <= 3, `billable ${r.billableSeconds}`);
    assert.ok(r.answeredAt! >= r.startedAt && r.endedAt >= r.answeredAt!);
    assert.equal(r.mediaRelayed, false, 'WebRTC to WebRTC keeps its media end to end');
    assert.equal(t.server.dialogs.active, 0);
  });

  it('the callee hanging up is recorded as the callee', async () => {
    const incoming = carol.waitForIncoming(5000);
    const calling = alice.call(`sip:carol@${DOMAIN}`);
    const answered = await (await incoming).accept();
    const call = await calling;
    await answered.hangup();
    await call.waitForEnded(5000);
    const r = await oneNewRecord(t, seen);
    assert.equal(r.hangupBy, 'callee');
  });

  it('a call the caller cancels while it rings is cancelled (487): a missed call for the callee', async () => {
    const abort = new AbortController();
    const incoming = bob.waitForIncoming(5000);
    const calling = alice.call(`sip:bob@${DOMAIN}`, { signal: abort.signal });
    const ringing = await incoming;
    await sleep(200);
    abort.abort();
    await assert.rejects(calling, (e: SoftphoneError) => e.code === 'SOFTPHONE_ERR_CANCELED');
    await ringing.waitForEnded(5000);
    const r = await oneNewRecord(t, seen);
    assert.equal(r.disposition, 'cancelled');
    assert.equal(r.finalCode, 487);
    assert.equal(r.endCause, 'cancel');
    assert.equal(r.billableSeconds, 0);
    assert.equal(r.answeredAt, undefined);
  });

  it('a call the callee answers busy (486) is busy', async () => {
    const incoming = bob.waitForIncoming(5000);
    const calling = alice.call(`sip:bob@${DOMAIN}`);
    await (await incoming).reject(486);
    await assert.rejects(calling, (e: SoftphoneError) => e.status === 486);
    const r = await oneNewRecord(t, seen);
    assert.equal(r.disposition, 'busy');
    assert.equal(r.finalCode, 486);
    assert.equal(r.endCause, 'failure');
  });

  it('a PSTN call that nobody picks up (480 from the far end) is no-answer', async () => {
    fs1.answerWith({ status: 480, user: '+4930480480' });
    fs2.answerWith({ status: 480, user: '+4930480480' });
    try {
      await assert.rejects(alice.call(`sip:+4930480480@${DOMAIN}`), (e: SoftphoneError) => e.status === 480);
    } finally {
      fs1.clearAnswerRules();
      fs2.clearAnswerRules();
    }
    const r = await oneNewRecord(t, seen);
    assert.equal(r.disposition, 'no-answer');
    assert.equal(r.direction, 'user-pstn');
    assert.equal(r.callee.number, '+4930480480');
  });

  it('a PSTN call out with SIPp over UDP is user→PSTN, names the dialled number and the backend that answered', async () => {
    const r0 = await aliceDialsWithSipp('+4989123456');
    assert.equal(r0.code, 0, r0.stdout + r0.stderr);
    const r = await oneNewRecord(t, seen);
    assert.equal(r.disposition, 'answered');
    assert.equal(r.direction, 'user-pstn');
    assert.equal(r.caller.user, 'alice');
    assert.equal(r.callee.number, '+4989123456');
    assert.ok(r.backend === fs1.uri || r.backend === fs2.uri, `backend ${r.backend}`);
    assert.equal(r.answeredDevice, r.backend);
  });

  it('a call a backend answers 503 fails over to the next backend: one answered record that names the second backend', async () => {
    fs1.answerWith({ status: 503 });
    try {
      // Round robin: of two calls, one goes to fs1 first and moves on to fs2.
      for (let i = 0; i < 2; i++) {
        const r0 = await aliceDialsWithSipp('+4940123456');
        assert.equal(r0.code, 0, r0.stdout + r0.stderr);
        const r = await oneNewRecord(t, seen);
        assert.equal(r.disposition, 'answered');
        assert.equal(r.backend, fs2.uri);
      }
    } finally {
      fs1.clearAnswerRules();
    }
  });

  it('a PSTN call in to a DID is PSTN→user, rings the DID\'s user and records the relay that bridged its media', async () => {
    const incoming = bob.waitForIncoming(5000);
    const calling = fs1.call(`sip:${DID}@${t.addr('udp')}`, { via: t.addr('udp'), from: 'sip:+4915112345678@pstn.invalid' });
    const answered = await (await incoming).accept();
    const result = await calling;
    assert.equal(result.status, 200);
    await result.hangup();
    await answered.waitForEnded(5000);
    const r = await oneNewRecord(t, seen);
    assert.equal(r.direction, 'pstn-user');
    assert.equal(r.disposition, 'answered');
    assert.equal(r.caller.number, '+4915112345678');
    assert.equal(r.caller.user, undefined);
    assert.deepEqual([r.callee.user, r.callee.number], ['bob', DID]);
    assert.equal(r.mediaRelayed, true);
    assert.equal(r.mediaNode, `udp:${rtpengine.ng}`.replace(/^udp:udp:/, 'udp:'));
    assert.equal(r.hangupBy, 'caller');
  });

  it('a forked call answered on one device is one answered record naming that device, not a missed call on the other', async () => {
    bobDesk = await createPhone('sip.js', { uri: `sip:bob@${DOMAIN}`, password: USERS.bob, wsUrl: `wss://${t.addr('wss')}`, name: 'bob-desk' });
    await bobDesk.register();
    const onMobile = bob.waitForIncoming(5000);
    const onDesk = bobDesk.waitForIncoming(5000);
    const calling = alice.call(`sip:bob@${DOMAIN}`);
    const [mobile, desk] = await Promise.all([onMobile, onDesk]);
    const answered = await desk.accept();
    const call = await calling;
    const other = await mobile.waitForEnded(5000);
    assert.equal(other.cause, 'canceled');
    await call.hangup();
    await answered.waitForEnded(5000);
    const r = await oneNewRecord(t, seen);
    assert.equal(r.disposition, 'answered');
    assert.equal(r.answeredAor, `bob@${DOMAIN}`);
    const deskContact = /^INVITE (\S+) SIP\/2\.0/.exec(desk.invite)![1]!;
    const mobileContact = /^INVITE (\S+) SIP\/2\.0/.exec(mobile.invite)![1]!;
    assert.notEqual(deskContact, mobileContact);
    // The device is its +sip.instance when it registered one, else its Contact URI.
    const bindings = t.server.registrar.lookup(`sip:bob@${DOMAIN}`);
    const device = (contact: string) => {
      const b = bindings.find((x) => x.contact.uri.toString() === contact);
      assert.ok(b, `a binding for ${contact}`);
      return b.instanceId ?? b.contact.uri.toString();
    };
    assert.equal(r.answeredDevice, device(deskContact));
    assert.notEqual(r.answeredDevice, device(mobileContact));
    // What bob's apps show first: his newest call, answered.
    const listed = await api(`/v1/calls?user=bob@${DOMAIN}&limit=1`);
    assert.equal(listed.status, 200);
    assert.equal(listed.body.calls[0].id, r.id);
    assert.equal(listed.body.calls[0].disposition, 'answered');
    await bobDesk.stop();
  });

  it('GET /v1/calls filters by user, number, direction, disposition and time, newest first, in pages that lose and repeat nothing', async () => {
    const all = (await t.server.store.calls.list({ limit: 500 })).calls;
    assert.ok(all.length >= 9, `records so far: ${all.length}`);
    // Pages of 2 through the whole history.
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await api(`/v1/calls?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.ok(page.body.calls.length <= 2);
      ids.push(...page.body.calls.map((c: CallRecord) => c.id));
      cursor = page.body.next;
    } while (cursor !== undefined);
    assert.deepEqual(ids, all.map((c) => c.id));
    assert.equal(new Set(ids).size, ids.length);
    const times = all.map((c) => c.startedAt);
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');

    const byUser = (await api(`/v1/calls?user=carol@${DOMAIN}`)).body.calls as CallRecord[];
    assert.equal(byUser.length, 1);
    const busy = (await api('/v1/calls?disposition=busy')).body.calls as CallRecord[];
    assert.ok(busy.length >= 1 && busy.every((c) => c.disposition === 'busy'));
    const incoming = (await api('/v1/calls?direction=pstn-user')).body.calls as CallRecord[];
    assert.ok(incoming.length >= 1 && incoming.every((c) => c.direction === 'pstn-user'));
    const byNumber = (await api(`/v1/calls?number=${encodeURIComponent(DID)}`)).body.calls as CallRecord[];
    assert.ok(byNumber.length >= 1 && byNumber.every((c) => c.callee.number === DID || c.caller.number === DID));
    const oldest = all.at(-1)!;
    const sinceOldest = (await api(`/v1/calls?since=${oldest.startedAt + 1}&limit=500`)).body.calls as CallRecord[];
    assert.equal(sinceOldest.length, all.filter((c) => c.startedAt >= oldest.startedAt + 1).length);
    const untilOldest = (await api(`/v1/calls?until=${oldest.startedAt + 1}&limit=500`)).body.calls as CallRecord[];
    assert.ok(untilOldest.some((c) => c.id === oldest.id));
    const one = await api(`/v1/calls/${encodeURIComponent(oldest.id)}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.id, oldest.id);
    assert.equal((await api('/v1/calls/no-such-call')).status, 404);
    assert.equal((await api('/v1/calls?direction=sideways')).status, 400);
  });

  it('a user token (POST /v1/auth/token with the SIP password) reads only that user\'s calls', async () => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: `carol@${DOMAIN}`, password: USERS.carol }),
    });
    assert.equal(res.status, 200);
    const { access_token: token } = await res.json() as { access_token: string };
    const mine = await api('/v1/calls', token);
    assert.equal(mine.status, 200);
    assert.equal(mine.body.calls.length, 1);
    assert.ok(mine.body.calls.every((c: CallRecord) => c.caller.user === 'carol' || c.callee.user === 'carol'));
    const others = (await t.server.store.calls.list({ limit: 500, user: `bob@${DOMAIN}` })).calls.filter((c) => c.caller.user !== 'carol' && c.callee.user !== 'carol');
    assert.equal((await api(`/v1/calls/${encodeURIComponent(others[0]!.id)}`, token)).status, 404);
    assert.equal((await api(`/v1/calls?user=bob@${DOMAIN}`, token)).status, 403);
  });
});

describe('a call whose BYE never comes', { timeout: 60_000 }, () => {
  it('is ended by dialog.maxDuration: its record says timeout, ended by the system', async () => {
    const t = await startTestServer({ dialog: { maxDuration: 2 } });
    const phones: Softphone[] = [];
    try {
      await t.addUser(`alice@${DOMAIN}`, USERS.alice);
      await t.addUser(`bob@${DOMAIN}`, USERS.bob);
      const wsUrl = `wss://${t.addr('wss')}`;
      const alice = await createPhone('sip.js', { uri: `sip:alice@${DOMAIN}`, password: USERS.alice, wsUrl });
      const bob = await createPhone('jssip', { uri: `sip:bob@${DOMAIN}`, password: USERS.bob, wsUrl });
      phones.push(alice, bob);
      for (const p of phones) await p.register();
      const incoming = bob.waitForIncoming(5000);
      const calling = alice.call(`sip:bob@${DOMAIN}`);
      await (await incoming).accept();
      await calling;
      assert.equal(t.server.dialogs.active, 1);
      const seen = new Set<string>();
      await sleep(2300);
      assert.equal(t.server.dialogs.active, 0);
      const r = await oneNewRecord(t, seen);
      assert.equal(r.disposition, 'answered');
      assert.equal(r.endCause, 'timeout');
      assert.equal(r.hangupBy, 'system');
      assert.ok(r.duration >= 1 && r.duration <= 3, `duration ${r.duration}`);
    } finally {
      for (const p of phones) await p.stop();
      await t.stop();
    }
  });
});
