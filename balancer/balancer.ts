/**
 * The load balancer (OpenSIPS load_balancer / Kamailio dispatcher): backend sets read from the store,
 * a choice per request by round-robin, smooth weighted round-robin or least calls, sticky per key (an
 * AoR), serial failover order, passive health from real requests and active health from OPTIONS probes
 * (RFC 3261 §11). It owns the RoutingData of the same reload, so one `reload()` refreshes both.
 *
 * Reload keeps what it knows of every backend that still exists (health, calls in progress, failure
 * counts, sticky keys): a reload drops no call, and a removed or disabled backend simply gets no new
 * requests.
 */
import { type Logger, categoryLogger } from '../src/log/index.js';
import { type SipResponse, SipRequest, type Uri, headerKey, makeField, newCallId, newTag, parseSipUri, parseUri } from '../src/sip/index.js';
import type { Stack } from '../src/core/index.js';
import { type TimerHandle, type Timers, realTimers } from '../src/transaction/timers.js';
import type { Destination } from '../src/transport/types.js';
import { isNextHopFailure, resolve as resolveNextHop } from '../src/core/index.js';
import { RoutingData, type RoutingDataInit } from './routing-data.js';
import type {
  BackendChoice, BackendHealth, BackendRecord, BackendState, BalanceAlgorithm, BalancerApi, BalancerOptions, ReloadSummary,
  RoutingRepository, RoutingSnapshot,
} from './types.js';

/** What the balancer needs of the stack: sending a request in a client transaction. */
export type BalancerStack = Pick<Stack, 'sendRequest' | 'advertisedAddress'>;

export interface BalancerInit {
  stack: BalancerStack;
  repository: RoutingRepository;
  logger: Logger;
  /** Missing values take DEFAULT_BALANCER_OPTIONS. */
  options?: Partial<BalancerOptions>;
  /** Probe, timeout and reload timers; Node's (unref'd) by default, a FakeClock in tests. */
  timers?: Timers;
  /** ms since the epoch, for `lastSeen`; Date.now by default. */
  clock?: () => number;
  /** Next hop of a backend URI; RFC 3263-lite `src/core/resolver` by default. */
  resolve?: (uri: Uri) => Promise<Destination | undefined>;
  /** A/AAAA lookup of backend names for the trusted addresses of RoutingData. */
  lookup?: RoutingDataInit['lookup'];
}

/** Defaults of `BalancerOptions` (the same as config `balancer.*`). */
export const DEFAULT_BALANCER_OPTIONS: Readonly<BalancerOptions> = Object.freeze({
  probeIntervalMs: 10_000,
  failureThreshold: 3,
  recoveryThreshold: 2,
  probeTimeoutMs: 2000,
  reloadIntervalMs: 10_000,
});

/** Sticky keys kept per set; the oldest is forgotten beyond this (it simply gets a fresh pick). */
const MAX_STICKY_KEYS = 200_000;

interface Member {
  record: BackendRecord;
  choice: BackendChoice;
  health: BackendHealth;
  activeCalls: number;
  /** Consecutive failures (probes and passive). */
  failures: number;
  /** Consecutive answers while down. */
  answers: number;
  lastSeen: number | undefined;
  /** Round trip of the last answered probe, ms. */
  probeMs: number | undefined;
  /** Smooth weighted round-robin's current weight (nginx). */
  current: number;
  probing: boolean;
}

interface SetState {
  readonly name: string;
  algorithm: BalanceAlgorithm;
  /** Every backend of the set, enabled or not, by id. */
  members: Member[];
  /** Id of the last backend picked: round-robin goes on after it. */
  cursor: number;
  readonly sticky: Map<string, number>;
}

function checkOptions(options: Partial<BalancerOptions>): BalancerOptions {
  const o: BalancerOptions = { ...DEFAULT_BALANCER_OPTIONS, ...options };
  const positive = (name: keyof BalancerOptions, min: number): void => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new TypeError(`balancer option ${name} must be a number of at least ${min}, got ${String(v)}`);
  };
  positive('probeIntervalMs', 1);
  positive('probeTimeoutMs', 1);
  positive('reloadIntervalMs', 0);
  positive('failureThreshold', 1);
  positive('recoveryThreshold', 1);
  return o;
}

/** `list` (by id) starting after id `after`, wrapping round. */
function rotate(list: readonly Member[], after: number): Member[] {
  let i = list.findIndex((m) => m.record.id > after);
  if (i === -1) i = 0;
  return [...list.slice(i), ...list.slice(0, i)];
}

