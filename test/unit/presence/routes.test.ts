/**
 * The presence allow-list API (presence/routes.ts) on a real HttpServer on loopback, with real admin and
 * user tokens and a real PresencePolicy over a temporary SQLite store: whose list a token manages, request
 * validation, 404 for a watcher who is no user here, and changes the policy applies at once.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { PresencePolicy } from '../../../presence/policy.js';
import { presenceRoutes } from '../../../presence/routes.js';
import { type HttpApp, startHttpApp } from '../../helpers/http-app.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';

describe('the presence API: /v1/presence/allow', () => {
  let app: HttpApp;
  let policy: PresencePolicy;

  const asAlice = (method: string, path: string) => app.call(method, path, app.tokens.alice!);
  const asAdmin = (method: string, path: string) => app.call(method, path, app.adminToken);

  before(async () => {
    app = await startHttpApp(['alice', 'bob', 'carol'], (store) => {
      policy = new PresencePolicy({ mode: 'contacts', repo: store.presence, cacheMs: 60_000 });
      const userExists = async (user: string) => {
        const at = user.lastIndexOf('@');
        return (await store.subscribers.get(user.slice(0, at), user.slice(at + 1))) !== undefined;
      };
      return presenceRoutes(policy, userExists);
    });
  });

  after(async () => {
    await app?.close();
  });

  beforeEach(async () => {
    await app.store.knex('presence_allow').del();
  });

  it('a user token reads its own list: GET /presence/allow → { user, watchers }', async () => {
    const { status, body } = await asAlice('GET', '/presence/allow');
    assert.deepEqual({ status, body }, { status: 200, body: { user: ALICE, watchers: [] } });
    await app.store.presence.allow(ALICE, CAROL);
    await app.store.presence.allow(ALICE, BOB);
    assert.deepEqual((await asAlice('GET', '/presence/allow')).body, { user: ALICE, watchers: [BOB, CAROL] });
    assert.deepEqual((await asAlice('GET', '/presence/allow?user=alice@EXAMPLE.com')).body, { user: ALICE, watchers: [BOB, CAROL] });
  });

  it('PUT /presence/allow/:watcher adds a user of ours (host lower-cased): 204, again 204, and the policy lets them watch at once', async () => {
    assert.equal(await policy.mayWatch(BOB, ALICE), false);
    assert.equal((await asAlice('PUT', '/presence/allow/bob@EXAMPLE.com')).status, 204);
    assert.equal((await asAlice('PUT', '/presence/allow/bob@example.com')).status, 204);
    assert.deepEqual(await app.store.presence.allowed(ALICE), [BOB]);
    assert.equal(await policy.mayWatch(BOB, ALICE), true);
  });

  it('PUT of a watcher who is no user here is 404 (the user part is case-sensitive), and nothing is stored', async () => {
    const unknown = await asAlice('PUT', '/presence/allow/mallory@example.com');
    assert.equal(unknown.status, 404);
    assert.match(String(unknown.body.message), /mallory@example\.com is not a user here/);
    assert.equal((await asAlice('PUT', '/presence/allow/Bob@example.com')).status, 404);
    assert.deepEqual(await app.store.presence.allowed(ALICE), []);
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
      assert.equal(body.code, 'API_ERR_INVALID');
    }
    assert.equal((await asAlice('GET', '/presence/allow?user=')).status, 400);
    assert.deepEqual(await app.store.presence.allowed(ALICE), []);
  });

  it('a watcher of 255 characters (the column size) is taken, one of 256 is 400', async () => {
    const domain = '@example.com';
    const longest = 'w'.repeat(255 - domain.length);
    await app.store.subscribers.add({ username: longest, domain: 'example.com', password: 'long-secret' });
    assert.equal((await asAlice('PUT', `/presence/allow/${longest}${domain}`)).status, 204);
    assert.deepEqual(await app.store.presence.allowed(ALICE), [`${longest}${domain}`]);
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
    assert.match(String(again.body.message), /not on the allow list/);
  });

  it('DELETE takes off a watcher who is no longer a user here', async () => {
    await app.store.subscribers.add({ username: 'dave', domain: 'example.com', password: 'dave-secret' });
    assert.equal((await asAlice('PUT', '/presence/allow/dave@example.com')).status, 204);
    await app.store.subscribers.remove('dave', 'example.com');
    assert.equal((await asAlice('DELETE', '/presence/allow/dave@example.com')).status, 204);
    assert.deepEqual(await app.store.presence.allowed(ALICE), []);
  });

  it('a user token naming another user\'s list is 403, on every route, and changes nothing', async () => {
    await app.store.presence.allow(BOB, CAROL);
    for (const [method, path] of [
      ['GET', '/presence/allow?user=bob@example.com'],
      ['PUT', '/presence/allow/alice@example.com?user=bob@example.com'],
      ['DELETE', '/presence/allow/carol@example.com?user=bob@example.com'],
    ] as const) {
      const { status, body } = await asAlice(method, path);
      assert.equal(status, 403, `${method} ${path}`);
      assert.ok(!JSON.stringify(body).includes(CAROL), 'the refusal tells nothing of the list');
    }
    assert.deepEqual(await app.store.presence.allowed(BOB), [CAROL]);
  });

  it('an admin token must say whose list with ?user= (400 without) and manages any user\'s', async () => {
    const missing = await asAdmin('GET', '/presence/allow');
    assert.equal(missing.status, 400);
    assert.match(String(missing.body.message), /\?user=/);
    assert.equal((await asAdmin('PUT', '/presence/allow/carol@example.com')).status, 400);
    assert.equal((await asAdmin('PUT', '/presence/allow/carol@example.com?user=bob@example.com')).status, 204);
    assert.deepEqual((await asAdmin('GET', '/presence/allow?user=bob@example.com')).body, { user: BOB, watchers: [CAROL] });
    assert.equal(await policy.mayWatch(CAROL, BOB), true);
    assert.equal((await asAdmin('DELETE', '/presence/allow/carol@example.com?user=bob@example.com')).status, 204);
    assert.deepEqual(await app.store.presence.allowed(BOB), []);
  });

  it('an admin adding to the list of someone who is no user here is 404', async () => {
    const { status, body } = await asAdmin('PUT', '/presence/allow/carol@example.com?user=ghost@example.com');
    assert.equal(status, 404);
    assert.match(String(body.message), /ghost@example\.com is not a user here/);
    assert.deepEqual(await app.store.presence.allowed('ghost@example.com'), []);
  });

  it('without a token every route is 401', async () => {
    assert.equal((await app.call('GET', '/presence/allow', null)).status, 401);
    assert.equal((await app.call('PUT', '/presence/allow/bob@example.com', null)).status, 401);
    assert.equal((await app.call('DELETE', '/presence/allow/bob@example.com', null)).status, 401);
    assert.deepEqual(await app.store.presence.allowed(ALICE), []);
  });
});
