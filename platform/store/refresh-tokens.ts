/**
 * Refresh tokens of the apps' user tokens (sql/0005_user_tokens.ts): 32 random bytes in base64url, of which
 * the store keeps only the SHA-256. Each one is used once: consume() deletes the row it returns, and only
 * the caller whose DELETE removed the row gets it, so two refreshes racing with the same token cannot
 * both succeed (the second one is a reuse and fails).
 */
import { createHash, randomBytes } from 'node:crypto';
import { SqlContext, toNumber } from './sql-context.js';
import type { SqlStore } from './types.js';

const TOKEN_BYTES = 32;
/** 43 base64url characters (32 bytes, no padding). */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const TABLE = 'user_refresh_tokens';

/** What a refresh token stands for. Times are ms since the epoch. */
export interface RefreshTokenRecord {
  /** user@domain. */
  readonly subject: string;
  /** The subscriber's password fingerprint when the token was issued. */
  readonly fingerprint: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface RefreshTokenRepository {
  /** Generates a token for the record and stores its hash; returns the token text (never stored). */
  issue(record: RefreshTokenRecord): Promise<string>;
  /**
   * Deletes the token and returns what it stood for (expired or not: the caller compares expiresAt);
   * undefined when it is unknown or was used already.
   */
  consume(token: string): Promise<RefreshTokenRecord | undefined>;
  /** Deletes the tokens expired at `now`; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

interface RefreshRow {
  hash: string;
  subject: string;
  fingerprint: string;
  created_at: number | string;
  expires_at: number | string;
}

const hashOf = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** The SQL refresh tokens, built on an open store's knex instance (the store itself does not know them). */
export class SqlRefreshTokenRepository implements RefreshTokenRepository {
  private readonly ctx: SqlContext;

  constructor(store: Pick<SqlStore, 'knex' | 'dialect'>) {
    this.ctx = new SqlContext(store.knex, store.dialect);
  }

  async issue(record: RefreshTokenRecord): Promise<string> {
    const token = randomBytes(TOKEN_BYTES).toString('base64url');
    await this.ctx.run('storing a refresh token', async (db) => {
      await db(TABLE).insert({
        hash: hashOf(token), subject: record.subject, fingerprint: record.fingerprint, created_at: record.createdAt, expires_at: record.expiresAt,
      });
    });
    return token;
  }

  async consume(token: string): Promise<RefreshTokenRecord | undefined> {
    // The lookup is by the hash of a 256-bit random value: its timing tells nothing about the token.
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
    const hash = hashOf(token);
    return this.ctx.run('using a refresh token', async (db) => {
      const row = await db<RefreshRow>(TABLE).where({ hash }).first('subject', 'fingerprint', 'created_at', 'expires_at');
      if (row === undefined) return undefined;
      const deleted = await db(TABLE).where({ hash }).del();
      if (deleted !== 1) return undefined;
      return { subject: row.subject, fingerprint: row.fingerprint, createdAt: toNumber(row.created_at), expiresAt: toNumber(row.expires_at) };
    });
  }

  async purgeExpired(now: number): Promise<number> {
    return this.ctx.run('deleting expired refresh tokens', (db) => db(TABLE).where('expires_at', '<=', now).del());
  }
}
