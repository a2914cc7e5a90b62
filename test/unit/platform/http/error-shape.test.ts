/**
 * One error shape for the whole HTTP API (platform/http/refusal.ts): every refusal, a route's, the token
 * check's and fastify's own (bad JSON, a body over http.bodyLimit, an unsupported type, an unknown route),
 * answers `{ code, message }` with a code of the one catalogue; a failure is 500 without its stack; the token
 * endpoint keeps RFC 6749 §5.2's fields beside them. Real HttpServers on loopback, real tokens in a temp store.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { API_ERRORS, DEFAULT_BODY_LIMIT, HttpServer, Refusal, TOKEN_FAILURES_MAX, codeOf } from '../../../../platform/http/index.js';
import { silentLogger } from '../../../../src/log/index.js';
import { type HttpApp, startHttpApp } from '../../../helpers/http-app.js';
import { captureLogger } from '../../../helpers/log-capture.js';
import { repoRoot } from '../../../helpers/paths.js';

const LIMIT = 4096;

/** Routes that refuse, fail and echo, as a route module would. */
function testRoutes(app: FastifyInstance): void {
  app.get('/conflict', { schema: { summary: 'test', response: { 200: { description: 'never', type: 'object' } } } }, async () => {
    throw new Refusal(409, 'it exists');
  });
  app.get('/group-full', { schema: { summary: 'test' } }, async () => {
    throw new Refusal(409, 'the group is full', 'CHAT_ERR_GROUP_FULL');
  });
  app.get('/boom', { schema: { summary: 'test' } }, async () => {
    throw new Error('cannot open /srv/secret/path.db');
  });
  app.post('/echo', { schema: { summary: 'test', response: { 200: { description: 'what it got', type: 'object' } } } }, async (req) => ({ got: req.body }));
  app.get('/things/:id', { schema: { summary: 'test' } }, async (req) => ({ id: (req.params as { id: string }).id }));
}

