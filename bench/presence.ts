/**
 * bench/presence: presence fan-out (RFC 3856 SUBSCRIBE/NOTIFY, RFC 3903 PUBLISH) through one server process
 * over UDP, Node user agents on raw UDP sockets with the project's SIP message layer (src/sip), all on
 * 127.0.0.1 (SIPp cannot tell when a change made by one scenario reaches another).
 *
 * 1. One user, W watchers (default 1,000): each watcher is a user of its own and SUBSCRIBEs (407, then with
 *    Proxy-Authorization) to the presentity's presence; the presentity registers (it must be online for what
 *    it publishes to be shown) and makes N state changes, each a PUBLISH (SIP-If-Match of the last one, the
 *    nonce of the first 407 with the nonce-count one higher each time) with a new note and activity. A change
 *    is made once every watcher heard the one before (or 10 s passed): W NOTIFYs per change.
 * 2. U users × K watchers (default 100 × 10): U presentities, each with K watchers of its own; a round is
 *    every presentity publishing once, at the same time: U × K NOTIFYs per round.
 *
 * `presence.notifyInterval: 0` (no throttle: every change is a NOTIFY to every watcher; by default a
 * subscription gets at most one NOTIFY a second). Measured from the first change to the last NOTIFY: NOTIFYs
 * per second, the server's CPU (/proc user+system) per state change and per NOTIFY, its RSS, and the latency
 * from the PUBLISH leaving the presentity's socket to each NOTIFY arriving at a watcher (p50 / p95 / max),
 * and to the last watcher of each change. Subscribing (SUBSCRIBE 407 + SUBSCRIBE 200 + first NOTIFY) is
 * measured apart: CPU per subscription.
 * Usage: node dist/bench/presence.js [watchers=1000] [changes=20] [users=100] [watchers per user=10] [rounds=10]
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';
import {
  type DigestChallenge, type SipRequest, SipResponse, buildCredentials, createResponse, parseChallenge, parseMessage, serializeMessage,
} from '../src/sip/index.js';
import { freePort } from '../support/tools.js';
import {
  BENCH_DOMAIN, type BenchTarget, type BenchUser, benchConfig, benchUsers, benchWorkers, fmt, loadAverage, measure, provisionSoftswitch,
  sleep, spread, startServerProcess,
} from './lib.js';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const T1_MS = 500;
const T2_MS = 4000;
const TIMER_F_MS = 64 * T1_MS;
/** A change not heard by every watcher within this long is counted as missing there. */
const CHANGE_DEADLINE_MS = 10_000;
/** UDP sockets the watchers share (a subscription is told apart by its Call-ID). */
const SOCKETS = 50;
/** SUBSCRIBEs in flight at once. */
const SUBSCRIBE_CONCURRENCY = 50;

interface Pending {
  done(status: number, res?: SipResponse): void;
  interval: number;
  retransmit: NodeJS.Timeout | undefined;
  expires: NodeJS.Timeout;
}

/** What a subscription heard: the change numbers (from the note) and when each first arrived. */
interface Subscription {
  callId: string;
  watcher: BenchUser;
  presentity: BenchUser;
  /** NOTIFY CSeqs seen (a retransmission is answered again, counted once). */
  seen: Set<number>;
  /** Change number → performance.now() of its NOTIFY. */
  heard: Map<number, number>;
  notifies: number;
}

/** One UDP socket: client transactions (by branch) for anyone, and the NOTIFYs of the subscriptions on it. */
class Endpoint {
  private readonly socket: Socket = createSocket('udp4');
  private readonly pending = new Map<string, Pending>();
  readonly subscriptions = new Map<string, Subscription>();
  /** A NOTIFY (first copy) for a subscription of this endpoint, with its change number if it names one. */
  onNotify: ((sub: Subscription, change: number | undefined, at: number) => void) | undefined;

  private constructor(private readonly serverPort: number) {
    this.socket.on('message', (data, from) => {
      let m;
      try {
        m = parseMessage(data);
      } catch {
        return;
      }
      if (m instanceof SipResponse) this.response(m);
      else this.request(m, from.port, from.address);
    });
  }

