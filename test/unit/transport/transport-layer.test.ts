/** Behaviour of the transport layer beyond the per-transport conformance suite. */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { WebSocket } from 'ws';
import { silentLogger } from '../../../src/log/index.js';
import {
  TransportError, TransportLayer, loadOrCreateCertificate, type ListenSpec, type TransportLayerOptions,
} from '../../../src/transport/index.js';
import { RecordingUser, capturingLogger, delay, openClient, sipRequest, sipResponse, waitFor, type TestClient } from './helpers.js';

let dataDir: string;
let tls: { cert: string; key: string };

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'softswitch-transport-'));
  tls = await loadOrCreateCertificate({ dataDir, hostnames: ['localhost'], logger: silentLogger() });
});

after(() => rmSync(dataDir, { recursive: true, force: true }));

/** Everything a test starts, stopped afterwards even when it fails. */
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startLayer(listen: ListenSpec[], options: Partial<TransportLayerOptions> = {}): Promise<{ layer: TransportLayer; user: RecordingUser }> {
  const user = new RecordingUser();
  const layer = new TransportLayer({ listen, user, logger: silentLogger(), tls, ...options });
  cleanups.push(() => layer.stop());
  await layer.start();
  return { layer, user };
}

async function client(...args: Parameters<typeof openClient>): Promise<TestClient> {
  const c = await openClient(...args);
  cleanups.push(() => c.close());
  return c;
}

/** A SIP peer the layer connects out to: records every connection and the bytes on it. */
async function peerServer(kind: 'tcp' | 'tls', host = '127.0.0.1'): Promise<{ port: number; sockets: Socket[]; data: () => string }> {
  const sockets: Socket[] = [];
  const chunks: Buffer[] = [];
  const onSocket = (s: Socket): void => {
    sockets.push(s);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
  };
  const server: Server = kind === 'tls' ? createTlsServer({ cert: tls.cert, key: tls.key }, onSocket) : createNetServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { port: address.port, sockets, data: () => Buffer.concat(chunks).toString('latin1') };
}

function rejectsWith(code: TransportError['code']) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TransportError, String(err));
    assert.equal(err.code, code);
    return true;
  };
}

