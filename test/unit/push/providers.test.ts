import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../../platform/config/index.js';
import { createPushProviders } from '../../../push/providers.js';
import { encodeSubscription } from '../../../push/webpush.js';
import type { PushPayload } from '../../../push/types.js';
import { apnsDeviceToken, startFakeApns, type FakeApns } from '../../../support/fake-apns.js';
import { startFakeFcm, type FakeFcm } from '../../helpers/fake-fcm.js';
import { startFakeWebPush, type FakeWebPush } from '../../helpers/fake-webpush.js';
import { captureLogger } from '../../helpers/log-capture.js';

function refused(overrides: Record<string, unknown>, key: string): void {
  assert.throws(() => loadConfig({ env: {}, overrides }), (err: unknown) => err instanceof ConfigError && err.key === key);
}

describe('push configuration', () => {
  it('has defaults that need no credentials, and a VAPID subject from the first SIP domain', () => {
    const c = loadConfig({ env: {}, overrides: { 'sip.domain': ['example.com', 'example.org'] } });
    assert.deepEqual({ ...c.push, apns: undefined, fcm: undefined }, {
      enabled: true, wakeTimeout: 20, ringingWhileWaking: true, includeContent: false, apns: undefined, fcm: undefined,
      webpush: { subject: 'mailto:admin@example.com' },
    });
    assert.deepEqual(c.push.apns, { endpoint: 'https://api.push.apple.com' });
    assert.deepEqual(c.push.fcm, { endpoint: 'https://fcm.googleapis.com' });
  });

  it('stops the start on a bad value, naming the key', () => {
    refused({ 'push.wakeTimeout': 0 }, 'push.wakeTimeout');
    refused({ 'push.wakeTimeout': 121 }, 'push.wakeTimeout');
    refused({ 'push.apns.endpoint': 'http://api.push.apple.com' }, 'push.apns.endpoint');
    refused({ 'push.fcm.endpoint': 'not a url' }, 'push.fcm.endpoint');
    refused({ 'push.webpush.subject': 'admin@example.com' }, 'push.webpush.subject');
    refused({ 'push.apns.keyid': 'X' }, 'push.apns');
  });

  it('wants the four APNs credentials together and names the first one missing', () => {
    refused({ 'push.apns.keyFile': '/etc/softswitch/AuthKey.p8', 'push.apns.keyId': 'ABC123DEFG' }, 'push.apns.teamId');
    refused({ 'push.apns.bundleId': 'com.example.phone' }, 'push.apns.keyFile');
    refused({ 'push.webpush.publicKey': 'B'.repeat(87) }, 'push.webpush.privateKey');
  });

  it('never repeats a refused VAPID private key', () => {
    assert.throws(() => loadConfig({ env: {}, overrides: { 'push.webpush.privateKey': 'secret-but-too-short' } }), (err: unknown) =>
      err instanceof ConfigError && !err.message.includes('secret-but-too-short'));
  });
});

describe('createPushProviders', () => {
  let dir: string;
  let apns: FakeApns;
  let fcm: FakeFcm;
  let webpush: FakeWebPush;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'push-providers-'));
    [apns, fcm, webpush] = await Promise.all([startFakeApns(), startFakeFcm(), startFakeWebPush()]);
  });
  after(async () => {
    await Promise.all([apns.close(), fcm.close(), webpush.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('without credentials has Web Push only, with one line saying how to enable APNs and one for FCM', async () => {
    const { logger, lines } = captureLogger();
    const providers = createPushProviders(loadConfig({ env: {} }).push, { dataDir: join(dir, 'bare'), logger });
    assert.deepEqual([...providers.keys()], ['webpush']);
    const info = lines.map((l) => JSON.parse(l) as { msg: string }).filter((l) => / pushes off: /.test(l.msg));
    assert.equal(info.length, 2);
    assert.match(info[0]!.msg, /push\.apns\.keyFile, keyId, teamId and bundleId/);
    assert.match(info[1]!.msg, /push\.fcm\.serviceAccountFile/);
    await Promise.all([...providers.values()].map((c) => c.close()));
  });

  it('builds every configured provider, and each one delivers to its service', async () => {
    const keyFile = join(dir, 'AuthKey.p8');
    writeFileSync(keyFile, apns.keyPem, { mode: 0o600 });
    const config = loadConfig({
      env: {},
      overrides: {
        'push.apns': { keyFile, keyId: apns.keyId, teamId: apns.teamId, bundleId: apns.bundleId, endpoint: apns.url },
        'push.fcm': { serviceAccountFile: fcm.writeServiceAccount(dir), endpoint: fcm.url },
      },
    });
    // The three fakes have certificates of their own; the clients trust all three.
    const providers = createPushProviders(config.push, { dataDir: dir, logger: captureLogger().logger, ca: [apns.ca, fcm.ca, webpush.ca] });
    assert.deepEqual([...providers.keys()], ['apns', 'fcm', 'webpush']);
    const payload: PushPayload = { kind: 'call', id: 'c1', aor: 'alice@example.com', from: 'sip:bob@example.com' };
    const results = await Promise.all([
      providers.get('apns')!.send({ provider: 'apns', prid: apnsDeviceToken() }, payload),
      providers.get('fcm')!.send({ provider: 'fcm', prid: 'fcm-device' }, payload),
      providers.get('webpush')!.send({ provider: 'webpush', prid: encodeSubscription(webpush.subscribe()) }, payload),
    ]);
    assert.deepEqual(results.map((r) => [r.ok, r.reason]), [[true, undefined], [true, undefined], [true, undefined]]);
    assert.deepEqual([apns.pushes.length, fcm.pushes.length, webpush.pushes.length], [1, 1, 1]);
    await Promise.all([...providers.values()].map((c) => c.close()));
  });

  it('stops with the configuration key when a credential file is unusable', () => {
    const config = loadConfig({ env: {}, overrides: { 'push.fcm.serviceAccountFile': join(dir, 'missing.json') } });
    assert.throws(() => createPushProviders(config.push, { dataDir: dir, logger: captureLogger().logger }), /^Error: configuration key push\.fcm\.serviceAccountFile: .*ENOENT/);
  });
});
