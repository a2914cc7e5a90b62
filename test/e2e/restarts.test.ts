/**
 * Restarts without dropping calls, against `softswitch start --workers 2` as an operator runs it:
 * - a worker SIGKILLed and restarted by the supervisor still reaches the phones whose connections live on
 *   the other worker (it is given every binding before it listens, server/cluster/cluster-worker.ts);
 * - SIGTERM drains: calls whose INVITE came in before the signal complete (their BYE included), new
 *   requests get 503 with Retry-After, the process exits within shutdownGraceSeconds;
 * - a rolling restart (`softswitch restart --rolling`: SIGHUP to the primary) under SIPp load loses no call.
 * The callees are small UAs written here (UDP and TCP), so the test knows when each INVITE reached them.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { datagramOwner } from '../../server/cluster/index.js';
import { silentLogger } from '../../src/log/index.js';
import { openStore } from '../../platform/store/index.js';
import { repoRoot } from '../../support/paths.js';
import { runSipp } from '../helpers/sipp.js';
import { freePort, requireTool, run } from '../../support/tools.js';

const main = join(repoRoot, 'dist', 'server', 'main.js');
const UAC_CALL = join(repoRoot, 'bench', 'sipp', 'uac-call.xml');
const DOMAIN = 'example.com';
const WORKERS = 2;
const USERS = { alice: 'alice-secret', bob: 'bob-secret', carol: 'carol-secret' } as const;
type User = keyof typeof USERS;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A Call-ID that worker `owner` of the cluster owns (datagramOwner: hash of the Call-ID). */
function callIdOwnedBy(owner: number): string {
  for (;;) {
    const id = randomBytes(8).toString('hex');
    if (datagramOwner(Buffer.from(`OPTIONS sip:x SIP/2.0\r\nCall-ID: ${id}\r\n\r\n`), WORKERS) === owner) return id;
  }
}

// ---- the server ---------------------------------------------------------------------------------

interface Cluster {
  child: ChildProcess;
  dir: string;
  cfg: string;
  udpPort: number;
  tcpPort: number;
  log(): string;
  /** Resolves once the log (from `from` on) has a line containing `text`. */
  waitForLog(text: string, from?: number, timeoutMs?: number): Promise<string>;
  pids(): number[];
  stop(): Promise<void>;
}

const running: Cluster[] = [];

