import type { Knex } from 'knex';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStatements, isBusy } from './sqlite-statements.js';
import { StoreError } from './store-error.js';
import type { StoreDialect } from './types.js';

interface DriverError {
  code?: unknown;
  errno?: unknown;
  sqlMessage?: unknown;
}

function driverError(err: unknown): DriverError {
  return typeof err === 'object' && err !== null ? (err as DriverError) : {};
}

/** better-sqlite3 and mysql2 name a unique-key violation differently. */
export function isUniqueViolation(err: unknown): boolean {
  const { code, errno } = driverError(err);
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'ER_DUP_ENTRY' || errno === 1062;
}

export function isForeignKeyViolation(err: unknown): boolean {
  const { code, errno } = driverError(err);
  return code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || code === 'ER_ROW_IS_REFERENCED_2' || errno === 1451 || errno === 1452;
}

/**
 * MariaDB/MySQL error numbers that refuse the data itself (strict mode): NULL in a NOT NULL column (1048),
 * duplicate key (1062), out of range (1264), truncated (1265, 1292, 1366), no default (1364), too long
 * (1406), foreign key (1451, 1452), CHECK constraint (3819 MySQL, 4025 MariaDB).
 */
const MYSQL_INVALID_DATA = new Set([1048, 1062, 1264, 1265, 1292, 1364, 1366, 1406, 1451, 1452, 3819, 4025]);

/**
 * True when the database refused the values of the statement rather than failed to run it: a constraint or
 * type violation (SQLITE_CONSTRAINT_*, SQLITE_MISMATCH, SQLITE_TOOBIG, SQLITE_RANGE, or one of
 * MYSQL_INVALID_DATA). The same statement with the same values fails again however often it is tried,
 * whereas any other failure (connection lost or refused, pool timeout, lock wait, deadlock, read-only
 * server, disk full) may pass later.
 */
export function isInvalidData(err: unknown): boolean {
  const { code, errno } = driverError(err);
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    return code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG' || code === 'SQLITE_RANGE';
  }
  return typeof errno === 'number' && MYSQL_INVALID_DATA.has(errno);
}

/**
 * The driver's reason for a failure without the SQL: knex prefixes driver messages with the query and
 * its bound values inlined, and those values include HA1s.
 */
export function driverReason(err: unknown): string {
  const { code, sqlMessage } = driverError(err);
  if (typeof sqlMessage === 'string') return typeof code === 'string' ? `${code}: ${sqlMessage}` : sqlMessage;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}

/** How long a hot-path statement keeps trying while another writer holds the SQLite file. */
const BUSY_WAIT_MS = 5000;

/** What the repositories share: the knex instance, guarded against use after close, and error mapping. */
export class SqlContext {
  private closed = false;
  private statements: SqliteStatements | undefined;
  private statementsTried = false;

  constructor(private readonly knex: Knex, readonly dialect: StoreDialect) {}

  close(): void {
    this.closed = true;
    this.statements?.close();
    this.statements = undefined;
  }

  /**
   * The prepared-statement connection (see sqlite-statements.ts), on a SQLite file store; undefined on
   * MariaDB, on `:memory:` (a second connection would see another database) and once closed.
   */
  sqlite(): SqliteStatements | undefined {
    if (this.closed) return undefined;
    if (!this.statementsTried) {
      this.statementsTried = true;
      const filename = (this.knex.client.config.connection as { filename?: unknown } | undefined)?.filename;
      if (this.dialect === 'sqlite' && typeof filename === 'string' && filename !== ':memory:' && filename !== '') {
        try {
          this.statements = new SqliteStatements(filename);
        } catch {
          this.statements = undefined; // knex alone still works
        }
      }
    }
    return this.statements;
  }

  /**
   * `fast` on the prepared-statement connection when there is one, else `slow` through knex. While
   * another writer holds the SQLite file, `fast` is tried again every few milliseconds (up to
   * BUSY_WAIT_MS) with the event loop free in between: a synchronous driver that waited inside SQLite
   * (busy_timeout) would stall every call for that long. Driver failures become StoreErrors as in run().
   */
  async runFast<T>(what: string, fast: (s: SqliteStatements) => T, slow: (db: Knex) => Promise<T>): Promise<T> {
    const deadline = Date.now() + BUSY_WAIT_MS;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      const statements = this.sqlite();
      if (statements === undefined) return this.run(what, slow);
      try {
        return fast(statements);
      } catch (err) {
        if (err instanceof StoreError || err instanceof TypeError) throw err;
        if (!isBusy(err) || Date.now() + delay > deadline) {
          throw new StoreError(isInvalidData(err) ? 'STORE_ERR_INVALID' : 'STORE_ERR_QUERY', `${what} failed: ${driverReason(err)}`);
        }
      }
      await sleep(delay);
    }
  }

  /** Runs one repository operation; a driver failure becomes a StoreError named after `what`. */
  async run<T>(what: string, fn: (db: Knex) => Promise<T>, onDuplicate?: () => StoreError): Promise<T> {
    if (this.closed) throw new StoreError('STORE_ERR_CLOSED', `${what}: the store is closed`);
    try {
      return await fn(this.knex);
    } catch (err) {
      if (err instanceof StoreError || err instanceof TypeError) throw err;
      if (onDuplicate !== undefined && isUniqueViolation(err)) throw onDuplicate();
      throw new StoreError(isInvalidData(err) ? 'STORE_ERR_INVALID' : 'STORE_ERR_QUERY', `${what} failed: ${driverReason(err)}`);
    }
  }
}

/** Integer columns come back as number (SQLite), number or string (MySQL BIGINT); booleans as 0/1. */
export function toNumber(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

export function toOptionalNumber(v: unknown): number | undefined {
  return v === null || v === undefined ? undefined : toNumber(v);
}

export function toOptionalString(v: unknown): string | undefined {
  return v === null || v === undefined ? undefined : String(v);
}

/** Bad arguments throw TypeError; limits match the column sizes in sql/0001_initial.ts. */
export function checkText(name: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`);
  if (value.length > max) throw new TypeError(`${name} is longer than ${max} characters`);
  return value;
}

/** NULL for undefined, else checkText. */
export function optionalText(name: string, value: string | undefined, max: number): string | null {
  return value === undefined ? null : checkText(name, value, max);
}

export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}
