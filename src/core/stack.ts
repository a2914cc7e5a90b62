import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { type Logger, categoryLogger } from '../log/index.js';
import {
  MessageCounters, SipParseError, SipRequest, SipResponse, Via, createResponse, newBranch, parseMessage, parseVia,
  serializeMessage, type ResponseOptions,
} from '../sip/index.js';
import {
  type ClientTransaction, type ClientTransactionUser, type ServerTransaction, TransactionLayer, type Timers,
  type TimerConfig, responseDestination,
} from '../transaction/index.js';
import type { Destination, Flow, HostPort, ListenSpec, TransportProtocol, TransportUser } from '../transport/types.js';
import { type RequestLimits, checkRequest, reasonFromParseError } from './request-checks.js';
import { salvageResponse } from './salvage.js';
import type { SourceGate, StackTransport, StackUser } from './types.js';
import { unbracket } from '../transport/address.js';

export interface StackOptions {
  logger: Logger;
  /** Builds the transport with the stack as its user (a TransportLayer, or an in-memory one in tests). */
  createTransport: (user: TransportUser) => StackTransport;
  /** Host written in Via/Record-Route for listeners bound to a wildcard address. */
  advertise?: string;
  maxMessageSize?: number;
  /** `Server` header on responses the stack itself generates; '' for none. */
  serverHeader?: string;
  timers?: Timers;
  timing?: Partial<TimerConfig>;
  /**
   * 100 Trying for INVITEs (TransactionLayerOptions.sendTrying); 'deferred' by default: a 407 challenge
   * or a refusal decided in the same turn of the event loop goes out without a 100 before it.
   */
  sendTrying?: boolean | 'deferred';
  /** Flood bans and rate limits, asked before parsing (security/). */
  gate?: SourceGate;
  /** What one message may cost (config `limits`); nothing beyond `maxMessageSize` is checked without it. */
  limits?: StackLimits;
}

/** The config `limits` section as the stack applies it. */
export interface StackLimits extends RequestLimits {
  /** Per transport, under `maxMessageSize`: larger requests get 513 before they are parsed. */
  maxMessageSize: Partial<Record<TransportProtocol, number>>;
  maxHeaders: number;
  /** Bytes held by server transactions before new requests outside dialogs get 503 (TransactionLayerOptions.memoryLimit). */
  transactionMemory: number;
  /** User-Agent substrings, any case, of scanners whose requests are dropped without an answer. */
  scannerUserAgents: string[];
}

/** How a stopping stack treats what still arrives (Stack.drain). */
export interface DrainOptions {
  /** Seconds in the Retry-After of the 503s to new requests (RFC 3261 §21.5.4, §20.33). */
  retryAfter: number;
  /**
   * Cluster rolling restart: offered every message no live transaction here claims (a new request, an
   * in-dialog request, a stray response), raw as it arrived; true when another process took it.
   */
  handOff?: (data: Buffer, flow: Flow) => boolean;
}

export interface StackStats {
  received: number;
  /** Messages dropped unparsed: their source is banned or over its request rate. */
  dropped: number;
  parseErrors: number;
  rejected: number;
  droppedResponses: number;
  /** Requests dropped because their User-Agent names a scanner. */
  scanners: number;
  /** New requests answered 503 because the server transactions held `transactionMemory` bytes. */
  overBudget: number;
}

/** RFC 3261 §21.5.4: how long a client refused for memory pressure waits (transactions end within 32 s). */
const OVER_BUDGET_RETRY_AFTER = '10';
/** A scanner source is logged at most once in this long. */
const SCANNER_LOG_INTERVAL_MS = 60_000;

/**
 * The SIP stack: transports + transactions + the checks every message passes. Knows nothing of
 * registrars or proxies; it hands requests to its StackUser and offers the sending primitives.
 */
export class Stack implements TransportUser {
  readonly transactions: TransactionLayer;
  readonly transport: StackTransport;
  readonly stats: StackStats = { received: 0, dropped: 0, parseErrors: 0, rejected: 0, droppedResponses: 0, scanners: 0, overBudget: 0 };
  /** Requests and responses by method and code (`/metrics`): what was parsed, and the responses sent. */
  readonly counters = new MessageCounters();
  private readonly log: Logger;
  private readonly maxMessageSize: number;
  private readonly serverHeader: string;
  private readonly advertiseOption: string | undefined;
  private readonly gate: SourceGate | undefined;
  /** Stream flows a registered phone is on: exempt from the request-rate count. */
  private readonly authenticatedFlows = new Set<string>();
  private user: StackUser | undefined;
  private advertised = new Map<TransportProtocol, { host: string; port: number }>();
  private localHosts = new Set<string>();
  /** This stack's addresses and advertised names without port or brackets, lower-cased. */
  private localHostnames = new Set<string>();
  private readonly limits: StackLimits | undefined;
  private readonly scannerNeedles: string[];
  /** When each scanner source was last logged; pruned of entries over a minute old when it fills up. */
  private readonly scannersLogged = new Map<string, number>();
  private scannersPrunedAt = 0;
  private drainOptions: DrainOptions | undefined;
  /** While draining: when a message was last handled here (not refused, not handed off), ms. */
  private lastHandled = 0;

