/**
 * The running server over every transport, with real peers: SIPp over UDP and TCP (Debian's SIPp is
 * built without TLS, so TLS gets Node's TLS client), WebSocket clients over WS and WSS (RFC 7118).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import type { SipRequest } from '../../src/sip/index.js';
import type { StackUser } from '../../src/core/index.js';
import { runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

function options(transport: string, host: string, port: number, branch: string): string {
  return (
    `OPTIONS sip:${host}:${port} SIP/2.0\r\n` +
    `Via: SIP/2.0/${transport} client.invalid;branch=z9hG4bK${branch}\r\n` +
    'Max-Forwards: 70\r\nFrom: <sip:probe@example.com>;tag=abc\r\n' +
    `To: <sip:${host}:${port}>\r\nCall-ID: ${branch}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`
  );
}

describe('the server over its transports', () => {
  let t: TestServer;
  const seen: string[] = [];
  const sent: string[] = [];

  before(async () => {
    t = await startTestServer();
    // Count what reaches the module above the transaction layer: retransmissions must not.
    const stack = t.server.stack;
    const inner = (stack as unknown as { user: StackUser }).user;
    const send = stack.transport.send.bind(stack.transport);
    stack.transport.send = (data, destination) => {
      sent.push(data.toString('latin1', 0, Math.min(data.length, 40)).split('\r\n')[0]!);
      return send(data, destination);
    };
    stack.setUser({
      ...inner,
      onRequest: (req: SipRequest, tx, cancels) => {
        seen.push(`${req.method} ${req.callId}`);
        const delay = Number(req.get('X-Test-Delay') ?? 0);
        if (delay > 0) setTimeout(() => inner.onRequest(req, tx, cancels), delay);
        else inner.onRequest(req, tx, cancels);
      },
      onAck: (req, flow, tx) => {
        seen.push(`ACK ${req.callId}`);
        inner.onAck?.(req, flow, tx);
      },
    });
  });
  after(async () => t?.stop());

  for (const transport of ['u1', 't1'] as const) {
    it(`answers an OPTIONS ping from SIPp with 200 over ${transport === 'u1' ? 'UDP' : 'TCP'}`, async () => {
      const r = await runSipp({ scenario: 'options.xml', target: t.addr(transport === 'u1' ? 'udp' : 'tcp'), transport });
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
    });
  }

  it('absorbs the retransmissions of an OPTIONS answered late: one transaction (RFC 3261 §17.2.2, SIPp over UDP)', async () => {
    const before = seen.length;
    const received = t.server.stack.stats.received;
    const r = await runSipp({ scenario: 'options-retransmit.xml', target: t.addr('udp') });
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
    assert.ok(t.server.stack.stats.received - received >= 2, 'SIPp retransmitted the OPTIONS');
    assert.equal(seen.length - before, 1, seen.slice(before).join(', '));
  });

  it('retransmits the final response to an INVITE until the ACK comes, then absorbs the ACK: one transaction (§17.2.1, SIPp over UDP)', async () => {
    const before = seen.length;
    const sentBefore = sent.length;
    const r = await runSipp({ scenario: 'invite-retransmit.xml', target: t.addr('udp') });
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
    const finals = sent.slice(sentBefore).filter((l) => l.startsWith('SIP/2.0 403'));
    assert.ok(finals.length >= 2, `Timer G retransmitted the 403 (${finals.length} sent)`);
    assert.deepEqual(seen.slice(before).map((s) => s.split(' ')[0]), ['INVITE'], 'the TU saw one INVITE and no ACK');
  });

  it('answers an OPTIONS over TLS on the same connection', async () => {
    const l = t.listener('tls');
    const socket = tlsConnect({ host: l.address, port: l.port, rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
      socket.write(options('TLS', l.address, l.port, 'tls1'));
      const reply = await new Promise<string>((resolve, reject) => {
        let buf = '';
        socket.on('data', (d: Buffer) => {
          buf += d.toString('latin1');
          if (buf.includes('\r\n\r\n')) resolve(buf);
        });
        socket.once('error', reject);
      });
      assert.match(reply, /^SIP\/2\.0 200 OK\r\n/);
      assert.match(reply, /received=127\.0\.0\.1/);
    } finally {
      socket.destroy();
    }
  });

  for (const protocol of ['ws', 'wss'] as const) {
    it(`answers an OPTIONS over ${protocol.toUpperCase()} with the sip subprotocol (RFC 7118)`, async () => {
      const l = t.listener(protocol);
      const ws = new WebSocket(`${protocol}://${l.address}:${l.port}`, 'sip', { rejectUnauthorized: false });
      try {
        await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
        assert.equal(ws.protocol, 'sip');
        ws.send(options(protocol.toUpperCase(), l.address, l.port, `${protocol}1`));
        const reply = await new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
        assert.match(reply, /^SIP\/2\.0 200 OK\r\n/);
      } finally {
        ws.close();
      }
    });

    it(`refuses a ${protocol.toUpperCase()} connection that does not offer the sip subprotocol`, async () => {
      const l = t.listener(protocol);
      const ws = new WebSocket(`${protocol}://${l.address}:${l.port}`, { rejectUnauthorized: false });
      const outcome = await new Promise<string>((resolve) => {
        ws.once('open', () => resolve('open'));
        ws.once('error', () => resolve('refused'));
        ws.once('unexpected-response', () => resolve('refused'));
      });
      ws.terminate();
      assert.equal(outcome, 'refused');
    });
  }

  it('reports its listeners and state on GET /health', async () => {
    const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { ok: boolean; listeners: string[] };
    assert.equal(body.ok, true);
    assert.deepEqual(body.listeners.map((l) => l.split(':')[0]), ['udp', 'tcp', 'tls', 'ws', 'wss']);
  });

  it('answers 400 with the reason to a malformed request and keeps serving', async () => {
    const l = t.listener('tcp');
    const { connect } = await import('node:net');
    const socket = connect(l.port, l.address);
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write('OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP client.invalid;branch=z9hG4bKbad1\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: "unterminated <sip:b@example.com>\r\nCall-ID: bad1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n');
      const reply = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
      assert.match(reply, /^SIP\/2\.0 400 Bad Request \(to: unterminated quoted string\)\r\n/);
      socket.write(options('TCP', l.address, l.port, 'after'));
      const again = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
      assert.match(again, /^SIP\/2\.0 200 OK/);
    } finally {
      socket.destroy();
    }
  });
});
