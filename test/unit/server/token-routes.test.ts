/**
 * Admin tokens over the API (server/token-routes.ts) on a real HttpServer on loopback over a temporary SQLite
 * store: a token created over HTTP authenticates at once and is shown only in its creation's answer, the list never
 * shows a secret, a revoked token stops working, and a user token is refused.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tokenRoutes } from '../../../server/token-routes.js';
import { type HttpApp, startHttpApp } from '../../helpers/http-app.js';

describe('admin tokens as a resource: /v1/tokens', () => {
  let app: HttpApp;
  const asAdmin = (method: string, path: string, body?: unknown) => app.call(method, path, app.adminToken, body);

  before(async () => {
    // The server trusts a checked token for tokenCacheMs: 0 makes a revocation take effect on the next request.
    app = await startHttpApp(['alice'], (store) => tokenRoutes(store.tokens), { access: 'admin', adminTokenCacheMs: 0 });
  });

  after(async () => {
    await app?.close();
  });

  it('creates a token (201) whose secret is answered once, not cached, and authenticates the next request', async () => {
    const res = await asAdmin('POST', '/tokens', { name: 'grafana', expires: '30d' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const token = String(res.body.token);
    assert.equal(res.body.name, 'grafana');
    const days = (Date.parse(String(res.body.expiresAt)) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);
    const list = await app.call('GET', '/tokens', token);
    assert.equal(list.status, 200);
    const names = (list.body.tokens as Array<Record<string, unknown>>).map((t) => t.name);
    assert.deepEqual(names.sort(), ['grafana', 'ops']);
    assert.ok(!JSON.stringify(list.body).includes(token), 'the list shows no secret');
    assert.ok((list.body.tokens as Array<Record<string, unknown>>).every((t) => !('token' in t) && !('hash' in t)));
  });

  it('answers 409 for a name in use and 400 for a bad name, a CLI name or a bad expiry, naming the field', async () => {
    assert.equal((await asAdmin('POST', '/tokens', { name: 'ops' })).status, 409);
    for (const [body, field] of [
      [{ name: '1st token' }, /name/],
      [{ name: 'cli-mine' }, /name/],
      [{ name: 'x', expires: 'tomorrow' }, /expires/],
      [{ name: 'x', scope: 'all' }, /scope/],
    ] as const) {
      const res = await asAdmin('POST', '/tokens', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(JSON.stringify(res.body), field);
    }
  });

  it('a token created with expires "never" has no expiry', async () => {
    const res = await asAdmin('POST', '/tokens', { name: 'forever', expires: 'never' });
    assert.equal(res.status, 201);
    assert.equal(res.body.expiresAt, undefined);
    assert.equal(res.body.expired, false);
  });

  it('revokes a token (204): it is refused (401) from then on; an unknown id is 404', async () => {
    const created = await asAdmin('POST', '/tokens', { name: 'rotated' });
    const token = String(created.body.token);
    assert.equal((await app.call('GET', '/tokens', token)).status, 200);
    assert.equal((await asAdmin('DELETE', `/tokens/${String(created.body.id)}`)).status, 204);
    assert.equal((await app.call('GET', '/tokens', token)).status, 401);
    assert.equal((await asAdmin('DELETE', `/tokens/${String(created.body.id)}`)).status, 404);
    assert.equal((await asAdmin('DELETE', '/tokens/abc')).status, 400);
  });

  it('refuses a user token with 403: only admins see or make admin tokens', async () => {
    assert.equal((await app.call('GET', '/tokens', app.tokens.alice!)).status, 403);
    assert.equal((await app.call('POST', '/tokens', app.tokens.alice!, { name: 'mine' })).status, 403);
  });
});
