/**
 * Connection exhaustion, over real loopback sockets: per-address caps, the whole-message, TLS handshake
 * and WebSocket upgrade deadlines, shedding of unauthenticated connections at the process cap, and the
 * transport user's admit hook. Attackers connect from 127.0.0.2, the legitimate peer from 127.0.0.3.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../src/log/index.js';
import {
  TransportLayer, loadOrCreateCertificate, type HostPort, type ListenSpec, type TransportLayerOptions, type TransportProtocol,
} from '../../../src/transport/index.js';
import { RecordingUser, capturingLogger, delay, openClient, sipRequest, waitFor, type TestClient } from './helpers.js';

const ATTACKER = '127.0.0.2';
const PHONE = '127.0.0.3';
const STREAMS = ['tcp', 'tls', 'ws', 'wss'] as const;

let dataDir: string;
let tls: { cert: string; key: string };

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'softswitch-limits-'));
  tls = await loadOrCreateCertificate({ dataDir, hostnames: ['localhost'], logger: silentLogger() });
});

after(() => rmSync(dataDir, { recursive: true, force: true }));

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startLayer(
  protocols: readonly TransportProtocol[], options: Partial<TransportLayerOptions> = {}, user = new RecordingUser(),
): Promise<{ layer: TransportLayer; user: RecordingUser; port: (p: TransportProtocol) => number }> {
  const listen: ListenSpec[] = protocols.map((protocol) => ({ protocol, address: '127.0.0.1', port: 0 }));
  const layer = new TransportLayer({ listen, user, logger: silentLogger(), tls, fileLimit: null, ...options });
  cleanups.push(() => layer.stop());
  await layer.start();
  return { layer, user, port: (p) => layer.listeners.find((l) => l.protocol === p)!.port };
}

async function client(protocol: TransportProtocol, port: number, localAddress: string): Promise<TestClient> {
  const c = await openClient(protocol, '127.0.0.1', port, { localAddress });
  cleanups.push(() => c.close());
  return c;
}

/** True when the server refused the connection: the handshake failed, or the socket was closed at once. */
async function refused(protocol: TransportProtocol, port: number, localAddress: string): Promise<boolean> {
  let c: TestClient;
  try {
    c = await client(protocol, port, localAddress);
  } catch {
    return true; // TLS / WebSocket handshake cut short
  }
  try {
    await c.waitClosed(1000);
    return true;
  } catch {
    return false;
  }
}

/** A raw TCP connection that sends nothing unless told to. */
async function rawSocket(port: number, localAddress: string): Promise<{ socket: Socket; closedAfter: Promise<number> }> {
  const started = Date.now();
  const s = await new Promise<Socket>((resolve, reject) => {
    const sock = netConnect({ host: '127.0.0.1', port, localAddress }, () => resolve(sock));
    sock.once('error', reject);
  });
  s.on('error', () => undefined);
  cleanups.push(() => void s.destroy());
  const closed = new Promise<number>((resolve) => s.once('close', () => resolve(Date.now() - started)));
  return { socket: s, closedAfter: closed };
}

/** Sends a SIP request over the client and waits until the layer delivers it. */
async function delivers(c: TestClient, user: RecordingUser, tag: string): Promise<void> {
  await c.write(sipRequest(tag));
  await waitFor(() => (user.messages.some((m) => m.data.includes(`Call-ID: ${tag}`)) ? true : undefined), `message ${tag}`);
}

describe('per-address connection cap (maxConnectionsPerIp)', () => {
  for (const protocol of STREAMS) {
    it(`over ${protocol}, refuses one address its connection beyond the cap while another address connects and is heard`, async () => {
      const { layer, user, port } = await startLayer([protocol], { maxConnectionsPerIp: 3 });
      const held: TestClient[] = [];
      for (let i = 0; i < 3; i++) held.push(await client(protocol, port(protocol), ATTACKER));
      await waitFor(() => (layer.connectionCount === 3 ? true : undefined), 'three attacker connections');
      assert.equal(await refused(protocol, port(protocol), ATTACKER), true, 'the fourth connection from one address is refused');
      const phone = await client(protocol, port(protocol), PHONE);
      await delivers(phone, user, `${protocol}-phone`);
      for (const c of held) assert.equal(c.isClosed, false);
      assert.equal(layer.connectionCount, 4);
    });
  }

  it('counts TLS handshakes in progress against the cap, so silent TLS clients cannot pile up', async () => {
    const { port } = await startLayer(['tls'], { maxConnectionsPerIp: 2, handshakeTimeoutMs: 5000 });
    await rawSocket(port('tls'), ATTACKER);
    await rawSocket(port('tls'), ATTACKER);
    const third = await rawSocket(port('tls'), ATTACKER);
    assert.ok(await Promise.race([third.closedAfter.then(() => true), delay(1000).then(() => false)]), 'the third silent connection is closed at once');
  });

  it('logs one warning for a burst of refusals, not one per connection', async () => {
    const { logger, lines } = capturingLogger('warn');
    const { port } = await startLayer(['tcp'], { maxConnectionsPerIp: 1, logger });
    await client('tcp', port('tcp'), ATTACKER);
    for (let i = 0; i < 5; i++) assert.equal(await refused('tcp', port('tcp'), ATTACKER), true);
    const warnings = lines().filter((l) => l.msg === 'per-address connection limit reached, refusing connection');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.cat, 'sip.transport');
    assert.equal(warnings[0]!.max, 1);
  });
});

