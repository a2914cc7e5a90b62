/**
 * The embedded STUN/TURN server (turn/server.ts) on loopback, driven by the independent test client
 * (test/helpers/turn-client.ts, also checked against coturn) and by coturn's own client, turnutils_uclient:
 * TURN REST credentials (fresh, expired, forged, a previous secret), nonces, the peer rules of the coturn
 * sample, quotas, max-bps, data both ways (Send/Data indications and ChannelData) and garbage.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { EmbeddedTurnServer, type EmbeddedTurnServerOptions, type PeerRange } from '../../turn/server.js';
import { TurnCredentials as Credentials } from '../../turn/credentials.js';
import { parseCidr } from '../../platform/config/config.js';
import { silentLogger } from '../../src/log/index.js';
import { freePort, requireTool, run } from '../../support/tools.js';
import { captureLogger } from '../helpers/log-capture.js';
import { LoopbackNamespace } from '../../support/netns.js';
import {
  StunAttr, StunMethod, TurnClient, attribute, decodeStun, decodeXorAddress, encodeStun, longTermKey, type StunAttribute, type StunMessage, type TransportAddress,
  type TurnCredentials,
} from '../helpers/turn-client.js';
import type { TurnWebrtcResult } from './turn-webrtc-runner.js';

const REALM = 'turn.test.invalid';
/** Relay ports above Linux's ephemeral range, where freePort() finds the other tests' ports; each server a window of its own. */
const RELAY_BASE = 61000;

/** The TURN REST credential written out with node:crypto, not by turn/credentials.ts. */
function credential(secret: string, user: string, expiresAt: number = inAnHour()): TurnCredentials {
  const username = `${expiresAt}:${user}`;
  return { username, password: createHmac('sha1', secret).update(username).digest('base64') };
}

function inAnHour(): number {
  return Math.floor(Date.now() / 1000) + 3600;
}

const cidrs = (...list: string[]): PeerRange[] => list.map(parseCidr);

interface Harness {
  server: EmbeddedTurnServer;
  addr: TransportAddress;
  /** Moves the server's clock. */
  advance(ms: number): void;
  open(): Promise<TurnClient>;
  /** An allocation for a user of its own. */
  allocated(user?: string): Promise<{ client: TurnClient; relayed: TransportAddress }>;
  stop(): Promise<void>;
}

let windows = 0;

async function harness(secrets: string[], options: Partial<EmbeddedTurnServerOptions> = {}): Promise<Harness> {
  let offset = 0;
  const min = RELAY_BASE + ((process.pid * 37 + windows++ * 200) % 4000);
  const server = new EmbeddedTurnServer({
    listen: { address: '127.0.0.1', port: await freePort() },
    relayAddress: '127.0.0.1',
    relayPorts: { min, max: min + 199 },
    realm: REALM,
    credentials: new Credentials(secrets),
    userQuota: 12,
    totalQuota: 1200,
    maxBps: 0,
    logger: silentLogger(),
    now: () => Date.now() + offset,
    ...options,
  });
  await server.start();
  const clients: TurnClient[] = [];
  let users = 0;
  const h: Harness = {
    server,
    addr: server.address(),
    advance: (ms) => (offset += ms),
    async open() {
      const client = await TurnClient.open(h.addr, { timeoutMs: 2000 });
      clients.push(client);
      return client;
    },
    async allocated(user = `user${++users}`) {
      const client = await h.open();
      const reply = await client.allocate(credential(secrets[0]!, user));
      assert.equal(reply.code, 200, `allocate: ${reply.code} ${reply.reason}`);
      return { client, relayed: reply.relayed! };
    },
    async stop() {
      for (const c of clients) c.close();
      await server.stop();
    },
  };
  return h;
}