export class Balancer implements BalancerApi {
  /** Dialplan, DIDs and trusted sources of the same reload. */
  readonly routing: RoutingData;
  private readonly stack: BalancerStack;
  private readonly repository: RoutingRepository;
  private readonly log: Logger;
  private readonly options: BalancerOptions;
  private readonly timers: Timers;
  private readonly clock: () => number;
  private readonly resolveUri: (uri: Uri) => Promise<Destination | undefined>;
  private sets = new Map<string, SetState>();
  private byId = new Map<number, Member>();
  private running = false;
  private probeTimer: TimerHandle | undefined;
  private reloadTimer: TimerHandle | undefined;
  private reloadChain: Promise<unknown> = Promise.resolve();
  private reloadFailing = false;
  private cseq = 0;
  private lastSummary: ReloadSummary | undefined;

  constructor(init: BalancerInit) {
    this.stack = init.stack;
    this.repository = init.repository;
    this.log = categoryLogger(init.logger, 'proxy.balancer');
    this.options = checkOptions(init.options ?? {});
    this.timers = init.timers ?? realTimers;
    this.clock = init.clock ?? Date.now;
    this.resolveUri = init.resolve ?? ((uri) => resolveNextHop(uri));
    this.routing = new RoutingData({ logger: init.logger, lookup: init.lookup });
  }

  // ---- lifecycle -----------------------------------------------------------------------------------

  /** Loads the tables (a store failure here fails the start), probes every enabled backend, arms the timers. */
  async start(): Promise<void> {
    if (this.running) return;
    await this.reload();
    this.running = true;
    this.probeRound();
    this.armReload();
  }

  /** Stops probing and reloading; answers to probes in flight are ignored. The tables stay readable. */
  stop(): void {
    this.running = false;
    if (this.probeTimer !== undefined) this.timers.clearTimeout(this.probeTimer);
    if (this.reloadTimer !== undefined) this.timers.clearTimeout(this.reloadTimer);
    this.probeTimer = undefined;
    this.reloadTimer = undefined;
  }

