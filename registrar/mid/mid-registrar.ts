/**
 * The mid-registrar (OpenSIPS `mid_registrar`): devices REGISTER with the softswitch, which registers
 * its own address at a FreeSWITCH backend chosen by the load balancer and keeps the device bindings in
 * the local location service, so calls between users are routed exactly as with the local registrar.
 *
 * How the softswitch speaks to the backend, in every mode:
 * - Each REGISTER it sends is a new request of its own (its Via, its From tag), in one dialog-less
 *   registration per AoR: a Call-ID derived from the AoR and a per-process secret, and a CSeq of its own
 *   that only grows. The device's Call-ID/CSeq are not reused because the softswitch also sends
 *   REGISTERs the device never sent (de-REGISTERs on expiry) and, in aor-throttle, carries several
 *   devices in one registration; one sequence per AoR keeps RFC 3261 §10.3 step 7 ordering right at
 *   the backend whatever the devices do, and does not leak device identifiers upstream.
 * - Each Contact becomes `sip:<user>@<our advertised host:port>;ctid=<id>` (`;transport=` when not UDP),
 *   with `<id>` a hash of AoR and device contact (of the AoR alone in aor-throttle): stable across
 *   restarts, so a refresh after one updates the same binding at the backend instead of adding one.
 * - localAuth=true: the softswitch checks the credentials (401 with the local authenticator) and sends
 *   none upstream; the backend must trust it (FreeSWITCH ACL). A 401/407 from the backend is then a
 *   misconfiguration and becomes a 500, since the device could never answer it.
 *   localAuth=false: the backend challenges; its 401 is relayed, the device's Authorization values are
 *   passed through, and the Request-URI is the device's (the digest covers it, RFC 2617 §3.2.2).
 *
 * When the throttle modes answer locally ("absorb"):
 * - localAuth=true: after local authentication, when the backend registration has more than the
 *   device's expiry left.
 * - localAuth=false: never when the REGISTER carries credentials (#1156: only the backend can check them),
 *   nor for a query, nor for anything but a refresh of a binding the backend accepted (same contact,
 *   same Call-ID, higher CSeq, same flow); so a new device or an unknown contact always reaches the
 *   backend, which challenges it (#3193).
 * - A device is never granted more than the backend registration has left, so the backend binding is
 *   refreshed by the device refresh that would outlive it ("re-forward before it runs out") and never
 *   lapses under a live device binding. After an un-REGISTER the backend registration is forgotten, so
 *   the next REGISTER is forwarded (#1804).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Stack } from '../../src/core/index.js';
import { type Logger, categoryLogger } from '../../src/log/index.js';
import {
  type NameAddr, SipParseError, SipRequest, type SipResponse, SipUri, type Uri, digestOf, headerKey, makeField, newTag,
  parseSipUri, parseUri, unescapeUriPart, unquote, wireToUtf8,
} from '../../src/sip/index.js';
import { type ServerTransaction, type TimerHandle, type Timers, realTimers } from '../../src/transaction/index.js';
import type { Destination, Flow } from '../../src/transport/types.js';
import { isNextHopFailure, resolve as resolveNextHop } from '../../src/core/index.js';
import type { DigestAuthenticator } from '../auth/digest-authenticator.js';
import { aorIn, aorOf } from '../location/aor.js';
import { ServedDomains } from '../served-domains.js';
import { type Reply, answerRegister, checkRegister, okHeaders } from '../registrar.js';
import type { LocationService } from '../location/location-service.js';
import type { Binding, OkHeaderSource } from '../types.js';
import type {
  BackendPicker, BackendTarget, MidRegistrarApi, MidRegistrarMode, MidRegistrarOptions, MidRegistrarStats,
} from './types.js';

export interface MidRegistrarInit {
  stack: Pick<Stack, 'respond' | 'sendRequest' | 'advertisedAddress' | 'isLocal'> & Partial<Pick<Stack, 'isLocalHost'>>;
  /** The local Registrar's authenticator (`registrar.authenticator`). */
  authenticator: DigestAuthenticator;
  /** The local Registrar's location service (`registrar.locations`): device bindings go there. */
  locations: LocationService;
  picker: BackendPicker;
  logger: Logger;
  options: MidRegistrarOptions;
  /** Domains whose AoRs are registered through here (compared case-insensitively). */
  domains: string[];
  /** Milliseconds since the epoch; default Date.now. Must be the clock of the location service. */
  clock?: () => number;
  /** Expiry and backend-timeout timers; default Node's (unref'd). */
  timers?: Timers;
  /** Next hop of a backend URI; default RFC 3263-lite `src/core/resolver`. */
  resolve?: (uri: Uri) => Promise<Destination | undefined>;
}


