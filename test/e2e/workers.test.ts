/**
 * `softswitch start --workers 2` as an operator runs it: two worker processes behind one UDP address.
 * Every datagram of a transaction must reach the worker that holds it (server/cluster), and a binding made on
 * one worker must be visible on the other. The REGISTERs below pick their Call-IDs so that a chosen worker
 * owns them (datagramOwner: hash of the Call-ID), which makes "registered on worker 0, seen on worker 1"
 * deterministic; the SIPp calls use SIPp's own Call-IDs, so they spread over both workers.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { datagramOwner } from '../../server/cluster/index.js';
import { silentLogger } from '../../src/log/index.js';
import { openStore } from '../../platform/store/index.js';
import { repoRoot } from '../../support/paths.js';
import { type Softphone, createPhone, installTestWebSocket } from '../helpers/softphone.js';
import { runSipp } from '../helpers/sipp.js';
import { freePort, requireTool, run } from '../../support/tools.js';

const main = join(repoRoot, 'dist', 'server', 'main.js');
const BENCH_SIPP = join(repoRoot, 'bench', 'sipp');
const DOMAIN = 'example.com';
const WORKERS = 2;
const USERS = { alice: 'alice-secret', bob: 'bob-secret', carol: 'carol-secret', dave: 'dave-secret' } as const;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** A Call-ID that worker `owner` of a WORKERS-worker cluster owns. */
function callIdOwnedBy(owner: number): string {
  for (;;) {
    const id = randomBytes(8).toString('hex');
    if (datagramOwner(Buffer.from(`OPTIONS sip:x SIP/2.0\r\nCall-ID: ${id}\r\n\r\n`), WORKERS) === owner) return id;
  }
}

function param(header: string, name: string): string | undefined {
  return new RegExp(`${name}="?([^",]*)"?`, 'i').exec(header)?.[1];
}

/** REGISTER with digest auth from `socket` (REGISTER → 401 → REGISTER → 200); resolves with the 200. */
async function register(socket: Socket, port: number, user: keyof typeof USERS, callId: string, contact: string | undefined): Promise<string> {
  const local = socket.address();
  const request = (cseq: number, auth?: string): string => [
    `REGISTER sip:${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${local.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@${DOMAIN}>;tag=${callId.slice(0, 6)}`,
    `To: <sip:${user}@${DOMAIN}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    ...(contact === undefined ? [] : [`Contact: ${contact}`, 'Expires: 600']),
    ...(auth === undefined ? [] : [`Authorization: ${auth}`]),
    'Content-Length: 0', '', '',
  ].join('\r\n');
  const exchange = (text: string): Promise<string> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no final response to:\n${text}`)), 5000);
    const on = (msg: Buffer): void => {
      const s = msg.toString('latin1');
      if (!s.startsWith('SIP/2.0 ') || Number(s.slice(8, 11)) < 200 || !s.includes(callId)) return;
      clearTimeout(timer);
      socket.off('message', on);
      resolve(s);
    };
    socket.on('message', on);
    socket.send(text, port, '127.0.0.1');
  });
  const challenge = await exchange(request(1));
  assert.match(challenge, /^SIP\/2\.0 401 /, challenge);
  const www = /^WWW-Authenticate:\s*(.*)$/im.exec(challenge)?.[1] ?? '';
  const realm = param(www, 'realm') ?? DOMAIN;
  const nonce = param(www, 'nonce') ?? '';
  const opaque = param(www, 'opaque');
  const uri = `sip:${DOMAIN}`;
  const cnonce = randomBytes(4).toString('hex');
  const ha1 = md5(`${user}:${realm}:${USERS[user]}`);
  const response = md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${md5(`REGISTER:${uri}`)}`);
  const auth = `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"`
    + (opaque === undefined ? '' : `, opaque="${opaque}"`);
  const ok = await exchange(request(2, auth));
  assert.match(ok, /^SIP\/2\.0 200 /, ok);
  return ok;
}

async function udpSocket(port = 0): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(port, '127.0.0.1', resolve));
  return s;
}

