/**
 * One conformance suite run for every transport on both loopback families, with raw clients (dgram, net,
 * tls, ws) playing the phone or the browser.
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../src/log/index.js';
import {
  TransportLayer, isReliable, loadOrCreateCertificate, type TransportProtocol,
} from '../../../src/transport/index.js';
import { RecordingUser, delay, openClient, sipRequest, sipResponse, type TestClient } from './helpers.js';

const MAX = 4096;
const PROTOCOLS: TransportProtocol[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];
const HOSTS = ['127.0.0.1', '::1'];

let dataDir: string;
let tls: { cert: string; key: string };

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'softswitch-transport-'));
  tls = await loadOrCreateCertificate({ dataDir, hostnames: ['localhost'], logger: silentLogger() });
});

after(() => rmSync(dataDir, { recursive: true, force: true }));

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

for (const host of HOSTS) {
  for (const protocol of PROTOCOLS) {
    const stream = isReliable(protocol);

    describe(`transport conformance: ${protocol} on ${host}`, () => {
      let layer: TransportLayer;
      let user: RecordingUser;
      let clients: TestClient[] = [];

      beforeEach(async () => {
        user = new RecordingUser();
        layer = new TransportLayer({ listen: [{ protocol, address: host, port: 0 }], user, logger: silentLogger(), tls, maxMessageSize: MAX });
        await layer.start();
      });

      afterEach(async () => {
        await Promise.all(clients.map((c) => c.close()));
        clients = [];
        await layer.stop();
      });

      async function client(): Promise<TestClient> {
        const c = await openClient(protocol, host, layer.listeners[0]!.port);
        clients.push(c);
        return c;
      }

      it('binds port 0 to a real ephemeral port on the listen address', () => {
        const [l] = layer.listeners;
        assert.equal(l?.protocol, protocol);
        assert.equal(l?.address, host);
        assert.ok(l !== undefined && l.port > 0);
        assert.deepEqual(layer.listenerFor(protocol, host.includes(':') ? 6 : 4), l);
      });

      it("delivers a message from the peer exactly once, with the peer's address and port as the flow's remote", async () => {
        const c = await client();
        const msg = sipRequest('once');
        await c.write(msg);
        const { data, flow } = await user.message(0);
        assert.deepEqual(data, msg);
        assert.equal(flow.protocol, protocol);
        assert.deepEqual(flow.remote, { address: host, port: c.localPort });
        assert.deepEqual(flow.local, { address: host, port: layer.listeners[0]!.port });
        if (protocol === 'udp') assert.equal(flow.id, `udp:${hostPort(host, flow.local.port)}>${hostPort(host, c.localPort)}`);
        else assert.match(flow.id, new RegExp(`^${protocol}:`));
        await delay(15);
        assert.equal(user.messages.length, 1);
      });

      it('sends a response back on the flow the request came in on (RFC 3261 §18.2.2)', async () => {
        const c = await client();
        await c.write(sipRequest('reply'));
        const { flow } = await user.message(0);
        const used = await layer.send(sipResponse('reply'), { protocol, ...flow.remote, flowId: flow.id });
        assert.equal(used.id, flow.id);
        await c.waitForData('SIP/2.0 200 OK');
        assert.deepEqual(c.received(), sipResponse('reply'));
      });

      it('without a flow id, reaches the peer at its address (reusing its open connection, RFC 3261 §18.1.1)', async () => {
        const c = await client();
        await c.write(sipRequest('addr'));
        const { flow } = await user.message(0);
        const used = await layer.send(sipResponse('addr'), { protocol, address: host, port: c.localPort });
        if (stream) assert.equal(used.id, flow.id);
        await c.waitForData('SIP/2.0 200 OK');
        assert.equal(layer.connectionCount, stream ? 1 : 0);
      });

      if (stream) {
        it('reports onFlowClosed exactly once when the peer closes the connection', async () => {
          const c = await client();
          await c.write(sipRequest('bye'));
          const { flow } = await user.message(0);
          assert.equal(layer.connectionCount, 1);
          await c.close();
          const closed = await user.closedFlow(flow.id);
          assert.equal(closed.flow, flow);
          await delay(10);
          assert.equal(user.closed.length, 1);
          assert.equal(layer.connectionCount, 0);
        });

        it('closes the connection on a message larger than maxMessageSize', async () => {
          const c = await client();
          await c.write(sipRequest('big', MAX + 100)).catch(() => undefined);
          await c.waitClosed();
          assert.equal(user.messages.length, 0);
          await waitClosedCount(user, 1);
        });

        it('closes a connection that sends more than maxMessageSize bytes without a header end, and keeps serving new clients', async () => {
          const c = await client();
          await c.write(Buffer.alloc(MAX + 10, 'a')).catch(() => undefined);
          await c.waitClosed();
          assert.equal(user.messages.length, 0);
          const c2 = await client();
          await c2.write(sipRequest('after'));
          const { flow } = await user.message(0);
          assert.equal(flow.remote.port, c2.localPort);
        });

        it('frames a message that arrives in 5-byte pieces with pauses into one message', async () => {
          const c = await client();
          const msg = sipRequest('slow', 20);
          await c.writeSlowly(msg, 5, 1);
          const { data } = await user.message(0);
          assert.deepEqual(data, msg);
          await delay(10);
          assert.equal(user.messages.length, 1);
        });

        it('answers a double-CRLF keep-alive ping with a single CRLF pong (RFC 5626 §4.4.1)', async () => {
          const c = await client();
          await c.write('\r\n\r\n');
          await c.waitForData('\r\n');
          await delay(10);
          assert.equal(c.received().toString('latin1'), '\r\n');
          assert.equal(user.messages.length, 0);
          // The connection still carries SIP afterwards.
          await c.write(sipRequest('after-ping'));
          assert.deepEqual((await user.message(0)).data, sipRequest('after-ping'));
        });
      } else {
        it('drops a datagram larger than maxMessageSize and keeps serving', async () => {
          const c = await client();
          await c.write(sipRequest('big', MAX + 100));
          await c.write(sipRequest('small'));
          const { data } = await user.message(0);
          assert.deepEqual(data, sipRequest('small'));
          await delay(10);
          assert.equal(user.messages.length, 1);
        });

        it('ignores a datagram made only of CRLF keep-alives', async () => {
          const c = await client();
          await c.write('\r\n\r\n');
          await c.write(sipRequest('after-ping'));
          assert.deepEqual((await user.message(0)).data, sipRequest('after-ping'));
          await delay(10);
          assert.equal(user.messages.length, 1);
          assert.equal(c.received().length, 0);
        });
      }
    });
  }
}

async function waitClosedCount(user: RecordingUser, n: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while (user.closed.length < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n} closed flows, saw ${user.closed.length}`);
    await delay(5);
  }
}
