/**
 * coturn started with the repo's turn/turnserver.conf as is (only per-run values on its command line) refuses
 * what the production settings say it must: expired and forged TURN REST credentials, and relays into loopback,
 * private and link-local ranges (the TURN relay abuse into the operator's network).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RELAY_PORT_MAX, RELAY_PORT_MIN, startCoturn, type CoturnHandle } from '../../support/coturn.js';
import { TurnClient, type TurnCredentials } from '../helpers/turn-client.js';

const REALM = 'turn.test.invalid';

/**
 * coturn's `use-auth-secret` scheme (TURN REST API): username `<unix expiry>:<user>`,
 * password base64(HMAC-SHA1(secret, username)). Made here with node:crypto on purpose, not by turn/credentials.ts.
 */
function credential(secret: string, user: string, expiresAt: number): TurnCredentials {
  const username = `${expiresAt}:${user}`;
  return { username, password: createHmac('sha1', secret).update(username).digest('base64') };
}

const inAnHour = (): number => Math.floor(Date.now() / 1000) + 3600;

describe('coturn with the repo turnserver.conf', () => {
  const secret = randomBytes(32).toString('hex');
  let coturn: CoturnHandle;
  const clients: TurnClient[] = [];
  const open = async (): Promise<TurnClient> => {
    const client = await TurnClient.open({ address: coturn.address, port: coturn.port });
    clients.push(client);
    return client;
  };
  let users = 0;
  /** An allocation of a user of its own, so the user-quota of 12 never counts them together. */
  const allocated = async (): Promise<TurnClient> => {
    const client = await open();
    const reply = await client.allocate(credential(secret, `user${++users}`, inAnHour()));
    assert.equal(reply.code, 200, `allocate: ${reply.code} ${reply.reason}\n${coturn.logTail()}`);
    return client;
  };

  before(async () => {
    coturn = await startCoturn({ secret, realm: REALM });
  });
  after(async () => {
    for (const c of clients) c.close();
    await coturn?.stop();
  });

  it('allocates a UDP relay for a fresh credential signed with the shared secret', async () => {
    const client = await open();
    const reply = await client.allocate(credential(secret, 'alice', inAnHour()));
    assert.equal(reply.code, 200, `${reply.code} ${reply.reason}\n${coturn.logTail()}`);
    assert.equal(reply.relayed?.address, '127.0.0.1');
    const port = reply.relayed?.port ?? 0;
    assert.ok(port >= RELAY_PORT_MIN && port <= RELAY_PORT_MAX, `relay port ${port} inside min-port..max-port`);
    assert.equal((await client.release()).code, 200);
  });

  it('refuses a credential whose expiry has passed with 401, though its HMAC is right', async () => {
    const client = await open();
    const reply = await client.allocate(credential(secret, 'alice', Math.floor(Date.now() / 1000) - 60));
    assert.equal(reply.code, 401, `${reply.code} ${reply.reason}`);
  });

  it('refuses a credential signed with another secret (a wrong HMAC) with 401', async () => {
    const client = await open();
    const reply = await client.allocate(credential(randomBytes(32).toString('hex'), 'alice', inAnHour()));
    assert.equal(reply.code, 401, `${reply.code} ${reply.reason}`);
  });

  it('refuses a credential whose username was changed after signing (another user, a later expiry) with 401', async () => {
    const good = credential(secret, 'alice', inAnHour());
    const client = await open();
    const reply = await client.allocate({ username: `${inAnHour() + 86_400}:alice`, password: good.password });
    assert.equal(reply.code, 401, `${reply.code} ${reply.reason}`);
    const other = await open();
    assert.equal((await other.allocate({ username: good.username.replace('alice', 'mallory'), password: good.password })).code, 401);
  });

  for (const peer of ['127.0.0.1', '127.1.2.3', '0.0.0.1', '10.0.0.1', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '198.18.0.1']) {
    it(`refuses a permission to ${peer} with 403: the relay cannot reach loopback, private, link-local or internal ranges`, async () => {
      const client = await allocated();
      const reply = await client.createPermission(peer);
      assert.equal(reply.code, 403, `${peer}: ${reply.code} ${reply.reason}`);
    });
  }

  it('refuses a permission to a multicast peer (224.0.0.251) with 403 (no-multicast-peers)', async () => {
    const client = await allocated();
    assert.equal((await client.createPermission('224.0.0.251')).code, 403);
  });

  it('refuses a user\'s 13th concurrent allocation with 486 Allocation Quota Reached (user-quota=12)', async () => {
    const bob = credential(secret, 'bob', inAnHour());
    for (let i = 0; i < 12; i++) {
      const client = await open();
      assert.equal((await client.allocate(bob)).code, 200, `allocation ${i + 1}`);
    }
    const thirteenth = await open();
    const refused = await thirteenth.allocate(bob);
    assert.equal(refused.code, 486, `${refused.code} ${refused.reason}`);
    // another user is not held back by bob's quota
    assert.equal((await (await open()).allocate(credential(secret, 'carol', inAnHour()))).code, 200);
  });

  it('grants a permission to a public-range peer (203.0.113.1, RFC 5737: nothing is sent to it)', async () => {
    const client = await allocated();
    const reply = await client.createPermission('203.0.113.1');
    assert.equal(reply.code, 200, `${reply.code} ${reply.reason}\n${coturn.logTail()}`);
  });
});