describe('softswitch start --workers 2', { timeout: 90_000 }, () => {
  let dir: string;
  let port: number;
  let wssPort: number;
  let httpPort: number;
  let cfg: string;
  let child: ChildProcess;
  let out = '';

  before(async () => {
    requireTool('sipp', 'sip-tester');
    dir = mkdtempSync(join(tmpdir(), 'softswitch-workers-'));
    port = await freePort();
    wssPort = await freePort();
    httpPort = await freePort();
    cfg = join(dir, 'softswitch.yaml');
    writeFileSync(cfg, [
      'sip:', `  listen: ["udp:127.0.0.1:${port}", "wss:127.0.0.1:${wssPort}"]`, `  domain: [${DOMAIN}]`, 'auth:', '  algorithms: [MD5]',
      `dataDir: ${dir}`, 'http:', `  listen: "127.0.0.1:${httpPort}"`, 'turn:', '  listen: "127.0.0.1:0"', 'store:', `  url: "sqlite:${join(dir, 'db.sqlite')}"`, '',
    ].join('\n'));
    child = spawn(process.execPath, [main, 'start', '--config', cfg, '--workers', String(WORKERS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const end = Date.now() + 20_000;
    while (!out.includes('"cluster started"')) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`the cluster did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const store = await openStore({ url: `sqlite:${join(dir, 'db.sqlite')}`, logger: silentLogger() });
    try {
      for (const [username, password] of Object.entries(USERS)) await store.subscribers.add({ username, domain: DOMAIN, password });
    } finally {
      await store.close();
    }
  });

  after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs one supervising primary and two workers, each listening on the shared UDP address', () => {
    const listening = out.split('\n').filter((l) => l.includes('"cat":"sip.core"') && l.includes('"listening"'));
    assert.deepEqual(new Set(listening.map((l) => (JSON.parse(l) as { worker: number }).worker)), new Set([0, 1]));
  });

  for (const [made, seen] of [[0, 1], [1, 0]] as const) {
    it(`a binding registered on worker ${made} is in the bindings worker ${seen} returns`, async () => {
      const user = made === 0 ? 'carol' : 'dave';
      const phone = await udpSocket();
      try {
        const contact = `<sip:${user}@127.0.0.1:${phone.address().port}>`;
        const first = await register(phone, port, user, callIdOwnedBy(made), contact);
        assert.ok(first.includes(`${user}@127.0.0.1:${phone.address().port}`), first);
        // A query (REGISTER without Contact, RFC 3261 §10.2.3) that the other worker answers. The
        // replication crosses the primary's IPC channel: allow it a moment.
        let bindings = '';
        for (let attempt = 0; attempt < 20; attempt++) {
          bindings = await register(phone, port, user, callIdOwnedBy(seen), undefined);
          if (bindings.includes(`${user}@127.0.0.1:${phone.address().port}`)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(bindings.includes(`sip:${user}@127.0.0.1:${phone.address().port}`), `worker ${seen} answered without the binding:\n${bindings}`);
      } finally {
        phone.close();
      }
    });
  }

  it('completes every one of 200 SIPp calls (407 digest, Record-Route, ACK, BYE) spread over both workers', async () => {
    const calls = 200;
    const uasPort = await freePort();
    // bob registers from the port the SIPp UAS then answers on.
    const reg = await udpSocket(uasPort);
    try {
      await register(reg, port, 'bob', callIdOwnedBy(0), `<sip:bob@127.0.0.1:${uasPort};transport=udp>`);
    } finally {
      await new Promise<void>((r) => reg.close(() => r()));
    }
    const uas = spawn('sipp', [
      '-sf', join(BENCH_SIPP, 'uas-answer.xml'), '-key', 'callee', 'bob', '-t', 'u1', '-i', '127.0.0.1', '-p', String(uasPort),
      '-m', String(calls), '-timeout', '60s', '-nostdin',
    ], { stdio: 'ignore', cwd: dir });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const uac = await runSipp({
        scenario: join(BENCH_SIPP, 'uac-call.xml'),
        target: `127.0.0.1:${port}`,
        calls,
        rate: 40,
        timeoutSeconds: 40,
        extra: [
          '-key', 'caller', 'alice', '-key', 'callee', 'bob', '-key', 'aor_domain', DOMAIN, '-au', 'alice', '-ap', USERS.alice,
          '-auth_uri', `bob@${DOMAIN}`, '-d', '100', '-l', '50', '-recv_timeout', '10000',
        ],
      });
      assert.equal(uac.code, 0, `not every call completed:\n${uac.stdout.slice(-3000)}\n${uac.stderr.slice(-2000)}`);
    } finally {
      uas.kill('SIGKILL');
    }
  });

  it('calls between WSS phones on different workers: each INVITE, its answer and both BYEs cross on the connection\'s worker', async () => {
    // The primary deals connections out round robin, so of four phones connected one after the other
    // two are on each worker, and each call of the ring below is between the two workers: the INVITE is
    // sent on a connection another worker holds (relayed), the callee's responses come back on it
    // carrying the caller's worker's branch tag (handed over).
    installTestWebSocket();
    const names = Object.keys(USERS) as Array<keyof typeof USERS>;
    const phones: Softphone[] = [];
    try {
      for (const name of names) {
        const phone = await createPhone('sip.js', { uri: `sip:${name}@${DOMAIN}`, password: USERS[name], wsUrl: `wss://127.0.0.1:${wssPort}` });
        phones.push(phone);
        await phone.register();
      }
      // Bindings are replicated to the other worker over IPC: allow it a moment.
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < phones.length; i++) {
        const caller = phones[i]!;
        const callee = phones[(i + 1) % phones.length]!;
        const calling = caller.call(`sip:${names[(i + 1) % phones.length]}@${DOMAIN}`);
        const incoming = await callee.waitForIncoming();
        const [answered, established] = await Promise.all([incoming.accept(), calling]);
        // One side hangs up on one call, the other side on the next: BYEs go both ways.
        if (i % 2 === 0) await established.hangup();
        else await answered.hangup();
        const end = await (i % 2 === 0 ? answered : established).waitForEnded();
        assert.equal(end.cause, 'bye', `call ${names[i]} → ${names[(i + 1) % phones.length]}`);
      }
    } finally {
      await Promise.all(phones.map((p) => p.stop()));
    }
  });

  it('softswitch reload (POST /reload, answered by one worker) makes the other worker reload too', async () => {
    const before = out.length;
    // The CLI has the store: it mints a short-lived admin token for its POST /reload (no token: 401).
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/reload`, { method: 'POST' })).status, 401);
    const r = await run(process.execPath, [main, 'reload', '--config', cfg], { timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^reloaded: /);
    const end = Date.now() + 5000;
    while (!out.slice(before).includes('routing data reloaded at another worker')) {
      assert.ok(Date.now() < end, `no other worker reloaded:\n${out.slice(before, before + 3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const line = out.slice(before).split('\n').find((l) => l.includes('routing data reloaded at another worker'))!;
    const { worker, from } = JSON.parse(line) as { worker: number; from: number };
    assert.notEqual(worker, from);
  });

  /** Sends `text` from `socket` and resolves with the first final response carrying `callId`, or undefined after `ms`. */
  function finalFor(socket: Socket, text: string, callId: string, ms = 2000): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => (socket.off('message', on), resolve(undefined)), ms);
      const on = (msg: Buffer): void => {
        const t = msg.toString('latin1');
        if (!t.startsWith('SIP/2.0 ') || Number(t.slice(8, 11)) < 200 || !t.includes(callId)) return;
        clearTimeout(timer);
        socket.off('message', on);
        resolve(t);
      };
      socket.on('message', on);
      socket.send(text, port, '127.0.0.1');
    });
  }

  async function socketAt(address: string): Promise<Socket> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, address, resolve));
    return s;
  }

  it('a REGISTER answer accepted on one worker and replayed from another address with another Contact is challenged again on both workers, 20 of 20 times', async () => {
    const phone = await socketAt('127.0.0.3');
    const eve = await socketAt('127.0.0.5');
    try {
      const callId = callIdOwnedBy(0);
      const req = (s: Socket, id: string, cseq: number, contact: string, auth?: string): string => [
        `REGISTER sip:${DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP ${s.address().address}:${s.address().port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
        'Max-Forwards: 70', `From: <sip:alice@${DOMAIN}>;tag=${id.slice(0, 6)}`, `To: <sip:alice@${DOMAIN}>`, `Call-ID: ${id}`, `CSeq: ${cseq} REGISTER`,
        `Contact: ${contact}`, 'Expires: 600', ...(auth === undefined ? [] : [`Authorization: ${auth}`]), 'Content-Length: 0', '', '',
      ].join('\r\n');
      const contact = `<sip:alice@127.0.0.3:${phone.address().port}>`;
      const challenge = (await finalFor(phone, req(phone, callId, 1, contact), callId)) ?? '';
      const www = /^WWW-Authenticate:\s*(.*)$/im.exec(challenge)?.[1] ?? '';
      const nonce = param(www, 'nonce') ?? '';
      const ha1 = md5(`alice:${DOMAIN}:${USERS.alice}`);
      const response = md5(`${ha1}:${nonce}:00000001:c0ffee:auth:${md5(`REGISTER:sip:${DOMAIN}`)}`);
      const auth = `Digest username="alice", realm="${DOMAIN}", nonce="${nonce}", uri="sip:${DOMAIN}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"`;
      assert.match((await finalFor(phone, req(phone, callId, 2, contact, auth), callId)) ?? '', /^SIP\/2\.0 200 /);
      const answers: string[] = [];
      for (let i = 0; i < 20; i++) {
        const id = callIdOwnedBy(i % 2);
        const r = await finalFor(eve, req(eve, id, 1, `<sip:eve@127.0.0.5:${eve.address().port}>`, auth), id);
        answers.push(r?.slice(8, 11) ?? 'none');
      }
      assert.deepEqual(answers, Array(20).fill('401'), 'every replay, on either worker, is challenged again');
      // The other side of it: a fresh nonce-count of the same nonce, answered on the worker that did not
      // issue it (another Call-ID), is claimed at the issuer and accepted once.
      const response2 = md5(`${ha1}:${nonce}:00000002:c0ffee:auth:${md5(`REGISTER:sip:${DOMAIN}`)}`);
      const auth2 = `Digest username="alice", realm="${DOMAIN}", nonce="${nonce}", uri="sip:${DOMAIN}", response="${response2}", algorithm=MD5, qop=auth, nc=00000002, cnonce="c0ffee"`;
      const other = callIdOwnedBy(1);
      assert.match((await finalFor(phone, req(phone, other, 1, contact, auth2), other)) ?? '', /^SIP\/2\.0 200 /, 'nc=2 accepted on worker 1 through worker 0');
      const again = callIdOwnedBy(0);
      assert.match((await finalFor(phone, req(phone, again, 1, contact, auth2), again)) ?? '', /^SIP\/2\.0 401 /, 'and not a second time on worker 0');
    } finally {
      phone.close();
      eve.close();
    }
  });

  it('a ban made through one worker (POST /v1/bans) holds on both: the banned address gets no answer whichever worker its datagrams reach', async () => {
    const store = await openStore({ url: `sqlite:${join(dir, 'db.sqlite')}`, logger: silentLogger() });
    let token: string;
    try {
      token = (await store.tokens.create({ name: 'workers-ban', expiresAt: Date.now() + 60_000 })).token;
    } finally {
      await store.close();
    }
    const s = await socketAt('127.0.0.6');
    const options = (id: string): string => [
      `OPTIONS sip:${DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.6:${s.address().port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70', `From: <sip:probe@${DOMAIN}>;tag=p`, `To: <sip:${DOMAIN}>`, `Call-ID: ${id}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
    ].join('\r\n');
    try {
      for (const owner of [0, 1]) {
        const id = callIdOwnedBy(owner);
        assert.ok(await finalFor(s, options(id), id), `worker ${owner} answers before the ban`);
      }
      const res = await fetch(`http://127.0.0.1:${httpPort}/v1/bans`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ address: '127.0.0.6', seconds: 60 }),
      });
      assert.equal(res.status, 201);
      await new Promise((r) => setTimeout(r, 300)); // the ban crosses the primary's IPC channel
      const answered: number[] = [];
      for (let i = 0; i < 10; i++) {
        const id = callIdOwnedBy(i % 2);
        if ((await finalFor(s, options(id), id, 400)) !== undefined) answered.push(i % 2);
      }
      assert.deepEqual(answered, [], 'no worker answered the banned address');
      // Connections are dealt to the workers in turn: every one of them, on either worker, is closed at once.
      const opened = await Promise.all(Array.from({ length: 6 }, () => new Promise<boolean>((resolve) => {
        const ws = new WebSocket(`wss://127.0.0.1:${wssPort}`, 'sip', { rejectUnauthorized: false, localAddress: '127.0.0.6' });
        ws.once('open', () => (ws.terminate(), resolve(true)));
        ws.once('error', () => resolve(false));
      })));
      assert.deepEqual(opened, Array(6).fill(false), 'a WSS connection from the banned address opened on some worker');
    } finally {
      s.close();
    }
  });

  it('stops on SIGTERM: the primary forwards it, both workers stop, the exit code is 0', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const stopped = out.split('\n').filter((l) => l.includes('"msg":"stopped"'));
    assert.equal(stopped.length, WORKERS + 1, out.slice(-3000));
  });
});