/** One device contact as a REGISTER asks for it. */
interface Planned {
  contact: NameAddr;
  uri: string;
  /** Seconds; 0 removes. */
  expires: number;
}

/** A device binding registered through us, with its expiry timer. */
interface Device {
  readonly state: AorState;
  readonly contactUri: string;
  /** The id of our Contact at the backend that carries it. */
  readonly ctid: string;
  callId: string;
  cseq: number;
  flowId: string;
  expiresAt: number;
  timer: TimerHandle | undefined;
}

/** Everything about one AoR registered through us. */
interface AorState {
  readonly aor: string;
  readonly domain: string;
  /** Our user part at the backend (the AoR's, as aorOf writes it). */
  readonly user: string | undefined;
  /** Our registration at the backend: one Call-ID per AoR, our own CSeq. */
  readonly callId: string;
  cseq: number;
  /** Our Contacts bound at the backend: ctid → expiry there (ms since the epoch). */
  readonly atBackend: Map<string, number>;
  /** By device contact URI. */
  readonly devices: Map<string, Device>;
  queue: Promise<unknown>;
  busy: number;
}

/** A Contact we send upstream: its id and expiry (undefined: the request's Expires decides). */
interface OutContact {
  ctid: string;
  expires: number | undefined;
}

interface ForwardSpec {
  /** The Request-URI. */
  uri: string;
  /** To and From of the registration (the device's, or the AoR). */
  to: string;
  from: string;
  contacts: OutContact[] | '*';
  expires: number | undefined;
  /** Authorization values passed through. */
  authorization: string[];
  userAgent: string | undefined;
}

type Attempt =
  | { kind: 'response'; response: SipResponse }
  | { kind: 'failed'; reason: string };

type ForwardResult =
  | { kind: 'final'; response: SipResponse }
  | { kind: 'unreachable'; tried: number };

/** Headers of a backend's non-2xx final that mean something to the device. */
const RELAYED_HEADERS: ReadonlyArray<[string, string]> = [
  ['www-authenticate', 'WWW-Authenticate'], ['proxy-authenticate', 'Proxy-Authenticate'], ['min-expires', 'Min-Expires'],
  ['retry-after', 'Retry-After'], ['warning', 'Warning'], ['unsupported', 'Unsupported'],
];
const OUT_OF_ORDER: Reply = { status: 500, reason: 'Server Internal Error: REGISTER out of order' };
/** RFC 3261 §8.1.1.5: CSeq below 2**31. */
const CSEQ_LIMIT = 0x80000000;

export class MidRegistrar implements MidRegistrarApi {
  readonly stats: MidRegistrarStats = { forwarded: 0, absorbed: 0, expiredAtBackend: 0, backendFailures: 0 };
  readonly mode: Exclude<MidRegistrarMode, 'local'>;
  private readonly stack: MidRegistrarInit['stack'];
  private readonly authenticator: DigestAuthenticator;
  private readonly locations: LocationService;
  private readonly picker: BackendPicker;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly timers: Timers;
  private readonly resolveUri: (uri: Uri) => Promise<Destination | undefined>;
  private readonly served: ServedDomains;
  private readonly localAuth: boolean;
  private readonly outgoingExpires: number;
  private readonly ctidParam: string;
  private readonly backendTimeoutMs: number;
  private readonly retryAfter: number;
  private readonly defaultExpires: number;
  private readonly secret = randomBytes(16);
  private readonly aors = new Map<string, AorState>();
  /** ctid → where it leads: a device contact of an AoR, or (aor-throttle) the AoR. */
  private readonly ctids = new Map<string, { aor: string; contactUri: string | undefined }>();
  /** Devices by the id of the flow their last REGISTER came on. */
  private readonly byFlow = new Map<string, Set<Device>>();
  /** Backend requests waiting for an answer, to end them on stop(). */
  private readonly inflight = new Set<() => void>();
  private stopped = false;
  /** The highest CSeq sent to a backend (see stateOf). */
  private cseqFloor = 0;
  private readonly okHeaders: OkHeaderSource | undefined;

