/**
 * Refresh tokens of the apps' user tokens (sql/0005_user_tokens.ts): 32 random bytes in base64url, of which
 * the store keeps only the SHA-256. Each one is used once: consume() deletes the row it returns, and only
 * the caller whose DELETE removed the row gets it, so two refreshes racing with the same token cannot
 * both succeed (the second one is a reuse and fails).
 *
 * A token belongs to a session (sql/0008_user_sessions.ts), opened by a password grant and carried over by
 * each refresh. Ending a session (a sign-out) records it in `user_sessions_ended` first, then deletes its
 * tokens: a refresh racing with the sign-out either finds its token gone or, having consumed it just
 * before, finds the session ended when it checks (user-tokens.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { SqlContext, toNumber } from './sql-context.js';
import type { SqlStore } from './types.js';

const TOKEN_BYTES = 32;
/** 43 base64url characters (32 bytes, no padding). */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const TABLE = 'user_refresh_tokens';
const ENDED = 'user_sessions_ended';

/** What a refresh token stands for. Times are ms since the epoch. */
export interface RefreshTokenRecord {
  /** user@domain. */
  readonly subject: string;
  /** The subscriber's password fingerprint when the token was issued. */
  readonly fingerprint: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** The session the token carries on; absent for a token issued before sessions existed. */
  readonly session?: string;
}

export interface RefreshTokenRepository {
  /** Generates a token for the record and stores its hash; returns the token text (never stored). */
  issue(record: RefreshTokenRecord): Promise<string>;
  /**
   * Deletes the token and returns what it stood for (expired or not: the caller compares expiresAt);
   * undefined when it is unknown or was used already.
   */
  consume(token: string): Promise<RefreshTokenRecord | undefined>;
  /**
   * Ends the subject's session: recorded as ended until `until` (ms; by then none of its tokens is alive),
   * and its refresh tokens deleted. Returns how many were. Ending it again changes nothing.
   */
  endSession(subject: string, session: string, until: number): Promise<number>;
  /** The subject's sessions ended and not yet purged at `now`. */
  endedSessions(subject: string, now: number): Promise<string[]>;
  /** Deletes the tokens and ended-session records expired at `now`; returns how many tokens. */
  purgeExpired(now: number): Promise<number>;
}

interface RefreshRow {
  hash: string;
  subject: string;
  fingerprint: string;
  created_at: number | string;
  expires_at: number | string;
  session: string | null;
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
        session: record.session ?? null,
      });
    });
    return token;
  }

  async consume(token: string): Promise<RefreshTokenRecord | undefined> {
    // The lookup is by the hash of a 256-bit random value: its timing tells nothing about the token.
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
    const hash = hashOf(token);
    return this.ctx.run('using a refresh token', async (db) => {
      const row = await db<RefreshRow>(TABLE).where({ hash }).first('subject', 'fingerprint', 'created_at', 'expires_at', 'session');
      if (row === undefined) return undefined;
      const deleted = await db(TABLE).where({ hash }).del();
      if (deleted !== 1) return undefined;
      const record = { subject: row.subject, fingerprint: row.fingerprint, createdAt: toNumber(row.created_at), expiresAt: toNumber(row.expires_at) };
      return row.session === null ? record : { ...record, session: row.session };
    });
  }

  async endSession(subject: string, session: string, until: number): Promise<number> {
    return this.ctx.run('ending a user session', async (db) => {
      await db(ENDED).insert({ session, subject, expires_at: until }).onConflict('session').ignore();
      return db(TABLE).where({ subject, session }).del();
    });
  }

  async endedSessions(subject: string, now: number): Promise<string[]> {
    return this.ctx.run('reading the ended user sessions', async (db) => {
      const rows = (await db(ENDED).where({ subject }).andWhere('expires_at', '>', now).select('session')) as Array<{ session: string }>;
      return rows.map((r) => r.session);
    });
  }

  async purgeExpired(now: number): Promise<number> {
    return this.ctx.run('deleting expired refresh tokens', async (db) => {
      await db(ENDED).where('expires_at', '<=', now).del();
      return db(TABLE).where('expires_at', '<=', now).del();
    });
  }
}
