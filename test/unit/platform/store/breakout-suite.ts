/**
 * Breakout rooms (platform/store/sql-breakout-repository.ts) in the shared store suite (repository-suite.ts runs it on
 * every target: SQLite and MariaDB).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError, type SqlStore } from '../../../../platform/store/index.js';

const MEETING = 'mmmmmmmmmmmm';
const OTHER = 'oooooooooooo';
const BOB = 'bbbbbbbbbbbb';
const CAROL = 'cccccccccccc';
const notFound = (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND';
const duplicate = (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE';

export function breakoutSuite(getStore: () => SqlStore): void {
  describe('breakout rooms', () => {
    beforeEach(async () => {
      const { knex, meetings, participants } = getStore();
      for (const table of ['breakout_assignments', 'breakout_rooms', 'meeting_breakouts', 'meeting_events', 'participant_media', 'meeting_moderation', 'meeting_participants', 'meetings']) await knex(table).del();
      for (const id of [MEETING, OTHER]) {
        await meetings.create({
          id, title: 'Split up', owner: 'alice@example.com', startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: false, maxParticipants: 10, recordingAllowed: false,
        });
      }
      await participants.create({ id: BOB, meetingId: MEETING, user: 'bob@example.com', displayName: 'Bob', role: 'participant', state: 'admitted', feedId: 9 });
      await participants.create({ id: CAROL, meetingId: MEETING, user: 'carol@example.com', displayName: 'Carol', role: 'participant', state: 'admitted', feedId: 10 });
    });

    it('a meeting that never had breakout rooms has none; an opened set reads back with its numbered rooms, its choice and its end time', async () => {
      const repo = getStore().breakouts;
      assert.equal(await repo.get(MEETING), undefined);
      const set = await repo.open({ meetingId: MEETING, names: ['Design', 'Ops'], allowChoose: true, endsAt: 1_900_000_000_000 });
      assert.equal(set.state, 'open');
      assert.equal(set.allowChoose, true);
      assert.equal(set.endsAt, 1_900_000_000_000);
      assert.equal(set.closedAt, undefined);
      assert.deepEqual(set.rooms, [{ number: 1, name: 'Design' }, { number: 2, name: 'Ops' }]);
      assert.deepEqual(set.assignments, []);
      assert.deepEqual(await repo.get(MEETING), set);
      assert.equal(await repo.get(OTHER), undefined, 'per meeting');
    });

    it('a second set is refused while one is open (STORE_ERR_DUPLICATE); a meeting that does not exist is STORE_ERR_NOT_FOUND; bad values are TypeErrors', async () => {
      const repo = getStore().breakouts;
      await repo.open({ meetingId: MEETING, names: ['A'], allowChoose: false, endsAt: undefined });
      await assert.rejects(repo.open({ meetingId: MEETING, names: ['B'], allowChoose: false, endsAt: undefined }), duplicate);
      await assert.rejects(repo.open({ meetingId: 'nnnnnnnnnnnn', names: ['A'], allowChoose: false, endsAt: undefined }), notFound);
      await assert.rejects(repo.open({ meetingId: OTHER, names: [], allowChoose: false, endsAt: undefined }), TypeError);
      await assert.rejects(repo.open({ meetingId: OTHER, names: Array.from({ length: 51 }, (_, i) => `r${i}`), allowChoose: false, endsAt: undefined }), TypeError);
      await assert.rejects(repo.open({ meetingId: OTHER, names: ['A'], allowChoose: false, endsAt: 1.5 }), TypeError);
      await assert.rejects(repo.assign(MEETING, BOB, -1), TypeError);
    });

    it('assign moves a participant between rooms and answers the room it was in (0: the main room); roomOf reads it', async () => {
      const repo = getStore().breakouts;
      await repo.open({ meetingId: MEETING, names: ['A', 'B'], allowChoose: false, endsAt: undefined });
      assert.equal(await repo.roomOf(MEETING, BOB), 0);
      assert.equal(await repo.assign(MEETING, BOB, 1), 0);
      assert.equal(await repo.assign(MEETING, CAROL, 2), 0);
      assert.equal(await repo.roomOf(MEETING, BOB), 1);
      assert.equal(await repo.assign(MEETING, BOB, 2), 1);
      assert.deepEqual((await repo.get(MEETING))!.assignments.map((a) => [a.participantId, a.room]).sort(), [[BOB, 2], [CAROL, 2]]);
      assert.equal(await repo.assign(MEETING, BOB, 0), 2, 'back to the main room');
      assert.equal(await repo.roomOf(MEETING, BOB), 0);
      assert.deepEqual((await repo.get(MEETING))!.assignments, [{ participantId: CAROL, room: 2 }]);
    });

    it('assign is STORE_ERR_NOT_FOUND without an open set, for a room the set has not, and for another meeting\'s participant', async () => {
      const repo = getStore().breakouts;
      await assert.rejects(repo.assign(MEETING, BOB, 1), notFound);
      await repo.open({ meetingId: MEETING, names: ['A'], allowChoose: false, endsAt: undefined });
      await repo.open({ meetingId: OTHER, names: ['A'], allowChoose: false, endsAt: undefined });
      await assert.rejects(repo.assign(MEETING, BOB, 2), notFound);
      await assert.rejects(repo.assign(OTHER, BOB, 1), notFound);
      await assert.rejects(repo.assign(MEETING, 'zzzzzzzzzzzz', 1), notFound);
    });

    it('close answers the assignments once (a second closer gets undefined), empties the rooms, and a new set replaces the closed one', async () => {
      const repo = getStore().breakouts;
      await repo.open({ meetingId: MEETING, names: ['A', 'B'], allowChoose: false, endsAt: undefined });
      await repo.assign(MEETING, BOB, 1);
      await repo.assign(MEETING, CAROL, 2);
      assert.deepEqual(await repo.close(MEETING), [{ participantId: BOB, room: 1 }, { participantId: CAROL, room: 2 }]);
      assert.equal(await repo.close(MEETING), undefined);
      const closed = (await repo.get(MEETING))!;
      assert.equal(closed.state, 'closed');
      assert.equal(typeof closed.closedAt, 'number');
      assert.deepEqual(closed.assignments, []);
      assert.equal(await repo.roomOf(MEETING, BOB), 0, 'everyone is in the main room');
      await assert.rejects(repo.assign(MEETING, BOB, 1), notFound, 'a closed set takes nobody');
      const again = await repo.open({ meetingId: MEETING, names: ['C'], allowChoose: true, endsAt: undefined });
      assert.deepEqual([again.state, again.rooms], ['open', [{ number: 1, name: 'C' }]]);
    });

    it('the rooms go with their meeting', async () => {
      const store = getStore();
      await store.breakouts.open({ meetingId: MEETING, names: ['A'], allowChoose: false, endsAt: undefined });
      await store.breakouts.assign(MEETING, BOB, 1);
      await store.meetings.remove(MEETING);
      assert.equal(await store.breakouts.get(MEETING), undefined);
      assert.deepEqual(await store.knex('breakout_assignments').select(), []);
    });
  });
}
