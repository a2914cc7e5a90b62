/**
 * Meeting participants (issue 19): one row per request to join a meeting, kept after the participant leaves, so the
 * rows are the meeting's join/leave history too. The focus (conference/focus.ts) moves a row through its states:
 * waiting (in the lobby) → admitted | denied, admitted → left | kicked; a rejoin is a new row. Same conventions as
 * 0001: the knex schema builder only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin on MariaDB.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('meeting_participants', (t) => {
    mysqlTable(knex, t);
    // 12 characters of [a-z2-7], like a meeting id: a participant's id is in URLs and names its Janus token.
    t.string('id', 12).notNullable().primary();
    // A deleted meeting takes its participants with it.
    t.string('meeting_id', 12).notNullable().references('id').inTable('meetings').onDelete('CASCADE');
    // user@domain; null for a guest (later) or an admin token, which has no user.
    t.string('user', 511).nullable();
    t.string('display_name', 255).notNullable();
    // owner | moderator | participant
    t.string('role', 16).notNullable();
    // waiting | admitted | denied | left | kicked
    t.string('state', 16).notNullable();
    // The videoroom feed id the focus assigns on admission (a publisher's `id` in its join).
    t.bigInteger('feed_id').nullable();
    t.bigInteger('asked_at').notNullable();
    t.bigInteger('decided_at').nullable();
    t.bigInteger('left_at').nullable();
    // The lobby and the room: a meeting's participants in one state, in the order they asked.
    t.index(['meeting_id', 'state', 'asked_at']);
    // A user's current row in a meeting (a second join answers the first).
    t.index(['meeting_id', 'user']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('meeting_participants');
}