/** A UDP peer on 127.0.0.1 that echoes what it gets and remembers who sent it. */
async function echoPeer(): Promise<{ socket: Socket; addr: TransportAddress; got: Array<{ from: TransportAddress; data: Buffer }> }> {
  const socket = createSocket('udp4');
  const got: Array<{ from: TransportAddress; data: Buffer }> = [];
  socket.on('message', (data, rinfo) => {
    got.push({ from: { address: rinfo.address, port: rinfo.port }, data });
    socket.send(Buffer.concat([Buffer.from('echo:'), data]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, addr: { address: '127.0.0.1', port: socket.address().port }, got };
}

async function until(what: string, check: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/**
 * Requests made by hand on a socket of their own, for what the test client does not do (a chosen transaction ID
 * sent again, TCP transport, EVEN-PORT, a broken attribute): the first is sent unsigned for the 401 challenge,
 * then each is signed with the long-term key and the challenge's nonce and sent `copies` times. Returns, per
 * request, every answer to its transaction ID, as bytes.
 */
async function handMade(addr: TransportAddress, cred: TurnCredentials, requests: Array<{ method: number; attrs: StunAttribute[]; copies?: number }>): Promise<Buffer[][]> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    const answers = new Map<string, Buffer[]>();
    socket.on('message', (buf) => {
      const id = decodeStun(buf)?.transactionId.toString('hex');
      if (id !== undefined) answers.set(id, [...(answers.get(id) ?? []), buf]);
    });
    const challengeTid = randomBytes(12);
    socket.send(encodeStun({ method: requests[0]!.method, class: 'request', transactionId: challengeTid, attributes: requests[0]!.attrs }, { fingerprint: true }), addr.port, addr.address);
    await until('the 401 challenge', () => answers.has(challengeTid.toString('hex')));
    const nonce = attribute(decodeStun(answers.get(challengeTid.toString('hex'))![0]!)!, StunAttr.Nonce)!;
    const results: Buffer[][] = [];
    for (const { method, attrs, copies = 1 } of requests) {
      const tid = randomBytes(12);
      const packet = encodeStun({
        method, class: 'request', transactionId: tid,
        attributes: [...attrs, { type: StunAttr.Username, value: Buffer.from(cred.username) }, { type: StunAttr.Realm, value: Buffer.from(REALM) }, { type: StunAttr.Nonce, value: nonce }],
      }, { key: longTermKey(cred.username, REALM, cred.password), fingerprint: true });
      for (let i = 0; i < copies; i++) {
        socket.send(packet, addr.port, addr.address);
        await sleep(30);
      }
      await until(`an answer to request ${results.length + 1}`, () => (answers.get(tid.toString('hex'))?.length ?? 0) >= copies);
      results.push(answers.get(tid.toString('hex'))!);
    }
    return results;
  } finally {
    socket.close();
  }
}

function codeOf(buf: Buffer): number {
  const m = decodeStun(buf)!;
  if (m.class === 'success') return 200;
  const v = attribute(m, StunAttr.ErrorCode)!;
  return (v[2]! & 7) * 100 + v[3]!;
}

const UDP_TRANSPORT = { type: StunAttr.RequestedTransport, value: Buffer.from([17, 0, 0, 0]) };

describe('the embedded TURN server: credentials and nonces', () => {
  const secret = randomBytes(32).toString('hex');
  const previous = randomBytes(32).toString('hex');
  let h: Harness;
  before(async () => {
    h = await harness([secret, previous]);
  });
  after(() => h?.stop());

  it('answers a STUN Binding request without credentials with the client\'s address in XOR-MAPPED-ADDRESS (RFC 5389 §7.3.1)', async () => {
    const client = await h.open();
    const reply = await client.binding();
    assert.equal(reply.code, 200);
    assert.deepEqual(reply.mapped, client.local);
  });

  it('allocates a UDP relay for a fresh credential: XOR-RELAYED-ADDRESS in the relay range, XOR-MAPPED-ADDRESS, LIFETIME 600 s (RFC 5766 §6.2)', async () => {
    const client = await h.open();
    const reply = await client.allocate(credential(secret, 'alice'));
    assert.equal(reply.code, 200, `${reply.code} ${reply.reason}`);
    assert.equal(reply.relayed?.address, '127.0.0.1');
    assert.ok(reply.relayed!.port >= RELAY_BASE, `relay port ${reply.relayed!.port}`);
    assert.deepEqual(reply.mapped, client.local);
    assert.equal(reply.lifetime, 600);
    assert.equal((await client.release()).code, 200);
  });

  it('accepts a credential signed with the previous secret during a rotation', async () => {
    const client = await h.open();
    assert.equal((await client.allocate(credential(previous, 'bob'))).code, 200);
    await client.release();
  });

  it('refuses a credential whose expiry has passed with 401, though its HMAC is right', async () => {
    const unauthorized = h.server.stats().unauthorized;
    const reply = await (await h.open()).allocate(credential(secret, 'alice', Math.floor(Date.now() / 1000) - 60));
    assert.equal(reply.code, 401, `${reply.code} ${reply.reason}`);
    assert.equal(h.server.stats().unauthorized, unauthorized + 1);
  });

  it('refuses a wrong HMAC (another secret), a username changed after signing, and a username not in the REST form with 401', async () => {
    assert.equal((await (await h.open()).allocate(credential(randomBytes(32).toString('hex'), 'alice'))).code, 401);
    const good = credential(secret, 'alice');
    assert.equal((await (await h.open()).allocate({ username: good.username.replace('alice', 'mallory'), password: good.password })).code, 401);
    assert.equal((await (await h.open()).allocate({ username: 'alice', password: good.password })).code, 401);
  });

  it('answers a nonce older than 10 minutes with 438 Stale Nonce and a new NONCE, with which the request succeeds (RFC 5389 §10.2.2)', async () => {
    const { client } = await h.allocated();
    assert.equal((await client.refresh(3600)).lifetime, 3600);
    h.advance(11 * 60_000);
    try {
      const reply = await client.createPermission('203.0.113.1');
      assert.equal(reply.code, 200, `${reply.code} ${reply.reason}`);
      assert.equal(client.staleNonces, 1, 'one 438 before the success');
    } finally {
      h.advance(-11 * 60_000);
    }
  });

  it('answers a retransmitted Allocate (same transaction ID) with the same success, and a new Allocate on the same 5-tuple with 437 (RFC 5766 §6.2)', async () => {
    const cred = credential(secret, 'carol');
    const [answers] = await handMade(h.addr, cred, [{ method: StunMethod.Allocate, attrs: [UDP_TRANSPORT], copies: 3 }]) as [Buffer[]];
    assert.equal(answers.length, 3, 'every copy answered');
    assert.equal(codeOf(answers[0]!), 200);
    assert.ok(answers.every((a) => a.equals(answers[0]!)), 'the same answer, byte for byte');
    const client = await h.open();
    assert.equal((await client.allocate(cred)).code, 200);
    assert.equal((await client.allocate(cred)).code, 437);
  });

  it('refuses REQUESTED-TRANSPORT TCP with 442, RESERVATION-TOKEN and DONT-FRAGMENT (not implemented) with 420 listing them, and gives EVEN-PORT an even port', async () => {
    const [[tcp], [unsupported], [even]] = await handMade(h.addr, credential(secret, 'dave'), [
      { method: StunMethod.Allocate, attrs: [{ type: StunAttr.RequestedTransport, value: Buffer.from([6, 0, 0, 0]) }] },
      { method: StunMethod.Allocate, attrs: [UDP_TRANSPORT, { type: 0x0022, value: Buffer.alloc(8) }, { type: 0x001a, value: Buffer.alloc(0) }] },
      { method: StunMethod.Allocate, attrs: [UDP_TRANSPORT, { type: 0x0018, value: Buffer.from([0x80, 0, 0, 0]) }] },
    ]) as Array<[Buffer]>;
    assert.equal(codeOf(tcp!), 442);
    assert.equal(codeOf(unsupported!), 420);
    const unknown = attribute(decodeStun(unsupported!)!, 0x000a)!;
    assert.deepEqual([unknown.readUInt16BE(0), unknown.readUInt16BE(2)], [0x0022, 0x001a]);
    assert.equal(codeOf(even!), 200);
    const message = decodeStun(even!)!;
    const relayed = decodeXorAddress(attribute(message, StunAttr.XorRelayedAddress)!, message.transactionId);
    assert.equal(relayed.port % 2, 0, `EVEN-PORT gave ${relayed.port}`);
  });

  it('never logs a credential, a password or a secret, even at trace level', async () => {
    const { logger, lines } = captureLogger();
    const logged = await harness([secret], { logger });
    const cred = credential(secret, 'erin');
    try {
      const client = await logged.open();
      assert.equal((await client.allocate(credential(secret, 'erin', 1))).code, 401);
      const ok = await logged.open();
      assert.equal((await ok.allocate(cred)).code, 200);
      assert.equal((await ok.createPermission('10.0.0.1')).code, 403);
      await ok.release();
    } finally {
      await logged.stop();
    }
    const text = lines.join('');
    assert.ok(text.includes('embedded TURN server listening'));
    assert.ok(!text.includes(secret) && !text.includes(cred.password), 'no secret or password in the logs');
  });
});

describe('the embedded TURN server: peers it may relay to (the coturn sample\'s rules)', () => {
  const secret = randomBytes(32).toString('hex');
  let h: Harness;
  let open: Harness;
  before(async () => {
    h = await harness([secret], { deniedPeers: cidrs('198.51.100.0/24') });
    open = await harness([secret], { allowedPeers: cidrs('127.0.0.1'), deniedPeers: cidrs('198.51.100.0/24') });
  });
  after(async () => {
    await h?.stop();
    await open?.stop();
  });

  const denied = ['127.0.0.1', '127.1.2.3', '0.0.0.1', '10.0.0.1', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '192.0.0.8', '198.18.0.1',
    '224.0.0.251', '240.0.0.1', '255.255.255.255', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::1', '::', '64:ff9b::a00:1', 'fd12:3456::1', 'fe80::1', 'ff02::1'];
  it(`refuses a permission with 403 to loopback, private, CGNAT, link-local, benchmarking, multicast and broadcast, and the IPv6, mapped and NAT64 forms: ${denied.join(', ')}`, async () => {
    const { client } = await h.allocated();
    for (const peer of denied) assert.equal((await client.createPermission(peer)).code, 403, peer);
    assert.equal(h.server.stats().permissions, 0, 'no permission installed');
  });

  it('grants the documentation ranges (RFC 5737) as the coturn sample does, but not a range of turn.deniedPeers', async () => {
    const { client } = await h.allocated();
    for (const peer of ['192.0.2.1', '203.0.113.1']) assert.equal((await client.createPermission(peer)).code, 200, peer);
    assert.equal((await client.createPermission('198.51.100.7')).code, 403);
  });

  it('answers a public IPv6 peer on an IPv4 relay with 443 Peer Address Family Mismatch (RFC 6156 §6.1)', async () => {
    const { client } = await h.allocated();
    assert.equal((await client.createPermission('2001:db8::1')).code, 443);
  });

  it('turn.allowedPeers lets 127.0.0.1 through the denied loopback range, and only that address', async () => {
    const { client } = await open.allocated();
    assert.equal((await client.createPermission('127.0.0.1')).code, 200);
    assert.equal((await client.createPermission('127.0.0.2')).code, 403);
    assert.equal((await client.createPermission('198.51.100.7')).code, 403, 'deniedPeers still applies');
  });

  it('never relays to its own listening port (a loop): ChannelBind there is 403, a Send indication there is dropped', async () => {
    const { client } = await open.allocated();
    assert.equal((await client.createPermission('127.0.0.1')).code, 200);
    assert.equal((await client.channelBind(0x4100, open.addr)).code, 403);
    const dropped = open.server.stats().dropped;
    client.send(open.addr, Buffer.from('loop'));
    await until('the Send indication to the listening port counted as dropped', () => open.server.stats().dropped > dropped);
    assert.equal(open.server.stats().relayedBytes, 0);
  });
});

describe('the embedded TURN server: data through the relay', () => {
  const secret = randomBytes(32).toString('hex');
  let h: Harness;
  let peer: Awaited<ReturnType<typeof echoPeer>>;
  before(async () => {
    h = await harness([secret], { allowedPeers: cidrs('127.0.0.1') });
    peer = await echoPeer();
  });
  after(async () => {
    peer?.socket.close();
    await h?.stop();
  });

  it('relays a Send indication to a permitted peer from the relayed address, and its answer back as a Data indication (RFC 5766 §10)', async () => {
    const { client, relayed } = await h.allocated();
    assert.equal((await client.createPermission('127.0.0.1')).code, 200);
    peer.got.length = 0;
    client.send(peer.addr, Buffer.from('hello peer'));
    const back = await client.nextData();
    assert.deepEqual(peer.got.map((g) => [g.from, g.data.toString()]), [[relayed, 'hello peer']], 'the peer got it from the relayed address');
    assert.deepEqual(back.peer, peer.addr);
    assert.equal(back.data.toString(), 'echo:hello peer');
  });

  it('carries ChannelData both ways once a channel is bound (RFC 5766 §11)', async () => {
    const { client, relayed } = await h.allocated();
    assert.equal((await client.channelBind(0x4001, peer.addr)).code, 200);
    peer.got.length = 0;
    client.sendChannel(0x4001, Buffer.from('over a channel'));
    const back = await client.nextData();
    assert.deepEqual(peer.got.map((g) => [g.from, g.data.toString()]), [[relayed, 'over a channel']]);
    assert.equal(back.channel, 0x4001);
    assert.equal(back.data.toString(), 'echo:over a channel');
    assert.equal((await client.channelBind(0x4001, peer.addr)).code, 200, 'refreshing the same binding');
  });

  it('refuses a channel number outside 0x4000-0x7FFF and rebinding a channel or a peer to another with 400', async () => {
    const { client } = await h.allocated();
    assert.equal((await client.channelBind(0x3fff, peer.addr)).code, 400);
    assert.equal((await client.channelBind(0x8000, peer.addr)).code, 400);
    assert.equal((await client.channelBind(0x4002, peer.addr)).code, 200);
    assert.equal((await client.channelBind(0x4002, { address: '127.0.0.1', port: peer.addr.port + 1 })).code, 400, 'the channel to another peer');
    assert.equal((await client.channelBind(0x4003, peer.addr)).code, 400, 'the peer on another channel');
  });

  it('drops what a peer without a permission sends, and a Send indication to a peer without one', async () => {
    const { client, relayed } = await h.allocated();
    const dropped = h.server.stats().dropped;
    peer.got.length = 0;
    peer.socket.send(Buffer.from('unasked'), relayed.port, relayed.address);
    client.send(peer.addr, Buffer.from('unpermitted'));
    await until('both counted as dropped', () => h.server.stats().dropped >= dropped + 2);
    await sleep(100);
    assert.deepEqual(client.drain(), []);
    assert.deepEqual(peer.got, []);
  });

  it('relays between two allocations of the same server (two relayed clients calling each other)', async () => {
    const a = await h.allocated();
    const b = await h.allocated();
    assert.equal((await a.client.createPermission('127.0.0.1')).code, 200);
    assert.equal((await b.client.createPermission('127.0.0.1')).code, 200);
    a.client.send(b.relayed, Buffer.from('a to b'));
    const got = await b.client.nextData();
    assert.deepEqual(got.peer, a.relayed);
    assert.equal(got.data.toString(), 'a to b');
  });

  it('Refresh with LIFETIME 0 frees the allocation and its relay port at once; later requests get 437', async () => {
    const { client, relayed } = await h.allocated();
    const before = h.server.stats().allocations;
    assert.equal((await client.refresh(7200)).lifetime, 3600, 'a lifetime is capped at 3600 s');
    assert.equal((await client.release()).code, 200);
    assert.equal(h.server.stats().allocations, before - 1);
    const taken = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      taken.once('error', reject);
      taken.bind(relayed.port, relayed.address, resolve);
    });
    taken.close();
    assert.equal((await client.createPermission('127.0.0.1')).code, 437);
  });
});

describe('the embedded TURN server: lifetimes, IPv6 and 1:1 NAT', () => {
  const secret = randomBytes(32).toString('hex');

  it('frees an allocation nobody refreshed when its lifetime ends, and a permission after 300 s (RFC 5766 §5, §8)', async () => {
    const h = await harness([secret], { allowedPeers: cidrs('127.0.0.1') });
    const peer = await echoPeer();
    try {
      const { client, relayed } = await h.allocated();
      assert.equal((await client.createPermission('127.0.0.1')).code, 200);
      h.advance(301_000);
      await until('the permission swept', () => h.server.stats().permissions === 0);
      peer.socket.send(Buffer.from('late'), relayed.port, relayed.address);
      await sleep(100);
      assert.deepEqual(client.drain(), [], 'nothing relayed without a permission');
      h.advance(300_000);
      await until('the allocation swept', () => h.server.stats().allocations === 0);
      assert.equal((await client.createPermission('127.0.0.1')).code, 437);
    } finally {
      peer.socket.close();
      await h.stop();
    }
  });

  it('relays over IPv6 (RFC 6156): an IPv6 relayed address, public IPv6 peers granted, link-local and IPv4 peers refused', async () => {
    const h = await harness([secret], { listen: { address: '::1', port: await freePort('::1') }, relayAddress: '::1' });
    try {
      const client = await h.open();
      const reply = await client.allocate(credential(secret, 'v6'), { family: 'ipv6' });
      assert.equal(reply.code, 200, `${reply.code} ${reply.reason}`);
      assert.equal(reply.relayed?.address, '::1');
      assert.equal((await client.createPermission('2001:db8::1')).code, 200);
      assert.equal((await client.createPermission('fe80::1')).code, 403);
      assert.equal((await client.createPermission('203.0.113.1')).code, 443);
      const v4 = await h.open();
      assert.equal((await v4.allocate(credential(secret, 'v4'))).code, 200, 'without REQUESTED-ADDRESS-FAMILY: the family of the relay');
    } finally {
      await h.stop();
    }
  });

  it('names turn.externalAddress in XOR-RELAYED-ADDRESS while relaying from the bound address (1:1 NAT)', async () => {
    const h = await harness([secret], { externalAddress: '198.51.100.10' });
    try {
      const client = await h.open();
      const reply = await client.allocate(credential(secret, 'natted'));
      assert.equal(reply.code, 200);
      assert.equal(reply.relayed?.address, '198.51.100.10');
    } finally {
      await h.stop();
    }
  });
});

describe('the embedded TURN server: quotas and bandwidth', () => {
  const secret = randomBytes(32).toString('hex');
  const hs: Harness[] = [];
  after(async () => {
    for (const h of hs) await h.stop();
  });

  it('refuses a user\'s allocation past turn.userQuota with 486 Allocation Quota Reached; another user is not held back', async () => {
    const h = await harness([secret], { userQuota: 3 });
    hs.push(h);
    for (let i = 0; i < 3; i++) await h.allocated('bob');
    const refused = await (await h.open()).allocate(credential(secret, 'bob'));
    assert.equal(refused.code, 486, `${refused.code} ${refused.reason}`);
    await h.allocated('carol');
  });

  it('refuses an allocation past turn.totalQuota with 486', async () => {
    const h = await harness([secret], { totalQuota: 2 });
    hs.push(h);
    await h.allocated();
    await h.allocated();
    assert.equal((await (await h.open()).allocate(credential(secret, 'third'))).code, 486);
  });

  it('answers 508 Insufficient Capacity when every relay port is taken', async () => {
    const h = await harness([secret], { relayPorts: { min: RELAY_BASE + 4300, max: RELAY_BASE + 4300 } });
    hs.push(h);
    await h.allocated();
    assert.equal((await (await h.open()).allocate(credential(secret, 'late'))).code, 508);
  });

  it('drops what goes over turn.maxBps for one allocation (a token bucket of one second)', async () => {
    const h = await harness([secret], { allowedPeers: cidrs('127.0.0.1'), maxBps: 2000 });
    hs.push(h);
    const peer = await echoPeer();
    try {
      const { client } = await h.allocated();
      assert.equal((await client.channelBind(0x4000, peer.addr)).code, 200);
      for (let i = 0; i < 40; i++) client.sendChannel(0x4000, Buffer.alloc(500, i));
      await until('the first packets reached the peer', () => peer.got.length > 0);
      await sleep(200);
      assert.ok(peer.got.length >= 3 && peer.got.length <= 5, `${peer.got.length} of 40 packets of 500 bytes passed a 2000 B/s bucket`);
      assert.ok(h.server.stats().dropped >= 35);
    } finally {
      peer.socket.close();
    }
  });
});

describe('the embedded TURN server: bad input and its own life', () => {
  const secret = randomBytes(32).toString('hex');

  it('survives garbage: random bytes, truncated STUN, oversize datagrams, bad XOR-PEER-ADDRESS (400), ChannelData on unbound channels', async () => {
    const h = await harness([secret], { allowedPeers: cidrs('127.0.0.1') });
    try {
      const { client } = await h.allocated();
      const good = encodeStun({ method: StunMethod.Binding, class: 'request', transactionId: randomBytes(12), attributes: [] });
      for (let i = 0; i < 2000; i++) {
        const junk = randomBytes(1 + (i % 300));
        if (i % 3 === 0) junk[0] = junk[0]! & 0x3f;
        if (i % 3 === 1) junk[0] = 0x40 | (junk[0]! & 0x3f);
        client.sendRaw(junk);
        if (i % 50 === 49) await sleep(2); // paced, so the socket's receive queue takes them rather than the kernel dropping them
      }
      for (let cut = 1; cut < good.length; cut++) client.sendRaw(good.subarray(0, cut));
      client.sendRaw(Buffer.alloc(9000));
      await until('the server has read the garbage', () => h.server.stats().dropped > 1000);
      const [[allocated], [shortPeer], [noPeer], [noTransport]] = await handMade(h.addr, credential(secret, 'mallory'), [
        { method: StunMethod.Allocate, attrs: [UDP_TRANSPORT] },
        { method: StunMethod.CreatePermission, attrs: [{ type: StunAttr.XorPeerAddress, value: Buffer.from([0, 9, 0, 0]) }] },
        { method: StunMethod.CreatePermission, attrs: [] },
        { method: StunMethod.Allocate, attrs: [] },
      ]) as Array<[Buffer]>;
      assert.deepEqual([allocated, shortPeer, noPeer, noTransport].map((b) => codeOf(b!)), [200, 400, 400, 437]);
      assert.equal((await client.binding()).code, 200, 'still answering');
      assert.equal((await client.createPermission('127.0.0.1')).code, 200, 'the allocation still works');
    } finally {
      await h.stop();
    }
  });

  it('fails to start on a port in use, naming the address', async () => {
    const h = await harness([secret]);
    try {
      const second = new EmbeddedTurnServer({
        listen: h.addr, relayAddress: '127.0.0.1', relayPorts: { min: 61000, max: 61001 }, realm: REALM, credentials: new Credentials([secret]),
        userQuota: 1, totalQuota: 1, maxBps: 0, logger: silentLogger(),
      });
      await assert.rejects(second.start(), (err: Error) => err.message.includes(`127.0.0.1:${h.addr.port}`) && /EADDRINUSE/.test(err.message));
    } finally {
      await h.stop();
    }
  });

  it('stop() closes every relay socket: their ports are free again', async () => {
    const h = await harness([secret]);
    const { relayed } = await h.allocated();
    await h.stop();
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(relayed.port, '127.0.0.1', resolve);
    });
    socket.close();
  });
});

