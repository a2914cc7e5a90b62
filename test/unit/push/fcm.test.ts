import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FcmClient } from '../../../push/fcm.js';
import type { PushPayload } from '../../../push/types.js';
import { type FakeFcm, startFakeFcm } from '../../helpers/fake-fcm.js';
import { captureLogger } from '../../helpers/log-capture.js';

const call: PushPayload = { kind: 'call', id: 'call-1@example.com', aor: 'alice@example.com', from: 'sip:bob@example.com', fromName: 'Bob' };
let n = 0;
const fcmToken = (): string => `fcm-token-${++n}-${'x'.repeat(140)}`;

describe('FcmClient against a local FCM', () => {
  let fcm: FakeFcm;
  let dir: string;
  let client: FcmClient;
  let lines: string[];

  before(async () => {
    fcm = await startFakeFcm();
    dir = mkdtempSync(join(tmpdir(), 'fcm-test-'));
  });
  after(async () => {
    await fcm.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fcm.pushes.length = 0;
    fcm.accessTokenLifetime = 3599;
    const captured = captureLogger();
    lines = captured.lines;
    client = new FcmClient({ serviceAccountFile: fcm.writeServiceAccount(dir), endpoint: fcm.url, ca: fcm.ca, logger: captured.logger, retryDelaysMs: [20, 40] });
  });

  it('gets an access token with a JWT grant from the service account and sends a data-only high-priority message', async () => {
    const token = fcmToken();
    const result = await client.send({ provider: 'fcm', prid: token }, call);
    assert.equal(result.ok, true);
    assert.match(result.id ?? '', new RegExp(`^projects/${fcm.projectId}/messages/`));
    const push = fcm.pushes[0]!;
    assert.equal(push.token, token);
    assert.deepEqual(push.data, { kind: 'call', id: call.id, aor: call.aor, from: call.from, fromName: 'Bob' });
    assert.deepEqual(push.android, { priority: 'HIGH', ttl: '0s' });
  });

  it('reuses the access token until shortly before it expires, then makes a new grant', async () => {
    const grants = fcm.grants;
    for (let i = 0; i < 3; i++) await client.send({ provider: 'fcm', prid: fcmToken() }, call);
    assert.equal(fcm.grants - grants, 1);
    assert.equal(new Set(fcm.pushes.map((p) => p.accessToken)).size, 1);
    // A token with 60 s left is within the margin: the next push asks for a new one.
    fcm.accessTokenLifetime = 60;
    const client2 = new FcmClient({ serviceAccount: fcm.serviceAccount, endpoint: fcm.url, ca: fcm.ca, logger: captureLogger().logger });
    await client2.send({ provider: 'fcm', prid: fcmToken() }, call);
    await client2.send({ provider: 'fcm', prid: fcmToken() }, call);
    assert.equal(fcm.grants - grants, 3);
  });

  it('asks for one access token for pushes sent at the same time', async () => {
    const grants = fcm.grants;
    const results = await Promise.all([1, 2, 3].map(() => client.send({ provider: 'fcm', prid: fcmToken() }, call)));
    assert.deepEqual(results.map((r) => r.ok), [true, true, true]);
    assert.equal(fcm.grants - grants, 1);
  });

  it('on 401 gets a new access token once and the push goes through', async () => {
    await client.send({ provider: 'fcm', prid: fcmToken() }, call);
    fcm.revokeAccessTokens();
    const result = await client.send({ provider: 'fcm', prid: fcmToken() }, call);
    assert.equal(result.ok, true);
    assert.notEqual(fcm.pushes[0]!.accessToken, fcm.pushes[1]!.accessToken);
  });

  it('reports UNREGISTERED (404) as a dead device token', async () => {
    const gone = fcmToken();
    fcm.rule(gone, { status: 404 });
    const result = await client.send({ provider: 'fcm', prid: gone }, call);
    assert.deepEqual({ ok: result.ok, status: result.status, reason: result.reason, unregistered: result.unregistered }, { ok: false, status: 404, reason: 'UNREGISTERED', unregistered: true });
  });

  it('retries 429 and 500 and then succeeds; gives up after three tries', async () => {
    const throttled = fcmToken();
    fcm.rule(throttled, { status: 429, times: 2 });
    assert.equal((await client.send({ provider: 'fcm', prid: throttled }, call)).ok, true);
    const down = fcmToken();
    fcm.rule(down, { status: 500, times: 3 });
    const result = await client.send({ provider: 'fcm', prid: down }, call);
    assert.deepEqual({ ok: result.ok, status: result.status, unregistered: result.unregistered }, { ok: false, status: 500, unregistered: false });
    assert.equal(fcm.pushes.length, 1);
  });

  it('never logs a device token in full or the payload', async () => {
    const token = fcmToken();
    fcm.rule(token, { status: 404 });
    await client.send({ provider: 'fcm', prid: token }, { ...call, kind: 'message', body: 'the secret text' });
    const logged = lines.join('');
    assert.match(logged, /"token":"fcm-to…"/);
    assert.equal(logged.includes(token), false);
    assert.equal(logged.includes('the secret text'), false);
  });
});
