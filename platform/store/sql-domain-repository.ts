import type { Knex } from 'knex';
import { StoreError } from './store-error.js';
import { type SqlContext, checkText, isForeignKeyViolation, toNumber } from './sql-context.js';
import type { Domain, DomainRepository } from './types.js';

interface DomainRow {
  id: number | string;
  name: string;
  created_at: number | string;
}

/** Host names compare case-insensitively (RFC 3261 §19.1.4): domains are stored lower-case. */
export function normalizeDomain(name: unknown): string {
  return checkText('domain', name, 255).toLowerCase();
}

function toDomain(row: DomainRow): Domain {
  return { id: toNumber(row.id), name: row.name, createdAt: toNumber(row.created_at) };
}

/** Adds the domain when missing (inside the caller's transaction); an existing one is left as it is. */
export async function ensureDomain(db: Knex | Knex.Transaction, name: string, now: number): Promise<void> {
  await db('domains').insert({ name, created_at: now }).onConflict('name').ignore();
}

export class SqlDomainRepository implements DomainRepository {
  constructor(private readonly ctx: SqlContext) {}

  async add(name: string): Promise<Domain> {
    const domain = normalizeDomain(name);
    const duplicate = () => new StoreError('STORE_ERR_DUPLICATE', `domain ${domain} already exists`);
    return this.ctx.run('adding a domain', async (db) => {
      const now = Date.now();
      await db('domains').insert({ name: domain, created_at: now });
      const row = await db<DomainRow>('domains').where({ name: domain }).first('id', 'name', 'created_at');
      return toDomain(row!);
    }, duplicate);
  }

  async remove(name: string): Promise<void> {
    const domain = normalizeDomain(name);
    return this.ctx.run('removing a domain', async (db) => {
      // The foreign key refuses it too; counting first gives the operator the reason in words.
      const users = await db('subscribers').where({ domain }).count({ n: '*' }).first();
      const n = toNumber(users?.n ?? 0);
      if (n > 0) throw new StoreError('STORE_ERR_IN_USE', `domain ${domain} still has ${n} subscriber${n === 1 ? '' : 's'}`);
      let removed: number;
      try {
        removed = await db('domains').where({ name: domain }).del();
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_IN_USE', `domain ${domain} still has subscribers`);
        throw err;
      }
      if (removed === 0) throw new StoreError('STORE_ERR_NOT_FOUND', `no such domain ${domain}`);
    });
  }

  async list(): Promise<Domain[]> {
    return this.ctx.run('listing domains', async (db) => {
      const rows = await db<DomainRow>('domains').select('id', 'name', 'created_at').orderBy('name');
      return rows.map(toDomain);
    });
  }

  async exists(name: string): Promise<boolean> {
    const domain = normalizeDomain(name);
    return this.ctx.run('looking up a domain', async (db) => {
      const row = await db('domains').where({ name: domain }).first('id');
      return row !== undefined;
    });
  }
}
