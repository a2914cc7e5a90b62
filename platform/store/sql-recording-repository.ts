/**
 * Meeting recordings (sql/0013_meeting_recordings.ts) on SQLite and MariaDB: the RecordingRepository contract of
 * recording-types.ts.
 */
import { type SqlContext, isForeignKeyViolation, optionalText, toNumber, toOptionalNumber, toOptionalString } from './sql-context.js';
import { StoreError } from './store-error.js';
import { MEETING_ID } from './sql-meeting-repository.js';
import { RECORDED_MEDIA, type RecordedMedium, type RecordingFile, type RecordingRecord, type RecordingRepository } from './recording-types.js';

interface RecordingRow { id: string; meeting_id: string; started_at: number | string; started_by: string | null; stopped_at: number | string | null; stopped_by: string | null }
interface FileRow {
  file_id: string; recording_id: string; meeting_id: string; participant_id: string | null; feed_id: number | string; medium: string; content_type: string;
  size: number | string; created_at: number | string;
}

const FILE_ID = /^[A-Za-z0-9_-]{22}$/;

function checkId(name: string, id: unknown): string {
  if (typeof id !== 'string' || !MEETING_ID.test(id)) throw new TypeError(`${name} is 12 characters of a-z and 2-7`);
  return id;
}

const toFile = (r: FileRow): RecordingFile => ({
  fileId: r.file_id, recordingId: r.recording_id, meetingId: r.meeting_id, participantId: toOptionalString(r.participant_id), feedId: toNumber(r.feed_id),
  medium: r.medium as RecordedMedium, contentType: r.content_type, size: toNumber(r.size), createdAt: toNumber(r.created_at),
});
const toRecording = (r: RecordingRow, files: RecordingFile[]): RecordingRecord => ({
  id: r.id, meetingId: r.meeting_id, startedAt: toNumber(r.started_at), startedBy: toOptionalString(r.started_by),
  stoppedAt: toOptionalNumber(r.stopped_at), stoppedBy: toOptionalString(r.stopped_by), files,
});

export class SqlRecordingRepository implements RecordingRepository {
  constructor(private readonly ctx: SqlContext, private readonly now: () => number = Date.now) {}

  async start(recording: { id: string; meetingId: string; by: string | undefined }): Promise<RecordingRecord> {
    const row: RecordingRow = {
      id: checkId('id', recording.id), meeting_id: checkId('meetingId', recording.meetingId), started_at: this.now(),
      started_by: optionalText('by', recording.by, 511), stopped_at: null, stopped_by: null,
    };
    await this.ctx.run('starting a meeting recording', async (db) => db.transaction(async (trx) => {
      // One running session per meeting: checked in the transaction (SQLite serializes writers; on MariaDB two
      // starts at the same moment could both pass, and the second stop finds nothing to stop).
      if ((await trx('meeting_recordings').where({ meeting_id: row.meeting_id }).whereNull('stopped_at').first('id')) !== undefined) {
        throw new StoreError('STORE_ERR_DUPLICATE', `meeting ${row.meeting_id} is being recorded already`);
      }
      try {
        await trx('meeting_recordings').insert(row);
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_NOT_FOUND', `no meeting ${row.meeting_id}`);
        throw err;
      }
    }));
    return toRecording(row, []);
  }

  async running(meetingId: string): Promise<RecordingRecord | undefined> {
    const id = checkId('meetingId', meetingId);
    const row = await this.ctx.run('reading a running recording', async (db) => (await db('meeting_recordings').where({ meeting_id: id }).whereNull('stopped_at').first()) as RecordingRow | undefined);
    return row === undefined ? undefined : this.withFiles(row);
  }

