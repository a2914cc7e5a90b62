/**
 * bench/chat: chat messages (RFC 3428 MESSAGE) through the server over UDP, Node phones (bench/chat-ua.ts)
 * → softswitch → Node phones, all on 127.0.0.1.
 *
 * 1. 1:1, recipient online: P pairs of users (aNNN → bNNN), each user one registered phone (the sender's too:
 *    its own device is passed over, as on a real phone). Each message is authenticated (Proxy-Authorization
 *    on the nonce of the first 407, nonce-count + 1 per message), stored (SQLite, body sealed with
 *    AES-256-GCM), answered 202, then delivered by the server as a new MESSAGE to the recipient's phone,
 *    which answers 200. A fixed-rate run, then a step-up over rising rates (8 s each) for the highest rate
 *    with ≤ 0.1 % failed messages.
 * 2. Fan-out: a group of 100 members (created by its first member through POST /v1/groups), each member one
 *    registered phone; the first member sends M messages to the group at a fixed rate: 99 deliveries each.
 *
 * A message fails when it is not answered 202, or not delivered (to every recipient's phone) within 5 s of
 * its sending. Measured: messages (deliveries) per second, failures, the server's CPU seconds per 1000
 * messages (and per delivery) between the first send and 1 s after the last delivery, its RSS, and the
 * latency from the sender's MESSAGE to the recipient phone's receipt of the delivered one (p50/p95/max).
 * The server's send limits are raised for the bench (messaging.ratePerMinute 100,000, floodPer10s 10,000:
 * by default one user may send 120 a minute). A warm-up (500 1:1 messages at 50/s, 5 group messages) is not measured.
 * Yardstick (BENCH_CHAT_KAMAILIO=1, Kamailio installed): the same 1:1 run through Kamailio 5.6 with
 * bench/kamailio/kamailio.cfg (auth_db 407, usrloc in memory, `t_relay` to the recipient's Contact): a
 * stateful relay that stores nothing, the recipient's 200 relayed back to the sender.
 * Usage: node dist/bench/chat.js [messages=3000] [rate/s=100] [group messages=40] [group rate/s=2];
 * BENCH_STEPS=100,150,… sets the 1:1 step-up rates, BENCH_CHAT_PAIRS the pairs (default 10).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/tools.js';
import { startKamailioTarget } from './kamailio-target.js';
import { ChatPhone, benchBody } from './chat-ua.js';
import {
  BENCH_DOMAIN, type BenchTarget, type BenchUser, type Measured, benchConfig, benchUsers, benchWorkers, fmt, loadAverage, measure,
  provisionSoftswitch, sleep, spread, startServerProcess,
} from './lib.js';

/** A message not delivered within this long of its sending has failed. */
const DELIVERY_DEADLINE_MS = 5000;
/** Time the server gets after the last delivery (its receipts and cursor writes) before CPU is read. */
const SETTLE_MS = 1000;
const GROUP_MEMBERS = 100;
const STEP_SECONDS = 8;
const MAX_FAILED_SHARE = 0.001;
/** The share of the target rate the phones must send, and the server deliver. */
const MIN_ACHIEVED_SHARE = 0.95;
/** Phones registering at the same time. */
const REGISTER_CONCURRENCY = 20;

/** One message to send: from which phone, to which URI, and the phones that must receive it. */
interface Send {
  from: ChatPhone;
  to: string;
  recipients: readonly ChatPhone[];
}

export interface ChatResult {
  label: string;
  messages: number;
  rate: number;
  /** Messages per second the phones managed to send. */
  achieved: number;
  /** Messages answered 2xx (202 by the softswitch). */
  accepted: number;
  /** Deliveries expected (messages × recipients) and made within the deadline. */
  expected: number;
  delivered: number;
  /** Messages not answered 202 or not delivered to every recipient within the deadline. */
  failed: number;
  /** Deliveries per second, first send to last delivery. */
  deliveriesPerSecond: number;
  /** Send → delivery at a recipient phone, ms, every delivery. */
  latency: number[];
  /** Send → the last recipient's delivery, ms, per message fully delivered (fan-out). */
  complete: number[];
  /** Retransmissions: the phones' requests, and the server's MESSAGEs seen again. */
  retransSent: number;
  retransReceived: number;
  statuses: Record<string, number>;
  measured: Measured;
  /** CPU seconds of the bench process (the phones) over the run. */
  clientCpuSeconds: number;
}

