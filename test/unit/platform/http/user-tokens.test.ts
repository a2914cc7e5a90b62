/**
 * User tokens (platform/http/user-tokens.ts) through a real HttpServer on loopback and a real SQLite store:
 * the password and refresh grants of POST /v1/auth/token, access tokens on `access: 'user'` routes
 * (/v1/calls) and admin routes, expiry, rotation, password changes, sign-out (DELETE /v1/auth/token), forgeries,
 * the failure limit, the key file; meeting guests' tokens and the routes they reach.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FINGERPRINT_CACHE_MS, GUEST_GRANT, HttpServer, TOKEN_FAILURES_MAX, callerOf, principalOf, TOKEN_KEY_FILE, UserTokens, loadTokenKey, passwordFingerprint, type HttpServerOptions, type TokenResponse, type UserTokensOptions,
} from '../../../../platform/http/index.js';
import { SqlRefreshTokenRepository, openStore, type SqlStore } from '../../../../platform/store/index.js';
import { silentLogger } from '../../../../src/log/index.js';
import { loadOrCreateCertificate } from '../../../../src/transport/index.js';
import { callRoutes } from '../../../../history/routes.js';
import { MemoryCallRepository, callRecord, userParty } from '../../../helpers/memory-calls.js';

const T0 = Date.parse('2026-12-01T10:00:00Z');

describe('user tokens: POST /v1/auth/token and user access tokens', () => {
  let dir: string;
  let store: SqlStore;
  let key: Buffer;
  const servers: HttpServer[] = [];
  /** Added to the clock of the tokens: moves time forward without waiting. */
  let skew = 0;
  const calls = new MemoryCallRepository([
    callRecord('c1', T0, { caller: userParty('alice'), callee: userParty('bob') }),
    callRecord('c2', T0 + 1000, { caller: userParty('bob'), callee: userParty('carol') }),
    callRecord('c3', T0 + 2000, { caller: userParty('carol'), callee: userParty('alice') }),
  ]);

  function tokens(overrides: Partial<UserTokensOptions> = {}): UserTokens {
    return new UserTokens({
      subscribers: store.subscribers,
      refreshTokens: new SqlRefreshTokenRepository(store),
      key,
      domains: ['example.com'],
      now: () => Date.now() + skew,
      ...overrides,
    });
  }

  async function server(overrides: Partial<HttpServerOptions> = {}): Promise<string> {
    const http = new HttpServer({
      listen: '127.0.0.1:0',
      logger: silentLogger(),
      tokens: store.tokens,
      source: { health: () => ({ ok: true }) },
      userTokens: tokens(),
      ...overrides,
    });
    http.routes(callRoutes(calls), { access: 'user' });
    servers.push(http);
    await http.start();
    return `http://127.0.0.1:${http.boundTo}`;
  }

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const signOut = (url: string, token: string) => fetch(`${url}/v1/auth/token`, { method: 'DELETE', headers: bearer(token) });
  const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

  async function grant(url: string, body: object): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
    const res = await fetch(`${url}/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
  }

  async function signIn(url: string, username: string, password: string): Promise<TokenResponse> {
    const { status, json } = await grant(url, { grant_type: 'password', username, password });
    assert.equal(status, 200, JSON.stringify(json));
    return json as unknown as TokenResponse;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'softswitch-user-tokens-'));
    store = await openStore({ url: `sqlite:${join(dir, 'softswitch.db')}`, logger: silentLogger() });
    key = loadTokenKey({ dataDir: dir, logger: silentLogger() });
    for (const [username, password] of [['alice', 'alice-secret'], ['bob', 'bob-secret'], ['carol', 'carol-secret'], ['dave', 'dave-secret'], ['fay', 'fay-secret']]) {
      await store.subscribers.add({ username: username!, domain: 'example.com', password: password! });
    }
    await store.subscribers.add({ username: 'erin', domain: 'example.com', password: 'erin-secret', enabled: false });
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the password grant answers an access token, a refresh token and the user, RFC 6749 §5.1 style, never cached (plain HTTP from loopback)', async () => {
    const url = await server();
    const { status, json, headers } = await grant(url, { grant_type: 'password', username: 'alice', password: 'alice-secret' });
    assert.equal(status, 200);
    assert.equal(headers.get('cache-control'), 'no-store');
    assert.equal(json.token_type, 'Bearer');
    assert.equal(json.expires_in, 900);
    assert.equal(json.user, 'alice@example.com');
    assert.match(String(json.access_token), /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    assert.match(String(json.refresh_token), /^[A-Za-z0-9_-]{43}$/);
    const claims = JSON.parse(Buffer.from(String(json.access_token).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.sub, 'alice@example.com');
    assert.equal(Number(claims.exp) - Number(claims.iat), 900);
    const rows = (await store.knex('user_refresh_tokens').select()) as Array<Record<string, unknown>>;
    assert.ok(!JSON.stringify(rows).includes(String(json.refresh_token)), 'the store keeps only the hash of a refresh token');
  });

  it('the username may carry the domain (any case), or the domain comes in its own field', async () => {
    const url = await server();
    assert.equal((await signIn(url, 'alice@Example.COM', 'alice-secret')).user, 'alice@example.com');
    const { status, json } = await grant(url, { grant_type: 'password', username: 'alice', domain: 'example.com', password: 'alice-secret' });
    assert.equal(status, 200);
    assert.equal(json.user, 'alice@example.com');
    const clash = await grant(url, { grant_type: 'password', username: 'alice@example.com', domain: 'example.org', password: 'alice-secret' });
    assert.equal(clash.status, 400);
    assert.equal(clash.json.error, 'invalid_request');
  });

  it('a wrong password, an unknown user and a foreign domain get the same 401 invalid_grant (AUTH_ERR_INVALID_GRANT); a disabled user is refused too', async () => {
    const url = await server();
    const wrong = await grant(url, { grant_type: 'password', username: 'alice', password: 'nope' });
    const unknown = await grant(url, { grant_type: 'password', username: 'mallory', password: 'nope' });
    const foreign = await grant(url, { grant_type: 'password', username: 'alice@example.org', password: 'alice-secret' });
    for (const r of [wrong, unknown, foreign]) {
      assert.equal(r.status, 401);
      assert.deepEqual(r.json, { error: 'invalid_grant', error_description: 'wrong username or password', code: 'AUTH_ERR_INVALID_GRANT', message: 'wrong username or password' });
    }
    const disabled = await grant(url, { grant_type: 'password', username: 'erin', password: 'erin-secret' });
    assert.equal(disabled.status, 401);
    assert.equal(disabled.json.error, 'invalid_grant');
  });

  it('a request that is not a grant is 400: invalid_request for a missing field, unsupported_grant_type for another grant', async () => {
    const url = await server();
    const missing = await grant(url, { grant_type: 'password', username: 'alice' });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error, 'invalid_request');
    assert.equal(missing.json.code, 'API_ERR_INVALID');
    assert.equal(missing.json.message, missing.json.error_description);
    assert.match(String(missing.json.error_description), /password/);
    const other = await grant(url, { grant_type: 'client_credentials' });
    assert.equal(other.status, 400);
    assert.equal(other.json.error, 'unsupported_grant_type');
  });

  it('a user access token reads /v1/calls restricted to its own calls; asking for another user\'s is 403', async () => {
    const url = await server();
    const { access_token } = await signIn(url, 'alice', 'alice-secret');
    const res = await fetch(`${url}/v1/calls`, { headers: bearer(access_token) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { calls: Array<{ id: string }> };
    assert.deepEqual(body.calls.map((c) => c.id), ['c3', 'c1']);
    assert.equal(calls.queries.at(-1)?.user, 'alice@example.com');
    assert.equal((await fetch(`${url}/v1/calls?user=alice@example.com`, { headers: bearer(access_token) })).status, 200);
    const other = await fetch(`${url}/v1/calls?user=bob@example.com`, { headers: bearer(access_token) });
    assert.equal(other.status, 403);
  });

  it('a user access token reads its own call by id and gets 404 for another user\'s, exactly as for a call that does not exist', async () => {
    const url = await server();
    const { access_token } = await signIn(url, 'alice', 'alice-secret');
    const own = await fetch(`${url}/v1/calls/c1`, { headers: bearer(access_token) });
    assert.equal(own.status, 200);
    assert.equal(((await own.json()) as { id: string }).id, 'c1');
    const theirs = await fetch(`${url}/v1/calls/c2`, { headers: bearer(access_token) });
    const none = await fetch(`${url}/v1/calls/c404`, { headers: bearer(access_token) });
    assert.equal(theirs.status, 404);
    assert.equal(none.status, 404);
    assert.deepEqual(await theirs.json(), await none.json());
  });

  it('an admin token on a user route reads every call', async () => {
    const url = await server();
    const { token } = await store.tokens.create({ name: 'calls-admin' });
    const res = await fetch(`${url}/v1/calls?user=bob@example.com`, { headers: bearer(token) });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { calls: Array<{ id: string }> }).calls.map((c) => c.id), ['c2', 'c1']);
    assert.equal((await fetch(`${url}/v1/calls/c2`, { headers: bearer(token) })).status, 200);
  });

  it('a user access token on an admin route is 403 insufficient_scope (RFC 6750 §3.1)', async () => {
    const url = await server();
    const { access_token } = await signIn(url, 'alice', 'alice-secret');
    for (const res of [
      await fetch(`${url}/v1/health`, { headers: bearer(access_token) }),
      await fetch(`${url}/reload`, { method: 'POST', headers: bearer(access_token) }),
    ]) {
      assert.equal(res.status, 403);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    }
  });

  it('an expired access token is refused (401 invalid_token) and does not count as a guess', async () => {
    const url = await server({ userTokens: tokens({ accessTtlSeconds: 60 }) });
    const { access_token } = await signIn(url, 'alice', 'alice-secret');
    skew = 61_000;
    try {
      for (let i = 0; i < TOKEN_FAILURES_MAX + 1; i++) {
        const res = await fetch(`${url}/v1/calls`, { headers: bearer(access_token) });
        assert.equal(res.status, 401);
        assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token", error_description="expired token"/);
      }
    } finally {
      skew = 0;
    }
  });

  it('a refresh rotates both tokens; the used refresh token fails after that', async () => {
    const url = await server();
    const first = await signIn(url, 'alice', 'alice-secret');
    const { status, json } = await grant(url, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
    assert.equal(status, 200);
    const second = json as unknown as TokenResponse;
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.equal(second.user, 'alice@example.com');
    assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(second.access_token) })).status, 200);
    const reuse = await grant(url, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
    assert.equal(reuse.status, 401);
    assert.equal(reuse.json.error, 'invalid_grant');
  });

  it('a password change kills the access and the refresh tokens issued before it; the new password works', async () => {
    const url = await server();
    const before = await signIn(url, 'bob', 'bob-secret');
    assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(before.access_token) })).status, 200);
    await store.subscribers.setPassword('bob', 'example.com', 'bob-new-secret');
    skew = 6000; // past the few seconds a fingerprint is cached
    try {
      const res = await fetch(`${url}/v1/calls`, { headers: bearer(before.access_token) });
      assert.equal(res.status, 401);
      assert.equal((await grant(url, { grant_type: 'refresh_token', refresh_token: before.refresh_token })).status, 401);
      assert.equal((await grant(url, { grant_type: 'password', username: 'bob', password: 'bob-secret' })).status, 401);
      const after = await signIn(url, 'bob', 'bob-new-secret');
      assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(after.access_token) })).status, 200);
    } finally {
      skew = 0;
    }
  });

  it('after forget(user) (a password change made through this process) the user\'s old access token is refused at once, not when the cache expires', async () => {
    await store.subscribers.add({ username: 'gus', domain: 'example.com', password: 'gus-secret' });
    const userTokens = tokens();
    const url = await server({ userTokens });
    const { access_token } = await signIn(url, 'gus', 'gus-secret');
    assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(access_token) })).status, 200, 'valid, and its fingerprint now cached');
    await store.subscribers.setPassword('gus', 'example.com', 'gus-new-secret');
    assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(access_token) })).status, 200, 'the cache still answers for the old password');
    userTokens.forget('gus@example.com');
    assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(access_token) })).status, 401);
  });

  it('disabling a user kills their tokens too', async () => {
    const url = await server({ userTokens: tokens({ cacheMs: 0 }) });
    const { access_token, refresh_token } = await signIn(url, 'dave', 'dave-secret');
    await store.knex('subscribers').where({ username: 'dave' }).update({ enabled: false });
    assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(access_token) })).status, 401);
    assert.equal((await grant(url, { grant_type: 'refresh_token', refresh_token })).status, 401);
  });

  it('DELETE /v1/auth/token with an access token answers 204; that access token is then 401 invalid_token at once, its refresh token invalid_grant', async () => {
    const url = await server();
    const session = await signIn(url, 'alice', 'alice-secret');
    const res = await signOut(url, session.access_token);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const after = await fetch(`${url}/v1/calls`, { headers: bearer(session.access_token) });
    assert.equal(after.status, 401);
    assert.match(after.headers.get('www-authenticate') ?? '', /error="invalid_token", error_description="signed out"/);
    const refresh = await grant(url, { grant_type: 'refresh_token', refresh_token: session.refresh_token });
    assert.equal(refresh.status, 401);
    assert.equal(refresh.json.error, 'invalid_grant');
    assert.equal((await signOut(url, session.access_token)).status, 401, 'a second sign-out with the dead token');
  });

  it('a sign-out ends that session only: the same user\'s other session and another user\'s tokens keep working', async () => {
    const url = await server();
    const phone = await signIn(url, 'alice', 'alice-secret');
    const laptop = await signIn(url, 'alice', 'alice-secret');
    const fay = await signIn(url, 'fay', 'fay-secret');
    assert.notEqual(claimsOf(phone.access_token).sid, claimsOf(laptop.access_token).sid, 'each password grant opens its own session');
    assert.equal((await signOut(url, phone.access_token)).status, 204);
    for (const other of [laptop, fay]) {
      assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(other.access_token) })).status, 200);
      assert.equal((await grant(url, { grant_type: 'refresh_token', refresh_token: other.refresh_token })).status, 200);
    }
  });

  it('a refresh keeps the session: signing out with the new access token ends the earlier one too', async () => {
    const url = await server();
    const first = await signIn(url, 'carol', 'carol-secret');
    const { json } = await grant(url, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
    const second = json as unknown as TokenResponse;
    assert.equal(claimsOf(second.access_token).sid, claimsOf(first.access_token).sid);
    assert.equal((await signOut(url, second.access_token)).status, 204);
    for (const token of [first.access_token, second.access_token]) assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(token) })).status, 401);
    assert.equal((await grant(url, { grant_type: 'refresh_token', refresh_token: second.refresh_token })).status, 401);
  });

  it(`another worker of the node (its own tokens over the same store) refuses a signed-out token within FINGERPRINT_CACHE_MS (${FINGERPRINT_CACHE_MS} ms)`, async () => {
    const one = await server();
    const two = await server();
    const session = await signIn(one, 'alice', 'alice-secret');
    assert.equal((await fetch(`${two}/v1/calls`, { headers: bearer(session.access_token) })).status, 200, 'worker two has the session cached as live');
    assert.equal((await signOut(one, session.access_token)).status, 204);
    skew = FINGERPRINT_CACHE_MS;
    try {
      assert.equal((await fetch(`${two}/v1/calls`, { headers: bearer(session.access_token) })).status, 401);
    } finally {
      skew = 0;
    }
  });

  it('a refresh token issued by a refresh racing with the sign-out (after it deleted the session\'s tokens) is refused', async () => {
    const t = tokens();
    const refreshTokens = new SqlRefreshTokenRepository(store);
    const session = 'R'.repeat(22);
    const fingerprint = passwordFingerprint((await store.subscribers.get('alice', 'example.com'))!)!;
    await refreshTokens.endSession('alice@example.com', session, Date.now() + 60_000);
    const token = await refreshTokens.issue({ subject: 'alice@example.com', fingerprint, createdAt: Date.now(), expiresAt: Date.now() + 60_000, session });
    const answer = await t.grant({ grant_type: 'refresh_token', refresh_token: token }, true);
    assert.equal(answer.status, 401);
    assert.deepEqual(answer.body, { error: 'invalid_grant', error_description: 'signed out: sign in again' });
  });

  it('an access token of an older version (no session) is 401 "refresh it", not counted as a guess; its refresh token opens a session', async () => {
    const url = await server();
    const old = await signIn(url, 'fay', 'fay-secret');
    const { sid: _sid, ...claims } = claimsOf(old.access_token);
    const unsigned = `${old.access_token.split('.')[0]}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const sessionless = `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`;
    for (let i = 0; i < TOKEN_FAILURES_MAX + 1; i++) {
      const res = await fetch(`${url}/v1/calls`, { headers: bearer(sessionless) });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /error_description="token of an older version: refresh it"/);
    }
    await store.knex('user_refresh_tokens').where({ subject: 'fay@example.com' }).update({ session: null });
    const { status, json } = await grant(url, { grant_type: 'refresh_token', refresh_token: old.refresh_token });
    assert.equal(status, 200);
    assert.match(String(claimsOf(String(json.access_token)).sid), /^[A-Za-z0-9_-]{22}$/);
  });

  it('DELETE /v1/auth/token without a token is 401; with an admin token 400 invalid_request (it ends a user\'s session)', async () => {
    const url = await server();
    assert.equal((await fetch(`${url}/v1/auth/token`, { method: 'DELETE' })).status, 401);
    const { token } = await store.tokens.create({ name: 'signout-admin' });
    const res = await signOut(url, token);
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
  });

  it('a tampered token is refused: another signature, or another user under the same signature, or another key', async () => {
    const url = await server();
    const { access_token } = await signIn(url, 'alice', 'alice-secret');
    const [header, payload, signature] = access_token.split('.');
    const flipped = `${header}.${payload}.${signature!.slice(0, -2)}${signature!.endsWith('AA') ? 'BA' : 'AA'}`;
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const asBob = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'bob@example.com' })).toString('base64url')}.${signature}`;
    const noneAlg = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`;
    for (const forged of [flipped, asBob, noneAlg]) {
      const res = await fetch(`${url}/v1/calls`, { headers: bearer(forged) });
      assert.equal(res.status, 401, forged);
    }
    const elsewhere = await server({ userTokens: tokens({ key: Buffer.alloc(32, 7) }) });
    assert.equal((await fetch(`${elsewhere}/v1/calls`, { headers: bearer(access_token) })).status, 401);
  });

  it(`after ${TOKEN_FAILURES_MAX} wrong passwords from an address it gets 429 with Retry-After, even with the right password`, async () => {
    const url = await server();
    for (let i = 0; i < TOKEN_FAILURES_MAX; i++) {
      assert.equal((await grant(url, { grant_type: 'password', username: 'carol', password: `guess-${i}` })).status, 401);
    }
    const blocked = await grant(url, { grant_type: 'password', username: 'carol', password: 'carol-secret' });
    assert.equal(blocked.status, 429);
    const retry = Number(blocked.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 60, `Retry-After ${retry}`);
  });

  it('forged access tokens count against the address like bad admin tokens', async () => {
    const url = await server();
    const forged = `${Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')}.e30.${'A'.repeat(43)}`;
    for (let i = 0; i < TOKEN_FAILURES_MAX; i++) assert.equal((await fetch(`${url}/v1/calls`, { headers: bearer(forged) })).status, 401);
    assert.equal((await grant(url, { grant_type: 'password', username: 'carol', password: 'carol-secret' })).status, 429);
  });

  it('a password over plain HTTP from another machine is refused with invalid_request "use https"; a refresh is not', async () => {
    const t = tokens();
    const refused = await t.grant({ grant_type: 'password', username: 'alice', password: 'alice-secret' }, false);
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.body, { error: 'invalid_request', error_description: 'a password is accepted only over TLS: use https (http.tls)' });
    const ok = await t.grant({ grant_type: 'password', username: 'alice', password: 'alice-secret' }, true);
    assert.equal(ok.status, 200);
    const refreshed = await t.grant({ grant_type: 'refresh_token', refresh_token: ok.status === 200 && 'refresh_token' in ok.body ? ok.body.refresh_token : '' }, false);
    assert.equal(refreshed.status, 200);
  });

  it('with tls the server answers HTTPS with the given certificate', async () => {
    const cert = await loadOrCreateCertificate({ dataDir: dir, hostnames: ['localhost'], logger: silentLogger() });
    const http = new HttpServer({
      listen: '127.0.0.1:0', logger: silentLogger(), tokens: store.tokens, source: { health: () => ({ ok: true }) },
      userTokens: tokens(), tls: { cert: cert.cert, key: cert.key },
    });
    servers.push(http);
    await http.start();
    const body = JSON.stringify({ grant_type: 'password', username: 'alice', password: 'alice-secret' });
    const answer = await new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
      const req = httpsRequest({
        host: '127.0.0.1', port: http.boundTo, path: '/v1/auth/token', method: 'POST', rejectUnauthorized: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.json.user, 'alice@example.com');
  });

  it('the signing key file is 0600 and every process of the node reads the same key; http.tokenSecret replaces it', () => {
    assert.equal(statSync(join(dir, TOKEN_KEY_FILE)).mode & 0o777, 0o600);
    assert.deepEqual(loadTokenKey({ dataDir: dir, logger: silentLogger() }), key);
    const secret = 's'.repeat(32);
    assert.deepEqual(loadTokenKey({ dataDir: dir, secret, logger: silentLogger() }), Buffer.from(secret));
  });
});

