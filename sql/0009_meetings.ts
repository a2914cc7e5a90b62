/**
 * Meetings (issue 19): one row per meeting, created or scheduled by its owner, the room the meeting focus
 * (conference/) opens on a Janus node when the first participant is admitted. Same conventions as 0001: the knex
 * schema builder only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin on MariaDB.
 *
 * The password is kept as a scrypt hash (conference/meeting-password.ts), never as text; `lobby` is on unless the
 * owner turns it off (early arrivals wait for a moderator: jitsi-meet #7385).
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('meetings', (t) => {
    mysqlTable(knex, t);
    // 12 characters of [a-z2-7] (60 random bits): unguessable, and a SIP user part as it is (`sip:meet-<id>@domain`).
    t.string('id', 12).notNullable().primary();
    t.string('title', 255).notNullable();
    // user@domain of the owner (a moderator whenever present).
    t.string('owner', 511).notNullable().index();
    // The schedule, when there is one (ms since the epoch); an unscheduled meeting is open until deleted.
    t.bigInteger('starts_at').nullable();
    t.bigInteger('ends_at').nullable();
    // `scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>`; null: no password.
    t.string('password_hash', 160).nullable();
    t.boolean('lobby').notNullable().defaultTo(true);
    t.integer('max_participants').notNullable();
    t.boolean('recording_allowed').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    // The list of one owner's meetings pages by (created_at, id).
    t.bigInteger('updated_at').notNullable();
    t.index(['created_at', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('meetings');
}