describe('outbound connections (RFC 3261 §18.1.1)', () => {
  for (const kind of ['tcp', 'tls'] as const) {
    it(`over ${kind}, the first send opens a connection and the second reuses it`, async () => {
      const peer = await peerServer(kind);
      const { layer, user } = await startLayer([{ protocol: kind, address: '127.0.0.1', port: 0 }], { tlsClient: { rejectUnauthorized: false } });
      const first = await layer.send(sipRequest('out1'), { protocol: kind, address: '127.0.0.1', port: peer.port });
      const second = await layer.send(sipRequest('out2'), { protocol: kind, address: '127.0.0.1', port: peer.port });
      assert.equal(second.id, first.id);
      assert.equal(first.protocol, kind);
      assert.deepEqual(first.remote, { address: '127.0.0.1', port: peer.port });
      // The flow advertises the listener (Via sent-by), not the ephemeral source port.
      assert.deepEqual(first.local, { address: '127.0.0.1', port: layer.listeners[0]!.port });
      await waitFor(() => (peer.data().includes('Call-ID: out2') ? true : undefined), 'both requests at the peer');
      assert.equal(peer.sockets.length, 1);
      assert.equal(layer.connectionCount, 1);
      // The new connection is read like an inbound one.
      peer.sockets[0]!.write(sipResponse('out1'));
      const { flow } = await user.message(0);
      assert.equal(flow.id, first.id);
    });
  }

  it('two sends issued together to a new address share one connection', async () => {
    const peer = await peerServer('tcp');
    const { layer } = await startLayer([]);
    const dest = { protocol: 'tcp' as const, address: '127.0.0.1', port: peer.port };
    const [a, b] = await Promise.all([layer.send(sipRequest('c1'), dest), layer.send(sipRequest('c2'), dest)]);
    assert.equal(a.id, b.id);
    await waitFor(() => (peer.data().includes('Call-ID: c2') ? true : undefined), 'both requests at the peer');
    assert.equal(peer.sockets.length, 1);
    // Without a listener, the flow's local side is the socket's own address.
    assert.equal(a.local.address, '127.0.0.1');
    assert.ok(a.local.port > 0);
  });

  it('over tls, verifies the server against the configured CA (the self-signed certificate covers 127.0.0.1)', async () => {
    const peer = await peerServer('tls');
    const { layer } = await startLayer([], { tlsClient: { ca: tls.cert } });
    await layer.send(sipRequest('verified'), { protocol: 'tls', address: '127.0.0.1', port: peer.port });
    await waitFor(() => (peer.data().includes('Call-ID: verified') ? true : undefined), 'the request at the peer');
  });

  it('over tls, rejects an untrusted server certificate with TRANSPORT_ERR_CONNECT', async () => {
    const peer = await peerServer('tls');
    const { layer, user } = await startLayer([]);
    await assert.rejects(layer.send(sipRequest('untrusted'), { protocol: 'tls', address: '127.0.0.1', port: peer.port }), rejectsWith('TRANSPORT_ERR_CONNECT'));
    assert.equal(layer.connectionCount, 0);
    assert.equal(user.closed.length, 0);
  });

  it('a refused connection rejects with TRANSPORT_ERR_CONNECT and leaves no flow behind', async () => {
    const peer = await peerServer('tcp');
    const port = peer.port;
    await cleanups.pop()!(); // close the peer so that its port refuses
    const { layer, user } = await startLayer([]);
    await assert.rejects(layer.send(sipRequest('refused'), { protocol: 'tcp', address: '127.0.0.1', port }), rejectsWith('TRANSPORT_ERR_CONNECT'));
    assert.equal(layer.connectionCount, 0);
    assert.equal(user.closed.length, 0);
  });

  it('over tcp, a flow id that is gone falls back to the address', async () => {
    const peer = await peerServer('tcp');
    const { layer } = await startLayer([]);
    const flow = await layer.send(sipRequest('a'), { protocol: 'tcp', address: '127.0.0.1', port: peer.port });
    layer.closeFlow(flow.id);
    const again = await layer.send(sipRequest('b'), { protocol: 'tcp', address: '127.0.0.1', port: peer.port, flowId: flow.id });
    assert.notEqual(again.id, flow.id);
    await waitFor(() => (peer.sockets.length === 2 ? true : undefined), 'a second connection');
  });

  it('connects to an IPv6 destination', async () => {
    const peer = await peerServer('tcp', '::1');
    const { layer } = await startLayer([{ protocol: 'tcp', address: '::1', port: 0 }]);
    const flow = await layer.send(sipRequest('v6'), { protocol: 'tcp', address: '::1', port: peer.port });
    assert.deepEqual(flow.remote, { address: '::1', port: peer.port });
    await waitFor(() => (peer.data().includes('Call-ID: v6') ? true : undefined), 'the request at the IPv6 peer');
  });

  it('refuses to open a connection beyond maxConnections with TRANSPORT_ERR_LIMIT', async () => {
    const peer = await peerServer('tcp');
    const { layer } = await startLayer([], { maxConnections: 1 });
    await layer.send(sipRequest('a'), { protocol: 'tcp', address: '127.0.0.1', port: peer.port });
    await assert.rejects(layer.send(sipRequest('b'), { protocol: 'tls', address: '127.0.0.1', port: peer.port }), rejectsWith('TRANSPORT_ERR_LIMIT'));
  });
});

