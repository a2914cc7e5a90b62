/**
 * SQLite only: a second connection to the store's file whose statements are prepared once and kept.
 * knex builds the SQL and prepares the statement anew for every query (≈ 80 µs a subscriber lookup,
 * ≈ 4 µs here), which was a third of what a REGISTER cost. Used for the two queries of the REGISTER hot
 * path, the subscriber lookup and the binding upsert, and for the two writes of every call's history
 * (the answered call's dialog, its record); everything else stays on knex.
 *
 * In WAL mode a read never waits. A write that would wait for another writer (the CLI, or a knex
 * transaction in this process) fails at once with SQLITE_BUSY (busy_timeout 0: better-sqlite3 is
 * synchronous and must never block the event loop), and SqlContext.runFast tries again a little later.
 */
import { createRequire } from 'node:module';

interface Statement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
}

interface Database {
  prepare(sql: string): Statement;
  pragma(source: string): unknown;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}

type DatabaseConstructor = new (filename: string, options?: { fileMustExist?: boolean }) => Database;

const require = createRequire(import.meta.url);

export class SqliteStatements {
  private readonly db: Database;
  private readonly cache = new Map<string, Statement>();

  /** Opens the file (it must exist: knex created and migrated it first). */
  constructor(filename: string) {
    const Ctor = require('better-sqlite3') as DatabaseConstructor;
    this.db = new Ctor(filename, { fileMustExist: true });
    this.db.pragma('busy_timeout = 0');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
  }

  get<T>(sql: string, ...params: unknown[]): T | undefined {
    return this.statement(sql).get(...params) as T | undefined;
  }

  /** Every row of one statement. */
  all<T>(sql: string, ...params: unknown[]): T[] {
    return this.statement(sql).all(...params) as T[];
  }

  /** Runs one statement; returns how many rows it changed. */
  run(sql: string, ...params: unknown[]): number {
    return this.statement(sql).run(...params).changes;
  }

  /** Runs `fn` (which runs statements of this connection) in one transaction. */
  transaction<T>(fn: () => T): T {
    let out: T;
    this.db.transaction(() => {
      out = fn();
    })();
    return out!;
  }

  /** Runs one statement for each parameter set, all in one transaction. */
  runAll(sql: string, paramSets: readonly unknown[]): void {
    const statement = this.statement(sql);
    this.db.transaction((sets: readonly unknown[]) => {
      for (const p of sets) statement.run(p);
    })(paramSets);
  }

  close(): void {
    this.cache.clear();
    this.db.close();
  }

  private statement(sql: string): Statement {
    let s = this.cache.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }
}

/** SQLITE_BUSY / SQLITE_LOCKED: another writer holds the database; try again through knex. */
export function isBusy(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}