  constructor(options: StackOptions) {
    this.log = categoryLogger(options.logger, 'sip.core');
    this.maxMessageSize = options.maxMessageSize ?? 65535;
    this.serverHeader = options.serverHeader ?? 'softswitch';
    this.advertiseOption = options.advertise;
    this.gate = options.gate;
    this.limits = options.limits;
    this.scannerNeedles = (options.limits?.scannerUserAgents ?? []).map((s) => s.toLowerCase());
    this.transport = options.createTransport(this);
    this.transactions = new TransactionLayer({ transport: this.transport, logger: options.logger, timers: options.timers, timing: options.timing,
      sendTrying: options.sendTrying ?? 'deferred', memoryLimit: options.limits?.transactionMemory, counters: this.counters,
    });
  }

  /** The module that receives requests; set before start(). */
  setUser(user: StackUser): void {
    this.user = user;
  }

  async start(): Promise<void> {
    await this.transport.start();
    const fallback = this.advertiseOption ?? firstPublicIPv4() ?? '127.0.0.1';
    for (const l of this.transport.listeners) {
      const wildcard = l.address === '0.0.0.0' || l.address === '::';
      const host = wildcard ? fallback : l.address;
      if (!this.advertised.has(l.protocol)) this.advertised.set(l.protocol, { host: bracket(host), port: l.port });
      this.localHosts.add(`${bracket(host).toLowerCase()}:${l.port}`);
      if (wildcard) for (const a of allLocalAddresses()) this.localHosts.add(`${bracket(a)}:${l.port}`);
      else this.localHosts.add(`${bracket(l.address)}:${l.port}`);
    }
    if (this.advertiseOption !== undefined) for (const l of this.transport.listeners) this.localHosts.add(`${this.advertiseOption.toLowerCase()}:${l.port}`);
    for (const hp of this.localHosts) this.localHostnames.add(unbracket(hp.slice(0, hp.lastIndexOf(':'))));
    this.log.info({ listeners: this.transport.listeners.map(formatListen) }, 'listening');
  }

  /** Transports first (nothing new arrives), then the transactions and their timers. */
  async stop(): Promise<void> {
    await this.transport.stop();
    this.transactions.stop();
  }

  /**
   * Graceful shutdown, first step: from now on a request outside any dialog (no To tag, RFC 3261 §12)
   * that is no retransmission of a live transaction is answered 503 with Retry-After (through a
   * transaction, so its retransmissions and the ACK are absorbed; §21.5.4: the client tries another
   * server or later), or handed off (options.handOff). Everything else goes on: retransmissions, ACK,
   * CANCEL, in-dialog requests (a BYE of a call in progress), responses. `whenIdle` says when to stop.
   */
  drain(options: DrainOptions): void {
    this.drainOptions = options;
    this.lastHandled = Date.now();
    this.log.info({ pending: this.transactions.pending, handOff: options.handOff !== undefined }, 'draining: new requests are refused');
  }

  get draining(): boolean {
    return this.drainOptions !== undefined;
  }

  /**
   * Resolves once no transaction awaits a final response and no message has been handled or refused for
   * `quietMs` (in-dialog requests of calls still up come at any time, a load balancer keeps sending until
   * it notices the 503s; quiet says both have stopped). Handed-off messages do not count.
   * Polled every 50 ms, only while someone waits.
   */
  whenIdle(quietMs: number): Promise<void> {
    return new Promise((resolveIdle) => {
      const check = (): void => {
        if (this.transactions.pending === 0 && Date.now() - this.lastHandled >= quietMs) resolveIdle();
        else setTimeout(check, 50).unref();
      };
      check();
    });
  }

  get listeners(): ListenSpec[] {
    return this.transport.listeners;
  }

  /**
   * A registered phone's connection: under connection pressure the transport sheds unauthenticated
   * connections and keeps this one (no-op for UDP and for transports without the notion).
   */
  markFlowAuthenticated(flow: Flow): void {
    this.transport.markAuthenticated?.(flow.id);
    // Its requests no longer count against the flood limit of its address (an office NAT's phones).
    if (flow.protocol !== 'udp' && this.gate !== undefined) this.authenticatedFlows.add(flow.id);
  }

