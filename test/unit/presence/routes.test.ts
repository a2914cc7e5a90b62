/**
 * The presence allow-list API (presence/routes.ts) on a real HttpServer on loopback, with real admin and
 * user tokens and a real PresencePolicy over a temporary SQLite store: whose list a token manages, request
 * validation, 404 for a watcher who is no user here, and changes the policy applies at once.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { HttpServer, UserTokens, loadTokenKey } from '../../../platform/http/index.js';
import { SqlRefreshTokenRepository } from '../../../platform/store/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { PresencePolicy } from '../../../presence/policy.js';
import { presenceRoutes } from '../../../presence/routes.js';
import { openTempStore } from '../../helpers/temp-store.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';

describe('the presence API: /v1/presence/allow', () => {
  let temp: Awaited<ReturnType<typeof openTempStore>>;
  let http: HttpServer;
  let policy: PresencePolicy;
  let base: string;
  let adminToken: string;
  let aliceToken: string;

  type Answer = { status: number; body: Record<string, unknown> };
  async function call(method: string, path: string, token: string | null): Promise<Answer> {
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    const res = await fetch(`${base}/v1${path}`, { method, headers });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }
  const asAlice = (method: string, path: string) => call(method, path, aliceToken);
  const asAdmin = (method: string, path: string) => call(method, path, adminToken);

  before(async () => {
    temp = await openTempStore();
    for (const username of ['alice', 'bob', 'carol']) await temp.store.subscribers.add({ username, domain: 'example.com', password: `${username}-secret` });
    adminToken = (await temp.store.tokens.create({ name: 'ops' })).token;
    const userTokens = new UserTokens({
      subscribers: temp.store.subscribers,
      refreshTokens: new SqlRefreshTokenRepository(temp.store),
      key: loadTokenKey({ dataDir: '/nonexistent', secret: 'a test signing key of enough length', logger: silentLogger() }),
      domains: ['example.com'],
    });
    policy = new PresencePolicy({ mode: 'contacts', repo: temp.store.presence, cacheMs: 60_000 });
    const userExists = async (user: string) => {
      const at = user.lastIndexOf('@');
      return (await temp.store.subscribers.get(user.slice(0, at), user.slice(at + 1))) !== undefined;
    };
    http = new HttpServer({ listen: '127.0.0.1:0', logger: silentLogger(), tokens: temp.store.tokens, source: { health: () => ({ ok: true }) }, userTokens });
    http.routes(presenceRoutes(policy, userExists), { access: 'user' });
    await http.start();
    base = `http://127.0.0.1:${http.boundTo}`;
    const res = await fetch(`${base}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username: 'alice', password: 'alice-secret' }),
    });
    assert.equal(res.status, 200);
    aliceToken = String(((await res.json()) as { access_token: string }).access_token);
  });

  after(async () => {
    await http?.stop();
    await temp?.close();
  });

  beforeEach(async () => {
    await temp.store.knex('presence_allow').del();
  });

  it('a user token reads its own list: GET /presence/allow → { user, watchers }', async () => {
    assert.deepEqual(await asAlice('GET', '/presence/allow'), { status: 200, body: { user: ALICE, watchers: [] } });
    await temp.store.presence.allow(ALICE, CAROL);
    await temp.store.presence.allow(ALICE, BOB);
    assert.deepEqual((await asAlice('GET', '/presence/allow')).body, { user: ALICE, watchers: [BOB, CAROL] });
    assert.deepEqual((await asAlice('GET', '/presence/allow?user=alice@EXAMPLE.com')).body, { user: ALICE, watchers: [BOB, CAROL] });
  });

  it('PUT /presence/allow/:watcher adds a user of ours (host lower-cased): 204, again 204, and the policy lets them watch at once', async () => {
    assert.equal(await policy.mayWatch(BOB, ALICE), false);
    assert.equal((await asAlice('PUT', '/presence/allow/bob@EXAMPLE.com')).status, 204);
    assert.equal((await asAlice('PUT', '/presence/allow/bob@example.com')).status, 204);
    assert.deepEqual(await temp.store.presence.allowed(ALICE), [BOB]);
    assert.equal(await policy.mayWatch(BOB, ALICE), true);
  });

  it('PUT of a watcher who is no user here is 404 (the user part is case-sensitive), and nothing is stored', async () => {
    const unknown = await asAlice('PUT', '/presence/allow/mallory@example.com');
    assert.equal(unknown.status, 404);
    assert.match(String(unknown.body.error), /mallory@example\.com is not a user here/);
    assert.equal((await asAlice('PUT', '/presence/allow/Bob@example.com')).status, 404);
    assert.deepEqual(await temp.store.presence.allowed(ALICE), []);
  });

  it('a malformed watcher or user is 400: no @, a path in it, longer than 255 characters, an unknown parameter', async () => {
    for (const path of [
      '/presence/allow/bob',
      '/presence/allow/bob@',
      '/presence/allow/',
      '/presence/allow/bob@example.com/more',
      '/presence/allow/bob%40example.com%2Fmore',
      `/presence/allow/${'b'.repeat(250)}@example.com`,
      '/presence/allow/bob@example.com?user=alice',
      '/presence/allow/bob@example.com?owner=alice@example.com',
    ]) {
      const { status, body } = await asAlice('PUT', path);
      assert.equal(status, 400, path);
      assert.equal(body.ok, false);
    }
    assert.equal((await asAlice('GET', '/presence/allow?user=')).status, 400);
    assert.deepEqual(await temp.store.presence.allowed(ALICE), []);
  });

  it('a watcher of 255 characters (the column size) is taken, one of 256 is 400', async () => {
    const domain = '@example.com';
    const longest = 'w'.repeat(255 - domain.length);
    await temp.store.subscribers.add({ username: longest, domain: 'example.com', password: 'long-secret' });
    assert.equal((await asAlice('PUT', `/presence/allow/${longest}${domain}`)).status, 204);
    assert.deepEqual(await temp.store.presence.allowed(ALICE), [`${longest}${domain}`]);
    assert.equal((await asAlice('DELETE', `/presence/allow/${longest}${domain}`)).status, 204);
    assert.equal((await asAlice('PUT', `/presence/allow/w${longest}${domain}`)).status, 400);
  });

  it('DELETE /presence/allow/:watcher removes the watcher: 204, then 404; the policy refuses them at once', async () => {
    await policy.allow(ALICE, BOB);
    assert.equal(await policy.mayWatch(BOB, ALICE), true);
    assert.equal((await asAlice('DELETE', '/presence/allow/bob@example.com')).status, 204);
    assert.equal(await policy.mayWatch(BOB, ALICE), false);
    const again = await asAlice('DELETE', '/presence/allow/bob@example.com');
    assert.equal(again.status, 404);
    assert.match(String(again.body.error), /not on the allow list/);
  });

  it('DELETE takes off a watcher who is no longer a user here', async () => {
    await temp.store.subscribers.add({ username: 'dave', domain: 'example.com', password: 'dave-secret' });
    assert.equal((await asAlice('PUT', '/presence/allow/dave@example.com')).status, 204);
    await temp.store.subscribers.remove('dave', 'example.com');
    assert.equal((await asAlice('DELETE', '/presence/allow/dave@example.com')).status, 204);
    assert.deepEqual(await temp.store.presence.allowed(ALICE), []);
  });

  it('a user token naming another user\'s list is 403, on every route, and changes nothing', async () => {
    await temp.store.presence.allow(BOB, CAROL);
    for (const [method, path] of [
      ['GET', '/presence/allow?user=bob@example.com'],
      ['PUT', '/presence/allow/alice@example.com?user=bob@example.com'],
      ['DELETE', '/presence/allow/carol@example.com?user=bob@example.com'],
    ] as const) {
      const { status, body } = await asAlice(method, path);
      assert.equal(status, 403, `${method} ${path}`);
      assert.ok(!JSON.stringify(body).includes(CAROL), 'the refusal tells nothing of the list');
    }
    assert.deepEqual(await temp.store.presence.allowed(BOB), [CAROL]);
  });

  it('an admin token must say whose list with ?user= (400 without) and manages any user\'s', async () => {
    const missing = await asAdmin('GET', '/presence/allow');
    assert.equal(missing.status, 400);
    assert.match(String(missing.body.error), /\?user=/);
    assert.equal((await asAdmin('PUT', '/presence/allow/carol@example.com')).status, 400);
    assert.equal((await asAdmin('PUT', '/presence/allow/carol@example.com?user=bob@example.com')).status, 204);
    assert.deepEqual((await asAdmin('GET', '/presence/allow?user=bob@example.com')).body, { user: BOB, watchers: [CAROL] });
    assert.equal(await policy.mayWatch(CAROL, BOB), true);
    assert.equal((await asAdmin('DELETE', '/presence/allow/carol@example.com?user=bob@example.com')).status, 204);
    assert.deepEqual(await temp.store.presence.allowed(BOB), []);
  });

  it('an admin adding to the list of someone who is no user here is 404', async () => {
    const { status, body } = await asAdmin('PUT', '/presence/allow/carol@example.com?user=ghost@example.com');
    assert.equal(status, 404);
    assert.match(String(body.error), /ghost@example\.com is not a user here/);
    assert.deepEqual(await temp.store.presence.allowed('ghost@example.com'), []);
  });

  it('without a token every route is 401', async () => {
    assert.equal((await call('GET', '/presence/allow', null)).status, 401);
    assert.equal((await call('PUT', '/presence/allow/bob@example.com', null)).status, 401);
    assert.equal((await call('DELETE', '/presence/allow/bob@example.com', null)).status, 401);
    assert.deepEqual(await temp.store.presence.allowed(ALICE), []);
  });
});
