/**
 * bench/call-setup: call-setup time (the authenticated INVITE to its 200 OK, as the caller sees it) through
 * the proxy with rtpengine in the path, against the same server without it. SIPp UAC (alice) → softswitch
 * → SIPp UAS (bob), UDP on 127.0.0.1, the scenarios of bench/calls (uac-call.xml / uas-answer.xml). With
 * `media.alwaysRelay: true` the plain ⇄ plain call goes through rtpengine: an ng `offer` on the INVITE and
 * an `answer` on the 200 (and a `delete` on the BYE), so the setup time includes two ng round trips.
 *
 * Each call is timed from SIPp's message trace (microsecond timestamps): the INVITE that carries
 * credentials to its 200. Reported: median, p90, p99 and max in ms, for calls at a moderate rate (a few
 * calls in flight), after an unmeasured warm-up.
 * Usage: node dist/bench/call-setup.js [calls, default 1000] [rate/s, default 50]
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRtpengine, type RtpengineHandle } from '../support/rtpengine.js';
import { freePort } from '../support/tools.js';
import { ALICE, BOB, registerCallee } from './calls.js';
import {
  BENCH_DOMAIN, type BenchTarget, benchConfig, fmt, loadAverage, provisionSoftswitch, sippCommon, sippScenarios,
  startServerProcess, startSipp, waitUdpBound,
} from './lib.js';

const PAUSE_MS = 100;
/** rtpengine's port range here: every call in flight takes 4 ports (RTP and RTCP on each side). */
const RTP_PORT_MIN = 30000;
const RTP_PORT_MAX = 39999;
const WARMUP_CALLS = 200;

/** The softswitch, with or without rtpengine nodes and media.alwaysRelay. */
async function startTarget(name: string, port: number, rtpengine: RtpengineHandle | undefined): Promise<BenchTarget> {
  const server = await startServerProcess((dir) =>
    benchConfig(dir, `udp:127.0.0.1:${port}`, { media: { rtpengine: rtpengine ? [rtpengine.ng] : [], alwaysRelay: rtpengine !== undefined } }));
  try {
    await provisionSoftswitch(`sqlite:${join(server.dir, 'db.sqlite')}`, [ALICE, BOB]);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { name, port, cpuSeconds: () => server.cpuSeconds(), memoryMiB: () => server.memoryMiB(), stop: () => server.stop() };
}

export interface SetupResult {
  target: string;
  calls: number;
  rate: number;
  successful: number;
  failed: number;
  /** Setup times, ms, sorted. */
  times: number[];
  /** 200s whose SDP names an rtpengine port: calls whose media rtpengine relayed. */
  relayed: number;
  serverCpuPer1000: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function runTimedCalls(target: BenchTarget, calleePort: number, calls: number, rate: number): Promise<SetupResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-call-setup-'));
  const limit = Math.ceil(calls / rate) + 30;
  const uas = startSipp(['-sf', join(sippScenarios, 'uas-answer.xml'), '-key', 'callee', BOB.username, ...sippCommon(calleePort), '-timeout', `${limit + 5}s`], limit + 10);
  try {
    await waitUdpBound(calleePort);
    const cpu0 = target.cpuSeconds();
    const trace = join(dir, 'messages.log');
    const uac = startSipp([
      `127.0.0.1:${target.port}`, '-sf', join(sippScenarios, 'uac-call.xml'),
      '-key', 'caller', ALICE.username, '-key', 'callee', BOB.username, '-key', 'aor_domain', BENCH_DOMAIN,
      '-au', ALICE.username, '-ap', ALICE.password, '-auth_uri', `${BOB.username}@${BENCH_DOMAIN}`,
      ...sippCommon(await freePort()), '-d', String(PAUSE_MS), '-m', String(calls), '-r', String(rate), '-rp', '1000',
      '-timeout', `${limit}s`, '-trace_msg', '-message_file', trace,
    ], limit + 5);
    const r = await uac.done;
    await uas.stop(500);
    const cpu = target.cpuSeconds() - cpu0;
    const { times, relayed } = setupTimesFromTrace(readFileSync(trace, 'utf8'));
    times.sort((a, b) => a - b);
    return {
      target: target.name, calls, rate, successful: r.successful, failed: r.failed + (calls - r.successful - r.failed), times, relayed,
      serverCpuPer1000: r.successful > 0 ? (cpu / r.successful) * 1000 : Number.NaN,
    };
  } finally {
    await uas.stop(500);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Setup times from SIPp's message trace (-trace_msg: every message with a microsecond timestamp; SIPp's own
 * -trace_rtt counts whole milliseconds, too coarse here): per Call-ID, from the first sending of the
 * INVITE with CSeq 2 (the one with credentials) to the first 200 for it.
 */
export function setupTimesFromTrace(trace: string): { times: number[]; relayed: number } {
  const sent = new Map<string, number>();
  const times: number[] = [];
  let relayed = 0;
  const done = new Set<string>();
  for (const block of trace.split(/^-{20,} /m)) {
    const m = /^(\d{4}-\d\d-\d\d) (\d\d):(\d\d):(\d\d(?:\.\d+)?)\s*\n\S+ message (sent|received)/.exec(block);
    if (!m) continue;
    const t = (Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4])) * 1000;
    const callId = /^Call-ID:\s*(\S+)/im.exec(block)?.[1];
    const cseq = /^CSeq:\s*(\d+)\s+(\w+)/im.exec(block);
    if (!callId || !cseq || cseq[1] !== '2' || cseq[2] !== 'INVITE') continue;
    if (m[5] === 'sent' && /^\s*INVITE /m.test(block) && !sent.has(callId)) sent.set(callId, t);
    else if (m[5] === 'received' && /^\s*SIP\/2\.0 200 /m.test(block) && !done.has(callId)) {
      const start = sent.get(callId);
      if (start === undefined) continue;
      done.add(callId);
      const port = Number(/^m=audio (\d+) /m.exec(block)?.[1]);
      if (port >= RTP_PORT_MIN && port <= RTP_PORT_MAX) relayed++;
      times.push(t >= start ? t - start : t + 86_400_000 - start); // across midnight
    }
  }
  return { times, relayed };
}