describe('the API\'s one error shape: { code, message }', () => {
  let app: HttpApp;
  const capture = captureLogger();

  before(async () => {
    app = await startHttpApp(['alice'], () => testRoutes, { bodyLimit: LIMIT, logger: capture.logger });
  });
  after(async () => {
    await app?.close();
  });

  const raw = (method: string, path: string, headers: Record<string, string>, body?: string) =>
    fetch(`${app.base}${path}`, { method, headers: { authorization: `Bearer ${app.adminToken}`, ...headers }, ...(body === undefined ? {} : { body }) });

  it('the catalogue: codes in the project\'s style, each status\'s generic code first, every code in the OpenAPI description and the README; 413/415 documented where a body is taken', async () => {
    for (const [code, { status }] of Object.entries(API_ERRORS)) {
      assert.match(code, /^[A-Z]+_ERR_[A-Z_]+$/);
      assert.ok(status >= 400 && status < 600, code);
    }
    assert.equal(codeOf(400), 'API_ERR_INVALID');
    assert.equal(codeOf(401), 'AUTH_ERR_INVALID_TOKEN');
    assert.equal(codeOf(403), 'AUTH_ERR_SCOPE');
    assert.equal(codeOf(404), 'API_ERR_NOT_FOUND');
    assert.equal(codeOf(409), 'API_ERR_CONFLICT');
    assert.equal(codeOf(418), 'API_ERR_INVALID', 'a 4xx outside the catalogue');
    assert.equal(codeOf(502), 'API_ERR_INTERNAL', 'a 5xx outside the catalogue');
    const doc = (await (await fetch(`${app.base}/v1/openapi.json`)).json()) as {
      info: { description: string }; paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: { properties: { code: { examples?: string[] } } } }> }> }>>;
    };
    const echo = doc.paths['/v1/echo']!.post!.responses;
    assert.deepEqual(echo['413']!.content['application/json']!.schema.properties.code.examples, ['API_ERR_TOO_LARGE'], 'a route that takes a body documents 413 with its code');
    assert.ok(echo['415'] !== undefined, 'and 415');
    assert.equal(doc.paths['/v1/conflict']!.get!.responses['413'], undefined, 'a GET does not');
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    for (const code of Object.keys(API_ERRORS)) {
      assert.ok(doc.info.description.includes(`\`${code}\``), `${code} in the OpenAPI description`);
      assert.ok(readme.includes(`\`${code}\``), `${code} in the README`);
    }
  });

  it('without a token any path, known or not, is 401 AUTH_ERR_INVALID_TOKEN with WWW-Authenticate: nothing says what exists', async () => {
    for (const path of ['/v1/conflict', '/v1/no-such-route', '/reload']) {
      const res = await fetch(`${app.base}${path}`);
      assert.equal(res.status, 401, path);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="softswitch"', path);
      assert.deepEqual(await res.json(), { code: 'AUTH_ERR_INVALID_TOKEN', message: 'an admin token is required (Authorization: Bearer …)' }, path);
    }
  });

  it('with an admin token an unknown route is 404 API_ERR_NOT_FOUND naming it, not fastify\'s own body; to a user token it is an admin route (403)', async () => {
    const res = await app.call('GET', '/no-such-route?x=1', app.adminToken);
    assert.deepEqual(res, { status: 404, body: { code: 'API_ERR_NOT_FOUND', message: 'no route GET /v1/no-such-route' }, headers: res.headers });
    const del = await app.call('DELETE', '/conflict', app.adminToken);
    assert.deepEqual(del.body, { code: 'API_ERR_NOT_FOUND', message: 'no route DELETE /v1/conflict' });
    // An app learns nothing of what exists either: every unknown path answers it the same.
    for (const path of ['/no-such-route', '/conflict']) {
      const asUser = await app.call('DELETE', path, app.tokens.alice!);
      assert.deepEqual({ status: asUser.status, body: asUser.body }, { status: 403, body: { code: 'AUTH_ERR_SCOPE', message: 'this route needs an admin token' } }, path);
    }
  });

  it('the router\'s own refusals take the shape too: a path that does not decode (400), a segment over 1024 characters (414)', async () => {
    const bad = await app.call('GET', '/things/%E0%A4%A', app.adminToken);
    assert.deepEqual({ status: bad.status, body: bad.body }, { status: 400, body: { code: 'API_ERR_INVALID', message: 'path: not a valid URL' } });
    const long = await app.call('GET', `/things/${'x'.repeat(1025)}`, app.adminToken);
    assert.deepEqual({ status: long.status, body: long.body }, { status: 414, body: { code: 'API_ERR_INVALID', message: 'path: a segment is longer than 1024 characters' } });
    assert.equal((await app.call('GET', `/things/${'x'.repeat(1024)}`, app.adminToken)).status, 200);
  });

  it('a user token on an admin route is 403 AUTH_ERR_SCOPE, with WWW-Authenticate insufficient_scope (RFC 6750 §3.1)', async () => {
    const res = await fetch(`${app.base}/v1/health`, { headers: { authorization: `Bearer ${app.tokens.alice!}` } });
    assert.equal(res.status, 403);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    assert.deepEqual(await res.json(), { code: 'AUTH_ERR_SCOPE', message: 'this route needs an admin token' });
  });

  it('a thrown Refusal answers its status with the status\'s code, or the code it names', async () => {
    assert.deepEqual((await app.call('GET', '/conflict', app.adminToken)).body, { code: 'API_ERR_CONFLICT', message: 'it exists' });
    const full = await app.call('GET', '/group-full', app.adminToken);
    assert.equal(full.status, 409);
    assert.deepEqual(full.body, { code: 'CHAT_ERR_GROUP_FULL', message: 'the group is full' });
  });

  it('a route that fails is 500 API_ERR_INTERNAL: the error is logged with its stack, the answer has neither', async () => {
    const res = await app.call('GET', '/boom', app.adminToken);
    assert.equal(res.status, 500);
    assert.deepEqual(res.body, { code: 'API_ERR_INTERNAL', message: 'the server failed (see its log)' });
    const line = capture.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request failed');
    assert.ok(line !== undefined, 'logged');
    assert.equal(line.err, 'cannot open /srv/secret/path.db');
    assert.match(String(line.stack), /error-shape\.test/);
    assert.equal(line.path, '/v1/boom');
  });

  it('a body that is not JSON is 400 API_ERR_INVALID; an empty JSON body too', async () => {
    const bad = await raw('POST', '/v1/echo', { 'content-type': 'application/json' }, '{"a":');
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { code: 'API_ERR_INVALID', message: 'body: not valid JSON' });
    const empty = await raw('POST', '/v1/echo', { 'content-type': 'application/json' }, '');
    assert.equal(empty.status, 400);
    assert.deepEqual(await empty.json(), { code: 'API_ERR_INVALID', message: 'body: empty, but Content-Type says application/json' });
  });

  it('a body of a type no parser takes is 415 API_ERR_UNSUPPORTED_TYPE', async () => {
    const res = await raw('POST', '/v1/echo', { 'content-type': 'application/xml' }, '<a/>');
    assert.equal(res.status, 415);
    assert.deepEqual(await res.json(), { code: 'API_ERR_UNSUPPORTED_TYPE', message: 'body: content type "application/xml" is not accepted (send application/json)' });
  });

  it('a body over http.bodyLimit is 413 API_ERR_TOO_LARGE, declared or not; up to the limit it reaches the route', async () => {
    const fits = JSON.stringify({ pad: 'x'.repeat(LIMIT - 20) });
    assert.ok(fits.length <= LIMIT);
    const ok = await raw('POST', '/v1/echo', { 'content-type': 'application/json' }, fits);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { got: JSON.parse(fits) });
    const big = JSON.stringify({ pad: 'x'.repeat(LIMIT) });
    const declared = await raw('POST', '/v1/echo', { 'content-type': 'application/json' }, big);
    assert.equal(declared.status, 413);
    assert.deepEqual(await declared.json(), { code: 'API_ERR_TOO_LARGE', message: `body: larger than ${LIMIT} bytes` });
    // Chunked: no Content-Length to refuse up front; the parser counts as it reads.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const chunked = await fetch(`${app.base}/v1/echo`, {
      method: 'POST', headers: { authorization: `Bearer ${app.adminToken}`, 'content-type': 'application/json' }, body: stream, duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.equal(((await chunked.json()) as { code: string }).code, 'API_ERR_TOO_LARGE');
    assert.equal(DEFAULT_BODY_LIMIT, 1_048_576, 'the default is 1 MiB');
  });

  it('the token endpoint keeps RFC 6749 §5.2\'s error and error_description, with code and message beside them', async () => {
    const grant = await fetch(`${app.base}/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials' }) });
    assert.equal(grant.status, 400);
    const body = (await grant.json()) as Record<string, string>;
    assert.equal(body.error, 'unsupported_grant_type');
    assert.equal(body.code, 'API_ERR_INVALID');
    assert.equal(body.message, body.error_description);
    const notJson = await fetch(`${app.base}/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
    assert.equal(notJson.status, 400);
    assert.deepEqual(await notJson.json(), { error: 'invalid_request', error_description: 'body: not valid JSON', code: 'API_ERR_INVALID', message: 'body: not valid JSON' });
    const signOutAsAdmin = await app.call('DELETE', '/auth/token', app.adminToken);
    assert.equal(signOutAsAdmin.status, 400);
    assert.deepEqual(signOutAsAdmin.body, {
      error: 'invalid_request', error_description: 'a sign-out takes the user access token of the session to end',
      code: 'API_ERR_INVALID', message: 'a sign-out takes the user access token of the session to end',
    });
    const dead = await app.call('DELETE', '/auth/token', 'a.b.c');
    assert.equal(dead.status, 401);
    assert.equal(dead.body.error, 'invalid_token');
    assert.equal(dead.body.code, 'AUTH_ERR_INVALID_TOKEN');
    assert.equal(dead.body.message, dead.body.error_description);
  });
});

