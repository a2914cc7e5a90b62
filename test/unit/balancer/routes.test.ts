/**
 * Backends, routes, DIDs and trusted sources over /v1 (balancer/routes.ts) on a real HttpServer on loopback,
 * with a real admin token and user token from a temporary SQLite store and a real Balancer over the same
 * store (never started: no probes; the routes' reload is its reload). Every route's success and refusals;
 * a user token gets 403; what is added shows in the balancer's routing in the same answer's wake.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { type Balancer, createBalancer, routingRoutes } from '../../../balancer/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { type HttpAnswer, type HttpApp, startHttpApp } from '../../helpers/http-app.js';
import { FakeStack } from './helpers.js';

describe('routing data over /v1 (backends, routes, DIDs, trusted sources)', () => {
  let app: HttpApp;
  let balancer: Balancer;
  let admin: string;
  let reloads = 0;
  /** While set, the routes' reload fails like a store that went away. */
  let failReload = false;

  before(async () => {
    app = await startHttpApp(['alice'], (store) => {
      balancer = createBalancer({ stack: new FakeStack(), repository: store.routing, logger: silentLogger(), options: { reloadIntervalMs: 0 } });
      return routingRoutes({ routing: store.routing, states: () => balancer.states(), reload: () => {
        reloads++;
        return failReload ? Promise.reject(new Error('the store is unreachable')) : balancer.reload();
      } });
    }, { access: 'admin' });
    admin = app.adminToken;
  });

  after(async () => {
    await app?.close();
  });

  /** Every admin answer, checked against the OpenAPI document at the end. */
  const answers: Array<{ method: string; path: string; res: HttpAnswer }> = [];
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.call(method, path, admin, body);
    answers.push({ method, path, res });
    return res;
  };

  it('refuses a user token (403) and no token (401) on every resource', async () => {
    for (const path of ['/backends', '/routes', '/dids', '/trusted']) {
      assert.equal((await app.call('GET', path, app.tokens.alice!)).status, 403, `GET ${path} with a user token`);
      assert.equal((await app.call('POST', path, app.tokens.alice!, {})).status, 403, `POST ${path} with a user token`);
      assert.equal((await app.call('GET', path, null)).status, 401, `GET ${path} without a token`);
    }
    assert.equal((await app.call('PUT', '/backends/1/enabled', app.tokens.alice!, { enabled: false })).status, 403);
    assert.equal((await app.call('DELETE', '/dids/100', app.tokens.alice!)).status, 403);
  });

  it('adds a backend (201, the set created with the algorithm given) and the balancer has it at once', async () => {
    const before = reloads;
    const res = await call('POST', '/backends', { set: 'fs', uri: 'sip:127.0.0.1:5080', weight: 5, algorithm: 'weighted' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(reloads, before + 1, 'one reload after the change');
    const { id, ...rest } = res.body;
    assert.equal(typeof id, 'number');
    assert.deepEqual({ ...rest, createdAt: typeof rest.createdAt }, {
      set: 'fs', algorithm: 'weighted', uri: 'sip:127.0.0.1:5080', weight: 5, enabled: true, createdAt: 'string', health: 'unknown', activeCalls: 0, failures: 0,
    });
    assert.deepEqual(balancer.candidates('fs').map((c) => c.id), [id]);
    const list = await call('GET', '/backends');
    assert.equal(list.status, 200);
    assert.deepEqual((list.body.backends as Array<Record<string, unknown>>).map((b) => [b.id, b.uri, b.health, b.algorithm]), [[id, 'sip:127.0.0.1:5080', 'unknown', 'weighted']]);
  });

  it('refuses a malformed backend with 400 naming the field, and a duplicate with 409', async () => {
    const cases: Array<[unknown, string]> = [
      [{ set: 'fs', uri: 'http://x' }, 'uri'],
      [{ set: 'bad set', uri: 'sip:127.0.0.1' }, 'set'],
      [{ set: 'fs', uri: 'sip:127.0.0.1', weight: 0 }, 'weight'],
      [{ set: 'fs', uri: 'sip:127.0.0.1', algorithm: 'random' }, 'algorithm'],
      [{ set: 'fs', uri: 'sip:127.0.0.1', colour: 'red' }, 'body'],
      [{ uri: 'sip:127.0.0.1' }, 'set'],
    ];
    for (const [body, field] of cases) {
      const res = await call('POST', '/backends', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.match(String(res.body.message), new RegExp(`^${field}: `), JSON.stringify(res.body));
    }
    const dup = await call('POST', '/backends', { set: 'fs', uri: 'sip:127.0.0.1:5080' });
    assert.equal(dup.status, 409, JSON.stringify(dup.body));
    assert.equal(dup.body.code, 'API_ERR_CONFLICT');
  });

  it('changes the algorithm of an existing set (200, reloaded), lists the sets, and refuses an unknown set (404) or algorithm (400)', async () => {
    await call('POST', '/backends', { set: 'trunks', uri: 'sip:127.0.0.1:5070' });
    const before = reloads;
    const res = await call('PUT', '/backend-sets/trunks', { algorithm: 'least-calls' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { name: 'trunks', algorithm: 'least-calls' });
    assert.equal(reloads, before + 1, 'one reload after the change');
    const sets = (await call('GET', '/backend-sets')).body.sets as Array<Record<string, unknown>>;
    assert.deepEqual(sets.find((s) => s.name === 'trunks'), { name: 'trunks', algorithm: 'least-calls' });
    assert.equal(((await call('GET', '/backends')).body.backends as Array<Record<string, unknown>>).find((b) => b.set === 'trunks')?.algorithm, 'least-calls');
    assert.equal((await call('PUT', '/backend-sets/nowhere', { algorithm: 'round-robin' })).status, 404);
    const bad = await call('PUT', '/backend-sets/trunks', { algorithm: 'random' });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.message), /^algorithm: /);
  });

  it('disables and enables a backend (204): a disabled one is no candidate', async () => {
    const b = await call('POST', '/backends', { set: 'pbx', uri: 'sip:127.0.0.1:5090' });
    const id = b.body.id as number;
    assert.equal((await call('PUT', `/backends/${id}/enabled`, { enabled: false })).status, 204);
    assert.deepEqual(balancer.candidates('pbx'), []);
    assert.equal(((await call('GET', '/backends')).body.backends as Array<Record<string, unknown>>).find((x) => x.id === id)?.enabled, false);
    assert.equal((await call('PUT', `/backends/${id}/enabled`, { enabled: true })).status, 204);
    assert.deepEqual(balancer.candidates('pbx').map((c) => c.id), [id]);
    assert.equal((await call('PUT', `/backends/${id}/enabled`, { enabled: 'yes' })).status, 400);
    assert.equal((await call('PUT', '/backends/99999/enabled', { enabled: true })).status, 404);
    assert.equal((await call('PUT', '/backends/x/enabled', { enabled: true })).status, 400);
  });

  it('deletes a backend (204), then 404 for it; a malformed id is 400', async () => {
    const b = await call('POST', '/backends', { set: 'gone', uri: 'sip:127.0.0.1:5100' });
    assert.equal((await call('DELETE', `/backends/${b.body.id}`)).status, 204);
    assert.deepEqual(balancer.candidates('gone'), []);
    const again = await call('DELETE', `/backends/${b.body.id}`);
    assert.equal(again.status, 404);
    assert.equal(again.body.code, 'API_ERR_NOT_FOUND');
    assert.equal((await call('DELETE', '/backends/0')).status, 400);
  });

  it('adds a route (201) that the dialplan matches at once, lists it, and deletes it (204, then 404)', async () => {
    const res = await call('POST', '/routes', { pattern: '0([0-9]+)', set: 'fs', replace: '+49$1', priority: 5, description: 'national' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const id = res.body.id as number;
    assert.deepEqual(res.body, { id, pattern: '0([0-9]+)', replace: '+49$1', set: 'fs', priority: 5, description: 'national' });
    const match = balancer.routing.matchRoute('03012345');
    assert.equal(match?.set, 'fs');
    assert.equal(match?.number, '+493012345');
    assert.deepEqual(((await call('GET', '/routes')).body.routes as Array<{ id: number }>).map((r) => r.id), [id]);
    assert.equal((await call('DELETE', `/routes/${id}`)).status, 204);
    assert.equal(balancer.routing.matchRoute('03012345'), undefined);
    assert.equal((await call('DELETE', `/routes/${id}`)).status, 404);
  });

  it('refuses a route whose pattern does not compile, or with a bad set or priority (400)', async () => {
    for (const [body, field] of [
      [{ pattern: '([0-9]+', set: 'fs' }, 'pattern'],
      [{ pattern: '1', set: 'a b' }, 'set'],
      [{ pattern: '1', set: 'fs', priority: 1.5 }, 'priority'],
    ] as Array<[unknown, string]>) {
      const res = await call('POST', '/routes', body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(String(res.body.message), new RegExp(`^${field}: `));
    }
  });

  it('adds a DID (201, the domain as stored: lower case) that rings its user at once, refuses a duplicate (409), deletes it', async () => {
    const res = await call('POST', '/dids', { number: '+4930123456', username: 'alice', domain: 'Example.COM' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body, { number: '+4930123456', username: 'alice', domain: 'example.com' });
    assert.deepEqual(balancer.routing.did('+4930123456'), { number: '+4930123456', username: 'alice', domain: 'example.com' });
    assert.equal((await call('POST', '/dids', { number: '+4930123456', username: 'bob', domain: 'example.com' })).status, 409);
    assert.equal((await call('POST', '/dids', { number: '12ab', username: 'bob', domain: 'example.com' })).status, 400);
    assert.deepEqual((await call('GET', '/dids')).body, { dids: [{ number: '+4930123456', username: 'alice', domain: 'example.com' }] });
    assert.equal((await call('DELETE', `/dids/${encodeURIComponent('+4930123456')}`)).status, 204);
    assert.equal(balancer.routing.did('+4930123456'), undefined);
    assert.equal((await call('DELETE', '/dids/4930123456')).status, 404);
    assert.equal((await call('DELETE', '/dids/12ab')).status, 400);
  });

  it('adds a trusted source (201) that is trusted at once, refuses a CIDR that does not parse (400) and a duplicate (409), deletes it', async () => {
    const res = await call('POST', '/trusted', { cidr: '192.0.2.0/24', description: 'trunk' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body, { id: res.body.id, cidr: '192.0.2.0/24', description: 'trunk' });
    assert.equal(balancer.routing.isTrusted('192.0.2.77'), true);
    assert.equal((await call('POST', '/trusted', { cidr: '192.0.2.0/24' })).status, 409);
    const bad = await call('POST', '/trusted', { cidr: '192.0.2.0/33' });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.message), /^cidr: /);
    assert.equal(((await call('GET', '/trusted')).body.trusted as unknown[]).length, 1);
    assert.equal((await call('DELETE', `/trusted/${res.body.id}`)).status, 204);
    assert.equal(balancer.routing.isTrusted('192.0.2.77'), false);
    assert.equal((await call('DELETE', `/trusted/${res.body.id}`)).status, 404);
  });

  it('answers 503 when the reload after a change fails: the change is stored and counts from the next reload', async () => {
    failReload = true;
    let res;
    try {
      res = await call('POST', '/trusted', { cidr: '198.51.100.7' });
    } finally {
      failReload = false;
    }
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.code, 'API_ERR_UNAVAILABLE');
    assert.match(String(res.body.message), /saved, but the balancer could not reload/);
    const stored = ((await call('GET', '/trusted')).body.trusted as Array<{ id: number; cidr: string }>).find((t) => t.cidr === '198.51.100.7');
    assert.ok(stored !== undefined, 'the trusted source is stored');
    assert.equal(balancer.routing.isTrusted('198.51.100.7'), false, 'not trusted before a reload');
    assert.equal((await call('DELETE', `/trusted/${stored.id}`)).status, 204);
  });

  it('answers as the OpenAPI document says, every status seen above included', async () => {
    const doc = (await app.call('GET', '/openapi.json', null)).body as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
    };
    // CommonJS modules: their class and function are `default` here.
    const ajv = new Ajv2020.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    assert.ok(answers.length >= 40, `the tests above made ${answers.length} calls`);
    for (const { method, path, res } of answers) {
      const route = `/v1${path.replace(/^\/(backends|routes|trusted)\/[^/]+/, '/$1/{id}').replace(/^\/backend-sets\/.+/, '/backend-sets/{set}').replace(/^\/dids\/.+/, '/dids/{number}')}`;
      const documented = doc.paths[route]?.[method.toLowerCase()]?.responses[String(res.status)];
      assert.ok(documented !== undefined, `${method} ${path} answered ${res.status}, which ${route} does not document: ${JSON.stringify(res.body)}`);
      if (res.status === 204) continue;
      const schema = documented.content?.['application/json']?.schema;
      assert.ok(schema !== undefined, `${method} ${route} ${res.status} has no JSON schema`);
      const validate = ajv.compile(schema);
      assert.ok(validate(res.body), `${method} ${path} → ${res.status} ${JSON.stringify(res.body)} does not match its schema: ${ajv.errorsText(validate.errors)}`);
    }
  });
});
