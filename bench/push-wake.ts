/**
 * bench/push-wake: the push call server (RFC 8599) waking a crowd. 1,000 iOS apps (bench/push-wake-ua.ts,
 * raw TCP) register with pn-provider=apns, pn-prid and pn-param, then sleep (their connections close, their
 * bindings stay asleep). alice calls each of them over UDP at 100 calls/s: the server holds each INVITE, sends
 * a VoIP push to a local APNs (support/fake-apns.ts: HTTP/2 over TLS, ES256 provider token checked); on the
 * push the app connects again, registers, is sent the held INVITE, answers, and alice hangs up after a short
 * hold.
 *
 * Measured: push sent (the APNs received it) → INVITE delivered to the woken app (p50/p95/max), split into
 * the app's own part (push → its REGISTER answered: connect, 401, REGISTER again) and the server's (REGISTER
 * answered → INVITE delivered); alice's INVITE → 200; calls completed; pushes per call and INVITEs per app
 * (both should be exactly 1); the server's CPU per woken call over the calling phase, and its memory. The apps
 * wake at once, so the latency is the server's and the loopback's, not iOS's (a real app takes 1–3 s to start).
 * Usage: node dist/bench/push-wake.js [devices, default 1000] [calls/s, default 100]
 */
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ApnsPush, startFakeApns } from '../support/fake-apns.js';
import { freePort } from '../support/tools.js';
import { type BenchTarget, type BenchUser, benchConfig, benchUsers, benchWorkers, fmt, loadAverage, measure, provisionSoftswitch, sleep, startServerProcess } from './lib.js';
import { type CallOutcome, Caller, SleepingApp } from './push-wake-ua.js';

const ALICE: BenchUser = { username: 'alice', password: 'alice-bench-secret' };
/** Apps registering at the same time before the run. */
const REGISTER_CONCURRENCY = 50;
/** Between alice's ACK and her BYE, ms. */
const HOLD_MS = 500;
/** Longest a call may take, ms (the server's wake timeout is 20 s). */
const CALL_TIMEOUT_MS = 25_000;

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** `p50 / p95 / max` of a sample, ms. */
function spread(sample: number[]): string {
  const sorted = [...sample].sort((a, b) => a - b);
  return `${fmt(percentile(sorted, 50), 1)} / ${fmt(percentile(sorted, 95), 1)} / ${fmt(sorted[sorted.length - 1] ?? Number.NaN, 1)}`;
}

