/**
 * The routing data as the store keeps it: backend sets, backends, dialplan routes, DIDs and trusted
 * sources, and the repository over them. Types only. They live with the store, the lower layer, so that
 * the store never imports from a service; balancer/types.ts re-exports them for the balancer's users.
 */

/** How a set chooses the backend of a new request. */
export type BalanceAlgorithm = 'round-robin' | 'weighted' | 'least-calls';

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
