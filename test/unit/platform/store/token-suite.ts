/**
 * The admin token repository's part of the shared store suite (repository-suite.ts runs it on every target).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashAdminToken, type SqlStore } from '../../../../platform/store/index.js';
import { rejectsWith } from './targets.js';

export function tokenSuite(getStore: () => SqlStore): void {
  describe('admin tokens', () => {
    it('create returns sst_ and 32 random bytes in base64url, and stores only its SHA-256 with the times', async () => {
      const store = getStore();
      const before = Date.now();
      const { token, record } = await store.tokens.create({ name: 'deploy', expiresAt: before + 60_000 });
      assert.match(token, /^sst_[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(token.slice(4), 'base64url').length, 32);
      assert.deepEqual({ ...record, createdAt: 0 }, { id: record.id, name: 'deploy', createdAt: 0, expiresAt: before + 60_000, lastUsedAt: undefined });
      assert.ok(record.createdAt >= before && record.createdAt <= Date.now());
      const rows = (await store.knex('admin_tokens').select()) as Array<Record<string, unknown>>;
      assert.deepEqual(rows.map((r) => r.hash), [hashAdminToken(token)]);
      for (const row of rows) for (const v of Object.values(row)) assert.ok(!String(v).includes(token.slice(4, 20)), 'no part of the token is stored');
    });

    it('lookup finds a token by its text, expired ones too; an unknown, altered or malformed one gives undefined', async () => {
      const store = getStore();
      const { token, record } = await store.tokens.create({ name: 'lapsed', expiresAt: Date.now() - 1 });
      assert.deepEqual(await store.tokens.lookup(token), record);
      const altered = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
      for (const bad of [altered, 'sst_', '', token + 'x', token.toUpperCase(), `Bearer ${token}`]) assert.equal(await store.tokens.lookup(bad), undefined, bad);
    });

    it('a token without expiry keeps expiresAt undefined; list gives every token by id, without secrets', async () => {
      const store = getStore();
      const { record } = await store.tokens.create({ name: 'forever' });
      assert.equal(record.expiresAt, undefined);
      const list = await store.tokens.list();
      assert.deepEqual(list.map((t) => t.name), ['deploy', 'lapsed', 'forever']);
      assert.ok(list.every((t) => !('hash' in t) && !('token' in t)));
    });

    it('touch records the last use', async () => {
      const store = getStore();
      const [first] = await store.tokens.list();
      await store.tokens.touch(first!.id, 1_800_000_000_000);
      assert.equal((await store.tokens.list())[0]!.lastUsedAt, 1_800_000_000_000);
    });

    it('names are unique, start with a letter, and hold only letters, digits, ".", "_", "-"', async () => {
      const store = getStore();
      await rejectsWith(store.tokens.create({ name: 'deploy' }), 'STORE_ERR_DUPLICATE', /a token named deploy already exists/);
      for (const bad of ['', '1st', 'with space', 'x'.repeat(65), 'ä']) await assert.rejects(store.tokens.create({ name: bad }), TypeError, bad);
      await assert.rejects(store.tokens.create({ name: 'neg', expiresAt: -5 }), TypeError);
    });

    it('revoke by name or id deletes the token and returns it; an unknown one is STORE_ERR_NOT_FOUND', async () => {
      const store = getStore();
      const { token, record } = await store.tokens.create({ name: 'short' });
      assert.equal((await store.tokens.revoke('short')).id, record.id);
      assert.equal(await store.tokens.lookup(token), undefined);
      const other = await store.tokens.create({ name: 'by-id' });
      assert.equal((await store.tokens.revoke(other.record.id)).name, 'by-id');
      await rejectsWith(store.tokens.revoke('short'), 'STORE_ERR_NOT_FOUND', /no token named short/);
      await rejectsWith(store.tokens.revoke(424242), 'STORE_ERR_NOT_FOUND', /no token with id 424242/);
    });

    it('purgeExpired deletes expired tokens, only those of a name prefix when given (compared exactly, not as LIKE)', async () => {
      const store = getStore();
      const now = Date.now();
      await store.tokens.create({ name: 'cli-a', expiresAt: now - 10 });
      await store.tokens.create({ name: 'cliXb', expiresAt: now - 10 });
      await store.tokens.create({ name: 'cli-live', expiresAt: now + 60_000 });
      assert.equal(await store.tokens.purgeExpired(now, 'cli-'), 1);
      assert.deepEqual((await store.tokens.list()).map((t) => t.name), ['deploy', 'lapsed', 'forever', 'cliXb', 'cli-live']);
      assert.equal(await store.tokens.purgeExpired(now), 2);
      assert.deepEqual((await store.tokens.list()).map((t) => t.name), ['deploy', 'forever', 'cli-live']);
    });
  });
}
