/**
 * The presence allow lists (platform/store/sql-presence-repository.ts) in the shared store suite
 * (repository-suite.ts runs it on every target).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PRESENCE_USER, type SqlStore } from '../../../../platform/store/index.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';

export function presenceSuite(getStore: () => SqlStore): void {
  describe('presence allow lists', () => {
    beforeEach(async () => {
      await getStore().knex('presence_allow').del();
    });

    it('allow adds a watcher once: true the first time, false when it is there already', async () => {
      const repo = getStore().presence;
      const before = Date.now();
      assert.equal(await repo.allow(ALICE, BOB), true);
      assert.equal(await repo.allow(ALICE, BOB), false);
      assert.deepEqual(await repo.allowed(ALICE), [BOB]);
      const [row] = (await getStore().knex('presence_allow').select('created_at')) as Array<{ created_at: number | string }>;
      assert.ok(Number(row!.created_at) >= before && Number(row!.created_at) <= Date.now());
    });

    it('allowed lists one presentity\'s watchers by watcher; a list is not symmetric', async () => {
      const repo = getStore().presence;
      await repo.allow(ALICE, CAROL);
      await repo.allow(ALICE, BOB);
      await repo.allow(BOB, CAROL);
      assert.deepEqual(await repo.allowed(ALICE), [BOB, CAROL]);
      assert.deepEqual(await repo.allowed(BOB), [CAROL]);
      assert.deepEqual(await repo.allowed(CAROL), []);
      assert.equal(await repo.isAllowed(ALICE, BOB), true);
      assert.equal(await repo.isAllowed(BOB, ALICE), false);
    });

    it('user parts compare case-sensitively: Bob is not bob (RFC 3261 §19.1.4)', async () => {
      const repo = getStore().presence;
      await repo.allow(ALICE, BOB);
      assert.equal(await repo.isAllowed(ALICE, 'Bob@example.com'), false);
      assert.equal(await repo.allow(ALICE, 'Bob@example.com'), true);
      assert.deepEqual(await repo.allowed(ALICE), ['Bob@example.com', BOB]);
    });

    it('disallow removes a watcher: true when it was there, false when not', async () => {
      const repo = getStore().presence;
      await repo.allow(ALICE, BOB);
      assert.equal(await repo.disallow(ALICE, BOB), true);
      assert.equal(await repo.disallow(ALICE, BOB), false);
      assert.equal(await repo.isAllowed(ALICE, BOB), false);
      assert.deepEqual(await repo.allowed(ALICE), []);
    });

    it('forget removes the user\'s own list and its place on other lists, and says how many rows went', async () => {
      const repo = getStore().presence;
      await repo.allow(ALICE, BOB);
      await repo.allow(ALICE, CAROL);
      await repo.allow(BOB, ALICE);
      await repo.allow(CAROL, ALICE);
      await repo.allow(CAROL, BOB);
      assert.equal(await repo.forget(ALICE), 4);
      assert.deepEqual(await repo.allowed(ALICE), []);
      assert.deepEqual(await repo.allowed(BOB), []);
      assert.deepEqual(await repo.allowed(CAROL), [BOB]);
      assert.equal(await repo.forget(ALICE), 0);
    });

    it(`users of ${MAX_PRESENCE_USER} characters (non-ASCII too) fit the key; one longer or empty is a TypeError before any SQL`, async () => {
      const repo = getStore().presence;
      const domain = '@example.com';
      const longest = `${'é'.repeat(MAX_PRESENCE_USER - domain.length)}${domain}`;
      const watcher = `${'ж'.repeat(MAX_PRESENCE_USER - domain.length)}${domain}`;
      assert.equal(longest.length, MAX_PRESENCE_USER);
      assert.equal(await repo.allow(longest, watcher), true);
      assert.deepEqual(await repo.allowed(longest), [watcher]);
      assert.equal(await repo.isAllowed(longest, watcher), true);
      await assert.rejects(repo.allow(`x${longest}`, BOB), TypeError);
      await assert.rejects(repo.allow(ALICE, `x${watcher}`), TypeError);
      await assert.rejects(repo.allow('', BOB), TypeError);
      await assert.rejects(repo.isAllowed(ALICE, ''), TypeError);
      await assert.rejects(repo.allowed(`x${longest}`), TypeError);
      assert.deepEqual(await repo.allowed(ALICE), []);
    });
  });
}
