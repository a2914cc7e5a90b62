/**
 * Connection exhaustion against the real server: an attacker on 127.0.0.2 (and 127.0.0.4) opens more
 * TCP/TLS/WS/WSS connections than it may, or holds many slow ones; legitimate phones on 127.0.0.3 (raw
 * SIP clients doing digest auth) and SIP.js softphones on 127.0.0.1 still register and call, /health
 * still answers. The file-limit part runs `softswitch start` under `prlimit` with a 1,024 soft limit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import { silentLogger } from '../../src/log/index.js';
import { openStore } from '../../platform/store/index.js';
import { repoRoot } from '../../support/paths.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, createPhone } from '../helpers/softphone.js';
import { freePort, requireTool } from '../../support/tools.js';

const ATTACKER = '127.0.0.2';
const ATTACKER2 = '127.0.0.4';
const PHONE = '127.0.0.3';
const DOMAIN = 'example.com';
const main = join(repoRoot, 'dist', 'server', 'main.js');
type Stream = 'tcp' | 'tls' | 'ws' | 'wss';
const STREAMS: readonly Stream[] = ['tcp', 'tls', 'ws', 'wss'];

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * A SIP client on one connection from a chosen local address: sends requests, collects responses
 * (framed by Content-Length on TCP/TLS, one per frame on WebSocket).
 */
class RawPhone {
  private buffer = '';
  private readonly responses: string[] = [];
  closed = false;

  private constructor(
    readonly protocol: Stream,
    private readonly write: (text: string) => void,
    readonly localAddress: string,
    readonly localPort: number,
    private readonly end: () => void,
  ) {}