async function startCluster(graceSeconds: number): Promise<Cluster> {
  requireTool('sipp', 'sip-tester');
  const dir = mkdtempSync(join(tmpdir(), 'softswitch-restarts-'));
  const udpPort = await freePort();
  const tcpPort = await freePort();
  const httpPort = await freePort();
  const cfg = join(dir, 'softswitch.yaml');
  writeFileSync(cfg, [
    'sip:', `  listen: ["udp:127.0.0.1:${udpPort}", "tcp:127.0.0.1:${tcpPort}"]`, `  domain: [${DOMAIN}]`,
    `dataDir: ${dir}`, `shutdownGraceSeconds: ${graceSeconds}`, 'http:', `  listen: "127.0.0.1:${httpPort}"`, 'turn:', '  listen: "127.0.0.1:0"',
    'store:', `  url: "sqlite:${join(dir, 'db.sqlite')}"`, '',
  ].join('\n'));
  const child = spawn(process.execPath, [main, 'start', '--config', cfg, '--workers', String(WORKERS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const waitForLog = async (text: string, from = 0, timeoutMs = 15_000): Promise<string> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const line = out.slice(from).split('\n').find((l) => l.includes(text));
      if (line !== undefined) return line;
      if (Date.now() > end) throw new Error(`no "${text}" in the log:\n${out.slice(from).slice(-4000)}`);
      await sleep(25);
    }
  };
  const cluster: Cluster = {
    child, dir, cfg, udpPort, tcpPort, waitForLog,
    log: () => out,
    pids: () => (JSON.parse(out.split('\n').find((l) => l.includes('"cluster started"'))!) as { pids: number[] }).pids,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      // Workers of a SIGKILLed primary see the IPC channel close and stop.
      for (const pid of safePids(out)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.push(cluster);
  await waitForLog('"cluster started"', 0, 20_000);
  const store = await openStore({ url: `sqlite:${join(dir, 'db.sqlite')}`, logger: silentLogger() });
  try {
    for (const [username, password] of Object.entries(USERS)) await store.subscribers.add({ username, domain: DOMAIN, password });
  } finally {
    await store.close();
  }
  return cluster;
}

/** Every worker pid the log names (the first ones and the restarted ones). */
function safePids(out: string): number[] {
  const pids = new Set<number>();
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as { pid?: number; pids?: number[] };
      if (typeof o.pid === 'number') pids.add(o.pid);
      for (const p of o.pids ?? []) pids.add(p);
    } catch {
      // not a log line
    }
  }
  return [...pids];
}

/** Phones to close after each test, whatever its outcome. */
const phones: Array<{ close(): void }> = [];

afterEach(async () => {
  for (const p of phones.splice(0)) p.close();
  for (const c of running.splice(0)) await c.stop();
});

// ---- a small UA ---------------------------------------------------------------------------------

interface Message {
  first: string;
  headers: Array<[string, string]>;
  body: string;
}

const COMPACT: Record<string, string> = { v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length' };

const CANONICAL: Record<string, string> = { via: 'Via', 'record-route': 'Record-Route', from: 'From', 'call-id': 'Call-ID', cseq: 'CSeq' };

function parse(text: string): Message {
  const end = text.indexOf('\r\n\r\n');
  const lines = text.slice(0, end).split('\r\n');
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.push([COMPACT[name] ?? name, line.slice(colon + 1).trim()]);
  }
  return { first: lines[0]!, headers, body: text.slice(end + 4) };
}

const header = (m: Message, name: string): string | undefined => m.headers.find(([n]) => n === name)?.[1];

function param(value: string, name: string): string | undefined {
  return new RegExp(`${name}="?([^",]*)"?`, 'i').exec(value)?.[1];
}

/** The response of a UAS to a request: Via, Record-Route, From, To (with our tag), Call-ID, CSeq copied. */
function answer(req: Message, status: string, contact: string, body = ''): string {
  const copy = req.headers.filter(([n]) => n === 'via' || n === 'record-route' || n === 'from' || n === 'call-id' || n === 'cseq');
  const to = header(req, 'to')!;
  const tag = md5(header(req, 'call-id') ?? '').slice(0, 8);
  return [
    `SIP/2.0 ${status}`,
    ...copy.map(([n, v]) => `${CANONICAL[n] ?? n}: ${v}`),
    `To: ${to.includes(';tag=') ? to : `${to};tag=${tag}`}`,
    `Contact: ${contact}`,
    ...(body === '' ? [] : ['Content-Type: application/sdp']),
    `Content-Length: ${Buffer.byteLength(body)}`, '', body,
  ].join('\r\n');
}

const SDP = 'v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

interface Phone {
  /** Call-IDs of the INVITEs answered. */
  invites: Set<string>;
  /** Call-IDs of the BYEs answered (a retransmitted BYE counts once, as a UAS's transaction layer absorbs it). */
  byes: Set<string>;
}

/**
 * A callee: registers `user` (digest, over `send`), answers every INVITE 200 with SDP and every BYE 200.
 * `send` writes one message to the server; incoming messages go to the returned `receive`. Closed after each test.
 */
function ua(user: User, transport: 'UDP' | 'TCP', local: { port: number }, send: (text: string) => void): { receive: (m: Message) => void; registered: Promise<void>; phone: Phone } {
  const contact = `<sip:${user}@127.0.0.1:${local.port};transport=${transport.toLowerCase()}>`;
  const callId = randomBytes(8).toString('hex');
  const phone: Phone = { invites: new Set<string>(), byes: new Set<string>() };
  let resolveRegistered: () => void = () => undefined;
  let rejectRegistered: (err: Error) => void = () => undefined;
  const registered = new Promise<void>((res, rej) => ((resolveRegistered = res), (rejectRegistered = rej)));
  const register = (cseq: number, auth?: string): void => send([
    `REGISTER sip:${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/${transport} 127.0.0.1:${local.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
    'Max-Forwards: 70', `From: <sip:${user}@${DOMAIN}>;tag=${callId.slice(0, 6)}`, `To: <sip:${user}@${DOMAIN}>`,
    `Call-ID: ${callId}`, `CSeq: ${cseq} REGISTER`, `Contact: ${contact}`, 'Expires: 600',
    ...(auth === undefined ? [] : [`Authorization: ${auth}`]), 'Content-Length: 0', '', '',
  ].join('\r\n'));
  const receive = (m: Message): void => {
    if (m.first.startsWith('SIP/2.0 ')) {
      if (header(m, 'call-id') !== callId) return;
      const status = Number(m.first.slice(8, 11));
      if (status === 401) {
        const www = header(m, 'www-authenticate') ?? '';
        const realm = param(www, 'realm') ?? DOMAIN;
        const nonce = param(www, 'nonce') ?? '';
        const opaque = param(www, 'opaque');
        const uri = `sip:${DOMAIN}`;
        const cnonce = randomBytes(4).toString('hex');
        const response = md5(`${md5(`${user}:${realm}:${USERS[user]}`)}:${nonce}:00000001:${cnonce}:auth:${md5(`REGISTER:${uri}`)}`);
        register(2, `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"` + (opaque === undefined ? '' : `, opaque="${opaque}"`));
      } else if (status === 200) resolveRegistered();
      else if (status >= 300) rejectRegistered(new Error(`REGISTER answered ${m.first}`));
      return;
    }
    const method = m.first.slice(0, m.first.indexOf(' '));
    if (method === 'INVITE') {
      phone.invites.add(header(m, 'call-id') ?? '');
      send(answer(m, '200 OK', contact, SDP));
    } else if (method === 'BYE') {
      phone.byes.add(header(m, 'call-id') ?? '');
      send(answer(m, '200 OK', contact));
    } else if (method !== 'ACK') send(answer(m, '200 OK', contact));
  };
  register(1);
  return { receive, registered, phone };
}

