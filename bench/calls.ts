/**
 * bench/calls: calls through the proxy over UDP, SIPp UAC → server → SIPp UAS. The UAS is a PSTN gateway
 * on 127.0.0.2 (uas-answer.xml), a backend the server reaches by a dialplan route (Kamailio: `$du` for
 * numbers); the UAC calls sip:+4930123456@example.com as alice: INVITE → 407 → ACK, INVITE with
 * credentials → 100/180/200 (Record-Routed) → ACK → pause → BYE → 200, ACK and BYE through the proxy
 * (uac-call.xml). `registerCallee` (a UAS registered as bob, the user → user path) is kept for call-setup.ts.
 * First a fixed-rate run, then a step-up search over rising rates (each bounded in calls and time) for the
 * highest rate with at most 0.1 % failed calls. Reports calls/s, failures, retransmissions, the server's
 * CPU seconds per 1000 calls and its RSS. A short warm-up runs first, unmeasured.
 * Usage: node dist/bench/calls.js [calls, default 5000] [rate/s, default 500]; BENCH_STEPS=200,400,… sets the step-up rates.
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/tools.js';
import {
  BENCH_DOMAIN, type BenchTarget, type BenchUser, type Measured, benchWorkers, failureSummary, fmt, loadAverage, measure, sippCommon,
  sippScenarios, sleep, startSipp, startSoftswitchTarget, waitUdpBound, writeInjectionFile,
} from './lib.js';

export const ALICE: BenchUser = { username: 'alice', password: 'alice-bench-secret' };
export const BOB: BenchUser = { username: 'bob', password: 'bob-bench-secret' };

/** The callee's SIPp UAS: where it listens, and the user part alice dials. */
export interface Callee {
  readonly port: number;
  /** Its address; 127.0.0.1 when not given. */
  readonly address?: string;
  /** The Request-URI user alice calls: bob (registered), or a number the dialplan sends to the gateway. */
  readonly dialled: string;
}

/** The number the calls bench dials. */
export const DIALLED = '+4930123456';
/** The gateway's own loopback address (see Gateway in lib.ts). */
export const GATEWAY_ADDRESS = '127.0.0.2';

/**
 * The callee of the calls bench: a SIPp UAS as the PSTN gateway, reached by a dialplan route (the
 * softswitch) or a `$du` for numbers (Kamailio, bench/kamailio/kamailio.cfg); the target is started with it.
 */
export async function gatewayCallee(): Promise<Callee & { address: string }> {
  return { port: await freePort(), address: GATEWAY_ADDRESS, dialled: DIALLED };
}

