/**
 * An in-memory CallRepository for the tests of what reads call history (the API, the CLI): the same
 * contract as the SQL one (filters, newest first by startedAt then id, cursor pages, TypeError for a bad
 * cursor), and every query it was asked kept in `queries`.
 */
import type { CallQuery, CallPage, CallRecord, CallRepository } from '../../platform/store/types.js';

const partyIs = (party: CallRecord['caller'], user: string) => party.user !== undefined && `${party.user}@${party.domain}` === user;

export class MemoryCallRepository implements CallRepository {
  readonly records: CallRecord[] = [];
  readonly queries: CallQuery[] = [];

  constructor(records: CallRecord[] = []) {
    this.records.push(...records);
  }

  async record(record: CallRecord): Promise<boolean> {
    if (this.records.some((r) => r.id === record.id)) return false;
    this.records.push(record);
    return true;
  }

  async get(id: string): Promise<CallRecord | undefined> {
    return this.records.find((r) => r.id === id);
  }

  async list(query: CallQuery): Promise<CallPage> {
    this.queries.push({ ...query });
    let after: { startedAt: number; id: string } | undefined;
    if (query.cursor !== undefined) {
      const m = /^(\d+):(.+)$/.exec(Buffer.from(query.cursor, 'base64url').toString('utf8'));
      if (m === null) throw new TypeError('not a cursor of this list');
      after = { startedAt: Number(m[1]), id: m[2]! };
    }
    const rows = this.records
      .filter((r) => query.user === undefined || partyIs(r.caller, query.user) || partyIs(r.callee, query.user))
      .filter((r) => query.number === undefined || r.caller.number === query.number || r.callee.number === query.number)
      .filter((r) => query.direction === undefined || r.direction === query.direction)
      .filter((r) => query.disposition === undefined || r.disposition === query.disposition)
      .filter((r) => query.since === undefined || r.startedAt >= query.since)
      .filter((r) => query.until === undefined || r.startedAt < query.until)
      .sort((a, b) => b.startedAt - a.startedAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      .filter((r) => after === undefined || r.startedAt < after.startedAt || (r.startedAt === after.startedAt && r.id < after.id));
    const calls = rows.slice(0, query.limit);
    const last = calls[calls.length - 1];
    const next = rows.length > query.limit && last !== undefined ? Buffer.from(`${last.startedAt}:${last.id}`).toString('base64url') : undefined;
    return { calls, ...(next === undefined ? {} : { next }) };
  }
}

/** A user of ours as a call party. */
export function userParty(user: string, domain = 'example.com', number?: string): CallRecord['caller'] {
  return { user, domain, uri: `sip:${user}@${domain}`, ...(number === undefined ? {} : { number }) };
}

/** An answered user-to-user call of 60 s starting at `startedAt`, with what `overrides` changes. */
export function callRecord(id: string, startedAt: number, overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    id,
    callId: `${id}@test`,
    caller: userParty('alice'),
    callee: userParty('bob'),
    direction: 'user-user',
    disposition: 'answered',
    startedAt,
    answeredAt: startedAt + 5000,
    endedAt: startedAt + 65_000,
    duration: 65,
    billableSeconds: 60,
    finalCode: 200,
    hangupBy: 'caller',
    endCause: 'bye',
    mediaRelayed: false,
    ...overrides,
  };
}
