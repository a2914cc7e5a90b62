/**
 * The registrar's public types: what the digest authenticator needs and answers, what a binding is,
 * what the location service persists, and the module's API. Types only, so the proxy and tests can
 * depend on them without the classes.
 */
import type { NonceLedger } from './auth/nonce-ledger.js';
import type { Binding as PersistedBinding } from '../platform/store/index.js';
import type { Logger } from '../src/log/index.js';
import type { NameAddr, PushParams, PushProvider, SipRequest, Uri } from '../src/sip/index.js';
import type { ServerTransaction } from '../src/transaction/index.js';
import type { Flow, TransportProtocol } from '../src/transport/types.js';

// ---- authentication ------------------------------------------------------------------------------

/** The digest algorithms the authenticator offers and verifies (RFC 8760). */
export type AuthAlgorithm = 'MD5' | 'SHA-256';

/** 'www': a registrar or UAS (401, WWW-Authenticate); 'proxy': a proxy (407, Proxy-Authenticate). RFC 3261 §22.3. */
export type AuthMode = 'www' | 'proxy';

/** What the authenticator needs of a subscriber: HA1 = H(username ":" realm ":" password), lower-case hex. */
export interface SubscriberCredentials {
  ha1Md5: string;
  ha1Sha256: string;
  enabled: boolean;
}

/** Where subscribers come from (the SQL store adapts to it). `username` is Unicode text, `domain` lower-case. */
export interface CredentialSource {
  getCredentials(username: string, domain: string): Promise<SubscriberCredentials | undefined>;
}

export type AuthResult =
  | { ok: true; username: string; domain: string }
  | { ok: false; status: 401 | 407 | 403 | 400; reason: string; headers: Array<[string, string]> };

/** A refusal from `authenticate`: the status, reason and challenge headers to answer with. */
export type AuthFailure = Extract<AuthResult, { ok: false }>;

export interface Authenticator {
  /**
   * Checks the request's credentials for `domain` (the realm is derived from it). `username` in a
   * success is Unicode text, as the credential source knows it.
   */
  /** `source`: the address the request came from (password-guessing guard, logs); default the top Via's. */
  authenticate(request: SipRequest, mode: AuthMode, domain: string, source?: string): Promise<AuthResult>;
}

/** What the authenticator asks of the password-guessing guard; addresses are source IPs, users `user@domain`. */
export interface AuthFailureGuard {
  /** False: this source has already failed for this user, who is under attack: refuse before checking. */
  mayTry(source: string, user: string): boolean;
  /** A failed authentication; returns whether to log it (rate-limited). */
  failed(source: string, user: string): boolean;
  succeeded(source: string, user: string): void;
}

export interface DigestAuthenticatorOptions {
  credentials: CredentialSource;
  /** The digest realm of a domain; default: the domain itself (the store hashes HA1 with realm = domain). */
  realmFor?: (domain: string) => string;
  /** HMAC key of the nonces; random by default. Nodes that must accept each other's nonces share one. */
  secret?: Buffer;
  /** How long a nonce is accepted before it is answered with stale=true; default 300 000 ms. */
  nonceTtlMs?: number;
  /** The same for REGISTER, which answers its challenge at once; default 30 000 ms (or nonceTtlMs if shorter). */
  registerNonceTtlMs?: number;
  /** Accept RFC 2069 answers without qop (each nonce then answers once); default false. */
  allowNoQop?: boolean;
  /** Where the used nonce-counts are kept (a cluster worker's ledger asks the other workers); default a local one. */
  ledger?: NonceLedger;
  /** Password-guessing protection: told of every failure and success (security/auth-guard.ts). */
  guard?: AuthFailureGuard;
  /**
   * Whether a digest `uri` that is not the Request-URI names this server (a served domain or one of its
   * addresses, any port, no user part): SIPp and many phones write that. Default: only the Request-URI.
   */
  namesServer?: (uri: string) => boolean;
  /** Challenges offered, in this order; default ['SHA-256', 'MD5'] (see digest-authenticator.ts). */
  algorithms?: AuthAlgorithm[];
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
  logger: Logger;
}

// ---- bindings ------------------------------------------------------------------------------------

/** Where a REGISTER came from: the transport and the packet's source address. */
export interface ReceivedAddress {
  protocol: TransportProtocol;
  address: string;
  port: number;
}

/** One binding of an address-of-record to a contact (RFC 3261 §10.3), with RFC 5626 / RFC 3327 data. */
export interface Binding {
  /** Canonical AoR, `sip:user@domain` (see aorOf). */
  readonly aor: string;
  /** The Contact as registered (URI and header parameters), without its `expires` parameter. */
  readonly contact: NameAddr;
  /** The contact URI as written. */
  readonly contactUri: string;
  /** ms since the epoch. */
  readonly expiresAt: number;
  readonly q?: number | undefined;
  readonly callId: string;
  readonly cseq: number;
  /** The connection the REGISTER arrived on; undefined for bindings loaded from persistence. */
  readonly flow?: Flow | undefined;
  readonly received: ReceivedAddress;
  /** Path header values (RFC 3327), top first: the route set towards the contact. */
  readonly path?: string[] | undefined;
  /** RFC 5626 `+sip.instance`, unquoted, e.g. `<urn:uuid:…>`. */
  readonly instanceId?: string | undefined;
  /** RFC 5626 `reg-id`. */
  readonly regId?: number | undefined;
  readonly userAgent?: string | undefined;
  /**
   * RFC 8599 push parameters of the Contact URI, when its provider is one this server serves (see
   * pushParamsOf): the device can be woken by a push. Such a binding outlives its connection: it is then
   * asleep (isAsleep), reachable only by waking the device with a push.
   */
  readonly push?: PushParams | undefined;
  /** ms since the epoch. */
  readonly updatedAt: number;
}