  static async open(protocol: Stream, port: number, localAddress: string): Promise<RawPhone> {
    if (protocol === 'ws' || protocol === 'wss') {
      const ws = new WebSocket(`${protocol}://127.0.0.1:${port}/`, ['sip'], { rejectUnauthorized: false, localAddress, handshakeTimeout: 5000 });
      ws.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('close', () => reject(new Error('closed before open')));
      });
      const sock = (ws as unknown as { _socket: Socket })._socket;
      const phone = new RawPhone(protocol, (t) => ws.send(t), localAddress, sock.localPort ?? 0, () => ws.terminate());
      ws.on('message', (d: Buffer) => phone.responses.push(d.toString('latin1')));
      ws.on('close', () => (phone.closed = true));
      return phone;
    }
    const socket: Socket = await new Promise((resolve, reject) => {
      const s: Socket = protocol === 'tls'
        ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...{ localAddress } }, () => resolve(s))
        : netConnect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
      s.once('error', reject);
    });
    socket.on('error', () => undefined);
    const phone = new RawPhone(protocol, (t) => socket.write(t), localAddress, socket.localPort ?? 0, () => socket.destroy());
    socket.on('data', (d: Buffer) => phone.onData(d.toString('latin1')));
    socket.on('close', () => (phone.closed = true));
    return phone;
  }

  private onData(text: string): void {
    this.buffer += text;
    for (;;) {
      this.buffer = this.buffer.replace(/^(\r\n)+/, '');
      const headEnd = this.buffer.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const length = Number(/^(?:Content-Length|l)\s*:\s*(\d+)/im.exec(this.buffer.slice(0, headEnd))?.[1] ?? 0);
      if (this.buffer.length < headEnd + 4 + length) return;
      this.responses.push(this.buffer.slice(0, headEnd + 4 + length));
      this.buffer = this.buffer.slice(headEnd + 4 + length);
    }
  }

  /** Sends a request and resolves with its final response. */
  async request(text: string, callId: string, cseq: number): Promise<string> {
    this.write(text);
    let found: string | undefined;
    await until(() => {
      found = this.responses.find((r) => r.startsWith('SIP/2.0 ') && Number(r.slice(8, 11)) >= 200 && r.includes(callId) && new RegExp(`^CSeq:\\s*${cseq} `, 'im').test(r));
      return found !== undefined || this.closed;
    }, 5000, `a final response to CSeq ${cseq} over ${this.protocol}`);
    if (found === undefined) throw new Error(`the ${this.protocol} connection closed before the response`);
    return found;
  }

  /** REGISTER, 401, REGISTER with digest credentials (RFC 2617 qop=auth): resolves with the final status. */
  async register(user: string, password: string): Promise<number> {
    const callId = randomBytes(8).toString('hex');
    const transport = this.protocol.toUpperCase();
    const reg = (cseq: number, auth?: string): string => [
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/${transport} ${this.localAddress}:${this.localPort};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@${DOMAIN}>;tag=${callId.slice(0, 6)}`,
      `To: <sip:${user}@${DOMAIN}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <sip:${user}@${this.localAddress}:${this.localPort};transport=${this.protocol}>`,
      'Expires: 600',
      ...(auth === undefined ? [] : [`Authorization: ${auth}`]),
      'Content-Length: 0', '', '',
    ].join('\r\n');
    const challenge = await this.request(reg(1), callId, 1);
    if (!challenge.startsWith('SIP/2.0 401 ')) return Number(challenge.slice(8, 11));
    const www = /^WWW-Authenticate:\s*(.*)$/im.exec(challenge)?.[1] ?? '';
    const param = (name: string): string | undefined => new RegExp(`${name}="?([^",]*)"?`, 'i').exec(www)?.[1];
    const realm = param('realm') ?? DOMAIN;
    const nonce = param('nonce') ?? '';
    const opaque = param('opaque');
    const uri = `sip:${DOMAIN}`;
    const cnonce = randomBytes(4).toString('hex');
    const response = md5(`${md5(`${user}:${realm}:${password}`)}:${nonce}:00000001:${cnonce}:auth:${md5(`REGISTER:${uri}`)}`);
    const auth = `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"`
      + (opaque === undefined ? '' : `, opaque="${opaque}"`);
    const ok = await this.request(reg(2, auth), callId, 2);
    return Number(ok.slice(8, 11));
  }

  /** OPTIONS to the server itself: 200 while the connection is alive. */
  async ping(): Promise<number> {
    const callId = randomBytes(8).toString('hex');
    const r = await this.request([
      `OPTIONS sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/${this.protocol.toUpperCase()} ${this.localAddress}:${this.localPort};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70', `From: <sip:probe@${DOMAIN}>;tag=p1`, `To: <sip:${DOMAIN}>`, `Call-ID: ${callId}`, 'CSeq: 7 OPTIONS',
      'Content-Length: 0', '', '',
    ].join('\r\n'), callId, 7);
    return Number(r.slice(8, 11));
  }

  close(): void {
    this.end();
  }
}

function options(callId: string): string {
  return `OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP ${ATTACKER};branch=z9hG4bK${callId}\r\nMax-Forwards: 70\r\n`
    + `From: <sip:x@${DOMAIN}>;tag=1\r\nTo: <sip:${DOMAIN}>\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
}

/** Attack connections: raw sockets (WS/WSS: the upgrade done) that the test can count and end. */
class Attacker {
  readonly sockets: Array<{ closed: boolean; write: (b: string) => void; destroy: () => void }> = [];

  get open(): number {
    return this.sockets.filter((s) => !s.closed).length;
  }

  /** Opens `count` connections from `localAddress`; each may fail (refused at once), which is counted as closed. */
  async connect(protocol: Stream, port: number, localAddress: string, count: number): Promise<void> {
    const opening: Promise<void>[] = [];
    for (let i = 0; i < count; i++) opening.push(this.one(protocol, port, localAddress));
    await Promise.all(opening);
  }

  private async one(protocol: Stream, port: number, localAddress: string): Promise<void> {
    const entry = { closed: false, write: (_b: string): void => undefined, destroy: (): void => undefined };
    this.sockets.push(entry);
    try {
      if (protocol === 'ws' || protocol === 'wss') {
        const ws = new WebSocket(`${protocol}://127.0.0.1:${port}/`, ['sip'], { rejectUnauthorized: false, localAddress, handshakeTimeout: 5000 });
        ws.on('error', () => undefined);
        ws.on('close', () => (entry.closed = true));
        entry.destroy = () => ws.terminate();
        entry.write = (b) => ws.readyState === WebSocket.OPEN && ws.send(b);
        await new Promise<void>((resolve) => {
          ws.once('open', () => resolve());
          ws.once('close', () => resolve());
        });
        return;
      }
      const s: Socket = protocol === 'tls'
        ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...{ localAddress } })
        : netConnect({ host: '127.0.0.1', port, localAddress });
      s.on('error', () => undefined);
      s.on('close', () => (entry.closed = true));
      entry.destroy = () => s.destroy();
      entry.write = (b) => {
        if (!s.destroyed) s.write(b);
      };
      await new Promise<void>((resolve) => {
        s.once(protocol === 'tls' ? 'secureConnect' : 'connect', () => resolve());
        s.once('close', () => resolve());
      });
    } catch {
      entry.closed = true;
    }
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }
}

