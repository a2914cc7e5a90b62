/**
 * The users API (server/user-routes.ts) on a real HttpServer on loopback, with real admin and user tokens
 * over a temporary SQLite store and a real LocationService holding the bindings: each route's answer and
 * refusals, that no answer carries a password or hash, that a user token is refused, that a new password
 * ends the old one's sign-ins and tokens, and that kicking a device removes its binding; a user token reads and
 * kicks its own devices only.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { LocationService, isAsleep } from '../../../registrar/index.js';
import type { Binding } from '../../../registrar/types.js';
import { type UserRouteDeps, deviceRoutes, userRoutes } from '../../../server/user-routes.js';
import type { SqlStore } from '../../../platform/store/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { parseNameAddrs } from '../../../src/sip/index.js';
import { type HttpApp, startHttpApp } from '../../helpers/http-app.js';

const ALICE_AOR = 'sip:alice@example.com';
/** How long the test server trusts a password fingerprint (UserTokens cacheMs). */
const TOKEN_CACHE_MS = 50;

/** A binding of a WebSocket phone at 192.0.2.7:`port`, refreshed `ageMs` ago. */
function binding(aor: string, contact: string, port: number, ageMs = 0): Binding {
  const na = parseNameAddrs(contact, 'contact', true)[0]!;
  const now = Date.now() - ageMs;
  return {
    aor, contact: na, contactUri: na.uri.toString(), expiresAt: now + 600_000, callId: `call-${port}`, cseq: 1,
    received: { protocol: 'wss', address: '192.0.2.7', port }, userAgent: 'SIP.js/0.21', updatedAt: now,
  };
}

