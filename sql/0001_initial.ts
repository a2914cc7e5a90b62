/**
 * The first schema: domains, subscribers (digest HA1 per algorithm, never the clear password) and the
 * registrar's location table. Written with the knex schema builder only, so the same migration runs on
 * SQLite (embedded default) and MariaDB/MySQL (production).
 *
 * Times are milliseconds since the epoch in BIGINT columns: no time-zone or DATETIME precision
 * differences between the two engines, and the registrar compares them with Date.now() directly.
 */
import type { Knex } from 'knex';

/** MariaDB/MySQL only: utf8mb4 with a binary collation, so string comparison is exact as in SQLite. */
export function mysqlTable(knex: Knex, t: Knex.CreateTableBuilder): void {
  // knex.client is untyped; 'mysql' is the dialect of both the mysql and mysql2 clients.
  if ((knex.client as { dialect?: string }).dialect !== 'mysql') return;
  t.engine('InnoDB');
  t.charset('utf8mb4');
  // SIP userinfo is case-sensitive (RFC 3261 §19.1.4); the default *_ci collation would make
  // "Alice" and "alice" the same subscriber on MariaDB but not on SQLite.
  t.collate('utf8mb4_bin');
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('domains', (t) => {
    mysqlTable(knex, t);
    t.increments('id');
    // Stored lower-case: host names compare case-insensitively (RFC 3261 §19.1.4).
    t.string('name', 255).notNullable().unique();
    t.bigInteger('created_at').notNullable();
  });

  await knex.schema.createTable('subscribers', (t) => {
    mysqlTable(knex, t);
    t.increments('id');
    t.string('username', 255).notNullable();
    t.string('domain', 255).notNullable().references('name').inTable('domains').onDelete('RESTRICT');
    // H(username ":" realm ":" password), realm = domain, lower-case hex (RFC 7616 §3.4.2, RFC 8760).
    t.string('ha1_md5', 32).notNullable();
    t.string('ha1_sha256', 64).notNullable();
    t.string('ha1_sha512_256', 64).notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['username', 'domain']);
  });

  await knex.schema.createTable('locations', (t) => {
    mysqlTable(knex, t);
    // BIGINT: on MariaDB every INSERT … ON DUPLICATE KEY UPDATE (each re-REGISTER) consumes an
    // auto-increment value even when it updates, which would exhaust an INT within months at scale.
    t.bigIncrements('id');
    t.string('aor', 255).notNullable();
    // 255 + 512 characters of utf8mb4 keep the unique key within InnoDB's 3072-byte limit.
    t.string('contact', 512).notNullable();
    t.string('instance_id', 255).nullable();
    t.integer('reg_id').nullable();
    t.text('call_id').notNullable();
    t.integer('cseq').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.double('q').nullable();
    t.text('path').nullable();
    t.string('received', 255).notNullable();
    t.string('flow_id', 255).nullable();
    t.text('user_agent').nullable();
    t.string('node', 255).nullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['aor', 'contact']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('locations');
  await knex.schema.dropTableIfExists('subscribers');
  await knex.schema.dropTableIfExists('domains');
}
