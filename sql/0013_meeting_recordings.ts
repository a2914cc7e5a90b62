/**
 * Meeting recordings (issue 19, item 7). Two tables beside 0009-0011, so none of them changes:
 *   meeting_recordings        one row per recording session of a meeting: who started and stopped it, and when
 *                             (stopped_at null: Janus is recording the room now; at most one such row per meeting);
 *   meeting_recording_files   the files a session produced, one per participant and medium (janus-pp-rec's WebM or
 *                             Opus of one .mjr): their ids in the encrypted file store (the `files` rows of 0006).
 * Same conventions as 0001: the knex schema builder only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('meeting_recordings', (t) => {
    mysqlTable(knex, t);
    t.string('id', 12).notNullable().primary();
    t.string('meeting_id', 12).notNullable().references('id').inTable('meetings').onDelete('CASCADE');
    t.bigInteger('started_at').notNullable();
    // user@domain, or null for an admin token.
    t.string('started_by', 511).nullable();
    t.bigInteger('stopped_at').nullable();
    t.string('stopped_by', 511).nullable();
    t.index(['meeting_id', 'started_at']);
  });
  await knex.schema.createTable('meeting_recording_files', (t) => {
    mysqlTable(knex, t);
    // The file's id in the encrypted store (files.id): downloaded through /v1/files/{id}.
    t.string('file_id', 22).notNullable().primary();
    t.string('recording_id', 12).notNullable().references('id').inTable('meeting_recordings').onDelete('CASCADE');
    t.string('meeting_id', 12).notNullable().index();
    // The participant whose feed it is (null: a feed no participant row names any more).
    t.string('participant_id', 12).nullable();
    t.bigInteger('feed_id').notNullable();
    // audio | video
    t.string('medium', 8).notNullable();
    t.string('content_type', 64).notNullable();
    t.bigInteger('size').notNullable();
    t.bigInteger('created_at').notNullable();
    t.index(['recording_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('meeting_recording_files');
  await knex.schema.dropTableIfExists('meeting_recordings');
}
