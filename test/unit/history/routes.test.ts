/**
 * GET /v1/calls and GET /v1/calls/:id (history/routes.ts) on a real HttpServer with an admin token, over
 * an in-memory CallRepository: query validation, filters passed through as the repository's CallQuery,
 * cursor pages, the JSON shape. A user token's restriction is tested with the tokens
 * (test/unit/platform/http/user-tokens.test.ts).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HttpServer } from '../../../platform/http/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { callRoutes, parseInstant } from '../../../history/routes.js';
import { MemoryCallRepository, callRecord, userParty } from '../../helpers/memory-calls.js';

const TOKEN = `sst_${'a'.repeat(43)}`;
const T0 = Date.parse('2026-12-01T10:00:00Z');

describe('GET /v1/calls', () => {
  const calls = new MemoryCallRepository([
    callRecord('a', T0),
    callRecord('b', T0 + 60_000, { direction: 'user-pstn', callee: { number: '+4930123456', uri: 'sip:+4930123456@example.com' }, disposition: 'busy', answeredAt: undefined, finalCode: 486, billableSeconds: 0 }),
    callRecord('c', T0 + 120_000, { caller: userParty('carol') }),
    callRecord('d', T0 + 180_000),
    callRecord('e', T0 + 240_000),
  ]);
  let http: HttpServer;

  async function get(path: string, token: string | null = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await http.fastify.inject({ method: 'GET', url: path, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    return { status: res.statusCode, body: res.json() };
  }

  before(async () => {
    http = new HttpServer({
      listen: '127.0.0.1:0',
      logger: silentLogger(),
      tokens: { lookup: async (t) => (t === TOKEN ? { id: 1, name: 'ops', expiresAt: undefined } : undefined) },
      source: { health: () => ({ ok: true }) },
    });
    http.routes(callRoutes(calls), { access: 'user' });
    await http.fastify.ready();
  });

  after(async () => {
    await http.stop();
  });

  it('answers the newest first, 50 a page by default, with the times as ISO-8601 text', async () => {
    const { status, body } = await get('/v1/calls');
    assert.equal(status, 200);
    const list = body.calls as Array<Record<string, unknown>>;
    assert.deepEqual(list.map((c) => c.id), ['e', 'd', 'c', 'b', 'a']);
    assert.equal(body.next, undefined);
    assert.deepEqual(calls.queries.at(-1), { limit: 50 });
    const a = list.at(-1)!;
    assert.equal(a.startedAt, '2026-12-01T10:00:00.000Z');
    assert.equal(a.answeredAt, '2026-12-01T10:00:05.000Z');
    assert.equal(a.endedAt, '2026-12-01T10:01:05.000Z');
    assert.equal(a.duration, 65);
    assert.ok(!('answeredAt' in list[3]!), 'an unanswered call has no answeredAt');
  });

  it('passes every filter to the repository: user (domain lower-cased), number, direction, disposition, since/until as ISO or ms, limit', async () => {
    const { status, body } = await get(`/v1/calls?user=alice@Example.COM&number=%2B4930123456&direction=user-pstn&disposition=busy&since=2026-12-01T10:00:00Z&until=${T0 + 3_600_000}&limit=10`);
    assert.equal(status, 200);
    assert.deepEqual(calls.queries.at(-1), {
      user: 'alice@example.com', number: '+4930123456', direction: 'user-pstn', disposition: 'busy', since: T0, until: T0 + 3_600_000, limit: 10,
    });
    assert.deepEqual((body.calls as Array<{ id: string }>).map((c) => c.id), ['b']);
  });

  it('pages with the cursor the last page gave, until a page without next', async () => {
    const seen: string[] = [];
    let path = '/v1/calls?limit=2';
    let pages = 0;
    for (;;) {
      const { status, body } = await get(path);
      assert.equal(status, 200);
      pages++;
      seen.push(...(body.calls as Array<{ id: string }>).map((c) => c.id));
      if (body.next === undefined) break;
      path = `/v1/calls?limit=2&cursor=${encodeURIComponent(String(body.next))}`;
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, ['e', 'd', 'c', 'b', 'a']);
  });

  it('refuses a bad query with 400 naming the parameter', async () => {
    const cases: Array<[string, RegExp]> = [
      ['limit=0', /^limit: /],
      ['limit=501', /^limit: /],
      ['limit=ten', /^limit: expected a whole number/],
      ['direction=sideways', /^direction: /],
      ['disposition=maybe', /^disposition: /],
      ['since=yesterday', /^since: expected an ISO-8601 time/],
      [`since=${T0}&until=${T0}`, /^since: since must be before until/],
      ['user=alice', /^user: expected user@domain/],
      ['colour=blue', /unknown parameter\(s\) colour/],
      ['limit=1&limit=2', /^limit: /],
      ['cursor=not-a-cursor', /^cursor: /],
    ];
    for (const [query, message] of cases) {
      const { status, body } = await get(`/v1/calls?${query}`);
      assert.equal(status, 400, query);
      assert.match(String(body.message), message, query);
    }
  });

  it('GET /v1/calls/:id answers the record, or 404', async () => {
    const found = await get('/v1/calls/c');
    assert.equal(found.status, 200);
    assert.equal(found.body.id, 'c');
    assert.equal((found.body.caller as { user: string }).user, 'carol');
    const missing = await get('/v1/calls/zzz');
    assert.equal(missing.status, 404);
  });

  it('needs a token like every /v1/ route', async () => {
    assert.equal((await get('/v1/calls', null)).status, 401);
    assert.equal((await get('/v1/calls/a', `sst_${'b'.repeat(43)}`)).status, 401);
  });

  it('reads since/until as ms since the epoch, ISO-8601 with a zone, or a date alone (UTC)', () => {
    assert.equal(parseInstant('1764583200000'), 1764583200000);
    assert.equal(parseInstant('2026-12-01T10:00:00+01:00'), T0 - 3_600_000);
    assert.equal(parseInstant('2026-12-01'), Date.parse('2026-12-01T00:00:00Z'));
    assert.equal(parseInstant('2026-12-01T10:00:00'), undefined, 'a time without a zone is ambiguous');
    assert.equal(parseInstant('last week'), undefined);
  });
});