async function main(): Promise<void> {
  const devices = Number(process.argv[2] ?? 1000);
  const rate = Number(process.argv[3] ?? 100);
  if (!Number.isInteger(devices) || devices < 1 || !(rate > 0)) throw new TypeError('usage: push-wake [devices ≥ 1] [calls/s > 0]');
  const load = loadAverage();
  const apns = await startFakeApns();
  const keys = mkdtempSync(join(tmpdir(), 'bench-apns-'));
  const keyFile = join(keys, 'AuthKey.p8');
  const caFile = join(keys, 'apns-ca.pem');
  writeFileSync(keyFile, apns.keyPem, { mode: 0o600 });
  writeFileSync(caFile, apns.ca);
  const udpPort = await freePort();
  const tcpPort = await freePort();
  const server = await startServerProcess((dir) => benchConfig(dir, `udp:127.0.0.1:${udpPort}`, {
    sip: { listen: [`udp:127.0.0.1:${udpPort}`, `tcp:127.0.0.1:${tcpPort}`] },
    push: { caFile, apns: { keyFile, keyId: apns.keyId, teamId: apns.teamId, bundleId: apns.bundleId, endpoint: apns.url } },
  }));
  const target: BenchTarget = { name: 'softswitch', port: udpPort, cpuSeconds: () => server.cpuSeconds(), memoryMiB: () => server.memoryMiB(), stop: () => server.stop() };
  const users = benchUsers('app', devices);
  const apps = users.map((u) => new SleepingApp(u, { pnParam: `${apns.teamId}.${apns.bundleId}.voip` }, { port: tcpPort }));
  const byToken = new Map(apps.map((a) => [a.token, a]));
  let caller: Caller | undefined;
  try {
    await provisionSoftswitch(`sqlite:${join(server.dir, 'db.sqlite')}`, [ALICE, ...users]);

    // Every app registers, then sleeps.
    const registering = performance.now();
    for (let i = 0; i < apps.length; i += REGISTER_CONCURRENCY) await Promise.all(apps.slice(i, i + REGISTER_CONCURRENCY).map((a) => a.wake()));
    const registerSeconds = (performance.now() - registering) / 1000;
    for (const a of apps) a.sleep();
    await sleep(1000);

    // On each push, iOS starts the app: it connects and registers again at once.
    const pushedAt = new Map<SleepingApp, number>();
    const pushesPerApp = new Map<SleepingApp, number>();
    const wakeFailures: string[] = [];
    apns.on('push', (push: ApnsPush) => {
      const app = byToken.get(push.token);
      if (app === undefined || push.payload.kind !== 'call') return;
      pushesPerApp.set(app, (pushesPerApp.get(app) ?? 0) + 1);
      if (pushedAt.has(app)) return;
      pushedAt.set(app, performance.now());
      app.wake().catch((err: Error) => wakeFailures.push(err.message));
    });

    caller = await Caller.open(ALICE, { port: udpPort });
    const stopMeasuring = measure(target);
    const calling = performance.now();
    const outcomes: Array<Promise<CallOutcome>> = [];
    for (let i = 0; i < apps.length; i++) {
      const due = calling + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      outcomes.push(caller.call(apps[i]!.user.username, HOLD_MS, CALL_TIMEOUT_MS));
    }
    const offeredSeconds = (performance.now() - calling) / 1000;
    const results = await Promise.all(outcomes);
    await sleep(500);
    const measured = stopMeasuring();

    const completed = results.filter((r) => r.status === 200 && r.endedAt > 0).length;
    const byStatus = new Map<number, number>();
    for (const r of results) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    const pushToInvite: number[] = [];
    const pushToRegistered: number[] = [];
    const registeredToInvite: number[] = [];
    for (const a of apps) {
      const pushed = pushedAt.get(a);
      const invited = [...a.invites.values()][0];
      if (pushed === undefined || invited === undefined) continue;
      pushToInvite.push(invited - pushed);
      pushToRegistered.push(a.registeredAt - pushed);
      registeredToInvite.push(invited - a.registeredAt);
    }
    const setup = results.filter((r) => r.answeredAt > 0).map((r) => r.answeredAt - r.startedAt);
    const pushes = [...pushesPerApp.values()].reduce((s, n) => s + n, 0);
    const multiPushed = [...pushesPerApp.values()].filter((n) => n > 1).length;
    const multiInvited = apps.filter((a) => a.invites.size > 1).length;
    const cancels = apns.pushes.filter((p) => p.payload.kind === 'cancel').length;

    console.log(`node ${process.version}, ${fmt(devices)} sleeping iOS apps (raw TCP UAs, RFC 8599 pn-* Contact parameters, +sip.instance) woken by VoIP pushes through a local APNs (HTTP/2 + TLS, ES256 provider token), alice calling each over UDP at ${fmt(rate)} calls/s (407 digest MD5), ${HOLD_MS} ms hold, ${benchWorkers() === 1 ? 'one server process' : `${benchWorkers()} server workers`}; load average before: ${load}`);
    console.log(`\n${fmt(devices)} apps registered in ${registerSeconds.toFixed(1)} s (${REGISTER_CONCURRENCY} at a time), then put to sleep; calls offered over ${offeredSeconds.toFixed(1)} s\n`);
    console.log('| calls | completed | final answers | pushes (call / cancel) | apps pushed twice | apps with 2+ INVITEs | push → INVITE delivered p50 / p95 / max ms | push → REGISTER answered ms | REGISTER answered → INVITE ms | alice INVITE → 200 ms | server CPU s | server CPU ms per woken call | memory MiB |');
    console.log('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    console.log(`| ${fmt(devices)} | ${fmt(completed)} | ${[...byStatus].map(([s, n]) => `${s === 0 ? 'none' : s} × ${fmt(n)}`).join(', ')} | ${fmt(pushes)} / ${fmt(cancels)} | ${multiPushed} | ${multiInvited} | ${spread(pushToInvite)} | ${spread(pushToRegistered)} | ${spread(registeredToInvite)} | ${spread(setup)} | ${measured.cpuSeconds.toFixed(2)} | ${fmt((measured.cpuSeconds / Math.max(1, pushToInvite.length)) * 1000, 2)} | ${measured.memoryMiB.toFixed(0)} |`);
    if (wakeFailures.length > 0) console.log(`\n${wakeFailures.length} apps failed to register after their push, e.g. ${wakeFailures[0]}`);
    process.exitCode = completed === devices && multiPushed === 0 && multiInvited === 0 ? 0 : 1;
  } finally {
    caller?.close();
    for (const a of apps) a.sleep();
    await server.stop();
    await apns.close();
    rmSync(keys, { recursive: true, force: true });
  }
}

if (realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url))) await main();
