/**
 * The Janus nodes of `meetings.janus` as a pool (issue 19, item 9): which node a new meeting's room goes to, which
 * nodes answer, and what each carries.
 *
 * - **Placement**: a meeting's room goes to the node with the least load relative to its capacity (`capacity`, in
 *   forwarded streams), among the nodes that answer; a node at its capacity takes no new room (503 when none can).
 *   The load is counted from SQL (sql/0014_meeting_nodes.ts with the participant rows: PlacementRepository.loads),
 *   so every worker and every softswitch node sees the same numbers and places alike; ties go to the node listed
 *   first. The placement itself is a row (the first worker's choice wins), read by every request about the meeting.
 * - **Health**: every `healthIntervalMs` each node's Admin API is asked `info`; after `downAfter` checks in a row
 *   without an answer the node is down (logged at error, `softswitch_janus_node_up` 0) and the pool says so
 *   (`down` event): the focus moves that node's meetings to another node. A node that answers again is up again and
 *   takes new rooms; the meetings moved away stay where they are. Each worker checks for itself (a worker that cannot
 *   reach a node does not use it); moving a meeting is a compare-and-set of its row, so one worker moves each.
 */
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../src/log/index.js';
import type { NodeLoad, PlacementRepository } from '../platform/store/index.js';
import type { JanusNode } from './janus-node.js';
import { MeetingError } from './meetings.js';

export interface PoolNode {
  node: JanusNode;
  /** Forwarded streams it may carry (meetings.janus[].capacity). */
  capacity: number;
}

export interface JanusPoolOptions {
  nodes: readonly PoolNode[];
  placements: PlacementRepository;
  /** How often each node is checked (default 2000 ms). */
  healthIntervalMs?: number | undefined;
  /** Checks in a row without an answer before a node is down (default 2). */
  downAfter?: number | undefined;
  logger?: Logger | undefined;
}

/** A node as /metrics shows it: up or not, its capacity and its load. */
export interface NodeStatus extends NodeLoad {
  up: boolean;
  capacity: number;
}

interface Health {
  up: boolean;
  failures: number;
}

const DEFAULT_INTERVAL_MS = 2000;
const DEFAULT_DOWN_AFTER = 2;
/** Retry-After of a 503 when no node can take a room. */
const NO_NODE_RETRY_S = 10;

export class JanusPool extends EventEmitter<{ down: [JanusNode]; up: [JanusNode] }> {
  readonly intervalMs: number;
  readonly downAfter: number;
  private readonly health = new Map<JanusNode, Health>();
  private readonly capacities = new Map<JanusNode, number>();
  private loads: NodeLoad[] = [];
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(private readonly options: JanusPoolOptions) {
    super();
    this.intervalMs = options.healthIntervalMs ?? DEFAULT_INTERVAL_MS;
    this.downAfter = options.downAfter ?? DEFAULT_DOWN_AFTER;
    this.log = options.logger ?? silentLogger();
    for (const { node, capacity } of options.nodes) {
      this.health.set(node, { up: true, failures: 0 });
      this.capacities.set(node, capacity);
    }
  }

  /** Which node holds each meeting's room (the rows every worker reads). */
  get placements(): PlacementRepository {
    return this.options.placements;
  }

  get size(): number {
    return this.options.nodes.length;
  }

  /** The configured node of that URL; undefined for a node this server does not know (any more). */
  byUrl(url: string): JanusNode | undefined {
    return this.options.nodes.find((n) => n.node.url === url)?.node;
  }

  /** Up until `downAfter` checks in a row went unanswered; up again at the first answer. */
  isUp(node: JanusNode): boolean {
    return this.health.get(node)?.up ?? false;
  }

  /**
   * The node a new room goes to: the least loaded for its capacity among those up and below capacity, `except` the
   * node a meeting is leaving. 503 when there is none.
   */
  async choose(except?: string): Promise<JanusNode> {
    if (this.size === 0) throw new MeetingError('MEETING_ERR_UNAVAILABLE', 'meetings need a Janus node (meetings.janus)');
    const loads = new Map((await this.options.placements.loads()).map((l) => [l.node, l.streams]));
    let best: { node: JanusNode; share: number } | undefined;
    for (const { node, capacity } of this.options.nodes) {
      if (node.url === except || !this.isUp(node)) continue;
      const streams = loads.get(node.url) ?? 0;
      if (streams >= capacity) continue;
      const share = streams / capacity;
      if (best === undefined || share < best.share) best = { node, share };
    }
    if (best !== undefined) return best.node;
    const up = this.options.nodes.filter((n) => n.node.url !== except && this.isUp(n.node)).length;
    throw new MeetingError('MEETING_ERR_UNAVAILABLE', up === 0 ? 'no Janus node is available for meetings now' : 'every Janus node is at its capacity', NO_NODE_RETRY_S);
  }

  /** Starts the health checks (the first one at once). */
  start(): void {
    if (this.timer !== undefined || this.size === 0) return;
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round of checks (a round still running is waited for, not doubled). */
  check(): Promise<void> {
    this.checking ??= this.round().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  /** Every node's state as of the last round, for /metrics. */
  status(): NodeStatus[] {
    const loads = new Map(this.loads.map((l) => [l.node, l]));
    return this.options.nodes.map(({ node, capacity }) => ({
      node: node.url, up: this.isUp(node), capacity, rooms: loads.get(node.url)?.rooms ?? 0, participants: loads.get(node.url)?.participants ?? 0, streams: loads.get(node.url)?.streams ?? 0,
    }));
  }

  private async round(): Promise<void> {
    await Promise.all(this.options.nodes.map(async ({ node }) => this.verdict(node, await node.ping())));
    try {
      this.loads = await this.options.placements.loads();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'janus nodes: the load could not be read (the store); /metrics keeps the last');
    }
  }

  private verdict(node: JanusNode, answered: boolean): void {
    const h = this.health.get(node)!;
    if (answered) {
      h.failures = 0;
      if (h.up) return;
      h.up = true;
      this.log.warn({ node: node.url }, 'janus node answers again: it takes new rooms');
      this.emit('up', node);
      return;
    }
    h.failures++;
    if (!h.up || h.failures < this.downAfter) return;
    h.up = false;
    this.log.error({ node: node.url, checks: h.failures }, 'janus node down: its meetings move to another node');
    this.emit('down', node);
  }
}
