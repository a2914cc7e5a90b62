/**
 * The location service (RFC 3261 §10.2, "a list of bindings of address-of-record keys to zero or more
 * contact addresses"): bindings in memory, indexed by AoR, by contact URI and by flow, with optional
 * write-behind persistence.
 */
import { type Logger, categoryLogger } from '../../src/log/index.js';
import {
  NameAddr, type PushProvider, SipParseError, SipUri, type Uri, parseNameAddrs, parseUri, quote, uriEquals,
} from '../../src/sip/index.js';
import type { TransportProtocol } from '../../src/transport/types.js';
import type {
  Binding, BindingChanges, BindingListener, LocationPersistence, LocationRow, LocationServiceOptions, ReceivedAddress,
} from '../types.js';
import { pushParamsOf } from './push-binding.js';

const DEFAULT_PURGE_INTERVAL_MS = 10_000;

/**
 * Where a location service reports the changes made to it (cluster workers replicate them to the other
 * workers, server/cluster): per AoR, the bindings added or replaced, and the contact URIs that went. Changes
 * applied through `applyRemote` and the purge of expired bindings (every replica purges on its own clock)
 * are not reported.
 */
export interface LocationReplication {
  changed(aor: string, added: readonly Binding[], removedContacts: readonly string[]): void;
}
const PROTOCOLS: ReadonlySet<string> = new Set<TransportProtocol>(['udp', 'tcp', 'tls', 'ws', 'wss']);

export class LocationService {
  private readonly persistence: LocationPersistence | undefined;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly purgeIntervalMs: number;
  private readonly byAor = new Map<string, Binding[]>();
  /** Candidates by a coarse key of the contact URI (see contactKey); uriEquals decides. */
  private readonly byContact = new Map<string, Set<Binding>>();
  private readonly byFlow = new Map<string, Set<Binding>>();
  private total = 0;
  private timer: NodeJS.Timeout | undefined;
  private loaded = false;
  private writes: Promise<void> = Promise.resolve();
  /** Writes not yet handed to the persistence, per AoR: the newest row (or null, a removal) per contact. */
  private pending = new Map<string, PendingAor>();
  private drainQueued = false;
  private replication: LocationReplication | undefined;
  private readonly pushProviders: ReadonlySet<PushProvider>;
  private readonly listeners = new Set<BindingListener>();
  private readonly changeListeners = new Set<(aor: string) => void>();

  constructor(options: LocationServiceOptions) {
    const interval = options.purgeIntervalMs ?? DEFAULT_PURGE_INTERVAL_MS;
    if (!Number.isFinite(interval) || interval <= 0) throw new TypeError(`purgeIntervalMs must be positive, got ${interval}`);
    this.persistence = options.persistence;
    this.log = categoryLogger(options.logger, 'registrar.location');
    this.clock = options.clock ?? Date.now;
    this.purgeIntervalMs = interval;
    this.pushProviders = new Set(options.pushProviders ?? []);
  }