export const SETUP_HEADER = [
  '| server | calls | rate/s | completed | failed | media via rtpengine | median ms | p90 ms | p99 ms | max ms | server CPU s per 1000 calls |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];

export function setupRow(r: SetupResult): string {
  const t = r.times;
  return `| ${r.target} | ${fmt(r.calls)} | ${fmt(r.rate)} | ${fmt(r.successful)} | ${fmt(r.failed)} | ${fmt(r.relayed)} | ${percentile(t, 50).toFixed(2)} | ${percentile(t, 90).toFixed(2)} | ${percentile(t, 99).toFixed(2)} | ${(t[t.length - 1] ?? Number.NaN).toFixed(2)} | ${r.serverCpuPer1000.toFixed(3)} |`;
}

async function measureTarget(name: string, rtpengine: RtpengineHandle | undefined, calls: number, rate: number): Promise<SetupResult> {
  const target = await startTarget(name, await freePort(), rtpengine);
  try {
    const callee = await registerCallee(target);
    await runTimedCalls(target, callee.port, WARMUP_CALLS, rate);
    return await runTimedCalls(target, callee.port, calls, rate);
  } finally {
    await target.stop();
  }
}

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 1000);
  const rate = Number(process.argv[3] ?? 50);
  if (!Number.isInteger(calls) || calls < 1 || !(rate > 0)) throw new TypeError('usage: call-setup [calls ≥ 1] [rate/s > 0]');
  const load = loadAverage();
  // later options win: a range that holds every call in flight
  const rtpengine = await startRtpengine({ args: [`--port-min=${RTP_PORT_MIN}`, `--port-max=${RTP_PORT_MAX}`] });
  const results: SetupResult[] = [];
  try {
    results.push(await measureTarget('softswitch, no relay', undefined, calls, rate));
    results.push(await measureTarget('softswitch + rtpengine (alwaysRelay)', rtpengine, calls, rate));
  } finally {
    await rtpengine.stop();
  }
  console.log(`node ${process.version}, call setup (authenticated INVITE → 200, SIPp message-trace timestamps) alice → bob through the proxy, UDP on 127.0.0.1, ${PAUSE_MS} ms between ACK and BYE, one server process, rtpengine userspace (--table=-1) on 127.0.0.1; warm-up ${WARMUP_CALLS} calls unmeasured; load average before: ${load}`);
  for (const line of SETUP_HEADER) console.log(line);
  for (const r of results) console.log(setupRow(r));
  const failed = results.some((r) => r.successful === 0 || r.times.length === 0) || results[1]!.relayed === 0;
  if (failed) console.log('\nno setup times, or rtpengine relayed no call: see SIPp and the server');
  process.exitCode = failed ? 1 : 0;
}

if (realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url))) await main();