describe('UDP', () => {
  it('sends to an IPv6 destination from the IPv6 listener and to IPv4 from the IPv4 one', async () => {
    const { layer } = await startLayer([{ protocol: 'udp', address: '127.0.0.1', port: 0 }, { protocol: 'udp', address: '::1', port: 0 }]);
    const [v4, v6] = layer.listeners;
    const c6 = await client('udp', '::1', 1);
    const c4 = await client('udp', '127.0.0.1', 1);
    const f6 = await layer.send(sipResponse('six'), { protocol: 'udp', address: '::1', port: c6.localPort });
    const f4 = await layer.send(sipResponse('four'), { protocol: 'udp', address: '127.0.0.1', port: c4.localPort });
    assert.deepEqual(f6.local, { address: '::1', port: v6!.port });
    assert.deepEqual(f4.local, { address: '127.0.0.1', port: v4!.port });
    await c6.waitForData('Call-ID: six');
    await c4.waitForData('Call-ID: four');
  });

  it('without a listener of the destination family, rejects with TRANSPORT_ERR_NO_LISTENER', async () => {
    const { layer } = await startLayer([{ protocol: 'udp', address: '127.0.0.1', port: 0 }]);
    await assert.rejects(layer.send(sipRequest('x'), { protocol: 'udp', address: '::1', port: 5060 }), rejectsWith('TRANSPORT_ERR_NO_LISTENER'));
  });

  it('answers from the socket the request came in on, when several UDP listeners share a family', async () => {
    const { layer, user } = await startLayer([{ protocol: 'udp', address: '127.0.0.1', port: 0 }, { protocol: 'udp', address: '127.0.0.1', port: 0 }]);
    const second = layer.listeners[1]!;
    const c = await client('udp', '127.0.0.1', second.port);
    await c.write(sipRequest('two'));
    const { flow } = await user.message(0);
    const used = await layer.send(sipResponse('two'), { protocol: 'udp', ...flow.remote, flowId: flow.id });
    assert.equal(used.local.port, second.port);
    assert.equal(used.id, flow.id);
    await c.waitForData('SIP/2.0 200 OK');
  });

  it('answers a STUN Binding request with the XOR-MAPPED-ADDRESS of the client (RFC 5626 §4.4.2)', async () => {
    const { layer, user } = await startLayer([{ protocol: 'udp', address: '127.0.0.1', port: 0 }]);
    const socket = createSocket('udp4');
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    const responses: Buffer[] = [];
    socket.on('message', (m) => responses.push(m));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    const txid = Buffer.from('0123456789ab');
    const requestBytes = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), txid]);
    socket.send(requestBytes, layer.listeners[0]!.port, '127.0.0.1');
    const response = await waitFor(() => responses[0], 'the STUN response');
    assert.equal(response.readUInt16BE(0), 0x0101);
    assert.deepEqual(response.subarray(8, 20), txid);
    assert.equal(response.readUInt16BE(20), 0x0020);
    assert.equal(response.readUInt16BE(26) ^ 0x2112, socket.address().port);
    assert.deepEqual([...response.subarray(28, 32)].map((b, i) => b ^ [0x21, 0x12, 0xa4, 0x42][i]!), [127, 0, 0, 1]);
    assert.equal(user.messages.length, 0);
  });
});

describe('WebSocket (RFC 7118)', () => {
  for (const kind of ['ws', 'wss'] as const) {
    it(`over ${kind}, refuses a handshake that does not offer the sip subprotocol, and no flow is created`, async () => {
      const { layer } = await startLayer([{ protocol: kind, address: '127.0.0.1', port: 0 }]);
      const port = layer.listeners[0]!.port;
      for (const protocols of [[], ['chat']]) {
        await assert.rejects(openClient(kind, '127.0.0.1', port, { wsProtocols: protocols }), (err: Error & { statusCode?: number }) => {
          assert.equal(err.statusCode, 400);
          return true;
        });
      }
      assert.equal(layer.connectionCount, 0);
      // A client that offers sip among others gets sip.
      const ok = await client(kind, '127.0.0.1', port, { wsProtocols: ['chat', 'sip'] });
      await ok.write(sipRequest('ok'));
      assert.equal(layer.connectionCount, 1);
    });
  }

  it('answers a plain HTTP request with 426 Upgrade Required', async () => {
    const { layer } = await startLayer([{ protocol: 'ws', address: '127.0.0.1', port: 0 }]);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: layer.listeners[0]!.port, path: '/' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 426);
    assert.equal(layer.connectionCount, 0);
  });

  it('sends UTF-8 messages as text frames and other bytes as binary frames (RFC 7118 §5.1)', async () => {
    const { layer, user } = await startLayer([{ protocol: 'ws', address: '127.0.0.1', port: 0 }]);
    const url = `ws://127.0.0.1:${layer.listeners[0]!.port}/`;
    const ws = new WebSocket(url, 'sip');
    cleanups.push(() => ws.terminate());
    const frames: { data: Buffer; isBinary: boolean }[] = [];
    ws.on('message', (data: Buffer, isBinary) => frames.push({ data, isBinary }));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(sipRequest('text'));
    const { flow } = await user.message(0);
    const binary = Buffer.concat([sipResponse('bin').subarray(0, -2), Buffer.from([0xff, 0xfe, 0x0d, 0x0a])]);
    await layer.send(sipResponse('utf8'), { protocol: 'ws', ...flow.remote, flowId: flow.id });
    await layer.send(binary, { protocol: 'ws', ...flow.remote, flowId: flow.id });
    await waitFor(() => (frames.length === 2 ? true : undefined), 'two frames');
    assert.equal(frames[0]!.isBinary, false);
    assert.equal(frames[1]!.isBinary, true);
    assert.deepEqual(frames[1]!.data, binary);
  });

  it('a flow id that is gone rejects with TRANSPORT_ERR_FLOW_GONE: a browser cannot be called back', async () => {
    const { layer, user } = await startLayer([{ protocol: 'wss', address: '127.0.0.1', port: 0 }]);
    const c = await client('wss', '127.0.0.1', layer.listeners[0]!.port);
    await c.write(sipRequest('gone'));
    const { flow } = await user.message(0);
    await c.close();
    await user.closedFlow(flow.id);
    await assert.rejects(layer.send(sipResponse('gone'), { protocol: 'wss', ...flow.remote, flowId: flow.id }), rejectsWith('TRANSPORT_ERR_FLOW_GONE'));
    await assert.rejects(layer.send(sipResponse('gone'), { protocol: 'wss', ...flow.remote }), rejectsWith('TRANSPORT_ERR_FLOW_GONE'));
  });

  it('terminates a peer that has not answered the previous ping by the next one', async () => {
    const { layer, user } = await startLayer([{ protocol: 'ws', address: '127.0.0.1', port: 0 }], { wsPingIntervalMs: 40 });
    const port = layer.listeners[0]!.port;
    const alive = await client('ws', '127.0.0.1', port);
    const dead = await client('ws', '127.0.0.1', port, { autoPong: false });
    await alive.write(sipRequest('alive'));
    await dead.write(sipRequest('dead'));
    const deadFlow = await waitFor(() => user.messages.find((m) => m.flow.remote.port === dead.localPort)?.flow, 'the dead peer message');
    const closed = await user.closedFlow(deadFlow.id, 1000);
    assert.match(closed.reason, /ping/);
    await dead.waitClosed();
    await delay(100);
    assert.equal(alive.isClosed, false);
    assert.equal(layer.connectionCount, 1);
  });
});

