/**
 * Presence authorization (issue 16): each presentity's allow list, the watchers it lets see its state when
 * `presence.policy` is `contacts` (presence/policy.ts). Same conventions as 0001: the knex schema builder
 * only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin on MariaDB (the user part of an address
 * is case-sensitive, RFC 3261 §19.1.4; domains are stored lower-case).
 *
 * Key length: InnoDB refuses a key over 3072 bytes and utf8mb4 counts 4 bytes a character, so the primary
 * key (user, watcher) holds two varchar(255): 2040 bytes. Both are `user@domain` text of at most 255
 * characters, checked before any SQL (platform/store/sql-presence-repository.ts); a longer address (user
 * and domain may each reach 255 in `subscribers`) cannot be on an allow list: the API answers 400.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('presence_allow', (t) => {
    mysqlTable(knex, t);
    // The presentity: the user whose state is watched.
    t.string('user', 255).notNullable();
    // A user it lets watch.
    t.string('watcher', 255).notNullable();
    t.bigInteger('created_at').notNullable();
    // 1020 + 1020 bytes: within 3072. Serves the list of one presentity and the check of one pair.
    t.primary(['user', 'watcher']);
    // Forgetting a deleted user removes the rows where it is the watcher too.
    t.index(['watcher']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('presence_allow');
}