  constructor(init: MidRegistrarInit) {
    const o = init.options;
    if (o.mode !== 'mirror' && o.mode !== 'contact-throttle' && o.mode !== 'aor-throttle') {
      throw new TypeError(`the mid-registrar runs in mirror, contact-throttle or aor-throttle mode, not ${String(o.mode)}`);
    }
    if (!Array.isArray(init.domains) || init.domains.length === 0) throw new TypeError('the mid-registrar needs at least one domain');
    this.mode = o.mode;
    this.okHeaders = o.okHeaders;
    this.outgoingExpires = seconds('outgoingExpires', o.outgoingExpires, 1);
    this.defaultExpires = seconds('defaultExpires', o.defaultExpires ?? 600, 1);
    this.retryAfter = seconds('retryAfter', o.retryAfter ?? 30, 0);
    this.backendTimeoutMs = o.backendTimeoutMs ?? 4000;
    if (!Number.isFinite(this.backendTimeoutMs) || this.backendTimeoutMs <= 0) throw new TypeError(`backendTimeoutMs must be positive, got ${this.backendTimeoutMs}`);
    this.ctidParam = (o.contactIdParam ?? 'ctid').toLowerCase();
    if (!/^[a-z][a-z0-9-]*$/.test(this.ctidParam)) throw new TypeError(`contactIdParam must be a token, got ${this.ctidParam}`);
    this.localAuth = o.localAuth;
    this.stack = init.stack;
    this.authenticator = init.authenticator;
    this.locations = init.locations;
    this.picker = init.picker;
    this.log = categoryLogger(init.logger, 'registrar.mid');
    this.clock = init.clock ?? Date.now;
    this.timers = init.timers ?? realTimers;
    this.resolveUri = init.resolve ?? ((uri) => resolveNextHop(uri));
    this.served = new ServedDomains(init.domains, (host) => this.stack.isLocalHost?.(host) === true);
  }

  /** Nothing to start: the location service belongs to the Registrar and is started with it. */
  async start(): Promise<void> {
    this.stopped = false;
  }

  /**
   * Clears every expiry timer and gives up the backend requests in flight (their devices get 503).
   * No de-REGISTER is sent: the backend registrations lapse by themselves within `outgoingExpires`,
   * and devices re-registering after a restart are forwarded anew.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const state of this.aors.values()) {
      for (const d of state.devices.values()) this.clearTimer(d);
    }
    for (const end of [...this.inflight]) end();
  }

  async handle(request: SipRequest, tx: ServerTransaction): Promise<void> {
    if (request.method !== 'REGISTER') throw new TypeError(`the mid-registrar handles REGISTER, not ${request.method}`);
    await answerRegister(this.stack, tx, request, this.log, () => this.process(request, tx), this.okHeaders);
  }

  resolveIncoming(ruri: Uri): Binding[] | undefined {
    if (!(ruri instanceof SipUri)) return undefined;
    const ctid = ruri.getParam(this.ctidParam);
    if (typeof ctid === 'string') {
      const target = this.ctids.get(ctid);
      if (target === undefined) return this.resolveCtidFromBindings(ruri, ctid);
      const bindings = this.locations.lookup(target.aor);
      return target.contactUri === undefined ? bindings : bindings.filter((b) => b.contactUri === target.contactUri);
    }
    // A backend that dropped our parameter: our address and the user of exactly one AoR of ours.
    if (ruri.user === undefined || !this.stack.isLocal(ruri.host, ruri.port)) return undefined;
    const user = ruri.userUnescaped;
    const matches = [...this.aors.values()].filter((s) => s.user !== undefined && unescapeUriPart(s.user) === user && s.atBackend.size > 0);
    if (matches.length !== 1) return undefined;
    return this.locations.lookup(matches[0]!.aor);
  }

  /**
   * A ctid this process did not hand out (another cluster worker took the device's REGISTER, or this
   * process restarted since): a ctid is the hash of the AoR and the device's Contact, so it is found again
   * among the bindings (replicated to every worker, reloaded after a restart) of the AoRs the user part
   * names in our domains. Undefined when none matches: the request is then routed as any other.
   */
  private resolveCtidFromBindings(ruri: SipUri, ctid: string): Binding[] | undefined {
    if (ruri.user === undefined) return undefined;
    for (const domain of this.served.list) {
      const aor = aorOf(new SipUri({ scheme: 'sip', user: ruri.user, host: domain }));
      const bindings = this.locations.lookup(aor);
      if (bindings.length === 0) continue;
      if (this.mode === 'aor-throttle') {
        if (this.ctidOf(aor) === ctid) return bindings;
        continue;
      }
      const device = bindings.filter((b) => this.ctidOf(aor, b.contactUri) === ctid);
      if (device.length > 0) return device;
    }
    return undefined;
  }

