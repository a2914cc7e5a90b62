import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { silentLogger } from '../../../../src/log/index.js';
import { openStore, StoreError } from '../../../../platform/store/index.js';
import { repositorySuite } from './repository-suite.js';
import { MYSQL_HINT, mariadbTarget, sqliteTarget } from './targets.js';
import { captureLogger } from '../../../helpers/log-capture.js';

repositorySuite(sqliteTarget);

const mysqlUrl = process.env.STORE_TEST_MYSQL_URL;
if (mysqlUrl !== undefined && mysqlUrl !== '') {
  repositorySuite(mariadbTarget(mysqlUrl));
} else {
  // `npm test` sets it (scripts/run-tests.mjs); a missing server is a failure, never a silent skip.
  describe('SQL store on MariaDB', () => {
    it('needs STORE_TEST_MYSQL_URL', () => {
      assert.fail(`STORE_TEST_MYSQL_URL is not set: ${MYSQL_HINT}`);
    });
  });
}

async function openError(url: string, logger = silentLogger()): Promise<StoreError> {
  try {
    const store = await openStore({ url, logger });
    await store.close();
  } catch (err) {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${inspect(err)}`);
    return err;
  }
  assert.fail(`openStore(${url}) succeeded`);
}

describe('opening the store: store.url', () => {
  it('a MariaDB that cannot be reached fails with STORE_ERR_CONNECT, the masked URL and the reason, never the password', async () => {
    const { logger, lines } = captureLogger();
    const err = await openError('mysql://root:secret@127.0.0.1:1/x', logger);
    assert.equal(err.code, 'STORE_ERR_CONNECT');
    assert.equal(err.key, 'store.url');
    assert.match(err.message, /mysql:\/\/root:\*\*\*@127\.0\.0\.1:1\/x/);
    assert.match(err.message, /ECONNREFUSED/);
    assert.doesNotMatch(inspect(err, { depth: 10 }), /secret/);
    assert.doesNotMatch(lines.join(''), /secret/);
  });

  it('an unknown scheme is refused with STORE_ERR_CONFIG naming store.url, the masked value and the accepted forms', async () => {
    const err = await openError('postgres://app:secret@db.example.com/softswitch');
    assert.equal(err.code, 'STORE_ERR_CONFIG');
    assert.equal(err.key, 'store.url');
    assert.match(err.message, /^configuration key store\.url: "postgres:\/\/app:\*\*\*@db\.example\.com\/softswitch" is not valid: unsupported scheme "postgres:"/);
    assert.match(err.message, /sqlite:FILE/);
    assert.doesNotMatch(err.message, /secret/);
  });

  it('a mysql:// URL without a database is refused with STORE_ERR_CONFIG', async () => {
    const err = await openError('mysql://root:secret@127.0.0.1:3306/');
    assert.equal(err.code, 'STORE_ERR_CONFIG');
    assert.match(err.message, /database/);
    assert.doesNotMatch(err.message, /secret/);
  });

  it('a SQLite file whose folder cannot be created fails with STORE_ERR_CONNECT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-store-'));
    try {
      const blocker = join(dir, 'not-a-folder');
      writeFileSync(blocker, '');
      const err = await openError(`sqlite:${join(blocker, 'sub', 'x.db')}`);
      assert.equal(err.code, 'STORE_ERR_CONNECT');
      assert.match(err.message, /store\.url/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file that is not a database fails with STORE_ERR_CONNECT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-store-'));
    try {
      const file = join(dir, 'garbage.db');
      writeFileSync(file, 'this is not an SQLite database, only some text that is long enough to have a header'.repeat(10));
      const err = await openError(file);
      assert.equal(err.code, 'STORE_ERR_CONNECT');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sqlite::memory: opens an empty, migrated store', async () => {
    const store = await openStore({ url: 'sqlite::memory:', logger: silentLogger() });
    try {
      assert.equal(store.dialect, 'sqlite');
      assert.deepEqual(await store.domains.list(), []);
      await store.subscribers.add({ username: 'm', domain: 'mem.example.com', password: 'pw' });
      assert.equal((await store.subscribers.list()).length, 1);
    } finally {
      await store.close();
    }
  });

  it('a bare file path opens a SQLite store there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-store-'));
    try {
      const store = await openStore({ url: join(dir, 'bare.db'), logger: silentLogger() });
      await store.domains.add('bare.example.com');
      await store.close();
      const again = await openStore({ url: `sqlite:${join(dir, 'bare.db')}`, logger: silentLogger() });
      assert.ok(await again.domains.exists('bare.example.com'));
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('waits while another process holds the migration lock, then opens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-store-'));
    const url = `sqlite:${join(dir, 'locked.db')}`;
    const first = await openStore({ url, logger: silentLogger() });
    try {
      await first.knex('knex_migrations_lock').update({ is_locked: 1 });
      let opened = false;
      const second = openStore({ url, logger: silentLogger() }).then((s) => {
        opened = true;
        return s;
      });
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(opened, false);
      await first.knex('knex_migrations_lock').update({ is_locked: 0 });
      await (await second).close();
    } finally {
      await first.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite hot-path statements', () => {
  const binding = (contact: string, cseq: number) => ({
    aor: 'sip:hot@example.com', contact, callId: 'c1', cseq, expiresAt: Date.now() + 60_000, received: 'udp:192.0.2.1:5060',
  });

  it('a subscriber added by another process (the CLI) is found at once by the lookup', async () => {
    const db = await sqliteTarget.create();
    const server = await openStore({ url: db.url, logger: silentLogger() });
    const cli = await openStore({ url: db.url, logger: silentLogger() });
    try {
      assert.equal(await server.subscribers.get('carol', 'example.com'), undefined);
      await cli.subscribers.add({ username: 'carol', domain: 'example.com', password: 'pw-carol' });
      assert.equal((await server.subscribers.get('carol', 'example.com'))?.username, 'carol');
    } finally {
      await cli.close();
      await server.close();
      await db.drop();
    }
  });

  it('while another writer holds the database, bindings are written once it lets go, not lost and without blocking', async () => {
    const db = await sqliteTarget.create();
    const store = await openStore({ url: db.url, logger: silentLogger() });
    const { createRequire } = await import('node:module');
    const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string) => { exec(sql: string): void; close(): void };
    const other = new Database(db.file!);
    try {
      await store.locations.upsertMany([binding('sip:a@192.0.2.1', 1)]);
      other.exec('BEGIN IMMEDIATE');
      let settled = false;
      const write = store.locations.upsertMany([binding('sip:a@192.0.2.1', 2), binding('sip:b@192.0.2.1', 1)]).then(() => (settled = true));
      // The event loop keeps running while the write waits for the lock.
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(settled, false);
      other.exec('COMMIT');
      await write;
      const rows = await store.locations.listAor('sip:hot@example.com', Date.now());
      assert.deepEqual(rows.map((r) => [r.contact, r.cseq]), [['sip:a@192.0.2.1', 2], ['sip:b@192.0.2.1', 1]]);
    } finally {
      other.close();
      await store.close();
      await db.drop();
    }
  });
});

describe('SQLite files are private: HA1s are as good as passwords', () => {
  const mode = (path: string) => statSync(path).mode & 0o777;

  it('creates the missing folder 0700 and the file, its -wal and its -shm 0600, whatever the umask', async () => {
    const db = await sqliteTarget.create();
    const old = process.umask(0o022);
    try {
      const store = await openStore({ url: db.url, logger: silentLogger() });
      await store.domains.add('modes.example.com');
      try {
        assert.equal(mode(dirname(db.file!)), 0o700);
        for (const suffix of ['', '-wal', '-shm']) {
          assert.ok(existsSync(db.file! + suffix), `${suffix || 'the database'} exists`);
          assert.equal(mode(db.file! + suffix), 0o600, `mode of ${db.file! + suffix}`);
        }
      } finally {
        await store.close();
      }
    } finally {
      process.umask(old);
      await db.drop();
    }
  });

  it('tightens a file and -wal that an older version left 0644, with one log line naming them', async () => {
    const db = await sqliteTarget.create();
    try {
      const first = await openStore({ url: db.url, logger: silentLogger() });
      await first.domains.add('old.example.com');
      // Keep the -wal on disk: a second connection holds the database open while the modes are loosened.
      const { createRequire } = await import('node:module');
      const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string) => { exec(sql: string): void; close(): void };
      const holder = new Database(db.file!);
      holder.exec('select count(*) from domains');
      await first.close();
      chmodSync(db.file!, 0o644);
      chmodSync(db.file! + '-wal', 0o664);
      const { logger, lines } = captureLogger();
      const store = await openStore({ url: db.url, logger });
      try {
        assert.equal(mode(db.file!), 0o600);
        assert.equal(mode(db.file! + '-wal'), 0o600);
        const logged = lines.filter((l) => l.includes('tightened the permissions'));
        assert.equal(logged.length, 1);
        const entry = JSON.parse(logged[0]!) as { paths: Array<{ path: string; from: string }> };
        assert.deepEqual(entry.paths, [{ path: db.file!, from: '0644' }, { path: db.file! + '-wal', from: '0664' }]);
        assert.ok(await store.domains.exists('old.example.com'));
      } finally {
        holder.close();
        await store.close();
      }
      // Nothing left to tighten: no line at the next start.
      const { logger: quiet, lines: none } = captureLogger();
      await (await openStore({ url: db.url, logger: quiet })).close();
      assert.equal(none.filter((l) => l.includes('tightened')).length, 0);
    } finally {
      await db.drop();
    }
  });
});
