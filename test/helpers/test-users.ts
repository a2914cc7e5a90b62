/**
 * Users and their softphones for the end-to-end suites that run against one test server: each `add()` makes
 * a new subscriber (`<prefix><n>@example.com`, password `<name>-secret`), `phone()` a registered SIP.js or JsSIP
 * phone for it over WS/WSS (stopped by `stop()`), `token()` the user's API token (POST /v1/auth/token with
 * the SIP password), `api()` a /v1 request with a token.
 */
import assert from 'node:assert/strict';
import type { TestServer } from './server.js';
import { type Softphone, type SoftphoneLibrary, createPhone } from './softphone.js';

export interface TestUser {
  name: string;
  /** `name@domain`. */
  address: string;
  /** `sip:name@domain`. */
  aor: string;
  password: string;
}

export interface ApiAnswer {
  status: number;
  // The suites read answers field by field, as the apps do.
  body: any;
}

export class TestUsers {
  private n = 0;
  private readonly phones: Softphone[] = [];

  /** `server`: read at each use, so a suite may restart its server. */
  constructor(private readonly server: () => TestServer, readonly domain = 'example.com') {}

  async add(prefix: string): Promise<TestUser> {
    const name = `${prefix}${++this.n}`;
    const password = `${name}-secret`;
    await this.server().addUser(`${name}@${this.domain}`, password);
    return { name, address: `${name}@${this.domain}`, aor: `sip:${name}@${this.domain}`, password };
  }

  async phone(user: TestUser, library: SoftphoneLibrary, protocol: 'ws' | 'wss' = 'wss', register = true): Promise<Softphone> {
    const t = this.server();
    const p = await createPhone(library, { uri: user.aor, password: user.password, wsUrl: `${protocol}://${t.addr(protocol)}` });
    this.phones.push(p);
    if (register) await p.register();
    return p;
  }

  async token(user: TestUser): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.server().server.http.boundTo}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: user.address, password: user.password }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  async api(token: string, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
    const res = await fetch(`http://127.0.0.1:${this.server().server.http.boundTo}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  /** Stops every phone made so far. */
  async stop(): Promise<void> {
    await Promise.all(this.phones.splice(0).map((p) => p.stop()));
  }
}