  static async open(serverPort: number): Promise<Endpoint> {
    const e = new Endpoint(serverPort);
    await new Promise<void>((resolve) => e.socket.bind(0, '127.0.0.1', resolve));
    return e;
  }

  get local(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  close(): void {
    for (const p of this.pending.values()) p.done(0);
    this.socket.close();
  }

  /** One non-INVITE client transaction over UDP (RFC 3261 §17.1.2.2); resolves with the final status (0: Timer F). */
  transact({ text, branch }: { text: string; branch: string }): Promise<{ status: number; res?: SipResponse }> {
    return new Promise((resolve) => {
      const send = (): void => this.socket.send(text, this.serverPort, '127.0.0.1');
      const p: Pending = {
        interval: T1_MS,
        done: (status, res) => {
          clearTimeout(p.retransmit);
          clearTimeout(p.expires);
          this.pending.delete(branch);
          resolve(res === undefined ? { status } : { status, res });
        },
        retransmit: undefined,
        expires: setTimeout(() => p.done(0), TIMER_F_MS),
      };
      const schedule = (): void => {
        p.retransmit = setTimeout(() => {
          send();
          p.interval = Math.min(p.interval * 2, T2_MS);
          schedule();
        }, p.interval);
      };
      schedule();
      this.pending.set(branch, p);
      send();
    });
  }

  private response(res: SipResponse): void {
    const p = this.pending.get(res.topVia?.branch ?? '');
    if (p === undefined) return;
    if (res.status < 200) {
      p.interval = T2_MS;
      return;
    }
    p.done(res.status, res);
  }

  private request(req: SipRequest, port: number, address: string): void {
    if (req.method === 'ACK') return;
    this.socket.send(serializeMessage(createResponse(req, req.method === 'NOTIFY' ? 200 : 405)), port, address);
    const sub = req.method === 'NOTIFY' ? this.subscriptions.get(req.callId ?? '') : undefined;
    if (sub === undefined) return;
    const cseq = req.cseq?.seq ?? 0;
    if (sub.seen.has(cseq)) return;
    sub.seen.add(cseq);
    sub.notifies++;
    const m = /bench change (\d+)/.exec(req.body.toString('utf8'));
    this.onNotify?.(sub, m === null ? undefined : Number(m[1]), performance.now());
  }
}

/** A request from `user` on `endpoint`, with a fresh branch. */
function request(endpoint: Endpoint, user: BenchUser, method: string, ruri: string, to: string, o: {
  callId: string; tag: string; cseq: number; headers: string[]; body?: string;
}): { text: string; branch: string } {
  const branch = `z9hG4bK${hex(8)}`;
  const body = o.body ?? '';
  const lines = [
    `${method} ${ruri} SIP/2.0`, `Via: SIP/2.0/UDP ${endpoint.local};branch=${branch};rport`, 'Max-Forwards: 70',
    `From: <sip:${user.username}@${BENCH_DOMAIN}>;tag=${o.tag}`, `To: <${to}>`, `Call-ID: ${o.callId}`, `CSeq: ${o.cseq} ${method}`,
    ...o.headers, `Content-Length: ${Buffer.byteLength(body)}`, '', body,
  ];
  return { text: lines.join('\r\n'), branch };
}

/** SUBSCRIBE (presence) from `watcher` to `presentity`, answering the 407; resolves with the subscription or the failing status. */
async function subscribe(endpoint: Endpoint, watcher: BenchUser, presentity: BenchUser): Promise<Subscription | number> {
  const target = `sip:${presentity.username}@${BENCH_DOMAIN}`;
  const callId = `${hex(8)}@bench-presence`;
  const tag = hex(4);
  const sub: Subscription = { callId, watcher, presentity, seen: new Set(), heard: new Map(), notifies: 0 };
  endpoint.subscriptions.set(callId, sub);
  const build = (cseq: number, auth?: string): { text: string; branch: string } => request(endpoint, watcher, 'SUBSCRIBE', target, target, {
    callId, tag, cseq, headers: [
      `Contact: <sip:${watcher.username}@${endpoint.local}>`, 'Event: presence', 'Accept: application/pidf+xml', 'Expires: 3600',
      ...(auth === undefined ? [] : [`Proxy-Authorization: ${auth}`]),
    ],
  });
  const first = await endpoint.transact(build(1));
  let status = first.status;
  if (first.status === 407 && first.res !== undefined) {
    const ch = parseChallenge(first.res.get('proxy-authenticate') ?? '', 'proxy-authenticate');
    const auth = buildCredentials(ch, { username: watcher.username, password: watcher.password, method: 'SUBSCRIBE', uri: target, nc: 1, cnonce: hex(4) });
    status = (await endpoint.transact(build(2, auth))).status;
  }
  if (status === 200) return sub;
  endpoint.subscriptions.delete(callId);
  return status;
}

/** A presentity: registered on its own endpoint, publishing PIDF documents (RFC 3903) that name the change. */
class Publisher {
  private readonly callId = `${hex(8)}@bench-publish`;
  private readonly tag = hex(4);
  private cseq = 0;
  private etag: string | undefined;
  private challenge: DigestChallenge | undefined;
  private nc = 0;