  /**
   * A connection closed; call it after `registrar.onFlowClosed(flow)`. The devices on it whose binding
   * the location service dropped (WS/WSS, RFC 5626 flows) leave as if they had expired: in the throttle
   * modes their Contact is de-REGISTERed at the backend now, not when the device's expiry runs out.
   * Returns how many devices went.
   */
  onFlowClosed(flow: Pick<Flow, 'id'>): number {
    const set = this.byFlow.get(flow.id);
    if (set === undefined) return 0;
    let gone = 0;
    for (const d of [...set]) {
      if (this.locations.lookup(d.state.aor).some((b) => b.contactUri === d.contactUri)) continue;
      this.deviceGone(d.state, d, 'flow closed');
      gone++;
    }
    return gone;
  }

  // ---- a device's REGISTER ---------------------------------------------------------------------

  private async process(request: SipRequest, tx: ServerTransaction): Promise<Reply> {
    // RFC 3261 §10.3 steps 1, 2 and 5 as the local registrar checks them.
    const checked = checkRegister(request, this.served, (host, port) => this.stack.isLocal(host, port));
    if ('status' in checked) return checked;
    const { to, callId, cseq, domain } = checked;

    // Step 6, before anything is sent anywhere.
    const star = request.contactStar;
    let planned: Planned[] | '*';
    if (star) {
      if (request.contact.length > 0 || request.count('contact') > 1) return { status: 400, reason: 'Bad Request: Contact "*" must be the only Contact' };
      if (request.expires !== 0) return { status: 400, reason: 'Bad Request: Contact "*" requires Expires: 0' };
      planned = '*';
    } else {
      const headerExpires = request.expires;
      planned = request.contact.map((contact) => ({
        contact, uri: contact.uri.toString(), expires: contact.expires ?? headerExpires ?? this.defaultExpires,
      }));
    }

    // Step 3-4, at the softswitch when it authenticates (also for a second device of an AoR, #3193).
    if (this.localAuth) {
      const auth = await this.authenticator.authenticate(request, 'www', domain, tx.flow.remote.address);
      if (!auth.ok) return auth;
      const toUser = to.uri.userUnescaped;
      if (toUser === undefined || wireToUtf8(toUser) !== auth.username || auth.domain !== domain) {
        this.log.info({ user: auth.username, aor: to.uri.toString() }, 'REGISTER for another user\'s AoR refused');
        return { status: 403, reason: 'Forbidden: credentials do not match the AoR' };
      }
    }

    const aor = aorIn(to.uri, domain);
    const state = this.stateOf(aor, domain);
    return this.serialized(state, () => {
      if (planned !== '*') {
        for (const p of planned) {
          const d = state.devices.get(p.uri);
          if (d !== undefined && d.callId === callId && cseq.seq <= d.cseq) return Promise.resolve(OUT_OF_ORDER);
        }
      }
      return this.mode === 'mirror'
        ? this.mirror(state, request, tx.flow, planned)
        : this.throttle(state, request, tx, planned);
    });
  }

  /** mirror: everything goes to the backend; its 2xx decides what is stored, with its expiry. */
  private async mirror(state: AorState, request: SipRequest, flow: Flow, planned: Planned[] | '*'): Promise<Reply> {
    const contacts: OutContact[] | '*' = planned === '*'
      ? '*'
      : planned.map((p) => ({ ctid: this.ctidOf(state.aor, p.uri), expires: p.contact.expires }));
    const result = await this.forward(state, this.specFromDevice(state, request, contacts, request.expires));
    if (result.kind === 'unreachable') return this.unreachable(state, result.tried);
    const res = result.response;
    if (res.status >= 300) return this.relay(res);
    const now = this.clock();
    if (planned === '*') {
      state.atBackend.clear();
      this.removeDevices(state, [...state.devices.values()]);
      this.locations.update(state.aor, { remove: this.locations.lookup(state.aor) });
      return this.ok(request, state.aor, now);
    }
    const grants = planned.map((p) => {
      const ctid = this.ctidOf(state.aor, p.uri);
      const granted = p.expires === 0 ? 0 : grantedExpiry(res, this.ctidParam, ctid, p.expires);
      if (granted === 0) state.atBackend.delete(ctid);
      else state.atBackend.set(ctid, now + granted * 1000);
      return { p, granted };
    });
    this.applyDevices(state, request, flow, grants, now);
    return this.ok(request, state.aor, now);
  }

