/**
 * Digest authentication of requests (RFC 3261 §22, RFC 2617, RFC 8760) with stateless nonces: a nonce
 * carries its issue time, its issuer (worker index and incarnation) and an HMAC, so any nonce can be
 * checked without remembering it; the nonce-counts used are kept by the issuer (NonceLedger) so that
 * every (nonce, nc) is accepted once across all workers.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { KeyedMac, equalText } from '../../src/sip/index.js';
import { type Logger, categoryLogger } from '../../src/log/index.js';
import {
  type DigestCredentials, SipParseError, type SipRequest, computeDigestResponse, digestEquals, isDigestCredentials,
  parseCredentials, parseDigestAlgorithm, parseUri, serializeChallenge, uriEquals, wireToUtf8,
} from '../../src/sip/index.js';
import type {
  AuthAlgorithm, AuthFailure, AuthFailureGuard, AuthMode, AuthResult, Authenticator, CredentialSource, DigestAuthenticatorOptions,
} from '../types.js';
import { NonceLedger, type NonceIssuer } from './nonce-ledger.js';

const DEFAULT_NONCE_TTL_MS = 300_000;
/**
 * A REGISTER answers its challenge within milliseconds; a nonce kept for minutes only widens the window in
 * which captured credentials are worth anything. Phones that reuse a nonce for their next refresh get a
 * stale=true challenge and answer it at once.
 */
const DEFAULT_REGISTER_NONCE_TTL_MS = 30_000;
/**
 * SHA-256 first, MD5 last. RFC 8760 §2.4 clients take the first challenge whose algorithm they support,
 * so they use SHA-256. SIP.js 0.21 and JsSIP 3.13 support only MD5 and keep only the LAST
 * WWW-Authenticate / Proxy-Authenticate of a response (their parsers call setHeader for each one:
 * sip.js lib/core/messages/parser.js, jssip lib/Parser.js), so they find MD5 there.
 */
const DEFAULT_ALGORITHMS: readonly AuthAlgorithm[] = ['SHA-256', 'MD5'];

/**
 * Nonce layout: base64url(6-byte issue time in ms, issuer index (1 byte), issuer incarnation (3 bytes),
 * 6 random bytes) then base64url(first 16 bytes of the HMAC).
 */
const PAYLOAD_BYTES = 16;
const PAYLOAD_CHARS = 22;
const MAC_CHARS = 22;
/** A nonce dated this far ahead of our clock was not issued by a clock we trust. */
const MAX_CLOCK_SKEW_MS = 60_000;

/** HA1 of nobody, hashed when the user is unknown so that both failures cost the same time. */
const DUMMY_HA1: Readonly<Record<AuthAlgorithm, string>> = {
  'MD5': '0'.repeat(32),
  'SHA-256': '0'.repeat(64),
};

interface ParsedNonce {
  issuedAt: number;
  issuer: NonceIssuer;
}

/**
 * Authenticates requests against a CredentialSource: challenges (401 / 407) with one header per
 * configured algorithm, verifies MD5 and SHA-256 responses against the stored HA1, refuses replays, and
 * tells the guard (password guessing) about every failure.
 */
export class DigestAuthenticator implements Authenticator {
  private readonly credentials: CredentialSource;
  private readonly realmFor: (domain: string) => string;
  private readonly keyed: KeyedMac;
  private readonly randomPool = Buffer.allocUnsafe(4096);
  private randomPos = 4096;
  private readonly nonceTtlMs: number;
  private readonly registerNonceTtlMs: number;
  private readonly allowNoQop: boolean;
  private readonly algorithms: readonly AuthAlgorithm[];
  private readonly clock: () => number;
  private readonly log: Logger;
  /** Which nonce-counts were used; the issuer of a nonce is the one that knows. */
  readonly ledger: NonceLedger;
  private readonly guard: AuthFailureGuard | undefined;
  private readonly namesServer: ((uri: string) => boolean) | undefined;

