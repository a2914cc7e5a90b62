/**
 * bench/presence: presence fan-out (RFC 3856 SUBSCRIBE/NOTIFY, RFC 3903 PUBLISH) through one server process
 * over UDP, Node user agents on raw UDP sockets with the project's SIP message layer (support/udp-ua.ts), all on
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
import { join } from 'node:path';
import { type SipRequest, createResponse } from '../src/sip/index.js';
import { freePort } from '../support/tools.js';
import { DigestSession, type OutgoingRequest, type Reply, UdpUa, hex } from '../support/udp-ua.js';
import {
  BENCH_DOMAIN, type BenchTarget, type BenchUser, benchConfig, benchUsers, benchWorkers, fmt, loadAverage, measure, provisionSoftswitch,
  sleep, spread, startServerProcess,
} from './lib.js';

/** A change not heard by every watcher within this long is counted as missing there. */
const CHANGE_DEADLINE_MS = 10_000;
/** UDP sockets the watchers share (a subscription is told apart by its Call-ID). */
const SOCKETS = 50;
/** SUBSCRIBEs in flight at once. */
const SUBSCRIBE_CONCURRENCY = 50;

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

/** One UDP socket: client transactions for anyone, and the NOTIFYs of the subscriptions on it. */
class Endpoint {
  readonly ua: UdpUa;
  readonly subscriptions = new Map<string, Subscription>();
  /** A NOTIFY (first copy) for a subscription of this endpoint, with its change number if it names one. */
  onNotify: ((sub: Subscription, change: number | undefined, at: number) => void) | undefined;

  private constructor(serverPort: number) {
    this.ua = new UdpUa({ address: '127.0.0.1', port: serverPort }, (req, reply) => this.request(req, reply));
  }

  static async open(serverPort: number): Promise<Endpoint> {
    const e = new Endpoint(serverPort);
    await e.ua.bind();
    return e;
  }

  private request(req: SipRequest, reply: Reply): void {
    reply(createResponse(req, req.method === 'NOTIFY' ? 200 : 405));
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

/** SUBSCRIBE (presence) from `watcher` to `presentity`, answering the 407; resolves with the subscription or the failing status. */
async function subscribe({ ua, subscriptions }: Endpoint, watcher: BenchUser, presentity: BenchUser): Promise<Subscription | number> {
  const target = `sip:${presentity.username}@${BENCH_DOMAIN}`;
  const callId = `${hex(8)}@bench-presence`;
  const tag = hex(4);
  const sub: Subscription = { callId, watcher, presentity, seen: new Set(), heard: new Map(), notifies: 0 };
  subscriptions.set(callId, sub);
  let cseq = 0;
  const { status } = await new DigestSession(watcher).send('SUBSCRIBE', target, (credentials) => ua.transact(ua.request({
    method: 'SUBSCRIBE', ruri: target, from: `sip:${watcher.username}@${BENCH_DOMAIN}`, tag, to: target, callId, cseq: ++cseq, headers: [
      `Contact: <sip:${watcher.username}@${ua.local}>`, 'Event: presence', 'Accept: application/pidf+xml', 'Expires: 3600', ...credentials,
    ],
  })));
  if (status === 200) return sub;
  subscriptions.delete(callId);
  return status;
}

/** A presentity: registered on its own endpoint, publishing PIDF documents (RFC 3903) that name the change. */
class Publisher {
  private readonly callId = `${hex(8)}@bench-publish`;
  private readonly tag = hex(4);
  private cseq = 0;
  private etag: string | undefined;
  /** Credentials of PUBLISHes: the nonce of the first 407, the nonce-count one higher each time. */
  private readonly publishAuth: DigestSession;

  constructor(readonly user: BenchUser, private readonly ua: UdpUa) {
    this.publishAuth = new DigestSession(user);
  }

  get aor(): string {
    return `sip:${this.user.username}@${BENCH_DOMAIN}`;
  }

  /** REGISTER (401, then Authorization); resolves with the final status. */
  async register(): Promise<number> {
    const uri = `sip:${BENCH_DOMAIN}`;
    const callId = `${hex(8)}@bench-register`;
    let cseq = 0;
    const r = await new DigestSession(this.user).send('REGISTER', uri, (credentials) => this.ua.transact(this.request('REGISTER', uri, {
      callId, cseq: ++cseq, headers: [`Contact: <sip:${this.user.username}@${this.ua.local}>`, 'Expires: 3600', ...credentials],
    })));
    return r.status;
  }

  /** PUBLISHes the document of change `n`; resolves with the final status and when the (last) PUBLISH left. */
  async publish(n: number): Promise<{ status: number; sentAt: number }> {
    const body = pidf(this.aor, n);
    let sentAt = 0;
    const r = await this.publishAuth.send('PUBLISH', this.aor, async (credentials) => {
      const req = this.request('PUBLISH', this.aor, {
        callId: this.callId, cseq: ++this.cseq, body, headers: [
          'Event: presence', 'Expires: 3600', 'Content-Type: application/pidf+xml',
          ...(this.etag === undefined ? [] : [`SIP-If-Match: ${this.etag}`]), ...credentials,
        ],
      });
      sentAt = performance.now();
      const res = await this.ua.transact(req);
      if (res.status === 200) this.etag = res.res?.get('sip-etag') ?? this.etag;
      return res;
    });
    return { status: r.status, sentAt };
  }

  /** A request from this presentity to its own AOR (`to`), with a fresh branch. */
  private request(method: string, ruri: string, o: { callId: string; cseq: number; headers: string[]; body?: string }): OutgoingRequest {
    return this.ua.request({ method, ruri, from: this.aor, tag: this.tag, to: this.aor, ...o });
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
    const publishers = presentityUsers.map((u, i) => new Publisher(u, publisherEndpoints[i]!.ua));
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
    for (const e of [...endpoints, ...publisherEndpoints]) e.ua.close();
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
