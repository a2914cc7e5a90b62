/**
 * Refresh tokens of the apps' user tokens (`POST /v1/auth/token`, platform/http/user-tokens.ts). Only the
 * SHA-256 of each token is kept, as for admin tokens (0003): a copy of the database opens no account.
 * The access tokens themselves are signed, never stored. Same conventions as 0001.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_refresh_tokens', (t) => {
    mysqlTable(knex, t);
    // SHA-256 of the token text, lower-case hex: the key a refresh looks it up and deletes it by.
    t.string('hash', 64).notNullable().primary();
    // user@domain, the subscriber the token was issued to.
    t.string('subject', 511).notNullable();
    // The password fingerprint at issue time: a token whose fingerprint no longer matches is dead.
    t.string('fingerprint', 16).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable().index();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('user_refresh_tokens');
}