describe('meeting guest tokens: the urn:softswitch:meeting-guest grant and the routes a guest token reaches', () => {
  const MEETING = 'abcdefghijkm';
  let dir: string;
  let store: SqlStore;
  let key: Buffer;
  let url = '';
  let http: HttpServer;
  let skew = 0;
  const meetings = { exists: async (id: string) => id === MEETING };
  const calls = new MemoryCallRepository([callRecord('c1', T0, { caller: userParty('alice'), callee: userParty('bob') })]);

  const tokens = (overrides: Partial<UserTokensOptions> = {}) => new UserTokens({
    subscribers: store.subscribers, refreshTokens: new SqlRefreshTokenRepository(store), key, domains: ['example.com'], meetings,
    guestTtlSeconds: 120, now: () => Date.now() + skew, ...overrides,
  });
  const post = async (body: object) => {
    const res = await fetch(`${url}/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const get = (path: string, token: string) => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const guestToken = async (): Promise<string> => {
    const { status, json } = await post({ grant_type: GUEST_GRANT, meeting: MEETING, display_name: 'Gina' });
    assert.equal(status, 200, JSON.stringify(json));
    return String(json.access_token);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'softswitch-guest-tokens-'));
    store = await openStore({ url: `sqlite:${join(dir, 'softswitch.db')}`, logger: silentLogger() });
    key = loadTokenKey({ dataDir: dir, logger: silentLogger() });
    await store.subscribers.add({ username: 'alice', domain: 'example.com', password: 'alice-secret' });
    http = new HttpServer({ listen: '127.0.0.1:0', logger: silentLogger(), tokens: store.tokens, source: { health: () => ({ ok: true }) }, userTokens: tokens() });
    http.routes(callRoutes(calls), { access: 'user' });
    http.routes((app) => {
      app.get('/whoami', { schema: { summary: 'who asks', response: { 200: { description: 'the caller', type: 'object' } } } }, async (req) => callerOf(req));
      // A route written for users and admins, mounted open to guests by mistake.
      app.get('/careless', { schema: { summary: 'careless', response: { 200: { description: 'the principal', type: 'object' } } } }, async (req) => principalOf(req));
    }, { access: 'guest' });
    await http.start();
    url = `http://127.0.0.1:${http.boundTo}`;
  });

  after(async () => {
    await http?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a guest access token for an existing meeting: no refresh token, a guest id shaped like a participant id', async () => {
    const { status, json } = await post({ grant_type: GUEST_GRANT, meeting: MEETING, display_name: '  Gina  ' });
    assert.equal(status, 200, JSON.stringify(json));
    assert.deepEqual(Object.keys(json).sort(), ['access_token', 'expires_in', 'guest', 'meeting', 'token_type']);
    assert.deepEqual([json.token_type, json.expires_in, json.meeting], ['Bearer', 120, MEETING]);
    assert.match(String(json.guest), /^[a-z2-7]{12}$/);
    const claims = JSON.parse(Buffer.from(String(json.access_token).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual([claims.sub, claims.mtg, claims.gst, claims.name], [`guest:${String(json.guest)}`, MEETING, json.guest, 'Gina']);
  });

  it('refuses an unknown meeting with 401 invalid_grant, a password at the grant and a missing name with 400 invalid_request', async () => {
    const unknown = await post({ grant_type: GUEST_GRANT, meeting: 'zzzzzzzzzzzz', display_name: 'Gina' });
    assert.deepEqual([unknown.status, unknown.json.error, unknown.json.code], [401, 'invalid_grant', 'AUTH_ERR_INVALID_GRANT']);
    const password = await post({ grant_type: GUEST_GRANT, meeting: MEETING, display_name: 'Gina', password: 'x' });
    assert.deepEqual([password.status, password.json.error], [400, 'invalid_request']);
    const nameless = await post({ grant_type: GUEST_GRANT, meeting: MEETING, display_name: ' ' });
    assert.deepEqual([nameless.status, nameless.json.error], [400, 'invalid_request']);
  });

  it('without meetings to join the guest grant is an unsupported_grant_type', async () => {
    const answer = await tokens({ meetings: undefined }).grant({ grant_type: GUEST_GRANT, meeting: MEETING, display_name: 'Gina' }, true);
    assert.equal(answer.status, 400);
    assert.equal((answer.body as { error: string }).error, 'unsupported_grant_type');
  });

  it('a guest token reaches routes open to guests as a guest principal (callerOf), and is 403 insufficient_scope on user and admin routes', async () => {
    const token = await guestToken();
    const me = await get('/v1/whoami', token);
    assert.equal(me.status, 200);
    const principal = (await me.json()) as Record<string, unknown>;
    assert.deepEqual([principal.kind, principal.meeting, principal.displayName], ['guest', MEETING, 'Gina']);
    for (const path of ['/v1/calls', '/v1/health', '/v1/users']) {
      const res = await get(path, token);
      assert.equal(res.status, 403, path);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/, path);
    }
  });

  it('principalOf never answers a guest: a route that reads it fails (500) rather than take the guest for an admin', async () => {
    const res = await get('/v1/careless', await guestToken());
    assert.equal(res.status, 500);
  });

  it('a guest token with its claims changed under the same signature is refused 401 invalid_token', async () => {
    const [header, payload, signature] = (await guestToken()).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const other = Buffer.from(JSON.stringify({ ...claims, mtg: 'otherotherot' })).toString('base64url');
    const res = await get('/v1/whoami', `${header}.${other}.${signature}`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /bad token signature/);
  });

  it('a guest token past its life is 401 invalid_token "expired token"', async () => {
    const token = await guestToken();
    skew = 121_000;
    try {
      const res = await get('/v1/whoami', token);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /expired token/);
    } finally {
      skew = 0;
    }
  });
});
