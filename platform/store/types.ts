/**
 * The store's public interfaces, types only. The SQL implementation (knex: SQLite or MariaDB/MySQL)
 * implements them; a MongoDB or in-memory store can stand beside it by implementing the same ones.
 */
import type { Knex } from 'knex';
import type { Logger } from '../../src/log/index.js';
// Types only: the routing records are the load balancer's (balancer/); the store persists them.
import type { RoutingRepository } from './routing-types.js';

export type StoreDialect = 'sqlite' | 'mysql';

export interface OpenStoreOptions {
  /** `sqlite:data/softswitch.db`, `sqlite::memory:`, a bare file path, or `mysql://user:pass@host:port/db`. */
  url: string;
  logger: Logger;
}

/** A domain this softswitch serves (the digest realm of its subscribers). */
export interface Domain {
  readonly id: number;
  /** Lower-case host name or IP address. */
  readonly name: string;
  /** ms since the epoch. */
  readonly createdAt: number;
}

export interface Subscriber {
  readonly id: number;
  /** Unicode text, case-sensitive; hashed as its UTF-8 octets. */
  readonly username: string;
  /** Lower-case; also the digest realm. */
  readonly domain: string;
  /** H(username:realm:password) per algorithm, lower-case hex (RFC 7616 §3.4.2). */
  readonly ha1Md5: string;
  readonly ha1Sha256: string;
  readonly ha1Sha512_256: string;
  readonly enabled: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface NewSubscriber {
  username: string;
  domain: string;
  /** Clear text, only hashed: never stored. */
  password: string;
  /** Default true. */
  enabled?: boolean;
}

/** What a registrar persists for one binding of an AoR (RFC 3261 §10.3, RFC 5626, RFC 3327). */
export interface Binding {
  /** Canonical address-of-record, e.g. `sip:alice@example.com`. */
  aor: string;
  /** The Contact URI as registered. */
  contact: string;
  /** RFC 5626 +sip.instance, e.g. `<urn:uuid:…>`. */
  instanceId?: string | undefined;
  /** RFC 5626 reg-id. */
  regId?: number | undefined;
  callId: string;
  cseq: number;
  /** ms since the epoch. */
  expiresAt: number;
  /** Contact q-value, 0 to 1. */
  q?: number | undefined;
  /** The Path header values (RFC 3327), as one comma-separated text. */
  path?: string | undefined;
  /** Where the REGISTER came from: `transport:address:port`, e.g. `wss:[2001:db8::1]:50312`. */
  received: string;
  /** Flow token of the connection the binding is reachable on (RFC 5626 §5.2). */
  flowId?: string | undefined;
  userAgent?: string | undefined;
  /** Which softswitch node owns the flow. */
  node?: string | undefined;
  /** ms since the epoch; the time of the upsert when left out. */
  updatedAt?: number | undefined;
}

/** A binding as read back: every optional field is present, undefined when NULL. */
export interface StoredBinding extends Binding {
  readonly id: number;
  instanceId: string | undefined;
  regId: number | undefined;
  q: number | undefined;
  path: string | undefined;
  flowId: string | undefined;
  userAgent: string | undefined;
  node: string | undefined;
  updatedAt: number;
}

export interface DomainRepository {
  /** Adds a domain (stored lower-case). STORE_ERR_DUPLICATE when it exists. */
  add(name: string): Promise<Domain>;
  /** STORE_ERR_NOT_FOUND when unknown, STORE_ERR_IN_USE while subscribers belong to it. */
  remove(name: string): Promise<void>;
  /** By name. */
  list(): Promise<Domain[]>;
  exists(name: string): Promise<boolean>;
}

export interface SubscriberRepository {
  /** Hashes the password for every algorithm (realm = domain) and adds the domain if missing. STORE_ERR_DUPLICATE when the user exists. */
  add(subscriber: NewSubscriber): Promise<Subscriber>;
  get(username: string, domain: string): Promise<Subscriber | undefined>;
  /** By domain then username; only one domain's when given. */
  list(domain?: string): Promise<Subscriber[]>;
  /** STORE_ERR_NOT_FOUND when unknown. */
  remove(username: string, domain: string): Promise<void>;
  /** STORE_ERR_NOT_FOUND when unknown. */
  setPassword(username: string, domain: string, password: string): Promise<void>;
}

export interface LocationRepository {
  /** Inserts the binding, or replaces the one with the same (aor, contact). */
  upsert(binding: Binding): Promise<void>;
  /** upsert for many bindings, in as few statements as the database allows. */
  upsertMany(bindings: Binding[]): Promise<void>;
  /** True when a binding was removed. */
  remove(aor: string, contact: string): Promise<boolean>;
  /** Removes every binding of the AoR; returns how many. */
  removeAor(aor: string): Promise<number>;
  /** The AoR's bindings with expiresAt > now, in the order they were first registered. */
  listAor(aor: string, now: number): Promise<StoredBinding[]>;
  /** Every binding, expired or not, by AoR. */
  listAll(): Promise<StoredBinding[]>;
  /** Deletes the bindings with expiresAt <= now; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

/** An admin token of the HTTP API, without its secret (only its SHA-256 is stored). */
export interface AdminToken {
  readonly id: number;
  readonly name: string;
  /** ms since the epoch. */
  readonly createdAt: number;
  /** ms since the epoch; undefined: never expires. */
  readonly expiresAt: number | undefined;
  /** ms since the epoch of the last request it authenticated (recorded at most once per cache period). */
  readonly lastUsedAt: number | undefined;
}

export interface NewAdminToken {
  /** 1 to 64 letters, digits, ".", "_", "-", starting with a letter; unique. */
  name: string;
  /** ms since the epoch; absent: never expires. */
  expiresAt?: number;
}

export interface CreatedAdminToken {
  /** The token text: returned this once, never stored. */
  readonly token: string;
  readonly record: AdminToken;
}

export interface AdminTokenRepository {
  /** Generates a token and stores its hash. STORE_ERR_DUPLICATE when the name exists; TypeError for a bad name. */
  create(token: NewAdminToken): Promise<CreatedAdminToken>;
  /** The record of the token, found by its hash (expired ones too: the caller compares expiresAt); undefined when unknown. */
  lookup(token: string): Promise<AdminToken | undefined>;
  /** By id; no secrets. */
  list(): Promise<AdminToken[]>;
  /** Deletes the token named so (or with this id); returns what it was. STORE_ERR_NOT_FOUND when unknown. */
  revoke(nameOrId: string | number): Promise<AdminToken>;
  /** Records a use at `at` (ms). */
  touch(id: number, at: number): Promise<void>;
  /** Deletes the tokens expired at `now` (only those whose name starts with `namePrefix` when given); returns how many. */
  purgeExpired(now: number, namePrefix?: string): Promise<number>;
}

/** Any store implementation. Calling a repository after close() throws StoreError STORE_ERR_CLOSED. */
export interface Store {
  readonly domains: DomainRepository;
  readonly subscribers: SubscriberRepository;
  readonly locations: LocationRepository;
  /** Backend sets, backends, dialplan routes, DIDs and trusted sources (sql/0002_routing.ts). */
  readonly routing: RoutingRepository;
  /** Admin tokens of the HTTP API (sql/0003_admin_tokens.ts). */
  readonly tokens: AdminTokenRepository;
  close(): Promise<void>;
}

/** The SQL store: the repositories plus the knex instance later modules build their own on. */
export interface SqlStore extends Store {
  readonly dialect: StoreDialect;
  readonly knex: Knex;
}
