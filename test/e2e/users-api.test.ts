/**
 * The users API (server/user-routes.ts) against a whole softswitch with SIP.js phones over WSS: a user made
 * over the API registers, its device is listed, a kicked device is gone from the registrar (a call to it finds
 * nobody), and a password set over the API is the one REGISTER asks for.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SoftphoneError, createSipJsPhone, installTestWebSocket, type Softphone } from '../helpers/softphone.js';
import { TestUsers } from '../helpers/test-users.js';

/** The server's digest credential cache (CachedCredentialSource's default TTL), plus a margin. */
const CREDENTIAL_CACHE_MS = 5_000 + 500;

describe('the users API with registered SIP.js phones', () => {
  let t: TestServer;
  let users: TestUsers;
  let admin: string;
  const phones: Softphone[] = [];

  const phone = async (address: string, password: string): Promise<Softphone> => {
    const p = await createSipJsPhone({ uri: `sip:${address}`, password, wsUrl: `wss://${t.addr('wss')}` });
    phones.push(p);
    return p;
  };

  before(async () => {
    installTestWebSocket();
    t = await startTestServer();
    users = new TestUsers(() => t);
    admin = (await t.server.store.tokens.create({ name: 'users-admin', expiresAt: Date.now() + 600_000 })).token;
  });

  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await users?.stop();
    await t?.stop();
  });

  it('a user made over the API registers; its device is listed, and once kicked its binding is gone and a call to it finds nobody (480)', async () => {
    assert.equal((await users.api(admin, 'POST', '/users', { user: 'kim@example.com', password: 'kim-secret' })).status, 201);
    const kim = await phone('kim@example.com', 'kim-secret');
    await kim.register();

    const listed = await users.api(admin, 'GET', '/users/kim@example.com/devices');
    assert.equal(listed.status, 200);
    assert.equal(listed.body.devices.length, 1, JSON.stringify(listed.body));
    const [device] = listed.body.devices;
    assert.equal(device.aor, 'sip:kim@example.com');
    assert.equal(device.transport, 'wss');
    assert.match(device.userAgent, /SIP\.js/);

    const kicked = await users.api(admin, 'DELETE', `/users/kim@example.com/devices?contact=${encodeURIComponent(device.contact)}`);
    assert.equal(kicked.status, 204);
    assert.deepEqual(t.server.registrar.lookup('sip:kim@example.com'), []);
    assert.deepEqual((await users.api(admin, 'GET', '/users/kim@example.com/devices')).body, { devices: [] });

    const caller = await users.add('caller');
    const callerPhone = await users.phone(caller, 'sip.js');
    await assert.rejects(callerPhone.call('sip:kim@example.com'), (err: unknown) => {
      assert.ok(err instanceof SoftphoneError, String(err));
      assert.equal(err.status, 480, `the call to a kicked device: ${err.message}`);
      return true;
    });
  });

  it('after PUT /v1/users/:user/password a REGISTER with the old password is refused and the new one registers', async () => {
    assert.equal((await users.api(admin, 'POST', '/users', { user: 'lee@example.com', password: 'old-secret' })).status, 201);
    await (await phone('lee@example.com', 'old-secret')).register();
    assert.equal((await users.api(admin, 'PUT', '/users/lee@example.com/password', { password: 'new-secret' })).status, 204);
    // The registrar reads credentials through a short cache (server/app.ts, CachedCredentialSource).
    await sleep(CREDENTIAL_CACHE_MS);
    await assert.rejects((await phone('lee@example.com', 'old-secret')).register(), (err: unknown) => {
      assert.ok(err instanceof SoftphoneError, String(err));
      assert.ok(err.status === 401 || err.status === 403, `REGISTER with the old password: ${err.message}`);
      return true;
    });
    await (await phone('lee@example.com', 'new-secret')).register();
  });
});
