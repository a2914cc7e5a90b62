/**
 * Call history (issue 13): one `calls` row per ended dialog (the CDR, platform/store CallRecord) and the
 * `dialogs` a worker persists while a call is up, so that a restarted worker takes its calls up again.
 * Same conventions as 0001: the knex schema builder only (SQLite and MariaDB), BIGINT millisecond times,
 * utf8mb4_bin on MariaDB.
 *
 * The record is flat (caller_…, callee_…) rather than JSON: the history list filters on the parties'
 * user, domain and number, and those need indexes.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

/** One party of a call: the indexed user, domain and number, and the free text around them. */
function party(t: Knex.CreateTableBuilder, prefix: 'caller' | 'callee'): void {
  t.string(`${prefix}_user`, 255).nullable();
  t.string(`${prefix}_domain`, 255).nullable();
  t.text(`${prefix}_name`).nullable();
  t.string(`${prefix}_number`, 255).nullable();
  t.text(`${prefix}_uri`).notNullable();
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('calls', (t) => {
    mysqlTable(knex, t);
    // The dialog's id: a UUID or a short token, never longer than 64 characters.
    t.string('id', 64).notNullable().primary();
    t.text('call_id').notNullable();
    party(t, 'caller');
    party(t, 'callee');
    t.string('direction', 16).notNullable();
    t.string('disposition', 16).notNullable();
    t.bigInteger('started_at').notNullable();
    t.bigInteger('answered_at').nullable();
    t.bigInteger('ended_at').notNullable();
    t.integer('duration').notNullable();
    t.integer('billable_seconds').notNullable();
    t.integer('final_code').notNullable();
    t.text('final_reason').nullable();
    t.string('hangup_by', 16).nullable();
    t.string('end_cause', 16).notNullable();
    t.text('answered_device').nullable();
    t.text('answered_aor').nullable();
    t.text('backend').nullable();
    t.boolean('media_relayed').notNullable();
    t.string('media_node', 255).nullable();
    // The list pages newest first by (started_at, id); a user's calls are those where it is either party.
    t.index(['started_at', 'id']);
    t.index(['caller_user', 'caller_domain', 'started_at']);
    t.index(['callee_user', 'callee_domain', 'started_at']);
    t.index(['caller_number']);
    t.index(['callee_number']);
  });

  await knex.schema.createTable('dialogs', (t) => {
    mysqlTable(knex, t);
    t.string('id', 64).notNullable().primary();
    t.text('call_id').notNullable();
    // The worker slot that holds the dialog (0 without a cluster).
    t.integer('owner').notNullable();
    // The dialog module's own JSON, opaque here; MEDIUMTEXT on MariaDB (TEXT stops at 64 KiB).
    t.text('data', 'mediumtext').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.index(['owner']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('dialogs');
  await knex.schema.dropTableIfExists('calls');
}
