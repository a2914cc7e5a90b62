/**
 * Where each meeting's rooms are (issue 19, item 9: several Janus nodes). One row per meeting whose room exists on a
 * node: the node (its `meetings.janus[].url`) and since when. Every worker and every softswitch node reads the same
 * placement, so they send a meeting's Janus requests to the same node; a move off a node that is down is a
 * compare-and-set of this row (only one worker recreates the room). The row goes when the room does (the meeting
 * ends); the next admission places it again, on the node with the least load then.
 * Same conventions as 0001: the knex schema builder only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('meeting_nodes', (t) => {
    mysqlTable(knex, t);
    t.string('meeting_id', 12).notNullable().primary().references('id').inTable('meetings').onDelete('CASCADE');
    // The Janus API URL of the node (meetings.janus[].url): what the apps are told, and the node's name in /metrics.
    t.string('node', 500).notNullable().index();
    t.bigInteger('placed_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('meeting_nodes');
}
