/**
 * bench/wss: N concurrent softphones over WSS, each REGISTERed with digest auth and then held open, against
 * one `softswitch start` process (one worker). N goes up in steps; each step gets a fresh server (its store
 * copied from one provisioned template) so that its memory is the memory of N connections, nothing left from
 * the step before. Clients are child processes (bench/wss-client.ts, up to PER_CLIENT softphones each), every
 * 2,000 softphones on their own loopback source address (127.0.0.2, 127.0.0.3, …) so that no address runs out
 * of its ~28,000 ephemeral ports.
 * Per step: connections held (by the clients and as sockets open in the server), server RSS and RSS per
 * connection over the idle server's, REGISTER latency (first REGISTER sent → 200, through the 401) p50/p99,
 * failures by cause, server CPU.
 * A step that needs more file descriptors than the server's limit (RLIMIT_NOFILE, 20,000 and not raisable on
 * the machines here) is skipped with a note unless BENCH_WSS_FORCE=1: past it, connections need more workers.
 * Usage: node dist/bench/wss.js [steps, default 1000,10000,19000,30000,100000] [hold seconds, default 10];
 * BENCH_WORKERS=6 runs the server with 6 workers (connections spread over them, CPU and memory summed).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/log/index.js';
import { openStore } from '../platform/store/index.js';
import { freePort } from '../support/tools.js';
import {
  BENCH_DOMAIN, benchConfig, benchUsers, benchWorkers, fmt, loadAverage, percentile, processTree, sleep, startServerProcess, type ServerProcess,
} from './lib.js';
import type { ClientReport, ClientSlice } from './wss-client.js';

/** Softphones per client process (each holds a socket per softphone: well under its own 20,000 files). */
const PER_CLIENT = 5000;
/** Softphones per loopback source address. */
const PER_ADDRESS = 2000;
/** Connects + registrations in flight per client process. */
const CONCURRENCY = 64;
/** File descriptors the server needs besides its connections (listeners, store, stdio, libuv). */
const FD_RESERVE = 200;

export interface WssStep {
  target: number;
  skipped?: string;
  registered: number;
  failed: number;
  errors: Record<string, number>;
  /** Softphones still open after the hold, as the clients see them, and server sockets (from /proc/PID/fd). */
  heldClients: number;
  serverSockets: number;
  connectSeconds: number;
  p50: number;
  p99: number;
  idleRssMiB: number;
  rssMiB: number;
  rssPerConnectionKiB: number;
  serverCpuSeconds: number;
  load: number;
}

/**
 * Open files one server process needs for n connections: all of them with one process; with workers
 * (BENCH_WORKERS) the primary deals them out round robin, so a share plus 5 % for an uneven deal.
 */
function perProcess(n: number): number {
  const workers = benchWorkers();
  return (workers === 1 ? n : Math.ceil((n / workers) * 1.05)) + FD_RESERVE;
}

function fits(n: number, limit: number): boolean {
  return perProcess(n) <= limit;
}

function sourceAddress(i: number): string {
  const k = Math.floor(i / PER_ADDRESS) + 2;
  return `127.0.${k >> 8}.${k & 255}`;
}

/** The soft RLIMIT_NOFILE of a process, from /proc/PID/limits. */
function openFilesLimit(pid: number | 'self'): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m ? Number(m[1]) : Number.POSITIVE_INFINITY;
}

function socketCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed between readdir and readlink
    }
  }
  return n;
}

function startServer(storeFile: string, port: number, maxConnections: number): Promise<ServerProcess> {
  return startServerProcess((dir) => benchConfig(dir, `wss:127.0.0.1:${port}`, { sip: { maxConnections } }, storeFile));
}

interface Client {
  child: ChildProcess;
  registered: Promise<Extract<ClientReport, { type: 'registered' }>>;
  status(): Promise<Extract<ClientReport, { type: 'status' }>>;
}

function startClient(slice: ClientSlice): Client {
  const child = fork(join(fileURLToPath(import.meta.url), '..', 'wss-client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const registered = new Promise<Extract<ClientReport, { type: 'registered' }>>((resolve, reject) => {
    child.on('message', (m: ClientReport) => m.type === 'registered' && resolve(m));
    child.once('exit', (code) => reject(new Error(`client exited (${code}) before registering`)));
  });
  registered.catch(() => undefined);
  child.send(slice);
  return {
    child,
    registered,
    status: () => new Promise((resolve) => {
      const on = (m: ClientReport): void => {
        if (m.type !== 'status') return;
        child.off('message', on);
        resolve(m);
      };
      child.on('message', on);
      child.send({ type: 'status' });
    }),
  };
}

async function stopClients(clients: Client[]): Promise<void> {
  await Promise.all(clients.map(async (c) => {
    if (c.child.exitCode !== null || c.child.signalCode !== null) return;
    const exited = new Promise((r) => c.child.once('exit', r));
    try {
      c.child.send({ type: 'close' });
    } catch {
      // IPC already gone
    }
    await Promise.race([exited, sleep(3000)]);
    c.child.kill('SIGKILL');
  }));
}