describe('deadlines', () => {
  it('closes a TCP connection whose message is not complete messageTimeoutMs after its first byte (one byte at a time)', async () => {
    const { layer, user, port } = await startLayer(['tcp'], { messageTimeoutMs: 600 });
    const s = await rawSocket(port('tcp'), ATTACKER);
    const sock = s.socket;
    const message = sipRequest('dribble');
    let sent = 0;
    const dribble = setInterval(() => {
      if (sent < message.length && !sock.destroyed) sock.write(message.subarray(sent, ++sent));
    }, 100);
    cleanups.push(() => clearInterval(dribble));
    const closedAfter = await s.closedAfter;
    assert.ok(closedAfter >= 500 && closedAfter < 2000, `closed after ${closedAfter} ms`);
    assert.equal(user.messages.length, 0);
    assert.equal(layer.connectionCount, 0);
  });

  it('keeps a TCP connection that sends each message in pieces within messageTimeoutMs, and CRLF keep-alives between them', async () => {
    const { user, port } = await startLayer(['tcp'], { messageTimeoutMs: 600 });
    const c = await client('tcp', port('tcp'), PHONE);
    await c.writeSlowly(sipRequest('pieces-1'), 100, 50);
    await user.message(0);
    for (let i = 0; i < 4; i++) {
      await c.write('\r\n\r\n');
      await c.waitForData('\r\n');
      await delay(250);
    }
    await c.writeSlowly(sipRequest('pieces-2'), 100, 50);
    await user.message(1);
    assert.equal(c.isClosed, false);
  });

  for (const protocol of ['tcp', 'ws'] as const) {
    it(`closes a ${protocol} connection that brings no SIP message within messageTimeoutMs of connecting, keep-alives or not`, async () => {
      const { layer, user, port } = await startLayer([protocol], { messageTimeoutMs: 400 });
      const c = await client(protocol, port(protocol), ATTACKER);
      await c.write('\r\n\r\n');
      await c.waitClosed(2000);
      assert.equal(user.messages.length, 0);
      assert.match(user.closed[0]?.reason ?? '', /^message timeout/);
      assert.equal(layer.connectionCount, 0);
    });
  }

  for (const protocol of ['tls', 'ws', 'wss'] as const) {
    it(`closes a ${protocol} connection that does not finish its ${protocol === 'tls' ? 'TLS handshake' : 'WebSocket upgrade'} within handshakeTimeoutMs`, async () => {
      const { port } = await startLayer([protocol], { handshakeTimeoutMs: 400 });
      const s = await rawSocket(port(protocol), ATTACKER);
      // Half a request: an HTTP client (ws) or a TLS ClientHello record header (tls, wss) that never ends.
      s.socket.write(protocol === 'ws' ? 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n' : Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff]));
      const closedAfter = await s.closedAfter;
      assert.ok(closedAfter >= 300 && closedAfter < 2000, `closed after ${closedAfter} ms`);
    });
  }
});

describe('the process cap (maxConnections)', () => {
  it('sheds the newest unauthenticated connection for a new one and keeps authenticated ones', async () => {
    const { logger, lines } = capturingLogger('warn');
    const { layer, user, port } = await startLayer(['tcp'], { maxConnections: 3, logger });
    const registered = await client('tcp', port('tcp'), PHONE);
    await delivers(registered, user, 'registered');
    layer.markAuthenticated(user.messages[0]!.flow.id);
    const older = await client('tcp', port('tcp'), ATTACKER);
    await delivers(older, user, 'older');
    const newer = await client('tcp', port('tcp'), ATTACKER);
    await delivers(newer, user, 'newer');
    const fresh = await client('tcp', port('tcp'), PHONE);
    await delivers(fresh, user, 'fresh');
    await newer.waitClosed(1000);
    assert.equal(older.isClosed, false);
    assert.equal(registered.isClosed, false);
    assert.equal(layer.connectionCount, 3);
    assert.match(user.closed.find((c) => c.flow.remote.port === newer.localPort)?.reason ?? '', /^shed/);
    assert.equal(lines().filter((l) => l.msg === 'connection limit reached, closing the newest unauthenticated connection').length, 1);
  });

  it('sheds from the address holding the most unauthenticated connections, not from a lone newcomer', async () => {
    const { layer, user, port } = await startLayer(['tcp'], { maxConnections: 4 });
    const lone = await client('tcp', port('tcp'), PHONE);
    await delivers(lone, user, 'lone');
    const flood: TestClient[] = [];
    for (let i = 0; i < 6; i++) flood.push(await client('tcp', port('tcp'), ATTACKER));
    await delay(100);
    assert.equal(lone.isClosed, false, 'the phone stays while the flood sheds itself');
    assert.equal(layer.connectionCount, 4);
  });

  it('refuses a new connection when every connection is authenticated', async () => {
    const { logger, lines } = capturingLogger('warn');
    const { layer, user, port } = await startLayer(['tcp', 'ws'], { maxConnections: 2, logger });
    for (const [i, p] of (['tcp', 'ws'] as const).entries()) {
      const c = await client(p, port(p), PHONE);
      await delivers(c, user, `auth-${i}`);
      layer.markAuthenticated(user.messages[i]!.flow.id);
    }
    assert.equal(await refused('tcp', port('tcp'), ATTACKER), true);
    assert.equal(await refused('ws', port('ws'), ATTACKER), true);
    assert.equal(layer.connectionCount, 2);
    assert.equal(lines().filter((l) => l.msg === 'connection limit reached and every connection is authenticated, refusing connection').length, 1);
  });

  it('keeps a file reserve below the file limit: with fileLimit 133 only 5 connections are kept', async () => {
    const { layer, port } = await startLayer(['tcp'], { fileLimit: 133, maxConnectionsPerIp: 100 });
    for (let i = 0; i < 8; i++) await client('tcp', port('tcp'), ATTACKER);
    await delay(100);
    assert.equal(layer.connectionCount, 5);
  });

  it('warns once when connections reach 80 % of the cap, naming the limit', async () => {
    const { logger, lines } = capturingLogger('warn');
    const { port } = await startLayer(['tcp'], { maxConnections: 5, logger });
    for (let i = 0; i < 5; i++) await client('tcp', port('tcp'), ATTACKER);
    await delay(100);
    const near = lines().filter((l) => l.msg === 'connections near maxConnections');
    assert.equal(near.length, 1);
    assert.equal(near[0]!.connections, 4);
    assert.equal(near[0]!.limit, 5);
  });

  it('counts outbound connections and never sheds them', async () => {
    const peer = createNetServer((s) => s.on('error', () => undefined));
    const peerSockets: Socket[] = [];
    peer.on('connection', (s) => peerSockets.push(s));
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const s of peerSockets) s.destroy();
      peer.close(() => resolve());
    }));
    const { layer, port } = await startLayer(['tcp'], { maxConnections: 2 });
    const peerPort = (peer.address() as HostPort).port;
    await layer.send(sipRequest('out'), { protocol: 'tcp', address: '127.0.0.1', port: peerPort });
    const inbound = await client('tcp', port('tcp'), ATTACKER);
    const another = await client('tcp', port('tcp'), ATTACKER);
    await inbound.waitClosed(1000); // shed: the outbound one is never a victim
    assert.equal(another.isClosed, false);
    assert.equal(layer.connectionCount, 2);
    assert.equal(peerSockets.length, 1);
    assert.equal(peerSockets[0]!.destroyed, false);
  });
});

