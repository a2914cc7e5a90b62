import { StoreError } from './store-error.js';
import { type SqlContext, checkText, toNumber } from './sql-context.js';
import { ensureDomain, normalizeDomain } from './sql-domain-repository.js';
import { computeHa1Set } from './subscriber-ha1.js';
import type { NewSubscriber, Subscriber, SubscriberPage, SubscriberRepository } from './types.js';

interface SubscriberRow {
  id: number | string;
  username: string;
  domain: string;
  ha1_md5: string;
  ha1_sha256: string;
  ha1_sha512_256: string;
  enabled: number | boolean;
  created_at: number | string;
  updated_at: number | string;
}

const COLUMNS = ['id', 'username', 'domain', 'ha1_md5', 'ha1_sha256', 'ha1_sha512_256', 'enabled', 'created_at', 'updated_at'] as const;

/** The lookup of every REGISTER and INVITE the credentials cache misses, as a prepared statement. */
const GET_SQL = `SELECT ${COLUMNS.join(', ')} FROM subscribers WHERE username = ? AND domain = ? LIMIT 1`;

function toSubscriber(row: SubscriberRow): Subscriber {
  return {
    id: toNumber(row.id),
    username: row.username,
    domain: row.domain,
    ha1Md5: row.ha1_md5,
    ha1Sha256: row.ha1_sha256,
    ha1Sha512_256: row.ha1_sha512_256,
    enabled: Boolean(toNumber(row.enabled)),
    createdAt: toNumber(row.created_at),
    updatedAt: toNumber(row.updated_at),
  };
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length === 0) throw new TypeError('password must be a non-empty string');
  return password;
}

function address(username: string, domain: string): string {
  return `${username}@${domain}`;
}

export class SqlSubscriberRepository implements SubscriberRepository {
  constructor(private readonly ctx: SqlContext) {}

  async add(subscriber: NewSubscriber): Promise<Subscriber> {
    const username = checkText('username', subscriber.username, 255);
    const domain = normalizeDomain(subscriber.domain);
    const ha1 = computeHa1Set(username, domain, checkPassword(subscriber.password));
    const enabled = subscriber.enabled ?? true;
    const duplicate = () => new StoreError('STORE_ERR_DUPLICATE', `subscriber ${address(username, domain)} already exists`);
    return this.ctx.run('adding a subscriber', (db) => db.transaction(async (trx) => {
      const now = Date.now();
      await ensureDomain(trx, domain, now);
      await trx('subscribers').insert({
        username,
        domain,
        ha1_md5: ha1.ha1Md5,
        ha1_sha256: ha1.ha1Sha256,
        ha1_sha512_256: ha1.ha1Sha512_256,
        enabled,
        created_at: now,
        updated_at: now,
      });
      const row = await trx<SubscriberRow>('subscribers').where({ username, domain }).first(...COLUMNS);
      return toSubscriber(row!);
    }), duplicate);
  }

  async get(username: string, domain: string): Promise<Subscriber | undefined> {
    const user = checkText('username', username, 255);
    const host = normalizeDomain(domain);
    return this.ctx.runFast(
      'looking up a subscriber',
      (s) => {
        const row = s.get<SubscriberRow>(GET_SQL, user, host);
        return row === undefined ? undefined : toSubscriber(row);
      },
      async (db) => {
        const row = await db<SubscriberRow>('subscribers').where({ username: user, domain: host }).first(...COLUMNS);
        return row === undefined ? undefined : toSubscriber(row);
      },
    );
  }

  async list(domain?: string, page: SubscriberPage = {}): Promise<Subscriber[]> {
    const host = domain === undefined ? undefined : normalizeDomain(domain);
    const { after, limit } = page;
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw new TypeError('limit must be a positive whole number');
    return this.ctx.run('listing subscribers', async (db) => {
      const q = db<SubscriberRow>('subscribers').select(...COLUMNS).orderBy([{ column: 'domain' }, { column: 'username' }]);
      if (host !== undefined) q.where({ domain: host });
      // (domain, username) > (after): spelled out, as row-value comparison is not in every SQL dialect knex speaks.
      if (after !== undefined) {
        void q.where((w) => {
          void w.where('domain', '>', after.domain).orWhere((same) => void same.where('domain', after.domain).andWhere('username', '>', after.username));
        });
      }
      if (limit !== undefined) void q.limit(limit);
      return (await q).map(toSubscriber);
    });
  }

  async remove(username: string, domain: string): Promise<void> {
    const user = checkText('username', username, 255);
    const host = normalizeDomain(domain);
    return this.ctx.run('removing a subscriber', async (db) => {
      const n = await db('subscribers').where({ username: user, domain: host }).del();
      if (n === 0) throw new StoreError('STORE_ERR_NOT_FOUND', `no such subscriber ${address(user, host)}`);
    });
  }

  async setPassword(username: string, domain: string, password: string): Promise<void> {
    const user = checkText('username', username, 255);
    const host = normalizeDomain(domain);
    const ha1 = computeHa1Set(user, host, checkPassword(password));
    return this.ctx.run('changing a password', async (db) => {
      const n = await db('subscribers').where({ username: user, domain: host }).update({
        ha1_md5: ha1.ha1Md5,
        ha1_sha256: ha1.ha1Sha256,
        ha1_sha512_256: ha1.ha1Sha512_256,
        updated_at: Date.now(),
      });
      if (n === 0) throw new StoreError('STORE_ERR_NOT_FOUND', `no such subscriber ${address(user, host)}`);
    });
  }

  async setEnabled(username: string, domain: string, enabled: boolean): Promise<void> {
    const user = checkText('username', username, 255);
    const host = normalizeDomain(domain);
    if (typeof enabled !== 'boolean') throw new TypeError('enabled must be true or false');
    return this.ctx.run(enabled ? 'enabling a subscriber' : 'disabling a subscriber', async (db) => {
      const n = await db('subscribers').where({ username: user, domain: host }).update({ enabled, updated_at: Date.now() });
      if (n === 0) throw new StoreError('STORE_ERR_NOT_FOUND', `no such subscriber ${address(user, host)}`);
    });
  }
}
