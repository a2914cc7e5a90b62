/**
 * bench/kamailio: the register and calls runs (bench/register.ts, bench/calls.ts: the same SIPp scenarios,
 * users and rates) against the softswitch and against Kamailio (Debian's package, bench/kamailio/kamailio.cfg)
 * on the same machine, alternating: in each round every scenario runs on one server then on the other, the
 * order reversed from one round to the next. One softswitch process against one Kamailio SIP worker
 * (children=1, no TCP); Kamailio's CPU is summed over all its processes (main, worker, timers). Prints every
 * run, then CPU seconds per 1000 operations side by side with the ratio softswitch/Kamailio.
 * Usage: node dist/bench/kamailio.js [users 2000] [REGISTER rate 500] [calls 3000] [call rate 300] [rounds 2]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import { computeHa1Set } from '../platform/store/index.js';
import { freePort } from '../support/tools.js';
import { ALICE, BOB, CALLS_HEADER, type CallResult, type Callee, PAUSE_MS, WARMUP, callRow, gatewayCallee, runCallLoad } from './calls.js';
import {
  BENCH_DOMAIN, type BenchTarget, type BenchUser, type Gateway, benchUsers, fmt, loadAverage, processTree, pssMiB, repoRoot, sleep,
  startSoftswitchTarget, treeCpuSeconds, waitUdpBound,
} from './lib.js';
import { REGISTER_HEADER, type RegisterResult, WARMUP_USERS, registerRow, runRegisterLoad } from './register.js';

const CONFIG = join(repoRoot, 'bench', 'kamailio', 'kamailio.cfg');
const INSTALL = 'apt-get install kamailio kamailio-sqlite-modules';

/** The subscriber table of Kamailio's auth_db (schema version 7, as kamdbctl creates it for SQLite). */
const SCHEMA = [
  `CREATE TABLE version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL,
     table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_table_name_idx UNIQUE (table_name))`,
  `INSERT INTO version (table_name, table_version) VALUES ('version', 1), ('subscriber', 7)`,
  `CREATE TABLE subscriber (id INTEGER PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL,
     domain VARCHAR(64) DEFAULT '' NOT NULL, password VARCHAR(64) DEFAULT '' NOT NULL, ha1 VARCHAR(128) DEFAULT '' NOT NULL,
     ha1b VARCHAR(128) DEFAULT '' NOT NULL, CONSTRAINT subscriber_account_idx UNIQUE (username, domain))`,
  'CREATE INDEX subscriber_username_idx ON subscriber (username)',
];

/** Writes the users, HA1 only (MD5, the algorithm SIPp answers), to a new SQLite file for auth_db. */
async function writeKamailioSubscribers(file: string, users: readonly BenchUser[]): Promise<void> {
  const db = knexFactory({ client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true });
  try {
    for (const statement of SCHEMA) await db.raw(statement);
    const rows = users.map((u) => ({
      username: u.username, domain: BENCH_DOMAIN, password: '', ha1: computeHa1Set(u.username, BENCH_DOMAIN, u.password).ha1Md5, ha1b: '',
    }));
    await db.transaction(async (trx) => {
      for (let i = 0; i < rows.length; i += 100) await trx('subscriber').insert(rows.slice(i, i + 100));
    });
  } finally {
    await db.destroy();
  }
}

function kamailioInstalled(): boolean {
  return spawnSync('sh', ['-c', 'command -v kamailio'], { encoding: 'utf8' }).status === 0;
}

/**
 * Starts Kamailio in the foreground (-DD: the process we spawn is the main process, its workers are its
 * children; -E: log to stderr) with bench/kamailio/kamailio.cfg, which includes kamailio-local.cfg from its
 * working directory: the listen socket and the SQLite file.
 */
async function startKamailioTarget(port: number, users: readonly BenchUser[], gateway?: Gateway): Promise<BenchTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'kamailio-bench-'));
  const db = join(dir, 'kamailio.sqlite');
  await writeKamailioSubscribers(db, users);
  const gw = gateway === undefined ? '' : `#!define PSTN_GW "sip:${gateway.address}:${gateway.port}"\n`;
  writeFileSync(join(dir, 'kamailio-local.cfg'), `listen=udp:127.0.0.1:${port}\n#!define DBURL "sqlite://${db}"\n${gw}`);
  const child: ChildProcess = spawn('kamailio', ['-DD', '-E', '-f', CONFIG, '-Y', dir, '-m', '128', '-M', '16'], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => (out.length < 20_000 ? (out += d.toString()) : undefined);
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    const tree = child.exitCode === null ? processTree(child.pid!) : [];
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    for (const pid of tree) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const died = exited.then(() => {
      throw new Error('kamailio exited');
    });
    died.catch(() => {}); // settles when Kamailio is stopped at the end, long after the race below
    await Promise.race([waitUdpBound(port), died]);
    await sleep(500); // the workers fork after the socket is bound
    if (child.exitCode !== null) throw new Error('kamailio exited');
  } catch (err) {
    await stop();
    throw new Error(`Kamailio did not start (${(err as Error).message}); a missing module? ${INSTALL}\n${out}`);
  }
  return {
    name: 'kamailio',
    port,
    cpuSeconds: () => treeCpuSeconds(child.pid!),
    memoryMiB: () => processTree(child.pid!).reduce((sum, pid) => sum + pssMiB(pid), 0),
    stop,
  };
}

