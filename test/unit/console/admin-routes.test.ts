/**
 * GET /v1/registrations (console/admin-routes.ts) on a real HttpServer on loopback, its bindings from a real
 * LocationService: a node's bindings come a page at a time, by AoR then contact, every binding once, one user's when
 * asked; a cursor it did not make is 400.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { adminRoutes } from '../../../console/index.js';
import { LocationService, isAsleep } from '../../../registrar/index.js';
import type { Binding } from '../../../registrar/types.js';
import { silentLogger } from '../../../src/log/index.js';
import { parseNameAddrs } from '../../../src/sip/index.js';
import { type HttpApp, startHttpApp } from '../../helpers/http-app.js';

function binding(aor: string, port: number): Binding {
  const na = parseNameAddrs(`<sip:phone@192.0.2.7:${port};transport=ws>`, 'contact', true)[0]!;
  const now = Date.now();
  return {
    aor, contact: na, contactUri: na.uri.toString(), expiresAt: now + 600_000, callId: `call-${port}`, cseq: 1,
    received: { protocol: 'wss', address: '192.0.2.7', port }, userAgent: 'SIP.js/0.21', updatedAt: now,
  };
}

describe('GET /v1/registrations, a page at a time', () => {
  let app: HttpApp;
  const locations = new LocationService({ logger: silentLogger() });

  before(async () => {
    for (const [user, ports] of [['carol', [5003, 5001]], ['alice', [5002]], ['bob', [5005, 5004]]] as const) {
      const aor = `sip:${user}@example.com`;
      locations.update(aor, { add: ports.map((p) => binding(aor, p)) });
    }
    app = await startHttpApp([], () => adminRoutes({
      registrations: () => locations.list(),
      isAsleep,
      activeCalls: async () => ({ calls: [], workersMissing: 0 }),
      hangUp: async () => ({ result: 'unknown', workersMissing: 0 }),
    }), { access: 'admin' });
  });

  after(async () => {
    await app?.close();
  });

  it('gives every binding once, by AoR then contact, in pages of `limit` linked by `next`', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await app.call('GET', `/registrations?limit=2${cursor === undefined ? '' : `&cursor=${cursor}`}`, app.adminToken);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      seen.push(...(res.body.registrations as Array<{ aor: string; contact: string }>).map((r) => `${r.aor} ${r.contact.replace(/;.*/, '')}`));
      cursor = res.body.next as string | undefined;
      pages++;
    } while (cursor !== undefined && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [
      'sip:alice@example.com sip:phone@192.0.2.7:5002',
      'sip:bob@example.com sip:phone@192.0.2.7:5004', 'sip:bob@example.com sip:phone@192.0.2.7:5005',
      'sip:carol@example.com sip:phone@192.0.2.7:5001', 'sip:carol@example.com sip:phone@192.0.2.7:5003',
    ]);
  });

  it('pages one user\'s bindings with the same cursor rules, and answers 400 for a cursor it did not make', async () => {
    const first = await app.call('GET', '/registrations?user=bob@EXAMPLE.com&limit=1', app.adminToken);
    assert.deepEqual((first.body.registrations as Array<{ aor: string }>).map((r) => r.aor), ['sip:bob@example.com']);
    const second = await app.call('GET', `/registrations?user=bob@example.com&limit=1&cursor=${String(first.body.next)}`, app.adminToken);
    assert.equal((second.body.registrations as unknown[]).length, 1);
    assert.equal(second.body.next, undefined);
    const bad = await app.call('GET', '/registrations?cursor=bm9wZQ', app.adminToken);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'API_ERR_INVALID');
  });
});