describe('the embedded TURN server and coturn\'s own client (turnutils_uclient)', () => {
  const secret = randomBytes(32).toString('hex');
  let h: Harness;
  before(async () => {
    h = await harness([secret], { allowedPeers: cidrs('127.0.0.1') });
  });
  after(() => h?.stop());

  for (const [mode, flags] of [['ChannelData', []], ['Send and Data indications (-s)', ['-s']]] as const) {
    it(`turnutils_uclient with the REST secret (-W) relays between two allocations over ${mode}, every message received`, async () => {
      const uclient = requireTool('turnutils_uclient', 'coturn');
      const relayed = h.server.stats().relayedBytes;
      // -y: client to client through two allocations of this server; -c: no RTCP pair (no RESERVATION-TOKEN); -u: the REST user
      const r = await run(uclient, ['-y', '-c', ...flags, '-n', '20', '-l', '160', '-z', '5', '-W', secret, '-u', 'uclient', '-L', '127.0.0.1', '-p', String(h.addr.port), '127.0.0.1'], { timeoutMs: 20_000 });
      const out = `${r.stdout}\n${r.stderr}`;
      assert.equal(r.code, 0, `turnutils_uclient exit ${r.code}:\n${out.slice(-3000)}`);
      const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/.exec(out.slice(out.lastIndexOf('start_mclient: tot_send_msgs')));
      assert.ok(totals, `no totals in its report:\n${out.slice(-3000)}`);
      assert.equal(Number(totals[1]), 40, out.slice(-3000));
      assert.equal(Number(totals[2]), 40, `received ${totals[2]} of ${totals[1]}:\n${out.slice(-3000)}`);
      assert.match(out, /Total lost packets 0 /);
      assert.ok(h.server.stats().relayedBytes >= relayed + 2 * 40 * 160, 'the messages went through this server');
    });
  }
});

