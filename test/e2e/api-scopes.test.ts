/**
 * What a user access token may do on a whole softswitch: read and write only its own user's resources, call
 * no admin-only operation of the document, and stop working once revoked (signed out, password changed by
 * an admin, user deleted) or expired (RFC 6750 §3.1: invalid_token, 401; insufficient_scope, 403).
 *
 * Resources a request names by their user (`?user=`, `/users/:user/…`) are refused 403 to another user's
 * token. Resources named by an unguessable id (a call, a conversation and its messages, a file) are answered
 * to a user who may not see them as if they did not exist (404, as their routes document), so an id tells a
 * stranger nothing; either way no byte of them is answered.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { UserTokens, loadTokenKey } from '../../platform/http/index.js';
import { SqlRefreshTokenRepository } from '../../platform/store/index.js';
import { silentLogger } from '../../src/log/index.js';
import {
  API_DOMAIN, API_TOKEN_SECRET, type ApiAnswer, type ApiRequest, type ApiServer, VIAS, addBinding, conforms, recordCall, securityOf, startApiServer,
} from '../helpers/api-client.js';

const ALICE = `alice@${API_DOMAIN}`;
const BOB = `bob@${API_DOMAIN}`;
const CAROL = `carol@${API_DOMAIN}`;
const enc = encodeURIComponent;

describe('a user token reads and writes only its own user\'s resources', { timeout: 60_000 }, () => {
  let api: ApiServer;
  let alice: string;
  let bob: string;
  /** bob's: a call with carol, a conversation with carol and a message in it, a file, a phone, a presence list. */
  const bobs = { call: 'scopes-bob-call', conversation: '', message: '', file: '', contact: '' };
  const alices = { call: 'scopes-alice-call', conversation: '', file: '', contact: '' };

  const send = (request: ApiRequest): Promise<ApiAnswer> => api.send('http', request);
  const asAlice = (method: string, url: string, json?: unknown) => send({ method, url, token: alice, json });
  const text = (answer: ApiAnswer) => answer.bytes.toString('utf8');
  /** Sends and asserts a 2xx: the JSON answer. */
  const ok = async (request: ApiRequest): Promise<Record<string, unknown>> => {
    const res = await send(request);
    assert.ok(res.status >= 200 && res.status < 300, `${request.method} ${request.url}: ${res.status} ${text(res)}`);
    return (res.json ?? {}) as Record<string, unknown>;
  };

  before(async () => {
    api = await startApiServer(['alice', 'bob', 'carol', 'dave', 'erin', 'frank']);
    alice = await api.signIn('alice');
    bob = await api.signIn('bob');
    await recordCall(api, bobs.call, 'bob', 'carol');
    await recordCall(api, alices.call, 'alice', 'carol');
    bobs.conversation = String((await ok({ method: 'POST', url: '/v1/conversations', token: bob, json: { peer: CAROL } })).id);
    bobs.message = String((await ok({ method: 'POST', url: `/v1/conversations/${bobs.conversation}/messages`, token: bob, json: { body: 'for carol only' } })).id);
    bobs.file = String((await ok({ method: 'POST', url: '/v1/files', token: bob, raw: { contentType: 'text/plain', data: 'bob\'s secret file' } })).id);
    bobs.contact = addBinding(api, BOB, 51_001);
    await ok({ method: 'PUT', url: `/v1/presence/allow/${CAROL}`, token: bob });
    alices.conversation = String((await ok({ method: 'POST', url: '/v1/conversations', token: alice, json: { peer: CAROL } })).id);
    await ok({ method: 'POST', url: `/v1/conversations/${alices.conversation}/messages`, token: alice, json: { body: 'hello carol' } });
    alices.file = String((await ok({ method: 'POST', url: '/v1/files', token: alice, raw: { contentType: 'text/plain', data: 'alice\'s file' } })).id);
    alices.contact = addBinding(api, ALICE, 51_002);
  });

  after(async () => {
    await api?.stop();
  });

  it('answers alice\'s own calls, devices, presence list, ICE servers, conversation and file to her token (200)', async () => {
    const calls = await asAlice('GET', '/v1/calls');
    assert.equal(calls.status, 200);
    assert.deepEqual((calls.json as { calls: Array<{ id: string }> }).calls.map((c) => c.id), [alices.call], 'only her call, not bob\'s');
    assert.equal((await asAlice('GET', `/v1/calls?user=${ALICE}`)).status, 200);
    assert.equal((await asAlice('GET', `/v1/calls/${alices.call}`)).status, 200);
    const devices = await asAlice('GET', `/v1/users/${ALICE}/devices`);
    assert.equal(devices.status, 200);
    assert.deepEqual((devices.json as { devices: Array<{ contact: string }> }).devices.map((d) => d.contact), [alices.contact]);
    assert.equal((await asAlice('GET', '/v1/presence/allow')).status, 200);
    assert.equal((await asAlice('GET', `/v1/presence/allow?user=${ALICE}`)).status, 200);
    assert.equal((await asAlice('GET', '/v1/ice-servers')).status, 200);
    assert.equal((await asAlice('GET', `/v1/conversations/${alices.conversation}/messages`)).status, 200);
    const file = await asAlice('GET', `/v1/files/${alices.file}`);
    assert.equal(file.status, 200);
    assert.equal(text(file), 'alice\'s file');
  });

  it('refuses alice\'s token 403 on what names bob: his call history, devices, presence allow list and ICE credentials', async () => {
    for (const [method, url] of [
      ['GET', `/v1/calls?user=${BOB}`],
      ['GET', `/v1/users/${BOB}/devices`],
      ['DELETE', `/v1/users/${BOB}/devices?contact=${enc(bobs.contact)}`],
      ['GET', `/v1/presence/allow?user=${BOB}`],
      ['PUT', `/v1/presence/allow/${ALICE}?user=${BOB}`],
      ['DELETE', `/v1/presence/allow/${CAROL}?user=${BOB}`],
      ['GET', `/v1/ice-servers?user=${BOB}`],
    ] as const) {
      const res = await asAlice(method, url);
      assert.equal(res.status, 403, `${method} ${url} with alice's token: ${res.status} ${text(res)}`);
      assert.ok(!text(res).includes('192.0.2.9') && !text(res).includes('carol'), `nothing of bob's in ${text(res)}`);
    }
    // Nothing changed: bob's phone is still bound and his list is his own.
    const devices = await ok({ method: 'GET', url: `/v1/users/${BOB}/devices`, token: bob });
    assert.deepEqual((devices.devices as Array<{ contact: string }>).map((d) => d.contact), [bobs.contact]);
    assert.deepEqual((await ok({ method: 'GET', url: '/v1/presence/allow', token: bob })).watchers, [CAROL]);
  });

  it('answers bob\'s call, conversation, messages and file to alice\'s token as if they did not exist (404), and changes nothing', async () => {
    for (const [method, url, json] of [
      ['GET', `/v1/calls/${bobs.call}`],
      ['GET', `/v1/conversations/${bobs.conversation}/messages`],
      ['GET', `/v1/conversations/${bobs.conversation}/search?q=carol`],
      ['POST', `/v1/conversations/${bobs.conversation}/messages`, { body: 'let me in' }],
      ['POST', `/v1/conversations/${bobs.conversation}/read`, { messageId: bobs.message }],
      ['GET', `/v1/messages/${bobs.message}/receipts`],
      ['DELETE', `/v1/messages/${bobs.message}`],
      ['GET', `/v1/files/${bobs.file}`],
      ['DELETE', `/v1/files/${bobs.file}`],
    ] as const) {
      const res = await asAlice(method, url, json);
      assert.equal(res.status, 404, `${method} ${url} with alice's token: ${res.status} ${text(res)}`);
      assert.ok(!text(res).includes('for carol only') && !text(res).includes('secret file'), `nothing of bob's in ${text(res)}`);
    }
    const page = await ok({ method: 'GET', url: `/v1/conversations/${bobs.conversation}/messages`, token: bob });
    assert.deepEqual((page.messages as Array<{ body: string }>).map((m) => m.body), ['for carol only'], 'alice\'s message was not stored');
    const file = await send({ method: 'GET', url: `/v1/files/${bobs.file}`, token: bob });
    assert.equal(file.status, 200, 'bob\'s file is still there');
    assert.equal(text(file), 'bob\'s secret file');
  });

  it('refuses a user token 403 (insufficient_scope) on every admin-only operation of the document, via inject and over HTTP', async () => {
    const adminOnly = [...api.operations].filter(([, op]) => {
      const security = securityOf(api.doc, op);
      return security.length > 0 && !security.some((s) => 'userToken' in s);
    });
    assert.ok(adminOnly.some(([key]) => key === 'GET /v1/users'), `the admin-only operations read as expected: ${adminOnly.map(([k]) => k).join(', ')}`);
    for (const [key] of adminOnly) {
      const [method, path] = key.split(' ') as [string, string];
      // Any value fills the path: the token is refused before the route runs.
      const url = path.replace(/\{[^}]+\}/g, 'x');
      for (const via of VIAS) {
        const res = await api.send(via, { method, url, token: alice });
        assert.equal(res.status, 403, `${via} ${key} with a user token: ${res.status} ${text(res)}`);
        assert.match(res.challenge, /error="insufficient_scope"/, `${via} ${key}: WWW-Authenticate`);
        // The document says so: every operation lists the token check's refusals, in the error shape.
        conforms(api, key, res, `${via} ${key} with a user token`);
      }
    }
    assert.equal((await ok({ method: 'GET', url: `/v1/users/${ALICE}`, token: api.admin })).user !== undefined, true, 'alice was not touched');
  });

  /** Asserts the token is refused as invalid (401, invalid_token) on a route any user token may call. */
  async function refusedAsInvalid(token: string, what: string): Promise<void> {
    for (const via of VIAS) {
      const res = await api.send(via, { method: 'GET', url: '/v1/calls', token });
      assert.equal(res.status, 401, `${via} ${what}: ${res.status} ${text(res)}`);
      assert.match(res.challenge, /error="invalid_token"/, `${via} ${what}: WWW-Authenticate`);
      conforms(api, 'GET /v1/calls', res, `${via} ${what}`);
    }
  }

  it('refuses an access token after its sign-out (DELETE /v1/auth/token), and its refresh token; the user\'s other session goes on', async () => {
    const grant = await ok({ method: 'POST', url: '/v1/auth/token', json: { grant_type: 'password', username: 'dave', password: 'dave-secret' } });
    const other = await api.signIn('dave');
    const token = String(grant.access_token);
    assert.equal((await send({ method: 'GET', url: '/v1/calls', token })).status, 200, 'valid before');
    assert.equal((await send({ method: 'DELETE', url: '/v1/auth/token', token })).status, 204);
    await refusedAsInvalid(token, 'a signed-out token');
    const refreshed = await send({ method: 'POST', url: '/v1/auth/token', json: { grant_type: 'refresh_token', refresh_token: grant.refresh_token } });
    assert.equal(refreshed.status, 401, `the signed-out session's refresh token: ${text(refreshed)}`);
    assert.equal((await send({ method: 'GET', url: '/v1/calls', token: other })).status, 200, 'dave\'s other session');
  });

  it('refuses the user\'s tokens at once after an admin sets its password (PUT /v1/users/:user/password), and the old password', async () => {
    const grant = await ok({ method: 'POST', url: '/v1/auth/token', json: { grant_type: 'password', username: 'erin', password: 'erin-secret' } });
    const token = String(grant.access_token);
    // Used once, so the server has the password's fingerprint in its cache: the change must not wait for it to expire.
    assert.equal((await send({ method: 'GET', url: '/v1/calls', token })).status, 200, 'valid before');
    assert.equal((await send({ method: 'PUT', url: `/v1/users/erin@${API_DOMAIN}/password`, token: api.admin, json: { password: 'erin-new-secret' } })).status, 204);
    await refusedAsInvalid(token, 'a token from before the password change');
    const refreshed = await send({ method: 'POST', url: '/v1/auth/token', json: { grant_type: 'refresh_token', refresh_token: grant.refresh_token } });
    assert.equal(refreshed.status, 401, `the refresh token from before the change: ${text(refreshed)}`);
    assert.equal((await send({ method: 'POST', url: '/v1/auth/token', json: { grant_type: 'password', username: 'erin', password: 'erin-secret' } })).status, 401);
    const fresh = await api.signIn('erin', 'erin-new-secret');
    assert.equal((await send({ method: 'GET', url: '/v1/calls', token: fresh })).status, 200, 'the new password signs in');
  });

  it('refuses a deleted user\'s token at once (DELETE /v1/users/:user)', async () => {
    const token = await api.signIn('frank');
    assert.equal((await send({ method: 'GET', url: '/v1/calls', token })).status, 200, 'valid before');
    assert.equal((await send({ method: 'DELETE', url: `/v1/users/frank@${API_DOMAIN}`, token: api.admin })).status, 204);
    await refusedAsInvalid(token, 'the token of a deleted user');
  });

  it('refuses an expired access token signed with the server\'s own key (401), where one of the same key still in its lifetime passes', async () => {
    const store = api.t.server.store;
    // The server's key (http.tokenSecret) and a clock an hour behind: the token's exp is 59 minutes past.
    const signer = (now: () => number) => new UserTokens({
      subscribers: store.subscribers, refreshTokens: new SqlRefreshTokenRepository(store), now, accessTtlSeconds: 60,
      key: loadTokenKey({ dataDir: api.t.dataDir, secret: API_TOKEN_SECRET, logger: silentLogger() }), domains: [API_DOMAIN],
    });
    const tokenAt = async (now: () => number): Promise<string> => {
      const answer = await signer(now).grant({ grant_type: 'password', username: 'carol', password: 'carol-secret' }, true);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return (answer.body as { access_token: string }).access_token;
    };
    const current = await tokenAt(Date.now);
    assert.equal((await send({ method: 'GET', url: '/v1/calls', token: current })).status, 200, 'a token of the server\'s key within its lifetime');
    const expired = await tokenAt(() => Date.now() - 3_600_000);
    await refusedAsInvalid(expired, 'an expired token');
    const res = await send({ method: 'GET', url: '/v1/calls', token: expired });
    assert.match(text(res), /expired/, 'the refusal says why');
  });
});