  async stop(meetingId: string, by: string | undefined): Promise<RecordingRecord | undefined> {
    const id = checkId('meetingId', meetingId);
    const stoppedBy = optionalText('by', by, 511);
    const stoppedAt = this.now();
    const row = await this.ctx.run('stopping a meeting recording', async (db) => db.transaction(async (trx) => {
      const running = (await trx('meeting_recordings').where({ meeting_id: id }).whereNull('stopped_at').first()) as RecordingRow | undefined;
      if (running === undefined) return undefined;
      // Conditional: of two stops at once, one finds the row still running.
      const changed = await trx('meeting_recordings').where({ id: running.id }).whereNull('stopped_at').update({ stopped_at: stoppedAt, stopped_by: stoppedBy });
      return changed === 1 ? { ...running, stopped_at: stoppedAt, stopped_by: stoppedBy } : undefined;
    }));
    return row === undefined ? undefined : this.withFiles(row);
  }

  async addFile(file: Omit<RecordingFile, 'createdAt'>): Promise<RecordingFile> {
    if (typeof file.fileId !== 'string' || !FILE_ID.test(file.fileId)) throw new TypeError('fileId is 22 base64url characters');
    if (!RECORDED_MEDIA.includes(file.medium)) throw new TypeError(`medium must be one of ${RECORDED_MEDIA.join(', ')}`);
    if (!Number.isSafeInteger(file.feedId) || file.feedId <= 0) throw new TypeError('feedId must be a positive integer');
    if (!Number.isSafeInteger(file.size) || file.size < 0) throw new TypeError('size must be a non-negative integer');
    const row: FileRow = {
      file_id: file.fileId, recording_id: checkId('recordingId', file.recordingId), meeting_id: checkId('meetingId', file.meetingId),
      participant_id: file.participantId === undefined ? null : checkId('participantId', file.participantId), feed_id: file.feedId, medium: file.medium,
      content_type: optionalText('contentType', file.contentType, 64)!, size: file.size, created_at: this.now(),
    };
    await this.ctx.run('recording a meeting recording file', async (db) => {
      try {
        await db('meeting_recording_files').insert(row);
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_NOT_FOUND', `no recording ${row.recording_id}`);
        throw err;
      }
    });
    return toFile(row);
  }

  async get(recordingId: string): Promise<RecordingRecord | undefined> {
    const id = checkId('recordingId', recordingId);
    const row = await this.ctx.run('reading a recording', async (db) => (await db('meeting_recordings').where({ id }).first()) as RecordingRow | undefined);
    return row === undefined ? undefined : this.withFiles(row);
  }

  async list(meetingId: string): Promise<RecordingRecord[]> {
    const id = checkId('meetingId', meetingId);
    return this.ctx.run('listing a meeting\'s recordings', async (db) => {
      const rows = (await db('meeting_recordings').where({ meeting_id: id }).orderBy([{ column: 'started_at', order: 'asc' }, { column: 'id', order: 'asc' }])) as RecordingRow[];
      const files = (await db('meeting_recording_files').where({ meeting_id: id }).orderBy([{ column: 'created_at', order: 'asc' }, { column: 'file_id', order: 'asc' }])) as FileRow[];
      return rows.map((r) => toRecording(r, files.filter((f) => f.recording_id === r.id).map(toFile)));
    });
  }

  async file(fileId: string): Promise<RecordingFile | undefined> {
    if (typeof fileId !== 'string' || !FILE_ID.test(fileId)) return undefined;
    const row = await this.ctx.run('reading a recording file', async (db) => (await db('meeting_recording_files').where({ file_id: fileId }).first()) as FileRow | undefined);
    return row === undefined ? undefined : toFile(row);
  }

  private async withFiles(row: RecordingRow): Promise<RecordingRecord> {
    const files = await this.ctx.run('reading a recording\'s files', async (db) => (await db('meeting_recording_files').where({ recording_id: row.id })
      .orderBy([{ column: 'created_at', order: 'asc' }, { column: 'file_id', order: 'asc' }])) as FileRow[]);
    return toRecording(row, files.map(toFile));
  }
}
