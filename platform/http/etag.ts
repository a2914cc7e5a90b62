/**
 * ETags where they are cheap: a GET under /v1/ answered 200 with JSON gets a weak ETag, a hash of the body
 * (RFC 9110 §8.8.3: weak, as the same data could be written with other bytes), and a request whose
 * If-None-Match names it gets 304 with no body (§13.1.2). The body is still built: this saves the transfer,
 * not the work. `Cache-Control: private, no-cache`: the answers are per token, so a shared cache keeps none,
 * and a browser asks again each time (a route that says otherwise, like no-store, keeps its word).
 * A route that sets its own ETag (file downloads) is left alone, and so is everything outside /v1/ (/metrics).
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

/** `W/"…"`: 128 bits of the body's SHA-256, base64url. */
export function weakEtag(body: string | Buffer): string {
  return `W/"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
}

/** RFC 9110 §13.1.2: `*`, or one of the listed tags by the weak comparison (§8.8.3.2: the W/ prefixes do not count). */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === opaque;
  });
}

export function addEtags(app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.method !== 'GET' || reply.statusCode !== 200 || !req.url.startsWith('/v1/') || reply.hasHeader('etag')) return payload;
    if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
    const type = reply.getHeader('content-type');
    if (typeof type !== 'string' || !type.startsWith('application/json')) return payload;
    const etag = weakEtag(payload);
    void reply.header('etag', etag);
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'private, no-cache');
    if (!noneMatch(req.headers['if-none-match'], etag)) return payload;
    // §15.4.5: a 304 has no body and no Content-Type.
    void reply.code(304).removeHeader('content-type');
    return null;
  });
}