/** Called with a binding added or refreshed with a live flow (RegistrarApi.onBinding). */
export type BindingListener = (binding: Binding) => void;

/** One atomic change to an AoR's bindings: `remove` (existing Binding objects) go, `add` come in. */
export interface BindingChanges {
  remove?: readonly Binding[];
  add?: readonly Binding[];
}

/**
 * A row of the `locations` table as the store's LocationRepository reads and writes it (one definition,
 * the store's), so `store.locations` can be passed as the persistence directly.
 */
export type LocationRow = PersistedBinding;

/** Write-behind persistence of the bindings; failures are logged, never fail a REGISTER. */
export interface LocationPersistence {
  upsert(row: LocationRow): Promise<unknown>;
  /** Several upserts in one go (one statement where the store can); used instead of upsert when present. */
  upsertMany?(rows: LocationRow[]): Promise<unknown>;
  remove(aor: string, contact: string): Promise<unknown>;
  removeAor(aor: string): Promise<unknown>;
  listAll(): Promise<LocationRow[]>;
}

export interface LocationServiceOptions {
  persistence?: LocationPersistence | undefined;
  logger: Logger;
  clock?: () => number;
  /** How often expired bindings are dropped; default 10 000 ms. */
  purgeIntervalMs?: number;
  /** The push providers served (RegistrarOptions.push): a contact naming another gets no push data. */
  pushProviders?: readonly PushProvider[] | undefined;
}

/** RFC 8599 push as the registrar offers it (the providers the push service has clients for). */
export interface RegistrarPushOptions {
  /** The providers configured; a REGISTER naming another one makes an ordinary binding. */
  providers: PushProvider[];
  /** The VAPID public key (base64url) a Web Push subscription is made with: `+sip.vapid` in Feature-Caps. */
  vapidPublicKey?: string | undefined;
}

// ---- the module ------------------------------------------------------------------------------------

export interface RegistrarOptions {
  /** Domains whose AoRs this registrar holds (compared case-insensitively). */
  domains: string[];
  /** Shortest accepted non-zero expiry, seconds (423 below it); default 60. */
  minExpires?: number;
  /** Longest expiry granted, seconds (longer ones are shortened); default 3600. */
  maxExpires?: number;
  /** Expiry when the request names none, seconds; default 600. */
  defaultExpires?: number;
  authAlgorithms?: AuthAlgorithm[];
  nonceTtlMs?: number;
  registerNonceTtlMs?: number;
  allowNoQop?: boolean;
  /** RFC 8599 push bindings; without it a Contact's `pn-*` parameters are kept as any other parameter. */
  push?: RegistrarPushOptions | undefined;
  /** More header fields for a 200 that keeps bindings (the TURN credential of X-Ice-Servers); see `OkHeaderSource`. */
  okHeaders?: OkHeaderSource | undefined;
}

/**
 * More header fields for a REGISTER's 200 that leaves the device registered (not for a removal or a query): `aor`
 * is the `user@domain` the REGISTER was authenticated for, `flow` the connection it came on.
 */
export type OkHeaderSource = (aor: string, flow: Flow) => Array<[string, string]>;

export interface RegistrarStats {
  /** REGISTERs answered 200. */
  accepted: number;
  /** REGISTERs answered with an error (a challenge is not a refusal). */
  refused: number;
  /** REGISTERs answered 401 with a challenge. */
  challenged: number;
}

/** The registrar module as the proxy and the application see it. */
export interface RegistrarApi {
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Answers a REGISTER (RFC 3261 §10.3) through its server transaction; failures inside become a 400 or
   * 500 answer. Rejects (TypeError) only when given another method.
   */
  handle(request: SipRequest, tx: ServerTransaction): Promise<void>;
  /** Unexpired bindings of an AoR, highest q first, then most recent. */
  lookup(aor: string): Binding[];
  /** The binding whose contact URI equals `uri` (§19.1.4), for in-dialog requests to a registered contact. */
  lookupByContact(uri: string | Uri): Binding | undefined;
  /**
   * A connection closed: drops the bindings reachable only over it, and puts the push bindings on it to
   * sleep (no flow: reachable by a push only); returns how many were dropped.
   */
  onFlowClosed(flow: Flow): number;
  /**
   * Calls `listener` with every binding added or refreshed with a live flow (a UDP push device's too: its
   * refresh is how it answers a push), whether by a REGISTER here (once its 200 is sent) or replicated
   * from another worker (once lookup() finds it); never for a removal or a binding put to sleep. A held
   * INVITE waits on it for the device it woke. Returns the unsubscribe.
   */
  onBinding(listener: BindingListener): () => void;
  /** Calls `listener` with the AoR after any change to its bindings (added, refreshed, removed, expired, asleep). */
  onChange(listener: (aor: string) => void): () => void;
  readonly authenticator: Authenticator;
  readonly stats: Readonly<RegistrarStats>;
}