  /** contact-throttle and aor-throttle. */
  private async throttle(state: AorState, request: SipRequest, tx: ServerTransaction, planned: Planned[] | '*'): Promise<Reply> {
    const now = this.clock();
    if (planned === '*') {
      const result = await this.forward(state, this.specFromDevice(state, request, '*', 0));
      if (result.kind === 'unreachable') return this.unreachable(state, result.tried);
      if (result.response.status >= 300) return this.relay(result.response);
      state.atBackend.clear();
      this.removeDevices(state, [...state.devices.values()]);
      this.locations.update(state.aor, { remove: this.locations.lookup(state.aor) });
      return this.ok(request, state.aor, this.clock());
    }

    const aorMode = this.mode === 'aor-throttle';
    const aorCtid = this.ctidOf(state.aor);
    const ctidFor = (p: Planned): string => (aorMode ? aorCtid : this.ctidOf(state.aor, p.uri));
    const left = (ctid: string): number => (state.atBackend.get(ctid) ?? 0) - now;
    // The devices the AoR has once this REGISTER is done (aor-throttle: none left → de-REGISTER).
    const remaining = new Set([...state.devices.values()].filter((d) => d.expiresAt > now).map((d) => d.contactUri));
    for (const p of planned) {
      if (p.expires > 0) remaining.add(p.uri);
      else remaining.delete(p.uri);
    }

    let needBackend = false;
    for (const p of planned) {
      const ctid = ctidFor(p);
      if (p.expires > 0) {
        // Absorbed only while the backend registration outlives the device's.
        if (left(ctid) <= p.expires * 1000) needBackend = true;
      } else if (state.atBackend.has(ctid) && (!aorMode || remaining.size === 0)) {
        needBackend = true;
      }
    }
    if (!this.localAuth) {
      // Nobody here checked who sent it: only the backend may answer credentials (#1156), a query,
      // a new device or an unknown contact (#3193).
      const fromFlow = tx.flow.id;
      const knownRefresh = (p: Planned): boolean => {
        const d = state.devices.get(p.uri);
        return d !== undefined && d.expiresAt > now && d.callId === request.callId && request.cseq!.seq > d.cseq && d.flowId === fromFlow;
      };
      if (request.has('authorization') || planned.length === 0 || !planned.every(knownRefresh)) needBackend = true;
    }

    if (!needBackend) {
      this.stats.absorbed++;
      this.applyDevices(state, request, tx.flow, planned.map((p) => ({ p, granted: p.expires })), now);
      if (this.log.isLevelEnabled('debug')) this.log.debug({ aor: state.aor, contacts: planned.length }, 'REGISTER absorbed');
      return this.ok(request, state.aor, now);
    }

    let contacts: OutContact[];
    if (aorMode) {
      contacts = planned.length === 0 && state.atBackend.size === 0
        ? []
        : [{ ctid: aorCtid, expires: remaining.size > 0 ? this.outgoingExpires : 0 }];
    } else {
      contacts = planned.map((p) => ({ ctid: ctidFor(p), expires: p.expires > 0 ? this.outgoingExpires : 0 }));
    }
    const same = contacts.length > 0 && contacts.every((c) => c.expires === contacts[0]!.expires) ? contacts[0]!.expires : undefined;
    const result = await this.forward(state, this.specFromDevice(state, request, contacts, same));
    if (result.kind === 'unreachable') return this.unreachable(state, result.tried);
    const res = result.response;
    if (res.status >= 300) return this.relay(res);
    const at = this.clock();
    for (const c of contacts) {
      const granted = c.expires === 0 ? 0 : grantedExpiry(res, this.ctidParam, c.ctid, c.expires ?? this.outgoingExpires);
      if (granted === 0) state.atBackend.delete(c.ctid);
      else state.atBackend.set(c.ctid, at + granted * 1000);
    }
    // A device never gets longer than the backend registration that carries it has left.
    const grants = planned.map((p) => ({ p, granted: p.expires === 0 ? 0 : Math.min(p.expires, Math.floor(((state.atBackend.get(ctidFor(p)) ?? at) - at) / 1000)) }));
    this.applyDevices(state, request, tx.flow, grants, at);
    return this.ok(request, state.aor, at);
  }

  // ---- device bindings ---------------------------------------------------------------------------