async function signIn(app: HttpApp, username: string, password: string): Promise<number> {
  const res = await fetch(`${app.base}/v1/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username, password }),
  });
  await res.body?.cancel();
  return res.status;
}

/** The routes' dependencies over the test store and a real LocationService. */
function depsOf(store: SqlStore, locations: LocationService): UserRouteDeps {
  return {
    subscribers: store.subscribers,
    forgetPresence: (user) => store.presence.forget(user),
    forgetMeetings: (user) => store.meetings.removeOwnedBy(user),
    bindings: (aor) => locations.lookup(aor),
    unbind: (aor, bindings) => locations.update(aor, { remove: bindings }),
    isAsleep,
  };
}

describe('the users API: /v1/users', () => {
  let app: HttpApp;
  let locations: LocationService;

  const asAdmin = (method: string, path: string, body?: unknown) => app.call(method, path, app.adminToken, body);

  before(async () => {
    locations = new LocationService({ logger: silentLogger() });
    app = await startHttpApp(['alice', 'bob'], (store) => userRoutes(depsOf(store, locations)), { access: 'admin', tokenCacheMs: TOKEN_CACHE_MS });
  });

  after(async () => {
    await app?.close();
  });

  beforeEach(async () => {
    for (const b of locations.list()) locations.update(b.aor, { remove: [b] });
  });

  it('lists the users with their domain and state, and never a password or HA1 field', async () => {
    const res = await asAdmin('GET', '/users?domain=EXAMPLE.com');
    assert.equal(res.status, 200);
    const users = res.body.users as Array<Record<string, unknown>>;
    assert.deepEqual(users.map((u) => [u.user, u.username, u.domain, u.enabled]), [['alice@example.com', 'alice', 'example.com', true], ['bob@example.com', 'bob', 'example.com', true]]);
    assert.ok(!/ha1|password|secret/i.test(JSON.stringify(res.body)), `no secret in ${JSON.stringify(res.body)}`);
    assert.deepEqual((await asAdmin('GET', '/users?domain=other.example')).body, { users: [] });
  });

  it('refuses a malformed domain filter or an unknown query field with 400', async () => {
    assert.equal((await asAdmin('GET', '/users?domain=not_a_host')).status, 400);
    const res = await asAdmin('GET', '/users?role=x');
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'API_ERR_INVALID');
    assert.match(String(res.body.message), /role/);
  });

  it('pages the users with limit and the cursor `next`: every user once, in order, and a forged cursor is 400', async () => {
    for (const name of ['u1', 'u2', 'u3']) assert.equal((await asAdmin('POST', '/users', { user: `${name}@paged.example`, password: 'x' })).status, 201);
    try {
      const whole = ((await asAdmin('GET', '/users')).body.users as Array<{ user: string }>).map((u) => u.user);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const res = await asAdmin('GET', `/users?limit=2${cursor === undefined ? '' : `&cursor=${cursor}`}`);
        assert.equal(res.status, 200);
        const users = (res.body.users as Array<{ user: string }>).map((u) => u.user);
        assert.ok(users.length <= 2 && users.length > 0);
        seen.push(...users);
        cursor = res.body.next as string | undefined;
      } while (cursor !== undefined);
      assert.deepEqual(seen, whole);
      assert.equal(whole.length, 5);
      const one = await asAdmin('GET', '/users?domain=paged.example&limit=2');
      assert.deepEqual((one.body.users as Array<{ user: string }>).map((u) => u.user), ['u1@paged.example', 'u2@paged.example']);
      const rest = await asAdmin('GET', `/users?domain=paged.example&limit=2&cursor=${String(one.body.next)}`);
      assert.deepEqual((rest.body.users as Array<{ user: string }>).map((u) => u.user), ['u3@paged.example']);
      assert.equal(rest.body.next, undefined);
      for (const bad of ['cursor=bm90LWpzb24', 'cursor=WyJ4Il0', 'limit=0', 'limit=1001']) assert.equal((await asAdmin('GET', `/users?${bad}`)).status, 400, bad);
    } finally {
      for (const name of ['u1', 'u2', 'u3']) await asAdmin('DELETE', `/users/${name}@paged.example`);
    }
  });

  it('adds a user (201), who can then sign in; the same user again is 409', async () => {
    const res = await asAdmin('POST', '/users', { user: 'carol@Example.com', password: 'carol-pass' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal((res.body.user as Record<string, unknown>).user, 'carol@example.com');
    assert.ok(!JSON.stringify(res.body).includes('carol-pass'), 'the password is not answered');
    assert.equal(await signIn(app, 'carol', 'carol-pass'), 200);
    const again = await asAdmin('POST', '/users', { user: 'carol@example.com', password: 'other' });
    assert.equal(again.status, 409);
    assert.deepEqual(again.body, { code: 'API_ERR_CONFLICT', message: 'user carol@example.com already exists' });
    assert.equal((await asAdmin('DELETE', '/users/carol@example.com')).status, 204);
  });

  it('refuses a malformed body with 400: no @, a bad character, an empty password, an unknown field, not JSON', async () => {
    for (const body of [{ user: 'dave', password: 'x' }, { user: 'da ve@example.com', password: 'x' }, { user: 'dave@example.com', password: '' }, { user: 'dave@example.com', password: 'x', admin: true }, {}]) {
      const res = await asAdmin('POST', '/users', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.code, 'API_ERR_INVALID');
    }
    const res = await fetch(`${app.base}/v1/users`, { method: 'POST', headers: { authorization: `Bearer ${app.adminToken}`, 'content-type': 'application/json' }, body: '{"user":' });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 'API_ERR_INVALID', message: 'body: not valid JSON' });
    assert.deepEqual((await asAdmin('GET', '/users/dave@example.com')).body, { code: 'API_ERR_NOT_FOUND', message: 'no such user dave@example.com' });
  });

  it('answers one user, or 404 when there is none and 400 for a malformed address', async () => {
    const res = await asAdmin('GET', '/users/alice@example.com');
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body.user as object).sort(), ['createdAt', 'domain', 'enabled', 'updatedAt', 'user', 'username']);
    assert.equal((await asAdmin('GET', '/users/nobody@example.com')).status, 404);
    assert.equal((await asAdmin('GET', '/users/no-domain')).status, 400);
  });

  it('refuses a user token on every users route with 403, even for its own user', async () => {
    const token = app.tokens.alice!;
    for (const [method, path, body] of [
      ['GET', '/users'], ['GET', '/users/alice@example.com'], ['POST', '/users', { user: 'eve@example.com', password: 'x' }],
      ['PUT', '/users/alice@example.com/password', { password: 'mine' }], ['DELETE', '/users/bob@example.com'],
    ] as const) {
      assert.equal((await app.call(method, path, token, body)).status, 403, `${method} ${path}`);
    }
    assert.equal((await app.call('GET', '/users', null)).status, 401);
    assert.equal(await signIn(app, 'bob', 'bob-secret'), 200, 'bob is still there');
  });

  it('a new password ends the old one: sign-in with it fails and its access tokens stop working', async () => {
    await asAdmin('POST', '/users', { user: 'frank@example.com', password: 'old-pass' });
    const signedIn = await fetch(`${app.base}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username: 'frank', password: 'old-pass' }),
    });
    const oldToken = ((await signedIn.json()) as { access_token: string }).access_token;
    // A valid user token on an admin route is 403 (insufficient_scope); a dead one is 401 (invalid_token).
    assert.equal((await app.call('GET', '/users', oldToken)).status, 403, 'the old token is valid before the change');

    const res = await asAdmin('PUT', '/users/frank@example.com/password', { password: 'new-pass' });
    assert.equal(res.status, 204);
    assert.equal(await signIn(app, 'frank', 'old-pass'), 401, 'the old password is refused');
    assert.equal(await signIn(app, 'frank', 'new-pass'), 200);
    await new Promise((resolve) => setTimeout(resolve, TOKEN_CACHE_MS * 2));
    const withOld = await app.call('GET', '/users', oldToken);
    assert.equal(withOld.status, 401, `the old access token after the change: ${withOld.status} ${JSON.stringify(withOld.body)}`);

    assert.equal((await asAdmin('PUT', '/users/nobody@example.com/password', { password: 'x' })).status, 404);
    assert.equal((await asAdmin('PUT', '/users/frank@example.com/password', { password: '' })).status, 400);
    assert.equal((await asAdmin('DELETE', '/users/frank@example.com')).status, 204);
  });

  it('a disabled user cannot sign in, its tokens stop working and its devices go at once; enabled again, it signs in', async () => {
    await asAdmin('POST', '/users', { user: 'hank@example.com', password: 'hank-pass' });
    const signedIn = await fetch(`${app.base}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username: 'hank', password: 'hank-pass' }),
    });
    const token = ((await signedIn.json()) as { access_token: string }).access_token;
    const aor = 'sip:hank@example.com';
    locations.update(aor, { add: [binding(aor, '<sip:hank@192.0.2.9:5060>', 5060)] });
    try {
      assert.equal((await asAdmin('PUT', '/users/hank@example.com/enabled', { enabled: false })).status, 204);
      assert.deepEqual(locations.lookup(aor), [], 'the devices are unregistered');
      assert.equal(((await asAdmin('GET', '/users/hank@example.com')).body.user as { enabled: boolean }).enabled, false);
      assert.equal(await signIn(app, 'hank', 'hank-pass'), 401);
      await new Promise((resolve) => setTimeout(resolve, TOKEN_CACHE_MS * 2));
      assert.equal((await app.call('GET', '/users', token)).status, 401, 'the access token died with the account');
      assert.equal((await asAdmin('PUT', '/users/hank@example.com/enabled', { enabled: true })).status, 204);
      assert.equal(await signIn(app, 'hank', 'hank-pass'), 200);
      assert.equal((await asAdmin('PUT', '/users/hank@example.com/enabled', { enabled: 'no' })).status, 400);
      assert.equal((await asAdmin('PUT', '/users/nobody@example.com/enabled', { enabled: false })).status, 404);
    } finally {
      await asAdmin('DELETE', '/users/hank@example.com');
    }
  });

  it('deletes a user (204): it can no longer sign in, its devices are unregistered and its meetings go; again is 404', async () => {
    await asAdmin('POST', '/users', { user: 'gina@example.com', password: 'gina-pass' });
    const aor = 'sip:gina@example.com';
    locations.update(aor, { add: [binding(aor, '<sip:gina@192.0.2.8:5060>', 5060)] });
    const meeting = { title: 'Gina\'s', startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: true, maxParticipants: 10, recordingAllowed: false };
    await app.store.meetings.create({ id: 'ginaginagina', owner: 'gina@example.com', ...meeting });
    await app.store.meetings.create({ id: 'bobbobbobbob', owner: 'bob@example.com', ...meeting });
    assert.equal((await asAdmin('DELETE', '/users/gina@example.com')).status, 204);
    assert.deepEqual(locations.lookup(aor), []);
    assert.equal(await app.store.meetings.get('ginaginagina'), undefined);
    assert.notEqual(await app.store.meetings.get('bobbobbobbob'), undefined, 'another user\'s meeting stays');
    assert.equal(await signIn(app, 'gina', 'gina-pass'), 401);
    assert.equal((await asAdmin('GET', '/users/gina@example.com')).status, 404);
    assert.equal((await asAdmin('DELETE', '/users/gina@example.com')).status, 404);
  });
});

describe('a user\'s devices: /v1/users/:user/devices', () => {
  let app: HttpApp;
  let locations: LocationService;

  const asAdmin = (method: string, path: string, body?: unknown) => app.call(method, path, app.adminToken, body);

  before(async () => {
    locations = new LocationService({ logger: silentLogger() });
    app = await startHttpApp(['alice', 'bob'], (store) => deviceRoutes(depsOf(store, locations)), { access: 'user' });
  });

  after(async () => {
    await app?.close();
  });

  beforeEach(async () => {
    for (const b of locations.list()) locations.update(b.aor, { remove: [b] });
  });

  it('lists a user\'s devices as /v1/registrations does, and kicks one by its contact (204), the other staying', async () => {
    locations.update(ALICE_AOR, { add: [binding(ALICE_AOR, '<sip:alice@192.0.2.7:50001;transport=ws>', 50001), binding(ALICE_AOR, '<sip:alice@192.0.2.7:50002;transport=ws>', 50002, 1000)] });
    // As the registrar prefers them (equal q): the most recently refreshed first.
    const before = await asAdmin('GET', '/users/alice@example.com/devices');
    assert.equal(before.status, 200);
    const devices = before.body.devices as Array<Record<string, unknown>>;
    assert.deepEqual(devices.map((d) => [d.aor, d.contact, d.transport, d.address, d.userAgent, d.asleep]), [
      [ALICE_AOR, 'sip:alice@192.0.2.7:50001;transport=ws', 'wss', '192.0.2.7:50001', 'SIP.js/0.21', false],
      [ALICE_AOR, 'sip:alice@192.0.2.7:50002;transport=ws', 'wss', '192.0.2.7:50002', 'SIP.js/0.21', false],
    ]);
    assert.deepEqual((await asAdmin('GET', '/users/bob@example.com/devices')).body, { devices: [] });

    const kicked = await asAdmin('DELETE', `/users/alice@example.com/devices?contact=${encodeURIComponent(String(devices[0]!.contact))}`);
    assert.equal(kicked.status, 204);
    assert.deepEqual(locations.lookup(ALICE_AOR).map((b) => b.contactUri), ['sip:alice@192.0.2.7:50002;transport=ws']);
    const again = await asAdmin('DELETE', `/users/alice@example.com/devices?contact=${encodeURIComponent(String(devices[0]!.contact))}`);
    assert.equal(again.status, 404);
    assert.match(String(again.body.message), /no device with contact/);
    assert.equal((await asAdmin('DELETE', '/users/alice@example.com/devices')).status, 400, 'no contact');
    assert.equal((await asAdmin('GET', '/users/nobody@example.com/devices')).status, 404);
  });

  it('a user token lists its own user\'s devices and kicks one of them (a lost phone), the other staying', async () => {
    locations.update(ALICE_AOR, { add: [binding(ALICE_AOR, '<sip:alice@192.0.2.7:50011;transport=ws>', 50011), binding(ALICE_AOR, '<sip:alice@192.0.2.7:50012;transport=ws>', 50012, 1000)] });
    const own = await app.call('GET', '/users/alice@example.com/devices', app.tokens.alice!);
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.deepEqual((own.body.devices as Array<{ contact: string }>).map((d) => d.contact), ['sip:alice@192.0.2.7:50011;transport=ws', 'sip:alice@192.0.2.7:50012;transport=ws']);
    const kicked = await app.call('DELETE', `/users/alice@example.com/devices?contact=${encodeURIComponent('sip:alice@192.0.2.7:50012;transport=ws')}`, app.tokens.alice!);
    assert.equal(kicked.status, 204);
    assert.deepEqual(locations.lookup(ALICE_AOR).map((b) => b.contactUri), ['sip:alice@192.0.2.7:50011;transport=ws']);
  });

  it('a user token naming another user is 403 on both routes, whether or not that user exists, and nothing is kicked', async () => {
    locations.update(ALICE_AOR, { add: [binding(ALICE_AOR, '<sip:alice@192.0.2.7:50021;transport=ws>', 50021)] });
    const contact = encodeURIComponent('sip:alice@192.0.2.7:50021;transport=ws');
    for (const [method, path] of [
      ['GET', '/users/alice@example.com/devices'], ['DELETE', `/users/alice@example.com/devices?contact=${contact}`],
      ['GET', '/users/nobody@example.com/devices'], ['DELETE', `/users/nobody@example.com/devices?contact=${contact}`],
    ] as const) {
      const res = await app.call(method, path, app.tokens.bob!);
      assert.equal(res.status, 403, `${method} ${path} with bob's token: ${JSON.stringify(res.body)}`);
    }
    assert.equal(locations.lookup(ALICE_AOR).length, 1, 'alice\'s device is still there');
    assert.equal((await app.call('GET', '/users/alice@example.com/devices', null)).status, 401);
  });
});
