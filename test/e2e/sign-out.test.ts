/**
 * Sign-out through the running server (DELETE /v1/auth/token, platform/http/user-tokens.ts), over real HTTP as an
 * app does it: the access token presented and its refresh token stop working, another user's tokens do not, the
 * sign-out outlives a restart (it is in the store, not in a process), and a user token never opens an admin route.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type TestUser, TestUsers } from '../helpers/test-users.js';

interface Session {
  access_token: string;
  refresh_token: string;
}

describe('DELETE /v1/auth/token: an app signs out', () => {
  let t: TestServer;
  const users = new TestUsers(() => t);
  const url = (path: string) => `http://127.0.0.1:${t.server.http.boundTo}/v1${path}`;

  async function tokenRequest(body: object): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(url('/auth/token'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function signIn(user: TestUser): Promise<Session> {
    const res = await tokenRequest({ grant_type: 'password', username: user.address, password: user.password });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as unknown as Session;
  }

  const signOut = (session: Session) => fetch(url('/auth/token'), { method: 'DELETE', headers: { authorization: `Bearer ${session.access_token}` } });
  const iceServers = async (session: Session) => (await users.api(session.access_token, 'GET', '/ice-servers')).status;

  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await users.stop();
    await t?.stop();
  });

  it('after a sign-out the same access token is 401 and its refresh token is refused; another user\'s tokens keep working', async () => {
    const ana = await signIn(await users.add('ana'));
    const ben = await signIn(await users.add('ben'));
    assert.equal(await iceServers(ana), 200);
    const res = await signOut(ana);
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    assert.equal(await iceServers(ana), 401);
    const refresh = await tokenRequest({ grant_type: 'refresh_token', refresh_token: ana.refresh_token });
    assert.equal(refresh.status, 401);
    assert.equal(refresh.body.error, 'invalid_grant');
    assert.equal(await iceServers(ben), 200);
    assert.equal((await tokenRequest({ grant_type: 'refresh_token', refresh_token: ben.refresh_token })).status, 200);
  });

  it('a sign-out holds after a restart of the server (the new process reads it from the store)', async () => {
    const cid = await signIn(await users.add('cid'));
    const dee = await signIn(await users.add('dee'));
    assert.equal((await signOut(cid)).status, 204);
    await t.restart();
    assert.equal(await iceServers(cid), 401);
    assert.equal(await iceServers(dee), 200);
  });

  it('a user access token on admin routes is 403 insufficient_scope', async () => {
    const eve = await signIn(await users.add('eve'));
    for (const [method, path] of [['GET', '/health'], ['GET', '/bans']] as const) {
      const res = await fetch(url(path), { method, headers: { authorization: `Bearer ${eve.access_token}` } });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    }
  });
});