/** Sends `count` messages at `rate`/s (message i is `pick(i)`) and waits for their deliveries. */
async function runLoad(target: BenchTarget, label: string, count: number, rate: number, pick: (i: number) => Send): Promise<ChatResult> {
  const run = randomBytes(4).toString('hex');
  const sentAt = new Array<number>(count).fill(0);
  const remaining = new Array<number>(count).fill(0);
  const lastAt = new Array<number>(count).fill(0);
  const latency: number[] = [];
  let expected = 0;
  let delivered = 0;
  let lastDelivery = 0;
  const phones = new Set<ChatPhone>();
  for (let i = 0; i < Math.min(count, 1000); i++) for (const p of [pick(i).from, ...pick(i).recipients]) phones.add(p);
  const retrans0 = [...phones].reduce((s, p) => [s[0]! + p.retransmissionsSent, s[1]! + p.retransmissionsReceived], [0, 0]);
  for (const p of phones) {
    p.onDelivered = (d) => {
      if (d.run !== run || d.index >= count || sentAt[d.index] === 0) return;
      const ms = d.at - sentAt[d.index]!;
      if (ms > DELIVERY_DEADLINE_MS) return;
      delivered++;
      latency.push(ms);
      lastDelivery = d.at;
      if (--remaining[d.index]! === 0) lastAt[d.index] = d.at;
    };
  }
  const statuses: Record<string, number> = {};
  const answers: Array<Promise<void>> = [];
  const cpu0 = process.cpuUsage();
  const stopMeasuring = measure(target);
  const start = performance.now();
  let sent = 0;
  while (sent < count) {
    const due = Math.min(count, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const s = pick(sent);
      remaining[sent] = s.recipients.length;
      expected += s.recipients.length;
      sentAt[sent] = performance.now();
      answers.push(s.from.message(s.to, benchBody(run, sent)).then((status) => {
        statuses[status] = (statuses[status] ?? 0) + 1;
      }));
    }
    await sleep(1);
  }
  const sendSeconds = (performance.now() - start) / 1000;
  await Promise.all(answers);
  // Deliveries after the deadline do not count: wait for the last message's deadline at most.
  const end = performance.now() + DELIVERY_DEADLINE_MS;
  while (delivered < expected && performance.now() < end) await sleep(20);
  await sleep(SETTLE_MS);
  const measured = stopMeasuring();
  const cpu = process.cpuUsage(cpu0);
  for (const p of phones) p.onDelivered = undefined;
  // The softswitch answers 202 (stored); a relaying proxy passes on the recipient's 200.
  const accepted = Object.entries(statuses).reduce((n, [status, k]) => (Number(status) >= 200 && Number(status) < 300 ? n + k : n), 0);
  const complete: number[] = [];
  let failed = 0;
  for (let i = 0; i < count; i++) {
    if (remaining[i] === 0) complete.push(lastAt[i]! - sentAt[i]!);
    else failed++;
  }
  const retrans1 = [...phones].reduce((s, p) => [s[0]! + p.retransmissionsSent, s[1]! + p.retransmissionsReceived], [0, 0]);
  return {
    label, messages: count, rate, achieved: count / Math.max(sendSeconds, 1 / rate), accepted, expected, delivered,
    failed: Math.max(failed, count - accepted),
    deliveriesPerSecond: lastDelivery > start ? delivered / ((lastDelivery - start) / 1000) : 0,
    latency, complete, retransSent: retrans1[0]! - retrans0[0]!, retransReceived: retrans1[1]! - retrans0[1]!, statuses, measured,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/**
 * A rate is sustained when at most 0.1 % of its messages failed, the phones sent ≥ 95 % of it, and the
 * server kept up: deliveries per second (first send to last delivery) ≥ 95 % of it too, so that a step
 * that only builds a backlog inside the 5 s deadline does not pass.
 */
function sustained(r: ChatResult): boolean {
  return r.failed <= r.messages * MAX_FAILED_SHARE && r.achieved >= r.rate * MIN_ACHIEVED_SHARE && r.deliveriesPerSecond >= r.rate * MIN_ACHIEVED_SHARE;
}

const ONE_TO_ONE_HEADER = [
  '| run | messages | target/s | achieved/s | 2xx | delivered | delivered/s | failed | latency p50 / p95 / max ms | retrans phones / server | server CPU s | CPU s per 1000 messages | server RSS MiB | phones CPU s |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];

function oneToOneRow(r: ChatResult): string {
  const m = r.measured;
  return `| ${r.label} | ${fmt(r.messages)} | ${fmt(r.rate)} | ${fmt(r.achieved)} | ${fmt(r.accepted)} | ${fmt(r.delivered)} | ${fmt(r.deliveriesPerSecond)} | ${fmt(r.failed)} | ${spread(r.latency)} | ${fmt(r.retransSent)} / ${fmt(r.retransReceived)} | ${m.cpuSeconds.toFixed(2)} | ${((m.cpuSeconds / Math.max(1, r.delivered)) * 1000).toFixed(3)} | ${m.memoryMiB.toFixed(0)} | ${r.clientCpuSeconds.toFixed(2)} |`;
}

const GROUP_HEADER = [
  '| run | group messages | target/s | 202 | deliveries (expected) | deliveries/s | failed messages | delivery latency p50 / p95 / max ms | last delivery p50 / p95 / max ms | server CPU s | CPU ms per group message | CPU ms per delivery | server RSS MiB | phones CPU s |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];

function groupRow(r: ChatResult): string {
  const m = r.measured;
  return `| ${r.label} | ${fmt(r.messages)} | ${fmt(r.rate)} | ${fmt(r.accepted)} | ${fmt(r.delivered)} (${fmt(r.expected)}) | ${fmt(r.deliveriesPerSecond)} | ${fmt(r.failed)} | ${spread(r.latency)} | ${spread(r.complete)} | ${m.cpuSeconds.toFixed(2)} | ${((m.cpuSeconds / Math.max(1, r.accepted)) * 1000).toFixed(2)} | ${((m.cpuSeconds / Math.max(1, r.delivered)) * 1000).toFixed(3)} | ${m.memoryMiB.toFixed(0)} | ${r.clientCpuSeconds.toFixed(2)} |`;
}

/** Opens and registers a phone per user, a few at a time. */
async function registerPhones(users: readonly BenchUser[], serverPort: number): Promise<ChatPhone[]> {
  const phones = await Promise.all(users.map((u) => ChatPhone.open(u, serverPort)));
  for (let i = 0; i < phones.length; i += REGISTER_CONCURRENCY) {
    const statuses = await Promise.all(phones.slice(i, i + REGISTER_CONCURRENCY).map((p) => p.register()));
    const bad = statuses.findIndex((s) => s !== 200);
    if (bad >= 0) throw new Error(`${phones[i + bad]!.user.username} could not register: ${statuses[bad]}`);
  }
  return phones;
}

/** The group, created by `owner` through the HTTP API (POST /v1/auth/token, then POST /v1/groups). */
async function createGroup(httpPort: number, owner: BenchUser, members: readonly BenchUser[]): Promise<string> {
  const base = `http://127.0.0.1:${httpPort}/v1`;
  const tokenRes = await fetch(`${base}/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'password', username: `${owner.username}@${BENCH_DOMAIN}`, password: owner.password }),
  });
  if (tokenRes.status !== 200) throw new Error(`token for ${owner.username}: HTTP ${tokenRes.status}`);
  const token = ((await tokenRes.json()) as { access_token: string }).access_token;
  const res = await fetch(`${base}/groups`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', members: members.map((m) => `${m.username}@${BENCH_DOMAIN}`) }),
  });
  if (res.status !== 201) throw new Error(`POST /groups: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

async function startChatTarget(port: number, httpPort: number, users: readonly BenchUser[]): Promise<BenchTarget> {
  const server = await startServerProcess((dir) => benchConfig(dir, `udp:127.0.0.1:${port}`, {
    http: { listen: `127.0.0.1:${httpPort}` },
    messaging: { ratePerMinute: 100_000, floodPer10s: 10_000 },
  }));
  try {
    await provisionSoftswitch(`sqlite:${join(server.dir, 'db.sqlite')}`, users);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { name: 'softswitch', port, cpuSeconds: () => server.cpuSeconds(), memoryMiB: () => server.memoryMiB(), stop: () => server.stop() };
}


/** The 1:1 fixed-rate run through a Kamailio relay (no store): warm-up, then `messages` at `rate`. */
async function kamailioYardstick(senders: readonly BenchUser[], recipients: readonly BenchUser[], messages: number, rate: number): Promise<ChatResult> {
  const target = await startKamailioTarget(await freePort(), [...senders, ...recipients]);
  const phones: ChatPhone[] = [];
  try {
    const a = await registerPhones(senders, target.port);
    const b = await registerPhones(recipients, target.port);
    phones.push(...a, ...b);
    const pair = (i: number): Send => ({ from: a[i % a.length]!, to: b[i % b.length]!.aor, recipients: [b[i % b.length]!] });
    await runLoad(target, 'warm-up', 500, 50, pair);
    return await runLoad(target, 'Kamailio 5.6 relay (t_relay, nothing stored)', messages, rate, pair);
  } finally {
    for (const p of phones) p.close();
    await target.stop();
  }
}

async function main(): Promise<void> {
  const messages = Number(process.argv[2] ?? 3000);
  const rate = Number(process.argv[3] ?? 100);
  const groupMessages = Number(process.argv[4] ?? 40);
  const groupRate = Number(process.argv[5] ?? 2);
  const pairs = Number(process.env.BENCH_CHAT_PAIRS ?? 10);
  const steps = (process.env.BENCH_STEPS ?? '100,150,200,250,300,400').split(',').filter(Boolean).map(Number);
  for (const n of [messages, groupMessages, pairs]) if (!Number.isInteger(n) || n < 0) throw new TypeError('usage: chat [messages] [rate/s] [group messages] [group rate/s]');
  if (benchWorkers() !== 1) throw new TypeError('bench/chat runs one server process (BENCH_WORKERS=1)');
  const load = loadAverage();
  const senders = benchUsers('a', pairs);
  const recipients = benchUsers('b', pairs);
  const members = benchUsers('m', GROUP_MEMBERS);
  const port = await freePort();
  const httpPort = await freePort();
  const target = await startChatTarget(port, httpPort, [...senders, ...recipients, ...members]);
  const phones: ChatPhone[] = [];
  const fixed: ChatResult[] = [];
  const stepped: ChatResult[] = [];
  const group: ChatResult[] = [];
  try {
    const a = await registerPhones(senders, port);
    const b = await registerPhones(recipients, port);
    phones.push(...a, ...b);
    const pair = (i: number): Send => ({ from: a[i % pairs]!, to: b[i % pairs]!.aor, recipients: [b[i % pairs]!] });
    await runLoad(target, 'warm-up', 500, 50, pair);
    if (messages > 0) fixed.push(await runLoad(target, '1:1 fixed rate', messages, rate, pair));
    for (const step of steps) {
      const r = await runLoad(target, `step ${step}/s`, step * STEP_SECONDS, step, pair);
      stepped.push(r);
      if (!sustained(r)) break;
    }
    if (groupMessages > 0) {
      const m = await registerPhones(members, port);
      phones.push(...m);
      const id = await createGroup(httpPort, members[0]!, members.slice(1));
      // The "group created" note reaches every member's phone first.
      const until = Date.now() + 10_000;
      while (m.slice(1).some((p) => p.others === 0) && Date.now() < until) await sleep(50);
      const to = `sip:${id}@${BENCH_DOMAIN}`;
      const send = (): Send => ({ from: m[0]!, to, recipients: m.slice(1) });
      await runLoad(target, 'warm-up', 5, 5, send);
      group.push(await runLoad(target, `group of ${GROUP_MEMBERS}`, groupMessages, groupRate, send));
    }
  } finally {
    for (const p of phones) p.close();
    await target.stop();
  }
  const kamailio = process.env.BENCH_CHAT_KAMAILIO === '1' && messages > 0 ? await kamailioYardstick(senders, recipients, messages, rate) : undefined;
  const kamailioVersion = kamailio === undefined ? '' : spawnSync('kamailio', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]?.replace(/^version: /, '').trim() ?? '?';
  console.log(`node ${process.version}, chat MESSAGE over UDP on 127.0.0.1, one server process (SQLite store, bodies sealed AES-256-GCM), Node phones (digest MD5, nonce reused with nc + 1); ${pairs} sender/recipient pairs, one registered phone each; a message fails when not answered 202 or not delivered within ${DELIVERY_DEADLINE_MS / 1000} s; warm-up unmeasured; load average before: ${load}`);
  if (fixed.length > 0 || stepped.length > 0) {
    console.log('\n1:1, recipient online');
    for (const line of ONE_TO_ONE_HEADER) console.log(line);
    for (const r of fixed) console.log(oneToOneRow(r));
    if (kamailio !== undefined) console.log(oneToOneRow({ ...kamailio, label: `${kamailio.label}, ${kamailioVersion}` }));
    for (const r of stepped) console.log(oneToOneRow({ ...r, label: `${r.label}${sustained(r) ? '' : ' ✗'}` }));
    const best = stepped.filter(sustained).pop();
    console.log(best
      ? `\nhighest sustained 1:1 rate (${STEP_SECONDS} s steps, ≤ ${MAX_FAILED_SHARE * 100} % failed, ≥ ${MIN_ACHIEVED_SHARE * 100} % of the target sent and delivered per second): ${fmt(best.rate)} messages/s (${fmt(best.achieved)} sent/s, ${best.failed} failed of ${fmt(best.messages)})${best === stepped[stepped.length - 1] && stepped.length === steps.length ? ' — the last step: the machine may be the limit, not the server' : ''}`
      : stepped.length > 0 ? '\nno step sustained' : '');
  }
  if (group.length > 0) {
    console.log(`\nfan-out: a group of ${GROUP_MEMBERS} members, one registered phone each, one member sending (${GROUP_MEMBERS - 1} deliveries per message)`);
    for (const line of GROUP_HEADER) console.log(line);
    for (const r of group) console.log(groupRow(r));
  }
  for (const r of [...fixed, ...stepped, ...group]) if (r.failed > 0) console.log(`\n${r.label}: final statuses ${JSON.stringify(r.statuses)}`);
  process.exitCode = [...fixed, ...group].every((r) => r.accepted > 0) ? 0 : 1;
}

if (realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url))) await main();