describe('libwebrtc through the embedded TURN server, relay candidates only, in a loopback-only namespace', () => {
  const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'turn-webrtc-runner.js');
  const RUNNER_TIMEOUT_MS = 30_000;
  let ns: LoopbackNamespace | undefined;
  before(() => {
    ns = LoopbackNamespace.create('turnrtc');
  });
  after(() => {
    ns?.destroy();
    ns = undefined;
  });

  it('two RTCPeerConnections with iceTransportPolicy "relay" open a data channel through two allocations and exchange a message each way', { timeout: RUNNER_TIMEOUT_MS + 5000 }, async () => {
    const [cmd, args] = ns!.exec(process.execPath, ['--enable-source-maps', RUNNER]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TURN_WEBRTC_TIMEOUT_MS: String(RUNNER_TIMEOUT_MS - 5000) } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUNNER_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    const line = stdout.split('\n').find((l) => l.startsWith('TURN-WEBRTC-RESULT '));
    if (line === undefined) assert.fail(`the runner gave no result (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}`);
    const r = JSON.parse(line.slice('TURN-WEBRTC-RESULT '.length)) as TurnWebrtcResult;
    assert.equal(r.error, undefined, `${r.error}\n${JSON.stringify(r)}\n${stderr}`);
    assert.deepEqual(r.received, ['hello through the relay', 're: hello through the relay']);
    assert.ok(r.gathered.offerer.length > 0 && [...r.gathered.offerer, ...r.gathered.answerer].every((t) => t === 'relay'), `gathered: ${JSON.stringify(r.gathered)}`);
    assert.ok(r.pair, 'no nominated candidate pair');
    assert.equal(r.pair.local, 'relay');
    assert.equal(r.pair.remote, 'relay');
    for (const address of [r.pair.localAddress, r.pair.remoteAddress]) {
      const port = Number(address.split(':')[1]);
      assert.ok(address.startsWith('127.0.0.1:') && port >= r.relayPorts.min && port <= r.relayPorts.max, `${address}: not a relayed address of the embedded server`);
    }
    assert.equal(r.server.allocations, 2, 'one allocation per peer');
    assert.ok(r.server.channels >= 1, `libwebrtc binds channels: ${JSON.stringify(r.server)}`);
    assert.ok(r.server.relayedBytes > 0);
  });
});