describe('the transport user admit hook', () => {
  it('is asked before anything else: a refused address gets no datagram delivered, no STUN answer, and its connections are closed before a byte is read', async () => {
    const asked: string[] = [];
    const user = new RecordingUser();
    Object.assign(user, {
      admit: (remote: HostPort, protocol: TransportProtocol) => {
        asked.push(`${protocol}:${remote.address}`);
        return remote.address !== ATTACKER;
      },
    });
    const { layer, port } = await startLayer(['udp', 'tcp', 'ws'], {}, user);
    const badUdp = await client('udp', port('udp'), ATTACKER);
    await badUdp.write(sipRequest('bad-udp'));
    // A STUN binding request (RFC 5389 §6): an admitted source would get a response.
    const stun = Buffer.alloc(20);
    stun.writeUInt16BE(0x0001, 0);
    stun.writeUInt32BE(0x2112a442, 4);
    await badUdp.write(stun);
    assert.equal(await refused('tcp', port('tcp'), ATTACKER), true);
    assert.equal(await refused('ws', port('ws'), ATTACKER), true);
    const goodUdp = await client('udp', port('udp'), PHONE);
    await delivers(goodUdp, user, 'good-udp');
    await delivers(await client('tcp', port('tcp'), PHONE), user, 'good-tcp');
    await delay(50);
    assert.equal(badUdp.items.length, 0, 'no STUN answer to a refused source');
    assert.ok(user.messages.every((m) => m.flow.remote.address === PHONE));
    assert.deepEqual(new Set(asked), new Set([`udp:${ATTACKER}`, `tcp:${ATTACKER}`, `ws:${ATTACKER}`, `udp:${PHONE}`, `tcp:${PHONE}`]));
    assert.equal(layer.connectionCount, 1);
  });
});
