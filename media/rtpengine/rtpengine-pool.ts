/**
 * A pool of rtpengine nodes, after undici's balanced-pool: a weighted choice for each new call, and from
 * then on the call sticks to the node that took its offer (its ports and keys live there). A node that
 * times out or refuses for lack of capacity is left out for `downtimeMs` and the offer goes to the next
 * one; health-check pings bring a node back as soon as it answers.
 */
import { categoryLogger, type Logger } from '../../src/log/index.js';
import { NgClient } from './ng-client.js';
import { parseRtpengineNode, rtpengineNodeId } from './node-spec.js';
import { RtpengineError } from './rtpengine-error.js';
import type {
  NgAnswerRequest, NgCallRequest, NgDeleteRequest, NgOfferRequest, NgReply, NgRequest, NgSdpReply,
  RtpengineNodeSpec, RtpengineNodeStats, RtpenginePoolOptions,
} from './types.js';

const DEFAULT_DOWNTIME_MS = 30_000;
const DEFAULT_PING_INTERVAL_MS = 10_000;
const DEFAULT_STICKY_TTL_MS = 12 * 3600_000;
const DEFAULT_TIMEOUT_MS = 3000;

/**
 * error-reasons by which rtpengine says "not me, try another": out of media ports, or over one of its
 * load limits (max-sessions, max-load, max-cpu, max-bandwidth; daemon/control_ng.c).
 */
const OVERLOAD_REASONS = [
  'Ran out of ports',
  'Parallel session limit reached',
  'CPU usage limit exceeded',
  'Load limit exceeded',
  'Bandwidth limit exceeded',
];
/** error-reasons meaning the node does not know the call (so another node may). */
const UNKNOWN_CALL_REASONS = ['Unknown call-id', 'Call-ID not found'];

interface PoolNode {
  id: string;
  spec: RtpengineNodeSpec;
  client: NgClient;
  up: boolean;
  downUntil: number | undefined;
  failures: number;
  lastLatencyMs: number | undefined;
  lastError: string | undefined;
  calls: number;
  pinging: boolean;
}

interface Sticky {
  node: PoolNode;
  expiresAt: number;
}

export class RtpenginePool {
  private readonly log: Logger;
  private readonly nodes: PoolNode[];
  private readonly sticky = new Map<string, Sticky>();
  private readonly downtimeMs: number;
  private readonly pingIntervalMs: number;
  private readonly stickyTtlMs: number;
  private readonly timeoutMs: number;
  private readonly random: () => number;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private sticksSinceSweep = 0;
  private closed = false;

  constructor(options: RtpenginePoolOptions) {
    this.log = categoryLogger(options.logger, 'media.rtpengine');
    this.downtimeMs = nonNegative(options.downtimeMs, DEFAULT_DOWNTIME_MS, 'downtimeMs');
    this.pingIntervalMs = nonNegative(options.pingIntervalMs, DEFAULT_PING_INTERVAL_MS, 'pingIntervalMs');
    this.stickyTtlMs = nonNegative(options.stickyTtlMs, DEFAULT_STICKY_TTL_MS, 'stickyTtlMs');
    this.timeoutMs = nonNegative(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? Date.now;
    const seen = new Set<string>();
    this.nodes = options.nodes.map((n) => {
      const spec = typeof n === 'string' ? parseRtpengineNode(n) : checkSpec(n);
      const id = rtpengineNodeId(spec);
      if (seen.has(id)) throw new TypeError(`rtpengine node ${id} is listed twice`);
      seen.add(id);
      const client = new NgClient({ host: spec.host, port: spec.port, logger: this.log, timeoutMs: this.timeoutMs, retransmitMs: options.retransmitMs });
      return { id, spec, client, up: true, downUntil: undefined, failures: 0, lastLatencyMs: undefined, lastError: undefined, calls: 0, pinging: false };
    });
  }

  /** How many nodes are configured (0: no media relay). */
  get size(): number {
    return this.nodes.length;
  }

  /** Starts the health-check pings (an unref'd timer: it never keeps the process alive). */
  start(): void {
    this.assertOpen();
    if (this.timer || this.pingIntervalMs === 0 || this.nodes.length === 0) return;
    this.timer = setInterval(() => void this.healthCheck(), this.pingIntervalMs);
    this.timer.unref();
  }

  /** Stops the pings and closes every node's client; pending commands reject with RTPENGINE_ERR_CLOSED. */
  stop(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const node of this.nodes) node.client.close();
    this.sticky.clear();
  }

