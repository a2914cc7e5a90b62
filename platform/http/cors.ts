/**
 * CORS (Fetch standard §3.2) for the exact origins of http.corsOrigins, and for no other: with none configured
 * (the default) no CORS header is ever sent and a browser keeps every other site away from the API. A preflight
 * carries no credentials, so it is answered here, before the token check; the request that follows carries its
 * token like any other. Bearer tokens, not cookies: no Access-Control-Allow-Credentials.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

export const CORS_METHODS = 'GET, POST, PUT, DELETE';
export const CORS_REQUEST_HEADERS = 'Authorization, Content-Type, If-None-Match, Range';
/** What a page may read of an answer besides the safelisted headers (ETags, Retry-After, the token challenge, …). */
export const CORS_EXPOSED_HEADERS = 'ETag, Retry-After, WWW-Authenticate, Location, Content-Range, Content-Disposition';
/** How long a browser may keep a preflight's answer, seconds. */
export const CORS_MAX_AGE_S = 600;

/** An OPTIONS request a browser sends before a cross-origin one (Fetch §4.8 CORS-preflight fetch). */
export function isPreflight(req: FastifyRequest): boolean {
  return req.method === 'OPTIONS' && typeof req.headers.origin === 'string' && req.headers['access-control-request-method'] !== undefined;
}

/**
 * Adds the onRequest hook that grants `origins` (each `scheme://host[:port]`, as a browser sends Origin); to be
 * added before the token check, which then never sees a granted preflight. Nothing at all when `origins` is empty.
 */
export function allowOrigins(app: FastifyInstance, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  // The answer depends on Origin: a cache must not give one origin's answer to another. Added last, to what
  // the route said (the console's static files vary on Accept-Encoding).
  app.addHook('onSend', async (_req, reply, payload) => {
    const vary = reply.getHeader('vary');
    void reply.header('vary', vary === undefined || vary === '' ? 'Origin' : `${String(vary)}, Origin`);
    return payload;
  });
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (origin === undefined || !allowed.has(origin)) return;
    void reply.header('access-control-allow-origin', origin);
    if (!isPreflight(req)) {
      void reply.header('access-control-expose-headers', CORS_EXPOSED_HEADERS);
      return;
    }
    return reply.code(204)
      .header('access-control-allow-methods', CORS_METHODS)
      .header('access-control-allow-headers', CORS_REQUEST_HEADERS)
      .header('access-control-max-age', String(CORS_MAX_AGE_S))
      .send();
  });
}
