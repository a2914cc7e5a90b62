/**
 * The messages between the cluster supervisor (the primary process) and its workers, over node:cluster's
 * IPC channel. Types only.
 */
import type { BanChange } from '../../security/index.js';
import type { PublishedState } from '../../presence/index.js';
import type { DialogEnd, DialogSnapshot } from '../../src/dialog/index.js';
import type { Flow, ReceivedAddressLike } from './wire.js';

/** A binding as it crosses the IPC channel: the Contact as text, every other field as the Binding has it. */
export interface WireBinding {
  aor: string;
  contact: string;
  contactUri: string;
  expiresAt: number;
  q?: number | undefined;
  callId: string;
  cseq: number;
  flow?: Flow | undefined;
  received: ReceivedAddressLike;
  path?: string[] | undefined;
  instanceId?: string | undefined;
  regId?: number | undefined;
  userAgent?: string | undefined;
  updatedAt: number;
}

/** Worker → primary. */
export type WorkerMessage =
  /** The worker's internal hand-over socket is bound (127.0.0.1:port). */
  | { type: 'cluster:port'; index: number; port: number }
  /** The worker's server is listening. */
  | { type: 'cluster:started'; index: number }
  /** Bindings changed on this worker; the primary relays the message to every other worker. */
  | { type: 'cluster:location'; from: number; aor: string; added: WireBinding[]; removed: string[] }
  /** `softswitch reload` reached this worker (POST /reload); the primary tells every other worker to reload too. */
  | { type: 'cluster:reload'; from: number }
  /**
   * Answer to cluster:announce: every binding this worker holds, in chunks, for the worker `to` that is
   * joining; the primary forwards them and, after the `last` one, tells `to` cluster:synced.
   */
  | { type: 'cluster:snapshot'; to: number; bindings: WireBinding[]; last: boolean }
  /** A ban decided or lifted on this worker; the primary relays it to every other worker and keeps it for joiners. */
  | { type: 'cluster:ban'; from: number; change: BanChange }
  /**
   * Claim nonce-count `nc` of a digest nonce issued by worker `to` (incarnation `incarnation`), which alone
   * keeps its counts; the primary forwards it to the processes of slot `to` (during a rolling restart the
   * new worker and its draining predecessor), the one of that incarnation answers cluster:nonce-answer.
   */
  | { type: 'cluster:nonce'; from: number; fromIncarnation: number; id: number; to: number; incarnation: number; nonce: string; nc: number; expiresAt: number }
  /** The issuer's answer, for the process of slot `to` whose ledger incarnation is `toIncarnation`. */
  | { type: 'cluster:nonce-answer'; to: number; toIncarnation: number; id: number; ok: boolean }
  /**
   * A BYE of a dialog this worker does not hold passed here (it came over a connection of this worker's):
   * the primary relays it to every other worker, and the one that holds the dialog ends it.
   */
  | { type: 'cluster:dialog-end'; from: number; callId: string; fromTag: string | undefined; end: DialogEnd }
  /**
   * A re-INVITE, UPDATE, INFO, REFER or PRACK of a dialog this worker does not hold passed here: the primary
   * relays it to every other worker, and the holder raises that side's CSeq (what a hang-up's BYE must exceed).
   */
  | { type: 'cluster:dialog-cseq'; from: number; callId: string; fromTag: string | undefined; cseq: number }
  /** Chat rows were stored for these users: each worker delivers to the devices it owns (messaging/delivery.ts). */
  | { type: 'cluster:chat'; from: number; users: string[] }
  /** A meeting's participants changed here: each worker's event streams of that meeting look again (conference/meeting-signals.ts). */
  | { type: 'cluster:meeting'; from: number; meeting: string }
  /** A publication or a call changed a user's presence here (presence/presence-state.ts). */
  | { type: 'cluster:presence'; from: number; change: PresenceChange }
  /**
   * A worker that drained for a rolling restart hands the calls still up to the new worker of its slot
   * (`to`), which holds them from then on; the last chunk has `last`.
   */
  | { type: 'cluster:dialogs'; to: number; dialogs: DialogSnapshot[]; last: boolean }
  /**
   * Worker `from` (incarnation `fromGeneration`) needs every other worker's answer to `question` (a `GET
   * /metrics` scrape, the admin API's calls): the primary relays it to every other worker, each answers
   * cluster:answer.
   */
  | { type: 'cluster:ask'; from: number; fromGeneration: number; id: number; question: PeerQuestion }
  /** A worker's answer to the question `id` of worker `to` (that generation): plain JSON, as PeerQuestion says. */
  | { type: 'cluster:answer'; from: number; to: number; toGeneration: number; id: number; answer: unknown };

