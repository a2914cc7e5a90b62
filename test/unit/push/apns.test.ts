import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { ApnsClient, apnsTopic } from '../../../push/apns.js';
import type { PushPayload } from '../../../push/types.js';
import { type FakeApns, apnsDeviceToken, startFakeApns } from '../../../support/fake-apns.js';
import { captureLogger } from '../../helpers/log-capture.js';

const call: PushPayload = { kind: 'call', id: 'call-1@example.com', aor: 'alice@example.com', from: 'sip:bob@example.com', fromName: 'Bob' };

describe('ApnsClient against a local APNs', () => {
  let apns: FakeApns;
  let client: ApnsClient;
  let lines: string[];

  before(async () => {
    apns = await startFakeApns();
  });
  after(() => apns.close());

  function newClient(extra: Partial<ConstructorParameters<typeof ApnsClient>[0]> = {}): ApnsClient {
    const captured = captureLogger();
    lines = captured.lines;
    return new ApnsClient({
      key: apns.keyPem, keyId: apns.keyId, teamId: apns.teamId, bundleId: apns.bundleId,
      endpoint: apns.url, ca: apns.ca, logger: captured.logger, retryDelaysMs: [20, 40], ...extra,
    });
  }
  beforeEach(() => {
    apns.pushes.length = 0;
    client = newClient();
  });
  afterEach(() => client.close());

  it('sends a call as a VoIP push with a provider token Apple accepts, and the payload arrives', async () => {
    const token = apnsDeviceToken();
    const result = await client.send({ provider: 'apns', prid: token }, call);
    assert.equal(result.ok, true);
    assert.equal(result.status, 200);
    assert.match(result.id ?? '', /^[0-9a-f-]{36}$/);
    const push = apns.pushes[0]!;
    assert.equal(push.token, token);
    assert.equal(push.headers['apns-push-type'], 'voip');
    assert.equal(push.headers['apns-topic'], `${apns.bundleId}.voip`);
    assert.equal(push.headers['apns-priority'], '10');
    assert.equal(push.headers['apns-expiration'], '0');
    assert.deepEqual(push.payload, { aps: {}, ...call });
  });

  it('sends a message as an alert push to the bundle topic, with a visible alert', async () => {
    const result = await client.send({ provider: 'apns', prid: apnsDeviceToken() }, { kind: 'message', id: 'm1', aor: 'alice@example.com', from: 'sip:bob@example.com' });
    assert.equal(result.ok, true);
    const push = apns.pushes[0]!;
    assert.equal(push.headers['apns-push-type'], 'alert');
    assert.equal(push.headers['apns-topic'], apns.bundleId);
    assert.deepEqual((push.payload.aps as { alert: unknown }).alert, { title: 'sip:bob@example.com', body: 'New message' });
  });

  it('takes the topic from pn-param when it names our team, else from the configured bundle', () => {
    const options = { teamId: 'TEAM123456', bundleId: 'com.example.phone' };
    const device = (param?: string) => ({ provider: 'apns' as const, prid: 'x', param });
    assert.equal(apnsTopic(device('TEAM123456.com.example.other.voip'), options, true), 'com.example.other.voip');
    assert.equal(apnsTopic(device('TEAM123456.com.example.other.voip'), options, false), 'com.example.other');
    assert.equal(apnsTopic(device('TEAM123456.com.example.other'), options, true), 'com.example.other.voip');
    assert.equal(apnsTopic(device('OTHERTEAM1.com.example.other.voip'), options, true), 'com.example.phone.voip');
    assert.equal(apnsTopic(device(), options, false), 'com.example.phone');
  });

  it('sends to the bundle the device names in pn-param', async () => {
    const result = await client.send({ provider: 'apns', prid: apnsDeviceToken(), param: `${apns.teamId}.${apns.bundleId}.voip` }, call);
    assert.equal(result.ok, true);
    assert.equal(apns.pushes[0]!.headers['apns-topic'], `${apns.bundleId}.voip`);
  });

  it('reuses one provider token and one HTTP/2 connection across pushes', async () => {
    const opened = apns.connections;
    for (let i = 0; i < 3; i++) assert.equal((await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call)).ok, true);
    assert.equal(new Set(apns.pushes.map((p) => p.jwt)).size, 1);
    assert.equal(apns.connections - opened, 1);
  });

  it('makes a new provider token once the old one has been used for its lifetime', async () => {
    await client.close();
    client = newClient({ tokenLifetimeMs: 30 });
    await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call);
    await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call);
    await new Promise((resolve) => setTimeout(resolve, 40));
    await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call);
    const jwts = apns.pushes.map((p) => p.jwt);
    assert.equal(jwts[0], jwts[1]);
    assert.notEqual(jwts[1], jwts[2]);
  });

  it('on ExpiredProviderToken makes a new provider token at once and the push goes through', async () => {
    await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call);
    apns.expireProviderTokens();
    const refusedBefore = apns.refusals.length;
    const result = await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call);
    assert.equal(result.ok, true);
    assert.deepEqual(apns.refusals.slice(refusedBefore), ['ExpiredProviderToken']);
    assert.notEqual(apns.pushes[0]!.jwt, apns.pushes[1]!.jwt);
  });

  it('reports 410 Unregistered and 400 BadDeviceToken as a dead device token', async () => {
    const gone = apnsDeviceToken();
    apns.rule(gone, { status: 410 });
    assert.deepEqual(pick(await client.send({ provider: 'apns', prid: gone }, call)), { ok: false, status: 410, reason: 'Unregistered', unregistered: true });
    const bad = apnsDeviceToken();
    apns.rule(bad, { status: 400, reason: 'BadDeviceToken' });
    assert.deepEqual(pick(await client.send({ provider: 'apns', prid: bad }, call)), { ok: false, status: 400, reason: 'BadDeviceToken', unregistered: true });
    assert.equal(apns.pushes.length, 0);
    assert.deepEqual(apns.ruled.slice(-2).map((r) => [r.token, r.status]), [[gone, 410], [bad, 400]]);
  });

  it('retries 429 and 500 and then succeeds; gives up after three tries', async () => {
    const throttled = apnsDeviceToken();
    apns.rule(throttled, { status: 429, times: 1 });
    const failing = apnsDeviceToken();
    apns.rule(failing, { status: 500, times: 2 });
    assert.equal((await client.send({ provider: 'apns', prid: throttled }, call)).ok, true);
    assert.equal((await client.send({ provider: 'apns', prid: failing }, call)).ok, true);
    const down = apnsDeviceToken();
    apns.rule(down, { status: 500, times: 3 });
    assert.deepEqual(pick(await client.send({ provider: 'apns', prid: down }, call)), { ok: false, status: 500, reason: 'InternalServerError', unregistered: false });
    assert.equal(apns.pushes.length, 2);
  });

  it('keeps the connection alive with HTTP/2 pings between pushes', async () => {
    await client.close();
    client = newClient({ pingIntervalMs: 20 });
    const pings = apns.pings;
    await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call);
    await new Promise((resolve) => setTimeout(resolve, 110));
    assert.ok(apns.pings - pings >= 3, `${apns.pings - pings} pings`);
  });

  it('opens a new connection after APNs drops the old one', async () => {
    const opened = apns.connections;
    assert.equal((await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call)).ok, true);
    apns.dropConnections();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await client.send({ provider: 'apns', prid: apnsDeviceToken() }, call)).ok, true);
    assert.equal(apns.connections - opened, 2);
    assert.equal(apns.pushes.length, 2);
  });

  it('never logs a device token in full or the payload', async () => {
    const token = apnsDeviceToken();
    apns.rule(token, { status: 410 });
    await client.send({ provider: 'apns', prid: token }, { ...call, kind: 'message', body: 'the secret text' });
    const logged = lines.join('');
    assert.match(logged, new RegExp(`"token":"${token.slice(0, 6)}…"`));
    assert.equal(logged.includes(token), false);
    assert.equal(logged.includes('the secret text'), false);
  });
});

function pick(r: { ok: boolean; status: number; reason?: string | undefined; unregistered?: boolean | undefined }): object {
  return { ok: r.ok, status: r.status, reason: r.reason, unregistered: r.unregistered };
}
