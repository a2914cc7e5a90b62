/**
 * Meeting moderation and its event log (platform/store/sql-moderation-repository.ts) in the shared store suite
 * (repository-suite.ts runs it on every target: SQLite and MariaDB).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError, type SqlStore } from '../../../../platform/store/index.js';

const MEETING = 'mmmmmmmmmmmm';
const OTHER = 'oooooooooooo';
const BOB = 'bbbbbbbbbbbb';
const notFound = (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND';

export function moderationSuite(getStore: () => SqlStore): void {
  describe('meeting moderation and events', () => {
    beforeEach(async () => {
      const { knex, meetings, participants } = getStore();
      for (const table of ['meeting_events', 'participant_media', 'meeting_moderation', 'meeting_participants', 'meetings']) await knex(table).del();
      for (const id of [MEETING, OTHER]) {
        await meetings.create({
          id, title: 'Moderated', owner: 'alice@example.com', startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: false, maxParticipants: 10, recordingAllowed: false,
        });
      }
      await participants.create({ id: BOB, meetingId: MEETING, user: 'bob@example.com', displayName: 'Bob', role: 'participant', state: 'admitted', feedId: 9 });
    });

    it('a meeting nobody moderated is unlocked with nothing muted; lock and mute-all change one thing each and read back', async () => {
      const repo = getStore().moderation;
      assert.deepEqual(await repo.get(MEETING), { meetingId: MEETING, locked: false, audio: 'none', video: 'none' });
      assert.deepEqual(await repo.setLocked(MEETING, true), { meetingId: MEETING, locked: true, audio: 'none', video: 'none' });
      assert.deepEqual(await repo.setMuteAll(MEETING, 'audio', 'hard'), { meetingId: MEETING, locked: true, audio: 'hard', video: 'none' });
      assert.deepEqual(await repo.setMuteAll(MEETING, 'video', 'soft'), { meetingId: MEETING, locked: true, audio: 'hard', video: 'soft' });
      assert.deepEqual(await repo.setLocked(MEETING, false), { meetingId: MEETING, locked: false, audio: 'hard', video: 'soft' });
      assert.deepEqual(await repo.get(OTHER), { meetingId: OTHER, locked: false, audio: 'none', video: 'none' }, 'per meeting');
      await assert.rejects(repo.setLocked('nnnnnnnnnnnn', true), notFound);
      await assert.rejects(repo.setMuteAll(MEETING, 'screen' as 'audio', 'hard'), TypeError);
      await assert.rejects(repo.setMuteAll(MEETING, 'audio', 'loud' as 'hard'), TypeError);
    });

    it('a participant\'s media row starts from the blocks given (the mute-all), keeps its mids across block changes, and belongs to its own meeting', async () => {
      const repo = getStore().moderation;
      assert.equal(await repo.media(MEETING, BOB), undefined);
      const reported = await repo.setStreams(MEETING, BOB, { audioMid: '0', videoMid: 'v1' }, { audio: 'hard', video: 'none' });
      assert.deepEqual(reported, { participantId: BOB, meetingId: MEETING, audioMid: '0', videoMid: 'v1', audio: 'hard', video: 'none' });
      assert.deepEqual(await repo.setBlock(MEETING, BOB, 'audio', 'none'), { ...reported, audio: 'none' });
      assert.deepEqual(await repo.setBlock(MEETING, BOB, 'video', 'soft', { audio: 'hard', video: 'hard' }), { ...reported, audio: 'none', video: 'soft' }, 'initial applies to a new row only');
      assert.deepEqual(await repo.mediaOf(MEETING), [{ ...reported, audio: 'none', video: 'soft' }]);
      assert.deepEqual(await repo.mediaOf(OTHER), []);
      await assert.rejects(repo.setStreams(OTHER, BOB, { audioMid: '0', videoMid: undefined }), notFound);
      await assert.rejects(repo.setStreams(MEETING, BOB, { audioMid: 'has space', videoMid: undefined }), TypeError);
      await assert.rejects(repo.setStreams(MEETING, BOB, { audioMid: 'x'.repeat(65), videoMid: undefined }), TypeError);
    });

    it('reset takes a meeting back to the defaults: unlocked, nothing muted, no media rows', async () => {
      const repo = getStore().moderation;
      await repo.setLocked(MEETING, true);
      await repo.setBlock(MEETING, BOB, 'audio', 'hard');
      await repo.reset(MEETING);
      assert.deepEqual(await repo.get(MEETING), { meetingId: MEETING, locked: false, audio: 'none', video: 'none' });
      assert.equal(await repo.media(MEETING, BOB), undefined);
    });

    it('record appends events that events() answers oldest first, per meeting; an unknown meeting is STORE_ERR_NOT_FOUND', async () => {
      const repo = getStore().moderation;
      const first = await repo.record({ meetingId: MEETING, kind: 'muted', actor: 'alice@example.com', participantId: BOB, detail: 'audio' });
      assert.deepEqual({ ...first, id: 0, at: 0 }, { id: 0, at: 0, meetingId: MEETING, kind: 'muted', actor: 'alice@example.com', participantId: BOB, detail: 'audio' });
      const second = await repo.record({ meetingId: MEETING, kind: 'locked', actor: undefined });
      await repo.record({ meetingId: OTHER, kind: 'ended', actor: undefined });
      assert.ok(second.id > first.id);
      assert.deepEqual(await repo.events(MEETING), [first, second]);
      assert.deepEqual((await repo.events(OTHER)).map((e) => e.kind), ['ended']);
      await assert.rejects(repo.record({ meetingId: 'nnnnnnnnnnnn', kind: 'locked', actor: undefined }), notFound);
      await assert.rejects(repo.record({ meetingId: MEETING, kind: 'shouted' as 'muted', actor: undefined }), TypeError);
    });

    it('deleting the meeting deletes its moderation, media rows and events', async () => {
      const store = getStore();
      await store.moderation.setLocked(MEETING, true);
      await store.moderation.setBlock(MEETING, BOB, 'audio', 'hard');
      await store.moderation.record({ meetingId: MEETING, kind: 'locked', actor: undefined });
      await store.meetings.remove(MEETING);
      for (const table of ['meeting_moderation', 'participant_media', 'meeting_events']) {
        assert.deepEqual(await store.knex(table).where({ meeting_id: MEETING }), [], table);
      }
    });
  });
}