describe('connection limits: one address cannot take the server', { timeout: 60_000 }, () => {
  let t: TestServer;
  const attacker = new Attacker();
  const phones: Softphone[] = [];
  const raw: RawPhone[] = [];

  before(async () => {
    t = await startTestServer({ sip: { maxConnectionsPerIp: 10 } });
    await t.addUser(`alice@${DOMAIN}`, 'alice-secret');
    await t.addUser(`bob@${DOMAIN}`, 'bob-secret');
  });
  after(async () => {
    attacker.destroyAll();
    for (const r of raw) r.close();
    for (const p of phones) await p.stop();
    await t?.stop();
  });

  it('caps an attacker at maxConnectionsPerIp over TCP, TLS, WS and WSS while a phone on another address registers on each and two softphones call', async () => {
    for (const p of STREAMS) await attacker.connect(p, t.listener(p).port, ATTACKER, 10);
    await until(() => attacker.open <= 10, 3000, 'the attacker capped at 10 connections');
    // The ones kept are ordinary SIP connections: a request on each keeps them past the message deadline.
    for (const [i, s] of attacker.sockets.entries()) if (!s.closed) s.write(options(`attack-${i}`));
    await sleep(200);
    assert.equal(attacker.open, 10, 'exactly maxConnectionsPerIp attacker connections stay open');

    for (const p of STREAMS) {
      const phone = await RawPhone.open(p, t.listener(p).port, PHONE);
      raw.push(phone);
      assert.equal(await phone.register('alice', 'alice-secret'), 200, `REGISTER over ${p} from ${PHONE}`);
    }
    // Real softphones (SIP.js over WSS, JsSIP over WS) from 127.0.0.1: register and call through the server.
    const alice = await createPhone('sip.js', { uri: `sip:alice@${DOMAIN}`, password: 'alice-secret', wsUrl: `wss://${t.addr('wss')}` });
    phones.push(alice);
    const bob = await createPhone('jssip', { uri: `sip:bob@${DOMAIN}`, password: 'bob-secret', wsUrl: `ws://${t.addr('ws')}` });
    phones.push(bob);
    await alice.register();
    await bob.register();
    const calling = alice.call(bob.aor);
    const incoming = await bob.waitForIncoming();
    const [answered, established] = await Promise.all([incoming.accept(), calling]);
    await established.hangup();
    await answered.waitForEnded();
    assert.equal(attacker.open, 10);
  });
});

