/**
 * bench/register: REGISTER with digest authentication over UDP, SIPp → server. N distinct users are
 * provisioned first; SIPp registers each once (REGISTER → 401 → REGISTER with credentials → 200, the user
 * and password read from an injection file) at a fixed rate. Reports REGISTERs/s, failures, the server's
 * CPU seconds per 1000 REGISTERs (two transactions each: the challenge and the registration) and its RSS.
 * A warm-up of other users runs first, unmeasured, so that the JIT has compiled the hot paths.
 * Usage: node dist/bench/register.js [users, default 2000] [rate/s, default 500]
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/tools.js';
import {
  BENCH_DOMAIN, type BenchTarget, type BenchUser, type Measured, benchUsers, failureSummary, fmt, loadAverage, measure,
  sippCommon, sippScenarios, sleep, startSipp, startSoftswitchTarget, writeInjectionFile,
} from './lib.js';

export interface RegisterResult {
  target: string;
  users: number;
  rate: number;
  /** REGISTERs offered per second as SIPp managed to send them. */
  achieved: number;
  successful: number;
  failed: number;
  retransmissions: number;
  seconds: number;
  measured: Measured;
  cpuPer1000: number;
  /** CPU seconds of SIPp (UAC and UAS) over the run. */
  sippCpuSeconds: number;
  errors: string;
  failures: string;
}

/** Time the server gets after SIPp ends to finish what it queued (write-behind, timers) before CPU is read. */
const SETTLE_MS = 1000;

/** Registers every user once, at `rate` per second, and measures the server's CPU over the run. */
export async function runRegisterLoad(target: BenchTarget, users: readonly BenchUser[], rate: number): Promise<RegisterResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-register-'));
  try {
    const inf = writeInjectionFile(join(dir, 'users.csv'), users);
    const sippPort = await freePort();
    const stopMeasuring = measure(target);
    const sipp = startSipp([
      `127.0.0.1:${target.port}`, '-sf', join(sippScenarios, 'register.xml'), '-inf', inf, '-key', 'aor_domain', BENCH_DOMAIN,
      ...sippCommon(sippPort), '-m', String(users.length), '-r', String(rate), '-rp', '1000', '-timeout', `${Math.ceil(users.length / rate) + 30}s`,
    ], Math.ceil(users.length / rate) + 40);
    const r = await sipp.done;
    await sleep(SETTLE_MS);
    const measured = stopMeasuring();
    return {
      target: target.name,
      users: users.length,
      rate,
      achieved: r.createSeconds > 0 ? r.created / r.createSeconds : 0,
      successful: r.successful,
      failed: r.failed + (users.length - r.successful - r.failed),
      retransmissions: r.retransmissions,
      seconds: r.seconds,
      measured,
      sippCpuSeconds: r.cpuSeconds,
      cpuPer1000: r.successful > 0 ? (measured.cpuSeconds / r.successful) * 1000 : Number.NaN,
      errors: r.errors,
      failures: failureSummary(r.failures),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const REGISTER_HEADER = [
  '| server | users | target/s | achieved/s | 200 OK | failed | retransmissions | server UDP drops | server CPU s | CPU s per 1000 REGISTERs | memory MiB | SIPp CPU s |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];

export function registerRow(r: RegisterResult): string {
  const m = r.measured;
  return `| ${r.target} | ${fmt(r.users)} | ${fmt(r.rate)} | ${fmt(r.achieved)} | ${fmt(r.successful)} | ${fmt(r.failed)} | ${fmt(r.retransmissions)} | ${fmt(m.udpDrops)} | ${m.cpuSeconds.toFixed(2)} | ${r.cpuPer1000.toFixed(3)} | ${m.memoryMiB.toFixed(0)} | ${r.sippCpuSeconds.toFixed(2)} |`;
}

/** Users the warm-up registers, never the measured ones: the measured run creates fresh bindings only. */
export const WARMUP_USERS = 500;

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 2000);
  const rate = Number(process.argv[3] ?? 500);
  if (!Number.isInteger(count) || count < 1 || !(rate > 0)) throw new TypeError('usage: register [users ≥ 1] [rate/s > 0]');
  const users = benchUsers('u', count);
  const warmup = benchUsers('w', WARMUP_USERS);
  const load = loadAverage();
  const started = Date.now();
  const target = await startSoftswitchTarget(await freePort(), [...users, ...warmup]);
  const provisioned = (Date.now() - started) / 1000;
  let r: RegisterResult;
  try {
    await runRegisterLoad(target, warmup, Math.min(rate, 250));
    r = await runRegisterLoad(target, users, rate);
  } finally {
    await target.stop();
  }
  console.log(`node ${process.version}, ${fmt(count)} users (provisioned in ${provisioned.toFixed(1)} s, plus ${WARMUP_USERS} warm-up users registered first, unmeasured), REGISTER with MD5 digest auth over UDP on 127.0.0.1, one server process; load average before: ${load}`);
  for (const line of REGISTER_HEADER) console.log(line);
  console.log(registerRow(r));
  if (r.failed > 0) console.log(`\nfailed REGISTERs by cause: ${r.failures}\nSIPp errors (start):\n${r.errors}`);
  process.exitCode = r.successful === 0 ? 1 : 0;
}

if (realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url))) await main();
