/**
 * The push call server (RFC 8599) end to end, against a local APNs that checks what Apple checks
 * (support/fake-apns.ts: HTTP/2, ES256 provider token, topic, push type, priority): SIP.js softphones
 * register over WSS with pn-provider/pn-prid/pn-param, go to sleep (their connection dies without an
 * un-REGISTER), are woken by a VoIP push when called, register again on a new connection, and get the
 * INVITE once.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApnsPush, type FakeApns, apnsDeviceToken, apnsPushConfig, startFakeApns } from '../../support/fake-apns.js';
import { IosApps } from '../helpers/push-apps.js';
import { type FakeFcm, type FcmPush, startFakeFcm } from '../helpers/fake-fcm.js';
import { type FakeWebPush, type WebPushDelivery, startFakeWebPush } from '../helpers/fake-webpush.js';
import { encodeSubscription } from '../../push/index.js';
import webPushLibrary from 'web-push';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type FakeFreeswitch, startFakeFreeswitch } from '../helpers/fake-freeswitch.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';
import { type Softphone, type SoftphoneOptions, SoftphoneError, createPhone } from '../helpers/softphone.js';

const DOMAIN = 'example.com';
const DID = '+4930555777';
const ALICE = 'alice-push-secret';
const BOB = 'bob-push-secret';
const { generateVAPIDKeys } = webPushLibrary;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('push call server (RFC 8599): a sleeping app is woken by a push and rings once', { timeout: 120_000 }, () => {
  let apns: FakeApns;
  let t: TestServer;
  let alice: Softphone;
  let keys: string | undefined;
  let fs: FakeFreeswitch;
  let rtpengine: RtpengineHandle;
  let apps: IosApps;

  /** A callee with a sleeping app and a desk phone awake; alice calls: the desk rings, the app is pushed. */
  const callAppAndDesk = async () => {
    const app = apps.next();
    await apps.asleep(app);
    const desk = await createPhone('jssip', { uri: `sip:${app.user}@${DOMAIN}`, password: BOB, wsUrl: `wss://${t.addr('wss')}`, name: 'desk' });
    apps.phones.push(desk);
    await desk.register();
    const onDesk = desk.waitForIncoming(5000);
    const pushed = once(apns, 'push');
    const calling = alice.call(`sip:${app.user}@${DOMAIN}`, { timeoutMs: 10_000 });
    return { app, onDesk, pushed, calling };
  };


  before(async () => {
    apns = await startFakeApns();
    // APNs is the local one: its key written as an operator's .p8, its certificate trusted through push.caFile.
    keys = mkdtempSync(join(tmpdir(), 'softswitch-apns-'));
    // A PSTN call comes from a FreeSWITCH stand-in (plain RTP); rtpengine bridges it to the woken WebRTC app.
    rtpengine = await startRtpengine();
    fs = await startFakeFreeswitch({ host: '127.0.0.2', challengeRegister: false });
    t = await startTestServer({
      push: { wakeTimeout: 3, ...apnsPushConfig(apns, keys) },
      media: { rtpengine: [rtpengine.ng] },
      balancer: { reloadInterval: 0 },
    });
    apps = new IosApps({ apns, domain: DOMAIN, password: BOB, wsUrl: () => `wss://${t.addr('wss')}` });
    await t.server.store.routing.addBackend({ set: 'pstn', uri: fs.uri });
    await t.server.store.routing.addDid({ number: DID, username: 'bobdid', domain: DOMAIN });
    await t.server.reload();
    await t.addUser(`alice@${DOMAIN}`, ALICE);
    await t.addUser(`bobdid@${DOMAIN}`, BOB);
    for (let i = 1; i <= 8; i++) await t.addUser(`bob${i}@${DOMAIN}`, BOB);
    alice = await createPhone('jssip', { uri: `sip:alice@${DOMAIN}`, password: ALICE, wsUrl: `wss://${t.addr('wss')}` });
    await alice.register();
  });

  after(async () => {
    await apps?.stop();
    await alice?.stop();
    await t?.stop();
    await apns?.close();
    await fs?.close();
    await rtpengine?.stop();
    if (keys !== undefined) rmSync(keys, { recursive: true, force: true });
  });

  it('a call to a sleeping app sends one VoIP push; the app registers again on a new connection, gets the INVITE once and answers', async () => {
    const app = apps.next();
    await apps.asleep(app);
    const pushed = once(apns, 'push');
    const calling = alice.call(`sip:${app.user}@${DOMAIN}`, { timeoutMs: 10_000 });
    const [push] = (await pushed) as [ApnsPush];
    assert.equal(push.token, app.token);
    assert.equal(push.payload.kind, 'call');
    assert.equal(push.headers['apns-push-type'], 'voip');
    assert.equal(push.headers['apns-topic'], `${apns.bundleId}.voip`);
    // iOS starts the app; it connects and registers with the same instance id and push token.
    const woken = await apps.phone(app, false);
    const incoming = woken.waitForIncoming(5000);
    await woken.register();
    const answered = await (await incoming).accept();
    const call = await calling;
    await assert.rejects(woken.waitForIncoming(500), SoftphoneError, 'the INVITE came once');
    await call.hangup();
    await answered.waitForEnded(5000);
    assert.equal(apps.pushesTo(app.token, 'call').length, 1, 'one push for the call');
    assert.equal(apps.pushesTo(app.token, 'cancel').length, 0, 'no cancel push for a device that was reached');
  });

  it('an app that registers twice while the INVITE waits (two connections) gets the INVITE once', async () => {
    const app = apps.next();
    await apps.asleep(app);
    const pushed = once(apns, 'push');
    const calling = alice.call(`sip:${app.user}@${DOMAIN}`, { timeoutMs: 10_000 });
    await pushed;
    const first = await apps.phone(app, false);
    const second = await apps.phone(app, false);
    const invites: number[] = [];
    first.onIncoming(() => invites.push(1));
    second.onIncoming(() => invites.push(2));
    await Promise.all([first.register(), second.register()]);
    await sleep(1000);
    assert.equal(invites.length, 1, `one INVITE for the woken app, got ${invites.length}`);
    const phone = invites[0] === 1 ? first : second;
    const answered = await (await phone.waitForIncoming(1000)).accept();
    const call = await calling;
    await call.hangup();
    await answered.waitForEnded(5000);
    assert.equal(apps.pushesTo(app.token, 'call').length, 1);
  });

  it('a device awake and a device asleep: both ring, once each, and the sleeping one is pushed once', async () => {
    const { app, onDesk, pushed, calling } = await callAppAndDesk();
    const deskCall = await onDesk;
    await pushed;
    const woken = await apps.phone(app, false);
    const onMobile = woken.waitForIncoming(5000);
    await woken.register();
    const mobile = await onMobile;
    const answered = await mobile.accept();
    const call = await calling;
    assert.equal((await deskCall.waitForEnded(5000)).cause, 'canceled', 'the desk stops ringing when the app answers');
    await call.hangup();
    await answered.waitForEnded(5000);
    assert.equal(apps.pushesTo(app.token, 'call').length, 1);
  });

  it('another device answers while the app is being woken: the app gets a cancel push and never the INVITE', async () => {
    const { app, onDesk, pushed, calling } = await callAppAndDesk();
    await pushed;
    const answered = await (await onDesk).accept();
    const call = await calling;
    const end = Date.now() + 3000;
    while (apps.pushesTo(app.token, 'cancel').length === 0 && Date.now() < end) await sleep(50);
    assert.equal(apps.pushesTo(app.token, 'cancel').length, 1, 'answered elsewhere: the app stops ringing');
    // The app registers late: the call is taken, no INVITE for it.
    const late = await apps.phone(app, false);
    const invites: number[] = [];
    late.onIncoming(() => invites.push(1));
    await late.register();
    await sleep(500);
    assert.deepEqual(invites, []);
    await call.hangup();
    await answered.waitForEnded(5000);
  });

  it('an app that does not register within push.wakeTimeout: the caller gets 480 and the app a cancel push', async () => {
    const app = apps.next();
    await apps.asleep(app);
    const started = Date.now();
    const progress: number[] = [];
    await assert.rejects(alice.call(`sip:${app.user}@${DOMAIN}`, { timeoutMs: 10_000, onProgress: (status) => progress.push(status) }), (e: SoftphoneError) => e.status === 480);
    const took = Date.now() - started;
    assert.ok(progress.includes(180), `the caller heard ringing while the app was being woken (${progress.join(', ')})`);
    assert.ok(took >= 2500 && took < 6000, `480 after the 3 s wake timeout (${took} ms)`);
    await sleep(200);
    assert.equal(apps.pushesTo(app.token, 'call').length, 1);
    assert.equal(apps.pushesTo(app.token, 'cancel').length, 1, 'the app takes its incoming-call screen down');
  });

  it('the caller hangs up while the app wakes: the app gets a cancel push for that call', async () => {
    const app = apps.next();
    await apps.asleep(app);
    const abort = new AbortController();
    const pushed = once(apns, 'push');
    const calling = alice.call(`sip:${app.user}@${DOMAIN}`, { signal: abort.signal, timeoutMs: 10_000 });
    const [push] = (await pushed) as [ApnsPush];
    await sleep(300);
    abort.abort();
    await assert.rejects(calling, (e: SoftphoneError) => e.code === 'SOFTPHONE_ERR_CANCELED');
    const end = Date.now() + 3000;
    while (apps.pushesTo(app.token, 'cancel').length === 0 && Date.now() < end) await sleep(50);
    const cancel = apps.pushesTo(app.token, 'cancel');
    assert.equal(cancel.length, 1);
    assert.equal(cancel[0]!.payload.id, push.payload.id, 'the cancel names the call the push announced');
  });

  it('a PSTN call to the DID of a sleeping app: pushed, and once it registers its WebRTC leg is bridged to the backend\'s plain RTP by rtpengine', async () => {
    const app = { user: 'bobdid', token: apnsDeviceToken(), instance: randomUUID() };
    await apps.asleep(app);
    const pushed = once(apns, 'push');
    const calling = fs.call(`sip:${DID}@${t.addr('udp')}`, { via: t.addr('udp'), from: 'sip:+4915112345678@pstn.invalid' });
    await pushed;
    const woken = await apps.phone(app, false);
    const incoming = woken.waitForIncoming(5000);
    await woken.register();
    const call = await incoming;
    assert.match(call.invite, /UDP\/TLS\/RTP\/SAVPF/, 'the backend\'s offer reached the app as WebRTC');
    const answered = await call.accept();
    const result = await calling;
    assert.equal(result.status, 200);
    assert.match(result.answerSdp ?? '', /RTP\/AVP/, 'the backend gets a plain RTP answer');
    await result.hangup();
    await answered.waitForEnded(5000);
    assert.equal(apps.pushesTo(app.token, 'call').length, 1);
  });

  it('APNs answers 410 Unregistered: the push binding is removed and the caller gets 480 without waiting', async () => {
    const app = apps.next();
    await apps.asleep(app);
    apns.rule(app.token, { status: 410, reason: 'Unregistered' });
    assert.ok(t.server.registrar.lookup(`sip:${app.user}@${DOMAIN}`).some((b) => b.push?.prid === app.token));
    const started = Date.now();
    await assert.rejects(alice.call(`sip:${app.user}@${DOMAIN}`, { timeoutMs: 10_000 }), (e: SoftphoneError) => e.status === 480);
    assert.ok(Date.now() - started < 2500, 'no wake timeout to wait for');
    assert.ok(!t.server.registrar.lookup(`sip:${app.user}@${DOMAIN}`).some((b) => b.push?.prid === app.token), 'the dead token\'s binding is gone');
  });
});

