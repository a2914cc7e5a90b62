/**
 * The call history (sql/0004_calls.ts): one row per CallRecord, written once, listed newest first with an
 * opaque cursor. The record is validated before any SQL runs, so a record that cannot be stored is a
 * TypeError and never half a transaction.
 */
import type { Knex } from 'knex';
import type { SqliteStatements } from './sqlite-statements.js';
import { type SqlContext, checkInteger, checkText, isUniqueViolation, optionalText, toNumber, toOptionalNumber, toOptionalString } from './sql-context.js';
import type { CallDirection, CallDisposition, CallHangupBy, CallPage, CallParty, CallQuery, CallRecord, CallRepository } from './types.js';

export interface CallRow {
  id: string;
  call_id: string;
  caller_user: string | null;
  caller_domain: string | null;
  caller_name: string | null;
  caller_number: string | null;
  caller_uri: string;
  callee_user: string | null;
  callee_domain: string | null;
  callee_name: string | null;
  callee_number: string | null;
  callee_uri: string;
  direction: string;
  disposition: string;
  started_at: number | string;
  answered_at: number | string | null;
  ended_at: number | string;
  duration: number | string;
  billable_seconds: number | string;
  final_code: number | string;
  final_reason: string | null;
  hangup_by: string | null;
  end_cause: string;
  answered_device: string | null;
  answered_aor: string | null;
  backend: string | null;
  media_relayed: number | boolean | string;
  media_node: string | null;
}

const COLUMNS = [
  'id', 'call_id', 'caller_user', 'caller_domain', 'caller_name', 'caller_number', 'caller_uri', 'callee_user', 'callee_domain',
  'callee_name', 'callee_number', 'callee_uri', 'direction', 'disposition', 'started_at', 'answered_at', 'ended_at', 'duration',
  'billable_seconds', 'final_code', 'final_reason', 'hangup_by', 'end_cause', 'answered_device', 'answered_aor', 'backend',
  'media_relayed', 'media_node',
] as const;

export const CALL_DIRECTIONS = ['user-user', 'user-pstn', 'pstn-user'] as const satisfies readonly CallDirection[];
export const CALL_DISPOSITIONS = ['answered', 'no-answer', 'busy', 'cancelled', 'failed', 'rejected'] as const satisfies readonly CallDisposition[];
const HANGUP_BY: readonly CallHangupBy[] = ['caller', 'callee', 'system'];
const END_CAUSES: ReadonlyArray<CallRecord['endCause']> = ['bye', 'cancel', 'failure', 'timeout', 'keepalive', 'shutdown'];

/** The longest dialog id (the `id` columns of calls and dialogs). */
export const MAX_DIALOG_ID = 64;
/** A TEXT column holds 65,535 bytes on MariaDB. */
const TEXT = 65_535;
const MAX_MS = Number.MAX_SAFE_INTEGER;
const MAX_INT32 = 2 ** 31 - 1;
export const MAX_CALL_PAGE = 500;

