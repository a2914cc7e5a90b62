import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { maskStoreUrl, parseStoreUrl, StoreError } from '../../../../platform/store/index.js';

function refused(url: string, reason: RegExp): void {
  assert.throws(() => parseStoreUrl(url), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, 'STORE_ERR_CONFIG');
    assert.equal(err.key, 'store.url');
    assert.match(err.message, /^configuration key store\.url: /);
    assert.match(err.message, reason);
    return true;
  });
}

describe('store.url forms', () => {
  it('sqlite:FILE names a SQLite file, relative or absolute', () => {
    assert.deepEqual(parseStoreUrl('sqlite:data/softswitch.db'), { dialect: 'sqlite', filename: 'data/softswitch.db' });
    assert.deepEqual(parseStoreUrl('sqlite:/var/lib/softswitch/s.db'), { dialect: 'sqlite', filename: '/var/lib/softswitch/s.db' });
    assert.deepEqual(parseStoreUrl('sqlite:///var/lib/softswitch/s.db'), { dialect: 'sqlite', filename: '/var/lib/softswitch/s.db' });
  });

  it('sqlite::memory: is an in-memory database', () => {
    assert.deepEqual(parseStoreUrl('sqlite::memory:'), { dialect: 'sqlite', filename: ':memory:' });
  });

  it('a bare file path is a SQLite file', () => {
    assert.deepEqual(parseStoreUrl('data/x.db'), { dialect: 'sqlite', filename: 'data/x.db' });
    assert.deepEqual(parseStoreUrl('/tmp/x.db'), { dialect: 'sqlite', filename: '/tmp/x.db' });
  });

  it('mysql://user:pass@host:port/db is MariaDB/MySQL, with escapes decoded and port 3306 by default', () => {
    assert.deepEqual(parseStoreUrl('mysql://app:p%40ss@db.example.com:3307/softswitch'), {
      dialect: 'mysql', host: 'db.example.com', port: 3307, user: 'app', password: 'p@ss', database: 'softswitch',
    });
    assert.deepEqual(parseStoreUrl('mariadb://root@[::1]/test'), {
      dialect: 'mysql', host: '::1', port: 3306, user: 'root', password: '', database: 'test',
    });
  });

  it('refuses an unknown scheme, an empty value, a missing file, user or database, and query parameters', () => {
    refused('postgres://u:p@h/db', /unsupported scheme "postgres:"/);
    refused('', /empty/);
    refused('sqlite:', /no file name/);
    refused('mysql://127.0.0.1/db', /no user/);
    refused('mysql://root@127.0.0.1', /database/);
    refused('mysql://root@127.0.0.1/db?ssl=true', /query parameters/);
  });

  it('masks the password of the userinfo, even one holding "@" or ":"', () => {
    assert.equal(maskStoreUrl('mysql://root:secret@127.0.0.1:1/x'), 'mysql://root:***@127.0.0.1:1/x');
    assert.equal(maskStoreUrl('mysql://root:se@c:ret@h/x'), 'mysql://root:***@h/x');
    assert.equal(maskStoreUrl('mysql://root@h/x'), 'mysql://root@h/x');
    assert.equal(maskStoreUrl('sqlite:data/x.db'), 'sqlite:data/x.db');
  });
});