  /**
   * Re-reads backends, sets, routes, DIDs and trusted sources and swaps them in (one after another when
   * called while one runs). On a store failure the tables loaded before stay, one warning is logged per
   * run of failures, and the promise rejects.
   */
  reload(): Promise<ReloadSummary> {
    const run = this.reloadChain.then(() => this.reloadOnce());
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  /** What the last successful reload loaded. */
  get summary(): ReloadSummary | undefined {
    return this.lastSummary;
  }

  // ---- BalancerApi ---------------------------------------------------------------------------------

  candidates(set: string, stickyKey?: string): BackendChoice[] {
    const s = this.sets.get(set);
    if (s === undefined) return [];
    const healthy: Member[] = [];
    const down: Member[] = [];
    for (const m of s.members) {
      if (!m.record.enabled) continue;
      (m.health === 'down' ? down : healthy).push(m);
    }
    let first: Member | undefined;
    if (healthy.length > 0) {
      if (stickyKey !== undefined) {
        const id = s.sticky.get(stickyKey);
        first = id === undefined ? undefined : healthy.find((m) => m.record.id === id);
      }
      if (first === undefined) {
        first = this.pick(s, healthy);
        if (stickyKey !== undefined) this.remember(s, stickyKey, first.record.id);
      }
    }
    const out: BackendChoice[] = [];
    if (first !== undefined) {
      out.push(first.choice);
      for (const m of this.failoverOrder(s, healthy, first)) out.push(m.choice);
    }
    for (const m of rotate(down, s.cursor)) out.push(m.choice);
    return out;
  }

  callStarted(backend: BackendChoice): void {
    const m = this.byId.get(backend.id);
    if (m !== undefined) m.activeCalls++;
  }

  callEnded(backend: BackendChoice): void {
    const m = this.byId.get(backend.id);
    if (m !== undefined && m.activeCalls > 0) m.activeCalls--;
  }

  markFailure(backend: BackendChoice, reason: string): void {
    const m = this.byId.get(backend.id);
    if (m !== undefined) this.failed(m, reason);
  }

  markSuccess(backend: BackendChoice): void {
    const m = this.byId.get(backend.id);
    if (m !== undefined) this.answered(m, false);
  }

  states(): BackendState[] {
    return [...this.byId.values()].sort((a, b) => a.record.id - b.record.id).map((m) => ({
      id: m.record.id,
      set: m.record.set,
      uri: m.record.uri,
      weight: m.record.weight,
      enabled: m.record.enabled,
      health: m.health,
      activeCalls: m.activeCalls,
      failures: m.failures,
      lastSeen: m.lastSeen,
      probeMs: m.probeMs,
    }));
  }

  // ---- choosing ------------------------------------------------------------------------------------

  private pick(s: SetState, healthy: Member[]): Member {
    let chosen: Member;
    switch (s.algorithm) {
      case 'weighted': {
        // Smooth weighted round-robin (nginx): every peer gains its weight, the highest is chosen and
        // pays back the total; weights 5:1:1 give a b a c a a a, not a a a a a b c.
        let total = 0;
        let best: Member | undefined;
        for (const m of healthy) {
          m.current += m.record.weight;
          total += m.record.weight;
          if (best === undefined || m.current > best.current) best = m;
        }
        chosen = best!;
        chosen.current -= total;
        break;
      }
      case 'least-calls': {
        let min = Infinity;
        for (const m of healthy) min = Math.min(min, m.activeCalls);
        chosen = rotate(healthy.filter((m) => m.activeCalls === min), s.cursor)[0]!;
        break;
      }
      case 'round-robin':
      default:
        chosen = rotate(healthy, s.cursor)[0]!;
    }
    s.cursor = chosen.record.id;
    return chosen;
  }

  /** The healthy backends after `first`, in the order the set's algorithm would prefer them. */
  private failoverOrder(s: SetState, healthy: Member[], first: Member): Member[] {
    const rest = rotate(healthy, first.record.id).filter((m) => m !== first);
    if (s.algorithm === 'weighted') return rest.sort((a, b) => b.record.weight - a.record.weight);
    if (s.algorithm === 'least-calls') return rest.sort((a, b) => a.activeCalls - b.activeCalls);
    return rest; // Array.prototype.sort is stable: ties keep the rotation.
  }

  private remember(s: SetState, key: string, id: number): void {
    s.sticky.delete(key);
    s.sticky.set(key, id);
    if (s.sticky.size > MAX_STICKY_KEYS) s.sticky.delete(s.sticky.keys().next().value!);
  }

  // ---- health --------------------------------------------------------------------------------------

  private failed(m: Member, reason: string): void {
    m.failures++;
    m.answers = 0;
    if (m.health !== 'down' && m.failures >= this.options.failureThreshold) {
      m.health = 'down';
      this.log.warn({ backend: m.record.id, set: m.record.set, uri: m.record.uri, failures: m.failures, reason }, 'backend down');
    }
  }

  private answered(m: Member, probe: boolean): void {
    m.failures = 0;
    if (probe) m.lastSeen = this.clock();
    if (m.health !== 'down') {
      m.health = 'up';
      return;
    }
    m.answers++;
    if (m.answers >= this.options.recoveryThreshold) {
      m.health = 'up';
      m.answers = 0;
      this.log.info({ backend: m.record.id, set: m.record.set, uri: m.record.uri }, 'backend up');
    }
  }

  private probeRound(): void {
    this.probeTimer = undefined;
    if (!this.running) return;
    for (const m of this.byId.values()) if (m.record.enabled && !m.probing) this.probe(m);
    this.probeTimer = this.timers.setTimeout(() => this.probeRound(), this.options.probeIntervalMs);
  }

  /** One OPTIONS to the backend (RFC 3261 §11): any final answer but 408/503 means it is alive. */
  private probe(m: Member): void {
    m.probing = true;
    const sentAt = this.clock();
    let finished = false;
    const finish = (answer: boolean, reason: string): void => {
      if (finished) return;
      finished = true;
      m.probing = false;
      this.timers.clearTimeout(timer);
      // A probe that outlived stop(), or a backend removed by a reload meanwhile, counts for nothing.
      if (!this.running || this.byId.get(m.record.id) !== m) return;
      if (answer) {
        m.probeMs = this.clock() - sentAt;
        this.answered(m, true);
      } else this.failed(m, `probe: ${reason}`);
    };
    const timer = this.timers.setTimeout(() => finish(false, 'timeout'), this.options.probeTimeoutMs);
    const uri = m.record.uri;
    this.resolveUri(parseUri(uri)).then((destination) => {
      if (finished) return;
      if (destination === undefined) {
        finish(false, 'the URI does not resolve');
        return;
      }
      try {
        this.stack.sendRequest(this.probeRequest(uri, destination), destination, {
          onResponse: (res: SipResponse) => {
            if (res.status < 200) return;
            if (isNextHopFailure(res.status)) finish(false, `${res.status} ${res.reason}`);
            else finish(true, '');
          },
          onTimeout: () => finish(false, 'timeout'),
          onTransportError: (_tx, err) => finish(false, `transport: ${err.message}`),
        });
      } catch (err) {
        finish(false, `transport: ${(err as Error).message}`);
      }
    }, (err: unknown) => finish(false, `resolve: ${(err as Error).message}`));
  }

  /** The OPTIONS request of a probe; the stack adds the Via. */
  private probeRequest(uri: string, destination: Destination): SipRequest {
    const target = parseSipUri(uri);
    target.headers = [];
    const host = this.stack.advertisedAddress(destination.protocol)?.host ?? 'softswitch.invalid';
    this.cseq = this.cseq >= 2_000_000_000 ? 1 : this.cseq + 1;
    const fields: Array<[string, string]> = [
      ['Max-Forwards', '70'],
      ['To', `<${target.toString()}>`],
      ['From', `<sip:balancer@${host}>;tag=${newTag()}`],
      ['Call-ID', newCallId()],
      ['CSeq', `${this.cseq} OPTIONS`],
      ['Accept', 'application/sdp'],
    ];
    return new SipRequest({ method: 'OPTIONS', uri: target, headers: fields.map(([name, value]) => makeField(headerKey(name), name, value)) });
  }

  // ---- reload --------------------------------------------------------------------------------------

  private armReload(): void {
    if (!this.running || this.options.reloadIntervalMs <= 0) return;
    this.reloadTimer = this.timers.setTimeout(() => {
      this.reloadTimer = undefined;
      // Failures are logged by reloadOnce; the next period tries again.
      this.reload().catch(() => undefined).finally(() => this.armReload());
    }, this.options.reloadIntervalMs);
  }

  private async reloadOnce(): Promise<ReloadSummary> {
    let snapshot: RoutingSnapshot;
    try {
      const r = this.repository;
      const [sets, backends, routes, dids, trusted] = await Promise.all([r.listSets(), r.listBackends(), r.listRoutes(), r.listDids(), r.listTrusted()]);
      snapshot = { sets, backends, routes, dids, trusted };
    } catch (err) {
      if (!this.reloadFailing) {
        this.reloadFailing = true;
        this.log.warn({ err: (err as Error).message }, 'reloading routing data from the store failed; keeping the tables loaded before');
      }
      throw err;
    }
    if (this.reloadFailing) {
      this.reloadFailing = false;
      this.log.info('reloading routing data from the store works again');
    }
    this.apply(snapshot);
    await this.routing.load(snapshot);
    const summary: ReloadSummary = {
      reloadedAt: this.clock(),
      sets: this.sets.size,
      backends: snapshot.backends.length,
      enabled: snapshot.backends.filter((b) => b.enabled).length,
      routes: snapshot.routes.length,
      dids: snapshot.dids.length,
      trusted: snapshot.trusted.length,
    };
    this.lastSummary = summary;
    if (this.log.isLevelEnabled('debug')) this.log.debug(summary, 'routing data reloaded');
    return summary;
  }

  /** Swaps in the backends and sets of a snapshot, keeping the state of every backend that is still there. */
  private apply(snapshot: RoutingSnapshot): void {
    const byId = new Map<number, Member>();
    for (const record of snapshot.backends) {
      const old = this.byId.get(record.id);
      if (old !== undefined && old.record.set === record.set) {
        if (old.record.uri !== record.uri) old.choice = Object.freeze({ id: record.id, set: record.set, uri: record.uri });
        old.record = record;
        byId.set(record.id, old);
      } else {
        byId.set(record.id, {
          record,
          choice: Object.freeze({ id: record.id, set: record.set, uri: record.uri }),
          health: 'unknown',
          activeCalls: 0,
          failures: 0,
          answers: 0,
          lastSeen: undefined,
          probeMs: undefined,
          current: 0,
          probing: false,
        });
      }
    }
    const algorithms = new Map(snapshot.sets.map((s) => [s.name, s.algorithm]));
    const names = new Set([...algorithms.keys(), ...snapshot.backends.map((b) => b.set)]);
    const sets = new Map<string, SetState>();
    for (const name of names) {
      const old = this.sets.get(name);
      const members = [...byId.values()].filter((m) => m.record.set === name).sort((a, b) => a.record.id - b.record.id);
      const s: SetState = old ?? { name, algorithm: 'round-robin', members: [], cursor: 0, sticky: new Map() };
      s.algorithm = algorithms.get(name) ?? 'round-robin';
      s.members = members;
      for (const [key, id] of s.sticky) if (!byId.has(id)) s.sticky.delete(key);
      sets.set(name, s);
    }
    this.byId = byId;
    this.sets = sets;
  }
}

/** The balancer and, as `balancer.routing`, the routing data it reloads with it. */
export function createBalancer(init: BalancerInit): Balancer {
  return new Balancer(init);
}