  /** The transport asks before anything else: a datagram or a new connection from a banned source is dropped. */
  admit(remote: HostPort): boolean {
    if (this.gate === undefined || this.gate.admit(remote.address)) return true;
    this.stats.dropped++;
    return false;
  }

  /** host:port this stack puts in Via / Record-Route for a transport, if it listens on it. */
  advertisedAddress(protocol: TransportProtocol): { host: string; port: number } | undefined {
    return this.advertised.get(protocol);
  }

  /** Whether host:port names this stack (loop detection, Route processing, §16.4). */
  isLocal(host: string, port: number | undefined, protocol: TransportProtocol = 'udp'): boolean {
    const h = bracket(host).toLowerCase();
    const p = port ?? (protocol === 'tls' || protocol === 'wss' ? 5061 : 5060);
    return this.localHosts.has(`${h}:${p}`) || (port === undefined && [...this.advertised.values()].some((a) => a.host === h));
  }

  /** Whether a host (name or address, brackets optional, any port) is one of this stack's own. */
  isLocalHost(host: string): boolean {
    return this.localHostnames.has(unbracket(host).toLowerCase());
  }

  /** A Via value for a request this stack sends over `protocol`, with a fresh branch. */
  viaFor(protocol: TransportProtocol, branch: string = newBranch()): string {
    const a = this.advertised.get(protocol);
    if (a === undefined) throw new TypeError(`no ${protocol} listener to send from`);
    return `SIP/2.0/${protocol.toUpperCase()} ${a.host}:${a.port};branch=${branch};rport`;
  }

  // ---- sending ----------------------------------------------------------------------------------

  /** Sends a request statefully: adds the top Via for the destination's transport, then a client transaction. */
  sendRequest(request: SipRequest, destination: Destination, user: ClientTransactionUser): ClientTransaction {
    request.prepend('Via', this.viaFor(destination.protocol));
    return this.transactions.sendRequest(request, destination, user);
  }

  /** Answers within a server transaction; adds the Server header. */
  respond(transaction: ServerTransaction, status: number, options: ResponseOptions = {}): SipResponse {
    const response = createResponse(transaction.request, status, this.withServer(options));
    transaction.respond(response);
    return response;
  }

  /** Answers a request without a transaction (RFC 3261 §8.2.7 stateless UAS behaviour). */
  respondStateless(request: SipRequest, flow: Flow, status: number, options: ResponseOptions = {}): void {
    const res = createResponse(request, status, this.withServer(options));
    this.counters.responseSent(request.method, status);
    this.sendData(serializeMessage(res), responseDestination(request.topVia, flow));
  }

  /** Sends any message without a transaction (ACK for 2xx, stateless forwarding of responses). */
  sendStateless(message: SipRequest | SipResponse, destination: Destination): void {
    if (message instanceof SipResponse) this.counters.responseSent(message.cseq?.method, message.status);
    this.transport.send(serializeMessage(message), destination).catch((err: Error) => {
      this.log.info({ err: err.message, to: `${destination.protocol}:${destination.address}:${destination.port}` }, 'stateless send failed');
    });
  }

  // ---- receiving (TransportUser) ----------------------------------------------------------------

  onMessage(data: Buffer, flow: Flow): void {
    this.stats.received++;
    if (this.gate !== undefined) {
      const source = flow.remote.address;
      // A response starts "SIP/"; a request's method token cannot contain '/'.
      const response = data.length > 4 && data[0] === 0x53 && data[1] === 0x49 && data[2] === 0x50 && data[3] === 0x2f;
      if (!this.gate.admit(source) || (!response && !this.authenticatedFlows.has(flow.id) && !this.gate.request(source))) {
        this.stats.dropped++;
        return;
      }
    }
    let msg: SipRequest | SipResponse;
    const limit = this.limits?.maxMessageSize[flow.protocol];
    if (limit !== undefined && data.length > limit) {
      this.stats.parseErrors++;
      this.onUnparseable(data, flow, new SipParseError('SIP_ERR_TOO_LARGE', `message of ${data.length} bytes exceeds ${limit} for ${flow.protocol}`));
      return;
    }
    try {
      msg = parseMessage(data, { maxMessageSize: this.maxMessageSize, maxHeaders: this.limits?.maxHeaders });
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      this.stats.parseErrors++;
      this.onUnparseable(data, flow, err);
      return;
    }
    try {
      if (msg instanceof SipRequest) this.onRequest(msg, flow, data);
      else this.onResponse(msg, flow, data);
    } catch (err) {
      // A lazily parsed header that is malformed, or a bug in a module: one log line, never the process.
      if (err instanceof SipParseError && msg instanceof SipRequest && msg.method !== 'ACK') {
        this.rejectStateless(msg, flow, 400, reasonFromParseError(err));
      }
      this.log.warn({ err: (err as Error).message, from: remoteOf(flow), callId: msg.callId }, 'message handling failed');
    }
  }

