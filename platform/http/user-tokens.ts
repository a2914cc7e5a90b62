/**
 * User tokens: how an app (softphone, mobile client) reads its own user's resources over the HTTP API.
 * `POST /v1/auth/token` (RFC 6749 §4.3 password grant and §6 refresh) takes the user's SIP username and
 * password, checks them against the stored HA1 (the store has nothing else), and answers a short-lived
 * access token and a single-use refresh token.
 *
 * Access token: a JWT (RFC 7519) signed with HMAC-SHA256 and nothing else (the header is fixed, so
 * `alg: none` or another algorithm is simply not our token):
 *
 *   base64url({"alg":"HS256","typ":"JWT"}) "." base64url({sub, iat, exp, pfp, sid}) "." base64url(HMAC-SHA256(key, the two parts))
 *
 * `sub` is user@domain, `iat`/`exp` seconds since the epoch (NumericDate), `pfp` the password fingerprint:
 * the first 16 hex digits of SHA-256 over the subscriber's HA1s, `sid` the session: 16 random bytes made by
 * the password grant and kept by every refresh. Verification checks the signature, `exp`, that `pfp` still
 * matches the subscriber as the store has it now, and that the session has not been ended by a sign-out
 * (both looked up at most every FINGERPRINT_CACHE_MS), so a password change, a disabled or a deleted
 * subscriber kills every token, and a sign-out the tokens of its session, within that time.
 *
 * Refresh token: 32 random bytes (platform/store/refresh-tokens.ts keeps only their SHA-256), used once:
 * each refresh deletes it and hands out a new pair. It carries the fingerprint and the session too and dies
 * with the password or the session.
 *
 * Sign-out (`DELETE /v1/auth/token`, in the spirit of RFC 7009): ends the session of the access token
 * presented. Its refresh token is deleted and its access tokens are refused at once by this process, within
 * FINGERPRINT_CACHE_MS by the other workers (their cache). The user's other sessions (other devices) go on;
 * a password change ends them all.
 *
 * Guests (issue 19: "an app asks to join … as a guest with display name and password"): the extension grant
 * `urn:softswitch:meeting-guest` (RFC 6749 §4.5: an absolute URI) takes a meeting id and a display name and answers
 * a guest access token for that meeting alone, and no refresh token. Its claims are {sub: `guest:<id>`, iat, exp,
 * mtg, gst, name}: the meeting, the guest id (which becomes its participant id) and the name others see. It has no
 * subscriber behind it, so nothing but its signature and `exp` is checked: it lives http.guestTokenTtl. The meeting's
 * password is not asked here but at join, so wrong ones count against the focus's limit as a user's do; an unknown
 * meeting is invalid_grant (401), counted against the source address like a wrong password.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { digestEquals } from '../../src/sip/index.js';
import { categoryLogger, type Logger } from '../../src/log/index.js';
import { PRIVATE_FILE_MODE, logTightened, tightenModes } from '../../src/transport/file-modes.js';
import type { RefreshTokenRepository } from '../store/refresh-tokens.js';
import { computeHa1Set } from '../store/subscriber-ha1.js';
import type { Subscriber } from '../store/types.js';

/** Default life of an access token, seconds (configuration key http.userTokenTtl). */
export const DEFAULT_ACCESS_TTL_S = 900;
/** Default life of a refresh token, seconds (configuration key http.refreshTokenTtl): 30 days. */
export const DEFAULT_REFRESH_TTL_S = 30 * 86_400;
/** A password change, a disabled subscriber or a sign-out on another worker stops the tokens within this time. */
export const FINGERPRINT_CACHE_MS = 5000;
/** Default life of a guest access token, seconds (configuration key http.guestTokenTtl): long enough to wait in a lobby. */
export const DEFAULT_GUEST_TTL_S = 3600;
/** The extension grant of a meeting guest (RFC 6749 §4.5). */
export const GUEST_GRANT = 'urn:softswitch:meeting-guest';
/** The signing key file under dataDir, shared by the workers of a node. */
export const TOKEN_KEY_FILE = 'user-token.key';

const KEY_BYTES = 32;
const SESSION_BYTES = 16;
const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
/** Subjects remembered by the fingerprint cache before it starts over. */
const CACHE_MAX = 10_000;
/** Expired refresh tokens are deleted at most this often (on a grant). */
const PURGE_EVERY_MS = 3_600_000;

