/**
 * bench/kamailio: the register and calls runs (bench/register.ts, bench/calls.ts: the same SIPp scenarios,
 * users and rates) against the softswitch and against Kamailio (Debian's package, bench/kamailio/kamailio.cfg)
 * on the same machine, alternating: in each round every scenario runs on one server then on the other, the
 * order reversed from one round to the next. One softswitch process against one Kamailio SIP worker
 * (children=1, no TCP); Kamailio's CPU is summed over all its processes (main, worker, timers). Prints every
 * run, then CPU seconds per 1000 operations side by side with the ratio softswitch/Kamailio.
 * Usage: node dist/bench/kamailio.js [users 2000] [REGISTER rate 500] [calls 3000] [call rate 300] [rounds 2]
 */
import { spawnSync } from 'node:child_process';
import { freePort } from '../support/tools.js';
import { ALICE, BOB, CALLS_HEADER, type CallResult, type Callee, PAUSE_MS, WARMUP, callRow, gatewayCallee, runCallLoad } from './calls.js';
import { type BenchTarget, benchUsers, fmt, loadAverage, startSoftswitchTarget } from './lib.js';
import { INSTALL, startKamailioTarget } from './kamailio-target.js';
import { REGISTER_HEADER, type RegisterResult, WARMUP_USERS, registerRow, runRegisterLoad } from './register.js';

function kamailioInstalled(): boolean {
  return spawnSync('sh', ['-c', 'command -v kamailio'], { encoding: 'utf8' }).status === 0;
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