  constructor(options: DigestAuthenticatorOptions) {
    const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
    if (algorithms.length === 0) throw new TypeError('at least one digest algorithm is needed');
    for (const a of algorithms) if (a !== 'MD5' && a !== 'SHA-256') throw new TypeError(`unsupported digest algorithm ${String(a)}`);
    const ttl = options.nonceTtlMs ?? DEFAULT_NONCE_TTL_MS;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new TypeError(`nonceTtlMs must be positive, got ${ttl}`);
    const registerTtl = options.registerNonceTtlMs ?? Math.min(ttl, DEFAULT_REGISTER_NONCE_TTL_MS);
    if (!Number.isFinite(registerTtl) || registerTtl <= 0) throw new TypeError(`registerNonceTtlMs must be positive, got ${registerTtl}`);
    if (options.secret !== undefined && options.secret.length < 16) throw new TypeError('the nonce secret must be at least 16 bytes');
    this.credentials = options.credentials;
    this.realmFor = options.realmFor ?? ((domain) => domain);
    this.keyed = new KeyedMac(options.secret ?? randomBytes(32));
    this.nonceTtlMs = ttl;
    this.registerNonceTtlMs = registerTtl;
    this.allowNoQop = options.allowNoQop ?? false;
    this.ledger = options.ledger ?? new NonceLedger({ clock: options.clock });
    this.guard = options.guard;
    this.namesServer = options.namesServer;
    this.algorithms = [...new Set(algorithms)];
    this.clock = options.clock ?? Date.now;
    this.log = categoryLogger(options.logger, 'registrar.auth');
  }

  /** Nonces whose nonce-count is being tracked here (for tests and metrics). */
  get trackedNonces(): number {
    return this.ledger.size;
  }

