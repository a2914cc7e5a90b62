/**
 * `softswitch start --workers N` as an operator runs it, for the tests of what spans workers: a fresh data
 * folder with the configuration written as YAML, the compiled main.js spawned, its output (JSON log lines)
 * collected, and the subscribers added to its SQLite store. `stop()` sends SIGTERM (SIGKILL after 10 s)
 * and deletes the folder. `startWssTestCluster`: the same with one WSS listener (the primary deals its
 * connections to the workers in turn), debug logs, users, and registered phones for them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { flowWorker } from '../../server/cluster/index.js';
import { silentLogger } from '../../src/log/index.js';
import { openStore } from '../../platform/store/index.js';
import { repoRoot } from '../../support/paths.js';
import { freePort } from '../../support/tools.js';
import { type Softphone, type SoftphoneLibrary, createPhone, installTestWebSocket } from './softphone.js';
import { setTimeout as sleep } from 'node:timers/promises';

const main = join(repoRoot, 'dist', 'server', 'main.js');

export interface TestCluster {
  readonly dir: string;
  /** Everything the processes printed so far. */
  readonly out: string;
  /** The SQLite store the configuration names (`sqlite:<dir>/db.sqlite`). */
  readonly storeUrl: string;
  addUsers(users: Array<{ username: string; domain: string; password: string }>): Promise<void>;
  /**
   * The workers whose connections carried the REGISTERs accepted for `aor`, oldest first (from the
   * "REGISTER accepted" debug lines: `log.level: debug` in the configuration).
   */
  registeredOn(aor: string): number[];
  stop(): Promise<void>;
}

/**
 * Starts the cluster with `config(dir)` (dataDir and store.url are set here) and resolves once the
 * primary logs "cluster started"; rejects with the output's tail if it does not within 20 s.
 */
export async function startTestCluster(workers: number, config: (dir: string) => Record<string, unknown>, prefix = 'softswitch-cluster-'): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const storeUrl = `sqlite:${join(dir, 'db.sqlite')}`;
  const file = join(dir, 'softswitch.yaml');
  writeFileSync(file, stringifyYaml({ turn: { listen: '127.0.0.1:0' }, ...config(dir), dataDir: dir, store: { url: storeUrl } }));
  let out = '';
  const child: ChildProcess = spawn(process.execPath, [main, 'start', '--config', file, '--workers', String(workers)], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      // the grace timer must not outlive the stop: it would hold the test file's process 10 s after its tests
      const grace = new AbortController();
      await Promise.race([exited, sleep(10_000, undefined, { signal: grace.signal }).catch(() => undefined)]);
      grace.abort();
      child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const end = Date.now() + 20_000;
  while (!out.includes('"cluster started"')) {
    if (Date.now() > end || child.exitCode !== null) {
      await stop();
      throw new Error(`the cluster did not start:\n${out.slice(-4000)}`);
    }
    await sleep(50);
  }
  return {
    dir,
    storeUrl,
    get out() {
      return out;
    },
    registeredOn(aor) {
      return out.split('\n')
        .filter((l) => l.startsWith('{') && l.includes('"msg":"REGISTER accepted"'))
        .map((l) => JSON.parse(l) as { aor?: string; flow?: string })
        .filter((l) => l.aor === aor)
        .map((l) => flowWorker(String(l.flow))!);
    },
    async addUsers(users) {
      const store = await openStore({ url: storeUrl, logger: silentLogger() });
      try {
        for (const u of users) await store.subscribers.add(u);
      } finally {
        await store.close();
      }
    },
    stop,
  };
}

export interface WssTestCluster extends TestCluster {
  /** `wss://127.0.0.1:<port>` of the listener. */
  readonly wsUrl: string;
  /** The phones made so far, oldest first. */
  readonly phones: readonly Softphone[];
  /** A phone of `user` over the cluster's WSS listener, registered; stopped by `stop()`. */
  phone(user: string, library?: SoftphoneLibrary): Promise<Softphone>;
}

/**
 * A cluster of `workers` whose only SIP listener is WSS on a free port of 127.0.0.1 (HTTP on another), logging
 * at debug (for `registeredOn`), with `config(dir)` on top and `users` of `domain` added, all with `password`.
 * `stop()` stops the phones first.
 */
export async function startWssTestCluster(workers: number, options: {
  domain: string;
  users: readonly string[];
  password: string;
  config?: (dir: string) => Record<string, unknown>;
  prefix?: string;
}): Promise<WssTestCluster> {
  installTestWebSocket();
  const wssPort = await freePort();
  const httpPort = await freePort();
  const cluster = await startTestCluster(workers, (dir) => ({
    sip: { listen: [`wss:127.0.0.1:${wssPort}`], domain: [options.domain] }, log: { level: 'debug' }, http: { listen: `127.0.0.1:${httpPort}` },
    ...options.config?.(dir),
  }), options.prefix);
  const wsUrl = `wss://127.0.0.1:${wssPort}`;
  const phones: Softphone[] = [];
  try {
    await cluster.addUsers(options.users.map((username) => ({ username, domain: options.domain, password: options.password })));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  const stopCluster = cluster.stop;
  return Object.assign(cluster, {
    wsUrl,
    phones,
    async phone(user: string, library: SoftphoneLibrary = 'sip.js') {
      const p = await createPhone(library, { uri: `sip:${user}@${options.domain}`, password: options.password, wsUrl });
      phones.push(p);
      await p.register();
      return p;
    },
    async stop() {
      await Promise.all(phones.map((p) => p.stop()));
      await stopCluster();
    },
  });
}
