/**
 * Password guessing: failed digest authentications are counted per source address and per user.
 *
 * - A source with `sourceFailures` failures within `windowMs` is banned for `banSeconds` (whatever users it
 *   tried: spraying one password over many users counts too).
 * - A user with `userFailures` failures within `userWindowMs` (from anywhere: a botnet tries one password per
 *   address) is "under attack": from then until the window ends, a source that has already failed for that
 *   user gets no further try (403 before any digest is computed, so the answer is no oracle), while every
 *   other source — the real user's phone at home, in the office, on the road — is verified as usual. The real
 *   user is never locked out; each attacking address gets one guess per window per user.
 *
 * Every failure is still logged (the fail2ban-friendly line of the authenticator), at most `logPerSource`
 * lines per source per window, so a guessing run cannot flood the log.
 */
import { type Logger, categoryLogger } from '../src/log/index.js';
import type { BanList } from './ban-list.js';

export interface AuthGuardOptions {
  bans: BanList;
  sourceFailures: number;
  windowMs: number;
  banSeconds: number;
  userFailures: number;
  userWindowMs: number;
  /** Failure log lines per source per window; default 5. */
  logPerSource?: number;
  /** Sources never banned (trusted sources, `security.pike.exempt`). */
  exempt?: (address: string) => boolean;
  logger: Logger;
  clock?: () => number;
}

interface UserFailures {
  count: number;
  /** Sources that failed for this user in this window (bounded). */
  sources: Set<string>;
  announced: boolean;
}

const MAX_SOURCES_PER_USER = 10_000;
const MAX_TRACKED = 200_000;

export class AuthGuard {
  private readonly o: Required<Omit<AuthGuardOptions, 'exempt' | 'clock' | 'logger'>>;
  private readonly exempt: (address: string) => boolean;
  private readonly clock: () => number;
  private readonly log: Logger;
  private sources = new Map<string, number>();
  private sourcesEnd = 0;
  private users = new Map<string, UserFailures>();
  private usersEnd = 0;
  /** Tries refused because the user was under attack (stats). */
  refused = 0;

  constructor(options: AuthGuardOptions) {
    for (const k of ['sourceFailures', 'windowMs', 'banSeconds', 'userFailures', 'userWindowMs'] as const) {
      const v = options[k];
      if (!Number.isFinite(v) || v <= 0) throw new TypeError(`${k} must be positive, got ${v}`);
    }
    this.o = {
      bans: options.bans, sourceFailures: options.sourceFailures, windowMs: options.windowMs, banSeconds: options.banSeconds,
      userFailures: options.userFailures, userWindowMs: options.userWindowMs, logPerSource: options.logPerSource ?? 5,
    };
    this.exempt = options.exempt ?? (() => false);
    this.clock = options.clock ?? Date.now;
    this.log = categoryLogger(options.logger, 'security.auth');
  }

  /** Whether `source` may have its credentials for `user` checked now (false: answer 403, compute nothing). */
  mayTry(source: string, user: string): boolean {
    const u = this.userEntry(user, false);
    if (u === undefined || u.count < this.o.userFailures || !u.sources.has(source)) return true;
    this.refused++;
    return false;
  }

  /**
   * Counts a failed authentication; returns whether the failure should be logged (rate-limited per source).
   * Bans the source at its limit.
   */
  failed(source: string, user: string): boolean {
    const now = this.clock();
    if (now >= this.sourcesEnd) {
      this.sources = new Map();
      this.sourcesEnd = now + this.o.windowMs;
    }
    const n = (this.sources.get(source) ?? 0) + 1;
    if (this.sources.size < MAX_TRACKED || n > 1) this.sources.set(source, n);
    if (n >= this.o.sourceFailures && !this.o.bans.isBanned(source) && !this.exempt(source)) {
      this.o.bans.ban(source, this.o.banSeconds, 'auth');
    }
    const u = this.userEntry(user, true);
    if (u !== undefined) {
      u.count++;
      if (u.sources.size < MAX_SOURCES_PER_USER) u.sources.add(source);
      if (u.count >= this.o.userFailures && !u.announced) {
        u.announced = true;
        this.log.warn({ user, failures: u.count, sources: u.sources.size }, 'user under password guessing: sources that failed get no further try this window');
      }
    }
    return n <= this.o.logPerSource;
  }

  /** A source proved the password: its earlier failures for this user no longer hold it back. */
  succeeded(source: string, user: string): void {
    this.userEntry(user, false)?.sources.delete(source);
  }

  private userEntry(user: string, create: boolean): UserFailures | undefined {
    const now = this.clock();
    if (now >= this.usersEnd) {
      this.users = new Map();
      this.usersEnd = now + this.o.userWindowMs;
    }
    let u = this.users.get(user);
    if (u === undefined && create && this.users.size < MAX_TRACKED) {
      u = { count: 0, sources: new Set(), announced: false };
      this.users.set(user, u);
    }
    return u;
  }
}
