/**
 * GET /v1/ice-servers (turn/routes.ts) on a real HttpServer on loopback, with real admin and user tokens from a
 * temporary SQLite store and real TurnCredentials: 401 without a token; a user token gets credentials for its
 * own user that verify under the secret; an admin token must name the user; turn.servers empty falls back to
 * the embedded server's URLs, 503 without either; every answer is Cache-Control: no-store.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TurnCredentials } from '../../../turn/credentials.js';
import type { IceServerConfig, RtcIceServer } from '../../../turn/ice-servers.js';
import { NO_SERVER, iceServerRoutes } from '../../../turn/routes.js';
import { type HttpApp, startHttpApp } from '../../helpers/http-app.js';

const SECRET = 'routes-test-secret-0123456789abcdefghij';
const T0 = Date.parse('2026-12-07T08:00:00Z');
const TTL = 3600;

describe('GET /v1/ice-servers', () => {
  const credentials = new TurnCredentials([SECRET]);
  const servers: IceServerConfig[] = [];
  let embedded: string[] | undefined;
  let app: HttpApp;
  let adminToken: string;
  let aliceToken: string;

  const get = (path: string, token: string | null) => app.call('GET', path, token);

  before(async () => {
    app = await startHttpApp(['alice'], () => iceServerRoutes({ credentials, servers, ttlS: TTL, embeddedUrls: () => embedded, random: () => 0, now: () => T0 }));
    adminToken = app.adminToken;
    aliceToken = app.tokens.alice!;
  });

  after(async () => {
    await app?.close();
  });

  const useServers = (list: IceServerConfig[]) => servers.splice(0, servers.length, ...list);

  it('answers 401 without a token, and with a token that is not one', async () => {
    useServers([{ urls: ['stun:turn1.example.com:3478'], weight: 1 }]);
    assert.equal((await get('/ice-servers', null)).status, 401);
    assert.equal((await get('/ice-servers', 'not-a-token')).status, 401);
  });

  it('gives a user token STUN and TURN entries with credentials for its own user that verify under the secret', async () => {
    useServers([{ urls: ['stun:turn1.example.com:3478', 'turn:turn1.example.com:3478?transport=udp', 'turns:turn1.example.com:5349?transport=tcp'], weight: 1 }]);
    const a = await get('/ice-servers', aliceToken);
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('cache-control'), 'no-store');
    const list = a.body.iceServers as RtcIceServer[];
    assert.deepEqual(list[0], { urls: ['stun:turn1.example.com:3478'] });
    const turn = list[1]!;
    assert.deepEqual(turn.urls, ['turn:turn1.example.com:3478?transport=udp', 'turns:turn1.example.com:5349?transport=tcp']);
    assert.equal(turn.username, `${T0 / 1000 + TTL}:alice@example.com`);
    assert.equal(credentials.verify(turn.username!, turn.credential!, T0), true);
    assert.equal(a.body.ttl, TTL);
    assert.equal(a.body.expiresAt, new Date(T0 + TTL * 1000).toISOString());
  });

  it('lets a user token name itself in ?user= but not another user (403)', async () => {
    useServers([{ urls: ['turn:turn1.example.com:3478'], weight: 1 }]);
    const self = await get('/ice-servers?user=alice@EXAMPLE.com', aliceToken);
    assert.equal(self.status, 200);
    assert.equal((self.body.iceServers as RtcIceServer[])[0]!.username, `${T0 / 1000 + TTL}:alice@example.com`);
    const other = await get('/ice-servers?user=bob@example.com', aliceToken);
    assert.equal(other.status, 403);
    assert.equal(other.headers.get('cache-control'), 'no-store');
  });

  it('requires ?user= with an admin token (400 without) and then issues for that user', async () => {
    useServers([{ urls: ['turn:turn1.example.com:3478'], weight: 1 }]);
    const none = await get('/ice-servers', adminToken);
    assert.equal(none.status, 400);
    assert.match(String(none.body.message), /user/);
    const bad = await get('/ice-servers?user=not-an-address', adminToken);
    assert.equal(bad.status, 400);
    const ok = await get('/ice-servers?user=bob@Example.COM', adminToken);
    assert.equal(ok.status, 200);
    const turn = (ok.body.iceServers as RtcIceServer[])[0]!;
    assert.equal(turn.username, `${T0 / 1000 + TTL}:bob@example.com`);
    assert.equal(credentials.verify(turn.username!, turn.credential!, T0), true);
  });

  it('lists the servers of ?region= first and refuses an unknown query field', async () => {
    useServers([
      { urls: ['turn:us1.example.com'], weight: 1, region: 'us' },
      { urls: ['turn:eu1.example.com'], weight: 1, region: 'eu' },
    ]);
    const eu = await get('/ice-servers?region=eu', aliceToken);
    assert.deepEqual((eu.body.iceServers as RtcIceServer[]).map((s) => s.urls[0]), ['turn:eu1.example.com', 'turn:us1.example.com']);
    const us = await get('/ice-servers?region=us', aliceToken);
    assert.deepEqual((us.body.iceServers as RtcIceServer[]).map((s) => s.urls[0]), ['turn:us1.example.com', 'turn:eu1.example.com']);
    assert.equal((await get('/ice-servers?colour=blue', aliceToken)).status, 400);
  });

  it('falls back to the embedded server\'s URLs when turn.servers is empty, and answers 503 when there is none', async () => {
    useServers([]);
    embedded = ['stun:127.0.0.1:3478', 'turn:127.0.0.1:3478?transport=udp'];
    const a = await get('/ice-servers', aliceToken);
    assert.equal(a.status, 200);
    const list = a.body.iceServers as RtcIceServer[];
    assert.deepEqual(list[0], { urls: ['stun:127.0.0.1:3478'] });
    assert.deepEqual(list[1]!.urls, ['turn:127.0.0.1:3478?transport=udp']);
    assert.equal(credentials.verify(list[1]!.username!, list[1]!.credential!, T0), true);

    embedded = undefined;
    const none = await get('/ice-servers', aliceToken);
    assert.equal(none.status, 503);
    assert.deepEqual(none.body, { code: 'API_ERR_UNAVAILABLE', message: NO_SERVER });
    assert.equal(none.headers.get('cache-control'), 'no-store');
  });
});