describe('every connection', () => {
  for (const kind of ['tcp', 'ws'] as const) {
    it(`over ${kind}, is closed after idleTimeoutMs without traffic, and onFlowClosed says so`, async () => {
      const { layer, user } = await startLayer([{ protocol: kind, address: '127.0.0.1', port: 0 }], { idleTimeoutMs: 80 });
      const c = await client(kind, '127.0.0.1', layer.listeners[0]!.port);
      await c.write(sipRequest('idle'));
      const { flow } = await user.message(0);
      const closed = await user.closedFlow(flow.id, 1000);
      assert.equal(closed.reason, 'idle timeout');
      await c.waitClosed();
      assert.equal(layer.connectionCount, 0);
    });
  }

  it('beyond maxConnections, a new inbound connection is closed at once with one warning when every connection is authenticated', async () => {
    const { logger, lines } = capturingLogger('warn');
    const { layer, user } = await startLayer(
      [{ protocol: 'tcp', address: '127.0.0.1', port: 0 }, { protocol: 'ws', address: '127.0.0.1', port: 0 }],
      { maxConnections: 1, logger },
    );
    const [tcp, ws] = layer.listeners;
    const first = await client('tcp', '127.0.0.1', tcp!.port);
    await first.write(sipRequest('first'));
    const { flow } = await user.message(0);
    layer.markAuthenticated(flow.id);
    const second = await client('tcp', '127.0.0.1', tcp!.port);
    await second.waitClosed();
    await assert.rejects(openClient('ws', '127.0.0.1', ws!.port));
    const warnings = lines().filter((l) => l.msg === 'connection limit reached and every connection is authenticated, refusing connection');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.cat, 'sip.transport');
    assert.equal(first.isClosed, false);
    assert.equal(layer.connectionCount, 1);
  });

  it('closeFlow closes the connection and onFlowClosed follows', async () => {
    const { layer, user } = await startLayer([{ protocol: 'tls', address: '127.0.0.1', port: 0 }]);
    const c = await client('tls', '127.0.0.1', layer.listeners[0]!.port);
    await c.write(sipRequest('close-me'));
    const { flow } = await user.message(0);
    layer.closeFlow(flow.id);
    assert.equal((await user.closedFlow(flow.id)).reason, 'closed by the core');
    await c.waitClosed();
    layer.closeFlow(flow.id); // already gone: nothing happens
    layer.closeFlow('udp:127.0.0.1:1>127.0.0.1:2');
    assert.equal(user.closed.length, 1);
  });

  it('survives a transport user that throws, and keeps reading the connection', async () => {
    const messages: string[] = [];
    const user = {
      onMessage(data: Buffer): void {
        messages.push(data.toString('latin1'));
        throw new Error('core bug');
      },
      onFlowClosed(): void {
        throw new Error('core bug on close');
      },
    };
    const layer = new TransportLayer({ listen: [{ protocol: 'tcp', address: '127.0.0.1', port: 0 }], user, logger: silentLogger() });
    cleanups.push(() => layer.stop());
    await layer.start();
    const c = await client('tcp', '127.0.0.1', layer.listeners[0]!.port);
    await c.write(Buffer.concat([sipRequest('one'), sipRequest('two')]));
    await waitFor(() => (messages.length === 2 ? true : undefined), 'both messages');
    await c.close();
    await waitFor(() => (layer.connectionCount === 0 ? true : undefined), 'the connection to go');
  });

  it('a peer resetting the connection mid-message does not crash the process', async () => {
    const { layer, user } = await startLayer([{ protocol: 'tcp', address: '127.0.0.1', port: 0 }]);
    const socket = await new Promise<Socket>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: layer.listeners[0]!.port }, () => resolve(s));
    });
    cleanups.push(() => void socket.destroy());
    socket.on('error', () => undefined);
    socket.write(sipRequest('whole'));
    const { flow } = await user.message(0);
    socket.write(sipRequest('half').subarray(0, 40));
    await delay(10);
    socket.resetAndDestroy();
    const closed = await user.closedFlow(flow.id);
    assert.match(closed.reason, /ECONNRESET|peer closed/);
    // The flow is gone: a send falls back to the address, where nothing listens.
    await assert.rejects(layer.send(sipResponse('late'), { protocol: 'tcp', ...flow.remote, flowId: flow.id }), rejectsWith('TRANSPORT_ERR_CONNECT'));
    assert.equal(user.messages.length, 1);
  });
});

