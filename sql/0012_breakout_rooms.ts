/**
 * Breakout rooms of a meeting (issue 19, item 5). Three tables beside 0009–0011, so none of them changes:
 *   meeting_breakouts     one row per meeting that had breakout rooms: open or closed, whether participants choose, the end time;
 *   breakout_rooms        the rooms of the meeting's current set: number (1…N) and name (each a Janus videoroom, derived id);
 *   breakout_assignments  which participant is in which room while the set is open (no row: the main room).
 * Opening a new set replaces a closed one's rooms and assignments; the meeting's history (meeting_events) keeps what happened.
 * Same conventions as 0001: the knex schema builder only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('meeting_breakouts', (t) => {
    mysqlTable(knex, t);
    t.string('meeting_id', 12).notNullable().primary().references('id').inTable('meetings').onDelete('CASCADE');
    // open | closed
    t.string('state', 8).notNullable();
    t.boolean('allow_choose').notNullable().defaultTo(false);
    t.bigInteger('opened_at').notNullable();
    // When the rooms close by themselves; null: when a moderator closes them.
    t.bigInteger('ends_at').nullable();
    t.bigInteger('closed_at').nullable();
  });
  await knex.schema.createTable('breakout_rooms', (t) => {
    mysqlTable(knex, t);
    t.string('meeting_id', 12).notNullable().references('meeting_id').inTable('meeting_breakouts').onDelete('CASCADE');
    t.integer('number').notNullable();
    t.string('name', 255).notNullable();
    t.primary(['meeting_id', 'number']);
  });
  await knex.schema.createTable('breakout_assignments', (t) => {
    mysqlTable(knex, t);
    t.string('participant_id', 12).notNullable().primary().references('id').inTable('meeting_participants').onDelete('CASCADE');
    t.string('meeting_id', 12).notNullable();
    t.integer('number').notNullable();
    t.bigInteger('assigned_at').notNullable();
    t.foreign(['meeting_id', 'number']).references(['meeting_id', 'number']).inTable('breakout_rooms').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('breakout_assignments');
  await knex.schema.dropTableIfExists('breakout_rooms');
  await knex.schema.dropTableIfExists('meeting_breakouts');
}
