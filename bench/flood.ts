/**
 * bench/flood: what a flood of unauthenticated INVITEs costs the server while honest calls go on. The
 * softswitch of the calls bench (one process, alice dials a number routed to a SIPp gateway) carries
 * honest calls at a fixed rate from 127.0.0.1 while a separate process floods its UDP port from one or
 * many other loopback addresses. Pike bans each flooding source after `security.pike.requests` requests
 * in a window; its datagrams are then dropped before parsing. Reports, per flood, the datagrams sent, the
 * server's CPU (cores busy), its socket drops, and the honest calls' success rate; per kind of flood (one
 * source, many sources) the rates step up until honest calls fall under 99 % success, and the highest
 * rate that kept 99 % is "absorbed".
 * Usage: node dist/bench/flood.js [seconds per run, default 10] [honest calls/s, default 100]
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../support/tools.js';
import { ALICE, gatewayCallee, runCallLoad, PAUSE_MS, WARMUP, type CallResult } from './calls.js';
import { fmt, loadAverage, repoRoot, startSoftswitchTarget } from './lib.js';

interface Flood {
  rate: number;
  sources: number;
}

/** Rates stepped up per kind of flood (BENCH_FLOOD_RATES=5000,10000,… overrides). */
const RATES = (process.env.BENCH_FLOOD_RATES ?? '5000,10000,20000,40000,80000').split(',').map(Number);
const KINDS = [1, 500];
const SUCCESS = 0.99;

/** Each run floods from addresses no earlier run used: a ban lasts 120 s and would make a later run cheaper. */
let nextSource = 0;

function flood(port: number, f: Flood, seconds: number): Promise<number> {
  if (f.rate === 0) return Promise.resolve(0);
  const first = nextSource;
  nextSource += f.sources;
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'bench', 'flood-sender.js'), '127.0.0.1', String(port), String(f.rate), String(seconds), String(f.sources), String(first)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`flood sender exited with ${code}`);
        resolve((JSON.parse(out) as { sent: number }).sent);
      } catch (err) {
        reject(err);
      }
    });
  });
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const rate = Number(process.argv[3] ?? 100);
  if (!(seconds > 0) || !(rate > 0)) throw new TypeError('usage: flood [seconds > 0] [honest calls/s > 0]');
  const load = loadAverage();
  const callee = await gatewayCallee();
  const target = await startSoftswitchTarget(await freePort(), [ALICE], callee);
  const rows: Array<{ f: Flood; sent: number; r: CallResult }> = [];
  const run = async (f: Flood) => {
    const attack = flood(target.port, f, seconds);
    const r = await runCallLoad(target, callee, { calls: Math.round(rate * seconds), rate, pauseMs: PAUSE_MS });
    const row = { f, sent: await attack, r };
    rows.push(row);
    return row.r.successful >= row.r.calls * SUCCESS;
  };
  const absorbed = new Map<number, number>();
  try {
    await runCallLoad(target, callee, WARMUP);
    await run({ rate: 0, sources: 0 });
    for (const sources of KINDS) {
      for (const r of RATES) {
        if (!(await run({ rate: r, sources }))) break;
        absorbed.set(sources, r);
      }
    }
  } finally {
    await target.stop();
  }
  console.log(`node ${process.version}, one server process; honest calls ${rate}/s for ${seconds} s from 127.0.0.1 (exempt as loopback) to a dialplan gateway; flood of unauthenticated INVITEs from 127.0.2.x; pike defaults (30 requests / 2 s, ban 120 s); load average before: ${load}`);
  console.log('| flood datagrams/s | flooding sources | datagrams sent | server UDP drops | server CPU s | cores busy | honest calls completed | failed | success |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const { f, sent, r } of rows) {
    const wall = Math.max(r.seconds, seconds);
    console.log(`| ${fmt(f.rate)} | ${f.sources} | ${fmt(sent)} | ${fmt(r.measured.udpDrops)} | ${r.measured.cpuSeconds.toFixed(2)} | ${(r.measured.cpuSeconds / wall).toFixed(2)} | ${fmt(r.successful)} | ${fmt(r.failed)} | ${((100 * r.successful) / r.calls).toFixed(2)} % |`);
  }
  for (const sources of KINDS) {
    const best = absorbed.get(sources);
    console.log(`${sources === 1 ? 'one flooding source' : `${sources} flooding sources`}: ${best === undefined ? 'no step' : `${fmt(best)} datagrams/s`} absorbed with ≥ ${SUCCESS * 100} % of the honest calls completed (one server process)`);
  }
  process.exitCode = rows[0] !== undefined && rows[0].r.successful >= rows[0].r.calls * SUCCESS ? 0 : 1;
}

await main();
