/**
 * Meeting moderation and its event log (sql/0011_meeting_moderation.ts) on SQLite and MariaDB: the ModerationRepository
 * contract of moderation-types.ts. Rows are created on first change (an upsert): a meeting nobody moderated has none.
 */
import { type SqlContext, isForeignKeyViolation, optionalText, toNumber, toOptionalString } from './sql-context.js';
import { StoreError } from './store-error.js';
import { MEETING_ID } from './sql-meeting-repository.js';
import {
  MEDIA_BLOCKS, MEDIA_KINDS, MEETING_EVENT_KINDS, type MediaBlock, type MediaKind, type MeetingEvent, type MeetingModeration, type ModerationRepository,
  type MediaBlocks, type NewMeetingEvent, type ParticipantMedia,
} from './moderation-types.js';

interface ModerationRow { meeting_id: string; locked: number | boolean; audio: string; video: string; updated_at: number | string }
interface MediaRow { participant_id: string; meeting_id: string; audio_mid: string | null; video_mid: string | null; audio: string; video: string }
interface EventRow { id: number | string; meeting_id: string; at: number | string; kind: string; actor: string | null; participant_id: string | null; detail: string | null }

function checkId(name: string, id: unknown): string {
  if (typeof id !== 'string' || !MEETING_ID.test(id)) throw new TypeError(`${name} is 12 characters of a-z and 2-7`);
  return id;
}

function checkMedia(v: unknown): MediaKind {
  if (!MEDIA_KINDS.includes(v as MediaKind)) throw new TypeError(`media must be one of ${MEDIA_KINDS.join(', ')}`);
  return v as MediaKind;
}

function checkBlock(v: unknown): MediaBlock {
  if (!MEDIA_BLOCKS.includes(v as MediaBlock)) throw new TypeError(`block must be one of ${MEDIA_BLOCKS.join(', ')}`);
  return v as MediaBlock;
}

/** A mid is an RFC 8843 identification-tag token: short, printable, no spaces. */
function checkMid(name: string, v: string | undefined): string | null {
  if (v === undefined) return null;
  if (typeof v !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(v)) throw new TypeError(`${name} is 1 to 64 printable characters without spaces`);
  return v;
}

const toModeration = (r: ModerationRow): MeetingModeration => ({ meetingId: r.meeting_id, locked: Boolean(r.locked), audio: r.audio as MediaBlock, video: r.video as MediaBlock });
const toMedia = (r: MediaRow): ParticipantMedia => ({
  participantId: r.participant_id, meetingId: r.meeting_id, audioMid: toOptionalString(r.audio_mid), videoMid: toOptionalString(r.video_mid),
  audio: r.audio as MediaBlock, video: r.video as MediaBlock,
});
const toEvent = (r: EventRow): MeetingEvent => ({
  id: toNumber(r.id), meetingId: r.meeting_id, at: toNumber(r.at), kind: r.kind as MeetingEvent['kind'], actor: toOptionalString(r.actor),
  participantId: toOptionalString(r.participant_id), detail: toOptionalString(r.detail),
});

export class SqlModerationRepository implements ModerationRepository {
  constructor(private readonly ctx: SqlContext, private readonly now: () => number = Date.now) {}

  async get(meetingId: string): Promise<MeetingModeration> {
    const id = checkId('meetingId', meetingId);
    return this.ctx.run('reading a meeting\'s moderation', async (db) => {
      const row = (await db('meeting_moderation').where({ meeting_id: id }).first()) as ModerationRow | undefined;
      return row === undefined ? { meetingId: id, locked: false, audio: 'none', video: 'none' } : toModeration(row);
    });
  }

  async setLocked(meetingId: string, locked: boolean): Promise<MeetingModeration> {
    if (typeof locked !== 'boolean') throw new TypeError('locked must be true or false');
    return this.upsertMeeting(meetingId, { locked });
  }

  async setMuteAll(meetingId: string, media: MediaKind, block: MediaBlock): Promise<MeetingModeration> {
    return this.upsertMeeting(meetingId, { [checkMedia(media)]: checkBlock(block) });
  }

  async reset(meetingId: string): Promise<void> {
    const id = checkId('meetingId', meetingId);
    await this.ctx.run('resetting a meeting\'s moderation', async (db) => db.transaction(async (trx) => {
      await trx('meeting_moderation').where({ meeting_id: id }).del();
      await trx('participant_media').where({ meeting_id: id }).del();
    }));
  }

