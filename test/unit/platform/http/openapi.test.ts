/**
 * The OpenAPI document of a whole softswitch (every route module mounted as server/app.ts mounts them):
 * it validates against the OpenAPI 3.1 specification, names every route under /v1, and real answers of
 * the routes match the response schemas it documents (compiled with ajv, as a client generator would read them).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startTestServer, type TestServer } from '../../../helpers/server.js';

type Doc = { openapi: string; paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, { content?: Record<string, { schema: object }> }> }>> };

const DOMAIN = 'example.com';

/** `/v1/groups/:id/members/:user` → `/v1/groups/{id}/members/{user}`, `/v1/presence/allow/*` → `…/{*}` (@fastify/swagger's spelling). */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');
}

describe('the OpenAPI document (GET /v1/openapi.json) of a whole softswitch', { timeout: 60_000 }, () => {
  let t: TestServer;
  let base: string;
  let admin: string;
  let alice: string;
  let doc: Doc;
  // CommonJS modules: their class and function are `default` here.
  const ajv = new Ajv2020.default({ strict: false, allErrors: true });
  addFormats.default(ajv);

  before(async () => {
    t = await startTestServer({ sip: { domain: [DOMAIN] } });
    base = `http://127.0.0.1:${t.server.http.boundTo}`;
    admin = (await t.server.store.tokens.create({ name: 'openapi-test' })).token;
    for (const name of ['alice', 'bob']) await t.addUser(`${name}@${DOMAIN}`, `${name}-secret`);
    const res = await fetch(`${base}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: `alice@${DOMAIN}`, password: 'alice-secret' }),
    });
    assert.equal(res.status, 200, 'alice signs in');
    alice = ((await res.json()) as { access_token: string }).access_token;
  });
  after(async () => {
    await t?.stop();
  });

  async function call(method: string, path: string, token: string | null, body?: unknown): Promise<{ status: number; body: unknown; contentType: string }> {
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), contentType: res.headers.get('content-type') ?? '' };
  }

  /** Asserts that a real answer of `route` (document path) matches the schema documented for its status. */
  async function answersAsDocumented(method: string, route: string, url: string, token: string | null, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await call(method, url, token, body);
    const documented = doc.paths[route]?.[method.toLowerCase()]?.responses[String(res.status)];
    assert.ok(documented !== undefined, `${method} ${url} answered ${res.status}, which ${route} does not document: ${JSON.stringify(res.body)}`);
    const schema = documented.content?.['application/json']?.schema;
    assert.ok(schema !== undefined, `${method} ${route} ${res.status} has no JSON schema`);
    const validate = ajv.compile(schema);
    assert.ok(validate(res.body), `${method} ${url} → ${res.status} ${JSON.stringify(res.body)} does not match its schema: ${ajv.errorsText(validate.errors)}`);
    return res;
  }

  it('is served without a token and validates against the OpenAPI 3.1 specification', async () => {
    const res = await call('GET', '/v1/openapi.json', null);
    assert.equal(res.status, 200, `GET /v1/openapi.json without a token: ${JSON.stringify(res.body)}`);
    doc = res.body as Doc;
    assert.equal(doc.openapi, '3.1.0');
    // validate() dereferences in place: it gets its own copy.
    await SwaggerParser.validate(structuredClone(doc) as never);
  });

  it('documents every route registered under /v1 (but the UI\'s own pages), with its security', async () => {
    // fastify's radix tree, one prefix a line, 4 columns a level: `│   ├── bans (GET, HEAD, POST)`.
    const registered = new Set<string>();
    const prefixes: string[] = [];
    for (const line of t.server.http.fastify.printRoutes().split('\n')) {
      const m = /^([\s│]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
      if (m === null) continue;
      const depth = m[1]!.length / 4;
      prefixes.length = depth;
      prefixes.push(m[2]!);
      for (const method of m[3]?.split(', ') ?? []) registered.add(`${method} ${prefixes.join('')}`);
    }
    assert.ok(registered.has('GET /v1/ice-servers'), `the route list reads as expected: ${[...registered].join(', ')}`);
    const expected = [...registered]
      .filter((r) => / \/v1\//.test(r) && !r.startsWith('HEAD ') && !r.includes(' /v1/docs'))
      .map((r) => { const [method, url] = r.split(' '); return `${method!.toLowerCase()} ${openApiPath(url!)}`; });
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m} ${path}`));
    assert.deepEqual(expected.filter((r) => !documented.includes(r)), [], 'routes under /v1 missing from the document');
    // Each documented route says what it does and what it answers. The console's admin lists
    // (console/admin-routes.ts) are listed with their security only until their module documents them.
    const undocumented = new Set<string>();
    const bare = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods)
      .filter(([m, op]) => !undocumented.has(`${m} ${path}`) && ((op as { summary?: string }).summary === undefined || !Object.keys(op.responses).some((c) => c.startsWith('2'))))
      .map(([m]) => `${m} ${path}`));
    assert.deepEqual(bare, [], 'routes without a summary or a success response');
    assert.deepEqual(doc.paths['/v1/openapi.json']?.get?.security, [], 'the document itself needs no token');
    assert.deepEqual(doc.paths['/v1/auth/token']?.post?.security, [], 'signing in needs no token');
    assert.deepEqual(doc.paths['/v1/bans']?.get?.security, [{ adminToken: [] }], 'bans need an admin token');
    assert.deepEqual(doc.paths['/v1/calls']?.get?.security, [{ adminToken: [] }, { userToken: [] }], 'calls take an admin or a user token');
  });

  it('has a browsable UI at /v1/docs, without a token, its assets served locally (no CDN)', async () => {
    const res = await fetch(`${base}/v1/docs/`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200, 'GET /v1/docs/');
    // On a plain-HTTP listener, upgrade-insecure-requests would send the browser to HTTPS for the scripts.
    assert.doesNotMatch(res.headers.get('content-security-policy') ?? '', /upgrade-insecure-requests/);
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/, 'the page runs only its own scripts');
    const html = await res.text();
    const scripts = [...html.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(scripts.length > 0, `the page loads scripts: ${html.slice(0, 300)}`);
    for (const src of scripts) {
      assert.doesNotMatch(src, /^(https?:)?\/\//, `${src} is local`);
      const asset = await fetch(new URL(src, `${base}/v1/docs/`), { signal: AbortSignal.timeout(10_000) });
      assert.equal(asset.status, 200, `${src} is served`);
      // Read to the end: an unread body keeps its connection busy, and the server's stop would wait for it.
      assert.ok((await asset.arrayBuffer()).byteLength > 0, `${src} is not empty`);
    }
  });

  it('GET /health and /v1/health answer as documented', async () => {
    await answersAsDocumented('GET', '/health', '/health', null);
    await answersAsDocumented('GET', '/v1/health', '/v1/health', admin);
  });

  it('GET /v1/ice-servers answers as documented, and its refusals too', async () => {
    const res = await answersAsDocumented('GET', '/v1/ice-servers', '/v1/ice-servers', alice);
    assert.equal(res.status, 200);
    assert.equal((await answersAsDocumented('GET', '/v1/ice-servers', '/v1/ice-servers', admin)).status, 400, 'an admin must name the user');
    assert.equal((await answersAsDocumented('GET', '/v1/ice-servers', `/v1/ice-servers?user=bob@${DOMAIN}`, alice)).status, 403);
  });

  it('conversations and messages answer as documented', async () => {
    const created = await answersAsDocumented('POST', '/v1/conversations', '/v1/conversations', alice, { peer: `bob@${DOMAIN}` });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = (created.body as { id: string }).id;
    assert.equal((await answersAsDocumented('POST', '/v1/conversations/{id}/messages', `/v1/conversations/${id}/messages`, alice, { body: 'hello' })).status, 201);
    assert.equal((await answersAsDocumented('GET', '/v1/conversations', '/v1/conversations', alice)).status, 200);
    assert.equal((await answersAsDocumented('GET', '/v1/conversations/{id}/messages', `/v1/conversations/${id}/messages`, alice)).status, 200);
    assert.equal((await answersAsDocumented('POST', '/v1/conversations', '/v1/conversations', alice, { peer: 'nobody' })).status, 400);
  });

  it('the call history answers as documented', async () => {
    const now = Date.now();
    await t.server.store.calls.record({
      id: 'openapi-call-1', callId: 'c1@example.com',
      caller: { user: 'alice', domain: DOMAIN, uri: `sip:alice@${DOMAIN}` }, callee: { user: 'bob', domain: DOMAIN, uri: `sip:bob@${DOMAIN}` },
      direction: 'user-user', disposition: 'answered', startedAt: now - 60_000, answeredAt: now - 55_000, endedAt: now,
      duration: 60, billableSeconds: 55, finalCode: 200, hangupBy: 'caller', endCause: 'bye', mediaRelayed: false,
    });
    const page = await answersAsDocumented('GET', '/v1/calls', '/v1/calls', alice);
    assert.equal((page.body as { calls: unknown[] }).calls.length, 1, JSON.stringify(page.body));
    assert.equal((await answersAsDocumented('GET', '/v1/calls/{id}', '/v1/calls/openapi-call-1', admin)).status, 200);
    assert.equal((await answersAsDocumented('GET', '/v1/calls/{id}', '/v1/calls/no-such-call', admin)).status, 404);
    assert.equal((await answersAsDocumented('GET', '/v1/calls', '/v1/calls?limit=many', admin)).status, 400);
  });

  it('bans answer as documented', async () => {
    assert.equal((await answersAsDocumented('POST', '/v1/bans', '/v1/bans', admin, { address: '192.0.2.77', seconds: 60 })).status, 201);
    assert.equal((await answersAsDocumented('GET', '/v1/bans', '/v1/bans', admin)).status, 200);
    assert.equal((await answersAsDocumented('DELETE', '/v1/bans/{address}', '/v1/bans/192.0.2.77', admin)).status, 200);
    assert.equal((await answersAsDocumented('DELETE', '/v1/bans/{address}', '/v1/bans/192.0.2.77', admin)).status, 404);
    assert.equal((await answersAsDocumented('POST', '/v1/bans', '/v1/bans', admin, { address: 'nowhere' })).status, 400);
  });
});
