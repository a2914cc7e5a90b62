/**
 * Admin tokens for the HTTP API: `sst_` and 32 random bytes in base64url. The store keeps the SHA-256 of
 * the token only (a stolen database opens nothing), and a presented token is found by its hash and
 * compared with timingSafeEqual, so neither the lookup nor the comparison works on the token itself.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { StoreError } from './store-error.js';
import { type SqlContext, toNumber, toOptionalNumber } from './sql-context.js';
import type { AdminToken, AdminTokenRepository, CreatedAdminToken, NewAdminToken } from './types.js';

/** Recognisable in logs, config files and secret scanners (as `ghp_`, `xoxb-` are). */
export const ADMIN_TOKEN_PREFIX = 'sst_';
const TOKEN_BYTES = 32;
/** `sst_` + 43 base64url characters (32 bytes, no padding). */
const TOKEN_SHAPE = /^sst_[A-Za-z0-9_-]{43}$/;
/** Starts with a letter, so `token revoke 12` always means the id and never a name. */
const NAME_SHAPE = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

export function generateAdminToken(): string {
  return ADMIN_TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Lower-case hex SHA-256 of the token text: what the store keeps and looks up. */
export function hashAdminToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Cheap shape check before any hashing or query: anything else cannot be one of ours. */
export function isAdminTokenShape(token: string): boolean {
  return token.length === ADMIN_TOKEN_PREFIX.length + 43 && TOKEN_SHAPE.test(token);
}

export function checkTokenName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_SHAPE.test(name)) {
    throw new TypeError(`token name ${JSON.stringify(name)} is not valid: 1 to 64 letters, digits, ".", "_" or "-", starting with a letter`);
  }
  return name;
}

interface TokenRow {
  id: number | string;
  name: string;
  hash: string;
  created_at: number | string;
  expires_at: number | string | null;
  last_used_at: number | string | null;
}

const COLUMNS = ['id', 'name', 'hash', 'created_at', 'expires_at', 'last_used_at'] as const;

function toToken(row: TokenRow): AdminToken {
  return {
    id: toNumber(row.id),
    name: row.name,
    createdAt: toNumber(row.created_at),
    expiresAt: toOptionalNumber(row.expires_at),
    lastUsedAt: toOptionalNumber(row.last_used_at),
  };
}

export class SqlAdminTokenRepository implements AdminTokenRepository {
  constructor(private readonly ctx: SqlContext) {}

  async create(token: NewAdminToken): Promise<CreatedAdminToken> {
    const name = checkTokenName(token.name);
    const expiresAt = token.expiresAt;
    if (expiresAt !== undefined && (!Number.isSafeInteger(expiresAt) || expiresAt <= 0)) throw new TypeError('expiresAt must be a time in ms since the epoch');
    const text = generateAdminToken();
    const duplicate = () => new StoreError('STORE_ERR_DUPLICATE', `a token named ${name} already exists`);
    const record = await this.ctx.run('creating an admin token', async (db) => {
      const now = Date.now();
      await db('admin_tokens').insert({ name, hash: hashAdminToken(text), created_at: now, expires_at: expiresAt ?? null, last_used_at: null });
      const row = await db<TokenRow>('admin_tokens').where({ name }).first(...COLUMNS);
      return toToken(row!);
    }, duplicate);
    return { token: text, record };
  }

  async lookup(token: string): Promise<AdminToken | undefined> {
    if (typeof token !== 'string' || !isAdminTokenShape(token)) return undefined;
    const digest = createHash('sha256').update(token, 'utf8').digest();
    const hex = digest.toString('hex');
    return this.ctx.run('looking up an admin token', async (db) => {
      const row = await db<TokenRow>('admin_tokens').where({ hash: hex }).first(...COLUMNS);
      if (row === undefined) return undefined;
      const stored = Buffer.from(row.hash, 'hex');
      return stored.length === digest.length && timingSafeEqual(stored, digest) ? toToken(row) : undefined;
    });
  }

  async list(): Promise<AdminToken[]> {
    return this.ctx.run('listing admin tokens', async (db) => {
      const rows = await db<TokenRow>('admin_tokens').select(...COLUMNS).orderBy('id');
      return rows.map(toToken);
    });
  }

  async revoke(nameOrId: string | number): Promise<AdminToken> {
    const where = typeof nameOrId === 'number' ? { id: nameOrId } : { name: checkTokenName(nameOrId) };
    return this.ctx.run('revoking an admin token', async (db) => {
      const row = await db<TokenRow>('admin_tokens').where(where).first(...COLUMNS);
      if (row === undefined) throw new StoreError('STORE_ERR_NOT_FOUND', `no token ${typeof nameOrId === 'number' ? `with id ${nameOrId}` : `named ${nameOrId}`}`);
      await db('admin_tokens').where({ id: row.id }).del();
      return toToken(row);
    });
  }

  async touch(id: number, at: number): Promise<void> {
    await this.ctx.run('recording the use of an admin token', async (db) => {
      await db('admin_tokens').where({ id }).update({ last_used_at: at });
    });
  }

  async purgeExpired(now: number, namePrefix?: string): Promise<number> {
    return this.ctx.run('deleting expired admin tokens', async (db) => {
      let q = db('admin_tokens').whereNotNull('expires_at').andWhere('expires_at', '<=', now);
      // LIKE treats "_" and "%" as wildcards; the prefix is compared exactly instead.
      if (namePrefix !== undefined) q = q.andWhereRaw('substr(name, 1, ?) = ?', [namePrefix.length, namePrefix]);
      return q.del();
    });
  }
}