  // ---- commands ------------------------------------------------------------------------------------

  /**
   * `offer`: a call already known goes to its node; a new call (or one whose node is down) goes to a
   * node chosen by weight, and on a timeout or an overload answer to the next one.
   */
  async offer(request: NgOfferRequest): Promise<NgSdpReply> {
    this.assertOpen();
    const callId = requireString(request['call-id'], 'call-id');
    const known = this.stickyNode(callId);
    if (known && !this.isEligible(known)) {
      this.log.warn({ callId, node: known.id }, 'the node of this call is down: the re-offer goes to another node');
    }
    const tried = new Set<PoolNode>();
    let lastError: unknown;
    for (let node = this.nextForOffer(callId, tried); node; node = this.nextForOffer(callId, tried)) {
      tried.add(node);
      // stuck before the command goes out, so that the offer of a parallel fork branch of the same call
      // (same Call-ID, another via-branch) finds this node instead of drawing its own
      this.stick(callId, node);
      try {
        return sdpReply(await this.send(node, { ...request, command: 'offer' }), node);
      } catch (err) {
        if (!isFailover(err)) {
          if (!known) this.unstick(callId);
          throw err;
        }
        lastError = err;
        this.log.warn({ callId, node: node.id, err: (err as Error).message }, 'rtpengine node failed the offer, trying the next one');
      }
    }
    if (known) this.stick(callId, known);
    else this.unstick(callId);
    throw new RtpengineError(
      'RTPENGINE_ERR_NO_NODE',
      this.nodes.length === 0
        ? 'no rtpengine node configured'
        : `no rtpengine node could take the offer (${this.nodes.map((n) => `${n.id} ${n.up ? 'up' : 'down'}`).join(', ')})`,
      { cause: lastError },
    );
  }

  /** `answer`, to the node that took the offer. */
  async answer(request: NgAnswerRequest): Promise<NgSdpReply> {
    this.assertOpen();
    const { reply, node } = await this.toCallNode({ ...request, command: 'answer' });
    return sdpReply(reply, node);
  }

  /**
   * `delete`. Without `via-branch` the call is forgotten here; with it only that branch goes (a fork's
   * loser) and the call keeps its node.
   */
  async delete(request: NgDeleteRequest): Promise<NgReply> {
    this.assertOpen();
    const callId = requireString(request['call-id'], 'call-id');
    const known = this.stickyNode(callId);
    // the call is forgotten even when its node does not answer: its media is gone with the node
    if (request['via-branch'] === undefined) this.unstick(callId);
    let reply: NgReply;
    if (known) {
      reply = await this.send(known, { ...request, command: 'delete' });
    } else {
      // we do not know its node (our process restarted, or the TTL passed): ask every node that is up
      const candidates = this.nodes.filter((n) => this.isEligible(n));
      if (candidates.length === 0) throw this.noNode('delete');
      const results = await Promise.allSettled(candidates.map((n) => this.send(n, { ...request, command: 'delete' })));
      const ok = results.filter((r): r is PromiseFulfilledResult<NgReply> => r.status === 'fulfilled').map((r) => r.value);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (ok.length === 0) throw failed!.reason;
      reply = ok.find((r) => r.warning === undefined) ?? ok[0]!;
    }
    return reply;
  }

  /** `query`: the call's state and counters on its node. */
  async query(request: NgCallRequest): Promise<NgReply> {
    this.assertOpen();
    return (await this.toCallNode({ ...request, command: 'query' })).reply;
  }

  async startRecording(request: NgCallRequest): Promise<NgReply> {
    this.assertOpen();
    return (await this.toCallNode({ ...request, command: 'start recording' })).reply;
  }

  async stopRecording(request: NgCallRequest): Promise<NgReply> {
    this.assertOpen();
    return (await this.toCallNode({ ...request, command: 'stop recording' })).reply;
  }

