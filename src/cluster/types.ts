/**
 * The messages between the cluster supervisor (the primary process) and its workers, over node:cluster's
 * IPC channel. Types only.
 */
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
  | { type: 'cluster:reload'; from: number };

/** Primary → worker. */
export type PrimaryMessage =
  /** The hand-over port of every worker, by index; null while a worker is down. */
  | { type: 'cluster:peers'; ports: Array<number | null> }
  /** A worker ended: bindings that only its connections reached are gone. */
  | { type: 'cluster:down'; index: number }
  | Extract<WorkerMessage, { type: 'cluster:location' | 'cluster:reload' }>;

/** The environment variable that tells a forked process its worker index. */
export const WORKER_INDEX_ENV = 'SOFTSWITCH_CLUSTER_WORKER';
/**
 * The cluster's one secret (hex), drawn by the primary and given to every worker: Record-Route flow tokens
 * and digest nonces signed by one worker verify on the others. Never logged; lives only in the processes'
 * environment.
 */
export const CLUSTER_SECRET_ENV = 'SOFTSWITCH_CLUSTER_SECRET';
