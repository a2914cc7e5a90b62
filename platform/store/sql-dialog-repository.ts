/**
 * The dialogs a worker holds, persisted while their calls are up (sql/0004_calls.ts), so that a worker
 * restarted in the same slot takes them up again. The dialog's JSON is opaque here.
 */
import { MAX_DIALOG_ID } from './sql-call-repository.js';
import { type SqlContext, checkInteger, checkText, toNumber } from './sql-context.js';
import type { DialogRepository, PersistedDialog } from './types.js';

export interface DialogRow {
  id: string;
  call_id: string;
  owner: number | string;
  data: string;
  updated_at: number | string;
}

const COLUMNS = ['id', 'call_id', 'owner', 'data', 'updated_at'] as const;
/** A MEDIUMTEXT column holds 16 MiB on MariaDB; a dialog's JSON is a few kilobytes. */
const MAX_DATA = 4 * 1024 * 1024;

/** The dialog as its row; TypeError for a value it may not have. */
export function dialogRow(d: PersistedDialog): DialogRow {
  if (typeof d.data !== 'string' || d.data.length > MAX_DATA) throw new TypeError(`data must be a string of at most ${MAX_DATA} characters`);
  return {
    id: checkText('id', d.id, MAX_DIALOG_ID),
    call_id: checkText('callId', d.callId, 65_535),
    owner: checkInteger('owner', d.owner, 0, 2 ** 31 - 1),
    data: d.data,
    updated_at: checkInteger('updatedAt', d.updatedAt, 0, Number.MAX_SAFE_INTEGER),
  };
}

function toDialog(row: DialogRow): PersistedDialog {
  return { id: row.id, callId: row.call_id, owner: toNumber(row.owner), data: row.data, updatedAt: toNumber(row.updated_at) };
}

export const UPSERT_DIALOG_SQL =
  `INSERT INTO dialogs (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((c) => `@${c}`).join(', ')}) ` +
  `ON CONFLICT (id) DO UPDATE SET ${COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ')}`;

export class SqlDialogRepository implements DialogRepository {
  constructor(private readonly ctx: SqlContext) {}

  async save(dialog: PersistedDialog): Promise<void> {
    const row = dialogRow(dialog);
    return this.ctx.runFast('saving a dialog', (s) => void s.run(UPSERT_DIALOG_SQL, row), async (db) => {
      // ON CONFLICT … DO UPDATE on SQLite, ON DUPLICATE KEY UPDATE on MariaDB: one statement, no race.
      await db('dialogs').insert(row).onConflict('id').merge();
    });
  }

  async remove(id: string): Promise<void> {
    const key = checkText('id', id, MAX_DIALOG_ID);
    return this.ctx.run('removing a dialog', async (db) => {
      await db('dialogs').where({ id: key }).del();
    });
  }

  async listOwned(owner: number): Promise<PersistedDialog[]> {
    const slot = checkInteger('owner', owner, 0, 2 ** 31 - 1);
    return this.ctx.run('listing the dialogs of a worker', async (db) => {
      const rows = (await db<DialogRow>('dialogs').select(...COLUMNS).where({ owner: slot }).orderBy('id')) as DialogRow[];
      return rows.map(toDialog);
    });
  }
}
