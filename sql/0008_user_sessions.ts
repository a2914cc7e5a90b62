/**
 * Sign-out (`DELETE /v1/auth/token`, platform/http/user-tokens.ts). A password grant opens a session: its
 * id travels in the access token (`sid`) and is kept with each refresh token, so a sign-out finds the
 * session's refresh token and the access tokens know they are dead. Same conventions as 0001.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('user_refresh_tokens', (t) => {
    // 16 random bytes in base64url. Null for a token issued before this migration: it opens a new session on use.
    t.string('session', 22).nullable().index();
  });
  await knex.schema.createTable('user_sessions_ended', (t) => {
    mysqlTable(knex, t);
    t.string('session', 22).notNullable().primary();
    // user@domain: a verification reads the ended sessions of one subject at once (and caches them).
    t.string('subject', 511).notNullable().index();
    // Kept as long as a refresh token of the session could still be presented, then purged.
    t.bigInteger('expires_at').notNullable().index();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('user_sessions_ended');
  await knex.schema.alterTable('user_refresh_tokens', (t) => {
    t.dropIndex(['session']);
    t.dropColumn('session');
  });
}
