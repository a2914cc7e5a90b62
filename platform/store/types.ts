/**
 * The store's public interfaces, types only. The SQL implementation (knex: SQLite or MariaDB/MySQL)
 * implements them; a MongoDB or in-memory store can stand beside it by implementing the same ones.
 */
import type { Knex } from 'knex';
import type { Logger } from '../../src/log/index.js';
// Types only: the routing records are the load balancer's (balancer/); the store persists them.
import type { RoutingRepository } from './routing-types.js';
import type { MessageRepository } from './message-types.js';
import type { PresenceRepository } from './presence-types.js';
import type { MeetingRepository } from './meeting-types.js';
import type { ParticipantRepository } from './participant-types.js';
import type { ModerationRepository } from './moderation-types.js';
import type { BreakoutRepository } from './breakout-types.js';
import type { RecordingRepository } from './recording-types.js';
import type { PlacementRepository } from './placement-types.js';

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

/** A page of SubscriberRepository.list: the users after `after` (by domain, then username), `limit` of them. */
export interface SubscriberPage {
  after?: { domain: string; username: string } | undefined;
  limit?: number | undefined;
}

export interface SubscriberRepository {
  /** Hashes the password for every algorithm (realm = domain) and adds the domain if missing. STORE_ERR_DUPLICATE when the user exists. */
  add(subscriber: NewSubscriber): Promise<Subscriber>;
  get(username: string, domain: string): Promise<Subscriber | undefined>;
  /**
   * By domain then username; only one domain's when given. With `page`: at most `limit` of them, after the user
   * `after` (keyset pagination: a page stays right while users are added or removed before it).
   */
  list(domain?: string, page?: SubscriberPage): Promise<Subscriber[]>;
  /** STORE_ERR_NOT_FOUND when unknown. */
  remove(username: string, domain: string): Promise<void>;
  /** STORE_ERR_NOT_FOUND when unknown. */
  setPassword(username: string, domain: string, password: string): Promise<void>;
  /**
   * Enables or disables the subscriber (a disabled one fails digest authentication and its tokens die; the row and
   * its HA1s stay). Moves updatedAt. STORE_ERR_NOT_FOUND when unknown.
   */
  setEnabled(username: string, domain: string, enabled: boolean): Promise<void>;
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
  /** Call records and persisted dialogs in batches (sql/0004_calls.ts). */
  readonly historyWrites: HistoryWriteRepository;
  /** Call records, written once per ended dialog (sql/0004_calls.ts). */
  readonly calls: CallRepository;
  /** The active dialogs each worker persists (sql/0004_calls.ts). */
  readonly dialogs: DialogRepository;
  /** Chat conversations, messages, inboxes, device cursors, receipts and files (sql/0006_messaging.ts). */
  readonly messages: MessageRepository;
  /** Presence allow lists: who may watch whom under presence.policy `contacts` (sql/0007_presence.ts). */
  readonly presence: PresenceRepository;
  /** Meetings as data: title, owner, schedule, password hash, lobby (sql/0009_meetings.ts). */
  readonly meetings: MeetingRepository;
  /** Who asked to join which meeting, and what became of it: the lobby, the room and its history (sql/0010_meeting_participants.ts). */
  readonly participants: ParticipantRepository;
  /** Meetings' locks, mute-alls, participants' streams and blocks, and the moderation event log (sql/0011_meeting_moderation.ts). */
  readonly moderation: ModerationRepository;
  /** Meetings' breakout rooms and who is in which (sql/0012_breakout_rooms.ts). */
  readonly breakouts: BreakoutRepository;
  /** Meetings' recording sessions and the files each produced (sql/0013_meeting_recordings.ts). */
  readonly recordings: RecordingRepository;
  /** Which Janus node holds each meeting's room, and the nodes' load (sql/0014_meeting_nodes.ts). */
  readonly placements: PlacementRepository;
  close(): Promise<void>;
}

/** The SQL store: the repositories plus the knex instance later modules build their own on. */
export interface SqlStore extends Store {
  readonly dialect: StoreDialect;
  readonly knex: Knex;
}

// ---- call history (sql/0004_calls.ts) --------------------------------------------------------------

/** Which way a call went: between two users of ours, from a user out to the PSTN, from the PSTN in to a user. */
export type CallDirection = 'user-user' | 'user-pstn' | 'pstn-user';
/** How a call ended, from the caller's and the callee user's point of view. */
export type CallDisposition = 'answered' | 'no-answer' | 'busy' | 'cancelled' | 'failed' | 'rejected';
/** Who ended an answered call (BYE from the caller or callee), or the server (maxDuration, shutdown). */
export type CallHangupBy = 'caller' | 'callee' | 'system';

