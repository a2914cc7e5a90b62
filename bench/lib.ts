/** Shared pieces of the load benchmarks: start the server as its own process, read its CPU, drive SIPp. */
import { stringify as stringifyYaml } from 'yaml';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/log/index.js';
import { openStore } from '../platform/store/index.js';

export const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim() || 100);

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  dir: string;
  /** Worker processes (`--workers`); 1: the server is the one process `pid`. */
  workers: number;
  /** user+system CPU seconds of the server: the process and, with workers, every worker it forked. */
  cpuSeconds(): number;
  /** RSS of the one process, or with workers the PSS summed over the primary and its workers, MiB. */
  memoryMiB(): number;
  stop(): Promise<void>;
}

/**
 * Worker processes for the servers the benches start: `BENCH_WORKERS=2 npm run bench -- calls`. Default 1
 * (`softswitch start` alone would take one per core), so that the figures stay those of one process.
 */
export function benchWorkers(): number {
  const n = Number(process.env.BENCH_WORKERS ?? 1);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`BENCH_WORKERS must be a whole number ≥ 1, got ${process.env.BENCH_WORKERS}`);
  return n;
}

/** Extra Node flags for the server, e.g. `BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'`. */
function nodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

/** Starts `softswitch start` with a YAML config (as text) and waits for it to listen. */
export async function startServerProcess(yaml: (dir: string) => string, workers = benchWorkers()): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'softswitch-bench-'));
  writeFileSync(join(dir, 'softswitch.yaml'), yaml(dir));
  const main = join(repoRoot, 'dist', 'server', 'main.js');
  const child = spawn(process.execPath, [...nodeArgs(), main, 'start', '--config', join(dir, 'softswitch.yaml'), '--workers', String(workers)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // BENCH_SERVER_OUT=file keeps everything the server prints (e.g. with BENCH_NODE_ARGS=--trace-gc).
  const keep = process.env.BENCH_SERVER_OUT ? createWriteStream(process.env.BENCH_SERVER_OUT) : undefined;
  if (keep) child.stdout!.pipe(keep);
  child.stdout!.on('data', (d: Buffer) => (out.length < 100_000 ? (out += d.toString()) : undefined));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 15_000;
  const ready = workers > 1 ? '"cluster started"' : '"listening"';
  while (!out.includes(ready)) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid!;
  return {
    child,
    pid,
    dir,
    workers,
    cpuSeconds: () => (workers > 1 ? treeCpuSeconds(pid) : cpuSeconds(pid)),
    memoryMiB: () => (workers > 1 ? processTree(pid).reduce((sum, p) => sum + pssMiB(p), 0) : rssMiB(pid)),
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** user+system CPU seconds of a process and its threads, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : 0;
}

export interface SippRun {
  successful: number;
  failed: number;
  retransmissions: number;
  seconds: number;
}

/** Runs SIPp to completion and reads its final statistics (-trace_stat CSV). */
export function runSipp(args: string[], timeoutSeconds: number): SippRun {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-bench-'));
  const stf = join(dir, 'stats.csv');
  const started = process.hrtime.bigint();
  const r = spawnSync('sipp', [...args, '-nostdin', '-trace_stat', '-stf', stf, '-fd', '1'], {
    cwd: dir, encoding: 'utf8', timeout: timeoutSeconds * 1000, maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.error) throw r.error;
  const lines = readFileSync(stf, 'utf8').trim().split('\n');
  rmSync(dir, { recursive: true, force: true });
  const header = lines[0]!.split(';');
  const last = lines[lines.length - 1]!.split(';');
  const col = (name: string) => Number(last[header.indexOf(name)] ?? 0);
  return {
    successful: col('SuccessfulCall(C)'),
    failed: col('FailedCall(C)'),
    retransmissions: col('Retransmissions(C)'),
    seconds,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Load runs with authentication (register, calls, kamailio): users, the softswitch under test, SIPp in the
// background, and what a server under test has to offer the runs (its port and its CPU).

/** The domain every load run serves: sip.domain of the softswitch, alias and digest realm of Kamailio. */
export const BENCH_DOMAIN = 'example.com';
export const sippScenarios = join(repoRoot, 'bench', 'sipp');

export interface BenchUser {
  username: string;
  password: string;
}

/** `count` users named PREFIX000001 …, each with its own password. */
export function benchUsers(prefix: string, count: number): BenchUser[] {
  return Array.from({ length: count }, (_, i) => {
    const username = `${prefix}${String(i + 1).padStart(6, '0')}`;
    return { username, password: `pw-${username}` };
  });
}

/** A SIPp injection file (-inf): one `user;password` line per call, in order. */
export function writeInjectionFile(path: string, users: readonly BenchUser[]): string {
  writeFileSync(path, `SEQUENTIAL\n${users.map((u) => `${u.username};${u.password}`).join('\n')}\n`);
  return path;
}

/**
 * The configuration of a bench server: one listener, the bench domain, MD5 challenges only, info logs
 * (startServerProcess waits for the "listening" line), a SQLite store in `dir`; `more` adds sections
 * (its `sip` keys are merged into the listener's).
 */
export function benchConfig(dir: string, listen: string, more: Record<string, unknown> = {}, storeFile = join(dir, 'db.sqlite')): string {
  const { sip, ...rest } = more;
  return stringifyYaml({
    sip: { listen: [listen], domain: [BENCH_DOMAIN], ...(sip as object | undefined) },
    auth: { algorithms: ['MD5'] },
    log: { level: 'info' },
    dataDir: dir,
    http: { listen: '127.0.0.1:0' },
    turn: { listen: '127.0.0.1:0' },
    store: { url: `sqlite:${storeFile}` },
    ...rest,
  });
}

/**
 * The PSTN gateway of the calls bench (a SIPp UAS): its own loopback address, so that the callers on
 * 127.0.0.1 are not at a backend's address, which the softswitch trusts without digest auth.
 */
export interface Gateway {
  readonly address: string;
  readonly port: number;
}

/** A server the load runs drive: where it listens, and its CPU and memory as the kernel counts them. */
export interface BenchTarget {
  readonly name: string;
  /** UDP port on 127.0.0.1. */
  readonly port: number;
  /** user+system CPU seconds of every process of the server. */
  cpuSeconds(): number;
  /** Memory of the server, MiB (resident set; proportional set summed over processes for a forking server). */
  memoryMiB(): number;
  stop(): Promise<void>;
}

/** Proportional set size (shared pages divided among the processes sharing them), MiB. */
export function pssMiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The process and its direct children (`pgrep -P`): Kamailio forks all its workers from the main process. */
export function processTree(pid: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  return [pid, ...r.stdout.split('\n').filter((l) => l.trim() !== '').map(Number)];
}

/** CPU seconds summed over a process and its children still running. */
export function treeCpuSeconds(pid: number): number {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      sum += cpuSeconds(p);
    } catch {
      // exited between pgrep and the read
    }
  }
  return sum;
}

export { waitUdpBound } from '../support/tools.js';

/**
 * The softswitch under test: one `softswitch start` process on udp:127.0.0.1:PORT serving BENCH_DOMAIN,
 * SQLite store, digest challenges MD5 only (SIPp 3.6 computes MD5 and AKA only, and answers the first
 * challenge of a 401/407: with the default [SHA-256, MD5] it aborts with "createAuthHeader: authentication
 * must use MD5 or AKAv1-MD5"). The users are written to its store through the store's own repository.
 */
export async function startSoftswitchTarget(port: number, users: readonly BenchUser[], gateway?: Gateway): Promise<BenchTarget> {
  const server = await startServerProcess((dir) => benchConfig(dir, `udp:127.0.0.1:${port}`,
    // With a gateway: one probe an hour (SIPp's UAS would take an OPTIONS for a failed call), and the
    // backend and route written below picked up within a second.
    gateway === undefined ? {} : { balancer: { probeInterval: 3600, reloadInterval: 1 } }));
  try {
    await provisionSoftswitch(`sqlite:${join(server.dir, 'db.sqlite')}`, users, gateway);
    if (gateway !== undefined) await sleep(1500);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return {
    name: 'softswitch',
    port,
    cpuSeconds: () => server.cpuSeconds(),
    memoryMiB: () => server.memoryMiB(),
    stop: () => server.stop(),
  };
}

/** Adds the users to a softswitch store (the running server reads subscribers from it on every request). */
export async function provisionSoftswitch(storeUrl: string, users: readonly BenchUser[], gateway?: Gateway): Promise<void> {
  const store = await openStore({ url: storeUrl, logger: silentLogger() });
  try {
    for (const u of users) await store.subscribers.add({ username: u.username, domain: BENCH_DOMAIN, password: u.password });
    if (gateway !== undefined) {
      // The dialplan of the calls bench: every E.164 number to the one gateway of set "pstn".
      await store.routing.addBackend({ set: 'pstn', uri: `sip:${gateway.address}:${gateway.port}` });
      await store.routing.addRoute({ pattern: '\\+[1-9][0-9]{6,14}', replace: '', set: 'pstn', priority: 10, description: 'E.164 to the gateway' });
    }
  } finally {
    await store.close();
  }
}

export interface SippStats extends SippRun {
  /** Calls SIPp created (OutgoingCall) and the seconds it took to create them: the offered rate it reached. */
  created: number;
  createSeconds: number;
  /** The start of SIPp's error log (-trace_err), for a run with failures. */
  errors: string;
  /** Failed calls by SIPp's cause (FailedTimeoutOnRecv, FailedMaxUDPRetrans, …), the non-zero ones. */
  failures: Record<string, number>;
  /** CPU seconds SIPp itself used (sampled every 200 ms while it ran). */
  cpuSeconds: number;
}

export interface SippProcess {
  readonly pid: number;
  /** Resolves when SIPp exits (on its own, by stop(), or killed at the time limit). */
  readonly done: Promise<SippStats>;
  /** Asks SIPp to finish (SIGUSR1: no new calls, exit once the calls in progress end), then kills it. */
  stop(graceMs?: number): Promise<SippStats>;
}

function epochOf(field: string | undefined): number {
  // "2026-11-23\t20:48:26.686190\t1795466906.686190": the last part is seconds since the epoch.
  return Number(field?.split('\t').pop() ?? 0);
}

function readSippStats(dir: string, stf: string, seconds: number): Omit<SippStats, 'cpuSeconds'> {
  let lines: string[] = [];
  try {
    lines = readFileSync(stf, 'utf8').trim().split('\n');
  } catch {
    // SIPp died before its first statistics line
  }
  const errorLog = readdirSync(dir).find((f) => f.endsWith('_errors.log'));
  const errors = errorLog ? readFileSync(join(dir, errorLog), 'utf8').slice(0, 3000) : '';
  if (lines.length < 2) return { successful: 0, failed: 0, retransmissions: 0, seconds, created: 0, createSeconds: 0, errors, failures: {} };
  const header = lines[0]!.split(';');
  const rows = lines.slice(1).map((l) => l.split(';'));
  const last = rows[rows.length - 1]!;
  const col = (row: string[], name: string) => Number(row[header.indexOf(name)] ?? 0);
  const created = col(last, 'OutgoingCall(C)');
  const start = epochOf(last[header.indexOf('StartTime')]);
  const doneRow = rows.find((r) => col(r, 'OutgoingCall(C)') >= created) ?? last;
  const failures: Record<string, number> = {};
  for (const name of header) {
    if (name.startsWith('Failed') && name.endsWith('(C)') && name !== 'FailedCall(C)' && col(last, name) > 0) {
      failures[name.slice('Failed'.length, -'(C)'.length)] = col(last, name);
    }
  }
  return {
    successful: col(last, 'SuccessfulCall(C)'),
    failed: col(last, 'FailedCall(C)'),
    retransmissions: col(last, 'Retransmissions(C)'),
    seconds,
    created,
    createSeconds: epochOf(doneRow[header.indexOf('CurrentTime')]) - start,
    errors,
    failures,
  };
}

/**
 * Starts SIPp in the background (statistics every 200 ms to a CSV, errors to a log, both in a temporary
 * folder), killed after `timeoutSeconds` at the latest. `cwd` holds nothing of value: it is removed.
 */
export function startSipp(args: string[], timeoutSeconds: number): SippProcess {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-bench-'));
  const stf = join(dir, 'stats.csv');
  const started = process.hrtime.bigint();
  const child = spawn('sipp', [...args, '-nostdin', '-trace_stat', '-stf', stf, '-fd', '200ms', '-trace_err'], {
    cwd: dir, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr.length < 10_000 ? (stderr += d.toString()) : undefined));
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutSeconds * 1000);
  let cpu = 0;
  const sampler = setInterval(() => {
    try {
      cpu = cpuSeconds(child.pid!);
    } catch {
      // exiting
    }
  }, 200);
  const done = new Promise<SippStats>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(killer);
      clearInterval(sampler);
      const stats = { ...readSippStats(dir, stf, Number(process.hrtime.bigint() - started) / 1e9), cpuSeconds: cpu };
      rmSync(dir, { recursive: true, force: true });
      if (stats.created === 0 && stats.successful === 0 && stderr.trim() !== '') stats.errors = `${stderr}\n${stats.errors}`;
      resolve(stats);
    });
  });
  return {
    pid: child.pid!,
    done,
    async stop(graceMs = 3000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGUSR1');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const stats = await done;
        clearTimeout(t);
        return stats;
      }
      return done;
    },
  };
}

