/**
 * The load balancer's and the PSTN routing policy's public types: backend sets (FreeSWITCH pools,
 * trunks), dialplan routes, DIDs and trusted sources. Types only; the data lives in the SQL store
 * (sql/0002_routing.ts) and is cached in memory by `Balancer` and `RoutingData`, reloaded without a
 * restart.
 */

import type { BackendRecord, BackendSetRecord, DidRecord, RouteRecord, TrustedRecord } from '../platform/store/routing-types.js';

export type * from '../platform/store/routing-types.js';

/** Health as the balancer sees it: `unknown` until the first probe or call says otherwise. */
export type BackendHealth = 'up' | 'down' | 'unknown';

/** One backend as the balancer knows it right now (CLI `backend list`, `/health`). */
export interface BackendState {
  readonly id: number;
  readonly set: string;
  readonly uri: string;
  readonly weight: number;
  readonly enabled: boolean;
  readonly health: BackendHealth;
  /** Calls (INVITE dialogs) in progress through it. */
  readonly activeCalls: number;
  /** Consecutive failed probes or requests. */
  readonly failures: number;
  /** ms since the epoch of the last probe answer, or undefined. */
  readonly lastSeen: number | undefined;
  /** Round trip of the last answered OPTIONS probe, ms (undefined before the first answer). */
  readonly probeMs: number | undefined;
}

/** The balancer's choice for one request: where it goes first, and where next on failure. */
export interface BackendChoice {
  readonly id: number;
  readonly set: string;
  readonly uri: string;
}

/** What the routing policy and the mid-registrar ask of the balancer. */
export interface BalancerApi {
  /**
   * Healthy, enabled backends of `set` in the order to try them: the algorithm's pick first, then the
   * others (serial failover). With `stickyKey` (an AoR) the same key gets the same first backend while
   * that backend stays healthy. Backends of unknown health count as healthy; when none is healthy the
   * `down` ones are returned last rather than nothing (a probe can be wrong; a call attempt is cheap).
   */
  candidates(set: string, stickyKey?: string): BackendChoice[];
  /** A call (INVITE) was sent to / ended at a backend: least-calls accounting. */
  callStarted(backend: BackendChoice): void;
  callEnded(backend: BackendChoice): void;
  /** Passive health: a timeout, 408 or 503 from the backend; or any answer from it. */
  markFailure(backend: BackendChoice, reason: string): void;
  markSuccess(backend: BackendChoice): void;
  states(): BackendState[];
}

/** A dialplan match: the backend set and the number as it goes out (E.164 after rewriting). */
export interface RouteMatch {
  readonly route: RouteRecord;
  readonly set: string;
  /** The called number after `replace`. */
  readonly number: string;
}

/** The routing policy's view of dialplan, DIDs and trusted sources (in-memory, reloaded from the store). */
export interface RoutingDataApi {
  /** The first route (by priority, then id) whose pattern fully matches `number`. */
  matchRoute(number: string): RouteMatch | undefined;
  /** The user a DID rings; the number is compared as given and with/without a leading `+`. */
  did(number: string): DidRecord | undefined;
  /**
   * True for an address inside a trusted CIDR, or the IP address of any backend (a FreeSWITCH of the
   * pool may always send calls to its users).
   */
  isTrusted(address: string): boolean;
}

/** Probing and reload settings (config `balancer.*`). */
export interface BalancerOptions {
  /** OPTIONS probe interval per backend, ms (default 10 000). */
  probeIntervalMs: number;
  /** Consecutive failures (probes or passive) that mark a backend down (default 3). */
  failureThreshold: number;
  /** Consecutive probe answers that bring a down backend back up (default 2). */
  recoveryThreshold: number;
  /** How long a probe waits for an answer, ms (default 2000; below Timer F so the probe gives up first). */
  probeTimeoutMs: number;
  /** Re-read backends, routes, DIDs and trusted sources from the store this often, ms (default 10 000; 0: only on reload()). */
  reloadIntervalMs: number;
}

/** Everything one reload reads from the repository, at once. */
export interface RoutingSnapshot {
  readonly sets: readonly BackendSetRecord[];
  readonly backends: readonly BackendRecord[];
  readonly routes: readonly RouteRecord[];
  readonly dids: readonly DidRecord[];
  readonly trusted: readonly TrustedRecord[];
}

/** What a reload loaded (the answer of `POST /reload`). */
export interface ReloadSummary {
  /** ms since the epoch. */
  readonly reloadedAt: number;
  readonly sets: number;
  readonly backends: number;
  /** Of `backends`, the enabled ones. */
  readonly enabled: number;
  readonly routes: number;
  readonly dids: number;
  readonly trusted: number;
}
