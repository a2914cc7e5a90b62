/**
 * GET /v1/ice-servers through the running server: an app signed in with its user token gets the configured
 * STUN/TURN servers with a credential in coturn's use-auth-secret scheme (username `<expiry>:<user>`, password
 * base64 HMAC-SHA1 of it with turn.secret) that lasts turn.ttl; without a token, 401.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { TestUsers } from '../helpers/test-users.js';

const SECRET = 'ice-servers-test-secret-0123456789abcdef';

describe('GET /v1/ice-servers', () => {
  let t: TestServer;
  const users = new TestUsers(() => t);

  before(async () => {
    t = await startTestServer({
      turn: {
        secret: SECRET,
        ttl: 600,
        servers: [{ urls: ['stun:turn.example.com:3478', 'turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349?transport=tcp'] }],
      },
    });
  });
  after(async () => {
    await users.stop();
    await t?.stop();
  });

  it('gives a signed-in app STUN without credentials and TURN with a credential coturn accepts, lasting turn.ttl', async () => {
    const ana = await users.add('ana');
    const before = Math.floor(Date.now() / 1000);
    const res = await users.api(await users.token(ana), 'GET', '/ice-servers');
    assert.equal(res.status, 200);
    const servers = res.body.iceServers as Array<{ urls: string[]; username?: string; credential?: string }>;
    const stun = servers.find((s) => s.urls.some((u) => u.startsWith('stun:')));
    const turn = servers.find((s) => s.urls.some((u) => u.startsWith('turn')));
    assert.equal(stun?.username, undefined);
    assert.deepEqual(turn?.urls.sort(), ['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349?transport=tcp']);
    const [expiry, user] = turn!.username!.split(':');
    assert.equal(user, ana.address);
    assert.ok(Number(expiry) >= before + 600 && Number(expiry) <= before + 602, `expiry ${expiry}`);
    assert.equal(turn!.credential, createHmac('sha1', SECRET).update(turn!.username!).digest('base64'));
  });

  for (const [library, protocol] of [['sip.js', 'wss'], ['jssip', 'ws']] as const) {
    it(`a ${library} app registering over ${protocol.toUpperCase()} reads the same ICE servers, with its own credential, from the 200's X-Ice-Servers header`, async () => {
      const bob = await users.add('bob');
      const phone = await users.phone(bob, library, protocol);
      const header = phone.registeredHeader('X-Ice-Servers');
      assert.ok(header, 'the 200 to REGISTER has X-Ice-Servers');
      const answer = JSON.parse(header) as { iceServers: Array<{ urls: string[]; username?: string; credential?: string }>; ttl: number; expiresAt: string };
      assert.equal(answer.ttl, 600);
      const turn = answer.iceServers.find((s) => s.username !== undefined);
      assert.deepEqual(turn?.urls.sort(), ['turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com:5349?transport=tcp']);
      assert.equal(turn!.username!.split(':')[1], bob.address, 'the credential is issued to the registered user');
      assert.equal(turn!.credential, createHmac('sha1', SECRET).update(turn!.username!).digest('base64'));
      assert.equal(Date.parse(answer.expiresAt), Number(turn!.username!.split(':')[0]) * 1000);
    });
  }

  it('answers 401 to an app without a token', async () => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/v1/ice-servers`);
    assert.equal(res.status, 401);
  });
});