function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new TypeError(`${name} must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** Optional free text: absent or empty is NULL (an empty display name is no display name). */
function optional(name: string, value: string | undefined, max: number): string | null {
  return optionalText(name, value === '' ? undefined : value, max);
}

/** Host names compare case-insensitively (RFC 3261 §19.1.4): stored lower-case, as in `domains`. */
function optionalDomain(name: string, value: string | undefined): string | null {
  return optional(name, value, 255)?.toLowerCase() ?? null;
}

/** The columns of one party: `caller_user` … `caller_uri`. */
type PartyRow<P extends string> = { [K in `${P}_${'user' | 'domain' | 'name' | 'number'}`]: string | null } & { [K in `${P}_uri`]: string };

function partyRow<P extends 'caller' | 'callee'>(prefix: P, p: CallParty): PartyRow<P> {
  if (typeof p !== 'object' || p === null) throw new TypeError(`${prefix} must be an object`);
  return {
    [`${prefix}_user`]: optional(`${prefix}.user`, p.user, 255),
    [`${prefix}_domain`]: optionalDomain(`${prefix}.domain`, p.domain),
    [`${prefix}_name`]: optional(`${prefix}.displayName`, p.displayName, TEXT),
    [`${prefix}_number`]: optional(`${prefix}.number`, p.number, 255),
    [`${prefix}_uri`]: checkText(`${prefix}.uri`, p.uri, TEXT),
  } as PartyRow<P>;
}

/** The record as its row; TypeError for a value the record may not have. */
export function callRow(r: CallRecord): CallRow {
  if (typeof r.mediaRelayed !== 'boolean') throw new TypeError('mediaRelayed must be a boolean');
  return {
    id: checkText('id', r.id, MAX_DIALOG_ID),
    call_id: checkText('callId', r.callId, TEXT),
    ...partyRow('caller', r.caller),
    ...partyRow('callee', r.callee),
    direction: checkOneOf('direction', r.direction, CALL_DIRECTIONS),
    disposition: checkOneOf('disposition', r.disposition, CALL_DISPOSITIONS),
    started_at: checkInteger('startedAt', r.startedAt, 0, MAX_MS),
    answered_at: r.answeredAt === undefined ? null : checkInteger('answeredAt', r.answeredAt, 0, MAX_MS),
    ended_at: checkInteger('endedAt', r.endedAt, 0, MAX_MS),
    duration: checkInteger('duration', r.duration, 0, MAX_INT32),
    billable_seconds: checkInteger('billableSeconds', r.billableSeconds, 0, MAX_INT32),
    final_code: checkInteger('finalCode', r.finalCode, 100, 699),
    final_reason: optional('finalReason', r.finalReason, TEXT),
    hangup_by: r.hangupBy === undefined ? null : checkOneOf('hangupBy', r.hangupBy, HANGUP_BY),
    end_cause: checkOneOf('endCause', r.endCause, END_CAUSES),
    answered_device: optional('answeredDevice', r.answeredDevice, TEXT),
    answered_aor: optional('answeredAor', r.answeredAor, TEXT),
    backend: optional('backend', r.backend, TEXT),
    media_relayed: r.mediaRelayed,
    media_node: optional('mediaNode', r.mediaNode, 255),
  };
}

/** The object without its undefined fields: a record reads back with the same keys it was written with. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function toParty(user: string | null, domain: string | null, name: string | null, num: string | null, uri: string): CallParty {
  return defined({ user: toOptionalString(user), domain: toOptionalString(domain), displayName: toOptionalString(name), number: toOptionalString(num), uri });
}

function toRecord(row: CallRow): CallRecord {
  return defined<CallRecord>({
    id: row.id,
    callId: row.call_id,
    caller: toParty(row.caller_user, row.caller_domain, row.caller_name, row.caller_number, row.caller_uri),
    callee: toParty(row.callee_user, row.callee_domain, row.callee_name, row.callee_number, row.callee_uri),
    direction: row.direction as CallDirection,
    disposition: row.disposition as CallDisposition,
    startedAt: toNumber(row.started_at),
    answeredAt: toOptionalNumber(row.answered_at),
    endedAt: toNumber(row.ended_at),
    duration: toNumber(row.duration),
    billableSeconds: toNumber(row.billable_seconds),
    finalCode: toNumber(row.final_code),
    finalReason: toOptionalString(row.final_reason),
    hangupBy: toOptionalString(row.hangup_by) as CallHangupBy | undefined,
    endCause: row.end_cause as CallRecord['endCause'],
    answeredDevice: toOptionalString(row.answered_device),
    answeredAor: toOptionalString(row.answered_aor),
    backend: toOptionalString(row.backend),
    // SQLite and MariaDB both hand a boolean column back as 0/1.
    mediaRelayed: Boolean(toNumber(row.media_relayed)),
    mediaNode: toOptionalString(row.media_node),
  });
}

/** Where a page ends: the (started_at, id) of its last row. */
interface CallCursor {
  startedAt: number;
  id: string;
}

/**
 * base64url of `startedAt:id`: opaque to clients, and checked on the way back. Exported for lists that merge calls
 * with other items (GET /v1/history): the calls strictly after a call they answered.
 */
export function encodeCallCursor(c: CallCursor): string {
  return Buffer.from(`${c.startedAt}:${c.id}`, 'utf8').toString('base64url');
}

function decodeCallCursor(cursor: unknown): CallCursor {
  const bad = () => new TypeError('cursor is not the `next` of a call history page');
  if (typeof cursor !== 'string' || !/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw bad();
  const match = /^(\d{1,16}):([^]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (match === null) throw bad();
  const c = { startedAt: Number(match[1]), id: match[2]! };
  // Only the one spelling this list hands out: no lenient base64 variants, no leading zeros.
  if (!Number.isSafeInteger(c.startedAt) || encodeCallCursor(c) !== cursor) throw bad();
  return c;
}

function checkLimit(limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit)) throw new TypeError('limit must be an integer');
  if (limit < 1 || limit > MAX_CALL_PAGE) throw new RangeError(`limit must be from 1 to ${MAX_CALL_PAGE}`);
  return limit;
}

/** `user@domain` split at its last "@" (a user part may hold one), the domain lower-case. */
function splitUser(user: unknown): { user: string; domain: string } {
  const text = checkText('user', user, 511);
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) throw new TypeError('user must be user@domain');
  return { user: text.slice(0, at), domain: text.slice(at + 1).toLowerCase() };
}

/** The WHERE of a query; every value is checked (TypeError / RangeError) before the database is asked. */
function filtered(q: CallQuery): (b: Knex.QueryBuilder) => void {
  const user = q.user === undefined ? undefined : splitUser(q.user);
  const num = q.number === undefined ? undefined : checkText('number', q.number, 255);
  const direction = q.direction === undefined ? undefined : checkOneOf('direction', q.direction, CALL_DIRECTIONS);
  const disposition = q.disposition === undefined ? undefined : checkOneOf('disposition', q.disposition, CALL_DISPOSITIONS);
  const since = q.since === undefined ? undefined : checkInteger('since', q.since, 0, MAX_MS);
  const until = q.until === undefined ? undefined : checkInteger('until', q.until, 0, MAX_MS);
  const after = q.cursor === undefined ? undefined : decodeCallCursor(q.cursor);
  return (b) => {
    if (user !== undefined) {
      b.where((w) => w.where({ caller_user: user.user, caller_domain: user.domain }).orWhere({ callee_user: user.user, callee_domain: user.domain }));
    }
    if (num !== undefined) b.where((w) => w.where('caller_number', num).orWhere('callee_number', num));
    if (direction !== undefined) b.where('direction', direction);
    if (disposition !== undefined) b.where('disposition', disposition);
    if (since !== undefined) b.where('started_at', '>=', since);
    if (until !== undefined) b.where('started_at', '<', until);
    // Strictly after the last row of the previous page in (started_at DESC, id DESC) order.
    if (after !== undefined) {
      b.where((w) => w.where('started_at', '<', after.startedAt).orWhere((t) => t.where('started_at', after.startedAt).andWhere('id', '<', after.id)));
    }
  };
}

/** SQLite's fast path of record(): the record unless its id exists (0 rows changed then). */
export const INSERT_CALL_SQL = `INSERT INTO calls (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')}) ON CONFLICT (id) DO NOTHING`;
export const FORGET_DIALOG_SQL = 'DELETE FROM dialogs WHERE id = ?';

/**
 * Prepared statements on SQLite (knex builds and prepares each query anew, most of a call's history cost:
 * bench/README.md); a boolean is bound as 0/1 as knex does. The persisted dialog goes even when the record
 * exists: a spill file replayed after a crash may save the dialog again before recording it a second time.
 * True when the record was written.
 */
export function recordFast(s: SqliteStatements, row: CallRow): boolean {
  s.run(FORGET_DIALOG_SQL, row.id);
  return s.run(INSERT_CALL_SQL, { ...row, media_relayed: row.media_relayed ? 1 : 0 }) === 1;
}

/** recordFast through knex (MariaDB, or SQLite while another writer holds the file), inside `trx`. */
export async function recordSlow(trx: Knex.Transaction, row: CallRow): Promise<boolean> {
  await trx('dialogs').where({ id: row.id }).del();
  try {
    await trx('calls').insert(row);
    return true;
  } catch (err) {
    // The primary key decides, also between two processes: the second insert waits for the first
    // transaction and fails on the key; neither engine aborts the transaction for that statement.
    if (isUniqueViolation(err)) return false;
    throw err;
  }
}

export class SqlCallRepository implements CallRepository {
  constructor(private readonly ctx: SqlContext) {}

  async record(record: CallRecord): Promise<boolean> {
    const row = callRow(record);
    return this.ctx.runFast('recording a call', (s) => s.transaction(() => recordFast(s, row)), (db) => db.transaction((trx) => recordSlow(trx, row)));
  }

  async get(id: string): Promise<CallRecord | undefined> {
    const key = checkText('id', id, MAX_DIALOG_ID);
    return this.ctx.run('reading a call', async (db) => {
      const row = await db<CallRow>('calls').first(...COLUMNS).where({ id: key });
      return row === undefined ? undefined : toRecord(row as CallRow);
    });
  }

  async list(query: CallQuery): Promise<CallPage> {
    const limit = checkLimit(query.limit);
    const where = filtered(query);
    return this.ctx.run('listing calls', async (db) => {
      const rows = (await db<CallRow>('calls').select(...COLUMNS).where(where)
        .orderBy([{ column: 'started_at', order: 'desc' }, { column: 'id', order: 'desc' }])
        .limit(limit + 1)) as CallRow[];
      // One row more than asked for says whether there is a next page.
      const calls = rows.slice(0, limit).map(toRecord);
      const last = calls[calls.length - 1];
      return rows.length > limit && last !== undefined ? { calls, next: encodeCallCursor({ startedAt: last.startedAt, id: last.id }) } : { calls };
    });
  }
}