  /** `list` on every node that is up: the Call-IDs each one holds (at most `limit` per node, default 32). */
  async list(options: { limit?: number } = {}): Promise<Array<{ node: string; calls: string[] }>> {
    this.assertOpen();
    const nodes = this.nodes.filter((n) => this.isEligible(n));
    return Promise.all(
      nodes.map(async (node) => {
        const reply = await this.send(node, { command: 'list', limit: options.limit });
        const calls = Array.isArray(reply.calls) ? reply.calls.filter((c): c is string => typeof c === 'string') : [];
        return { node: node.id, calls };
      }),
    );
  }

  /** Pings every node now (what the health-check timer does) and returns the stats after it. */
  async ping(): Promise<RtpengineNodeStats[]> {
    this.assertOpen();
    await this.healthCheck();
    return this.stats();
  }

  /** Per node: up or down, failures, last latency, calls stuck to it. */
  stats(): RtpengineNodeStats[] {
    return this.nodes.map((n) => ({
      id: n.id,
      host: n.spec.host,
      port: n.spec.port,
      weight: n.spec.weight,
      up: n.up,
      failures: n.failures,
      lastLatencyMs: n.lastLatencyMs,
      downUntil: n.up ? undefined : n.downUntil,
      lastError: n.lastError,
      calls: n.calls,
    }));
  }

  /** The node (`udp:host:port`) a call is stuck to, if any. */
  nodeOf(callId: string): string | undefined {
    return this.stickyNode(callId)?.id;
  }

  // ---- internals -----------------------------------------------------------------------------------

  /** Sends to the call's node; a call we have no node for is looked for on every node that is up. */
  private async toCallNode(request: NgRequest & { 'call-id': string }): Promise<{ reply: NgReply; node: PoolNode }> {
    const callId = requireString(request['call-id'], 'call-id');
    const known = this.stickyNode(callId);
    if (known) return { reply: await this.send(known, request), node: known };
    let lastError: unknown;
    for (const node of this.nodes.filter((n) => this.isEligible(n))) {
      try {
        const reply = await this.send(node, request);
        this.stick(callId, node);
        return { reply, node };
      } catch (err) {
        if (!(err instanceof RtpengineError) || (err.code === 'RTPENGINE_ERR_COMMAND' && !matches(err.reason, UNKNOWN_CALL_REASONS))) throw err;
        lastError = err;
      }
    }
    if (lastError) throw lastError;
    throw this.noNode(request.command);
  }

  /** One command to one node, with the node's bookkeeping: latency on success, down on failure. */
  private async send(node: PoolNode, request: NgRequest): Promise<NgReply> {
    const started = performance.now();
    try {
      const reply = await node.client.command(request);
      node.lastLatencyMs = Math.round((performance.now() - started) * 100) / 100;
      if (!node.up) this.markUp(node, `answered "${request.command}"`);
      return reply;
    } catch (err) {
      if (isFailover(err)) this.markDown(node, err as RtpengineError);
      throw err;
    }
  }

  /**
   * Weighted random choice among eligible nodes not yet tried: a node's chance is its weight over the
   * sum of weights. A node of weight 0 takes no new calls.
   */
  private choose(exclude: ReadonlySet<PoolNode>): PoolNode | undefined {
    const candidates = this.nodes.filter((n) => !exclude.has(n) && n.spec.weight > 0 && this.isEligible(n));
    if (candidates.length === 0) return undefined;
    const total = candidates.reduce((sum, n) => sum + n.spec.weight, 0);
    let r = this.random() * total;
    for (const node of candidates) {
      r -= node.spec.weight;
      if (r < 0) return node;
    }
    return candidates[candidates.length - 1];
  }

  /** For an offer: the call's node while it can still be tried, else a weighted choice among the rest. */
  private nextForOffer(callId: string, tried: ReadonlySet<PoolNode>): PoolNode | undefined {
    const current = this.sticky.get(callId)?.node;
    if (current && !tried.has(current) && this.isEligible(current)) return current;
    return this.choose(tried);
  }

  /** Up, or down long enough to deserve another try. */
  private isEligible(node: PoolNode): boolean {
    return node.up || (node.downUntil !== undefined && this.clock() >= node.downUntil);
  }

  private markDown(node: PoolNode, err: RtpengineError): void {
    node.failures++;
    node.lastError = err.message;
    node.downUntil = this.clock() + this.downtimeMs;
    if (node.up) {
      node.up = false;
      this.log.warn({ node: node.id, err: err.message, retryInMs: this.downtimeMs }, 'rtpengine node marked down');
    }
  }

