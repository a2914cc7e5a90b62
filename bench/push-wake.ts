/**
 * bench/push-wake: the push call server (RFC 8599) waking a crowd. iOS apps (bench/push-wake-ua.ts, raw TCP)
 * register with pn-provider=apns, pn-prid and pn-param, then sleep (their connections close, their bindings stay
 * asleep). alice calls 200 of them (warm-up, unmeasured), then the other 1,000, over UDP at 100 calls/s: the
 * server holds each INVITE and sends a VoIP push to a local APNs (support/fake-apns.ts: HTTP/2 over TLS, ES256
 * provider token checked); on the push the app connects again, registers, is sent the held INVITE and answers;
 * alice hangs up after a short hold. Then the same 1,000 apps, awake now, are called again: the same call
 * without a push.
 *
 * Measured: push sent (the APNs received it) → INVITE delivered to the woken app (p50/p95/max), split into
 * the app's own part (push → its REGISTER answered: connect, 401, REGISTER again) and the server's (REGISTER
 * answered → INVITE delivered); alice's INVITE → 200; calls completed; pushes per call and INVITEs per app
 * (both must be exactly 1; the exit code says so); the server's CPU per call over each round, and its memory.
 * The apps wake at once, so the latency is the server's and the loopback's, not iOS's (a real app takes
 * 1–3 s to start).
 * Usage: node dist/bench/push-wake.js [apps, default 1000] [calls/s, default 100]; BENCH_WORKERS=2 for a cluster.
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ApnsPush, type FakeApns, apnsPushConfig, startFakeApns } from '../support/fake-apns.js';
import { freePort } from '../support/tools.js';
import { type BenchTarget, type BenchUser, type Measured, benchConfig, benchUsers, benchWorkers, fmt, loadAverage, measure, provisionSoftswitch, sleep, spread, startServerProcess } from './lib.js';
import { type CallOutcome, Caller, SleepingApp } from './push-wake-ua.js';

const ALICE: BenchUser = { username: 'alice', password: 'alice-bench-secret' };
/** Apps registering at the same time before the run. */
const REGISTER_CONCURRENCY = 50;
/** Between alice's ACK and her BYE, ms. */
const HOLD_MS = 500;
/** Longest a call may take, ms (the server's wake timeout is 20 s). */
const CALL_TIMEOUT_MS = 25_000;
/** Apps woken first, unmeasured, so that the JIT has compiled the push path. */
const WARMUP_APPS = 200;

/** The pushes the local APNs delivered, per app, and when the first one for each app arrived. */
class PushLog {
  readonly firstAt = new Map<SleepingApp, number>();
  readonly count = new Map<SleepingApp, number>();
  readonly wakeFailures: string[] = [];

  constructor(apns: FakeApns, byToken: ReadonlyMap<string, SleepingApp>) {
    // On its push, iOS starts the app: it connects and registers again at once.
    apns.on('push', (push: ApnsPush) => {
      const app = byToken.get(push.token);
      if (app === undefined || push.payload.kind !== 'call') return;
      this.count.set(app, (this.count.get(app) ?? 0) + 1);
      if (this.firstAt.has(app)) return;
      this.firstAt.set(app, performance.now());
      app.wake().catch((err: Error) => this.wakeFailures.push(err.message));
    });
  }

  forget(apps: readonly SleepingApp[]): void {
    for (const a of apps) {
      this.firstAt.delete(a);
      this.count.delete(a);
    }
  }
}

interface Round {
  label: string;
  calls: number;
  offeredSeconds: number;
  results: CallOutcome[];
  measured: Measured;
  /** Per app called: push → INVITE delivered, push → its REGISTER answered, REGISTER answered → INVITE (woken apps only). */
  pushToInvite: number[];
  pushToRegistered: number[];
  registeredToInvite: number[];
  pushes: number;
  pushedTwice: number;
  invitedTwice: number;
}

/** alice calls each app once at `rate`/s; resolves when every call has ended (or timed out). */
async function callRound(label: string, target: BenchTarget, caller: Caller, apps: readonly SleepingApp[], rate: number, pushes: PushLog): Promise<Round> {
  const stopMeasuring = measure(target);
  const calling = performance.now();
  const outcomes: Array<Promise<CallOutcome>> = [];
  for (let i = 0; i < apps.length; i++) {
    const wait = calling + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    outcomes.push(caller.call(apps[i]!.user.username, HOLD_MS, CALL_TIMEOUT_MS));
  }
  const offeredSeconds = (performance.now() - calling) / 1000;
  const results = await Promise.all(outcomes);
  await sleep(500);
  const measured = stopMeasuring();
  const round: Round = {
    label, calls: apps.length, offeredSeconds, results, measured, pushToInvite: [], pushToRegistered: [], registeredToInvite: [],
    pushes: 0, pushedTwice: 0, invitedTwice: 0,
  };
  for (const [i, app] of apps.entries()) {
    const invites = [...app.invites].filter(([, at]) => at >= calling);
    if (invites.length > 1) round.invitedTwice++;
    const n = pushes.count.get(app) ?? 0;
    round.pushes += n;
    if (n > 1) round.pushedTwice++;
    const pushed = pushes.firstAt.get(app);
    const invited = app.invites.get(results[i]!.callId);
    if (pushed === undefined || invited === undefined) continue;
    round.pushToInvite.push(invited - pushed);
    round.pushToRegistered.push(app.registeredAt - pushed);
    round.registeredToInvite.push(invited - app.registeredAt);
  }
  return round;
}

