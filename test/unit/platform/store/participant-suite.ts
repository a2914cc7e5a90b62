/**
 * Meeting participants (platform/store/sql-participant-repository.ts) in the shared store suite (repository-suite.ts
 * runs it on every target: SQLite and MariaDB).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError, type NewParticipant, type SqlStore } from '../../../../platform/store/index.js';

const MEETING = 'mmmmmmmmmmmm';
const BOB = 'bob@example.com';

function participant(id: string, over: Partial<NewParticipant> = {}): NewParticipant {
  return { id, meetingId: MEETING, user: BOB, displayName: 'Bob', role: 'participant', state: 'waiting', ...over };
}

export function participantSuite(getStore: () => SqlStore): void {
  describe('meeting participants', () => {
    beforeEach(async () => {
      await getStore().knex('meeting_participants').del();
      await getStore().knex('meetings').del();
      await getStore().meetings.create({
        id: MEETING, title: 'Lobby', owner: 'alice@example.com', startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: true, maxParticipants: 10, recordingAllowed: false,
      });
    });

    it('create stores a waiting participant (no decision, no feed) and an admitted one (decided when asked, with its feed id); get reads them back', async () => {
      const repo = getStore().participants;
      const waiting = await repo.create(participant('aaaaaaaaaaaa'));
      assert.deepEqual({ ...waiting, askedAt: 0 }, {
        id: 'aaaaaaaaaaaa', meetingId: MEETING, user: BOB, displayName: 'Bob', role: 'participant', state: 'waiting', feedId: undefined, askedAt: 0, decidedAt: undefined, leftAt: undefined,
      });
      const admitted = await repo.create(participant('bbbbbbbbbbbb', { user: undefined, role: 'owner', state: 'admitted', feedId: 2 ** 48 + 5 }));
      assert.equal(admitted.decidedAt, admitted.askedAt);
      assert.deepEqual(await repo.get(MEETING, 'aaaaaaaaaaaa'), waiting);
      assert.deepEqual(await repo.get(MEETING, 'bbbbbbbbbbbb'), admitted);
      assert.equal((await repo.get(MEETING, 'bbbbbbbbbbbb'))?.feedId, 2 ** 48 + 5);
      assert.equal(await repo.get('nnnnnnnnnnnn', 'aaaaaaaaaaaa'), undefined, 'a participant is read within its own meeting');
      assert.equal(await repo.get(MEETING, 'not an id'), undefined);
      await assert.rejects(repo.create(participant('aaaaaaaaaaaa')), (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE');
    });

    it('refuses what does not fit with a TypeError, and a participant of an unknown meeting with STORE_ERR_NOT_FOUND', async () => {
      const repo = getStore().participants;
      const bad: NewParticipant[] = [
        participant('UPPERCASE123'), participant('cccccccccccc', { displayName: '' }), participant('cccccccccccc', { role: 'king' as 'owner' }),
        participant('cccccccccccc', { state: 'left' as 'waiting' }), participant('cccccccccccc', { state: 'admitted' }), participant('cccccccccccc', { state: 'admitted', feedId: 0 }),
      ];
      for (const p of bad) await assert.rejects(repo.create(p), TypeError, JSON.stringify(p));
      await assert.rejects(repo.create(participant('cccccccccccc', { meetingId: 'nnnnnnnnnnnn' })), (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND');
      assert.deepEqual(await repo.list(MEETING), []);
    });

    it('transition moves a participant only from the state named, once: decidedAt on admit/deny, leftAt on leave/kick, the feed id on admission', async () => {
      const repo = getStore().participants;
      await repo.create(participant('dddddddddddd'));
      const admitted = await repo.transition(MEETING, 'dddddddddddd', 'waiting', 'admitted', 77);
      assert.deepEqual([admitted?.state, admitted?.feedId, admitted?.decidedAt !== undefined, admitted?.leftAt], ['admitted', 77, true, undefined]);
      assert.equal(await repo.transition(MEETING, 'dddddddddddd', 'waiting', 'denied'), undefined, 'no longer waiting: a second decision does nothing');
      const kicked = await repo.transition(MEETING, 'dddddddddddd', 'admitted', 'kicked');
      assert.deepEqual([kicked?.state, kicked?.feedId, kicked?.leftAt !== undefined], ['kicked', 77, true]);
      assert.deepEqual(await repo.get(MEETING, 'dddddddddddd'), kicked);
      assert.equal(await repo.transition(MEETING, 'eeeeeeeeeeee', 'waiting', 'admitted', 1), undefined, 'unknown');
      await assert.rejects(repo.transition(MEETING, 'dddddddddddd', 'kicked', 'gone' as 'left'), TypeError);
    });

    it('list answers a meeting\'s participants in the order they asked, all or in the states named; count and current see the same rows', async () => {
      const repo = getStore().participants;
      await repo.create(participant('ffffffffffff'));
      await repo.create(participant('gggggggggggg', { user: 'carol@example.com' }));
      await repo.create(participant('hhhhhhhhhhhh', { user: 'alice@example.com', role: 'owner', state: 'admitted', feedId: 1 }));
      await repo.transition(MEETING, 'gggggggggggg', 'waiting', 'denied');
      assert.deepEqual((await repo.list(MEETING)).map((p) => p.id).sort(), ['ffffffffffff', 'gggggggggggg', 'hhhhhhhhhhhh']);
      const all = await repo.list(MEETING);
      assert.deepEqual(all.map((p) => p.id), [...all].sort((a, b) => a.askedAt - b.askedAt || (a.id < b.id ? -1 : 1)).map((p) => p.id));
      assert.deepEqual((await repo.list(MEETING, ['waiting', 'admitted'])).map((p) => p.id).sort(), ['ffffffffffff', 'hhhhhhhhhhhh']);
      assert.equal(await repo.count(MEETING, 'admitted'), 1);
      assert.equal(await repo.count(MEETING, 'denied'), 1);
      assert.equal((await repo.current(MEETING, BOB))?.id, 'ffffffffffff');
      assert.equal(await repo.current(MEETING, 'carol@example.com'), undefined, 'a denied participant has no current row');
    });

    it('setRole changes the role of a waiting or admitted participant only, and refuses a role that does not exist', async () => {
      const repo = getStore().participants;
      await repo.create(participant('jjjjjjjjjjjj', { state: 'admitted', feedId: 3 }));
      assert.equal((await repo.setRole(MEETING, 'jjjjjjjjjjjj', 'moderator'))?.role, 'moderator');
      assert.equal((await repo.get(MEETING, 'jjjjjjjjjjjj'))?.role, 'moderator');
      await repo.transition(MEETING, 'jjjjjjjjjjjj', 'admitted', 'left');
      assert.equal(await repo.setRole(MEETING, 'jjjjjjjjjjjj', 'participant'), undefined, 'a participant that left keeps the role it had');
      assert.equal((await repo.get(MEETING, 'jjjjjjjjjjjj'))?.role, 'moderator');
      assert.equal(await repo.setRole(MEETING, 'kkkkkkkkkkkk', 'moderator'), undefined, 'unknown');
      await assert.rejects(repo.setRole(MEETING, 'jjjjjjjjjjjj', 'king' as 'owner'), TypeError);
    });

    it('ofUser pages a user\'s participations across meetings newest first by a keyset that stays right while rows are added, with each meeting\'s title', async () => {
      const store = getStore();
      const repo = store.participants;
      const SECOND = 'nnnnnnnnnnnn';
      await store.meetings.create({
        id: SECOND, title: 'Retro', owner: 'carol@example.com', startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: true, maxParticipants: 10, recordingAllowed: false,
      });
      // Bob's rows in two meetings (two at the same instant, told apart by id), and carol's and a guest's, which are not his.
      const rows: Array<[string, string, number, string | undefined]> = [
        ['bbbbbbbbbbb2', MEETING, 1000, BOB], ['bbbbbbbbbbb3', SECOND, 2000, BOB], ['bbbbbbbbbbb4', MEETING, 3000, BOB], ['bbbbbbbbbbb5', SECOND, 3000, BOB],
        ['ccccccccccc2', SECOND, 2500, 'carol@example.com'], ['ggggggggggg2', MEETING, 2600, undefined],
      ];
      for (const [id, meetingId, at, user] of rows) {
        await repo.create(participant(id, { meetingId, user }));
        await store.knex('meeting_participants').where({ id }).update({ asked_at: at });
      }
      const all = await repo.ofUser(BOB, { limit: 10 });
      assert.deepEqual(all.map((p) => [p.id, p.askedAt, p.meetingTitle]), [
        ['bbbbbbbbbbb5', 3000, 'Retro'], ['bbbbbbbbbbb4', 3000, 'Lobby'], ['bbbbbbbbbbb3', 2000, 'Retro'], ['bbbbbbbbbbb2', 1000, 'Lobby'],
      ]);
      assert.deepEqual(all[0], { ...(await repo.get(SECOND, 'bbbbbbbbbbb5'))!, meetingTitle: 'Retro' }, 'the row as get() reads it, with the title');
      // Pages of one, each strictly after the last row of the one before; a row added before the cursor changes nothing after it.
      const first = await repo.ofUser(BOB, { limit: 1 });
      await repo.create(participant('bbbbbbbbbbb6', { meetingId: SECOND }));
      const paged = [...first];
      for (let last = first[0]!; ;) {
        const page = await repo.ofUser(BOB, { after: { askedAt: last.askedAt, id: last.id }, limit: 1 });
        if (page.length === 0) break;
        paged.push(...page);
        last = page[0]!;
      }
      assert.deepEqual(paged.map((p) => p.id), all.map((p) => p.id));
      assert.deepEqual((await repo.ofUser('carol@example.com', { limit: 10 })).map((p) => p.id), ['ccccccccccc2']);
      assert.deepEqual(await repo.ofUser('nobody@example.com', { limit: 10 }), []);
      await assert.rejects(repo.ofUser(BOB, { limit: 0 }), TypeError);
      await assert.rejects(repo.ofUser('', { limit: 1 }), TypeError);
    });

    it('deleting the meeting deletes its participants', async () => {
      const repo = getStore().participants;
      await repo.create(participant('iiiiiiiiiiii'));
      await getStore().meetings.remove(MEETING);
      assert.deepEqual(await repo.list(MEETING), []);
      assert.equal(await repo.get(MEETING, 'iiiiiiiiiiii'), undefined);
    });
  });
}