  onFlowClosed(flow: Flow, reason: string): void {
    this.authenticatedFlows.delete(flow.id);
    this.user?.onFlowClosed?.(flow, reason);
  }

  private onUnparseable(data: Buffer, flow: Flow, err: SipParseError): void {
    this.log.info({ from: remoteOf(flow), code: err.code, err: err.message }, 'malformed message');
    // RFC 3261 §21.5.11: 513 Message Too Large; everything else the parser refuses is a 400.
    const salvaged = err.code === 'SIP_ERR_TOO_LARGE'
      ? salvageResponse(data, 513, 'Message Too Large')
      : salvageResponse(data, 400, reasonFromParseError(err));
    if (salvaged === undefined) return;
    let destination: Destination = { protocol: flow.protocol, address: flow.remote.address, port: flow.remote.port, flowId: flow.id };
    try {
      const via = parseVia(salvaged.topVia)[0];
      if (via !== undefined) {
        stampReceived(via, flow);
        destination = responseDestination(via, flow);
      }
    } catch {
      // The Via itself is broken: answer where the request came from.
    }
    this.sendData(salvaged.data, destination);
  }

  private onRequest(req: SipRequest, flow: Flow, data: Buffer): void {
    this.counters.request(req.method);
    const via = req.topVia;
    if (via === undefined) {
      this.log.info({ from: remoteOf(flow) }, 'request without Via dropped');
      return;
    }
    // RFC 3261 §18.2.1 and RFC 3581 §4: record where the request really came from.
    if (stampReceived(via, flow)) req.replaceFirstValue('via', via.toString());

    if (this.scannerNeedles.length > 0 && this.isScanner(req, flow)) return;

    const rejection = checkRequest(req, this.limits);
    if (rejection !== undefined) {
      this.stats.rejected++;
      if (req.method !== 'ACK') this.rejectStateless(req, flow, rejection.status, rejection.reason, rejection.headers);
      this.log.info({ from: remoteOf(flow), status: rejection.status, reason: rejection.reason, callId: req.callId }, 'request rejected');
      return;
    }

    if (this.drainOptions !== undefined && this.refuseWhileDraining(req, flow, data, this.drainOptions)) return;
    if (req.method !== 'ACK' && req.method !== 'CANCEL' && this.user?.onStatelessRequest?.(req, flow) === true) return;

    const incoming = this.transactions.receiveRequest(req, flow);
    switch (incoming.kind) {
      case 'new':
        if (this.user === undefined) {
          this.respond(incoming.transaction, 503);
          return;
        }
        this.user.onRequest(req, incoming.transaction, incoming.cancels);
        return;
      case 'ack':
        this.user?.onAck?.(req, flow, incoming.transaction);
        return;
      case 'over-budget':
        this.stats.overBudget++;
        this.respondStateless(req, flow, 503, { headers: [['Retry-After', OVER_BUDGET_RETRY_AFTER]] });
        if (this.stats.overBudget % 1000 === 1) {
          this.log.warn({ from: remoteOf(flow), heldBytes: this.transactions.heldBytes, refused: this.stats.overBudget }, 'transaction memory full: new requests answered 503');
        }
        return;
      case 'retransmission':
        this.counters.retransmission(req.method);
        return;
      default:
        return; // ACK absorbed by its transaction
    }
  }

  private onResponse(res: SipResponse, flow: Flow, data: Buffer): void {
    // The parser has checked the CSeq (it routes on it): reading it here throws nothing.
    this.counters.responseReceived(res.cseq?.method, res.status);
    const via = res.topVia;
    // RFC 3261 §18.1.2: a response whose top Via this element did not insert is discarded.
    if (via === undefined || !this.isLocal(via.host, via.port, flow.protocol)) {
      this.stats.droppedResponses++;
      this.log.debug({ from: remoteOf(flow), via: via?.toString() }, 'response not for us dropped');
      return;
    }
    if (this.transactions.receiveResponse(res, flow)) {
      if (this.drainOptions !== undefined) this.lastHandled = Date.now();
      return;
    }
    if (this.drainOptions?.handOff?.(data, flow) === true) return;
    if (this.user?.onStrayResponse !== undefined) this.user.onStrayResponse(res, flow);
    else this.stats.droppedResponses++;
  }