/** What the guest grant needs of the meetings: whether one exists (MeetingRepository.get has it). */
export interface MeetingSource {
  exists(id: string): Promise<boolean>;
}

/** What the tokens need of the store's subscribers (SubscriberRepository has it). */
export interface SubscriberSource {
  get(username: string, domain: string): Promise<Subscriber | undefined>;
}

export interface UserTokensOptions {
  subscribers: SubscriberSource;
  refreshTokens: RefreshTokenRepository;
  /** The HMAC key (loadTokenKey). */
  key: Buffer;
  /** The served domains (sip.domain); the first is the default of a password grant without one. */
  domains: readonly string[];
  accessTtlSeconds?: number;
  refreshTtlSeconds?: number;
  /** The meetings guests may ask to join; without it the guest grant is unsupported. */
  meetings?: MeetingSource | undefined;
  guestTtlSeconds?: number;
  /** A new guest id: 12 characters of [a-z2-7], like participant ids (tests). */
  newGuestId?: () => string;
  /** How long a subscriber's fingerprint is trusted without asking the store again, ms. */
  cacheMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/** A checked access token: its user (or guest), or why it is refused and whether it was a forgery (counted as a guess). */
export type AccessCheck =
  | { ok: true; kind: 'user'; user: string; session: string }
  | { ok: true; kind: 'guest'; meeting: string; guest: string; displayName: string }
  | { ok: false; reason: string; forged: boolean };

/** RFC 6749 §5.1. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  /** Seconds. */
  expires_in: number;
  refresh_token: string;
  /** user@domain. */
  user: string;
}

/** The guest grant's answer (RFC 6749 §5.1, without a refresh token: a guest asks again). */
export interface GuestTokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  /** The guest id: its participant id once it joins. */
  guest: string;
  meeting: string;
}

/** RFC 6749 §5.2 error codes used here. */
export type GrantError = 'invalid_request' | 'invalid_grant' | 'unsupported_grant_type';

/**
 * What the token endpoint answers. Bad credentials (invalid_grant) are 401, not §5.2's 400: to an app they
 * are an authentication failure like any other, and the server counts them against the source address.
 */
export type GrantAnswer =
  | { status: 200; body: TokenResponse | GuestTokenResponse }
  | { status: 400 | 401; body: { error: GrantError; error_description: string } };

/** The body of `POST /v1/auth/token` (RFC 6749 §4.3 password grant, §6 refresh); the OpenAPI document shows it too. */
export const grantBody = z.discriminatedUnion('grant_type', [
  z.object({
    grant_type: z.literal('password'),
    username: z.string().min(1).max(511).describe('`alice`, or `alice@example.com`'),
    password: z.string().min(1).max(1024),
    domain: z.string().min(1).max(255).optional().describe('the domain when `username` has none (default: the first sip.domain)'),
  }),
  z.object({ grant_type: z.literal('refresh_token'), refresh_token: z.string().min(1).max(256) }),
  z.object({
    grant_type: z.literal(GUEST_GRANT),
    meeting: z.string().regex(/^[a-z2-7]{12}$/, 'not a meeting id').describe('the meeting id of the join link'),
    display_name: z.string().trim().min(1, 'must not be empty').max(255).describe('the name the moderators and the others see'),
  }),
]);

const guestPayload = z.object({
  sub: z.string(),
  iat: z.number(),
  exp: z.number(),
  mtg: z.string(),
  gst: z.string(),
  name: z.string(),
});

const accessPayload = z.object({
  sub: z.string(),
  iat: z.number(),
  exp: z.number(),
  pfp: z.string(),
  // Absent from the tokens of a version without sign-out: refused as "refresh it", not as a forgery.
  sid: z.string().optional(),
});

/** A new session id: opened by a password grant, or by the refresh of a token from before sessions. */
const newSession = (): string => randomBytes(SESSION_BYTES).toString('base64url');
const refuse = (status: 400 | 401, error: GrantError, description: string): GrantAnswer => ({ status, body: { error, error_description: description } });
const BAD_PASSWORD = refuse(401, 'invalid_grant', 'wrong username or password');