export async function runStep(templateStore: string, users: ReturnType<typeof benchUsers>, n: number, holdSeconds: number): Promise<WssStep> {
  const load = loadAverage();
  const dir = mkdtempSync(join(tmpdir(), 'bench-wss-'));
  const store = join(dir, 'db.sqlite');
  copyFileSync(templateStore, store);
  const port = await freePort();
  const server = await startServer(store, port, n + 100);
  const clients: Client[] = [];
  try {
    const limit = openFilesLimit(server.pid);
    const empty: WssStep = {
      target: n, registered: 0, failed: 0, errors: {}, heldClients: 0, serverSockets: 0, connectSeconds: 0, p50: Number.NaN, p99: Number.NaN,
      idleRssMiB: 0, rssMiB: 0, rssPerConnectionKiB: Number.NaN, serverCpuSeconds: 0, load,
    };
    if (!fits(n, limit) && process.env.BENCH_WSS_FORCE !== '1') {
      return { ...empty, skipped: `needs ${fmt(perProcess(n))} open files per server process, one may hold ${fmt(limit)}` };
    }
    await sleep(1000);
    const idleRss = server.memoryMiB();
    const cpu0 = server.cpuSeconds();
    const started = performance.now();
    for (let first = 0; first < n; first += PER_CLIENT) {
      const phones = [];
      for (let i = first; i < Math.min(n, first + PER_CLIENT); i++) phones.push({ ...users[i]!, localAddress: sourceAddress(i) });
      clients.push(startClient({ ports: [port], domain: BENCH_DOMAIN, phones, concurrency: CONCURRENCY, keepAliveMs: 25_000, timeoutMs: 30_000 }));
    }
    const reports = await Promise.all(clients.map((c) => c.registered));
    const connectSeconds = (performance.now() - started) / 1000;
    const cpu = server.cpuSeconds() - cpu0;
    await sleep(holdSeconds * 1000);
    const statuses = await Promise.all(clients.map((c) => c.status()));
    const latencies = reports.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
    const errors: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    const rss = server.memoryMiB();
    const held = statuses.reduce((s, x) => s + x.open, 0);
    return {
      target: n,
      registered: latencies.length,
      failed: reports.reduce((s, r) => s + r.failed, 0),
      errors,
      heldClients: held,
      serverSockets: processTree(server.pid).reduce((sum, p) => sum + socketCount(p), 0),
      connectSeconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      idleRssMiB: idleRss,
      rssMiB: rss,
      rssPerConnectionKiB: held > 0 ? ((rss - idleRss) * 1024) / held : Number.NaN,
      serverCpuSeconds: cpu,
      load,
    };
  } finally {
    await stopClients(clients);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const WSS_HEADER = [
  '| softphones | registered | failed | held (clients / server sockets) | connect+register s | REGISTER p50 ms | p99 ms | server RSS MiB (idle) | RSS per connection KiB | server CPU s | load before |',
  '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];

export function wssRow(s: WssStep): string {
  if (s.skipped) return `| ${fmt(s.target)} | skipped: ${s.skipped} | | | | | | | | | ${s.load} |`;
  return `| ${fmt(s.target)} | ${fmt(s.registered)} | ${fmt(s.failed)} | ${fmt(s.heldClients)} / ${fmt(s.serverSockets)} | ${s.connectSeconds.toFixed(1)} | ${s.p50.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.rssMiB.toFixed(0)} (${s.idleRssMiB.toFixed(0)}) | ${s.rssPerConnectionKiB.toFixed(1)} | ${s.serverCpuSeconds.toFixed(1)} | ${s.load} |`;
}

async function main(): Promise<void> {
  const steps = (process.argv[2] ?? '1000,10000,19000,30000,100000').split(',').map(Number);
  const hold = Number(process.argv[3] ?? 10);
  if (steps.some((n) => !Number.isInteger(n) || n < 1) || !(hold >= 0)) throw new TypeError('usage: wss [steps, e.g. 1000,10000] [hold seconds ≥ 0]');
  const dir = mkdtempSync(join(tmpdir(), 'bench-wss-store-'));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const limit = openFilesLimit('self');
    const runnable = steps.filter((n) => fits(n, limit) || process.env.BENCH_WSS_FORCE === '1');
    const users = benchUsers('s', Math.max(...runnable, 1));
    const template = join(dir, 'template.sqlite');
    const t0 = Date.now();
    const store = await openStore({ url: `sqlite:${template}`, logger: silentLogger() });
    try {
      for (const u of users) await store.subscribers.add({ username: u.username, domain: BENCH_DOMAIN, password: u.password });
    } finally {
      await store.close();
    }
    const provisioned = (Date.now() - t0) / 1000;
    const results: WssStep[] = [];
    for (const n of steps) {
      const r = await runStep(template, users, n, hold);
      results.push(r);
      console.error(wssRow(r));
    }
    console.log(`node ${process.version}, WSS softphones on 127.0.0.1 (REGISTER MD5 digest, ${benchWorkers() === 1 ? '1 server process' : `${benchWorkers()} server workers (the primary spreads connections round robin)`}, ${PER_CLIENT} softphones per client process, ${PER_ADDRESS} per source address), ${fmt(users.length)} users provisioned in ${provisioned.toFixed(1)} s, hold ${hold} s; server open-files limit ${fmt(limit)}`);
    for (const line of WSS_HEADER) console.log(line);
    for (const r of results) console.log(wssRow(r));
    process.exitCode = results.some((r) => !r.skipped && r.registered === 0) ? 1 : 0;
  } finally {
    cleanup();
  }
}

if (realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url))) await main();
