/**
 * Opens the SQL store named by `store.url`: SQLite (embedded default, knex + better-sqlite3) or
 * MariaDB/MySQL (production, knex + mysql2), checks the connection and brings the schema up to date
 * with the migrations of sql/.
 */
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import knexFactory, { type Knex } from 'knex';
import { migrations } from '../../sql/index.js';
import { categoryLogger, type Logger } from '../../src/log/index.js';
import { prepareSqliteFile } from '../../src/transport/file-modes.js';
import { KnexStore } from './knex-store.js';
import { ListMigrationSource } from './list-migration-source.js';
import { driverReason } from './sql-context.js';
import { StoreError } from './store-error.js';
import { maskStoreUrl, parseStoreUrl, type StoreLocation } from './store-url.js';
import type { OpenStoreOptions, SqlStore } from './types.js';

const KEY = 'store.url';
/** mysql2's own connect timeout is 10 s; the pool gives up on a connection at the same time. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Workers of a cluster open the store together: one migrates, the others wait for its lock this long. */
const MIGRATION_LOCK_WAIT_MS = 30_000;

/** The part of a better-sqlite3 Database the pool hook uses (the package ships no types here). */
interface SqliteConnection {
  pragma(source: string): unknown;
}

function knexLog(log: Logger): Knex.Logger {
  return {
    warn: (message: unknown) => log.warn({ knex: String(message) }, 'knex warning'),
    error: (message: unknown) => log.error({ knex: String(message) }, 'knex error'),
    deprecate: (method: unknown, alternative: unknown) => log.warn({ method, alternative }, 'knex deprecation'),
    debug: () => {},
  };
}

function sqliteConfig(filename: string, log: Logger): Knex.Config {
  return {
    client: 'better-sqlite3',
    connection: { filename },
    useNullAsDefault: true,
    log: knexLog(log),
    pool: {
      afterCreate(conn: SqliteConnection, done: (err: Error | null, conn: SqliteConnection) => void) {
        try {
          // WAL: the CLI can write while the server reads. busy_timeout: wait for the other writer
          // instead of failing with SQLITE_BUSY. Foreign keys are off by default in SQLite.
          conn.pragma('journal_mode = WAL');
          // WAL + NORMAL: no fsync per commit, still crash-safe (a power cut loses at most the last commits).
          conn.pragma('synchronous = NORMAL');
          conn.pragma('busy_timeout = 5000');
          conn.pragma('foreign_keys = ON');
          done(null, conn);
        } catch (err) {
          done(err as Error, conn);
        }
      },
    },
  };
}

function mysqlConfig(location: Extract<StoreLocation, { dialect: 'mysql' }>, log: Logger): Knex.Config {
  return {
    client: 'mysql2',
    connection: {
      host: location.host,
      port: location.port,
      user: location.user,
      password: location.password,
      database: location.database,
      charset: 'utf8mb4',
      connectTimeout: CONNECT_TIMEOUT_MS,
      // BIGINT columns (ms timestamps) as numbers, exact up to 2^53.
      supportBigNumbers: true,
      bigNumberStrings: false,
    },
    log: knexLog(log),
    pool: { min: 0, max: 10 },
    acquireConnectionTimeout: CONNECT_TIMEOUT_MS,
  };
}

function connectError(masked: string, reason: string): StoreError {
  return new StoreError('STORE_ERR_CONNECT', `cannot open the store ${KEY}=${JSON.stringify(masked)}: ${reason}`, KEY);
}

/**
 * The driver's reason, with the password cut out in case a driver ever echoes it. While connecting,
 * the driver's whole message is safe to show (no bound values yet) and says more than its code alone
 * ("connect ECONNREFUSED 127.0.0.1:3306", "file is not a database").
 */
function reasonOf(err: unknown, location: StoreLocation, connecting = false): string {
  let reason = driverReason(err);
  if (connecting && err instanceof Error) {
    const message = err.message.replace(/^select 1 - /, '');
    const code = (err as { code?: unknown }).code;
    reason = typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
  }
  if (location.dialect === 'mysql' && location.password.length >= 4) reason = reason.split(location.password).join('***');
  return reason;
}

async function migrate(db: Knex, log: Logger): Promise<string[]> {
  const config: Knex.MigratorConfig = { migrationSource: new ListMigrationSource(migrations), tableName: 'knex_migrations' };
  const deadline = Date.now() + MIGRATION_LOCK_WAIT_MS;
  for (;;) {
    try {
      const [, applied] = (await db.migrate.latest(config)) as [number, string[]];
      return applied;
    } catch (err) {
      // knex refuses, rather than waits, while another process holds knex_migrations_lock.
      if ((err as Error).name !== 'MigrationLocked' || Date.now() > deadline) throw err;
      log.info('schema migration running in another process; waiting');
      await sleep(250);
    }
  }
}

export async function openStore(options: OpenStoreOptions): Promise<SqlStore> {
  const log = categoryLogger(options.logger, 'store');
  const location = parseStoreUrl(options.url);
  const masked = maskStoreUrl(options.url);
  if (location.dialect === 'sqlite' && location.filename !== ':memory:') {
    try {
      // HA1s are as good as passwords: the file and its -wal/-shm are readable by the owner only.
      prepareSqliteFile(location.filename, dirname(resolve(location.filename)), log);
    } catch (err) {
      throw connectError(masked, `cannot create the database file or its folder: ${(err as Error).message}`);
    }
  }
  const db = knexFactory(location.dialect === 'sqlite' ? sqliteConfig(location.filename, log) : mysqlConfig(location, log));
  const fail = async (error: StoreError): Promise<never> => {
    await db.destroy().catch(() => {});
    throw error;
  };
  try {
    await db.raw('select 1');
  } catch (err) {
    return fail(connectError(masked, reasonOf(err, location, true)));
  }
  let applied: string[];
  try {
    applied = await migrate(db, log);
  } catch (err) {
    let reason = reasonOf(err, location);
    if ((err as Error).name === 'MigrationLocked') {
      reason += ` after ${MIGRATION_LOCK_WAIT_MS / 1000} s (if no other softswitch is starting, an interrupted migration left the lock: UPDATE knex_migrations_lock SET is_locked = 0)`;
    }
    return fail(new StoreError('STORE_ERR_MIGRATION', `cannot bring the schema of ${KEY}=${JSON.stringify(masked)} up to date: ${reason}`, KEY));
  }
  log.info({ url: masked, dialect: location.dialect, migrated: applied }, 'store open');
  return new KnexStore(db, location.dialect, log);
}