/** 12 characters of [a-z2-7] (60 random bits), the shape of a participant id. */
function newGuestId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let id = '';
  for (const b of randomBytes(12)) id += alphabet[b & 31];
  return id;
}

/** True for text shaped like one of our access tokens (three dot-separated parts); admin tokens have no dot. */
export function isUserTokenShape(token: string): boolean {
  return token.split('.').length === 3;
}

/** The password fingerprint of an enabled subscriber; undefined for a disabled one (its tokens are dead). */
export function passwordFingerprint(subscriber: Subscriber): string | undefined {
  if (!subscriber.enabled) return undefined;
  return createHash('sha256').update(`${subscriber.ha1Md5}:${subscriber.ha1Sha256}:${subscriber.ha1Sha512_256}`).digest('hex').slice(0, 16);
}

/** `alice@example.com` → its user and domain (split at the last "@": a SIP user part may hold one escaped). */
function splitSubject(subject: string): { username: string; domain: string } {
  const at = subject.lastIndexOf('@');
  return { username: subject.slice(0, at), domain: subject.slice(at + 1) };
}

function readKey(path: string): Buffer {
  const text = readFileSync(path, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`${path} does not hold a ${KEY_BYTES}-byte key in hex (delete it to have a new one made; every user token then dies)`);
  return Buffer.from(text, 'hex');
}

/**
 * The signing key: `secret` (http.tokenSecret) when given, else 32 random bytes kept in hex in
 * `dataDir/user-token.key` (0600), made on first use. The workers of a node start together and must end up
 * with the same key: each writes a candidate to a file of its own and links it to the final name, which
 * fails with EEXIST for all but the first; the others read the winner's. A link is the file complete or
 * not there at all, so no one ever reads a half-written key.
 */
export function loadTokenKey(options: { dataDir: string; secret?: string | undefined; logger: Logger }): Buffer {
  if (options.secret !== undefined) return Buffer.from(options.secret, 'utf8');
  const path = join(options.dataDir, TOKEN_KEY_FILE);
  const candidate = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const key = randomBytes(KEY_BYTES);
  writeFileSync(candidate, key.toString('hex') + '\n', { flag: 'wx', mode: PRIVATE_FILE_MODE });
  try {
    linkSync(candidate, path);
    categoryLogger(options.logger, 'http').info({ path }, 'user token signing key created');
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    logTightened(categoryLogger(options.logger, 'http'), 'the user token key', tightenModes([{ path, mode: PRIVATE_FILE_MODE }]));
    return readKey(path);
  } finally {
    unlinkSync(candidate);
  }
}

/** What a verification needs of a subject: its fingerprint (undefined: gone or disabled) and its ended sessions. */
interface SubjectState {
  readonly fingerprint: string | undefined;
  readonly ended: Set<string>;
}

interface CachedSubject extends SubjectState {
  readonly until: number;
}

export class UserTokens {
  private readonly accessTtlS: number;
  private readonly refreshTtlMs: number;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, CachedSubject>();
  private lastPurge = 0;

  constructor(private readonly options: UserTokensOptions) {
    this.accessTtlS = options.accessTtlSeconds ?? DEFAULT_ACCESS_TTL_S;
    this.refreshTtlMs = (options.refreshTtlSeconds ?? DEFAULT_REFRESH_TTL_S) * 1000;
    this.cacheMs = options.cacheMs ?? FINGERPRINT_CACHE_MS;
    this.now = options.now ?? Date.now;
  }