  /** Stores, refreshes or removes device bindings (in the Registrar's location service) and their timers. */
  private applyDevices(state: AorState, request: SipRequest, flow: Flow, grants: Array<{ p: Planned; granted: number }>, now: number): void {
    const current = this.locations.lookup(state.aor);
    const remove: Binding[] = [];
    const add: Binding[] = [];
    const received = { protocol: flow.protocol, address: flow.remote.address, port: flow.remote.port };
    const paths = request.path.map(String);
    const userAgent = request.get('user-agent');
    for (const { p, granted } of grants) {
      for (const b of current) if (b.contactUri === p.uri) remove.push(b);
      const old = state.devices.get(p.uri);
      if (granted === 0) {
        if (old !== undefined) this.removeDevices(state, [old]);
        continue;
      }
      const instance = p.contact.params.get('+sip.instance');
      const regIdText = p.contact.params.get('reg-id');
      const regId = typeof regIdText === 'string' && /^[0-9]{1,10}$/.test(regIdText) ? Number(regIdText) : undefined;
      const stored = p.contact.clone();
      stored.params.delete('expires');
      const expiresAt = now + granted * 1000;
      add.push({
        aor: state.aor,
        contact: stored,
        contactUri: p.uri,
        expiresAt,
        q: p.contact.q,
        callId: request.callId!,
        cseq: request.cseq!.seq,
        flow,
        received,
        path: paths.length > 0 ? paths : undefined,
        instanceId: instance === undefined || instance === null ? undefined : unquote(instance),
        regId,
        userAgent,
        updatedAt: now,
      });
      const ctid = this.mode === 'aor-throttle' ? this.ctidOf(state.aor) : this.ctidOf(state.aor, p.uri);
      const device: Device = old ?? { state, contactUri: p.uri, ctid, callId: '', cseq: 0, flowId: '', expiresAt: 0, timer: undefined };
      device.callId = request.callId!;
      device.cseq = request.cseq!.seq;
      if (device.flowId !== flow.id) {
        this.unindexFlow(device);
        device.flowId = flow.id;
        let set = this.byFlow.get(flow.id);
        if (set === undefined) this.byFlow.set(flow.id, (set = new Set()));
        set.add(device);
      }
      device.expiresAt = expiresAt;
      this.clearTimer(device);
      device.timer = this.timers.setTimeout(() => this.deviceGone(state, device, 'expired'), granted * 1000);
      state.devices.set(p.uri, device);
      this.ctids.set(ctid, { aor: state.aor, contactUri: this.mode === 'aor-throttle' ? undefined : p.uri });
    }
    if (remove.length > 0 || add.length > 0) this.locations.update(state.aor, { remove, add });
  }

  private removeDevices(state: AorState, devices: Device[]): void {
    for (const d of devices) {
      this.clearTimer(d);
      this.unindexFlow(d);
      state.devices.delete(d.contactUri);
      if (this.mode !== 'aor-throttle') this.ctids.delete(d.ctid);
    }
    if (this.mode === 'aor-throttle' && state.devices.size === 0) this.ctids.delete(this.ctidOf(state.aor));
  }

  /**
   * A device binding ran out without a refresh (or its connection closed). In the throttle modes the backend still holds our
   * Contact for it (up to outgoingExpires): take it back with a de-REGISTER (Expires 0), in
   * aor-throttle once the AoR's last device is gone. In mirror the backend's binding ran out too.
   */
  private deviceGone(state: AorState, device: Device, why: 'expired' | 'flow closed'): void {
    device.timer = undefined;
    if (this.stopped || state.devices.get(device.contactUri) !== device) return;
    this.removeDevices(state, [device]);
    this.locations.update(state.aor, {});
    const ctid = device.ctid;
    const last = this.mode !== 'aor-throttle' || state.devices.size === 0;
    if (this.mode === 'mirror' || !last || !state.atBackend.has(ctid)) {
      if (this.mode === 'mirror') state.atBackend.delete(ctid);
      this.cleanup(state);
      return;
    }
    state.atBackend.delete(ctid);
    this.stats.expiredAtBackend++;
    this.log.info({ aor: state.aor, contact: device.contactUri, why }, 'device gone; de-REGISTER at the backend');
    const spec: ForwardSpec = {
      uri: `sip:${state.domain}`, to: `<${state.aor}>`, from: `<${state.aor}>`,
      contacts: [{ ctid, expires: 0 }], expires: 0, authorization: [], userAgent: undefined,
    };
    void this.serialized(state, async () => {
      const result = await this.forward(state, spec, true);
      if (result.kind === 'final' && result.response.status >= 300) {
        this.log.info({ aor: state.aor, status: result.response.status }, 'backend refused the de-REGISTER; its binding lapses by itself');
      }
    });
  }

  private unindexFlow(d: Device): void {
    const set = this.byFlow.get(d.flowId);
    if (set === undefined) return;
    set.delete(d);
    if (set.size === 0) this.byFlow.delete(d.flowId);
  }

  private clearTimer(d: Device): void {
    if (d.timer !== undefined) this.timers.clearTimeout(d.timer);
    d.timer = undefined;
  }

  // ---- towards the backend -----------------------------------------------------------------------