async function udpPhone(user: User, server: number): Promise<Phone> {
  const socket: UdpSocket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const { receive, registered, phone } = ua(user, 'UDP', socket.address(), (text) => socket.send(text, server, '127.0.0.1'));
  socket.on('message', (msg) => receive(parse(msg.toString('latin1'))));
  phones.push({ close: () => socket.close() });
  await registered;
  return { invites: phone.invites, byes: phone.byes };
}

async function tcpPhone(user: User, server: number): Promise<Phone & { socket: TcpSocket }> {
  const socket = connect(server, '127.0.0.1');
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  const { receive, registered, phone } = ua(user, 'TCP', { port: socket.localPort! }, (text) => socket.write(text));
  let buffer = '';
  socket.on('data', (d: Buffer) => {
    buffer += d.toString('latin1');
    for (;;) {
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec(buffer.slice(0, end + 2))?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      receive(parse(buffer.slice(0, end + 4 + length)));
      buffer = buffer.slice(end + 4 + length);
    }
  });
  socket.on('error', () => undefined);
  phones.push({ close: () => socket.destroy() });
  await registered;
  return { socket, invites: phone.invites, byes: phone.byes };
}

/** SIPp calls from alice to `callee` (407 digest, Record-Route, ACK, hold, BYE through the proxy). */
function sippCalls(c: Cluster, callee: User, o: { calls: number; rate: number; holdMs: number; callId?: string; timeoutSeconds?: number }) {
  return runSipp({
    scenario: UAC_CALL,
    target: `127.0.0.1:${c.udpPort}`,
    calls: o.calls,
    rate: o.rate,
    timeoutSeconds: o.timeoutSeconds ?? 25,
    extra: [
      '-key', 'caller', 'alice', '-key', 'callee', callee, '-key', 'aor_domain', DOMAIN, '-au', 'alice', '-ap', USERS.alice,
      '-auth_uri', `${callee}@${DOMAIN}`, '-d', String(o.holdMs), '-l', String(o.rate * 4), '-recv_timeout', '8000',
      ...(o.callId === undefined ? [] : ['-cid_str', o.callId]),
    ],
  });
}

/** SIPp's count of failed calls, from its final statistics screen. */
function failedCalls(stdout: string): number {
  const m = /Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(stdout);
  return m === undefined || m === null ? -1 : Number(m[1]);
}

