/**
 * The mid-registrar's public types (OpenSIPS mid_registrar modes in front of a FreeSWITCH pool).
 * Types only. `BackendPicker` is the small seam to the load balancer (proxy/balancer): until its
 * `Balancer` is wired, anything with a sticky-per-AoR `pick` will do.
 */
import type { SipRequest } from '../../src/sip/index.js';
import type { ServerTransaction } from '../../src/transaction/index.js';

/**
 * - `local`: no backend; the softswitch is the registrar.
 * - `mirror`: every REGISTER is forwarded; the binding is stored when the backend answers 2xx, with its expiry.
 * - `contact-throttle`: forwarded with `outgoingExpires`; the device's refreshes are answered locally.
 * - `aor-throttle`: one Contact per AoR at the backend; the softswitch forks to the devices itself.
 */
export type MidRegistrarMode = 'local' | 'mirror' | 'contact-throttle' | 'aor-throttle';

/** A backend registrar as the picker names it. */
export interface BackendTarget {
  /** SIP URI of the backend, e.g. `sip:10.0.0.5:5060;transport=udp`. */
  uri: string;
  /** Stable id, for failure/success reports and logs. */
  id?: string;
}

/** Chooses the backend of an AoR; the same AoR gets the same backend while it is healthy (sticky). */
export interface BackendPicker {
  pick(aor: string): BackendTarget | undefined;
  markFailure?(backend: BackendTarget): void;
  markSuccess?(backend: BackendTarget): void;
}

export interface MidRegistrarOptions {
  mode: MidRegistrarMode;
  /** The balancer's backend set the REGISTERs go to. */
  backendSet: string;
  /** Expiry sent to the backend in the throttle modes, seconds (OpenSIPS `outgoing_expires`). */
  outgoingExpires: number;
  /** true: digest-authenticate at the softswitch; false: the backend challenges, we relay. */
  localAuth: boolean;
  /** Name of the Contact URI parameter that finds the device again on requests from the backend. */
  contactIdParam?: string;
}

export interface MidRegistrarStats {
  /** REGISTERs forwarded to a backend. */
  forwarded: number;
  /** REGISTERs answered locally without reaching the backend (throttle modes). */
  absorbed: number;
  /** De-REGISTERs the softswitch sent itself when a device's binding expired. */
  expiredAtBackend: number;
  /** Backend failures (timeout, 5xx, no backend available). */
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
  handle(request: SipRequest, tx: ServerTransaction): Promise<void>;
  readonly stats: Readonly<MidRegistrarStats>;
}
