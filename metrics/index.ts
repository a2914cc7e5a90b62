/**
 * Prometheus metrics (`GET /metrics`): each process's registry, read from the modules' stats at scrape
 * time (registry.ts), and the node's answer summed over its workers (aggregate.ts).
 */
export { ProcessMetrics, type MetricsSources, type MetricsSnapshot, type ProcessMetricsOptions } from './registry.js';
export { NodeMetrics, type MetricsPeers, type NodeMetricsOptions, PEER_TIMEOUT_MS, aggregateSnapshots } from './aggregate.js';
export { metricsRoute, METRICS_PATH } from './routes.js';
