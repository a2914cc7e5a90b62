/**
 * The admin side of the HTTP server: Bearer admin tokens (RFC 6750) on every route but GET /health, the
 * token cache, the per-address limit on failed attempts, and /health details only where they are safe.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpServer, TOKEN_CACHE_MS, TOKEN_FAILURES_MAX, isLoopbackHost, type HttpServerOptions } from '../../../../platform/http/index.js';
import { silentLogger } from '../../../../src/log/index.js';
import { openStore, type SqlStore } from '../../../../platform/store/index.js';
import { captureLogger } from '../../../helpers/log-capture.js';

describe('HTTP admin API: Bearer admin tokens', () => {
  let dir: string;
  let store: SqlStore;
  const servers: HttpServer[] = [];
  let reloads = 0;

  async function server(overrides: Partial<HttpServerOptions> = {}): Promise<string> {
    const http = new HttpServer({
      listen: '127.0.0.1:0',
      logger: silentLogger(),
      tokens: store.tokens,
      source: { health: () => ({ ok: true, registrations: 7 }), reload: async () => ({ n: ++reloads }) },
      ...overrides,
    });
    servers.push(http);
    await http.start();
    return `http://127.0.0.1:${http.boundTo}`;
  }

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'softswitch-http-'));
    store = await openStore({ url: `sqlite:${join(dir, 'softswitch.db')}`, logger: silentLogger() });
  });

  after(async () => {
    for (const s of servers) await s.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('POST /reload without a token is 401 with WWW-Authenticate: Bearer, and reloads nothing', async () => {
    const url = await server();
    const before = reloads;
    const res = await fetch(`${url}/reload`, { method: 'POST' });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="softswitch"');
    assert.equal(reloads, before);
  });

  it('a cross-site form POST (no Authorization header possible) cannot reload', async () => {
    const url = await server();
    const before = reloads;
    const res = await fetch(`${url}/reload`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    assert.equal(res.status, 401);
    assert.equal(reloads, before);
  });

  it('POST /reload with a valid token reloads (200); the token is accepted in any case of "Bearer"', async () => {
    const url = await server();
    const { token } = await store.tokens.create({ name: 'valid' });
    const res = await fetch(`${url}/reload`, { method: 'POST', headers: bearer(token) });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { n: number }).n, reloads);
    const lower = await fetch(`${url}/reload`, { method: 'POST', headers: { authorization: `bearer ${token}` } });
    assert.equal(lower.status, 200);
  });

  it('an unknown, malformed or expired token is 401 invalid_token, saying which', async () => {
    const url = await server();
    const { token: expired } = await store.tokens.create({ name: 'expired', expiresAt: Date.now() - 1 });
    const cases: Array<[string, string]> = [
      [`Bearer sst_${'x'.repeat(43)}`, 'unknown or revoked token'],
      ['Bearer', 'malformed Authorization header'],
      ['Basic YWRtaW46YWRtaW4=', 'malformed Authorization header'],
      [`Bearer ${expired}`, 'expired token'],
    ];
    for (const [header, reason] of cases) {
      const res = await fetch(`${url}/reload`, { method: 'POST', headers: { authorization: header } });
      assert.equal(res.status, 401, header);
      assert.equal(res.headers.get('www-authenticate'), `Bearer realm="softswitch", error="invalid_token", error_description="${reason}"`);
      assert.deepEqual(await res.json(), { code: 'AUTH_ERR_INVALID_TOKEN', message: reason });
    }
  });

  it('every /v1/ path needs a token, even one that does not exist (401, not 404)', async () => {
    const url = await server();
    for (const path of ['/v1/anything', '/v1/', '/v1/health', '/v1/users?x=1', '/nowhere']) {
      const res = await fetch(`${url}${path}`);
      assert.equal(res.status, 401, path);
    }
    const { token } = await store.tokens.create({ name: 'v1' });
    assert.equal((await fetch(`${url}/v1/anything`, { headers: bearer(token) })).status, 404);
  });

  it('routes added later under /v1/ with routes() are protected without doing anything, even when marked public', async () => {
    const http = new HttpServer({ listen: '127.0.0.1:0', logger: silentLogger(), tokens: store.tokens, source: { health: () => ({ ok: true }) } });
    http.routes((app) => {
      app.get('/things', async () => ({ things: [1, 2] }));
      app.get('/open', { config: { public: true } }, async () => ({ open: true }));
    });
    servers.push(http);
    await http.start();
    const url = `http://127.0.0.1:${http.boundTo}`;
    assert.equal((await fetch(`${url}/v1/things`)).status, 401);
    assert.equal((await fetch(`${url}/v1/open`)).status, 401);
    const { token } = await store.tokens.create({ name: 'later' });
    const res = await fetch(`${url}/v1/things`, { headers: bearer(token) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { things: [1, 2] });
  });

  it(`a revoked token keeps working only until the cache forgets it (${TOKEN_CACHE_MS / 1000} s by default)`, async () => {
    const url = await server({ tokenCacheMs: 300 });
    const { token } = await store.tokens.create({ name: 'revoked' });
    assert.equal((await fetch(`${url}/v1/health`, { headers: bearer(token) })).status, 200);
    await store.tokens.revoke('revoked');
    assert.equal((await fetch(`${url}/v1/health`, { headers: bearer(token) })).status, 200, 'still cached');
    await new Promise((r) => setTimeout(r, 350));
    const res = await fetch(`${url}/v1/health`, { headers: bearer(token) });
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { code: 'AUTH_ERR_INVALID_TOKEN', message: 'unknown or revoked token' });
  });

  it('a token never used before revocation is refused at once; a use is recorded as last used', async () => {
    const url = await server();
    const { token, record } = await store.tokens.create({ name: 'never-used' });
    await store.tokens.revoke(record.id);
    assert.equal((await fetch(`${url}/reload`, { method: 'POST', headers: bearer(token) })).status, 401);
    const used = await store.tokens.create({ name: 'used' });
    const before = Date.now();
    assert.equal((await fetch(`${url}/v1/health`, { headers: bearer(used.token) })).status, 200);
    await new Promise((r) => setTimeout(r, 50));
    const lastUsed = (await store.tokens.list()).find((t) => t.name === 'used')?.lastUsedAt;
    assert.ok(lastUsed !== undefined && lastUsed >= before, `lastUsedAt ${lastUsed}`);
  });

  it(`after ${TOKEN_FAILURES_MAX} failed attempts from an address it gets 429 with Retry-After, even with a good token; /health stays up`, async () => {
    const { logger, lines } = captureLogger();
    const url = await server({ logger });
    const { token } = await store.tokens.create({ name: 'limited' });
    for (let i = 0; i < TOKEN_FAILURES_MAX; i++) {
      const res = await fetch(`${url}/reload`, { method: 'POST', headers: bearer(`sst_${String(i).padStart(43, 'g')}`) });
      assert.equal(res.status, 401);
    }
    const blocked = await fetch(`${url}/reload`, { method: 'POST', headers: bearer(token) });
    assert.equal(blocked.status, 429);
    const retry = Number(blocked.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 60, `Retry-After ${retry}`);
    assert.equal((await fetch(`${url}/health`)).status, 200);
    assert.equal(lines.filter((l) => l.includes('too many failed admin token attempts')).length, 1);
    assert.equal(lines.filter((l) => l.includes('admin request with a bad token refused')).length, TOKEN_FAILURES_MAX);
  });

  it('requests without a token are not guesses and do not count against the address (a cross-site page cannot lock the operator out)', async () => {
    const url = await server();
    for (let i = 0; i < TOKEN_FAILURES_MAX + 5; i++) assert.equal((await fetch(`${url}/reload`, { method: 'POST' })).status, 401);
    const { token } = await store.tokens.create({ name: 'not-limited' });
    assert.equal((await fetch(`${url}/reload`, { method: 'POST', headers: bearer(token) })).status, 200);
  });

  it('never logs a token, good or bad, nor a query string', async () => {
    const { logger, lines } = captureLogger();
    const url = await server({ logger });
    const { token } = await store.tokens.create({ name: 'quiet' });
    const bad = `sst_${'Q'.repeat(43)}`;
    await fetch(`${url}/reload`, { method: 'POST', headers: bearer(token) });
    await fetch(`${url}/v1/x?access_token=${bad}`, { headers: bearer(bad) });
    await fetch(`${url}/v1/x`, { headers: { authorization: `Bearer ${token}x` } });
    const text = lines.join('');
    assert.ok(lines.length >= 2, 'the refusals were logged');
    assert.ok(!text.includes(token), 'good token logged');
    assert.ok(!text.includes('QQQQQQQQ'), 'bad token logged');
    assert.match(text, /"path":"\/v1\/x"/);
  });

  it('when the store cannot be asked, a request with a token gets 503 (not a false 401) and one error line', async () => {
    const { logger, lines } = captureLogger();
    const url = await server({ logger, tokens: { lookup: () => Promise.reject(new Error('SQLITE_IOERR')) } });
    const res = await fetch(`${url}/reload`, { method: 'POST', headers: bearer(`sst_${'s'.repeat(43)}`) });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    assert.equal(lines.filter((l) => l.includes('cannot check an admin token')).length, 1);
  });

  describe('/health', () => {
    it('on a loopback address: the detailed answer for anyone, as before', async () => {
      const url = await server();
      const res = await fetch(`${url}/health`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ok: true, registrations: 7 });
      assert.equal((await fetch(`${url}/health`, { method: 'HEAD' })).status, 200);
    });

    it('on a public address: liveness only ({ ok }, 200/503) without a token, details with one, 401 with a bad one', async () => {
      let ok = true;
      const url = await server({ healthDetails: 'token', source: { health: () => ({ ok, registrations: 7, listeners: ['udp:0.0.0.0:5060'] }) } });
      let res = await fetch(`${url}/health`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ok: true });
      ok = false;
      res = await fetch(`${url}/health`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { ok: false });
      const { token } = await store.tokens.create({ name: 'health' });
      res = await fetch(`${url}/health`, { headers: bearer(token) });
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { ok: false, registrations: 7, listeners: ['udp:0.0.0.0:5060'] });
      res = await fetch(`${url}/v1/health`, { headers: bearer(token) });
      assert.deepEqual(await res.json(), { ok: false, registrations: 7, listeners: ['udp:0.0.0.0:5060'] });
      assert.equal((await fetch(`${url}/health`, { headers: bearer(`sst_${'z'.repeat(43)}`) })).status, 401);
    });

    it('details are open by default only when http.listen is a loopback address', () => {
      for (const host of ['127.0.0.1', '127.8.9.10', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(host), true, host);
      for (const host of ['0.0.0.0', '::', '[::]', '10.0.0.1', '192.0.2.1', 'example.com', '::ffff:10.0.0.1', '128.0.0.1']) assert.equal(isLoopbackHost(host), false, host);
    });
  });
});
