/**
 * PSTN in and out through the backends (issue 6): a subscriber's call to a national number follows the
 * dialplan to a FreeSWITCH of the set, rewritten to E.164; a trusted backend's call to a DID rings the
 * user it belongs to; nobody else reaches a trunk without proving who they are. The FreeSWITCH boxes are
 * the stand-in of test/helpers/fake-freeswitch.ts on 127.0.0.2 and 127.0.0.3: the test clients send from
 * 127.0.0.1, which is not trusted.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type FakeFreeswitch, startFakeFreeswitch } from '../helpers/fake-freeswitch.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';
import { runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, createPhone } from '../helpers/softphone.js';

const DOMAIN = 'example.com';
const ALICE = { user: 'alice', password: 'alice-pstn-secret' };
const BOB = { user: 'bob', password: 'bob-pstn-secret' };
const DID = '+4930123456';

describe('PSTN routing: dialplan to a backend set, DIDs from trusted backends, no trunk for strangers', () => {
  let t: TestServer;
  let fs1: FakeFreeswitch;
  let fs2: FakeFreeswitch;
  let stranger: FakeFreeswitch;
  let bob: Softphone;
  let rtpengine: RtpengineHandle;

  const invitesOnBackends = (): number => fs1.invites.length + fs2.invites.length;
  /** The INVITE that reached either backend last. */
  const newestInvite = () => [...fs1.invites, ...fs2.invites].reduce((a, b) => (b.at >= a.at ? b : a));

  /** alice calls `number` with SIPp over UDP (407, then the authenticated INVITE); the SIPp result. */
  function aliceCalls(number: string, calls = 1) {
    return runSipp({
      scenario: 'fs-uac-pstn-call.xml', target: t.addr('udp'), calls, rate: 20, timeoutSeconds: 15,
      extra: ['-key', 'aor_user', ALICE.user, '-key', 'aor_domain', DOMAIN, '-key', 'callee', number,
        '-au', ALICE.user, '-ap', ALICE.password, '-auth_uri', `${number}@${DOMAIN}`],
    });
  }

  before(async () => {
    fs1 = await startFakeFreeswitch({ host: '127.0.0.2', challengeRegister: false });
    fs2 = await startFakeFreeswitch({ host: '127.0.0.3', challengeRegister: false });
    stranger = await startFakeFreeswitch({ host: '127.0.0.1' });
    // The DID call bridges the backend's plain RTP to the softphone's WebRTC profile: rtpengine.
    rtpengine = await startRtpengine();
    t = await startTestServer({ balancer: { probeInterval: 1, failoverTimeout: 1, reloadInterval: 0 }, media: { rtpengine: [rtpengine.ng] } });
    await t.addUser(`${ALICE.user}@${DOMAIN}`, ALICE.password);
    await t.addUser(`${BOB.user}@${DOMAIN}`, BOB.password);
    const routing = t.server.store.routing;
    await routing.addBackend({ set: 'pstn', uri: fs1.uri });
    await routing.addBackend({ set: 'pstn', uri: fs2.uri });
    await routing.addRoute({ pattern: '0([1-9][0-9]{5,12})', replace: '+49$1', set: 'pstn', priority: 10, description: 'DE national' });
    await routing.addRoute({ pattern: '\\+[1-9][0-9]{6,14}', replace: '', set: 'pstn', priority: 20, description: 'E.164' });
    await routing.addDid({ number: DID, username: BOB.user, domain: DOMAIN });
    await t.server.reload();
    bob = await createPhone('sip.js', { uri: `sip:${BOB.user}@${DOMAIN}`, password: BOB.password, wsUrl: `wss://${t.addr('wss')}` });
    await bob.register();
  });

  after(async () => {
    await bob?.stop();
    await t?.stop();
    await Promise.all([fs1?.close(), fs2?.close(), stranger?.close()]);
    await rtpengine?.stop();
  });

  it('sends a subscriber\'s call to a national number to a backend of the route\'s set, rewritten to E.164, with the caller asserted and without the caller\'s credentials', async () => {
    const before = invitesOnBackends();
    const r = await aliceCalls('0301234567');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(invitesOnBackends(), before + 1);
    const invite = newestInvite();
    assert.match(invite.requestUri, /^sip:\+49301234567@127\.0\.0\.[23]:\d+/);
    assert.equal(invite.pAssertedIdentity, `<sip:${ALICE.user}@${DOMAIN}>`);
    assert.equal(invite.authorization, false, 'Proxy-Authorization for our realm is consumed, never sent to a trunk');
    assert.ok(invite.headers['record-route'], 'the softswitch stays in the dialog (Record-Route)');
  });

  it('spreads calls of the set over its backends round-robin', async () => {
    const a = fs1.invites.length;
    const b = fs2.invites.length;
    const r = await aliceCalls('+4989123456', 6);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual([fs1.invites.length - a, fs2.invites.length - b], [3, 3]);
  });

  it('moves a call answered 503 by one backend to the next without the caller noticing', async () => {
    // Round-robin: one of two calls goes to fs1 first, which answers it 503; fs2 then answers it.
    fs1.answerWith({ status: 503, times: 1 });
    try {
      const before = invitesOnBackends();
      const answered = fs2.callsAnswered;
      const r = await aliceCalls('+4940123456', 2);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(invitesOnBackends(), before + 3, 'two calls, one of them tried twice');
      assert.equal(fs2.callsAnswered, answered + 2);
    } finally {
      fs1.clearAnswerRules();
      fs2.clearAnswerRules();
    }
  });

  it('gives up a backend that answers nothing within balancer.failoverTimeout and completes the call on the next', async () => {
    fs1.setSilent(true);
    try {
      const before = fs2.callsAnswered;
      const r = await aliceCalls('+4969123456', 2);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(fs2.callsAnswered, before + 2);
    } finally {
      fs1.setSilent(false);
    }
  });

  it('rings the user a DID belongs to when a trusted backend calls that number, without asking it for credentials', async () => {
    const incoming = bob.waitForIncoming(5000);
    const calling = fs1.call(`sip:${DID}@${t.addr('udp')}`, { via: t.addr('udp'), from: 'sip:+4915112345678@pstn.invalid' });
    const call = await incoming;
    assert.equal(new URL(call.from.replace(/^sip:/, 'sip://')).username, '+4915112345678');
    assert.match(call.invite, /UDP\/TLS\/RTP\/SAVPF/, 'the offer reaching the softphone was turned into WebRTC by rtpengine');
    const answered = await call.accept();
    const result = await calling;
    assert.equal(result.status, 200);
    assert.match(result.answerSdp ?? '', /RTP\/AVP/, 'the backend gets a plain RTP answer');
    await result.hangup();
    await answered.waitForEnded(5000);
  });

  it('consumes only the caller\'s credentials for our realm; credentials the phone holds for the trunk\'s realm go on', async () => {
    const forTrunk = 'Digest username="alice-at-trunk", realm="trunk.example.net", nonce="abc", uri="sip:+4930777777@trunk.example.net", response="00000000000000000000000000000000"';
    const before = invitesOnBackends();
    const result = await stranger.call(`sip:+4930777777@${DOMAIN}`, {
      via: t.addr('udp'), from: `sip:${ALICE.user}@${DOMAIN}`, credentials: { username: ALICE.user, password: ALICE.password },
      headers: [['Proxy-Authorization', forTrunk]],
    });
    assert.equal(result.status, 200);
    await result.hangup();
    assert.equal(invitesOnBackends(), before + 1);
    const invite = newestInvite();
    assert.deepEqual(invite.headers['proxy-authorization'], [forTrunk]);
  });

  it('answers an untrusted caller who dials a PSTN number 407, and the trunk never sees the INVITE', async () => {
    const before = invitesOnBackends();
    const result = await stranger.call(`sip:+4930999999@${DOMAIN}`, { via: t.addr('udp'), from: `sip:${ALICE.user}@${DOMAIN}` });
    assert.equal(result.status, 407);
    assert.equal(invitesOnBackends(), before);
  });

  it('refuses (403) a caller outside our domains who dials a PSTN number, and the trunk never sees the INVITE', async () => {
    const before = invitesOnBackends();
    const result = await stranger.call(`sip:+4930999999@${DOMAIN}`, { via: t.addr('udp'), from: 'sip:mallory@evil.invalid' });
    assert.equal(result.status, 403);
    assert.equal(invitesOnBackends(), before);
  });

  it('refuses (403) a caller who is neither trusted nor a user of ours and calls a DID', async () => {
    const result = await stranger.call(`sip:${DID}@${DOMAIN}`, { via: t.addr('udp'), from: 'sip:+4915112345678@pstn.invalid' });
    assert.equal(result.status, 403);
  });

  it('answers 404 for a number that matches no dialplan route', async () => {
    const before = invitesOnBackends();
    const r = await aliceCalls('999', 1);
    assert.notEqual(r.code, 0);
    assert.equal(invitesOnBackends(), before);
  });

  it('takes a route added to the store while running after POST /reload (softswitch reload), without a restart', async () => {
    const before = await aliceCalls('0033123456789', 1);
    assert.notEqual(before.code, 0, 'no route for 0033… yet');
    await t.server.store.routing.addRoute({ pattern: '00([1-9][0-9]{6,14})', replace: '+$1', set: 'pstn', priority: 5, description: 'international' });
    const { token } = await t.server.store.tokens.create({ name: 'pstn-test', expiresAt: Date.now() + 60_000 });
    const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { routes: number }).routes, 3);
    const r = await aliceCalls('0033123456789', 1);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(newestInvite().requestUri, new RegExp(`^sip:\\+33123456789@`));
  });

  it('shows each backend\'s health and calls in /health', async () => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/health`);
    const body = (await res.json()) as { backends: Array<{ uri: string; set: string; health: string; activeCalls: number }> };
    assert.deepEqual(body.backends.map((b) => b.uri).sort(), [fs1.uri, fs2.uri].sort());
    for (const b of body.backends) {
      assert.equal(b.set, 'pstn');
      assert.equal(b.activeCalls, 0, 'every call ended with its BYE');
    }
  });
});
