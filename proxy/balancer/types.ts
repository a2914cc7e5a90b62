/**
 * The load balancer's and the PSTN routing policy's public types: backend sets (FreeSWITCH pools,
 * trunks), dialplan routes, DIDs and trusted sources. Types only; the data lives in the SQL store
 * (sql/0002_routing.ts) and is cached in memory by `Balancer` and `RoutingData`, reloaded without a
 * restart.
 */

/** How a set chooses the backend of a new request. */
export type BalanceAlgorithm = 'round-robin' | 'weighted' | 'least-calls';

/** Health as the balancer sees it: `unknown` until the first probe or call says otherwise. */
export type BackendHealth = 'up' | 'down' | 'unknown';

/** One backend as stored. */
export interface BackendRecord {
  readonly id: number;
  /** The set it belongs to, e.g. `freeswitch`, `trunk-eu`. */
  readonly set: string;
  /** SIP URI of the backend: `sip:10.0.0.5:5060;transport=udp`. */
  readonly uri: string;
  /** Weighted round-robin weight, 1–1000 (default 1). */
  readonly weight: number;
  /** Disabled backends get no new requests; calls in progress continue. */
  readonly enabled: boolean;
  readonly createdAt: number;
}

/** A backend set's stored settings. */
export interface BackendSetRecord {
  readonly name: string;
  readonly algorithm: BalanceAlgorithm;
}

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
}

/** The balancer's choice for one request: where it goes first, and where next on failure. */
export interface BackendChoice {
  readonly id: number;
  readonly set: string;
  readonly uri: string;
}

/**
 * A dialplan route (Kamailio dialplan module style): a called number that fully matches `pattern`
 * (a JavaScript regular expression, anchored) is rewritten with `replace` (`$1`… groups; the number as
 * dialled when empty) and sent to a backend of `set`. Lower `priority` is tried first.
 */
export interface RouteRecord {
  readonly id: number;
  readonly pattern: string;
  readonly replace: string;
  readonly set: string;
  readonly priority: number;
  readonly description: string;
}

/** A DID: an E.164 number (`+4930123456`) that rings a user of ours. */
export interface DidRecord {
  readonly number: string;
  readonly username: string;
  readonly domain: string;
}

/** A trusted source: an address or CIDR block whose requests need no digest auth (FreeSWITCH, trunks). */
export interface TrustedRecord {
  readonly id: number;
  /** `10.0.0.5`, `10.0.0.0/24`, `2001:db8::/32`. */
  readonly cidr: string;
  readonly description: string;
}

/** The store's side of routing data; SQL today, any other store implements the same. */
export interface RoutingRepository {
  listSets(): Promise<BackendSetRecord[]>;
  /** Creates or changes a set's algorithm. */
  putSet(set: BackendSetRecord): Promise<void>;
  listBackends(): Promise<BackendRecord[]>;
  /** Adds a backend (and its set, round-robin, when new). STORE_ERR_DUPLICATE for the same set+uri. */
  addBackend(b: { set: string; uri: string; weight?: number; enabled?: boolean }): Promise<BackendRecord>;
  /** STORE_ERR_NOT_FOUND when unknown. */
  removeBackend(id: number): Promise<void>;
  setBackendEnabled(id: number, enabled: boolean): Promise<void>;
  listRoutes(): Promise<RouteRecord[]>;
  addRoute(r: Omit<RouteRecord, 'id'>): Promise<RouteRecord>;
  removeRoute(id: number): Promise<void>;
  listDids(): Promise<DidRecord[]>;
  addDid(d: DidRecord): Promise<void>;
  removeDid(number: string): Promise<void>;
  listTrusted(): Promise<TrustedRecord[]>;
  addTrusted(t: Omit<TrustedRecord, 'id'>): Promise<TrustedRecord>;
  removeTrusted(id: number): Promise<void>;
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
  /** Routes whose pattern fully matches `number`, by priority then id. */
  matchRoutes(number: string): RouteMatch[];
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