/** One request over UDP; resolves with the first final response (or undefined after `timeoutMs`). */
async function request(port: number, method: string, timeoutMs = 3000): Promise<string | undefined> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const callId = randomBytes(8).toString('hex');
  try {
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      socket.on('message', (msg) => {
        const s = msg.toString('latin1');
        if (!s.startsWith('SIP/2.0 ') || Number(s.slice(8, 11)) < 200) return;
        clearTimeout(timer);
        resolve(s);
      });
      socket.send([
        `${method} sip:bob@${DOMAIN} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${socket.address().port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
        'Max-Forwards: 70', `From: <sip:carol@${DOMAIN}>;tag=1`, `To: <sip:bob@${DOMAIN}>`, `Call-ID: ${callId}`,
        `CSeq: 1 ${method}`, 'Content-Length: 0', '', '',
      ].join('\r\n'), port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

// ---- the tests ------------------------------------------------------------------------------------

describe('restarts without dropping calls (softswitch start --workers 2)', { timeout: 120_000 }, () => {
  it('a worker restarted after SIGKILL reaches a phone whose TCP connection lives on the other worker', { timeout: 30_000 }, async () => {
    const c = await startCluster(2);
    // The primary deals connections out round robin: of two phones connected one after the other, one
    // is on each worker. Which one is on worker 0 shows when it is killed: its connection closes.
    const bob = await tcpPhone('bob', c.tcpPort);
    const carol = await tcpPhone('carol', c.tcpPort);
    await sleep(300); // the bindings cross the primary's IPC channel and reach the SQLite file
    const closed = new Map<User, boolean>([['bob', false], ['carol', false]]);
    bob.socket.once('close', () => closed.set('bob', true));
    carol.socket.once('close', () => closed.set('carol', true));
    const mark = c.log().length;
    process.kill(c.pids()[0]!, 'SIGKILL');
    await c.waitForLog('"worker exited"', mark);
    await c.waitForLog('"listening"', mark); // the replacement of worker 0
    await sleep(200);
    const survivors = [...closed].filter(([, gone]) => !gone).map(([u]) => u);
    assert.equal(survivors.length, 1, `one phone was on the killed worker: ${JSON.stringify([...closed])}`);
    const survivor = survivors[0]!;
    const phone = survivor === 'bob' ? bob : carol;
    // The call's Call-ID makes the replacement (worker 0) handle it: it must relay the INVITE to the
    // phone's connection on worker 1, not open a new connection to the phone's ephemeral port.
    const callId = callIdOwnedBy(0);
    const r = await sippCalls(c, survivor, { calls: 1, rate: 1, holdMs: 200, callId, timeoutSeconds: 10 });
    assert.equal(r.code, 0, `the call through the replacement failed:\n${r.stdout.slice(-2500)}\n${c.log().slice(mark).slice(-3000)}`);
    assert.ok(phone.invites.has(callId), 'the phone on the surviving worker got the INVITE');
    assert.ok(phone.byes.has(callId));
  });

  it('a call whose worker is killed mid-call is still recorded, once: the restarted worker takes its dialog up from the store and the BYE ends it', { timeout: 40_000 }, async () => {
    const c = await startCluster(2);
    const bob = await udpPhone('bob', c.udpPort);
    await sleep(200);
    // Over UDP the Call-ID picks the worker: worker 0 forwards the INVITE and holds the dialog.
    const callId = callIdOwnedBy(0);
    const sipp = sippCalls(c, 'bob', { calls: 1, rate: 1, holdMs: 6000, callId, timeoutSeconds: 30 });
    const store = await openStore({ url: `sqlite:${join(c.dir, 'db.sqlite')}`, logger: silentLogger() });
    try {
      const end = Date.now() + 10_000;
      while ((await store.dialogs.listOwned(0)).every((d) => d.callId !== callId)) {
        assert.ok(Date.now() < end, `the answered call's dialog was persisted (INVITE seen: ${bob.invites.has(callId)})`);
        await sleep(50);
      }
      const mark = c.log().length;
      process.kill(c.pids()[0]!, 'SIGKILL');
      await c.waitForLog('"worker exited"', mark);
      await c.waitForLog('"dialogs of an earlier process taken up"', mark);
      const r = await sipp;
      assert.ok(bob.byes.has(callId), `the BYE reached bob:\n${r.stdout.slice(-2000)}\n${c.log().slice(mark).slice(-3000)}`);
      const until = Date.now() + 10_000;
      let records = (await store.calls.list({ limit: 10 })).calls;
      while (records.length === 0 && Date.now() < until) {
        await sleep(100);
        records = (await store.calls.list({ limit: 10 })).calls;
      }
      await sleep(500);
      records = (await store.calls.list({ limit: 10 })).calls.filter((x) => x.callId === callId);
      assert.equal(records.length, 1, JSON.stringify(records));
      assert.equal(records[0]!.disposition, 'answered');
      assert.equal(records[0]!.endCause, 'bye');
      assert.equal(records[0]!.hangupBy, 'caller');
      assert.deepEqual(await store.dialogs.listOwned(0), [], 'the persisted dialog went with its record');
    } finally {
      await store.close();
    }
  });

  it('SIGTERM drains: every call whose INVITE came in before the signal completes, new requests get 503 with Retry-After, and the process exits within shutdownGraceSeconds', { timeout: 30_000 }, async () => {
    const graceSeconds = 8;
    const c = await startCluster(graceSeconds);
    const bob = await udpPhone('bob', c.udpPort);
    await sleep(200);
    const calls = 300;
    const rate = 150;
    const holdMs = 1500;
    const sipp = sippCalls(c, 'bob', { calls, rate, holdMs });
    // Every INVITE has reached the callee: the signal comes while their calls are up (BYEs to come).
    const end = Date.now() + 15_000;
    while (bob.invites.size < calls) {
      assert.ok(Date.now() < end, `only ${bob.invites.size} of ${calls} INVITEs arrived`);
      await sleep(10);
    }
    const byesBefore = bob.byes.size;
    const exited = new Promise<number | null>((r) => c.child.once('exit', (code) => r(code)));
    const signalled = Date.now();
    c.child.kill('SIGTERM');
    await sleep(300);
    const refused = await request(c.udpPort, 'OPTIONS');
    const refusedInvite = await request(c.udpPort, 'INVITE');
    const r = await sipp;
    const code = await exited;
    const took = Date.now() - signalled;
    assert.equal(failedCalls(r.stdout), 0, `calls failed:\n${r.stdout.slice(-2500)}\n${c.log().slice(-3000)}`);
    assert.equal(r.code, 0);
    assert.ok(byesBefore < calls && bob.byes.size === calls, `BYEs after the signal were routed (${byesBefore} before, ${bob.byes.size} in all)`);
    for (const res of [refused, refusedInvite]) {
      assert.ok(res !== undefined, 'a new request during the drain is answered');
      assert.match(res, /^SIP\/2\.0 503 /);
      assert.match(res, /\r\nRetry-After: \d+\r\n/i);
    }
    assert.equal(code, 0);
    assert.ok(took < (graceSeconds + 3) * 1000, `the process exited ${took} ms after the signal`);
    assert.ok(took >= holdMs - 300, `the process stayed for the calls' BYEs (${took} ms)`);
  });

  it('a rolling restart (softswitch restart --rolling: SIGHUP to the primary) under SIPp load loses no call', { timeout: 30_000 }, async () => {
    const c = await startCluster(10);
    const bob = await udpPhone('bob', c.udpPort);
    await sleep(200);
    const firstPids = c.pids();
    const calls = 700;
    const rate = 70;
    const sipp = sippCalls(c, 'bob', { calls, rate, holdMs: 500 });
    await sleep(1000);
    const mark = c.log().length;
    const restart = await run(process.execPath, [main, 'restart', '--rolling', '--config', c.cfg], { timeoutMs: 10_000 });
    assert.equal(restart.code, 0, restart.stderr);
    const done = await c.waitForLog('"rolling restart done"', mark, 20_000);
    const r = await sipp;
    assert.equal(failedCalls(r.stdout), 0, `calls failed:\n${r.stdout.slice(-2500)}\n${c.log().slice(mark).slice(-4000)}`);
    assert.equal(r.code, 0);
    assert.equal(bob.byes.size, calls);
    // Both workers were replaced while the calls went on.
    const replaced = c.log().slice(mark).split('\n').filter((l) => l.includes('"rolling restart: old worker exited"'));
    assert.equal(replaced.length, WORKERS, done);
    assert.deepEqual(replaced.map((l) => (JSON.parse(l) as { pid: number }).pid).sort(), [...firstPids].sort());
    // Each call is recorded once, whichever process (old or new worker of its slot) saw its BYE.
    const store = await openStore({ url: `sqlite:${join(c.dir, 'db.sqlite')}`, logger: silentLogger() });
    try {
      const records = new Map<string, number>();
      // The last BYEs have just passed: their records are on their way to the store.
      const until = Date.now() + 5000;
      do {
        records.clear();
        let cursor: string | undefined;
        do {
          const page = await store.calls.list({ limit: 500, cursor });
          for (const r of page.calls) records.set(r.callId, (records.get(r.callId) ?? 0) + 1);
          cursor = page.next;
        } while (cursor !== undefined);
        if (records.size < calls) await sleep(200);
      } while (records.size < calls && Date.now() < until);
      assert.equal(records.size, calls);
      assert.ok([...records.values()].every((n) => n === 1));
    } finally {
      await store.close();
    }
  });
});