/** SIPp options every load run shares: one UDP socket on 127.0.0.1, larger socket buffers, bounded waits. */
export function sippCommon(localPort: number, address = '127.0.0.1'): string[] {
  return ['-t', 'u1', '-i', address, '-p', String(localPort), '-buff_size', '1048576', '-recv_timeout', '10000'];
}

/** Datagrams the kernel dropped for the UDP socket bound to 127.0.0.1:port (receive buffer full), /proc/net/udp. */
export function udpDrops(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local) return Number(f[f.length - 1]);
  }
  return 0;
}

/** The machine's 1-minute load average: other work on a shared machine skews the maximum rates. */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** `{ TimeoutOnRecv: 3 }` → "TimeoutOnRecv 3". */
export function failureSummary(failures: Record<string, number>): string {
  return Object.entries(failures).map(([k, v]) => `${k} ${v}`).join(', ');
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** The value below which `p` % of a sorted sample lies (NaN for an empty sample). */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** `p50 / p95 / max` of a sample, ms. */
export function spread(sample: readonly number[]): string {
  if (sample.length === 0) return '–';
  const sorted = [...sample].sort((a, b) => a - b);
  return `${fmt(percentile(sorted, 50), 1)} / ${fmt(percentile(sorted, 95), 1)} / ${fmt(sorted[sorted.length - 1]!, 1)}`;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** What the runs measure on the server (and around it) between two points in time. */
export interface Measured {
  /** Server CPU seconds. */
  cpuSeconds: number;
  /** Datagrams dropped on the server's socket. */
  udpDrops: number;
  memoryMiB: number;
}

/** Starts measuring; the function returned ends it. */
export function measure(target: BenchTarget): () => Measured {
  const cpu0 = target.cpuSeconds();
  const drops0 = udpDrops(target.port);
  return () => {
    return {
      cpuSeconds: target.cpuSeconds() - cpu0,
      udpDrops: udpDrops(target.port) - drops0,
      memoryMiB: target.memoryMiB(),
    };
  };
}
