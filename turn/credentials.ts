/**
 * Short-lived TURN credentials, the "TURN REST API" scheme of draft-uberti-behave-turn-rest-00 (the
 * predecessor of RFC 7635) as coturn implements it with `use-auth-secret` + `static-auth-secret`:
 *
 *   username   = <expiry, seconds since the epoch> ":" <user>
 *   credential = base64(HMAC-SHA1(secret, username))
 *
 * The secret is used as the bytes of its text, like coturn reads it from its configuration; the credential
 * is then the long-term password of RFC 5389 §10.2 for that username, which coturn recomputes from the secret
 * instead of looking it up. coturn refuses a username whose timestamp is in the past, so the credential dies
 * on its own (draft §2.2): nothing is stored and nothing needs revoking.
 *
 * Rotation: credentials are always made with the current secret (`turn.secret`, or the generated file); the
 * previous ones (`turn.previousSecrets`) still verify and are listed in `secrets` for coturn's configuration
 * (coturn accepts several `static-auth-secret` lines and tries each), until their last credential has expired.
 *
 * Without `turn.secret`, the secret is dataDir/turn/secret, created on the first start (32 random bytes as
 * base64url text, file 0600, folder 0700) and read on every later one; give coturn the same value. No secret
 * and no credential is ever logged, only where a secret came from and when a credential expires.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { categoryLogger, type Logger } from '../src/log/index.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, logTightened, tightenModes } from '../src/transport/file-modes.js';

/** Where a generated secret is kept under dataDir. */
export const TURN_SECRET_FILE = join('turn', 'secret');
/** Random bytes of a generated secret (256 bits, as the config asks of a configured one: 32+ characters). */
export const SECRET_BYTES = 32;
/** Shortest secret accepted, characters (the configuration's rule). */
export const MIN_SECRET_LENGTH = 32;
/** Longest life of a credential, seconds (turn.ttl's maximum). */
export const MAX_TTL_S = 86_400;

/**
 * What a secret may look like: base64, base64url or hex text (what `openssl rand -hex 32` or the generated
 * file give), no spaces, no `#` or quotes that coturn's configuration file would read differently.
 */
const SECRET_TEXT = /^[A-Za-z0-9+/=_.~-]{32,512}$/;
/** Our usernames: the expiry's digits, the separator, a non-empty user. */
const USERNAME = /^(\d{1,12}):(.+)$/s;

/** The `<user>` of a REST username `<expiry>:<user>` (what quotas count), undefined for another form. */
export function restUser(username: string): string | undefined {
  return USERNAME.exec(username)?.[2];
}

export type TurnErrorCode =
  | 'TURN_ERR_SECRET' // a configured secret or the secret file is unusable (missing, wrong form)
  | 'TURN_ERR_REQUEST'; // issue() called with an empty user or a lifetime out of range

/** Never carries a secret or a credential. */
export class TurnError extends Error {
  readonly code: TurnErrorCode;

  constructor(code: TurnErrorCode, message: string) {
    super(message);
    this.name = 'TurnError';
    this.code = code;
  }
}

/** A credential for one user: the RTCIceServer `username` and `credential`, and when it stops working. */
export interface TurnCredential {
  /** `<expiry unix seconds>:<user>`. */
  readonly username: string;
  /** base64(HMAC-SHA1(secret, username)). */
  readonly credential: string;
  /** The expiry, ms since the epoch (the username's timestamp × 1000). */
  readonly expiresAt: number;
}

export interface TurnCredentialsLoadOptions {
  /** turn.secret: the current secret; unset, the file dataDir/turn/secret. */
  secret?: string | undefined;
  /** turn.previousSecrets: still verify, never used to issue. */
  previousSecrets?: readonly string[] | undefined;
  dataDir: string;
  logger: Logger;
}

const hmac = (secret: string, username: string): Buffer => createHmac('sha1', Buffer.from(secret, 'utf8')).update(username, 'utf8').digest();

function readSecretFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TurnError('TURN_ERR_SECRET', `cannot read the TURN secret ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const secret = text.trim();
  if (!SECRET_TEXT.test(secret)) {
    throw new TurnError('TURN_ERR_SECRET', `${path} does not hold a TURN secret (32 to 512 characters of base64, base64url or hex); restore the file coturn shares, delete it to generate a new one (then give coturn the new value), or set turn.secret`);
  }
  return secret;
}

export class TurnCredentials {
  /** Every secret that verifies, the current one (which issues) first: coturn's `static-auth-secret` lines. */
  readonly secrets: string[];
  private readonly log: Logger | undefined;

  /** `secrets`: the current secret first, then the previous ones (TurnCredentials.load finds them; tests may pass them). */
  constructor(secrets: readonly string[], logger?: Logger) {
    if (secrets.length === 0) throw new TurnError('TURN_ERR_SECRET', 'a TURN secret is needed');
    for (const [i, s] of secrets.entries()) {
      if (s.length < MIN_SECRET_LENGTH) throw new TurnError('TURN_ERR_SECRET', `TURN secret ${i} must be at least ${MIN_SECRET_LENGTH} characters`);
    }
    this.secrets = [...new Set(secrets)];
    this.log = logger === undefined ? undefined : categoryLogger(logger, 'turn');
  }

  /**
   * The configured secret, else dataDir/turn/secret (created once). The workers of a node start together and
   * must share one secret: each writes a candidate file and links it to the final name; all but the first get
   * EEXIST and read the winner's, which a link makes complete or absent, never half-written.
   */
  static load(options: TurnCredentialsLoadOptions): TurnCredentials {
    const log = categoryLogger(options.logger, 'turn');
    const previous = options.previousSecrets ?? [];
    for (const [i, s] of previous.entries()) {
      if (s.length < MIN_SECRET_LENGTH) throw new TurnError('TURN_ERR_SECRET', `configuration key turn.previousSecrets.${i}: must be at least ${MIN_SECRET_LENGTH} characters`);
    }
    if (options.secret !== undefined) {
      if (options.secret.length < MIN_SECRET_LENGTH) throw new TurnError('TURN_ERR_SECRET', `configuration key turn.secret: must be at least ${MIN_SECRET_LENGTH} characters`);
      const credentials = new TurnCredentials([options.secret, ...previous], options.logger);
      log.info({ source: 'turn.secret', previousSecrets: credentials.secrets.length - 1 }, 'TURN secret loaded');
      return credentials;
    }
    const dir = join(options.dataDir, 'turn');
    const path = join(options.dataDir, TURN_SECRET_FILE);
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const candidate = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
    const generated = randomBytes(SECRET_BYTES).toString('base64url');
    writeFileSync(candidate, generated + '\n', { flag: 'wx', mode: PRIVATE_FILE_MODE });
    try {
      linkSync(candidate, path);
      const credentials = new TurnCredentials([generated, ...previous], options.logger);
      log.warn({ path, previousSecrets: credentials.secrets.length - 1 }, 'TURN secret generated: give coturn the same value (static-auth-secret) or set turn.secret');
      return credentials;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      logTightened(log, 'the TURN secret', tightenModes([{ path: dir, mode: PRIVATE_DIR_MODE }, { path, mode: PRIVATE_FILE_MODE }]));
      const credentials = new TurnCredentials([readSecretFile(path), ...previous], options.logger);
      log.info({ path, previousSecrets: credentials.secrets.length - 1 }, 'TURN secret loaded');
      return credentials;
    } finally {
      unlinkSync(candidate);
    }
  }

  /**
   * A credential for `user` valid `ttlS` seconds from `now` (ms since the epoch, default Date.now()), made
   * with the current secret.
   */
  issue(user: string, ttlS: number, now: number = Date.now()): TurnCredential {
    if (user.length === 0) throw new TurnError('TURN_ERR_REQUEST', 'a TURN credential needs a user');
    if (!Number.isInteger(ttlS) || ttlS < 1 || ttlS > MAX_TTL_S) throw new TurnError('TURN_ERR_REQUEST', `a TURN credential lives 1 to ${MAX_TTL_S} seconds, not ${ttlS}`);
    const expiry = Math.floor(now / 1000) + ttlS;
    const username = `${expiry}:${user}`;
    const credential = hmac(this.secrets[0]!, username).toString('base64');
    this.log?.debug({ expiresAt: new Date(expiry * 1000).toISOString() }, 'TURN credential issued');
    return { username, credential, expiresAt: expiry * 1000 };
  }

  /**
   * The long-term passwords (RFC 5389 §10.2) `username` may have, one per secret, the current one first: what a
   * TURN server recomputes instead of looking a password up. [] when the username is not `<expiry>:<user>` or
   * its expiry is in the past (coturn refuses `ts < now`).
   */
  passwords(username: string, now: number = Date.now()): string[] {
    const m = USERNAME.exec(username);
    if (m === null || Number(m[1]) < Math.floor(now / 1000)) return [];
    return this.secrets.map((secret) => hmac(secret, username).toString('base64'));
  }

  /**
   * What coturn checks: the username's timestamp is not in the past, and the credential is the HMAC of the
   * username under the current or a previous secret.
   */
  verify(username: string, credential: string, now: number = Date.now()): boolean {
    const given = Buffer.from(credential, 'utf8');
    let ok = false;
    // Every secret is tried (no early exit): the time taken does not say which secret matched.
    for (const password of this.passwords(username, now)) {
      const expected = Buffer.from(password, 'utf8');
      if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
    }
    return ok;
  }
}
