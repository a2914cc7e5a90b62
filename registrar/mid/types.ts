/**
 * The mid-registrar's public types (OpenSIPS mid_registrar modes in front of a FreeSWITCH pool).
 * Types only. `BackendPicker` is the small seam to the load balancer (balancer/): anything that
 * returns the backends of an AoR in the order to try them will do, e.g.
 * `{ candidates: (aor) => balancer.candidates(set, aor), markFailure: …, markSuccess: … }` or
 * `pickerFromBalancer(balancer, set)`.
 */
import type { SipRequest, Uri } from '../../src/sip/index.js';
import type { ServerTransaction } from '../../src/transaction/index.js';
import type { Flow } from '../../src/transport/types.js';
import type { Binding, OkHeaderSource } from '../types.js';

/**
 * - `local`: no backend; the softswitch is the registrar (the mid-registrar is not used then).
 * - `mirror`: every REGISTER is forwarded; the binding is stored when the backend answers 2xx, with its expiry.
 * - `contact-throttle`: forwarded with `outgoingExpires`; the device's refreshes are answered locally.
 * - `aor-throttle`: one Contact per AoR at the backend; the softswitch forks to the devices itself.
 */
export type MidRegistrarMode = 'local' | 'mirror' | 'contact-throttle' | 'aor-throttle';

/** A backend registrar as the picker names it (a balancer `BackendChoice` is one). */
export interface BackendTarget {
  /** SIP URI of the backend, e.g. `sip:10.0.0.5:5060;transport=udp`. */
  readonly uri: string;
  /** Stable id, for logs. */
  readonly id?: string | number;
}

/**
 * Chooses the backends of an AoR, in the order to try them: the sticky one first, then the others
 * (serial failover). The mid-registrar hands `markFailure` / `markSuccess` the very objects
 * `candidates` returned. (Method syntax on purpose: a picker whose methods take the balancer's
 * `BackendChoice` fits.)
 */
export interface BackendPicker {
  candidates(aor: string): readonly BackendTarget[];
  /** A timeout, a transport error, 408 or 503 from the backend. */
  markFailure?(backend: BackendTarget, reason: string): void;
  /** Any other answer from the backend. */
  markSuccess?(backend: BackendTarget): void;
}

export interface MidRegistrarOptions {
  /** Any mode but `local`. */
  mode: MidRegistrarMode;
  /** The balancer's backend set the REGISTERs go to (informational here: the picker already knows it). */
  backendSet?: string;
  /** Expiry sent to the backend in the throttle modes, seconds (OpenSIPS `outgoing_expires`). */
  outgoingExpires: number;
  /** true: digest-authenticate at the softswitch; false: the backend challenges, we relay. */
  localAuth: boolean;
  /** Name of the Contact URI parameter that finds the device again on requests from the backend; default 'ctid'. */
  contactIdParam?: string;
  /** How long to wait for a backend's final answer before trying the next one, ms; default 4000 (below the device's Timer F). */
  backendTimeoutMs?: number;
  /** Retry-After of the 503 sent when no backend answers, seconds; default 30. */
  retryAfter?: number;
  /** Expiry of a REGISTER that names none, seconds; default 600. */
  defaultExpires?: number;
  /** More header fields for a 200 that keeps bindings, as the local registrar's (registrar `OkHeaderSource`). */
  okHeaders?: OkHeaderSource | undefined;
}

export interface MidRegistrarStats {
  /** REGISTERs forwarded to a backend (the softswitch's own de-REGISTERs not included). */
  forwarded: number;
  /** REGISTERs answered locally without reaching the backend (throttle modes). */
  absorbed: number;
  /** De-REGISTERs the softswitch sent itself when a device's binding expired (or its connection closed). */
  expiredAtBackend: number;
  /** Backend failures (timeout, transport error, 408/503, no backend available), one per attempt. */
  backendFailures: number;
}

/**
 * Rules that keep OpenSIPS's known mid_registrar mistakes out:
 * a REGISTER carrying credentials is always forwarded (#1156), a REGISTER after an un-REGISTER is
 * forwarded (#1804), and a second device of the same AoR is authenticated, not waved through (#3193).
 */
export interface MidRegistrarApi {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Answers a device's REGISTER (forwarded or absorbed). Rejects (TypeError) only for another method. */
  handle(request: SipRequest, tx: ServerTransaction): Promise<void>;
  /**
   * For a request a backend sends to a Contact we registered there: the device bindings it goes to
   * (one in mirror / contact-throttle, every device of the AoR in aor-throttle; empty when they are
   * gone), or undefined when the Request-URI is not one of ours.
   */
  resolveIncoming(ruri: Uri): Binding[] | undefined;
  /** A connection closed, after the Registrar dropped its bindings: their devices leave here too. */
  onFlowClosed(flow: Pick<Flow, 'id'>): number;
  readonly stats: Readonly<MidRegistrarStats>;
}
