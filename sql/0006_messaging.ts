/**
 * Chat (issue 15): conversations and their members, messages stored once, each user's delivery stream
 * (the inbox), each device's place in it, receipts, and the files messages link. The store never holds
 * plaintext: bodies and file keys are sealed by messaging/ (platform/store/message-types.ts).
 * Same conventions as 0001: the knex schema builder only (SQLite and MariaDB), BIGINT millisecond times,
 * utf8mb4_bin on MariaDB.
 *
 * Key lengths: InnoDB refuses a key over 3072 bytes, and utf8mb4 counts 4 bytes a character, so a user
 * (511 characters, 2044 bytes) fits in a key with a device (255, 1020 bytes) and a BIGINT, but not with a
 * conversation id and an IMDN id together.
 */
import type { Knex } from 'knex';
import { mysqlTable } from './0001_initial.js';

function isMysql(knex: Knex): boolean {
  return (knex.client as { dialect?: string }).dialect === 'mysql';
}

/**
 * A column that refers to a `bigIncrements` seq: BIGINT UNSIGNED on MariaDB, where a foreign key's
 * column must have exactly the referenced column's type.
 */
function seqRef(t: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder {
  return t.bigInteger(name).unsigned().notNullable();
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('chat_conversations', (t) => {
    mysqlTable(knex, t);
    // `d-<22 base64url>` or `group-<id>`.
    t.string('id', 64).notNullable().primary();
    t.string('kind', 8).notNullable();
    t.string('name', 255).nullable();
    t.string('domain', 255).nullable();
    t.string('created_by', 511).notNullable();
    t.bigInteger('created_at').notNullable();
  });

  await knex.schema.createTable('chat_members', (t) => {
    mysqlTable(knex, t);
    // The join order ("current members, in join order"): members added in one statement share joined_at.
    t.bigIncrements('id');
    t.string('conversation_id', 64).notNullable().references('id').inTable('chat_conversations').onDelete('CASCADE');
    t.string('user', 511).notNullable();
    t.string('role', 8).notNullable();
    t.bigInteger('joined_at').notNullable();
    t.bigInteger('read_seq').notNullable().defaultTo(0);
    t.unique(['conversation_id', 'user']);
    // A user's conversation list.
    t.index(['user']);
  });

  await knex.schema.createTable('chat_messages', (t) => {
    mysqlTable(knex, t);
    t.bigIncrements('seq');
    t.string('id', 32).notNullable().unique();
    t.string('conversation_id', 64).notNullable().references('id').inTable('chat_conversations').onDelete('CASCADE');
    t.string('kind', 8).notNullable();
    t.string('sender', 511).notNullable();
    t.string('content_type', 255).notNullable();
    // A sealed body: a 64 KiB text plus its envelope exceeds BLOB's 65,535 bytes on MariaDB.
    if (isMysql(knex)) t.specificType('body', 'mediumblob').notNullable();
    else t.binary('body').notNullable();
    t.string('imdn_id', 255).nullable();
    // The requested dispositions as a comma list (RFC 5438 §4.1 Disposition-Notification values).
    t.string('notify', 128).nullable();
    t.string('origin_device', 255).nullable();
    t.bigInteger('ref_seq').nullable();
    t.bigInteger('created_at').notNullable();
    t.index(['conversation_id', 'seq']);
    // findByImdnId; the sender is checked on the few rows found (with it the key would pass 3072 bytes).
    // A receipt names the message by its IMDN Message-ID only (random: the index alone is selective).
    t.index(['imdn_id']);
    // Retention (purge).
    t.index(['created_at']);
  });

  await knex.schema.createTable('chat_inbox', (t) => {
    mysqlTable(knex, t);
    // The user's stream order.
    t.bigIncrements('seq');
    t.string('user', 511).notNullable();
    seqRef(t, 'message_seq').references('seq').inTable('chat_messages').onDelete('CASCADE');
    // Copied from the message: a page and the conversation list filter on it without the messages table.
    t.string('conversation_id', 64).notNullable();
    t.boolean('hidden').notNullable().defaultTo(false);
    t.index(['user', 'seq']);
    t.index(['user', 'conversation_id', 'message_seq']);
    t.unique(['user', 'message_seq']);
    t.index(['message_seq']);
  });

  await knex.schema.createTable('chat_devices', (t) => {
    mysqlTable(knex, t);
    t.string('user', 511).notNullable();
    t.string('device', 255).notNullable();
    // The inbox seq the device has received up to.
    t.bigInteger('cursor').notNullable();
    t.bigInteger('last_seen').notNullable();
    // 2044 + 1020 bytes: within 3072.
    t.primary(['user', 'device']);
  });

  await knex.schema.createTable('chat_receipts', (t) => {
    mysqlTable(knex, t);
    seqRef(t, 'message_seq').references('seq').inTable('chat_messages').onDelete('CASCADE');
    t.string('user', 511).notNullable();
    t.string('device', 255).notNullable();
    t.bigInteger('delivered_at').nullable();
    t.bigInteger('displayed_at').nullable();
    // 8 + 2044 + 1020 bytes: exactly InnoDB's 3072.
    t.primary(['message_seq', 'user', 'device']);
  });

  await knex.schema.createTable('chat_files', (t) => {
    mysqlTable(knex, t);
    t.string('id', 32).notNullable().primary();
    t.string('owner', 511).notNullable();
    t.string('content_type', 255).notNullable();
    t.bigInteger('size').notNullable();
    // The file key sealed by the master key: a few dozen bytes.
    t.binary('wrapped_key', 255).notNullable();
    t.string('location', 512).notNullable();
    t.string('name', 255).nullable();
    t.bigInteger('created_at').notNullable().index();
  });

  await knex.schema.createTable('chat_file_links', (t) => {
    mysqlTable(knex, t);
    t.string('file_id', 32).notNullable().references('id').inTable('chat_files').onDelete('CASCADE');
    t.string('conversation_id', 64).notNullable().references('id').inTable('chat_conversations').onDelete('CASCADE');
    t.primary(['file_id', 'conversation_id']);
    t.index(['conversation_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['chat_file_links', 'chat_files', 'chat_receipts', 'chat_devices', 'chat_inbox', 'chat_messages', 'chat_members', 'chat_conversations']) {
    await knex.schema.dropTableIfExists(table);
  }
}