/**
 * What one worker asks all the others, and what each answers: `metrics`, its prom-client snapshot
 * (getMetricsAsJSON); `calls`, its active dialogs (DialogSnapshot[]); `hangup`, the HangupOutcome of hanging up
 * dialog `id` if it holds it (`unknown` if not).
 */
export type PeerQuestion = { topic: 'metrics' } | { topic: 'calls' } | { topic: 'hangup'; id: string };

/** A worker of a slot that a rolling restart replaces: it still holds its transactions and connections. */
export interface DrainingPeer {
  port: number;
  generation: number;
}

/** Primary → worker. */
export type PrimaryMessage =
  /**
   * The hand-over port and generation of every worker, by index (null while a worker is down), and the
   * draining predecessor of a slot during a rolling restart (null elsewhere): what belongs to the slot
   * goes to the predecessor first, which keeps its own and passes the rest to the new worker.
   */
  | { type: 'cluster:peers'; ports: Array<number | null>; generations: number[]; draining: Array<DrainingPeer | null> }
  /** A worker (that generation of the slot) ended: bindings that only its connections reached are gone. */
  | { type: 'cluster:down'; index: number; generation: number }
  /** Send every binding you hold to worker `to` (cluster:snapshot): it is joining (a restart). */
  | { type: 'cluster:announce'; to: number }
  /** Every binding the running workers hold has been forwarded: start listening. */
  | { type: 'cluster:synced' }
  /**
   * Rolling restart: your successor (hand-over port `successor`) is listening; drain, handing it every
   * message that is none of your live transactions', then exit.
   */
  | { type: 'cluster:drain'; successor: number }
  | Extract<WorkerMessage, { type: 'cluster:location' | 'cluster:reload' | 'cluster:snapshot' | 'cluster:ban' | 'cluster:nonce' | 'cluster:nonce-answer' | 'cluster:dialog-end' | 'cluster:dialog-cseq' | 'cluster:dialogs' | 'cluster:chat' | 'cluster:meeting' | 'cluster:presence' | 'cluster:ask' | 'cluster:answer' }>;

/** The environment variable that tells a forked process its worker index. */
export const WORKER_INDEX_ENV = 'SOFTSWITCH_CLUSTER_WORKER';
/**
 * How many times its slot has been forked before (0 for the first worker of a slot): a worker's flow ids
 * carry it (`w1g2.…`), so the old and the new worker of a slot, both up during a rolling restart, are told apart.
 */
export const WORKER_GENERATION_ENV = 'SOFTSWITCH_CLUSTER_GENERATION';
/**
 * The cluster's one secret (hex), drawn by the primary and given to every worker: Record-Route flow tokens
 * and digest nonces signed by one worker verify on the others. Never logged; lives only in the processes'
 * environment.
 */
export const CLUSTER_SECRET_ENV = 'SOFTSWITCH_CLUSTER_SECRET';

/** What one worker tells the others of presence: publications, and its calls' dialog states. */
export type PresenceChange =
  | { kind: 'publish'; user: string; etag: string; replaces?: string | undefined; state: PublishedState; expiresAt: number }
  | { kind: 'unpublish'; user: string; etag: string }
  | { kind: 'dialog'; dialog: DialogSnapshot };
