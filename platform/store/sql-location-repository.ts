import { type SqlContext, checkInteger, checkText, optionalText, toNumber, toOptionalNumber, toOptionalString } from './sql-context.js';
import type { Binding, LocationRepository, StoredBinding } from './types.js';

interface LocationRow {
  id: number | string;
  aor: string;
  contact: string;
  instance_id: string | null;
  reg_id: number | string | null;
  call_id: string;
  cseq: number | string;
  expires_at: number | string;
  q: number | string | null;
  path: string | null;
  received: string;
  flow_id: string | null;
  user_agent: string | null;
  node: string | null;
  updated_at: number | string;
}

const COLUMNS = [
  'id', 'aor', 'contact', 'instance_id', 'reg_id', 'call_id', 'cseq', 'expires_at', 'q', 'path', 'received', 'flow_id',
  'user_agent', 'node', 'updated_at',
] as const;

/** Largest CSeq sequence number (RFC 3261 §8.1.1.5: less than 2**31) and reg-id (RFC 5626 §4.2). */
const MAX_INT31 = 2 ** 31 - 1;

const UPSERT_CHUNK = 500;

const ROW_COLUMNS = COLUMNS.filter((c) => c !== 'id');
/** What knex's insert().onConflict().merge() writes on SQLite, as one prepared statement run per row. */
const UPSERT_SQL =
  `INSERT INTO locations (${ROW_COLUMNS.join(', ')}) VALUES (${ROW_COLUMNS.map((c) => `@${c}`).join(', ')}) ` +
  `ON CONFLICT (aor, contact) DO UPDATE SET ${ROW_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`;

function toBinding(row: LocationRow): StoredBinding {
  return {
    id: toNumber(row.id),
    aor: row.aor,
    contact: row.contact,
    instanceId: toOptionalString(row.instance_id),
    regId: toOptionalNumber(row.reg_id),
    callId: row.call_id,
    cseq: toNumber(row.cseq),
    expiresAt: toNumber(row.expires_at),
    q: toOptionalNumber(row.q),
    path: toOptionalString(row.path),
    received: row.received,
    flowId: toOptionalString(row.flow_id),
    userAgent: toOptionalString(row.user_agent),
    node: toOptionalString(row.node),
    updatedAt: toNumber(row.updated_at),
  };
}

function toRow(b: Binding): Omit<LocationRow, 'id'> {
  if (b.q !== undefined && (typeof b.q !== 'number' || !(b.q >= 0 && b.q <= 1))) throw new TypeError('q must be a number from 0 to 1');
  return {
    aor: checkText('aor', b.aor, 255),
    contact: checkText('contact', b.contact, 512),
    instance_id: optionalText('instanceId', b.instanceId, 255),
    reg_id: b.regId === undefined ? null : checkInteger('regId', b.regId, 0, MAX_INT31),
    call_id: checkText('callId', b.callId, 65535),
    cseq: checkInteger('cseq', b.cseq, 0, MAX_INT31),
    expires_at: checkInteger('expiresAt', b.expiresAt, 0, Number.MAX_SAFE_INTEGER),
    q: b.q ?? null,
    path: optionalText('path', b.path, 65535),
    received: checkText('received', b.received, 255),
    flow_id: optionalText('flowId', b.flowId, 255),
    user_agent: optionalText('userAgent', b.userAgent, 65535),
    node: optionalText('node', b.node, 255),
    updated_at: b.updatedAt === undefined ? Date.now() : checkInteger('updatedAt', b.updatedAt, 0, Number.MAX_SAFE_INTEGER),
  };
}

export class SqlLocationRepository implements LocationRepository {
  constructor(private readonly ctx: SqlContext) {}

  async upsert(binding: Binding): Promise<void> {
    const row = toRow(binding);
    return this.ctx.run('saving a binding', async (db) => {
      // ON CONFLICT … DO UPDATE on SQLite, ON DUPLICATE KEY UPDATE on MariaDB: one statement, no race.
      await db('locations').insert(row).onConflict(['aor', 'contact']).merge();
    });
  }

  async upsertMany(bindings: Binding[]): Promise<void> {
    if (bindings.length === 0) return;
    // Newest last wins within one statement's VALUES would be undefined behaviour: keep one row per key.
    const rows = [...new Map(bindings.map((b) => { const r = toRow(b); return [`${r.aor}\n${r.contact}`, r] as const; })).values()];
    return this.ctx.runFast(
      'saving bindings',
      (s) => s.runAll(UPSERT_SQL, rows),
      async (db) => {
        // 14 columns a row: 500 rows stay under SQLite's 32,766 bound parameters.
        for (let i = 0; i < rows.length; i += UPSERT_CHUNK) {
          await db('locations').insert(rows.slice(i, i + UPSERT_CHUNK)).onConflict(['aor', 'contact']).merge();
        }
      },
    );
  }

  async remove(aor: string, contact: string): Promise<boolean> {
    const a = checkText('aor', aor, 255);
    const c = checkText('contact', contact, 512);
    return this.ctx.run('removing a binding', async (db) => (await db('locations').where({ aor: a, contact: c }).del()) > 0);
  }

  async removeAor(aor: string): Promise<number> {
    const a = checkText('aor', aor, 255);
    return this.ctx.run('removing the bindings of an AoR', (db) => db('locations').where({ aor: a }).del());
  }

  async listAor(aor: string, now: number): Promise<StoredBinding[]> {
    const a = checkText('aor', aor, 255);
    const t = checkInteger('now', now, 0, Number.MAX_SAFE_INTEGER);
    return this.ctx.run('listing the bindings of an AoR', async (db) => {
      const rows = await db<LocationRow>('locations').select(...COLUMNS).where({ aor: a }).andWhere('expires_at', '>', t).orderBy('id');
      return rows.map(toBinding);
    });
  }

  async listAll(): Promise<StoredBinding[]> {
    return this.ctx.run('listing bindings', async (db) => {
      const rows = await db<LocationRow>('locations').select(...COLUMNS).orderBy([{ column: 'aor' }, { column: 'id' }]);
      return rows.map(toBinding);
    });
  }

  async purgeExpired(now: number): Promise<number> {
    const t = checkInteger('now', now, 0, Number.MAX_SAFE_INTEGER);
    return this.ctx.run('purging expired bindings', (db) => db('locations').where('expires_at', '<=', t).del());
  }
}
