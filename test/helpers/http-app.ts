/**
 * A route module under test on a real HttpServer on loopback (an ephemeral port of 127.0.0.1), with real tokens
 * from a temporary SQLite store (temp-store.ts): the given users of example.com (password `<name>-secret`), an
 * admin token, and each user's access token, signed in as an app does (POST /v1/auth/token, password grant).
 * `call` is a /v1 request with a token (or none); `close` stops the server and deletes the store.
 */
import assert from 'node:assert/strict';
import { HttpServer, UserTokens, loadTokenKey, type TokenResponse } from '../../platform/http/index.js';
import { SqlRefreshTokenRepository, type SqlStore } from '../../platform/store/index.js';
import { type Logger, silentLogger } from '../../src/log/index.js';
import { openTempStore } from './temp-store.js';

export const HTTP_APP_DOMAIN = 'example.com';

export interface HttpAnswer {
  status: number;
  /** The JSON body ({} when empty). */
  body: Record<string, unknown>;
  headers: Headers;
}

export interface HttpApp {
  store: SqlStore;
  http: HttpServer;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  adminToken: string;
  /** Each user's access token, by name. */
  tokens: Readonly<Record<string, string>>;
  /** `method` on `/v1<path>` with `Authorization: Bearer <token>` (none for null), `body` as JSON. */
  call(method: string, path: string, token: string | null, body?: unknown): Promise<HttpAnswer>;
  close(): Promise<void>;
}

export interface HttpAppOptions {
  /** Who may call the routes (HttpServer.routes); default user (admin or user tokens). */
  access?: 'admin' | 'user';
  /** How long a user's password fingerprint is trusted (UserTokens cacheMs); default its own. */
  tokenCacheMs?: number;
  /** How long the server trusts a checked admin token (HttpServer tokenCacheMs); default its own. */
  adminTokenCacheMs?: number;
  /** The server's logger; default silent. */
  logger?: Logger;
  /** HttpServer's http.bodyLimit and http.corsOrigins; default theirs. */
  bodyLimit?: number;
  corsOrigins?: readonly string[];
}

/** Starts `routes` (built over the store) with `users` signed in. */
export async function startHttpApp(
  users: readonly string[], routes: (store: SqlStore) => Parameters<HttpServer['routes']>[0], options: HttpAppOptions = {},
): Promise<HttpApp> {
  const temp = await openTempStore();
  const { store } = temp;
  let http: HttpServer | undefined;
  try {
    for (const username of users) await store.subscribers.add({ username, domain: HTTP_APP_DOMAIN, password: `${username}-secret` });
    const adminToken = (await store.tokens.create({ name: 'ops' })).token;
    const userTokens = new UserTokens({
      subscribers: store.subscribers,
      refreshTokens: new SqlRefreshTokenRepository(store),
      key: loadTokenKey({ dataDir: '/nonexistent', secret: 'a test signing key of enough length', logger: silentLogger() }),
      domains: [HTTP_APP_DOMAIN],
      cacheMs: options.tokenCacheMs,
    });
    http = new HttpServer({
      listen: '127.0.0.1:0', logger: options.logger ?? silentLogger(), tokens: store.tokens, source: { health: () => ({ ok: true }) }, userTokens,
      bodyLimit: options.bodyLimit, corsOrigins: options.corsOrigins, tokenCacheMs: options.adminTokenCacheMs,
    });
    http.routes(routes(store), { access: options.access ?? 'user' });
    await http.start();
    const base = `http://127.0.0.1:${http.boundTo}`;
    const tokens: Record<string, string> = {};
    for (const username of users) {
      const res = await fetch(`${base}/v1/auth/token`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username, password: `${username}-secret` }),
      });
      assert.equal(res.status, 200, `POST /v1/auth/token for ${username}`);
      tokens[username] = ((await res.json()) as TokenResponse).access_token;
    }
    const server = http;
    return {
      store, http: server, base, adminToken, tokens,
      async call(method, path, token, body) {
        const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
        if (body !== undefined) headers['content-type'] = 'application/json';
        const res = await fetch(`${base}/v1${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
        const text = await res.text();
        return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: res.headers };
      },
      async close() {
        await server.stop();
        await temp.close();
      },
    };
  } catch (err) {
    await http?.stop();
    await temp.close();
    throw err;
  }
}