  constructor(readonly user: BenchUser, private readonly endpoint: Endpoint) {}

  get aor(): string {
    return `sip:${this.user.username}@${BENCH_DOMAIN}`;
  }

  /** REGISTER (401, then Authorization); resolves with the final status. */
  async register(): Promise<number> {
    const uri = `sip:${BENCH_DOMAIN}`;
    const callId = `${hex(8)}@bench-register`;
    const build = (cseq: number, auth?: string): { text: string; branch: string } => request(this.endpoint, this.user, 'REGISTER', uri, this.aor, {
      callId, tag: this.tag, cseq, headers: [
        `Contact: <sip:${this.user.username}@${this.endpoint.local}>`, 'Expires: 3600', ...(auth === undefined ? [] : [`Authorization: ${auth}`]),
      ],
    });
    const first = await this.endpoint.transact(build(1));
    if (first.status !== 401 || first.res === undefined) return first.status;
    const ch = parseChallenge(first.res.get('www-authenticate') ?? '');
    const auth = buildCredentials(ch, { username: this.user.username, password: this.user.password, method: 'REGISTER', uri, nc: 1, cnonce: hex(4) });
    return (await this.endpoint.transact(build(2, auth))).status;
  }

  /** PUBLISHes the document of change `n`; resolves with the final status and when the PUBLISH left. */
  async publish(n: number): Promise<{ status: number; sentAt: number }> {
    const body = pidf(this.aor, n);
    let sentAt = 0;
    for (let attempt = 0; attempt < 3; attempt++) {
      const auth = this.challenge === undefined ? undefined : buildCredentials(this.challenge, {
        username: this.user.username, password: this.user.password, method: 'PUBLISH', uri: this.aor, nc: ++this.nc, cnonce: hex(4),
      });
      const req = request(this.endpoint, this.user, 'PUBLISH', this.aor, this.aor, {
        callId: this.callId, tag: this.tag, cseq: ++this.cseq, body, headers: [
          'Event: presence', 'Expires: 3600', 'Content-Type: application/pidf+xml',
          ...(this.etag === undefined ? [] : [`SIP-If-Match: ${this.etag}`]), ...(auth === undefined ? [] : [`Proxy-Authorization: ${auth}`]),
        ],
      });
      sentAt = performance.now();
      const r = await this.endpoint.transact(req);
      if (r.status === 200) this.etag = r.res?.get('sip-etag') ?? this.etag;
      if (r.status !== 407 || r.res === undefined) return { status: r.status, sentAt };
      this.challenge = parseChallenge(r.res.get('proxy-authenticate') ?? '', 'proxy-authenticate');
      this.nc = 0;
    }
    return { status: 407, sentAt };
  }
}

/** Change `n`: open, an activity that alternates (away / busy) and a note naming the change. */
function pidf(aor: string, n: number): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${aor}">`,
    '<tuple id="t1"><status><basic>open</basic></status></tuple>',
    `<dm:person id="p1"><rpid:activities><rpid:${n % 2 === 0 ? 'away' : 'busy'}/></rpid:activities><dm:note>bench change ${n}</dm:note></dm:person>`,
    '</presence>',
  ].join('\r\n');
}