  /**
   * `source` is the address the request came from (the transport's), for the guard and the log; by
   * default the top Via's received/host, which the stack has stamped with it.
   */
  async authenticate(request: SipRequest, mode: AuthMode, domain: string, source: string = sourceAddress(request)): Promise<AuthResult> {
    const realm = this.realmFor(domain);
    const found = this.findCredentials(request, mode, realm);
    if (found === 'malformed') return badRequest('Bad Request: malformed credentials');
    if (found === undefined) return this.challenge(mode, domain);
    const creds = found;

    // RFC 2617 §3.2.2.5: the digest-uri must name the resource of the Request-URI, or the response
    // could have been computed for another request. Many clients (SIPp's `-au/-ap`, desk phones) write
    // this server's address instead (`sip:192.0.2.10:5060`): accepted like Kamailio's and OpenSIPS's
    // pre_auth(), since the nonce-count already makes every response single-use.
    if (creds.uri !== request.uri && !this.namesServer?.(creds.uri)) {
      let same = false;
      try {
        same = uriEquals(parseUri(creds.uri), request.ruri);
      } catch (err) {
        if (!(err instanceof SipParseError)) throw err;
      }
      if (!same) return badRequest('Bad Request: digest uri does not match the Request-URI');
    }
    const algorithm = parseDigestAlgorithm(creds.algorithm);
    if (algorithm === undefined || !(this.algorithms as readonly string[]).includes(algorithm)) {
      return badRequest('Bad Request: unsupported digest algorithm');
    }
    // qop=auth (RFC 2617) or none at all (RFC 2069); auth-int was never offered. The value is hashed as
    // sent, so only the token we offered can be verified.
    const qop = creds.qop;
    if (qop !== undefined && qop !== 'auth') return badRequest('Bad Request: unsupported qop');
    // Without qop (RFC 2069) there is no nonce-count and nothing but the nonce's age to stop a replay:
    // refused unless the operator allows it, and then every such nonce answers once.
    if (qop === undefined && !this.allowNoQop) {
      this.log.info({ user: wireToUtf8(creds.username), realm, source }, 'digest without qop=auth refused');
      return { ok: false, status: 403, reason: 'Forbidden: digest without qop=auth is not accepted', headers: [] };
    }
    const nc = qop === undefined ? 1 : creds.nc === undefined ? Number.NaN : parseInt(creds.nc, 16);
    if (!Number.isSafeInteger(nc) || nc < 1) return badRequest('Bad Request: malformed nonce-count');

    const nonce = this.parseNonce(creds.nonce, realm);
    if (nonce === undefined) {
      this.log.info({ user: wireToUtf8(creds.username), realm, source }, 'nonce not issued here; challenging again');
      return this.challenge(mode, domain);
    }

    const username = wireToUtf8(creds.username);
    const user = `${username}@${domain}`;
    // A user under password guessing: a source that already failed for it gets no further try.
    if (this.guard !== undefined && !this.guard.mayTry(source, user)) {
      return { ok: false, status: 403, reason: 'Forbidden: too many failed attempts, try later', headers: [] };
    }
    const subscriber = await this.credentials.getCredentials(username, domain);
    const ha1 = subscriber === undefined
      ? DUMMY_HA1[algorithm as AuthAlgorithm]
      : algorithm === 'MD5' ? subscriber.ha1Md5 : subscriber.ha1Sha256;
    const expected = computeDigestResponse({
      algorithm, ha1, nonce: creds.nonce, method: request.method, uri: creds.uri,
      ...(qop === 'auth' ? { qop: 'auth' as const, nc: creds.nc, cnonce: creds.cnonce } : {}),
    });
    if (subscriber === undefined || !digestEquals(expected, creds.response)) {
      // The client learns nothing about which of the two it was; the operator does (one line per
      // failure, fail2ban-friendly, at most a few per source per window).
      if (this.guard?.failed(source, user) ?? true) {
        this.log.info(
          { user: username, realm, source, transport: sourceOf(request), why: subscriber === undefined ? 'unknown user' : 'wrong password' },
          'authentication failed',
        );
      }
      return this.challenge(mode, domain);
    }
    if (!subscriber.enabled) {
      this.log.info({ user: username, realm, source }, 'subscriber disabled');
      return { ok: false, status: 403, reason: 'Forbidden: subscriber disabled', headers: [] };
    }

    const ttl = request.method === 'REGISTER' ? this.registerNonceTtlMs : this.nonceTtlMs;
    if (this.clock() - nonce.issuedAt > ttl) {
      // RFC 2617 §3.2.1: the credentials were right, only the nonce is old: stale=true lets the client
      // retry with the new nonce without asking its user for the password.
      return this.challenge(mode, domain, true);
    }
    // RFC 2617 §3.2.2: the nonce-count lets the server detect replays; each use must increase it, on
    // whichever worker the request arrives.
    if (!(await this.ledger.claim(nonce.issuer, creds.nonce, nc, nonce.issuedAt + ttl))) {
      this.log.info({ user: username, realm, source, nc: creds.nc ?? '(no qop)' }, 'nonce-count replayed or its issuer gone; challenging again');
      // The response proves the password, so stale=true: a client that merely reordered its requests
      // retries at once; a replayer gains a nonce it cannot answer.
      return this.challenge(mode, domain, true);
    }
    this.guard?.succeeded(source, user);
    return { ok: true, username, domain };
  }

  /**
   * A 401 (mode 'www', WWW-Authenticate) or 407 (mode 'proxy', Proxy-Authenticate) with one challenge per
   * configured algorithm, in order, sharing one fresh nonce.
   */
  challenge(mode: AuthMode, domain: string, stale = false): AuthFailure {
    const realm = this.realmFor(domain);
    const nonce = this.issueNonce(realm);
    const name = mode === 'www' ? 'WWW-Authenticate' : 'Proxy-Authenticate';
    const headers: Array<[string, string]> = this.algorithms.map((algorithm) => [
      name,
      serializeChallenge({ realm, nonce, algorithm, qop: ['auth'], ...(stale ? { stale: true } : {}) }),
    ]);
    return mode === 'www'
      ? { ok: false, status: 401, reason: 'Unauthorized', headers }
      : { ok: false, status: 407, reason: 'Proxy Authentication Required', headers };
  }