interface Side {
  target: BenchTarget;
  callee: Callee;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

async function main(): Promise<void> {
  const [users = 2000, registerRate = 500, calls = 3000, callRate = 300, rounds = 2] = process.argv.slice(2).map(Number);
  if (![users, registerRate, calls, callRate, rounds].every((n) => Number.isFinite(n) && n > 0)) {
    throw new TypeError('usage: kamailio [users] [REGISTER rate] [calls] [call rate] [rounds], all > 0');
  }
  if (!kamailioInstalled()) {
    console.error(`kamailio is not installed. On Debian, as root: ${INSTALL}\n(the package's systemd service is not needed: the bench starts its own Kamailio in the foreground)`);
    process.exitCode = 1;
    return;
  }
  const load = loadAverage();
  const version = spawnSync('kamailio', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]?.replace(/^version: /, '').trim() ?? '?';
  // Fresh users for every round, so that every measured REGISTER creates a binding on both servers.
  const roundUsers = Array.from({ length: rounds }, (_, i) => benchUsers(`r${i + 1}u`, users));
  const warmup = benchUsers('w', WARMUP_USERS);
  const everyone = [ALICE, BOB, ...warmup, ...roundUsers.flat()];
  const sides: Side[] = [];
  const registerRuns: RegisterResult[] = [];
  const callRuns: CallResult[] = [];
  try {
    for (const start of [startSoftswitchTarget, startKamailioTarget]) {
      // Each server gets its own gateway (a SIPp UAS per run on that port), reached by a number route.
      const callee = await gatewayCallee();
      const target = await start(await freePort(), everyone, callee);
      sides.push({ target, callee });
    }
    for (const { target, callee } of sides) {
      await runRegisterLoad(target, warmup, Math.min(registerRate, 250));
      await runCallLoad(target, callee, WARMUP);
    }
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const { target } of order) registerRuns.push(await runRegisterLoad(target, roundUsers[round]!, registerRate));
      for (const { target, callee } of order) callRuns.push(await runCallLoad(target, callee, { calls, rate: callRate, pauseMs: PAUSE_MS }));
    }
  } finally {
    for (const { target } of sides) await target.stop();
  }

  console.log(`node ${process.version}, ${version}; UDP on 127.0.0.1; one softswitch process vs one Kamailio SIP worker (children=1; Kamailio CPU and memory summed over all its processes, memory as PSS; softswitch memory is RSS); ${rounds} rounds alternating the order; warm-up (${WARMUP_USERS} REGISTERs, ${WARMUP.calls} calls) unmeasured on both; load average before: ${load}`);
  console.log(`\nregister: ${fmt(users)} new users per round at ${fmt(registerRate)}/s, MD5 digest (401)`);
  for (const line of REGISTER_HEADER) console.log(line);
  for (const r of registerRuns) console.log(registerRow(r));
  console.log(`\ncalls: ${fmt(calls)} calls per round at ${fmt(callRate)}/s, 407 digest MD5, Record-Route, ${PAUSE_MS} ms between ACK and BYE`);
  for (const line of CALLS_HEADER) console.log(line);
  for (const r of callRuns) console.log(callRow(r));

  type Run = { target: string; cpuPer1000: number; failed: number };
  const per = (runs: readonly Run[], name: string) => mean(runs.filter((r) => r.target === name).map((r) => r.cpuPer1000));
  const failed = (runs: readonly Run[], name: string) => runs.filter((r) => r.target === name).reduce((s, r) => s + r.failed, 0);
  console.log(`\nCPU seconds per 1000 operations, mean of ${rounds} rounds (lower is better)`);
  console.log('| scenario | softswitch CPU s/1000 | Kamailio CPU s/1000 | ratio softswitch/Kamailio | failed softswitch / Kamailio |');
  console.log('|---|---:|---:|---:|---:|');
  const scenarios: [string, readonly Run[]][] = [
    [`REGISTER (401 + 200) at ${fmt(registerRate)}/s`, registerRuns],
    [`call (INVITE 407 + INVITE, ACK, BYE) at ${fmt(callRate)}/s`, callRuns],
  ];
  for (const [label, runs] of scenarios) {
    const s = per(runs, 'softswitch');
    const k = per(runs, 'kamailio');
    console.log(`| ${label} | ${s.toFixed(3)} | ${k.toFixed(3)} | ${(s / k).toFixed(1)} | ${failed(runs, 'softswitch')} / ${failed(runs, 'kamailio')} |`);
  }
}

await main();