interface RunResult {
  label: string;
  presentities: number;
  watchers: number;
  /** Subscribing: SUBSCRIBEs answered 200, and the server's CPU ms per subscription. */
  subscribed: number;
  subscribeCpuMs: number;
  changes: number;
  expected: number;
  heard: number;
  /** NOTIFYs beyond one per watcher and change (duplicates). */
  extra: number;
  notifiesPerSecond: number;
  cpuMsPerChange: number;
  cpuMsPerNotify: number;
  latency: number[];
  lastWatcher: number[];
  rssMiB: number;
}

/**
 * `presentities` users, each watched by `perPresentity` watchers, `rounds` rounds of one change each (every
 * presentity at once). Watchers and presentities are the given users.
 */
async function run(target: BenchTarget, label: string, presentityUsers: readonly BenchUser[], watcherUsers: readonly BenchUser[], rounds: number): Promise<RunResult> {
  const perPresentity = watcherUsers.length / presentityUsers.length;
  const endpoints = await Promise.all(Array.from({ length: SOCKETS }, () => Endpoint.open(target.port)));
  const publisherEndpoints = await Promise.all(presentityUsers.map(() => Endpoint.open(target.port)));
  try {
    const publishers = presentityUsers.map((u, i) => new Publisher(u, publisherEndpoints[i]!));
    for (const p of publishers) {
      const status = await p.register();
      if (status !== 200) throw new Error(`REGISTER of ${p.aor}: ${status}`);
    }

    // Subscribing, measured apart.
    const stopSubscribing = measure(target);
    const subs: Subscription[] = [];
    const failures = new Map<number, number>();
    for (let i = 0; i < watcherUsers.length; i += SUBSCRIBE_CONCURRENCY) {
      await Promise.all(watcherUsers.slice(i, i + SUBSCRIBE_CONCURRENCY).map(async (w, j) => {
        const index = i + j;
        const r = await subscribe(endpoints[index % SOCKETS]!, w, presentityUsers[Math.floor(index / perPresentity)]!);
        if (typeof r === 'number') failures.set(r, (failures.get(r) ?? 0) + 1);
        else subs.push(r);
      }));
    }
    const firstNotified = Date.now() + 5000;
    while (subs.some((s) => s.notifies < 1) && Date.now() < firstNotified) await sleep(20);
    const subscribing = stopSubscribing();
    if (failures.size > 0) console.error(`${label}: SUBSCRIBE failures ${JSON.stringify([...failures])}`);

    // The changes.
    const byPresentity = new Map<string, Subscription[]>();
    for (const s of subs) byPresentity.set(s.presentity.username, [...(byPresentity.get(s.presentity.username) ?? []), s]);
    let heardCount = 0;
    let lastHeardAt = 0;
    for (const e of endpoints) {
      e.onNotify = (sub, change, at) => {
        if (change === undefined || sub.heard.has(change)) return;
        sub.heard.set(change, at);
        heardCount++;
        lastHeardAt = at;
      };
    }
    const latency: number[] = [];
    const lastWatcher: number[] = [];
    const notifiesBefore = subs.reduce((sum, s) => sum + s.notifies, 0);
    const stop = measure(target);
    const t0 = performance.now();
    for (let round = 1; round <= rounds; round++) {
      const expectedBy = heardCount + subs.length;
      const sent = await Promise.all(publishers.map(async (p) => ({ p, ...(await p.publish(round)) })));
      for (const s of sent) if (s.status !== 200) console.error(`${label}: PUBLISH of ${s.p.aor} answered ${s.status}`);
      const deadline = Date.now() + CHANGE_DEADLINE_MS;
      while (heardCount < expectedBy && Date.now() < deadline) await sleep(2);
      for (const s of sent) {
        let last = 0;
        for (const sub of byPresentity.get(s.p.user.username) ?? []) {
          const at = sub.heard.get(round);
          if (at === undefined) continue;
          latency.push(at - s.sentAt);
          last = Math.max(last, at - s.sentAt);
        }
        lastWatcher.push(last);
      }
    }
    const elapsedS = (lastHeardAt - t0) / 1000;
    await sleep(300); // retransmissions or duplicates, if any, arrive
    const m = stop();
    const changes = rounds * publishers.length;
    const notifies = subs.reduce((sum, s) => sum + s.notifies, 0) - notifiesBefore;
    return {
      label,
      presentities: publishers.length,
      watchers: watcherUsers.length,
      subscribed: subs.length,
      subscribeCpuMs: (subscribing.cpuSeconds * 1000) / Math.max(1, subs.length),
      changes,
      expected: changes * perPresentity,
      heard: heardCount,
      extra: notifies - heardCount,
      notifiesPerSecond: heardCount / elapsedS,
      cpuMsPerChange: (m.cpuSeconds * 1000) / changes,
      cpuMsPerNotify: (m.cpuSeconds * 1000) / Math.max(1, heardCount),
      latency,
      lastWatcher,
      rssMiB: m.memoryMiB,
    };
  } finally {
    for (const e of [...endpoints, ...publisherEndpoints]) e.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).map(Number);
  const [watchers = 1000, changes = 20, users = 100, perUser = 10, rounds = 10] = args;
  for (const n of [watchers, changes, users, perUser, rounds]) if (!Number.isInteger(n) || n < 0) throw new TypeError('usage: presence [watchers] [changes] [users] [watchers per user] [rounds]');
  if (benchWorkers() !== 1) throw new TypeError('bench/presence runs one server process (BENCH_WORKERS=1)');
  const load = loadAverage();
  const star = benchUsers('star', 1);
  const fans = benchUsers('fan', watchers);
  const owners = benchUsers('own', users);
  const followers = benchUsers('fol', users * perUser);
  const port = await freePort();
  const server = await startServerProcess((dir) => benchConfig(dir, `udp:127.0.0.1:${port}`, {
    presence: { notifyInterval: 0 },
  }));
  const target: BenchTarget = { name: 'softswitch', port, cpuSeconds: () => server.cpuSeconds(), memoryMiB: () => server.memoryMiB(), stop: () => server.stop() };
  const results: RunResult[] = [];
  try {
    await provisionSoftswitch(`sqlite:${join(server.dir, 'db.sqlite')}`, [...star, ...fans, ...owners, ...followers]);
    // Warm-up (not reported): 50 watchers of one user, 5 changes.
    const warm = benchUsers('warm', 51);
    await provisionSoftswitch(`sqlite:${join(server.dir, 'db.sqlite')}`, warm);
    await run(target, 'warm-up', warm.slice(0, 1), warm.slice(1), 5);
    if (watchers > 0 && changes > 0) results.push(await run(target, `1 user × ${fmt(watchers)} watchers`, star, fans, changes));
    if (users > 0 && perUser > 0 && rounds > 0) results.push(await run(target, `${fmt(users)} users × ${perUser} watchers`, owners, followers, rounds));
  } finally {
    await target.stop();
  }
  console.log(`bench/presence, one server process (notifyInterval 0), load average ${fmt(load, 2)} before the run\n`);
  console.log('| run | subscribed | CPU ms per subscription | state changes | NOTIFYs heard (of expected) | duplicates | NOTIFYs/s | CPU ms per change | CPU ms per NOTIFY | change → NOTIFY p50 / p95 / max ms | change → last watcher p50 / p95 / max ms | server RSS MiB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.label} | ${fmt(r.subscribed)} of ${fmt(r.watchers)} | ${fmt(r.subscribeCpuMs, 2)} | ${fmt(r.changes)} | ${fmt(r.heard)} of ${fmt(r.expected)} | ${fmt(r.extra)} | ${fmt(r.notifiesPerSecond)} | ${fmt(r.cpuMsPerChange, 1)} | ${fmt(r.cpuMsPerNotify, 3)} | ${spread(r.latency)} | ${spread(r.lastWatcher)} | ${fmt(r.rssMiB)} |`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
