/**
 * Admin tokens for the HTTP API (`softswitch token create`): only the SHA-256 of each token is kept, never
 * the token, so a copy of the database does not open the admin port. Same conventions as 0001: the knex
 * schema builder only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin on MariaDB.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('admin_tokens', (t) => {
    mysqlTable(knex, t);
    t.increments('id');
    t.string('name', 64).notNullable().unique();
    // SHA-256 of the whole token text, lower-case hex; looked up on every authenticated request.
    t.string('hash', 64).notNullable().unique();
    t.bigInteger('created_at').notNullable();
    // NULL: never expires.
    t.bigInteger('expires_at').nullable();
    t.bigInteger('last_used_at').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('admin_tokens');
}
