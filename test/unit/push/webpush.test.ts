import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VAPID_FILE, WebPushClient, encodeSubscription, loadVapidKeys, type VapidKeys } from '../../../push/webpush.js';
import type { PushPayload } from '../../../push/types.js';
import { type FakeWebPush, startFakeWebPush } from '../../helpers/fake-webpush.js';
import { captureLogger } from '../../helpers/log-capture.js';
import { silentLogger } from '../../../src/log/index.js';

const call: PushPayload = { kind: 'call', id: 'call-1@example.com', aor: 'alice@example.com', from: 'sip:bob@example.com', fromName: 'Bob' };

describe('loadVapidKeys', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vapid-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('generates a key pair on first start into dataDir/push/vapid.json (folder 0700, file 0600) and reuses it', () => {
    const first = loadVapidKeys({ dataDir: dir, subject: 'mailto:ops@example.com', logger: silentLogger() });
    assert.equal(Buffer.from(first.publicKey, 'base64url').length, 65);
    assert.equal(statSync(join(dir, 'push')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, VAPID_FILE)).mode & 0o777, 0o600);
    const second = loadVapidKeys({ dataDir: dir, subject: 'mailto:ops@example.com', logger: silentLogger() });
    assert.deepEqual(second, first);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, VAPID_FILE), 'utf8')), { publicKey: first.publicKey, privateKey: first.privateKey });
  });

  it('uses the configured pair and writes nothing; one key without the other is an error', () => {
    const keys = loadVapidKeys({ dataDir: dir, publicKey: 'pub', privateKey: 'priv', subject: 'mailto:a@b', logger: silentLogger() });
    assert.deepEqual(keys, { publicKey: 'pub', privateKey: 'priv', subject: 'mailto:a@b' });
    assert.throws(() => statSync(join(dir, 'push')));
    assert.throws(() => loadVapidKeys({ dataDir: dir, publicKey: 'pub', subject: 'mailto:a@b', logger: silentLogger() }), /go together/);
  });
});

describe('WebPushClient against a local push service', () => {
  let service: FakeWebPush;
  let dir: string;
  let vapid: VapidKeys;
  let client: WebPushClient;
  let lines: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'webpush-test-'));
    vapid = loadVapidKeys({ dataDir: dir, subject: 'mailto:ops@example.com', logger: silentLogger() });
    service = await startFakeWebPush({ vapidPublicKey: vapid.publicKey });
  });
  after(async () => {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    service.pushes.length = 0;
    const captured = captureLogger();
    lines = captured.lines;
    client = new WebPushClient({ vapid, ca: service.ca, logger: captured.logger, retryDelaysMs: [20, 40] });
  });
  afterEach(() => client.close());

  it('sends a VAPID-signed push whose payload the subscription decrypts, urgent and short-lived for a call', async () => {
    const subscription = service.subscribe();
    const result = await client.send({ provider: 'webpush', prid: encodeSubscription(subscription) }, call);
    assert.equal(result.ok, true);
    assert.equal(result.status, 201);
    assert.deepEqual(service.refusals, []);
    const push = service.pushes[0]!;
    assert.deepEqual(JSON.parse(push.payload), call);
    assert.equal(push.headers.ttl, '30');
    assert.equal(push.headers.urgency, 'high');
  });

  it('gives a call and its cancel the same topic, so the cancel replaces an undelivered call push', async () => {
    const prid = encodeSubscription(service.subscribe());
    await client.send({ provider: 'webpush', prid }, call);
    await client.send({ provider: 'webpush', prid }, { ...call, kind: 'cancel' });
    assert.equal(service.pushes.length, 2);
    assert.equal(service.pushes[0]!.headers.topic, service.pushes[1]!.headers.topic);
    assert.equal(JSON.parse(service.pushes[1]!.payload).kind, 'cancel');
  });

  it('reports 404 and 410 as a dead subscription', async () => {
    for (const status of [404, 410]) {
      const subscription = service.subscribe();
      service.rule(subscription, { status });
      const result = await client.send({ provider: 'webpush', prid: encodeSubscription(subscription) }, call);
      assert.deepEqual({ ok: result.ok, status: result.status, unregistered: result.unregistered }, { ok: false, status, unregistered: true });
    }
  });

  it('retries 429 and 500 and then succeeds', async () => {
    const subscription = service.subscribe();
    service.rule(subscription, { status: 500, times: 2 });
    assert.equal((await client.send({ provider: 'webpush', prid: encodeSubscription(subscription) }, call)).ok, true);
    assert.equal(service.pushes.length, 1);
  });

  it('refuses a pn-prid that is not a subscription without sending anything', async () => {
    const result = await client.send({ provider: 'webpush', prid: 'not-a-subscription' }, call);
    assert.equal(result.ok, false);
    assert.equal(result.unregistered, true);
    assert.equal(service.pushes.length, 0);
  });

  it('never logs the subscription in full or the payload', async () => {
    const subscription = service.subscribe();
    service.rule(subscription, { status: 410 });
    const prid = encodeSubscription(subscription);
    await client.send({ provider: 'webpush', prid }, { ...call, kind: 'message', body: 'the secret text' });
    const logged = lines.join('');
    assert.match(logged, new RegExp(`"token":"${prid.slice(0, 6)}…"`));
    assert.equal(logged.includes(prid), false);
    assert.equal(logged.includes(subscription.keys.auth), false);
    assert.equal(logged.includes('the secret text'), false);
  });
});