describe('coturn with the repo turnserver.conf, relaying over IPv6 (RFC 6156)', () => {
  const secret = randomBytes(32).toString('hex');
  let coturn: CoturnHandle;
  const clients: TurnClient[] = [];
  let users = 0;
  const allocated6 = async (): Promise<TurnClient> => {
    const client = await TurnClient.open({ address: coturn.address, port: coturn.port });
    clients.push(client);
    const reply = await client.allocate(credential(secret, `v6user${++users}`, inAnHour()), { family: 'ipv6' });
    assert.equal(reply.code, 200, `allocate: ${reply.code} ${reply.reason}\n${coturn.logTail()}`);
    assert.equal(reply.relayed?.address, '::1');
    return client;
  };

  before(async () => {
    coturn = await startCoturn({ secret, realm: REALM, ipv6Relay: true });
  });
  after(async () => {
    for (const c of clients) c.close();
    await coturn?.stop();
  });

  for (const peer of ['::1', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'ff02::1']) {
    it(`refuses a permission to ${peer} with 403: loopback, unique-local, link-local and multicast IPv6`, async () => {
      const reply = await (await allocated6()).createPermission(peer);
      assert.equal(reply.code, 403, `${peer}: ${reply.code} ${reply.reason}`);
    });
  }

  for (const peer of ['::ffff:10.0.0.1', '::ffff:127.0.0.1', '64:ff9b::a00:1']) {
    it(`refuses a permission to ${peer} with 403: IPv4-mapped and NAT64 addresses do not get around the IPv4 rules`, async () => {
      const reply = await (await allocated6()).createPermission(peer);
      assert.equal(reply.code, 403, `${peer}: ${reply.code} ${reply.reason}`);
    });
  }

  it('grants a permission to a public-range IPv6 peer (2001:db8::1, RFC 3849: nothing is sent to it)', async () => {
    const reply = await (await allocated6()).createPermission('2001:db8::1');
    assert.equal(reply.code, 200, `${reply.code} ${reply.reason}\n${coturn.logTail()}`);
  });
});

describe('coturn during a secret rotation', () => {
  const current = randomBytes(32).toString('hex');
  const previous = randomBytes(32).toString('hex');
  let coturn: CoturnHandle;
  const clients: TurnClient[] = [];
  const allocate = async (credentials: TurnCredentials): Promise<number> => {
    const client = await TurnClient.open({ address: coturn.address, port: coturn.port });
    clients.push(client);
    return (await client.allocate(credentials)).code;
  };

  before(async () => {
    coturn = await startCoturn({ secret: current, previousSecrets: [previous], realm: REALM });
  });
  after(async () => {
    for (const c of clients) c.close();
    await coturn?.stop();
  });

  it('accepts credentials signed with the new secret and with the previous one, and no other', async () => {
    assert.equal(await allocate(credential(current, 'alice', inAnHour())), 200);
    assert.equal(await allocate(credential(previous, 'bob', inAnHour())), 200);
    assert.equal(await allocate(credential(randomBytes(32).toString('hex'), 'carol', inAnHour())), 401);
  });

  it('shows neither secret in the command line it reports', () => {
    const shown = coturn.argv.join(' ');
    assert.ok(!shown.includes(current) && !shown.includes(previous), shown);
    assert.equal(coturn.argv.filter((a) => a === '--static-auth-secret').length, 2);
  });
});

describe('coturn without the repo turnserver.conf (the control)', () => {
  const secret = randomBytes(32).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'softswitch-coturn-bare-'));
  let coturn: CoturnHandle;
  let client: TurnClient | undefined;

  before(async () => {
    // only what the REST credentials need: no denied-peer-ip lines
    const conf = join(dir, 'bare.conf');
    writeFileSync(conf, 'use-auth-secret\nfingerprint\nno-cli\nno-tls\nno-dtls\n');
    coturn = await startCoturn({ secret, realm: REALM, configFile: conf });
  });
  after(async () => {
    client?.close();
    await coturn?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('grants a permission to 10.0.0.1: the 403s above come from the repo conf, not from coturn defaults', async () => {
    client = await TurnClient.open({ address: coturn.address, port: coturn.port });
    assert.equal((await client.allocate(credential(secret, 'alice', inAnHour()))).code, 200);
    const reply = await client.createPermission('10.0.0.1');
    assert.equal(reply.code, 200, `${reply.code} ${reply.reason}`);
  });
});
