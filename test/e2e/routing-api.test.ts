/**
 * The routing resources of /v1 on a whole softswitch (balancer/routes.ts as server/app.ts mounts it): a
 * backend and a dialplan route added over HTTP with an admin token carry the next call, with no reload by
 * hand; after the route is deleted over HTTP the number reaches no backend. The backend is the FreeSWITCH
 * stand-in of test/helpers/fake-freeswitch.ts on 127.0.0.2; the caller is SIPp on 127.0.0.1.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type FakeFreeswitch, startFakeFreeswitch } from '../helpers/fake-freeswitch.js';
import { runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';

const DOMAIN = 'example.com';
const ALICE = { user: 'alice', password: 'alice-routing-api-secret' };

describe('routing data added over /v1 routes the next call at once', () => {
  let t: TestServer;
  let fs1: FakeFreeswitch;
  let rtpengine: RtpengineHandle;
  let adminToken: string;

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/v1${path}`, {
      method, signal: AbortSignal.timeout(10_000),
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };

  /** alice calls `number` with SIPp over UDP (407, then the authenticated INVITE); the SIPp result. */
  const aliceCalls = (number: string) => runSipp({
    scenario: 'fs-uac-pstn-call.xml', target: t.addr('udp'), calls: 1, rate: 1, timeoutSeconds: 15,
    extra: ['-key', 'aor_user', ALICE.user, '-key', 'aor_domain', DOMAIN, '-key', 'callee', number,
      '-au', ALICE.user, '-ap', ALICE.password, '-auth_uri', `${number}@${DOMAIN}`],
  });

  before(async () => {
    fs1 = await startFakeFreeswitch({ host: '127.0.0.2', challengeRegister: false });
    rtpengine = await startRtpengine();
    // No periodic reload: only the API's own reload can make the new rows count.
    t = await startTestServer({ balancer: { probeInterval: 1, failoverTimeout: 1, reloadInterval: 0 }, media: { rtpengine: [rtpengine.ng] } });
    await t.addUser(`${ALICE.user}@${DOMAIN}`, ALICE.password);
    adminToken = (await t.server.store.tokens.create({ name: 'routing-api-test', expiresAt: Date.now() + 600_000 })).token;
  });

  after(async () => {
    await t?.stop();
    await fs1?.close();
    await rtpengine?.stop();
  });

  it('sends a call to a national number to the backend added over the API, rewritten by the route added over the API', async () => {
    const backend = await api('POST', '/backends', { set: 'pstn', uri: fs1.uri });
    assert.equal(backend.status, 201, JSON.stringify(backend.body));
    const route = await api('POST', '/routes', { pattern: '0([1-9][0-9]{5,12})', replace: '+49$1', set: 'pstn', priority: 10 });
    assert.equal(route.status, 201, JSON.stringify(route.body));
    const list = (await api('GET', '/backends')).body.backends as Array<{ id: number; health: string }>;
    assert.deepEqual(list.map((b) => b.id), [backend.body.id], 'the list shows the backend with its live health');
    assert.notEqual(list[0]!.health, 'not loaded', 'the balancer has loaded it');

    const r = await aliceCalls('0301234567');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(fs1.invites.length, 1, 'the call reached the backend');
    assert.match(fs1.invites[0]!.requestUri, /^sip:\+49301234567@127\.0\.0\.2:\d+/);

    assert.equal((await api('DELETE', `/routes/${route.body.id}`)).status, 204);
    const after = await aliceCalls('0301234567');
    assert.notEqual(after.code, 0, 'with the route gone the call fails');
    assert.equal(fs1.invites.length, 1, 'and reaches no backend');
  });
});
