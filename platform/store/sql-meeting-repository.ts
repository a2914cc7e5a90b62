/**
 * Meetings (sql/0009_meetings.ts) on SQLite and MariaDB: the MeetingRepository contract of meeting-types.ts. Every
 * value is checked before any SQL runs, so one that cannot be stored is a TypeError.
 */
import { type SqlContext, checkInteger, checkText, optionalText, toNumber, toOptionalNumber, toOptionalString } from './sql-context.js';
import { StoreError } from './store-error.js';
import type { MeetingChange, MeetingQuery, MeetingRecord, MeetingRepository, NewMeeting } from './meeting-types.js';

/** The shape of a meeting id: 12 characters of RFC 4648 base32, lower case. */
export const MEETING_ID = /^[a-z2-7]{12}$/;
/** Participants a meeting may allow at most (one SFU room's sensible bound). */
export const MAX_MEETING_PARTICIPANTS = 1000;

interface MeetingRow {
  id: string;
  title: string;
  owner: string;
  starts_at: number | string | null;
  ends_at: number | string | null;
  password_hash: string | null;
  lobby: number | boolean;
  max_participants: number | string;
  recording_allowed: number | boolean;
  created_at: number | string;
  updated_at: number | string;
}

function toMeeting(r: MeetingRow): MeetingRecord {
  return {
    id: r.id, title: r.title, owner: r.owner, startsAt: toOptionalNumber(r.starts_at), endsAt: toOptionalNumber(r.ends_at),
    passwordHash: toOptionalString(r.password_hash), lobby: Boolean(toNumber(r.lobby)), maxParticipants: toNumber(r.max_participants),
    recordingAllowed: Boolean(toNumber(r.recording_allowed)), createdAt: toNumber(r.created_at), updatedAt: toNumber(r.updated_at),
  };
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !MEETING_ID.test(id)) throw new TypeError('a meeting id is 12 characters of a-z and 2-7');
  return id;
}

const time = (name: string, v: unknown): number => checkInteger(name, v, 0, Number.MAX_SAFE_INTEGER);
const optionalTime = (name: string, v: number | null | undefined): number | null => (v === undefined || v === null ? null : time(name, v));

function checkSchedule(startsAt: number | null, endsAt: number | null): void {
  if (startsAt !== null && endsAt !== null && endsAt <= startsAt) throw new TypeError('endsAt must be after startsAt');
}

function checkBoolean(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${name} must be true or false`);
  return v;
}

export class SqlMeetingRepository implements MeetingRepository {
  constructor(private readonly ctx: SqlContext, private readonly now: () => number = Date.now) {}

  async create(m: NewMeeting): Promise<MeetingRecord> {
    const at = this.now();
    const row: MeetingRow = {
      id: checkId(m.id), title: checkText('title', m.title, 255), owner: checkText('owner', m.owner, 511),
      starts_at: optionalTime('startsAt', m.startsAt), ends_at: optionalTime('endsAt', m.endsAt),
      password_hash: optionalText('passwordHash', m.passwordHash, 160), lobby: checkBoolean('lobby', m.lobby),
      max_participants: checkInteger('maxParticipants', m.maxParticipants, 1, MAX_MEETING_PARTICIPANTS),
      recording_allowed: checkBoolean('recordingAllowed', m.recordingAllowed), created_at: at, updated_at: at,
    };
    checkSchedule(row.starts_at as number | null, row.ends_at as number | null);
    await this.ctx.run('creating a meeting', (db) => db('meetings').insert(row), () => new StoreError('STORE_ERR_DUPLICATE', `meeting ${row.id} exists`));
    return toMeeting(row);
  }

  async get(id: string): Promise<MeetingRecord | undefined> {
    if (typeof id !== 'string' || !MEETING_ID.test(id)) return undefined;
    return this.ctx.run('reading a meeting', async (db) => {
      const row = (await db('meetings').where({ id }).first()) as MeetingRow | undefined;
      return row === undefined ? undefined : toMeeting(row);
    });
  }

  async list(query: MeetingQuery): Promise<MeetingRecord[]> {
    const limit = checkInteger('limit', query.limit, 1, 10_000);
    const owner = query.owner === undefined ? undefined : checkText('owner', query.owner, 511);
    const after = query.after === undefined ? undefined : { createdAt: time('after.createdAt', query.after.createdAt), id: checkId(query.after.id) };
    return this.ctx.run('listing meetings', async (db) => {
      const q = db('meetings').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
      if (owner !== undefined) void q.where({ owner });
      // (created_at, id) < (after): spelled out, as row-value comparison is not in every SQL dialect knex speaks.
      if (after !== undefined) {
        void q.where((w) => {
          void w.where('created_at', '<', after.createdAt).orWhere((same) => void same.where('created_at', after.createdAt).andWhere('id', '<', after.id));
        });
      }
      return ((await q) as MeetingRow[]).map(toMeeting);
    });
  }

  async update(id: string, change: MeetingChange): Promise<MeetingRecord> {
    checkId(id);
    const set: Partial<MeetingRow> = {};
    if (change.title !== undefined) set.title = checkText('title', change.title, 255);
    if (change.startsAt !== undefined) set.starts_at = optionalTime('startsAt', change.startsAt);
    if (change.endsAt !== undefined) set.ends_at = optionalTime('endsAt', change.endsAt);
    if (change.passwordHash !== undefined) set.password_hash = change.passwordHash === null ? null : checkText('passwordHash', change.passwordHash, 160);
    if (change.lobby !== undefined) set.lobby = checkBoolean('lobby', change.lobby);
    if (change.maxParticipants !== undefined) set.max_participants = checkInteger('maxParticipants', change.maxParticipants, 1, MAX_MEETING_PARTICIPANTS);
    if (change.recordingAllowed !== undefined) set.recording_allowed = checkBoolean('recordingAllowed', change.recordingAllowed);
    return this.ctx.run('changing a meeting', async (db) => db.transaction(async (trx) => {
      const row = (await trx('meetings').where({ id }).first()) as MeetingRow | undefined;
      if (row === undefined) throw new StoreError('STORE_ERR_NOT_FOUND', `no meeting ${id}`);
      const next = { ...row, ...set, updated_at: Math.max(this.now(), toNumber(row.updated_at)) };
      checkSchedule(toOptionalNumber(next.starts_at) ?? null, toOptionalNumber(next.ends_at) ?? null);
      await trx('meetings').where({ id }).update({ ...set, updated_at: next.updated_at });
      return toMeeting(next);
    }));
  }

  async removeOwnedBy(owner: string): Promise<number> {
    const who = checkText('owner', owner, 511);
    return this.ctx.run('deleting a user\'s meetings', async (db) => db('meetings').where({ owner: who }).del());
  }

  async remove(id: string): Promise<void> {
    checkId(id);
    await this.ctx.run('deleting a meeting', async (db) => {
      if ((await db('meetings').where({ id }).del()) === 0) throw new StoreError('STORE_ERR_NOT_FOUND', `no meeting ${id}`);
    });
  }
}