describe('connection limits: at the process cap', { timeout: 30_000 }, () => {
  let t: TestServer;
  const attacker = new Attacker();
  const raw: RawPhone[] = [];
  const NAT = '127.0.0.5';

  before(async () => {
    t = await startTestServer({ sip: { maxConnections: 6, maxConnectionsPerIp: 100 } });
    await t.addUser(`alice@${DOMAIN}`, 'alice-secret');
  });
  after(async () => {
    attacker.destroyAll();
    for (const r of raw) r.close();
    await t?.stop();
  });

  it('keeps the connection of a phone whose REGISTER was accepted, even behind the same NAT address as the flood, and sheds the flood', async () => {
    const port = t.listener('tcp').port;
    await attacker.connect('tcp', port, NAT, 5);
    const phone = await RawPhone.open('tcp', port, NAT);
    raw.push(phone);
    assert.equal(await phone.register('alice', 'alice-secret'), 200);
    // At the cap, the phone's connection is the newest one of the address holding the most unregistered
    // connections: only its accepted REGISTER keeps it from being the one shed.
    await attacker.connect('tcp', port, NAT, 10);
    await sleep(200);
    assert.equal(phone.closed, false, 'the registered phone is kept');
    assert.equal(await phone.ping(), 200);
    assert.equal(attacker.open, 5, 'the cap of 6 holds: the phone and 5 attacker connections');
    // A second phone still gets in (shedding an attacker connection) and registers.
    const second = await RawPhone.open('tls', t.listener('tls').port, PHONE);
    raw.push(second);
    assert.equal(await second.register('alice', 'alice-secret'), 200);
    assert.equal(attacker.open, 4);
  });
});