  async media(meetingId: string, participantId: string): Promise<ParticipantMedia | undefined> {
    const mid = checkId('meetingId', meetingId);
    const pid = checkId('participantId', participantId);
    return this.ctx.run('reading a participant\'s media', async (db) => {
      const row = (await db('participant_media').where({ meeting_id: mid, participant_id: pid }).first()) as MediaRow | undefined;
      return row === undefined ? undefined : toMedia(row);
    });
  }

  async mediaOf(meetingId: string): Promise<ParticipantMedia[]> {
    const id = checkId('meetingId', meetingId);
    return this.ctx.run('reading a meeting\'s media', async (db) => ((await db('participant_media').where({ meeting_id: id }).orderBy('participant_id')) as MediaRow[]).map(toMedia));
  }

  async setStreams(meetingId: string, participantId: string, mids: { audioMid: string | undefined; videoMid: string | undefined }, initial?: MediaBlocks): Promise<ParticipantMedia> {
    return this.upsertMedia(meetingId, participantId, { audio_mid: checkMid('audioMid', mids.audioMid), video_mid: checkMid('videoMid', mids.videoMid) }, initial);
  }

  async setBlock(meetingId: string, participantId: string, media: MediaKind, block: MediaBlock, initial?: MediaBlocks): Promise<ParticipantMedia> {
    return this.upsertMedia(meetingId, participantId, { [checkMedia(media)]: checkBlock(block) }, initial);
  }

  async record(event: NewMeetingEvent): Promise<MeetingEvent> {
    if (!MEETING_EVENT_KINDS.includes(event.kind)) throw new TypeError(`kind must be one of ${MEETING_EVENT_KINDS.join(', ')}`);
    const row: Omit<EventRow, 'id'> = {
      meeting_id: checkId('meetingId', event.meetingId), at: this.now(), kind: event.kind, actor: optionalText('actor', event.actor, 511),
      participant_id: event.participantId === undefined ? null : checkId('participantId', event.participantId), detail: optionalText('detail', event.detail, 255),
    };
    const id = await this.ctx.run('recording a meeting event', async (db) => {
      try {
        const [inserted] = (await db('meeting_events').insert(row)) as number[];
        return inserted!;
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_NOT_FOUND', `no meeting ${row.meeting_id}`);
        throw err;
      }
    });
    return toEvent({ ...row, id });
  }

  async events(meetingId: string): Promise<MeetingEvent[]> {
    const id = checkId('meetingId', meetingId);
    return this.ctx.run('reading a meeting\'s events', async (db) => ((await db('meeting_events').where({ meeting_id: id })
      .orderBy([{ column: 'at', order: 'asc' }, { column: 'id', order: 'asc' }])) as EventRow[]).map(toEvent));
  }

  private async upsertMeeting(meetingId: string, set: Partial<Pick<ModerationRow, 'locked' | 'audio' | 'video'>>): Promise<MeetingModeration> {
    const id = checkId('meetingId', meetingId);
    const row: ModerationRow = { meeting_id: id, locked: false, audio: 'none', video: 'none', ...set, updated_at: this.now() };
    await this.ctx.run('changing a meeting\'s moderation', async (db) => {
      try {
        await db('meeting_moderation').insert(row).onConflict('meeting_id').merge({ ...set, updated_at: row.updated_at });
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_NOT_FOUND', `no meeting ${id}`);
        throw err;
      }
    });
    return this.get(id);
  }

  /** A new row starts from `initial` (the meeting's mute-all, for a participant moderation had not touched yet). */
  private async upsertMedia(
    meetingId: string, participantId: string, set: Partial<Pick<MediaRow, 'audio_mid' | 'video_mid' | 'audio' | 'video'>>, initial: MediaBlocks = { audio: 'none', video: 'none' },
  ): Promise<ParticipantMedia> {
    const first = { audio: checkBlock(initial.audio), video: checkBlock(initial.video) };
    const mid = checkId('meetingId', meetingId);
    const pid = checkId('participantId', participantId);
    await this.ctx.run('changing a participant\'s media', async (db) => {
      // The participant must be the meeting's: the foreign key checks it exists, this that it is this meeting's.
      const owner = (await db('meeting_participants').where({ id: pid, meeting_id: mid }).first('id')) as { id: string } | undefined;
      if (owner === undefined) throw new StoreError('STORE_ERR_NOT_FOUND', `no participant ${pid} in meeting ${mid}`);
      const row: MediaRow = { participant_id: pid, meeting_id: mid, audio_mid: null, video_mid: null, ...first, ...set };
      try {
        await db('participant_media').insert(row).onConflict('participant_id').merge(set);
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_NOT_FOUND', `no participant ${pid}`);
        throw err;
      }
    });
    return (await this.media(mid, pid))!;
  }
}