  /**
   * The token endpoint: `body` is the parsed JSON request. `secure` is false for plain HTTP from another
   * machine, where a password must not travel (the refresh grant is allowed: its token is single-use and
   * was itself obtained over a secure channel). Throws only when the store fails.
   */
  async grant(body: unknown, secure: boolean): Promise<GrantAnswer> {
    const type = (body as { grant_type?: unknown } | null)?.grant_type;
    const guests = this.options.meetings !== undefined;
    if (typeof type === 'string' && type !== 'password' && type !== 'refresh_token' && (type !== GUEST_GRANT || !guests)) {
      return refuse(400, 'unsupported_grant_type', `grant_type ${JSON.stringify(type)} is not supported (password, refresh_token${guests ? ` or ${GUEST_GRANT}` : ''})`);
    }
    // Said plainly rather than dropped: a password given here and not at join would only meet "asks for a password" there.
    if (type === GUEST_GRANT && typeof body === 'object' && body !== null && 'password' in body) {
      return refuse(400, 'invalid_request', 'password: a meeting password is given at join (POST /v1/meetings/{id}/join), not here');
    }
    const parsed = grantBody.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return refuse(400, 'invalid_request', `${issue.path.join('.') || 'body'}: ${issue.message}`);
    }
    const request = parsed.data;
    if (request.grant_type === 'refresh_token') return this.refresh(request.refresh_token);
    if (request.grant_type === GUEST_GRANT) return this.guest(request.meeting, request.display_name);
    if (!secure) return refuse(400, 'invalid_request', 'a password is accepted only over TLS: use https (http.tls)');
    return this.password(request.username, request.password, request.domain);
  }

  /** Checks an access token (signature, expiry, the subscriber's current password and state). Throws only when the store fails. */
  async verify(token: string): Promise<AccessCheck> {
    const [header, payload, signature, extra] = token.split('.');
    if (header !== HEADER || payload === undefined || signature === undefined || extra !== undefined) return { ok: false, reason: 'malformed token', forged: true };
    const given = Buffer.from(signature, 'base64url');
    const expected = this.sign(`${header}.${payload}`);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad token signature', forged: true };
    let claims: z.infer<typeof accessPayload>;
    try {
      const json: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      // Signed by us, so the claims say what was issued: a guest's carry `gst` and no password fingerprint.
      if (typeof json === 'object' && json !== null && 'gst' in json) return this.verifyGuest(guestPayload.parse(json));
      claims = accessPayload.parse(json);
    } catch {
      return { ok: false, reason: 'malformed token', forged: true };
    }
    if (claims.exp * 1000 <= this.now()) return { ok: false, reason: 'expired token', forged: false };
    if (claims.sid === undefined) return { ok: false, reason: 'token of an older version: refresh it', forged: false };
    const current = await this.subject(claims.sub, true);
    if (current.fingerprint === undefined || !digestEquals(current.fingerprint, claims.pfp)) {
      return { ok: false, reason: 'the password has changed or the account is disabled', forged: false };
    }
    if (current.ended.has(claims.sid)) return { ok: false, reason: 'signed out', forged: false };
    return { ok: true, kind: 'user', user: claims.sub, session: claims.sid };
  }

  private verifyGuest(claims: z.infer<typeof guestPayload>): AccessCheck {
    if (claims.exp * 1000 <= this.now()) return { ok: false, reason: 'expired token', forged: false };
    return { ok: true, kind: 'guest', meeting: claims.mtg, guest: claims.gst, displayName: claims.name };
  }

  /**
   * Sign-out: ends `session` of `subject` (from a verified access token). Its refresh token is deleted and
   * its access tokens refused from now on by this process (the cache is updated), by the other workers
   * within FINGERPRINT_CACHE_MS. Throws only when the store fails.
   */
  async signOut(subject: string, session: string): Promise<void> {
    // Recorded as long as any token of the session could still be presented.
    await this.options.refreshTokens.endSession(subject, session, this.now() + Math.max(this.accessTtlS * 1000, this.refreshTtlMs));
    this.cache.get(subject)?.ended.add(session);
  }

  /**
   * The subject's password changed, or it was disabled or deleted: its tokens are checked against the store on their
   * next use, so this process refuses the old ones at once (the other workers within FINGERPRINT_CACHE_MS).
   */
  forget(subject: string): void {
    this.cache.delete(subject);
  }

  private async password(name: string, password: string, domainField: string | undefined): Promise<GrantAnswer> {
    const at = name.lastIndexOf('@');
    const username = at === -1 ? name : name.slice(0, at);
    const named = at === -1 ? undefined : name.slice(at + 1).toLowerCase();
    const given = domainField?.toLowerCase();
    if (named !== undefined && given !== undefined && named !== given) return refuse(400, 'invalid_request', 'username and domain name different domains');
    if (username === '') return refuse(400, 'invalid_request', 'username: the user part is empty');
    const domain = named ?? given ?? this.options.domains[0]!;
    const subscriber = this.options.domains.includes(domain) ? await this.options.subscribers.get(username, domain) : undefined;
    // Hashed whether or not the user exists, so the answer takes as long for an unknown one.
    const ha1 = computeHa1Set(username, domain, password);
    if (subscriber === undefined) return BAD_PASSWORD;
    // Either stored HA1 will do (a subscriber imported with only one of them); constant-time comparisons.
    const matches = digestEquals(subscriber.ha1Md5, ha1.ha1Md5) || digestEquals(subscriber.ha1Sha256, ha1.ha1Sha256);
    if (!matches) return BAD_PASSWORD;
    const fingerprint = passwordFingerprint(subscriber);
    if (fingerprint === undefined) return refuse(401, 'invalid_grant', 'the account is disabled');
    return this.issue(`${username}@${domain}`, fingerprint, newSession());
  }

  /** The guest grant: a token for one meeting that exists; whether the guest gets in is the focus's business at join. */
  private async guest(meeting: string, displayName: string): Promise<GrantAnswer> {
    if (!(await this.options.meetings!.exists(meeting))) return refuse(401, 'invalid_grant', 'no such meeting');
    const guest = (this.options.newGuestId ?? newGuestId)();
    const iat = Math.floor(this.now() / 1000);
    const ttl = this.options.guestTtlSeconds ?? DEFAULT_GUEST_TTL_S;
    const payload = Buffer.from(JSON.stringify({ sub: `guest:${guest}`, iat, exp: iat + ttl, mtg: meeting, gst: guest, name: displayName })).toString('base64url');
    const unsigned = `${HEADER}.${payload}`;
    return { status: 200, body: { access_token: `${unsigned}.${this.sign(unsigned).toString('base64url')}`, token_type: 'Bearer', expires_in: ttl, guest, meeting } };
  }

  private async refresh(token: string): Promise<GrantAnswer> {
    const record = await this.options.refreshTokens.consume(token);
    if (record === undefined || record.expiresAt <= this.now()) return refuse(401, 'invalid_grant', 'unknown, used or expired refresh token');
    const current = await this.subject(record.subject, false);
    if (current.fingerprint === undefined || !digestEquals(current.fingerprint, record.fingerprint)) {
      return refuse(401, 'invalid_grant', 'the password has changed or the account is disabled: sign in again');
    }
    // A token consumed just before a sign-out deleted it: the session is recorded as ended by then.
    if (record.session !== undefined && current.ended.has(record.session)) return refuse(401, 'invalid_grant', 'signed out: sign in again');
    // A token from before sessions existed opens one.
    return this.issue(record.subject, current.fingerprint, record.session ?? newSession());
  }

  private async issue(subject: string, fingerprint: string, session: string): Promise<GrantAnswer> {
    const now = this.now();
    if (now - this.lastPurge >= PURGE_EVERY_MS) {
      this.lastPurge = now;
      await this.options.refreshTokens.purgeExpired(now);
    }
    const iat = Math.floor(now / 1000);
    const payload = Buffer.from(JSON.stringify({ sub: subject, iat, exp: iat + this.accessTtlS, pfp: fingerprint, sid: session })).toString('base64url');
    const unsigned = `${HEADER}.${payload}`;
    const refreshToken = await this.options.refreshTokens.issue({ subject, fingerprint, createdAt: now, expiresAt: now + this.refreshTtlMs, session });
    return {
      status: 200,
      body: {
        access_token: `${unsigned}.${this.sign(unsigned).toString('base64url')}`,
        token_type: 'Bearer',
        expires_in: this.accessTtlS,
        refresh_token: refreshToken,
        user: subject,
      },
    };
  }

  private sign(text: string): Buffer {
    return createHmac('sha256', this.options.key).update(text).digest();
  }

  /** The subject's current state, from the cache when `cached` and fresh. */
  private async subject(subject: string, cached: boolean): Promise<SubjectState> {
    const now = this.now();
    const hit = this.cache.get(subject);
    if (cached && hit !== undefined && hit.until > now) return hit;
    const { username, domain } = splitSubject(subject);
    const [subscriber, ended] = await Promise.all([this.options.subscribers.get(username, domain), this.options.refreshTokens.endedSessions(subject, now)]);
    const state = { fingerprint: subscriber === undefined ? undefined : passwordFingerprint(subscriber), ended: new Set(ended) };
    if (this.cacheMs > 0) {
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(subject, { ...state, until: now + this.cacheMs });
    }
    return state;
  }
}
