/**
 * CORS for the origins of http.corsOrigins only (platform/http/cors.ts): a preflight from a listed origin is
 * granted without a token (Fetch §4.8: a preflight carries no credentials), the request that follows needs its
 * token as ever; any other origin gets no Access-Control-Allow-Origin; with none listed there is no CORS header
 * at all. Real HttpServers on loopback.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../../../platform/config/index.js';
import { type HttpApp, startHttpApp } from '../../../helpers/http-app.js';
import { startTestServer } from '../../../helpers/server.js';

const APP = 'https://app.example.com';
const DEV = 'http://localhost:5173';

/** A browser's CORS preflight (Fetch §4.8) for `method` on `path`, with Authorization and Content-Type. */
const preflight = (base: string, origin: string, method = 'POST', path = '/v1/things') => fetch(`${base}${path}`, {
  method: 'OPTIONS',
  headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type' },
});

function routes(app: import('fastify').FastifyInstance): void {
  app.get('/things', { schema: { summary: 'test' } }, async () => ({ things: [1, 2] }));
  app.post('/things', { schema: { summary: 'test' } }, async (_req, reply) => reply.code(201).send({ ok: true }));
}

describe('CORS for configured origins only', () => {
  let open: HttpApp;
  let closed: HttpApp;

  before(async () => {
    open = await startHttpApp(['alice'], () => routes, { corsOrigins: [APP, DEV] });
    closed = await startHttpApp([], () => routes);
  });
  after(async () => {
    await open?.close();
    await closed?.close();
  });

  it('a preflight from a configured origin is granted without a token: 204, the origin, GET/POST/PUT/DELETE, Authorization', async () => {
    for (const [origin, method] of [[APP, 'POST'], [DEV, 'DELETE'], [APP, 'PUT']] as const) {
      const res = await preflight(open.base, origin, method);
      assert.equal(res.status, 204, `${origin} ${method}`);
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.deepEqual(res.headers.get('access-control-allow-methods')?.split(/, */), ['GET', 'POST', 'PUT', 'DELETE']);
      assert.match(res.headers.get('access-control-allow-headers') ?? '', /(^|, )Authorization(,|$)/);
      assert.match(res.headers.get('access-control-allow-headers') ?? '', /(^|, )Content-Type(,|$)/);
      assert.equal(res.headers.get('access-control-allow-credentials'), null, 'bearer tokens, not cookies');
      assert.ok(Number(res.headers.get('access-control-max-age')) > 0);
      assert.equal(res.headers.get('vary'), 'Origin');
      assert.equal(await res.text(), '');
    }
  });

  it('a preflight from another origin (or a near miss of a configured one) gets no Access-Control-Allow-Origin, only the token check\'s 401', async () => {
    for (const origin of ['https://evil.example', 'http://app.example.com', 'https://app.example.com:8443', 'https://sub.app.example.com', 'null']) {
      const res = await preflight(open.base, origin);
      assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
      assert.equal(res.headers.get('access-control-allow-methods'), null, origin);
      assert.equal(res.status, 401, origin);
      assert.equal(((await res.json()) as { code: string }).code, 'AUTH_ERR_INVALID_TOKEN');
    }
  });

  it('the request after the preflight still needs its token; the answers (refusals too) name the origin and expose ETag and Retry-After', async () => {
    const anonymous = await fetch(`${open.base}/v1/things`, { headers: { origin: APP } });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('access-control-allow-origin'), APP, 'the page can read why');
    await anonymous.arrayBuffer();
    const res = await fetch(`${open.base}/v1/things`, { headers: { origin: APP, authorization: `Bearer ${open.tokens.alice!}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), APP);
    assert.match(res.headers.get('access-control-expose-headers') ?? '', /ETag.*Retry-After/);
    assert.deepEqual(await res.json(), { things: [1, 2] });
    const other = await fetch(`${open.base}/v1/things`, { headers: { origin: 'https://evil.example', authorization: `Bearer ${open.tokens.alice!}` } });
    assert.equal(other.status, 200, 'CORS is the browser\'s rule: the server answers, the browser hides it from the page');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    await other.arrayBuffer();
  });

  it('with no origin configured (the default) there is no CORS header at all and a preflight is 401 like any request without a token', async () => {
    const res = await preflight(closed.base, APP);
    assert.equal(res.status, 401);
    for (const h of ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'vary']) assert.equal(res.headers.get(h), null, h);
    await res.arrayBuffer();
    const get = await fetch(`${closed.base}/v1/things`, { headers: { origin: APP, authorization: `Bearer ${closed.adminToken}` } });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('access-control-allow-origin'), null);
    await get.arrayBuffer();
  });

  it('http.corsOrigins takes exact origins (empty by default) and refuses a path, a trailing slash or another scheme', () => {
    assert.deepEqual(loadConfig({ env: {} }).http.corsOrigins, []);
    assert.deepEqual(loadConfig({ env: {}, overrides: { 'http.corsOrigins': [APP, DEV] } }).http.corsOrigins, [APP, DEV]);
    assert.deepEqual(loadConfig({ env: { SOFTSWITCH_HTTP_CORS_ORIGINS: `${APP}, ${DEV}` } }).http.corsOrigins, [APP, DEV]);
    for (const bad of ['https://app.example.com/', 'https://app.example.com/app', 'app.example.com', 'ftp://files.example.com', '*']) {
      assert.throws(() => loadConfig({ env: {}, overrides: { 'http.corsOrigins': [bad] } }), (err: Error) => /http\.corsOrigins\[0\]/.test(err.message) && /origin/.test(err.message), bad);
    }
  });
});

describe('http.corsOrigins and http.bodyLimit on a whole softswitch (server/app.ts)', { timeout: 60_000 }, () => {
  it('the configured origin\'s preflight is granted, another\'s is not, and a JSON body over http.bodyLimit is 413', async () => {
    const t = await startTestServer({ http: { corsOrigins: [APP], bodyLimit: 2048 } });
    try {
      const base = `http://127.0.0.1:${t.server.http.boundTo}`;
      const granted = await preflight(base, APP, 'POST', '/v1/users');
      assert.equal(granted.status, 204);
      assert.equal(granted.headers.get('access-control-allow-origin'), APP);
      const refused = await preflight(base, 'https://evil.example', 'POST', '/v1/users');
      assert.equal(refused.headers.get('access-control-allow-origin'), null);
      await refused.arrayBuffer();
      const admin = (await t.server.store.tokens.create({ name: 'cors-test' })).token;
      const big = await fetch(`${base}/v1/users`, {
        method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'zoe@example.com', password: 'x'.repeat(3000) }),
      });
      assert.equal(big.status, 413);
      assert.deepEqual(await big.json(), { code: 'API_ERR_TOO_LARGE', message: 'body: larger than 2048 bytes' });
    } finally {
      await t.stop();
    }
  });
});
