/**
 * Routing data (issue 6): backend sets and their backends (FreeSWITCH pools, trunks) for the load
 * balancer, dialplan routes, DIDs and trusted sources. Same conventions as 0001: the knex schema
 * builder only (SQLite and MariaDB), BIGINT millisecond times, utf8mb4_bin on MariaDB.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('backend_sets', (t) => {
    mysqlTable(knex, t);
    t.string('name', 255).notNullable().primary();
    t.string('algorithm', 32).notNullable().defaultTo('round-robin');
  });

  await knex.schema.createTable('backends', (t) => {
    mysqlTable(knex, t);
    t.increments('id');
    t.string('set_name', 255).notNullable().references('name').inTable('backend_sets').onDelete('RESTRICT');
    // 255 + 512 characters of utf8mb4 keep the unique key within InnoDB's 3072-byte limit.
    t.string('uri', 512).notNullable();
    t.integer('weight').notNullable().defaultTo(1);
    t.boolean('enabled').notNullable().defaultTo(true);
    t.bigInteger('created_at').notNullable();
    t.unique(['set_name', 'uri']);
  });

  await knex.schema.createTable('routes', (t) => {
    mysqlTable(knex, t);
    t.increments('id');
    t.string('pattern', 255).notNullable();
    t.string('replace', 255).notNullable().defaultTo('');
    t.string('set_name', 255).notNullable().references('name').inTable('backend_sets').onDelete('RESTRICT');
    t.integer('priority').notNullable().defaultTo(0);
    t.string('description', 255).notNullable().defaultTo('');
    t.index(['priority']);
  });

  await knex.schema.createTable('dids', (t) => {
    mysqlTable(knex, t);
    t.string('number', 32).notNullable().primary();
    t.string('username', 255).notNullable();
    t.string('domain', 255).notNullable();
  });

  await knex.schema.createTable('trusted', (t) => {
    mysqlTable(knex, t);
    t.increments('id');
    t.string('cidr', 64).notNullable().unique();
    t.string('description', 255).notNullable().defaultTo('');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('trusted');
  await knex.schema.dropTableIfExists('dids');
  await knex.schema.dropTableIfExists('routes');
  await knex.schema.dropTableIfExists('backends');
  await knex.schema.dropTableIfExists('backend_sets');
}