describe('push call server: an Android app woken through FCM and a browser through Web Push', { timeout: 60_000 }, () => {
  let fcm: FakeFcm;
  let webpush: FakeWebPush;
  let t: TestServer;
  let alice: Softphone;
  let dir: string;
  const phones: Softphone[] = [];

  before(async () => {
    fcm = await startFakeFcm();
    const vapid = generateVAPIDKeys();
    webpush = await startFakeWebPush({ vapidPublicKey: vapid.publicKey });
    dir = mkdtempSync(join(tmpdir(), 'softswitch-fcm-'));
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, `${fcm.ca}\n${webpush.ca}`);
    t = await startTestServer({
      push: {
        wakeTimeout: 5, caFile,
        fcm: { serviceAccountFile: fcm.writeServiceAccount(dir), endpoint: fcm.url },
        webpush: { publicKey: vapid.publicKey, privateKey: vapid.privateKey },
      },
    });
    await t.addUser(`alice@${DOMAIN}`, ALICE);
    await t.addUser(`carol@${DOMAIN}`, BOB);
    await t.addUser(`dave@${DOMAIN}`, BOB);
    alice = await createPhone('jssip', { uri: `sip:alice@${DOMAIN}`, password: ALICE, wsUrl: `wss://${t.addr('wss')}` });
    await alice.register();
  });

  after(async () => {
    for (const p of phones) await p.stop();
    await alice?.stop();
    await t?.stop();
    await Promise.all([fcm?.close(), webpush?.close()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** Registers `user` with these push parameters, puts the app to sleep, calls it, and wakes a new instance on the push. */
  async function wakeAndAnswer(user: string, contactParams: Record<string, string>, pushed: Promise<unknown>): Promise<void> {
    const instanceId = randomUUID();
    const options: SoftphoneOptions = { uri: `sip:${user}@${DOMAIN}`, password: BOB, wsUrl: `wss://${t.addr('wss')}`, instanceId, contactParams };
    const first = await createPhone('sip.js', options);
    phones.push(first);
    await first.register();
    await first.sleep();
    await sleep(200);
    const calling = alice.call(`sip:${user}@${DOMAIN}`, { timeoutMs: 10_000 });
    await pushed;
    const woken = await createPhone('sip.js', options);
    phones.push(woken);
    const incoming = woken.waitForIncoming(5000);
    await woken.register();
    const answered = await (await incoming).accept();
    const call = await calling;
    await call.hangup();
    await answered.waitForEnded(5000);
  }

  it('an Android app: a data-only FCM push (HIGH priority, ttl 0s) with the call, then the INVITE once it registers', async () => {
    const token = `fcm-${randomUUID()}`;
    const pushed = once(fcm, 'push') as Promise<[FcmPush]>;
    await wakeAndAnswer('carol', { 'pn-provider': 'fcm', 'pn-prid': token, 'pn-param': fcm.projectId }, pushed);
    const [push] = await pushed;
    assert.equal(push.token, token);
    assert.equal(push.data.kind, 'call');
    assert.equal(push.android.priority, 'HIGH');
    assert.equal(fcm.pushes.filter((p) => p.token === token && p.data.kind === 'call').length, 1);
  });

  it('a browser: a Web Push encrypted to its subscription (decrypted by the push service stand-in), then the INVITE once it registers', async () => {
    const subscription = webpush.subscribe();
    const pushed = once(webpush, 'push') as Promise<[WebPushDelivery]>;
    await wakeAndAnswer('dave', { 'pn-provider': 'webpush', 'pn-prid': encodeSubscription(subscription) }, pushed);
    const [push] = await pushed;
    const payload = JSON.parse(push.payload) as { kind: string; aor: string };
    assert.equal(payload.kind, 'call');
    assert.equal(payload.aor, `dave@${DOMAIN}`);
  });
});