/** One REGISTER of bob from `port` (Expires 3600), before the UAS scenario takes the port over. */
export async function registerCallee(target: BenchTarget): Promise<Callee> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-callee-'));
  try {
    const port = await freePort();
    const sipp = startSipp([
      `127.0.0.1:${target.port}`, '-sf', join(sippScenarios, 'register.xml'), '-inf', writeInjectionFile(join(dir, 'bob.csv'), [BOB]),
      '-key', 'aor_domain', BENCH_DOMAIN, ...sippCommon(port), '-m', '1', '-timeout', '15s',
    ], 20);
    const r = await sipp.done;
    if (r.successful !== 1) throw new Error(`bob could not register on ${target.name}:\n${r.errors}`);
    return { port, dialled: BOB.username };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface CallResult {
  target: string;
  calls: number;
  rate: number;
  /** Calls per second SIPp managed to start. */
  achieved: number;
  successful: number;
  failed: number;
  /** Retransmissions seen by the UAC and by the UAS. */
  retransUac: number;
  retransUas: number;
  seconds: number;
  measured: Measured;
  cpuPer1000: number;
  /** CPU seconds of SIPp (UAC and UAS) over the run. */
  sippCpuSeconds: number;
  errors: string;
  failures: string;
}

export interface CallLoad {
  calls: number;
  rate: number;
  /** Between the ACK and the BYE, ms. */
  pauseMs: number;
}

const SETTLE_MS = 1000;

/** Failed calls allowed for a rate to count as sustained, and the share of the target rate SIPp must reach. */
export const MAX_FAILED_SHARE = 0.001;
const MIN_ACHIEVED_SHARE = 0.95;

export function sustained(r: CallResult): boolean {
  return r.failed <= r.calls * MAX_FAILED_SHARE && r.achieved >= r.rate * MIN_ACHIEVED_SHARE;
}

/** Runs `calls` calls at `rate`/s from alice to bob through the target; the UAS lives for this run only. */
export async function runCallLoad(target: BenchTarget, callee: Callee, load: CallLoad): Promise<CallResult> {
  const limit = Math.ceil(load.calls / load.rate + load.pauseMs / 1000) + 30;
  const uas = startSipp([
    '-sf', join(sippScenarios, 'uas-answer.xml'), '-key', 'callee', callee.dialled, ...sippCommon(callee.port, callee.address), '-timeout', `${limit + 5}s`,
  ], limit + 10);
  try {
    await waitUdpBound(callee.port);
    const uacPort = await freePort();
    const stopMeasuring = measure(target);
    const uac = startSipp([
      `127.0.0.1:${target.port}`, '-sf', join(sippScenarios, 'uac-call.xml'),
      '-key', 'caller', ALICE.username, '-key', 'callee', callee.dialled, '-key', 'aor_domain', BENCH_DOMAIN,
      '-au', ALICE.username, '-ap', ALICE.password, '-auth_uri', `${callee.dialled}@${BENCH_DOMAIN}`,
      ...sippCommon(uacPort), '-d', String(load.pauseMs), '-m', String(load.calls), '-r', String(load.rate), '-rp', '1000',
      '-l', String(Math.max(100, Math.ceil(load.rate * (load.pauseMs / 1000 + 1) * 3))), '-timeout', `${limit}s`,
    ], limit + 5);
    const r = await uac.done;
    const u = await uas.stop();
    await sleep(SETTLE_MS);
    const measured = stopMeasuring();
    return {
      target: target.name,
      calls: load.calls,
      rate: load.rate,
      achieved: r.createSeconds > 0 ? r.created / r.createSeconds : 0,
      successful: r.successful,
      failed: r.failed + (load.calls - r.successful - r.failed),
      retransUac: r.retransmissions,
      retransUas: u.retransmissions,
      seconds: r.seconds,
      measured,
      sippCpuSeconds: r.cpuSeconds + u.cpuSeconds,
      cpuPer1000: r.successful > 0 ? (measured.cpuSeconds / r.successful) * 1000 : Number.NaN,
      errors: r.errors || u.errors,
      failures: failureSummary(r.failures),
    };
  } finally {
    await uas.stop(500);
  }
}

export const CALLS_HEADER = [
  '| server | calls | target/s | achieved/s | completed | failed | retrans UAC / UAS | server UDP drops | server CPU s | CPU s per 1000 calls | memory MiB | SIPp CPU s |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];

export function callRow(r: CallResult, label = r.target): string {
  const m = r.measured;
  return `| ${label} | ${fmt(r.calls)} | ${fmt(r.rate)} | ${fmt(r.achieved)} | ${fmt(r.successful)} | ${fmt(r.failed)} | ${fmt(r.retransUac)} / ${fmt(r.retransUas)} | ${fmt(m.udpDrops)} | ${m.cpuSeconds.toFixed(2)} | ${r.cpuPer1000.toFixed(3)} | ${m.memoryMiB.toFixed(0)} | ${r.sippCpuSeconds.toFixed(2)} |`;
}

/** Unmeasured calls before the measured runs, so that the JIT has compiled the hot paths. */
export const WARMUP: CallLoad = { calls: 600, rate: 200, pauseMs: 200 };
export const PAUSE_MS = 500;
const STEPS = (process.env.BENCH_STEPS ?? '200,400,600,800,1000,1200').split(",").map(Number);
const STEP_SECONDS = 8;

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 5000);
  const rate = Number(process.argv[3] ?? 500);
  if (!Number.isInteger(calls) || calls < 1 || !(rate > 0)) throw new TypeError('usage: calls [calls ≥ 1] [rate/s > 0]');
  const load = loadAverage();
  const callee = await gatewayCallee();
  const target = await startSoftswitchTarget(await freePort(), [ALICE], callee);
  const fixed: CallResult[] = [];
  const steps: CallResult[] = [];
  try {
    await runCallLoad(target, callee, WARMUP);
    fixed.push(await runCallLoad(target, callee, { calls, rate, pauseMs: PAUSE_MS }));
    for (const step of STEPS) {
      const r = await runCallLoad(target, callee, { calls: step * STEP_SECONDS, rate: step, pauseMs: PAUSE_MS });
      steps.push(r);
      if (!sustained(r)) break;
    }
  } finally {
    await target.stop();
  }
  console.log(`node ${process.version}, calls alice → ${DIALLED} through the proxy (407 digest MD5, dialplan route to a SIPp gateway on ${GATEWAY_ADDRESS}, Record-Route), UDP on 127.0.0.1, ${PAUSE_MS} ms between ACK and BYE, ${benchWorkers() === 1 ? "one server process" : `${benchWorkers()} server workers (CPU summed over the primary and the workers)`}; warm-up ${WARMUP.calls} calls unmeasured; load average before: ${load}`);
  console.log('\nfixed rate');
  for (const line of CALLS_HEADER) console.log(line);
  for (const r of fixed) console.log(callRow(r));
  console.log(`\nstep-up (${STEP_SECONDS} s of calls per step; a step passes with ≤ ${MAX_FAILED_SHARE * 100} % failed calls and ≥ ${MIN_ACHIEVED_SHARE * 100} % of the target rate reached)`);
  for (const line of CALLS_HEADER) console.log(line);
  for (const r of steps) console.log(callRow(r, `${r.target}${sustained(r) ? '' : ' ✗'}`));
  const best = steps.filter(sustained).pop();
  console.log(best
    ? `\nhighest sustained rate: ${fmt(best.rate)} calls/s (${fmt(best.achieved)} achieved, ${best.failed} failed of ${fmt(best.calls)})${best === steps[steps.length - 1] && steps.length === STEPS.length ? ' — the last step: SIPp or the machine may be the limit, not the server' : ''}`
    : '\nno step sustained');
  for (const r of [...fixed, ...steps]) if (r.failed > 0) console.log(`\nfailed calls at ${r.rate}/s by cause: ${r.failures}`);
  process.exitCode = fixed[0] && fixed[0].successful > 0 ? 0 : 1;
}

if (realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url))) await main();