  /**
   * A User-Agent of the scanner list: the request is dropped without an answer (an answer confirms that a
   * SIP server lives here, as Kamailio scripts that `exit` on them), counted, and logged once per source
   * per minute.
   */
  private isScanner(req: SipRequest, flow: Flow): boolean {
    const ua = req.get('user-agent');
    if (ua === undefined) return false;
    const lower = ua.toLowerCase();
    const needles = this.scannerNeedles;
    let hit = false;
    for (let i = 0; i < needles.length && !hit; i++) hit = lower.includes(needles[i]!);
    if (!hit) return false;
    this.stats.scanners++;
    const now = Date.now();
    const source = flow.remote.address;
    const last = this.scannersLogged.get(source);
    if (last !== undefined && now - last < SCANNER_LOG_INTERVAL_MS) return true;
    // Bounded: spoofed UDP sources could otherwise fill the map. When full, entries over a minute old are
    // pruned (at most once a second); while it stays full, new sources are not logged.
    if (last === undefined && this.scannersLogged.size >= 10_000) {
      if (now - this.scannersPrunedAt < 1000) return true;
      this.scannersPrunedAt = now;
      for (const [k, at] of this.scannersLogged) if (now - at >= SCANNER_LOG_INTERVAL_MS) this.scannersLogged.delete(k);
      if (this.scannersLogged.size >= 10_000) return true;
    }
    this.scannersLogged.set(source, now);
    this.log.warn({ from: remoteOf(flow), userAgent: ua.slice(0, 80), method: req.method }, 'scanner dropped (further requests from this source are not logged for a minute)');
    return true;
  }

  /**
   * Drain (see drain()): true when the request was handed off or refused. A retransmission, an ACK or
   * CANCEL of a live transaction stays here; anything else is handed off when a successor takes it;
   * failing that, in-dialog requests and ACKs stay here and new ones get 503.
   */
  private refuseWhileDraining(req: SipRequest, flow: Flow, data: Buffer, drain: DrainOptions): boolean {
    const live = this.transactions.matchesServer(req);
    if (!live && drain.handOff?.(data, flow) === true) return true;
    // A refused request counts too: a load balancer still sending here has not noticed yet.
    this.lastHandled = Date.now();
    if (live || req.method === 'ACK' || req.method === 'CANCEL' || req.to?.tag !== undefined) return false;
    const incoming = this.transactions.receiveRequest(req, flow);
    if (incoming.kind === 'new') {
      this.respond(incoming.transaction, 503, { reason: 'Service Unavailable (shutting down)', headers: [['Retry-After', String(drain.retryAfter)]] });
    }
    return true;
  }

  /** A response without a transaction (to a request that failed the checks). */
  private rejectStateless(req: SipRequest, flow: Flow, status: number, reason: string, headers?: Array<[string, string]>): void {
    if (req.topVia === undefined) return;
    this.respondStateless(req, flow, status, { reason, headers });
  }

  private sendData(data: Buffer, destination: Destination): void {
    this.transport.send(data, destination).catch((err: Error) => {
      this.log.info({ err: err.message, to: `${destination.protocol}:${destination.address}:${destination.port}` }, 'response not delivered');
    });
  }

  private withServer(options: ResponseOptions): ResponseOptions {
    if (this.serverHeader === '') return options;
    return { ...options, headers: [...(options.headers ?? []), ['Server', this.serverHeader]] };
  }
}

/**
 * §18.2.1: add `received` when the sent-by host differs from the packet's source; RFC 3581 §4: fill an
 * empty `rport` with the source port (and then always add `received`). Returns whether the Via changed.
 */
function stampReceived(via: Via, flow: Flow): boolean {
  const source = flow.remote.address;
  let changed = false;
  const hasRport = via.params.has('rport');
  if (hasRport || unbracket(via.host) !== source) {
    if (via.params.get('received') !== source) {
      via.params.set('received', source);
      changed = true;
    }
  }
  if (hasRport && via.params.get('rport') !== String(flow.remote.port)) {
    via.params.set('rport', String(flow.remote.port));
    changed = true;
  }
  return changed;
}

function remoteOf(flow: Flow): string {
  return `${flow.protocol}:${flow.remote.address}:${flow.remote.port}`;
}

function formatListen(l: ListenSpec): string {
  return `${l.protocol}:${isIP(l.address) === 6 ? `[${l.address}]` : l.address}:${l.port}`;
}

function bracket(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}


function firstPublicIPv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

function allLocalAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.push(a.address.toLowerCase());
  return out;
}