  private specFromDevice(state: AorState, request: SipRequest, contacts: OutContact[] | '*', expires: number | undefined): ForwardSpec {
    const to = request.to!.clone();
    to.params.delete('tag');
    const from = request.from!.clone();
    from.params.delete('tag');
    return {
      // The digest the device computed covers its Request-URI; ours is free to name the domain.
      uri: this.localAuth ? `sip:${state.domain}` : request.uri,
      to: to.toString(),
      from: from.toString(),
      contacts,
      expires,
      authorization: this.localAuth ? [] : request.getAll('authorization'),
      userAgent: request.get('user-agent'),
    };
  }

  /**
   * Sends the registration to the AoR's backends in the picker's order (serial failover on timeout,
   * transport error, 408 and 503) and returns the first final answer.
   */
  private async forward(state: AorState, spec: ForwardSpec, own = false): Promise<ForwardResult> {
    if (!own) this.stats.forwarded++;
    const candidates = this.picker.candidates(state.aor);
    if (candidates.length === 0) {
      this.stats.backendFailures++;
      return { kind: 'unreachable', tried: 0 };
    }
    let tried = 0;
    for (const backend of candidates) {
      if (this.stopped) break;
      tried++;
      let destination: Destination | undefined;
      try {
        destination = await this.resolveUri(parseUri(backend.uri));
      } catch (err) {
        if (!(err instanceof SipParseError)) throw err;
      }
      const local = destination === undefined ? undefined : this.stack.advertisedAddress(destination.protocol);
      if (destination === undefined || local === undefined) {
        this.failed(backend, destination === undefined ? 'unresolvable' : `no ${destination.protocol} listener`);
        continue;
      }
      const request = this.buildRequest(state, spec, destination, local);
      const attempt = await this.send(request, destination);
      if (attempt.kind === 'response' && !isNextHopFailure(attempt.response.status)) {
        this.picker.markSuccess?.(backend);
        return { kind: 'final', response: attempt.response };
      }
      this.failed(backend, attempt.kind === 'failed' ? attempt.reason : String(attempt.response.status));
    }
    return { kind: 'unreachable', tried };
  }

  private failed(backend: BackendTarget, reason: string): void {
    this.stats.backendFailures++;
    this.picker.markFailure?.(backend, reason);
    if (this.log.isLevelEnabled('debug')) this.log.debug({ backend: backend.id ?? backend.uri, reason }, 'backend failed a REGISTER');
  }

  private buildRequest(state: AorState, spec: ForwardSpec, destination: Destination, local: { host: string; port: number }): SipRequest {
    state.cseq = state.cseq + 1 >= CSEQ_LIMIT ? 1 : state.cseq + 1;
    this.cseqFloor = state.cseq >= this.cseqFloor ? state.cseq : this.cseqFloor;
    const transport = destination.protocol === 'udp' ? '' : `;transport=${destination.protocol === 'wss' ? 'ws' : destination.protocol}`;
    const user = state.user === undefined ? '' : `${state.user}@`;
    const fields: Array<[string, string]> = [
      ['Max-Forwards', '70'],
      ['To', spec.to],
      ['From', `${spec.from};tag=${newTag()}`],
      ['Call-ID', state.callId],
      ['CSeq', `${state.cseq} REGISTER`],
    ];
    if (spec.contacts === '*') {
      fields.push(['Contact', '*']);
    } else {
      for (const c of spec.contacts) {
        const uri = `sip:${user}${local.host}:${local.port};${this.ctidParam}=${c.ctid}${transport}`;
        fields.push(['Contact', c.expires === undefined ? `<${uri}>` : `<${uri}>;expires=${c.expires}`]);
      }
    }
    if (spec.expires !== undefined) fields.push(['Expires', String(spec.expires)]);
    for (const a of spec.authorization) fields.push(['Authorization', a]);
    if (spec.userAgent !== undefined) fields.push(['User-Agent', spec.userAgent]);
    return new SipRequest({
      method: 'REGISTER',
      uri: spec.uri,
      headers: fields.map(([name, value]) => makeField(headerKey(name), name, value)),
    });
  }

