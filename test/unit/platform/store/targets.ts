/**
 * The databases the store suites run against: a SQLite file under the OS temp folder always, and a
 * fresh MariaDB database (created with the root connection of STORE_TEST_MYSQL_URL, dropped after).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { createConnection } from 'mysql2/promise';
import { StoreError, type StoreErrorCode } from '../../../../platform/store/index.js';

export interface TestDatabase {
  url: string;
  /** The SQLite file, for the tests that read its bytes. */
  file?: string;
  drop(): Promise<void>;
}

export interface Target {
  name: string;
  dialect: 'sqlite' | 'mysql';
  create(): Promise<TestDatabase>;
}

export const sqliteTarget: Target = {
  name: 'SQLite',
  dialect: 'sqlite',
  create() {
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-store-'));
    // A folder that does not exist yet: openStore must create it.
    const file = join(dir, 'data', 'softswitch.db');
    return Promise.resolve({
      url: `sqlite:${file}`,
      file,
      drop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    });
  },
};

export const MYSQL_HINT = 'set STORE_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test (a user allowed to create databases) to run the MariaDB store suite';

export function mariadbTarget(rootUrl: string): Target {
  return {
    name: 'MariaDB',
    dialect: 'mysql',
    async create() {
      const name = `softswitch_test_${randomBytes(6).toString('hex')}`;
      const root = await createConnection(rootUrl);
      try {
        await root.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
      } finally {
        await root.end();
      }
      const url = new URL(rootUrl);
      url.pathname = `/${name}`;
      return {
        url: url.toString(),
        async drop() {
          const c = await createConnection(rootUrl);
          try {
            await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
          } finally {
            await c.end();
          }
        },
      };
    },
  };
}

/** Asserts that `promise` rejects with a StoreError of `code` (and a message matching `message`). */
export async function rejectsWith(promise: Promise<unknown>, code: StoreErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}
