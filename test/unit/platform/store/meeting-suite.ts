/**
 * Meetings (platform/store/sql-meeting-repository.ts) in the shared store suite (repository-suite.ts runs it on every
 * target: SQLite and MariaDB).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError, type NewMeeting, type SqlStore } from '../../../../platform/store/index.js';

const ALICE = 'alice@example.com';

function meeting(id: string, over: Partial<NewMeeting> = {}): NewMeeting {
  return {
    id, title: 'Weekly', owner: ALICE, startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: true, maxParticipants: 50, recordingAllowed: false, ...over,
  };
}

export function meetingSuite(getStore: () => SqlStore): void {
  describe('meetings', () => {
    beforeEach(async () => {
      await getStore().knex('meetings').del();
    });

    it('create stores every field and get reads it back; the same id again is STORE_ERR_DUPLICATE', async () => {
      const repo = getStore().meetings;
      const created = await repo.create(meeting('aaaaaaaaaaaa', { startsAt: 1_800_000_000_000, endsAt: 1_800_000_360_000, passwordHash: 'scrypt$x', lobby: false, recordingAllowed: true }));
      assert.deepEqual(await repo.get('aaaaaaaaaaaa'), created);
      assert.deepEqual({ ...created, createdAt: 0, updatedAt: 0 }, {
        id: 'aaaaaaaaaaaa', title: 'Weekly', owner: ALICE, startsAt: 1_800_000_000_000, endsAt: 1_800_000_360_000, passwordHash: 'scrypt$x',
        lobby: false, maxParticipants: 50, recordingAllowed: true, createdAt: 0, updatedAt: 0,
      });
      await assert.rejects(repo.create(meeting('aaaaaaaaaaaa')), (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE');
      assert.equal(await repo.get('bbbbbbbbbbbb'), undefined);
      assert.equal(await repo.get('not an id'), undefined);
    });

    it('refuses what does not fit with a TypeError before any SQL: a bad id, an empty title, an end before the start, 0 participants', async () => {
      const repo = getStore().meetings;
      for (const bad of [meeting('UPPERCASE123'), meeting('cccccccccccc', { title: '' }), meeting('cccccccccccc', { startsAt: 2000, endsAt: 1000 }), meeting('cccccccccccc', { maxParticipants: 0 })]) {
        await assert.rejects(repo.create(bad), TypeError, JSON.stringify(bad));
      }
      assert.equal(await repo.get('cccccccccccc'), undefined);
    });

    it('list pages newest first by (createdAt, id), one owner\'s or all, every meeting once', async () => {
      const repo = getStore().meetings;
      const ids = ['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'cccccccccccc', 'dddddddddddd', 'eeeeeeeeeeee'];
      for (const id of ids) await repo.create(meeting(id, id === 'cccccccccccc' ? { owner: 'bob@example.com' } : {}));
      const all = await repo.list({ limit: 10 });
      const expected = [...all].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)).map((m) => m.id);
      assert.deepEqual(all.map((m) => m.id), expected);
      const seen: string[] = [];
      let after: { createdAt: number; id: string } | undefined;
      for (;;) {
        const page = await repo.list({ limit: 2, after });
        if (page.length === 0) break;
        seen.push(...page.map((m) => m.id));
        after = { createdAt: page[page.length - 1]!.createdAt, id: page[page.length - 1]!.id };
      }
      assert.deepEqual(seen, expected);
      assert.deepEqual((await repo.list({ owner: 'bob@example.com', limit: 10 })).map((m) => m.id), ['cccccccccccc']);
    });

    it('update changes only what it names, null clears, and keeps the schedule in order; an unknown id is STORE_ERR_NOT_FOUND', async () => {
      const repo = getStore().meetings;
      await repo.create(meeting('ffffffffffff', { startsAt: 1000, endsAt: 5000, passwordHash: 'scrypt$y' }));
      const changed = await repo.update('ffffffffffff', { title: 'Renamed', passwordHash: null, endsAt: null, lobby: false });
      assert.deepEqual([changed.title, changed.passwordHash, changed.startsAt, changed.endsAt, changed.lobby, changed.maxParticipants], ['Renamed', undefined, 1000, undefined, false, 50]);
      assert.deepEqual(await repo.get('ffffffffffff'), changed);
      await assert.rejects(repo.update('ffffffffffff', { endsAt: 500 }), TypeError);
      await assert.rejects(repo.update('gggggggggggg', { title: 'x' }), (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND');
    });

    it('removeOwnedBy deletes one owner\'s meetings and no one else\'s', async () => {
      const repo = getStore().meetings;
      await repo.create(meeting('iiiiiiiiiiii'));
      await repo.create(meeting('jjjjjjjjjjjj'));
      await repo.create(meeting('kkkkkkkkkkkk', { owner: 'bob@example.com' }));
      assert.equal(await repo.removeOwnedBy(ALICE), 2);
      assert.deepEqual((await repo.list({ limit: 10 })).map((m) => m.id), ['kkkkkkkkkkkk']);
    });

    it('remove deletes the meeting; again is STORE_ERR_NOT_FOUND', async () => {
      const repo = getStore().meetings;
      await repo.create(meeting('hhhhhhhhhhhh'));
      await repo.remove('hhhhhhhhhhhh');
      assert.equal(await repo.get('hhhhhhhhhhhh'), undefined);
      await assert.rejects(repo.remove('hhhhhhhhhhhh'), (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND');
    });
  });
}