  /** One client transaction, given up after backendTimeoutMs (the device's own Timer F runs meanwhile). */
  private send(request: SipRequest, destination: Destination): Promise<Attempt> {
    return new Promise<Attempt>((resolvePromise) => {
      let done = false;
      const finish = (a: Attempt): void => {
        if (done) return;
        done = true;
        this.timers.clearTimeout(timer);
        this.inflight.delete(end);
        resolvePromise(a);
      };
      const end = (): void => finish({ kind: 'failed', reason: 'stopped' });
      const timer = this.timers.setTimeout(() => finish({ kind: 'failed', reason: 'timeout' }), this.backendTimeoutMs);
      this.inflight.add(end);
      try {
        this.stack.sendRequest(request, destination, {
          onResponse: (response) => {
            if (response.status >= 200) finish({ kind: 'response', response });
          },
          onTimeout: () => finish({ kind: 'failed', reason: 'timeout' }),
          onTransportError: (_tx, err) => finish({ kind: 'failed', reason: `transport: ${err.message}` }),
        });
      } catch (err) {
        finish({ kind: 'failed', reason: `transport: ${(err as Error).message}` });
      }
    });
  }

  // ---- answers -----------------------------------------------------------------------------------

  private unreachable(state: AorState, tried: number): Reply {
    this.log.warn({ aor: state.aor, tried }, 'no backend answered the REGISTER; 503 to the device');
    return { status: 503, reason: 'Service Unavailable (no registrar backend)', headers: [['Retry-After', String(this.retryAfter)]] };
  }

  /** A backend's non-2xx final, relayed with the headers that mean something to the device. */
  private relay(res: SipResponse): Reply {
    if (this.localAuth && (res.status === 401 || res.status === 407)) {
      this.log.warn({ status: res.status }, 'the backend challenged a REGISTER the softswitch authenticated; it must trust the softswitch');
      return { status: 500, reason: 'Server Internal Error (the registrar backend refused the softswitch)' };
    }
    const headers: Array<[string, string]> = [];
    for (const [key, name] of RELAYED_HEADERS) for (const v of res.getAll(key)) headers.push([name, v]);
    return { status: res.status, reason: res.reason, headers };
  }

  /** §10.3 step 8: 200 with every device binding of the AoR and its remaining expiry. */
  private ok(request: SipRequest, aor: string, now: number): Reply {
    return { status: 200, headers: okHeaders(request, this.locations.lookup(aor), now), aor };
  }

  // ---- state -------------------------------------------------------------------------------------

  private stateOf(aor: string, domain: string): AorState {
    let state = this.aors.get(aor);
    if (state === undefined) {
      const user = aor.startsWith('sip:') && aor.includes('@') ? parseSipUri(aor).user : undefined;
      state = {
        aor, domain, user,
        callId: `${this.hash(`call-id ${aor}`, 20)}@softswitch`,
        // Above every CSeq sent so far: the Call-ID of an AoR is stable for the process, so a
        // registration forgotten and started again (after a 401, say) must not go backwards.
        cseq: this.cseqFloor,
        atBackend: new Map(), devices: new Map(), queue: Promise.resolve(), busy: 0,
      };
      this.aors.set(aor, state);
    }
    return state;
  }

  /** Runs the AoR's changes one at a time: a REGISTER waits for the one before it to be answered. */
  private serialized<T>(state: AorState, fn: () => Promise<T>): Promise<T> {
    state.busy++;
    const run = state.queue.then(fn, fn);
    state.queue = run.then(() => this.done(state), () => this.done(state));
    return run;
  }

  private done(state: AorState): void {
    state.busy--;
    this.cleanup(state);
  }

  private cleanup(state: AorState): void {
    const now = this.clock();
    for (const [ctid, at] of state.atBackend) if (at <= now) state.atBackend.delete(ctid);
    if (state.busy === 0 && state.devices.size === 0 && state.atBackend.size === 0 && this.aors.get(state.aor) === state) {
      this.aors.delete(state.aor);
    }
  }

  /** The id of our Contact for a device contact of an AoR, or (aor-throttle) for the AoR. */
  private ctidOf(aor: string, contactUri?: string): string {
    return digestOf('sha256', contactUri === undefined ? aor : `${aor} ${contactUri}`, 'base64url').slice(0, 16);
  }

  private hash(text: string, length: number): string {
    return createHash('sha256').update(this.secret).update(text).digest('base64url').slice(0, length);
  }
}

/** The expiry the backend granted our Contact `ctid`: its expires parameter, else Expires, else what we asked. */
function grantedExpiry(res: SipResponse, param: string, ctid: string, asked: number | undefined): number {
  let contacts: NameAddr[] = [];
  let headerExpires: number | undefined;
  try {
    contacts = res.contact;
    headerExpires = res.expires;
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err;
  }
  for (const c of contacts) {
    if (c.uri instanceof SipUri && c.uri.getParam(param) === ctid) return c.expires ?? headerExpires ?? asked ?? 0;
  }
  return headerExpires ?? asked ?? 0;
}

function seconds(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new TypeError(`${name} must be a whole number of seconds ≥ ${min}, got ${value}`);
  return value;
}
