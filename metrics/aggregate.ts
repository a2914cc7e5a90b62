/**
 * One `/metrics` answer for the whole node: the worker that receives the scrape adds its own snapshot to
 * the ones the other workers sent (through the cluster channel, server/cluster) with prom-client's
 * AggregatorRegistry.aggregate, which combines each metric's series with equal labels by the metric's
 * `aggregator` (registry.ts says which). A worker that did not answer in time is left out and counted in
 * `softswitch_scrape_workers_missing`: a scrape never fails because one worker is busy or restarting.
 */
import { AggregatorRegistry, Gauge, type Registry } from 'prom-client';
import { categoryLogger, type Logger } from '../src/log/index.js';
import type { MetricsSnapshot, ProcessMetrics } from './registry.js';

/** How long the answering worker waits for the others' snapshots. */
export const PEER_TIMEOUT_MS = 1000;

/** The other workers of the node, as the scrape sees them (ClusterWorker implements it). */
export interface MetricsPeers {
  /** Every other worker's snapshot that arrives within `timeoutMs`, and how many workers sent none. */
  collect(timeoutMs: number): Promise<{ snapshots: unknown[]; missing: number }>;
}

export interface NodeMetricsOptions {
  local: ProcessMetrics;
  /** Absent for a single process (`--workers 1`). */
  peers?: MetricsPeers | undefined;
  logger: Logger;
  peerTimeoutMs?: number;
}

export class NodeMetrics {
  private readonly local: ProcessMetrics;
  private readonly peers: MetricsPeers | undefined;
  private readonly log: Logger;
  private readonly peerTimeoutMs: number;

  constructor(options: NodeMetricsOptions) {
    this.local = options.local;
    this.peers = options.peers;
    this.log = categoryLogger(options.logger, 'metrics');
    this.peerTimeoutMs = options.peerTimeoutMs ?? PEER_TIMEOUT_MS;
  }

  /** The Content-Type of `scrape()`'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.local.registry.contentType;
  }

  /** The node's metrics in Prometheus text format. */
  async scrape(): Promise<string> {
    const [own, others] = await Promise.all([
      this.local.snapshot(),
      this.peers?.collect(this.peerTimeoutMs) ?? Promise.resolve({ snapshots: [], missing: 0 }),
    ]);
    const registry = aggregateSnapshots(own, others.snapshots, this.log);
    new Gauge({
      name: 'softswitch_scrape_workers_missing',
      help: `Workers that did not send their metrics within ${this.peerTimeoutMs} ms of this scrape (left out of the sums).`,
      registers: [registry],
    }).set(others.missing);
    return registry.metrics();
  }
}

/**
 * The registry of `own` combined with the other workers' snapshots. A snapshot that is not an array of
 * metrics, or one metric prom-client cannot combine, is left out with a log line (a worker of another
 * version during a rolling restart): the rest of the scrape stands.
 */
export function aggregateSnapshots(own: MetricsSnapshot, others: unknown[], logger: Logger): Registry {
  const usable: MetricsSnapshot[] = [own];
  for (const s of others) {
    if (Array.isArray(s) && s.every(isMetric)) usable.push(s as MetricsSnapshot);
    else logger.warn('a worker\'s metrics snapshot is malformed; left out of the scrape');
  }
  try {
    return AggregatorRegistry.aggregate(usable);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'the workers\' metrics could not be combined; this worker\'s alone are answered');
    return AggregatorRegistry.aggregate([own]);
  }
}

/** prom-client's aggregators (metricAggregators.js): any other name makes aggregate() throw. */
const AGGREGATORS = new Set(['sum', 'first', 'min', 'max', 'average', 'omit']);

function isMetric(m: unknown): boolean {
  if (m === null || typeof m !== 'object') return false;
  const { name, type, values, aggregator } = m as Record<string, unknown>;
  return typeof name === 'string' && typeof type === 'string' && Array.isArray(values) && typeof aggregator === 'string' && AGGREGATORS.has(aggregator);
}
