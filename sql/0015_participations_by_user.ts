/**
 * A user's meeting participations by time (issue 19, item 8: the user's history, GET /v1/history): an index on
 * meeting_participants (user, asked_at, id), which answers "this user's rows, newest first, after this key" from the
 * index alone. 0010's (meeting_id, user) index cannot: it starts with the meeting. Same conventions as 0001; on
 * MariaDB the key is 2044 + 8 + 48 bytes, within InnoDB's 3072.
 */
import type { Knex } from 'knex';

const INDEX = 'meeting_participants_user_asked_at_id_index';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('meeting_participants', (t) => {
    t.index(['user', 'asked_at', 'id'], INDEX);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('meeting_participants', (t) => {
    t.dropIndex(['user', 'asked_at', 'id'], INDEX);
  });
}
