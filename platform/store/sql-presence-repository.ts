/**
 * The presence allow lists (sql/0007_presence.ts) on SQLite and MariaDB: the PresenceRepository contract of
 * presence-types.ts. Every argument is checked before any SQL runs, so a value that cannot be stored is a
 * TypeError.
 */
import { type SqlContext, checkText, isUniqueViolation } from './sql-context.js';
import type { PresenceRepository } from './presence-types.js';

/**
 * The longest user or watcher: both are varchar(255), so that the (user, watcher) key stays within
 * InnoDB's 3072 bytes in utf8mb4 (sql/0007_presence.ts).
 */
export const MAX_PRESENCE_USER = 255;

const userName = (v: unknown, name: string) => checkText(name, v, MAX_PRESENCE_USER);

export class SqlPresenceRepository implements PresenceRepository {
  constructor(private readonly ctx: SqlContext, private readonly now: () => number = Date.now) {}

  async allowed(user: string): Promise<string[]> {
    const who = userName(user, 'user');
    return this.ctx.run('reading an allow list', async (db) => {
      const rows = (await db('presence_allow').select('watcher').where({ user: who }).orderBy('watcher')) as Array<{ watcher: string }>;
      return rows.map((r) => r.watcher);
    });
  }

  async isAllowed(user: string, watcher: string): Promise<boolean> {
    const who = userName(user, 'user');
    const by = userName(watcher, 'watcher');
    return this.ctx.run('checking an allow list', async (db) => (await db('presence_allow').first('watcher').where({ user: who, watcher: by })) !== undefined);
  }

  async allow(user: string, watcher: string): Promise<boolean> {
    const row = { user: userName(user, 'user'), watcher: userName(watcher, 'watcher'), created_at: this.now() };
    return this.ctx.run('adding to an allow list', async (db) => {
      // A plain INSERT and its duplicate-key error rather than INSERT IGNORE: on MariaDB IGNORE also turns
      // a data error into a warning, so a refused row would read as "there already".
      try {
        await db('presence_allow').insert(row);
        return true;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    });
  }

  async disallow(user: string, watcher: string): Promise<boolean> {
    const who = userName(user, 'user');
    const by = userName(watcher, 'watcher');
    return this.ctx.run('removing from an allow list', async (db) => (await db('presence_allow').where({ user: who, watcher: by }).del()) > 0);
  }

  async forget(user: string): Promise<number> {
    const who = userName(user, 'user');
    return this.ctx.run('forgetting a user\'s allow lists', async (db) => db('presence_allow').where({ user: who }).orWhere({ watcher: who }).del());
  }
}