/** One end of a call as the record keeps it. */
export interface CallParty {
  /** The user of ours (user part of the AoR), when the party is one. */
  user?: string | undefined;
  /** The user's domain, when `user` is set. */
  domain?: string | undefined;
  /** The display name of the From/To header field. */
  displayName?: string | undefined;
  /** The telephone number: the dialled number (callee), the presented number (caller from the PSTN). */
  number?: string | undefined;
  /** The URI as it appeared (From URI, Request-URI). */
  uri: string;
}

/** One call record (CDR), written once per ended dialog. Times are ms since the epoch. */
export interface CallRecord {
  /** The dialog's id (unique; the record's key: written at most once). */
  id: string;
  /** The SIP Call-ID of the caller's leg. */
  callId: string;
  caller: CallParty;
  callee: CallParty;
  direction: CallDirection;
  disposition: CallDisposition;
  startedAt: number;
  answeredAt?: number | undefined;
  endedAt: number;
  /** Whole seconds from start to end (rounded down). */
  duration: number;
  /** Whole seconds from answer to end, rounded up (0 when not answered). */
  billableSeconds: number;
  /** The SIP final status of the INVITE (200 when answered). */
  finalCode: number;
  finalReason?: string | undefined;
  /** Who hung up an answered call. */
  hangupBy?: CallHangupBy | undefined;
  /** What ended the dialog: a BYE, a CANCEL, a final failure, maxDuration, the keep-alive, a shutdown. */
  endCause: 'bye' | 'cancel' | 'failure' | 'timeout' | 'keepalive' | 'shutdown';
  /** The device that answered: its Contact URI (and +sip.instance when it sent one), or the backend. */
  answeredDevice?: string | undefined;
  /** The AoR that answered (user@domain) when a user of ours did. */
  answeredAor?: string | undefined;
  /** The backend (FreeSWITCH, trunk) URI the call went through, if any. */
  backend?: string | undefined;
  /** True when the media went through a relay (rtpengine). */
  mediaRelayed: boolean;
  /** The relay node (host:port) when relayed. */
  mediaNode?: string | undefined;
}

/** A page request of GET /v1/calls: every filter optional, newest first. */
export interface CallQuery {
  /** user@domain: calls where this user is the caller or the callee. */
  user?: string | undefined;
  /** A number, matched against the caller's and the callee's number. */
  number?: string | undefined;
  direction?: CallDirection | undefined;
  disposition?: CallDisposition | undefined;
  /** startedAt >= since (ms). */
  since?: number | undefined;
  /** startedAt < until (ms). */
  until?: number | undefined;
  /** 1..500. */
  limit: number;
  /** The `next` of the previous page. */
  cursor?: string | undefined;
}

export interface CallPage {
  calls: CallRecord[];
  /** Absent on the last page. */
  next?: string | undefined;
}

/** An active dialog as persisted so that a restarted worker takes it up again (sql/0004_calls.ts). */
export interface PersistedDialog {
  id: string;
  callId: string;
  /** The worker slot that holds it (0 without a cluster). */
  owner: number;
  /** The dialog's own JSON (src/dialog's DialogSnapshot); opaque to the store. */
  data: string;
  updatedAt: number;
}

export interface CallRepository {
  /**
   * Writes the record and removes the persisted dialog of the same id in one transaction. Idempotent:
   * a record whose id exists is left as it is and false is returned.
   */
  record(record: CallRecord): Promise<boolean>;
  get(id: string): Promise<CallRecord | undefined>;
  /** Newest first (startedAt, then id, descending); cursor pagination. TypeError for a bad cursor. */
  list(query: CallQuery): Promise<CallPage>;
}

/** One write of the call history: an answered call's dialog saved, one forgotten, a call's record. */
export type HistoryWrite =
  | { op: 'dialog'; dialog: PersistedDialog }
  | { op: 'forget'; id: string }
  | { op: 'record'; record: CallRecord };

/**
 * Several history writes in one transaction (a commit per call costs more than the call's SIP work; a
 * batch of a few hundred costs one). All or none: a failure leaves nothing written.
 */
export interface HistoryWriteRepository {
  writeAll(writes: readonly HistoryWrite[]): Promise<void>;
}

export interface DialogRepository {
  /** Inserts or replaces the dialog of this id. */
  save(dialog: PersistedDialog): Promise<void>;
  remove(id: string): Promise<void>;
  /** The dialogs held by worker `owner`. */
  listOwned(owner: number): Promise<PersistedDialog[]>;
}