const ROUND_HEADER = [
  '| apps called | completed | final answers | call pushes | apps pushed twice | apps with 2+ INVITEs | push → INVITE delivered p50 / p95 / max ms | push → REGISTER answered | REGISTER answered → INVITE | alice INVITE → 200 ms | server CPU s | server CPU ms per call | memory MiB |',
  '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];

function completed(r: Round): number {
  return r.results.filter((c) => c.status === 200 && c.endedAt > 0).length;
}

function roundRow(r: Round): string {
  const byStatus = new Map<number, number>();
  for (const c of r.results) byStatus.set(c.status, (byStatus.get(c.status) ?? 0) + 1);
  const answers = [...byStatus].map(([s, n]) => `${s === 0 ? 'none' : s} × ${fmt(n)}`).join(', ');
  const setup = r.results.filter((c) => c.answeredAt > 0).map((c) => c.answeredAt - c.startedAt);
  const cpuPerCall = (r.measured.cpuSeconds / Math.max(1, completed(r))) * 1000;
  return `| ${r.label}: ${fmt(r.calls)} | ${fmt(completed(r))} | ${answers} | ${fmt(r.pushes)} | ${r.pushedTwice} | ${r.invitedTwice} | ${spread(r.pushToInvite)} | ${spread(r.pushToRegistered)} | ${spread(r.registeredToInvite)} | ${spread(setup)} | ${r.measured.cpuSeconds.toFixed(2)} | ${cpuPerCall.toFixed(2)} | ${r.measured.memoryMiB.toFixed(0)} |`;
}

async function main(): Promise<void> {
  const devices = Number(process.argv[2] ?? 1000);
  const rate = Number(process.argv[3] ?? 100);
  if (!Number.isInteger(devices) || devices < 1 || !(rate > 0)) throw new TypeError('usage: push-wake [devices ≥ 1] [calls/s > 0]');
  const load = loadAverage();
  const apns = await startFakeApns();
  const keys = mkdtempSync(join(tmpdir(), 'bench-apns-'));
  const push = apnsPushConfig(apns, keys);
  const udpPort = await freePort();
  const tcpPort = await freePort();
  const server = await startServerProcess((dir) => benchConfig(dir, `udp:127.0.0.1:${udpPort}`, {
    // Every app connects from 127.0.0.1: the per-address cap (an office NAT's 1,000) would refuse the last ones.
    sip: { listen: [`udp:127.0.0.1:${udpPort}`, `tcp:127.0.0.1:${tcpPort}`], maxConnectionsPerIp: 10_000 },
    push,
  }));
  const target: BenchTarget = { name: 'softswitch', port: udpPort, cpuSeconds: () => server.cpuSeconds(), memoryMiB: () => server.memoryMiB(), stop: () => server.stop() };
  const users = benchUsers('app', WARMUP_APPS + devices);
  const apps = users.map((u) => new SleepingApp(u, { pnParam: `${apns.teamId}.${apns.bundleId}.voip` }, { port: tcpPort }));
  const warmup = apps.slice(0, WARMUP_APPS);
  const measured = apps.slice(WARMUP_APPS);
  let caller: Caller | undefined;
  try {
    await provisionSoftswitch(`sqlite:${join(server.dir, 'db.sqlite')}`, [ALICE, ...users]);
    const registering = performance.now();
    // Each app registers and goes to the background: iOS kills it, its connection closes.
    for (let i = 0; i < apps.length; i += REGISTER_CONCURRENCY) {
      await Promise.all(apps.slice(i, i + REGISTER_CONCURRENCY).map(async (a) => (await a.wake(), a.sleep())));
    }
    const registerSeconds = (performance.now() - registering) / 1000;
    await sleep(1000);

    const pushes = new PushLog(apns, new Map(apps.map((a) => [a.token, a])));
    caller = await Caller.open(ALICE, { port: udpPort });
    await callRound('warm-up', target, caller, warmup, rate, pushes);
    const asleep = await callRound('asleep', target, caller, measured, rate, pushes);
    // The same apps, now awake (their new connections live on): the same call without a push.
    pushes.forget(measured);
    const awake = await callRound('awake', target, caller, measured, rate, pushes);

    console.log(`node ${process.version}, sleeping iOS apps (raw TCP UAs, RFC 8599 pn-* Contact parameters, +sip.instance) woken by VoIP pushes through a local APNs (HTTP/2 + TLS, ES256 provider token), alice calling each over UDP at ${fmt(rate)} calls/s (407 digest MD5), ${HOLD_MS} ms hold, ${benchWorkers() === 1 ? 'one server process' : `${benchWorkers()} server workers (CPU summed over the primary and the workers)`}; load average before: ${load}`);
    console.log(`
${fmt(apps.length)} apps registered in ${registerSeconds.toFixed(1)} s (${REGISTER_CONCURRENCY} at a time), then put to sleep; ${WARMUP_APPS} woken first, unmeasured; calls offered over ${asleep.offeredSeconds.toFixed(1)} s; "awake": the same apps called again, their connections open (no push)
`);
    for (const line of ROUND_HEADER) console.log(line);
    console.log(roundRow(asleep));
    console.log(roundRow(awake));
    const cancels = apns.pushes.filter((p) => p.payload.kind === 'cancel').length;
    if (cancels > 0) console.log(`
${cancels} cancel pushes (devices pushed but not reached)`);
    if (pushes.wakeFailures.length > 0) console.log(`
${pushes.wakeFailures.length} apps failed to register after their push, e.g. ${pushes.wakeFailures[0]}`);
    const exact = (r: Round, wantPushes: number): boolean => completed(r) === r.calls && r.pushes === wantPushes && r.invitedTwice === 0;
    process.exitCode = exact(asleep, devices) && exact(awake, 0) ? 0 : 1;
  } finally {
    caller?.close();
    for (const a of apps) a.sleep();
    await server.stop();
    await apns.close();
    rmSync(keys, { recursive: true, force: true });
  }
}

if (realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url))) await main();
