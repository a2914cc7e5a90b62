/**
 * What one request may cost (config `limits`): the size per transport, the number of header fields, the
 * lengths of the Contact/Via/Route lists, the body of methods that need none, and scanner User-Agents.
 * Every refusal is stateless: no transaction is created, the process goes on.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type StackLimits, type StackUser, Stack } from '../../../src/core/index.js';
import { createLogger, silentLogger } from '../../../src/log/index.js';
import { Writable } from 'node:stream';
import { SipParseError, type SipResponse, parseMessage } from '../../../src/sip/index.js';
import type { ServerTransaction } from '../../../src/transaction/index.js';
import { ConfigError, validate } from '../../../platform/config/index.js';
import { checkRequest } from '../../../src/core/index.js';
import { SipRequest } from '../../../src/sip/index.js';
import { loadTortureCases } from '../../helpers/rfc4475.js';
import { ManualClock, MemoryTransport, flowOf } from '../proxy/harness.js';

const LIMITS: StackLimits = {
  maxMessageSize: { udp: 4096, tcp: 65535, tls: 65535, ws: 65535, wss: 65535 },
  maxHeaders: 40,
  maxContacts: 4,
  maxVias: 6,
  maxRoutes: 6,
  maxBodyWithoutNeed: 512,
  transactionMemory: 1 << 30,
  scannerUserAgents: ['friendly-scanner', 'sipvicious', 'VaxSIPUserAgent'],
};

function request(method: string, o: { extra?: string[]; body?: string; branch?: string } = {}): string {
  const body = o.body ?? '';
  return [
    `${method} sip:bob@example.com SIP/2.0`,
    `Via: SIP/2.0/UDP 198.51.100.7:5060;branch=${o.branch ?? 'z9hG4bK' + Math.random().toString(36).slice(2)}`,
    'Max-Forwards: 70',
    'To: <sip:bob@example.com>',
    'From: <sip:alice@example.com>;tag=a1',
    'Call-ID: limits-1@198.51.100.7',
    `CSeq: 1 ${method}`,
    ...(o.extra ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

async function stackWith(limits: StackLimits, logger = silentLogger()): Promise<{ stack: Stack; transport: MemoryTransport; seen: SipRequest[]; send(text: string, protocol?: 'udp' | 'tcp'): SipResponse[] }> {
  const transport = new MemoryTransport();
  const stack = new Stack({ logger, createTransport: () => transport, timers: new ManualClock(), serverHeader: '', sendTrying: false, limits });
  const seen: SipRequest[] = [];
  const user: StackUser = {
    onRequest(req: SipRequest, tx: ServerTransaction) {
      seen.push(req);
      stack.respond(tx, 200);
    },
  };
  stack.setUser(user);
  await stack.start();
  return {
    stack, transport, seen,
    send(text, protocol = 'udp') {
      const before = transport.sent.length;
      stack.onMessage(Buffer.from(text, 'latin1'), flowOf({ protocol, address: '198.51.100.7', port: 5060 }));
      return transport.sent.slice(before).map((s) => s.message as SipResponse);
    },
  };
}

describe('limits: what one request may cost', () => {
  it('a request larger than its transport allows is answered 513 Message Too Large before it is parsed (RFC 3261 §21.5.11)', async () => {
    const t = await stackWith(LIMITS);
    const big = request('MESSAGE', { body: 'x'.repeat(5000), extra: ['Content-Type: text/plain'] });
    const [res] = t.send(big, 'udp');
    assert.equal(res?.status, 513);
    assert.equal(t.seen.length, 0);
    assert.equal(t.stack.transactions.stats.server, 0);
    // The same message over TCP is within that transport's limit.
    assert.equal(t.send(big, 'tcp')[0]?.status, 200);
  });

  it('more header fields than maxHeaders are refused with 400 and a reason that says so', async () => {
    const t = await stackWith(LIMITS);
    const extra = Array.from({ length: 60 }, (_, i) => `X-Filler-${i}: ${i}`);
    const [res] = t.send(request('OPTIONS', { extra }));
    assert.equal(res?.status, 400);
    assert.match(res!.reason, /more than 40 header fields/);
    assert.equal(t.stack.transactions.stats.server, 0);
  });

  it('the parser counts header fields while cutting them out (SIP_ERR_TOO_MANY_HEADERS)', () => {
    const text = request('OPTIONS', { extra: Array.from({ length: 10 }, (_, i) => `X-H${i}: v`) });
    assert.ok(parseMessage(Buffer.from(text), { maxHeaders: 40 }));
    assert.throws(() => parseMessage(Buffer.from(text), { maxHeaders: 10 }), (e: unknown) => e instanceof SipParseError && e.code === 'SIP_ERR_TOO_MANY_HEADERS');
  });

  it('a Contact list longer than maxContacts, in one field or several, is refused with 400', async () => {
    const t = await stackWith(LIMITS);
    const one = Array.from({ length: 5 }, (_, i) => `<sip:a${i}@198.51.100.7>`).join(', ');
    assert.equal(t.send(request('REGISTER', { extra: [`Contact: ${one}`] }))[0]?.status, 400);
    const several = Array.from({ length: 5 }, (_, i) => `Contact: "x, y" <sip:a${i}@198.51.100.7;p=a>`);
    const [res] = t.send(request('REGISTER', { extra: several }));
    assert.equal(res?.status, 400);
    assert.match(res!.reason, /more than 4 Contact values/);
    // Commas inside quotes do not count: four contacts pass.
    assert.equal(t.send(request('REGISTER', { extra: several.slice(0, 4) }))[0]?.status, 200);
  });

  it('Via, Route and Record-Route lists over their limits are refused with 400', async () => {
    const t = await stackWith(LIMITS);
    const vias = Array.from({ length: 6 }, (_, i) => `Via: SIP/2.0/UDP 10.0.0.${i}:5060;branch=z9hG4bK${i}`);
    assert.match(t.send(request('OPTIONS', { extra: vias }))[0]!.reason, /more than 6 Via values/);
    const routes = Array.from({ length: 7 }, (_, i) => `<sip:10.0.0.${i};lr>`).join(',');
    assert.match(t.send(request('OPTIONS', { extra: [`Route: ${routes}`] }))[0]!.reason, /more than 6 Route values/);
    assert.match(t.send(request('OPTIONS', { extra: [`Record-Route: ${routes}`] }))[0]!.reason, /more than 6 Record-Route values/);
    assert.equal(t.seen.length, 0);
  });

  it('a body over maxBodyWithoutNeed on a method that needs none is answered 413; INVITE may carry it', async () => {
    const t = await stackWith(LIMITS);
    const body = 'v=0\r\n' + 'a=x\r\n'.repeat(200);
    const [res] = t.send(request('OPTIONS', { body, extra: ['Content-Type: application/sdp'] }));
    assert.equal(res?.status, 413);
    assert.equal(t.send(request('INVITE', { body, extra: ['Contact: <sip:alice@198.51.100.7>', 'Content-Type: application/sdp'] }))[0]?.status, 200);
  });

  it('a scanner User-Agent is dropped without an answer and before a transaction, any case, and counted', async () => {
    const t = await stackWith(LIMITS);
    assert.deepEqual(t.send(request('OPTIONS', { extra: ['User-Agent: Friendly-Scanner'] })), []);
    assert.deepEqual(t.send(request('REGISTER', { extra: ['User-Agent: sipvicious 0.3.4'] })), []);
    assert.deepEqual(t.send(request('INVITE', { extra: ['User-Agent: VaxSIPUserAgent/3.1'] })), []);
    assert.equal(t.stack.stats.scanners, 3);
    assert.equal(t.stack.transactions.stats.server, 0);
    assert.equal(t.send(request('OPTIONS', { extra: ['User-Agent: Yealink SIP-T46S 66.86.0.15'] }))[0]?.status, 200);
  });

  it('logs a scanner source once a minute, however many requests it sends', async (tc) => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
    tc.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const t = await stackWith(LIMITS, createLogger({ level: 'info', destination: sink }));
    const scanned = () => lines.filter((l) => l.includes('scanner dropped')).length;
    for (let i = 0; i < 20; i++) t.send(request('OPTIONS', { extra: ['User-Agent: friendly-scanner'] }));
    await new Promise((r) => setImmediate(r));
    assert.equal(scanned(), 1);
    tc.mock.timers.tick(59_000);
    t.send(request('OPTIONS', { extra: ['User-Agent: friendly-scanner'] }));
    await new Promise((r) => setImmediate(r));
    assert.equal(scanned(), 1);
    tc.mock.timers.tick(1_000);
    t.send(request('OPTIONS', { extra: ['User-Agent: friendly-scanner'] }));
    await new Promise((r) => setImmediate(r));
    assert.equal(scanned(), 2);
    assert.equal(t.stack.stats.scanners, 22);
  });

  it('an empty scannerUserAgents list turns the scanner check off', async () => {
    const t = await stackWith({ ...LIMITS, scannerUserAgents: [] });
    assert.equal(t.send(request('OPTIONS', { extra: ['User-Agent: friendly-scanner'] }))[0]?.status, 200);
  });
});

describe('limits: configuration', () => {
  it('defaults to a smaller UDP than stream limit, under sip.maxMessageSize, and drops the well-known scanners', () => {
    const c = validate({});
    assert.ok(c.limits.maxMessageSize.udp < c.limits.maxMessageSize.wss);
    assert.ok(c.limits.maxMessageSize.wss <= c.sip.maxMessageSize);
    for (const ua of ['friendly-scanner', 'sipvicious', 'sipcli', 'VaxSIPUserAgent', 'sip-scan', 'iWar', 'SIVuS', 'sundayddr', 'smap', 'pplsip']) {
      assert.ok(c.limits.scannerUserAgents.includes(ua), ua);
    }
    assert.equal(c.proxy.topologyHiding, false);
    assert.doesNotMatch(c.sip.serverHeader, /\d/, 'no version number in the default Server header');
  });

  it('a bad limit stops the start naming the key and the value', () => {
    assert.throws(() => validate({ limits: { maxHeaders: 5 } }), (e: unknown) => e instanceof ConfigError && e.key === 'limits.maxHeaders' && e.value === 5);
    assert.throws(() => validate({ limits: { maxMessageSize: { udp: 100 } } }), (e: unknown) => e instanceof ConfigError && e.key === 'limits.maxMessageSize.udp');
  });
});

describe('limits: the default limits and RFC 4475', () => {
  it('refuse none of the RFC 4475 torture requests for a limit (longreq carries 34 Vias and 43 header fields)', () => {
    const d = validate({}).limits;
    for (const c of loadTortureCases()) {
      if (c.data.length > d.maxMessageSize.udp) assert.fail(`${c.name} is larger than the UDP limit`);
      let msg;
      try {
        msg = parseMessage(c.data, { maxHeaders: d.maxHeaders });
      } catch (err) {
        assert.ok(!(err instanceof SipParseError && err.code === 'SIP_ERR_TOO_MANY_HEADERS'), `${c.name}: ${String(err)}`);
        continue;
      }
      if (!(msg instanceof SipRequest)) continue;
      let rejection;
      try {
        rejection = checkRequest(msg, d);
      } catch {
        continue; // a lazily parsed header the other checks refuse
      }
      assert.ok(rejection === undefined || (!/more than/.test(rejection.reason) && rejection.status !== 413), `${c.name}: ${rejection?.status} ${rejection?.reason}`);
    }
  });
});
