/**
 * Meeting recordings (platform/store/sql-recording-repository.ts) in the shared store suite (repository-suite.ts runs
 * it on every target: SQLite and MariaDB).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError, type SqlStore } from '../../../../platform/store/index.js';

const MEETING = 'rrrrrrrrrrrr';
const OTHER = 'ssssssssssss';
const BOB = 'bbbbbbbbbbbb';
const FIRST = 'aaaaaaaaaaa2';
const SECOND = 'aaaaaaaaaaa3';
const FILE = 'A'.repeat(21) + 'v';
const is = (code: string) => (err: unknown) => err instanceof StoreError && err.code === code;

export function recordingSuite(getStore: () => SqlStore): void {
  describe('meeting recordings', () => {
    beforeEach(async () => {
      const { knex, meetings, participants } = getStore();
      for (const table of ['meeting_recording_files', 'meeting_recordings', 'meeting_participants', 'meetings']) await knex(table).del();
      for (const id of [MEETING, OTHER]) {
        await meetings.create({
          id, title: 'Recorded', owner: 'alice@example.com', startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: false, maxParticipants: 10, recordingAllowed: true,
        });
      }
      await participants.create({ id: BOB, meetingId: MEETING, user: 'bob@example.com', displayName: 'Bob', role: 'participant', state: 'admitted', feedId: 9 });
    });

    it('a meeting has at most one running session: a second start is STORE_ERR_DUPLICATE until it stops, another meeting is apart', async () => {
      const repo = getStore().recordings;
      assert.equal(await repo.running(MEETING), undefined);
      const started = await repo.start({ id: FIRST, meetingId: MEETING, by: 'alice@example.com' });
      assert.deepEqual({ ...started, startedAt: 0 }, { id: FIRST, meetingId: MEETING, startedAt: 0, startedBy: 'alice@example.com', stoppedAt: undefined, stoppedBy: undefined, files: [] });
      assert.deepEqual(await repo.running(MEETING), started);
      await assert.rejects(repo.start({ id: SECOND, meetingId: MEETING, by: undefined }), is('STORE_ERR_DUPLICATE'));
      await repo.start({ id: SECOND, meetingId: OTHER, by: undefined });
      await assert.rejects(repo.start({ id: 'aaaaaaaaaaa4', meetingId: 'nnnnnnnnnnnn', by: undefined }), is('STORE_ERR_NOT_FOUND'));
      await assert.rejects(repo.start({ id: 'not an id', meetingId: MEETING, by: undefined }), TypeError);
    });

    it('stop ends the running session once (who, when); the next stop finds nothing, and a new session may start', async () => {
      const repo = getStore().recordings;
      assert.equal(await repo.stop(MEETING, undefined), undefined, 'nothing runs');
      const started = await repo.start({ id: FIRST, meetingId: MEETING, by: undefined });
      const stopped = await repo.stop(MEETING, 'carol@example.com');
      assert.ok(stopped);
      assert.equal(stopped.stoppedBy, 'carol@example.com');
      assert.ok(stopped.stoppedAt !== undefined && stopped.stoppedAt >= started.startedAt);
      assert.equal(await repo.stop(MEETING, 'carol@example.com'), undefined);
      assert.equal(await repo.running(MEETING), undefined);
      await repo.start({ id: SECOND, meetingId: MEETING, by: undefined });
      assert.deepEqual((await repo.list(MEETING)).map((r) => [r.id, r.stoppedBy]), [[FIRST, 'carol@example.com'], [SECOND, undefined]]);
    });

    it('a session\'s files are listed with it and found by file id; they go when the meeting does', async () => {
      const store = getStore();
      const repo = store.recordings;
      await repo.start({ id: FIRST, meetingId: MEETING, by: undefined });
      const file = await repo.addFile({ fileId: FILE, recordingId: FIRST, meetingId: MEETING, participantId: BOB, feedId: 9, medium: 'video', contentType: 'video/webm', size: 1234 });
      assert.deepEqual({ ...file, createdAt: 0 }, { fileId: FILE, recordingId: FIRST, meetingId: MEETING, participantId: BOB, feedId: 9, medium: 'video', contentType: 'video/webm', size: 1234, createdAt: 0 });
      assert.deepEqual((await repo.get(FIRST))?.files, [file]);
      assert.deepEqual((await repo.list(MEETING))[0]?.files, [file]);
      assert.deepEqual(await repo.file(FILE), file);
      assert.equal(await repo.file('B'.repeat(22)), undefined);
      await assert.rejects(repo.addFile({ ...file, fileId: 'C'.repeat(22), recordingId: 'nnnnnnnnnnnn' }), is('STORE_ERR_NOT_FOUND'));
      await assert.rejects(repo.addFile({ ...file, fileId: 'D'.repeat(22), medium: 'screen' as 'video' }), TypeError);
      await store.meetings.remove(MEETING);
      assert.equal(await repo.file(FILE), undefined);
      assert.deepEqual(await repo.list(MEETING), []);
    });
  });
}