describe('connection limits: slow connections under a 1,024 file limit', { timeout: 90_000 }, () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let out = '';
  const ports: Record<Stream | 'udp' | 'http', number> = { udp: 0, tcp: 0, tls: 0, ws: 0, wss: 0, http: 0 };

  before(async () => {
    requireTool('prlimit', 'util-linux');
    dir = mkdtempSync(join(tmpdir(), 'softswitch-limits-'));
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    const store = await openStore({ url: `sqlite:${join(dir, 'db.sqlite')}`, logger: silentLogger() });
    await store.subscribers.add({ username: 'alice', domain: DOMAIN, password: 'alice-secret' });
    await store.close();
    writeFileSync(join(dir, 'softswitch.yaml'), [
      'sip:',
      `  listen: ["udp:127.0.0.1:${ports.udp}", "tcp:127.0.0.1:${ports.tcp}", "tls:127.0.0.1:${ports.tls}", "ws:127.0.0.1:${ports.ws}", "wss:127.0.0.1:${ports.wss}"]`,
      `  domain: [${DOMAIN}]`,
      `dataDir: ${dir}`,
      `http:\n  listen: "127.0.0.1:${ports.http}"`,
      'turn:\n  listen: "127.0.0.1:0"',
      `store:\n  url: "sqlite:${dir}/db.sqlite"`,
      '',
    ].join('\n'));
  });
  after(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** `softswitch start --workers 1` with RLIMIT_NOFILE soft:hard set by prlimit. */
  async function start(soft: number, hard: number): Promise<ChildProcess> {
    out = '';
    const c = spawn('prlimit', [`--nofile=${soft}:${hard}`, process.execPath, main, 'start', '--workers', '1', '--config', join(dir, 'softswitch.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child = c;
    try {
      await until(() => /"listeners":\[.*"msg":"listening"/.test(out) || c.exitCode !== null, 15_000, 'the server to start');
      assert.equal(c.exitCode, null, out);
    } catch (err) {
      if (c.exitCode === null) await stop(c);
      throw err;
    }
    return c;
  }

  async function stop(c: ChildProcess): Promise<void> {
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGTERM');
    await exited;
  }

  function logLines(msg: string): Array<Record<string, unknown>> {
    return out.split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async function health(): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${ports.http}/health`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status;
  }

  async function udpOptions(): Promise<string> {
    const sock = createSocket('udp4');
    try {
      return await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no UDP answer')), 3000);
        sock.on('message', (m) => {
          clearTimeout(timer);
          resolve(m.toString());
        });
        sock.send(`OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKudp${Date.now()};rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@${DOMAIN}>;tag=1\r\nTo: <sip:${DOMAIN}>\r\nCall-ID: udp${Date.now()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`, ports.udp, '127.0.0.1');
      });
    } finally {
      sock.close();
    }
  }

  it('logs the soft and hard open-file limits at start, the soft one raised to the hard one', async () => {
    const c = await start(1024, 20_000);
    try {
      // prlimit execs node: the softswitch is that process.
      assert.match(readFileSync(`/proc/${c.pid}/limits`, 'utf8'), /^Max open files\s+20000\s+20000/m);
      const line = [...logLines('open-file limit'), ...logLines('open-file limit raised')][0];
      assert.ok(line !== undefined, out);
      assert.equal(line.soft, 20_000);
      assert.equal(line.hard, 20_000);
      assert.equal(logLines('connection limits')[0]?.limit, 19_000);
    } finally {
      await stop(c);
    }
  });

  it('with the hard limit at 1,024, 1,100 slow TCP connections (a byte every 5 s) from two addresses leave TCP, TLS, WS, WSS, UDP and /health working, and are closed by the message deadline', async () => {
    const c = await start(1024, 1024);
    const limits = logLines('connection limits')[0];
    assert.equal(limits?.limit, 896, out);
    assert.equal(limits?.limitedBy, 'file limit');
    const attacker = new Attacker();
    let dribble: NodeJS.Timeout | undefined;
    const phones: RawPhone[] = [];
    try {
      const started = Date.now();
      await Promise.all([attacker.connect('tcp', ports.tcp, ATTACKER, 550), attacker.connect('tcp', ports.tcp, ATTACKER2, 550)]);
      for (const s of attacker.sockets) s.write('R');
      dribble = setInterval(() => {
        for (const s of attacker.sockets) s.write('E');
      }, 5000);
      await until(() => attacker.open <= 896, 5000, 'the server to cap the slow connections');
      await sleep(200);
      assert.equal(attacker.open, 896, 'the cap the file limit leaves room for');
      assert.ok(logLines('connections near the limit the file limit allows').length === 1, out);

      // Under pressure: each new legitimate connection sheds a slow one, registers, and is then kept.
      assert.equal(await health(), 200);
      for (const p of STREAMS) {
        const phone = await RawPhone.open(p, p === 'tcp' ? ports.tcp : p === 'tls' ? ports.tls : p === 'ws' ? ports.ws : ports.wss, PHONE);
        phones.push(phone);
        assert.equal(await phone.register('alice', 'alice-secret'), 200, `REGISTER over ${p} under pressure`);
      }
      assert.match(await udpOptions(), /^SIP\/2\.0 200 /);
      // More slow connections: the registered phones are never the ones shed.
      await attacker.connect('tcp', ports.tcp, ATTACKER2, 100);
      await sleep(200);
      for (const phone of phones) {
        assert.equal(phone.closed, false, `${phone.protocol} phone kept`);
        assert.equal(await phone.ping(), 200);
      }
      assert.equal(await health(), 200);

      // The message deadline (10 s from the first byte) ends every slow connection; nothing else does.
      await until(() => attacker.open === 0, 20_000 - (Date.now() - started), 'the slow connections to be closed');
      assert.ok(Date.now() - started >= 9000, 'not before the deadline');
      for (const phone of phones) assert.equal(phone.closed, false);
      assert.ok(c.exitCode === null, 'the server is still running');
      if (process.env.LIMITS_TRACE) process.stderr.write(`server log: ${out.split('\n').length} lines, ${Date.now() - started} ms\n${out.split('\n').filter((l) => !l.includes('no complete SIP message')).join('\n')}\n`);
    } finally {
      clearInterval(dribble);
      attacker.destroyAll();
      for (const p of phones) p.close();
      await stop(c);
    }
  });
});
