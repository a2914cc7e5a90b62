/**
 * `GET /metrics` (Prometheus text format) on the HTTP listener. Registered on the root of the server's
 * Fastify instance, so the server's one onRequest hook asks for an admin token as on every route but
 * `/health`: Prometheus sends it with `authorization.credentials_file` (README "Metrics").
 */
import type { FastifyInstance } from 'fastify';
import type { NodeMetrics } from './aggregate.js';
import type { ProcessMetrics } from './registry.js';

export const METRICS_PATH = '/metrics';

/**
 * Adds `GET /metrics` and counts every HTTP answer of the server in `local` (by the route's template). Called on
 * the root instance before the server starts: a root hook reaches the routes of every plugin.
 */
export function metricsRoute(app: FastifyInstance, metrics: NodeMetrics, local: ProcessMetrics): void {
  app.addHook('onResponse', async (req, reply) => {
    local.httpAnswered(req.method, req.routeOptions.url, reply.statusCode);
  });
  app.get(METRICS_PATH, async (_req, reply) => {
    const text = await metrics.scrape();
    return reply.code(200).header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
