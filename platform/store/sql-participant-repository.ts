/**
 * Meeting participants (sql/0010_meeting_participants.ts) on SQLite and MariaDB: the ParticipantRepository contract of
 * participant-types.ts. Every value is checked before any SQL runs, so one that cannot be stored is a TypeError.
 */
import { type SqlContext, checkInteger, checkText, isForeignKeyViolation, toNumber, toOptionalNumber, toOptionalString } from './sql-context.js';
import { StoreError } from './store-error.js';
import { MEETING_ID } from './sql-meeting-repository.js';
import {
  PARTICIPANT_ROLES, PARTICIPANT_STATES, type NewParticipant, type ParticipantRecord, type ParticipantRepository, type ParticipantRole, type ParticipantState,
  type ParticipationKey, type UserParticipation,
} from './participant-types.js';

/** Feed ids are JSON numbers a browser reads exactly: below 2^53. */
const MAX_FEED_ID = Number.MAX_SAFE_INTEGER;
/** The largest page of a user's participations. */
export const MAX_PARTICIPATION_PAGE = 1000;

interface ParticipantRow {
  id: string;
  meeting_id: string;
  user: string | null;
  display_name: string;
  role: string;
  state: string;
  feed_id: number | string | null;
  asked_at: number | string;
  decided_at: number | string | null;
  left_at: number | string | null;
}

function toParticipant(r: ParticipantRow): ParticipantRecord {
  return {
    id: r.id, meetingId: r.meeting_id, user: toOptionalString(r.user), displayName: r.display_name, role: r.role as ParticipantRole,
    state: r.state as ParticipantState, feedId: toOptionalNumber(r.feed_id), askedAt: toNumber(r.asked_at),
    decidedAt: toOptionalNumber(r.decided_at), leftAt: toOptionalNumber(r.left_at),
  };
}

function checkId(name: string, id: unknown): string {
  if (typeof id !== 'string' || !MEETING_ID.test(id)) throw new TypeError(`${name} is 12 characters of a-z and 2-7`);
  return id;
}

function checkState(name: string, v: unknown): ParticipantState {
  if (!PARTICIPANT_STATES.includes(v as ParticipantState)) throw new TypeError(`${name} must be one of ${PARTICIPANT_STATES.join(', ')}`);
  return v as ParticipantState;
}

const validId = (id: unknown): id is string => typeof id === 'string' && MEETING_ID.test(id);

export class SqlParticipantRepository implements ParticipantRepository {
  constructor(private readonly ctx: SqlContext, private readonly now: () => number = Date.now) {}

  async create(p: NewParticipant): Promise<ParticipantRecord> {
    const at = this.now();
    if (!PARTICIPANT_ROLES.includes(p.role)) throw new TypeError(`role must be one of ${PARTICIPANT_ROLES.join(', ')}`);
    if (p.state !== 'waiting' && p.state !== 'admitted') throw new TypeError('a new participant is waiting or admitted');
    if (p.state === 'admitted' && p.feedId === undefined) throw new TypeError('an admitted participant has a feed id');
    const row: ParticipantRow = {
      id: checkId('id', p.id), meeting_id: checkId('meetingId', p.meetingId), user: p.user === undefined ? null : checkText('user', p.user, 511),
      display_name: checkText('displayName', p.displayName, 255), role: p.role, state: p.state,
      feed_id: p.feedId === undefined ? null : checkInteger('feedId', p.feedId, 1, MAX_FEED_ID), asked_at: at, decided_at: p.state === 'admitted' ? at : null, left_at: null,
    };
    await this.ctx.run('adding a meeting participant', async (db) => {
      try {
        await db('meeting_participants').insert(row);
      } catch (err) {
        // The meeting went (deleted meanwhile): the caller answers "no such meeting".
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_NOT_FOUND', `no meeting ${row.meeting_id}`);
        throw err;
      }
    }, () => new StoreError('STORE_ERR_DUPLICATE', `participant ${row.id} exists`));
    return toParticipant(row);
  }

  async get(meetingId: string, id: string): Promise<ParticipantRecord | undefined> {
    if (!validId(meetingId) || !validId(id)) return undefined;
    return this.ctx.run('reading a meeting participant', async (db) => {
      const row = (await db('meeting_participants').where({ meeting_id: meetingId, id }).first()) as ParticipantRow | undefined;
      return row === undefined ? undefined : toParticipant(row);
    });
  }