describe('lifecycle', () => {
  it('stop() closes every connection, reports each flow closed, and is idempotent', async () => {
    const { layer, user } = await startLayer([
      { protocol: 'tcp', address: '127.0.0.1', port: 0 },
      { protocol: 'wss', address: '127.0.0.1', port: 0 },
    ]);
    const [tcp, wss] = layer.listeners;
    const a = await client('tcp', '127.0.0.1', tcp!.port);
    const b = await client('wss', '127.0.0.1', wss!.port);
    await a.write(sipRequest('a'));
    await b.write(sipRequest('b'));
    await waitFor(() => (user.messages.length === 2 ? true : undefined), 'both messages');
    await Promise.all([layer.stop(), layer.stop()]);
    await layer.stop();
    assert.equal(layer.connectionCount, 0);
    assert.deepEqual(user.closed.map((c) => c.reason), ['transport stopped', 'transport stopped']);
    await a.waitClosed();
    await b.waitClosed();
    await assert.rejects(layer.send(sipRequest('late'), { protocol: 'udp', address: '127.0.0.1', port: 9 }), TransportError);
    await assert.rejects(layer.start(), /cannot start/);
  });

  it('start() rejects when an address is taken, and releases what it bound', async () => {
    const { layer: first } = await startLayer([{ protocol: 'tcp', address: '127.0.0.1', port: 0 }]);
    const taken = first.listeners[0]!.port;
    const second = new TransportLayer({
      listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }, { protocol: 'tcp', address: '127.0.0.1', port: taken }],
      user: new RecordingUser(),
      logger: silentLogger(),
    });
    cleanups.push(() => second.stop());
    await assert.rejects(second.start(), /cannot listen on tcp:127\.0\.0\.1:\d+/);
    await second.stop();
  });

  it('a tls or wss listener without a certificate is a TypeError', () => {
    for (const protocol of ['tls', 'wss'] as const) {
      assert.throws(() => new TransportLayer({ listen: [{ protocol, address: '127.0.0.1', port: 0 }], user: new RecordingUser(), logger: silentLogger() }), TypeError);
    }
  });

  it('listenerFor() picks the listener of the asked family', async () => {
    const { layer } = await startLayer([{ protocol: 'tcp', address: '127.0.0.1', port: 0 }, { protocol: 'tcp', address: '::1', port: 0 }]);
    assert.equal(layer.listenerFor('tcp', 6)?.address, '::1');
    assert.equal(layer.listenerFor('tcp', 4)?.address, '127.0.0.1');
    assert.equal(layer.listenerFor('tcp')?.address, '127.0.0.1');
    assert.equal(layer.listenerFor('udp'), undefined);
  });
});