describe('the token check\'s 429 and 503 in the same shape', () => {
  const servers: HttpServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  async function server(lookup: () => Promise<undefined>): Promise<string> {
    const http = new HttpServer({ listen: '127.0.0.1:0', logger: silentLogger(), tokens: { lookup }, source: { health: () => ({ ok: true }) } });
    servers.push(http);
    await http.start();
    return `http://127.0.0.1:${http.boundTo}`;
  }

  it('too many bad tokens from an address: 429 API_ERR_RATE_LIMITED with Retry-After', async () => {
    const url = await server(async () => undefined);
    for (let i = 0; i < TOKEN_FAILURES_MAX; i++) assert.equal((await fetch(`${url}/v1/health`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const res = await fetch(`${url}/v1/health`, { headers: { authorization: 'Bearer wrong' } });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.deepEqual(await res.json(), { code: 'API_ERR_RATE_LIMITED', message: 'too many failed token attempts' });
  });

  it('a store that cannot check the token: 503 API_ERR_UNAVAILABLE with Retry-After', async () => {
    const url = await server(async () => {
      throw new Error('the database is down');
    });
    const res = await fetch(`${url}/v1/health`, { headers: { authorization: 'Bearer sometoken' } });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    assert.deepEqual(await res.json(), { code: 'API_ERR_UNAVAILABLE', message: 'the token cannot be checked now' });
  });
});
