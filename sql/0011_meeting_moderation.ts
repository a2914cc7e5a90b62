/**
 * Meeting moderation and history (issue 19, items 4 and 8). Three tables beside 0009/0010, so neither changes:
 *   meeting_moderation   one row per meeting a moderator touched: locked, and the mute-all of each media (what a late joiner gets);
 *   participant_media    one row per participant that published or was muted: its streams' mids and each medium's block;
 *   meeting_events       what the participant rows do not hold: moderation actions (who, what, whom, when) and the end.
 * A block is `none`, `soft` (muted; the participant may unmute itself) or `hard` (muted until a moderator lifts it).
 * Same conventions as 0001: the knex schema builder only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('meeting_moderation', (t) => {
    mysqlTable(knex, t);
    t.string('meeting_id', 12).notNullable().primary().references('id').inTable('meetings').onDelete('CASCADE');
    t.boolean('locked').notNullable().defaultTo(false);
    // none | soft | hard: the block every publisher gets, late joiners included.
    t.string('audio', 8).notNullable().defaultTo('none');
    t.string('video', 8).notNullable().defaultTo('none');
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('participant_media', (t) => {
    mysqlTable(knex, t);
    t.string('participant_id', 12).notNullable().primary().references('id').inTable('meeting_participants').onDelete('CASCADE');
    t.string('meeting_id', 12).notNullable().index();
    // The mids of the publisher's audio and video m-lines, as its app reported them (Janus's `moderate` names a stream by mid).
    t.string('audio_mid', 64).nullable();
    t.string('video_mid', 64).nullable();
    t.string('audio', 8).notNullable().defaultTo('none');
    t.string('video', 8).notNullable().defaultTo('none');
  });
  await knex.schema.createTable('meeting_events', (t) => {
    mysqlTable(knex, t);
    t.bigIncrements('id').primary();
    t.string('meeting_id', 12).notNullable().references('id').inTable('meetings').onDelete('CASCADE');
    t.bigInteger('at').notNullable();
    // muted | unmuted | mute-all | unmute-all | locked | unlocked | role | ended
    t.string('kind', 16).notNullable();
    // user@domain, or null for an admin token.
    t.string('actor', 511).nullable();
    // The participant acted on, if any.
    t.string('participant_id', 12).nullable();
    // A few words of detail (`audio`, `video allowUnmute`, `moderator`).
    t.string('detail', 255).nullable();
    t.index(['meeting_id', 'at', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('meeting_events');
  await knex.schema.dropTableIfExists('participant_media');
  await knex.schema.dropTableIfExists('meeting_moderation');
}
