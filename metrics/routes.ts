/**
 * `GET /metrics` (Prometheus text format) on the HTTP listener. Registered on the root of the server's
 * Fastify instance, so the server's one onRequest hook asks for an admin token as on every route but
 * `/health`: Prometheus sends it with `authorization.credentials_file` (README "Metrics").
 */
import type { FastifyInstance } from 'fastify';
import type { NodeMetrics } from './aggregate.js';

export const METRICS_PATH = '/metrics';

export function metricsRoute(app: FastifyInstance, metrics: NodeMetrics): void {
  app.get(METRICS_PATH, async (_req, reply) => {
    const text = await metrics.scrape();
    return reply.code(200).header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