  private markUp(node: PoolNode, why: string): void {
    node.up = true;
    node.downUntil = undefined;
    this.log.info({ node: node.id, why }, 'rtpengine node back up');
  }

  private async healthCheck(): Promise<void> {
    if (this.closed) return;
    this.sweepSticky();
    await Promise.all(
      this.nodes.map(async (node) => {
        if (node.pinging) return;
        node.pinging = true;
        try {
          const reply = await this.send(node, { command: 'ping' });
          if (reply.result !== 'pong') this.log.warn({ node: node.id, result: reply.result }, 'rtpengine answered ping without pong');
        } catch (err) {
          // send() has marked the node down on a timeout; anything else is only logged
          if (!isFailover(err) && !this.closed) this.log.warn({ node: node.id, err: (err as Error).message }, 'rtpengine ping failed');
        } finally {
          node.pinging = false;
        }
      }),
    );
  }

  private stickyNode(callId: string): PoolNode | undefined {
    const s = this.sticky.get(callId);
    if (!s) return undefined;
    const now = this.clock();
    if (now >= s.expiresAt) {
      this.unstick(callId);
      return undefined;
    }
    s.expiresAt = now + this.stickyTtlMs;
    return s.node;
  }

  private stick(callId: string, node: PoolNode): void {
    const previous = this.sticky.get(callId);
    if (previous?.node === node) {
      previous.expiresAt = this.clock() + this.stickyTtlMs;
      return;
    }
    if (previous) previous.node.calls--;
    this.sticky.set(callId, { node, expiresAt: this.clock() + this.stickyTtlMs });
    node.calls++;
    // calls never deleted (a lost BYE) must not pile up when the health-check timer is off
    if (++this.sticksSinceSweep >= 1024) this.sweepSticky();
  }

  private unstick(callId: string): void {
    const s = this.sticky.get(callId);
    if (!s) return;
    s.node.calls--;
    this.sticky.delete(callId);
  }

  private sweepSticky(): void {
    this.sticksSinceSweep = 0;
    const now = this.clock();
    for (const [callId, s] of this.sticky) if (now >= s.expiresAt) this.unstick(callId);
  }

  private noNode(command: string): RtpengineError {
    return new RtpengineError(
      'RTPENGINE_ERR_NO_NODE',
      this.nodes.length === 0 ? 'no rtpengine node configured' : `no rtpengine node is up for "${command}"`,
    );
  }

  private assertOpen(): void {
    if (this.closed) throw new RtpengineError('RTPENGINE_ERR_CLOSED', 'the rtpengine pool is stopped');
  }
}

/** Errors after which another node should be tried: no answer, or an answer saying it is full. */
function isFailover(err: unknown): boolean {
  if (!(err instanceof RtpengineError)) return false;
  if (err.code === 'RTPENGINE_ERR_TIMEOUT' || err.code === 'RTPENGINE_ERR_SEND') return true;
  return err.code === 'RTPENGINE_ERR_COMMAND' && matches(err.reason, OVERLOAD_REASONS);
}

function matches(reason: string | undefined, prefixes: readonly string[]): boolean {
  return reason !== undefined && prefixes.some((p) => reason.startsWith(p));
}

function sdpReply(reply: NgReply, node: PoolNode): NgSdpReply {
  if (typeof reply.sdp !== 'string') {
    throw new RtpengineError('RTPENGINE_ERR_REPLY', `rtpengine ${node.id} answered without an SDP`, { node: node.id });
  }
  return reply as NgSdpReply;
}

function requireString(value: unknown, key: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`ng request: "${key}" must be a non-empty string`);
  return value;
}

function checkSpec(spec: RtpengineNodeSpec): RtpengineNodeSpec {
  const weight = spec.weight ?? 1;
  if (typeof spec.host !== 'string' || spec.host === '' || !Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
    throw new TypeError(`rtpengine node ${JSON.stringify(spec)}: host and port required`);
  }
  if (!Number.isInteger(weight) || weight < 0) throw new TypeError(`rtpengine node ${spec.host}:${spec.port}: weight must be a non-negative integer`);
  return { host: spec.host, port: spec.port, weight };
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`RtpenginePool: ${name} must be a non-negative number of milliseconds`);
  return value;
}