  /**
   * Loads the persisted bindings that are still reachable (unexpired; over a WebSocket only with push
   * data, asleep: that connection died with the previous process) and starts purging expired bindings.
   */
  async start(): Promise<void> {
    if (this.persistence !== undefined && !this.loaded) {
      const rows = await this.persistence.listAll();
      this.loaded = true;
      const now = this.clock();
      let loaded = 0;
      for (const row of rows) {
        if (Number(row.expiresAt) <= now) continue;
        const binding = bindingFromRow(row, now, this.pushProviders);
        if (binding === undefined) {
          this.log.warn({ aor: row.aor, contact: row.contact, received: row.received }, 'persisted binding unreadable; skipped');
          continue;
        }
        if ((binding.received.protocol === 'ws' || binding.received.protocol === 'wss') && binding.push === undefined) continue;
        const list = this.byAor.get(binding.aor);
        // A REGISTER handled before start() is newer than the row.
        if (list?.some((b) => b.contactUri === binding.contactUri)) continue;
        if (list === undefined) this.byAor.set(binding.aor, [binding]);
        else list.push(binding);
        this.index(binding);
        loaded++;
      }
      this.log.info({ loaded, rows: rows.length }, 'bindings loaded');
    }
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.purgeExpired(), this.purgeIntervalMs);
      this.timer.unref();
    }
  }

  /** Stops the purge timer and waits for pending persistence writes. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Resolves once every persistence write queued so far has finished (or failed and been logged). */
  flush(): Promise<void> {
    return this.writes;
  }

  /** Bindings held, expired ones not yet purged included. */
  get count(): number {
    return this.total;
  }

  /**
   * Unexpired bindings by the transport they registered over (udp, tcp, tls, ws, wss): walks every
   * binding, for a scrape, not per request.
   */
  countByTransport(): Record<string, number> {
    const now = this.clock();
    const counts: Record<string, number> = {};
    for (const list of this.byAor.values()) {
      for (const b of list) if (b.expiresAt > now) counts[b.received.protocol] = (counts[b.received.protocol] ?? 0) + 1;
    }
    return counts;
  }

  /** Unexpired bindings of an AoR, highest q first (no q counts as 1.0), then most recently updated. */
  lookup(aor: string): Binding[] {
    const list = this.byAor.get(aor);
    if (list === undefined) return [];
    const now = this.clock();
    return list.filter((b) => b.expiresAt > now).sort(byPreference);
  }

  /** Every unexpired binding, by AoR (the admin API's registrations list). */
  list(): Binding[] {
    const now = this.clock();
    return [...this.byAor.values()].flatMap((list) => list.filter((b) => b.expiresAt > now));
  }

  /**
   * The unexpired binding whose contact URI equals `uri` (RFC 3261 §19.1.4), the most recent if several
   * AoRs registered it: a proxy uses it for in-dialog requests whose Request-URI is a registered contact.
   */
  lookupByContact(uri: string | Uri): Binding | undefined {
    let parsed: Uri;
    try {
      parsed = typeof uri === 'string' ? parseUri(uri) : uri;
    } catch (err) {
      if (err instanceof SipParseError) return undefined;
      throw err;
    }
    const candidates = this.byContact.get(contactKey(parsed));
    if (candidates === undefined) return undefined;
    const now = this.clock();
    let best: Binding | undefined;
    for (const b of candidates) {
      if (b.expiresAt <= now || !uriEquals(b.contact.uri, parsed)) continue;
      if (best === undefined || b.updatedAt > best.updatedAt) best = b;
    }
    return best;
  }

  /** Reports every later local change to `replication` (undefined: to nobody, the default). */
  setReplication(replication: LocationReplication | undefined): void {
    this.replication = replication;
  }

  /**
   * A change another replica made (see LocationReplication): the contacts named go, the bindings given
   * come in (replacing those with the same contact URI; their push data read from their contact, as the
   * replica sends the contact text only). Not persisted (the replica that made the change wrote it) and
   * not reported back; the added bindings with a flow are announced to the onBinding listeners.
   */
  applyRemote(aor: string, added: readonly Binding[], removedContacts: readonly string[]): void {
    for (const b of added) if (b.aor !== aor) throw new TypeError(`binding of ${b.aor} added to ${aor}`);
    const gone = new Set(removedContacts);
    const remove = new Set((this.byAor.get(aor) ?? []).filter((b) => gone.has(b.contactUri)));
    const bindings = added.map((b) => ({ ...b, push: pushParamsOf(b.contact.uri, this.pushProviders) }));
    this.apply(aor, remove, bindings, 'remote');
    this.announce(bindings);
  }

  /**
   * The connections of these contacts are gone with the worker that held them (server/cluster): their
   * push bindings stay, asleep; the others go. Like applyRemote, neither persisted nor reported: every
   * replica does this itself.
   */
  connectionsLost(aor: string, contacts: ReadonlySet<string>): void {
    const lost = (this.byAor.get(aor) ?? []).filter((b) => contacts.has(b.contactUri));
    this.flowsGone(aor, lost, 'remote');
  }

  /**
   * Calls `listener` with the AoR after every change to its bindings, whatever made it (a REGISTER, a
   * closed connection, the purge of expired ones, another replica): presence follows registration state.
   * Returns the unsubscribe.
   */
  onChange(listener: (aor: string) => void): () => void {
    this.changeListeners.add(listener);
    return () => {
      this.changeListeners.delete(listener);
    };
  }

  /** Calls `listener` with each binding added with a flow: by `announce`, and by `applyRemote`. Returns the unsubscribe. */
  onBinding(listener: BindingListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Tells the onBinding listeners of these bindings, those with a live flow (a binding put to sleep has
   * none). The registrar calls it once its 200 is sent, so that a request forked to a woken device does
   * not overtake the answer to its REGISTER; a listener's exception is logged, the others still run.
   */
  announce(bindings: readonly Binding[]): void {
    if (this.listeners.size === 0) return;
    for (const b of bindings) {
      if (b.flow === undefined) continue;
      for (const listener of this.listeners) {
        try {
          listener(b);
        } catch (err) {
          this.log.warn({ aor: b.aor, err: err instanceof Error ? err.message : String(err) }, 'binding listener failed');
        }
      }
    }
  }

  /**
   * Applies one change to an AoR atomically: `remove` (bindings as returned by lookup) go, `add` come
   * in, expired bindings of the AoR go too, and an added binding replaces any other with the same
   * contact URI text. Returns the AoR's bindings afterwards, as lookup would.
   */
  update(aor: string, changes: BindingChanges): Binding[] {
    for (const b of changes.add ?? []) if (b.aor !== aor) throw new TypeError(`binding of ${b.aor} added to ${aor}`);
    this.apply(aor, new Set(changes.remove ?? []), changes.add ?? []);
    return this.lookup(aor);
  }

  /**
   * A connection closed: drops the bindings that can only be reached over it, those registered over
   * WS/WSS (RFC 7118: nobody can open a WebSocket towards a browser) and RFC 5626 bindings (instance and
   * reg-id) over any connection, whose UA re-registers over a new flow. A push binding on it stays until
   * it expires, without a flow (RFC 8599: the device is asleep, a push wakes it). Returns how many went.
   */
  removeFlow(flowId: string): number {
    const set = this.byFlow.get(flowId);
    if (set === undefined) return 0;
    const perAor = new Map<string, Binding[]>();
    for (const b of set) {
      if (b.push === undefined && !isFlowBound(b)) continue;
      const list = perAor.get(b.aor);
      if (list === undefined) perAor.set(b.aor, [b]);
      else list.push(b);
    }
    let removed = 0;
    for (const [aor, bindings] of perAor) removed += this.flowsGone(aor, bindings, 'local');
    if (removed > 0) this.log.debug({ flow: flowId, removed }, 'bindings of a closed flow removed');
    return removed;
  }

  /** Drops every expired binding; returns how many. Runs on a timer once started. */
  purgeExpired(): number {
    const now = this.clock();
    const before = this.total;
    for (const [aor, list] of this.byAor) {
      if (list.some((b) => b.expiresAt <= now)) this.apply(aor, new Set(), [], 'purge');
    }
    const purged = before - this.total;
    if (purged > 0) this.log.debug({ purged }, 'expired bindings purged');
    return purged;
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * Bindings of an AoR whose connection is gone: a push binding is replaced by its copy without a flow
   * (persisted so, when local, with no flow id), any other is removed. Returns how many were removed.
   */
  private flowsGone(aor: string, bindings: readonly Binding[], origin: 'local' | 'remote'): number {
    const remove = new Set<Binding>();
    const asleep: Binding[] = [];
    for (const b of bindings) {
      if (b.push === undefined) remove.add(b);
      else asleep.push({ ...b, flow: undefined });
    }
    this.apply(aor, remove, asleep, origin);
    return remove.size;
  }

  /** `origin`: a change made here (persisted, reported), by the purge (persisted), or by another replica (neither). */
  private apply(aor: string, remove: ReadonlySet<Binding>, add: readonly Binding[], origin: 'local' | 'purge' | 'remote' = 'local'): void {
    const now = this.clock();
    const list = this.byAor.get(aor) ?? [];
    const addedUris = new Set(add.map((b) => b.contactUri));
    const kept: Binding[] = [];
    const dropped: Binding[] = [];
    for (const b of list) {
      if (remove.has(b) || b.expiresAt <= now || addedUris.has(b.contactUri)) dropped.push(b);
      else kept.push(b);
    }
    if (dropped.length === 0 && add.length === 0) return;
    for (const b of dropped) this.unindex(b);
    for (const b of add) {
      kept.push(b);
      this.index(b);
    }
    if (kept.length === 0) this.byAor.delete(aor);
    else this.byAor.set(aor, kept);
    for (const listener of this.changeListeners) {
      try {
        listener(aor);
      } catch (err) {
        this.log.warn({ aor, err: err instanceof Error ? err.message : String(err) }, 'location change listener failed');
      }
    }

    if (origin === 'remote') return;
    if (origin === 'local' && this.replication !== undefined) {
      const removedContacts: string[] = [];
      for (const b of dropped) if (!addedUris.has(b.contactUri)) removedContacts.push(b.contactUri);
      try {
        this.replication.changed(aor, add, removedContacts);
      } catch (err) {
        this.log.warn({ aor, err: err instanceof Error ? err.message : String(err) }, 'location replication failed');
      }
    }
    if (this.persistence === undefined) return;
    if (kept.length === 0) {
      this.pending.set(aor, { clear: true, contacts: new Map() });
    } else {
      const entry = this.pendingFor(aor);
      for (const b of dropped) {
        if (!addedUris.has(b.contactUri)) entry.contacts.set(b.contactUri, null);
      }
      for (const b of add) entry.contacts.set(b.contactUri, rowOf(b));
    }
    this.queueDrain();
  }

  private pendingFor(aor: string): PendingAor {
    let entry = this.pending.get(aor);
    if (entry === undefined) {
      entry = { clear: false, contacts: new Map() };
      this.pending.set(aor, entry);
    }
    return entry;
  }

  private index(b: Binding): void {
    this.total++;
    addTo(this.byContact, contactKey(b.contact.uri), b);
    if (b.flow !== undefined) addTo(this.byFlow, b.flow.id, b);
  }

  private unindex(b: Binding): void {
    this.total--;
    removeFrom(this.byContact, contactKey(b.contact.uri), b);
    if (b.flow !== undefined) removeFrom(this.byFlow, b.flow.id, b);
  }

  /**
   * Write-behind with coalescing: changes wait in `pending` while the previous batch is being written,
   * and the next batch carries only the newest state of each contact, its upserts in one call when the
   * persistence has `upsertMany` (one multi-row statement instead of a statement per REGISTER). Batches
   * run one after another, so a removal never overtakes the upsert before it.
   */
  private queueDrain(): void {
    const p = this.persistence;
    if (p === undefined || this.drainQueued) return;
    this.drainQueued = true;
    this.writes = this.writes.then(() => this.drain(p));
  }

  private async drain(p: LocationPersistence): Promise<void> {
    this.drainQueued = false;
    const batch = this.pending;
    this.pending = new Map();
    const upserts: LocationRow[] = [];
    for (const [aor, entry] of batch) {
      if (entry.clear) await this.attempt('removeAor', () => p.removeAor(aor));
      for (const [contact, row] of entry.contacts) {
        if (row !== null) upserts.push(row);
        else if (!entry.clear) await this.attempt('remove', () => p.remove(aor, contact));
      }
    }
    if (upserts.length === 0) return;
    if (p.upsertMany !== undefined) await this.attempt('upsert', () => p.upsertMany!(upserts));
    else for (const row of upserts) await this.attempt('upsert', () => p.upsert(row));
  }

  private async attempt(what: string, op: () => Promise<unknown>): Promise<void> {
    try {
      await op();
    } catch (err) {
      this.log.warn({ op: what, err: err instanceof Error ? err.message : String(err) }, 'location persistence failed');
    }
  }
}

interface PendingAor {
  /** Every binding of the AoR is to be removed before the contacts below are written. */
  clear: boolean;
  contacts: Map<string, LocationRow | null>;
}

function byPreference(a: Binding, b: Binding): number {
  return (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt;
}

function isFlowBound(b: Binding): boolean {
  const protocol = b.flow?.protocol;
  if (protocol === 'ws' || protocol === 'wss') return true;
  return protocol !== undefined && protocol !== 'udp' && b.instanceId !== undefined && b.regId !== undefined;
}

/**
 * A key that two URIs equal under §19.1.4 always share: scheme, unescaped user, lower-cased host (all
 * IPv6 references in one bucket, as they have several spellings) and port. Other schemes share a bucket
 * per scheme.
 */
function contactKey(uri: Uri): string {
  if (!(uri instanceof SipUri)) return uri.scheme + ':';
  const host = uri.host.charCodeAt(0) === 0x5b ? '[v6]' : uri.hostname;
  return `${uri.scheme}:${uri.userUnescaped ?? ''}@${host}:${uri.port ?? ''}`;
}

function addTo(map: Map<string, Set<Binding>>, key: string, b: Binding): void {
  const set = map.get(key);
  if (set === undefined) map.set(key, new Set([b]));
  else set.add(b);
}

function removeFrom(map: Map<string, Set<Binding>>, key: string, b: Binding): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(b);
  if (set.size === 0) map.delete(key);
}

// ---- rows ------------------------------------------------------------------------------------------

function formatReceived(r: ReceivedAddress): string {
  return `${r.protocol}:${r.address.includes(':') ? `[${r.address}]` : r.address}:${r.port}`;
}

function parseReceived(text: string): ReceivedAddress | undefined {
  const m = /^([a-z]+):(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  if (m === null || !PROTOCOLS.has(m[1]!)) return undefined;
  const address = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { protocol: m[1] as TransportProtocol, address, port: Number(m[3]) };
}

function rowOf(b: Binding): LocationRow {
  return {
    aor: b.aor,
    contact: b.contactUri,
    instanceId: b.instanceId,
    regId: b.regId,
    callId: b.callId,
    cseq: b.cseq,
    expiresAt: b.expiresAt,
    q: b.q,
    path: b.path === undefined || b.path.length === 0 ? undefined : b.path.join(', '),
    received: formatReceived(b.received),
    flowId: b.flow?.id,
    userAgent: b.userAgent,
    updatedAt: b.updatedAt,
  };
}

/**
 * A binding rebuilt from its row. The table keeps the contact URI, q, instance and reg-id but not other
 * Contact header parameters, so those do not survive a restart (the `pn-*` push parameters do: they are
 * URI parameters). No flow: its connection is gone.
 */
function bindingFromRow(row: LocationRow, now: number, pushProviders: ReadonlySet<PushProvider>): Binding | undefined {
  const received = parseReceived(row.received);
  if (received === undefined) return undefined;
  let uri: Uri;
  let path: string[] | undefined;
  try {
    uri = parseUri(row.contact);
    // SQL NULL may come back as null rather than undefined.
    path = !row.path ? undefined : parseNameAddrs(row.path, 'path', true).map(String);
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
  // Numbers are converted in case a driver hands BIGINT columns back as strings.
  const params = new Map<string, string | null>();
  const q = row.q === undefined || row.q === null ? undefined : Number(row.q);
  const instanceId = row.instanceId ?? undefined;
  const regId = row.regId === undefined || row.regId === null ? undefined : Number(row.regId);
  if (q !== undefined) params.set('q', String(q));
  if (instanceId !== undefined) params.set('+sip.instance', quote(instanceId));
  if (regId !== undefined) params.set('reg-id', String(regId));
  return {
    aor: row.aor,
    contact: new NameAddr(uri, params),
    contactUri: row.contact,
    expiresAt: Number(row.expiresAt),
    q,
    callId: row.callId,
    cseq: Number(row.cseq),
    received,
    path,
    instanceId,
    regId,
    userAgent: row.userAgent ?? undefined,
    updatedAt: row.updatedAt === undefined || row.updatedAt === null ? now : Number(row.updatedAt),
    push: pushParamsOf(uri, pushProviders),
  };
}
