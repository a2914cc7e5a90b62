/**
 * Kamailio as a benchmark target (Debian's `kamailio` + `kamailio-sqlite-modules`): bench/kamailio/kamailio.cfg,
 * auth_db on a SQLite file with the bench users' HA1, one UDP listener. Used by bench/kamailio.ts (the
 * side-by-side runs) and bench/chat.ts (the MESSAGE relay yardstick).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import knexFactory from 'knex';
import { computeHa1Set } from '../platform/store/index.js';
import { BENCH_DOMAIN, type BenchTarget, type BenchUser, type Gateway, processTree, pssMiB, repoRoot, sleep, treeCpuSeconds, waitUdpBound } from './lib.js';

const CONFIG = join(repoRoot, 'bench', 'kamailio', 'kamailio.cfg');
export const INSTALL = 'apt-get install kamailio kamailio-sqlite-modules';

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


/**
 * Starts Kamailio in the foreground (-DD: the process we spawn is the main process, its workers are its
 * children; -E: log to stderr) with bench/kamailio/kamailio.cfg, which includes kamailio-local.cfg from its
 * working directory: the listen socket and the SQLite file.
 */
export async function startKamailioTarget(port: number, users: readonly BenchUser[], gateway?: Gateway): Promise<BenchTarget> {
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
