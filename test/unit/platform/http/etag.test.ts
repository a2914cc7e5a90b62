/**
 * Weak ETags on the GET answers of /v1 (platform/http/etag.ts): the same body, the same tag; If-None-Match
 * naming it is 304 with no body (RFC 9110 §13.1.2, weak comparison §8.8.3.2); `private, no-cache` so no shared
 * cache keeps a user's answer. Not on refusals, other methods, other paths, or answers that set their own.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { noneMatch, weakEtag } from '../../../../platform/http/index.js';
import { type HttpApp, startHttpApp } from '../../../helpers/http-app.js';

describe('ETags on /v1 GET answers', () => {
  let app: HttpApp;
  let version = 1;

  function routes(scope: FastifyInstance): void {
    scope.get('/thing', { schema: { summary: 'test' } }, async () => ({ version }));
    scope.post('/thing', { schema: { summary: 'test' } }, async () => ({ version: ++version }));
    scope.get('/own-tag', { schema: { summary: 'test' } }, async (_req, reply) => reply.header('etag', '"v1"').send({ mine: true }));
    scope.get('/fresh', { schema: { summary: 'test' } }, async (_req, reply) => reply.header('cache-control', 'no-store').send({ secret: 'fresh' }));
    scope.get('/text', { schema: { summary: 'test' } }, async (_req, reply) => reply.type('text/plain').send('plain'));
  }

  before(async () => {
    app = await startHttpApp(['alice'], () => routes);
  });
  after(async () => {
    await app?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${app.base}${path}`, { headers: { authorization: `Bearer ${app.tokens.alice!}`, ...headers } });

  it('a GET answered 200 with JSON has a weak ETag of its body and Cache-Control: private, no-cache', async () => {
    const res = await get('/v1/thing');
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.equal(res.headers.get('etag'), weakEtag(body));
    assert.match(res.headers.get('etag') ?? '', /^W\/"[A-Za-z0-9_-]{22}"$/);
    assert.equal(res.headers.get('cache-control'), 'private, no-cache');
    const again = await get('/v1/thing');
    assert.equal(again.headers.get('etag'), res.headers.get('etag'), 'the same body, the same tag');
    await again.arrayBuffer();
  });

  it('If-None-Match naming the tag is 304 with no body; once the data changes it is 200 with a new tag', async () => {
    const first = await get('/v1/thing');
    const etag = first.headers.get('etag')!;
    await first.arrayBuffer();
    const unchanged = await get('/v1/thing', { 'if-none-match': etag });
    assert.equal(unchanged.status, 304);
    assert.equal(unchanged.headers.get('etag'), etag);
    assert.equal(unchanged.headers.get('content-type'), null);
    assert.equal(await unchanged.text(), '');
    const change = await fetch(`${app.base}/v1/thing`, { method: 'POST', headers: { authorization: `Bearer ${app.tokens.alice!}` } });
    assert.equal(change.headers.get('etag'), null, 'no ETag on a POST');
    await change.arrayBuffer();
    const changed = await get('/v1/thing', { 'if-none-match': etag });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.get('etag'), etag);
    assert.deepEqual(await changed.json(), { version });
  });

  it('If-None-Match compares weakly: a list, the strong spelling of the tag, and * all match; another tag does not', async () => {
    const first = await get('/v1/thing');
    const etag = first.headers.get('etag')!;
    await first.arrayBuffer();
    for (const header of [`"other", ${etag}`, etag.slice(2), '*']) {
      const res = await get('/v1/thing', { 'if-none-match': header });
      assert.equal(res.status, 304, header);
      await res.arrayBuffer();
    }
    const other = await get('/v1/thing', { 'if-none-match': 'W/"other"' });
    assert.equal(other.status, 200);
    await other.arrayBuffer();
    assert.equal(noneMatch(undefined, etag), false);
    assert.equal(noneMatch('W/"a" ,W/"b"', 'W/"b"'), true);
  });

  it('no ETag on refusals, on answers that set their own, on other types, or outside /v1 (/health)', async () => {
    const refused = await get('/v1/no-such-route', { authorization: `Bearer ${app.adminToken}` });
    assert.equal(refused.status, 404);
    assert.equal(refused.headers.get('etag'), null);
    await refused.arrayBuffer();
    const own = await get('/v1/own-tag');
    assert.equal(own.headers.get('etag'), '"v1"');
    await own.arrayBuffer();
    const fresh = await get('/v1/fresh');
    assert.equal(fresh.headers.get('cache-control'), 'no-store', 'a route\'s own Cache-Control stands');
    await fresh.arrayBuffer();
    const text = await get('/v1/text');
    assert.equal(text.headers.get('etag'), null);
    await text.arrayBuffer();
    const health = await fetch(`${app.base}/health`);
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('etag'), null);
    await health.arrayBuffer();
  });
});
