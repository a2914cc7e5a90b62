/**
 * The call history's writes in batches: a commit per call (its dialog saved when answered, its record
 * when it ends) costs more than the call's whole SIP work on SQLite; a transaction of a few hundred costs
 * one. The history writer hands over what has queued up since its last write.
 */
import { FORGET_DIALOG_SQL, callRow, recordFast, recordSlow } from './sql-call-repository.js';
import type { SqlContext } from './sql-context.js';
import { UPSERT_DIALOG_SQL, dialogRow } from './sql-dialog-repository.js';
import type { HistoryWrite, HistoryWriteRepository } from './types.js';

type Row =
  | { op: 'dialog'; row: ReturnType<typeof dialogRow> }
  | { op: 'forget'; id: string }
  | { op: 'record'; row: ReturnType<typeof callRow> };

export class SqlHistoryWrites implements HistoryWriteRepository {
  constructor(private readonly ctx: SqlContext) {}

  async writeAll(writes: readonly HistoryWrite[]): Promise<void> {
    if (writes.length === 0) return;
    // Every value checked before any SQL runs: a bad one is a TypeError and nothing is written.
    const rows: Row[] = writes.map((w) => {
      if (w.op === 'dialog') return { op: 'dialog', row: dialogRow(w.dialog) };
      if (w.op === 'record') return { op: 'record', row: callRow(w.record) };
      return { op: 'forget', id: w.id };
    });
    await this.ctx.runFast(
      'writing the call history',
      (s) => s.transaction(() => {
        for (const r of rows) {
          if (r.op === 'dialog') s.run(UPSERT_DIALOG_SQL, r.row);
          else if (r.op === 'forget') s.run(FORGET_DIALOG_SQL, r.id);
          else recordFast(s, r.row);
        }
      }),
      (db) => db.transaction(async (trx) => {
        for (const r of rows) {
          if (r.op === 'dialog') await trx('dialogs').insert(r.row).onConflict('id').merge();
          else if (r.op === 'forget') await trx('dialogs').where({ id: r.id }).del();
          else await recordSlow(trx, r.row);
        }
      }),
    );
  }
}