  async list(meetingId: string, states?: readonly ParticipantState[]): Promise<ParticipantRecord[]> {
    if (!validId(meetingId)) return [];
    const wanted = states?.map((s, i) => checkState(`states[${i}]`, s));
    return this.ctx.run('listing meeting participants', async (db) => {
      const q = db('meeting_participants').where({ meeting_id: meetingId }).orderBy([{ column: 'asked_at', order: 'asc' }, { column: 'id', order: 'asc' }]);
      if (wanted !== undefined) void q.whereIn('state', wanted);
      return ((await q) as ParticipantRow[]).map(toParticipant);
    });
  }

  async current(meetingId: string, user: string): Promise<ParticipantRecord | undefined> {
    if (!validId(meetingId)) return undefined;
    const who = checkText('user', user, 511);
    return this.ctx.run('reading a user\'s meeting participant', async (db) => {
      const row = (await db('meeting_participants').where({ meeting_id: meetingId, user: who }).whereIn('state', ['waiting', 'admitted'])
        .orderBy([{ column: 'asked_at', order: 'desc' }, { column: 'id', order: 'desc' }]).first()) as ParticipantRow | undefined;
      return row === undefined ? undefined : toParticipant(row);
    });
  }

  async count(meetingId: string, state: ParticipantState): Promise<number> {
    if (!validId(meetingId)) return 0;
    const s = checkState('state', state);
    return this.ctx.run('counting meeting participants', async (db) => {
      const row = (await db('meeting_participants').where({ meeting_id: meetingId, state: s }).count({ n: '*' }).first()) as { n: number | string } | undefined;
      return row === undefined ? 0 : toNumber(row.n);
    });
  }

  async transition(meetingId: string, id: string, from: ParticipantState, to: ParticipantState, feedId?: number): Promise<ParticipantRecord | undefined> {
    checkState('from', from);
    checkState('to', to);
    if (!validId(meetingId) || !validId(id)) return undefined;
    const at = this.now();
    const set: Partial<ParticipantRow> = { state: to };
    if (to === 'admitted' || to === 'denied') set.decided_at = at;
    if (to === 'left' || to === 'kicked') set.left_at = at;
    if (feedId !== undefined) set.feed_id = checkInteger('feedId', feedId, 1, MAX_FEED_ID);
    return this.ctx.run('moving a meeting participant', async (db) => db.transaction(async (trx) => {
      // The state in the WHERE makes the move a compare-and-set: of two workers moving one participant, one wins.
      const changed = await trx('meeting_participants').where({ meeting_id: meetingId, id, state: from }).update(set);
      if (changed === 0) return undefined;
      const row = (await trx('meeting_participants').where({ meeting_id: meetingId, id }).first()) as ParticipantRow;
      return toParticipant(row);
    }));
  }

  async ofUser(user: string, options: { after?: ParticipationKey | undefined; limit: number }): Promise<UserParticipation[]> {
    const who = checkText('user', user, 511);
    const limit = checkInteger('limit', options.limit, 1, MAX_PARTICIPATION_PAGE);
    const after = options.after === undefined ? undefined
      : { askedAt: checkInteger('after.askedAt', options.after.askedAt, 0, Number.MAX_SAFE_INTEGER), id: checkText('after.id', options.after.id, 12) };
    return this.ctx.run('listing a user\'s meeting participations', async (db) => {
      // sql/0015's (user, asked_at, id) index serves the WHERE and the ORDER BY alike.
      const q = db('meeting_participants as p').join('meetings as m', 'm.id', 'p.meeting_id').select('p.*', 'm.title as meeting_title')
        .where('p.user', who).orderBy([{ column: 'p.asked_at', order: 'desc' }, { column: 'p.id', order: 'desc' }]).limit(limit);
      if (after !== undefined) {
        void q.where((w) => w.where('p.asked_at', '<', after.askedAt).orWhere((t) => t.where('p.asked_at', after.askedAt).andWhere('p.id', '<', after.id)));
      }
      return ((await q) as Array<ParticipantRow & { meeting_title: string }>).map((r) => ({ ...toParticipant(r), meetingTitle: r.meeting_title }));
    });
  }

  async setRole(meetingId: string, id: string, role: ParticipantRole): Promise<ParticipantRecord | undefined> {
    if (!PARTICIPANT_ROLES.includes(role)) throw new TypeError(`role must be one of ${PARTICIPANT_ROLES.join(', ')}`);
    if (!validId(meetingId) || !validId(id)) return undefined;
    return this.ctx.run('changing a meeting participant\'s role', async (db) => db.transaction(async (trx) => {
      const changed = await trx('meeting_participants').where({ meeting_id: meetingId, id }).whereIn('state', ['waiting', 'admitted']).update({ role });
      if (changed === 0) return undefined;
      return toParticipant((await trx('meeting_participants').where({ meeting_id: meetingId, id }).first()) as ParticipantRow);
    }));
  }
}