  /** The Digest credentials for `realm` among every Authorization (or Proxy-Authorization) field. */
  private findCredentials(request: SipRequest, mode: AuthMode, realm: string): DigestCredentials | 'malformed' | undefined {
    const header = mode === 'www' ? 'authorization' : 'proxy-authorization';
    let malformed = false;
    for (const value of request.getAll(header)) {
      let parsed;
      try {
        parsed = parseCredentials(value, header);
      } catch (err) {
        if (!(err instanceof SipParseError)) throw err;
        // Another scheme we cannot parse is someone else's business; broken Digest is the client's error.
        if (/^\s*digest\b/i.test(value)) malformed = true;
        continue;
      }
      // RFC 4475 §3.3.7: credentials of an unknown scheme are ignored and a challenge we understand is sent.
      if (isDigestCredentials(parsed) && parsed.realm === realm) return parsed;
    }
    return malformed ? 'malformed' : undefined;
  }

  private issueNonce(realm: string): string {
    const payload = Buffer.allocUnsafe(PAYLOAD_BYTES);
    payload.writeUIntBE(this.clock(), 0, 6);
    payload[6] = this.ledger.self.index;
    payload.writeUIntBE(this.ledger.self.incarnation, 7, 3);
    this.fillRandom(payload, 10, PAYLOAD_BYTES - 10);
    const p = payload.toString('base64url');
    return p + this.mac(realm, p);
  }

  /** Random octets from a pooled buffer: one getrandom call per few hundred challenges, not one each. */
  private fillRandom(target: Buffer, offset: number, length: number): void {
    if (this.randomPos + length > this.randomPool.length) {
      randomFillSync(this.randomPool);
      this.randomPos = 0;
    }
    this.randomPool.copy(target, offset, this.randomPos, this.randomPos + length);
    this.randomPos += length;
  }

  /** Issue time and issuer of a nonce made (by any process sharing the secret) for `realm`, or undefined. */
  private parseNonce(nonce: string, realm: string): ParsedNonce | undefined {
    if (nonce.length !== PAYLOAD_CHARS + MAC_CHARS) return undefined;
    const p = nonce.slice(0, PAYLOAD_CHARS);
    if (!equalText(nonce.slice(PAYLOAD_CHARS), this.mac(realm, p))) return undefined;
    const payload = Buffer.from(p, 'base64url');
    if (payload.length !== PAYLOAD_BYTES) return undefined;
    const issuedAt = payload.readUIntBE(0, 6);
    if (issuedAt > this.clock() + MAX_CLOCK_SKEW_MS) return undefined;
    return { issuedAt, issuer: { index: payload[6]!, incarnation: payload.readUIntBE(7, 3) } };
  }

  /** 22 base64url characters (132 bits) of the realm's MAC over the payload. */
  private mac(realm: string, payload: string): string {
    return this.keyed.mac(realm + ':' + payload).slice(0, MAC_CHARS);
  }
}

function badRequest(reason: string): AuthFailure {
  return { ok: false, status: 400, reason, headers: [] };
}

/** The source address the stack stamped on the top Via (received, else the host it matched). */
function sourceAddress(request: SipRequest): string {
  const via = request.topVia;
  if (via === undefined) return 'unknown';
  const host = via.received ?? via.host;
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/** Where the request came from, as the stack recorded it on the top Via (received / rport). */
function sourceOf(request: SipRequest): string {
  const via = request.topVia;
  if (via === undefined) return 'unknown';
  const rport = via.rport;
  return `${via.transport.toLowerCase()}:${via.received ?? via.host}:${typeof rport === 'number' ? rport : via.port ?? ''}`;
}
