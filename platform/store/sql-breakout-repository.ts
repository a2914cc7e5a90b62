/**
 * Breakout rooms (sql/0012_breakout_rooms.ts) on SQLite and MariaDB: the BreakoutRepository contract of breakout-types.ts.
 * Every value is checked before any SQL runs, so one that cannot be stored is a TypeError.
 */
import { type SqlContext, checkText, isForeignKeyViolation, toNumber, toOptionalNumber } from './sql-context.js';
import { StoreError } from './store-error.js';
import { MEETING_ID } from './sql-meeting-repository.js';
import { MAX_BREAKOUT_ROOMS, type BreakoutAssignment, type BreakoutRepository, type BreakoutSet, type NewBreakoutSet } from './breakout-types.js';

interface SetRow { meeting_id: string; state: string; allow_choose: number | boolean; opened_at: number | string; ends_at: number | string | null; closed_at: number | string | null }
interface RoomRow { number: number | string; name: string }
interface AssignmentRow { participant_id: string; number: number | string }

function checkId(name: string, id: unknown): string {
  if (typeof id !== 'string' || !MEETING_ID.test(id)) throw new TypeError(`${name} is 12 characters of a-z and 2-7`);
  return id;
}

const toAssignment = (r: AssignmentRow): BreakoutAssignment => ({ participantId: r.participant_id, room: toNumber(r.number) });

export class SqlBreakoutRepository implements BreakoutRepository {
  constructor(private readonly ctx: SqlContext, private readonly now: () => number = Date.now) {}

  async get(meetingId: string): Promise<BreakoutSet | undefined> {
    const id = checkId('meetingId', meetingId);
    return this.ctx.run('reading a meeting\'s breakout rooms', async (db) => {
      const set = (await db('meeting_breakouts').where({ meeting_id: id }).first()) as SetRow | undefined;
      if (set === undefined) return undefined;
      const rooms = (await db('breakout_rooms').where({ meeting_id: id }).orderBy('number')) as RoomRow[];
      const assigned = (await db('breakout_assignments').where({ meeting_id: id }).orderBy(['number', 'assigned_at', 'participant_id'])) as AssignmentRow[];
      return {
        meetingId: id, state: set.state === 'open' ? 'open' : 'closed', allowChoose: Boolean(set.allow_choose), openedAt: toNumber(set.opened_at),
        endsAt: toOptionalNumber(set.ends_at), closedAt: toOptionalNumber(set.closed_at),
        rooms: rooms.map((r) => ({ number: toNumber(r.number), name: r.name })), assignments: assigned.map(toAssignment),
      };
    });
  }

  async open(set: NewBreakoutSet): Promise<BreakoutSet> {
    const id = checkId('meetingId', set.meetingId);
    if (!Array.isArray(set.names) || set.names.length < 1 || set.names.length > MAX_BREAKOUT_ROOMS) throw new TypeError(`a meeting has 1 to ${MAX_BREAKOUT_ROOMS} breakout rooms`);
    const names = set.names.map((n, i) => checkText(`names[${i}]`, n, 255));
    if (typeof set.allowChoose !== 'boolean') throw new TypeError('allowChoose must be true or false');
    if (set.endsAt !== undefined && !Number.isSafeInteger(set.endsAt)) throw new TypeError('endsAt must be a time in milliseconds');
    const row: SetRow = { meeting_id: id, state: 'open', allow_choose: set.allowChoose, opened_at: this.now(), ends_at: set.endsAt ?? null, closed_at: null };
    await this.ctx.run('opening breakout rooms', async (db) => db.transaction(async (trx) => {
      const existing = (await trx('meeting_breakouts').where({ meeting_id: id }).first('state')) as { state: string } | undefined;
      if (existing?.state === 'open') throw new StoreError('STORE_ERR_DUPLICATE', `meeting ${id} has breakout rooms open`);
      // The closed set's rooms (and, by cascade, any assignment left) go with it.
      if (existing !== undefined) await trx('meeting_breakouts').where({ meeting_id: id, state: 'closed' }).del();
      try {
        await trx('meeting_breakouts').insert(row);
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_NOT_FOUND', `no meeting ${id}`);
        throw err;
      }
      await trx('breakout_rooms').insert(names.map((name, i) => ({ meeting_id: id, number: i + 1, name })));
    }));
    return (await this.get(id))!;
  }

  async assign(meetingId: string, participantId: string, room: number): Promise<number> {
    const mid = checkId('meetingId', meetingId);
    const pid = checkId('participantId', participantId);
    if (!Number.isSafeInteger(room) || room < 0 || room > MAX_BREAKOUT_ROOMS) throw new TypeError(`room is 0 (the main room) to ${MAX_BREAKOUT_ROOMS}`);
    return this.ctx.run('assigning a breakout room', async (db) => db.transaction(async (trx) => {
      const set = (await trx('meeting_breakouts').where({ meeting_id: mid, state: 'open' }).first('meeting_id')) as { meeting_id: string } | undefined;
      if (set === undefined) throw new StoreError('STORE_ERR_NOT_FOUND', `meeting ${mid} has no breakout rooms open`);
      if (room !== 0 && (await trx('breakout_rooms').where({ meeting_id: mid, number: room }).first('number')) === undefined) {
        throw new StoreError('STORE_ERR_NOT_FOUND', `meeting ${mid} has no breakout room ${room}`);
      }
      const owner = (await trx('meeting_participants').where({ id: pid, meeting_id: mid }).first('id')) as { id: string } | undefined;
      if (owner === undefined) throw new StoreError('STORE_ERR_NOT_FOUND', `no participant ${pid} in meeting ${mid}`);
      const was = (await trx('breakout_assignments').where({ participant_id: pid }).first('number')) as { number: number | string } | undefined;
      if (room === 0) await trx('breakout_assignments').where({ participant_id: pid }).del();
      else await trx('breakout_assignments').insert({ participant_id: pid, meeting_id: mid, number: room, assigned_at: this.now() }).onConflict('participant_id').merge(['number', 'assigned_at']);
      return was === undefined ? 0 : toNumber(was.number);
    }));
  }

  async roomOf(meetingId: string, participantId: string): Promise<number> {
    const mid = checkId('meetingId', meetingId);
    const pid = checkId('participantId', participantId);
    return this.ctx.run('reading a breakout assignment', async (db) => {
      const row = (await db('breakout_assignments').where({ participant_id: pid, meeting_id: mid }).first('number')) as { number: number | string } | undefined;
      return row === undefined ? 0 : toNumber(row.number);
    });
  }

  async close(meetingId: string): Promise<BreakoutAssignment[] | undefined> {
    const id = checkId('meetingId', meetingId);
    return this.ctx.run('closing breakout rooms', async (db) => db.transaction(async (trx) => {
      // The state change is the guard: of two closers at once, one changes the row and gets the assignments.
      const changed = await trx('meeting_breakouts').where({ meeting_id: id, state: 'open' }).update({ state: 'closed', closed_at: this.now() });
      if (changed === 0) return undefined;
      const assigned = ((await trx('breakout_assignments').where({ meeting_id: id }).orderBy(['number', 'participant_id'])) as AssignmentRow[]).map(toAssignment);
      await trx('breakout_assignments').where({ meeting_id: id }).del();
      return assigned;
    }));
  }
}
