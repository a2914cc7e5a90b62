/**
 * The web console's static files, served on http.listen (HTTPS with http.tls) outside `/v1/`, without a token:
 * the pages ask for credentials themselves (a user's password for the softphone, an admin token for the admin
 * page) and send them only to `/v1/` and the SIP WebSocket.
 *
 *   GET /                        302 → /console/
 *   GET /console                 302 → /console/
 *   GET /console/                the softphone page (index.html)
 *   GET /console/<file>          a file of the built console (dist/console/web: HTML, JS, CSS)
 *   GET /console/config.json     where the SIP WebSockets listen and the default domain
 *
 * The files are read once at start into memory, and a request is answered only when its path is exactly one of
 * their names: nothing else on disk can be reached (`..`, encoded or not, names no file), and there is no
 * directory listing. Every answer carries a strict Content-Security-Policy (scripts, styles and fetches from this
 * origin only, plus the SIP WebSocket origins and the meetings' Janus nodes), `nosniff`, no framing, and an ETag;
 * `Cache-Control: no-cache` makes browsers revalidate (a 304 costs nothing) so a new build is never mixed with a
 * cached old file. Files go gzipped to clients that accept it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../src/log/index.js';

/** Where `npm run build` puts the bundle (scripts/build-console.mjs), next to this module in dist/. */
export const CONSOLE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** A SIP WebSocket listener (RFC 7118) the pages may connect to. */
export interface WebSocketListener {
  protocol: 'ws' | 'wss';
  port: number;
}

export interface ConsoleSiteOptions {
  /** The built files (default CONSOLE_DIR). */
  dir?: string;
  /** The SIP WebSocket listeners as bound now (ports chosen by the kernel are known only after start). */
  webSockets(): WebSocketListener[];
  /** The Janus API URLs of meetings.janus: a meeting page talks to its node directly (README "Meetings"). */
  janusUrls?: readonly string[];
  /** The first of sip.domain: what the login form suggests. */
  domain: string;
  logger: Logger;
}

interface StaticFile {
  body: Buffer;
  /** The same, gzipped once at start (the bundle shrinks to a quarter). */
  gzip: Buffer;
  type: string;
  etag: string;
}

/** A host name or address as a browser puts it in Host (no port): anything else keeps the WebSocket origins out of the CSP. */
const HOSTNAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;

/** The host name the page was loaded from (Host without its port), when it is a well-formed one. */
export function pageHost(req: FastifyRequest): string | undefined {
  const host = req.headers.host ?? '';
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(host);
  return m !== null && HOSTNAME.test(m[1]!) ? m[1] : undefined;
}

/** The SIP WebSocket URLs as seen from a page loaded from `host`. */
function webSocketUrls(host: string | undefined, listeners: WebSocketListener[]): string[] {
  return host === undefined ? [] : listeners.map((l) => `${l.protocol}://${host}:${l.port}`);
}

/** The origins (`ws://host:port`) of the Janus nodes, as CSP sources; a URL that does not parse is left out. */
function originsOf(urls: readonly string[]): string[] {
  return urls.flatMap((u) => {
    try {
      const url = new URL(u);
      return url.protocol === 'ws:' || url.protocol === 'wss:' ? [`${url.protocol}//${url.host}`] : [];
    } catch {
      return [];
    }
  });
}

/**
 * CSP Level 3: only this origin's scripts and styles (no inline code, no eval), fetches to this origin, the
 * SIP WebSockets and the Janus nodes of meetings, no plugins, no framing, no <base> games, forms only here. Media
 * elements play MediaStreams (no URL) and need no source.
 */
function contentSecurityPolicy(wsUrls: string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${wsUrls.map((u) => ` ${u}`).join('')}`,
    "media-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** RFC 9110 §12.5.3: the client lists gzip in Accept-Encoding with a weight above 0. */
export function acceptsGzip(header: string | undefined): boolean {
  return (header ?? '').split(',').some((entry) => {
    const [coding, ...params] = entry.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return coding === 'gzip' && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** Reads the built files (one level: the bundle has no folders). */
function load(dir: string, logger: Logger): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(dir)) {
    logger.warn({ dir }, 'the web console is not built (npm run build): /console/ answers 404');
    return files;
  }
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    const path = join(dir, name);
    if (type === undefined || !statSync(path).isFile()) continue;
    const body = readFileSync(path);
    files.set(name, { body, gzip: gzipSync(body, { level: 9 }), type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return files;
}

/** Adds the console's public routes to the HTTP server's Fastify instance (before it starts). */
export function consoleSite(app: FastifyInstance, options: ConsoleSiteOptions): void {
  const files = load(options.dir ?? CONSOLE_DIR, options.logger);
  const janus = originsOf(options.janusUrls ?? []);
  const pub = { config: { public: true } };

  const headers = (req: FastifyRequest, reply: FastifyReply): FastifyReply => reply
    .header('content-security-policy', contentSecurityPolicy([...webSocketUrls(pageHost(req), options.webSockets()), ...janus]))
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache');

  const send = (req: FastifyRequest, reply: FastifyReply, name: string) => {
    const file = files.get(name);
    headers(req, reply);
    if (file === undefined) return reply.code(404).type('text/plain; charset=utf-8').send('not found');
    void reply.header('etag', file.etag).header('vary', 'accept-encoding');
    if (req.headers['if-none-match'] === file.etag) return reply.code(304).send();
    if (acceptsGzip(req.headers['accept-encoding'])) {
      return reply.code(200).type(file.type).header('content-encoding', 'gzip').send(file.gzip);
    }
    return reply.code(200).type(file.type).send(file.body);
  };

  app.get('/', pub, async (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console', pub, async (_req, reply) => reply.redirect('/console/', 302));
  app.get('/console/', pub, async (req, reply) => send(req, reply, 'index.html'));
  // Per request: the WebSocket URLs name the host the page came from, which a browser will connect to.
  app.get('/console/config.json', pub, async (req, reply) => {
    headers(req, reply);
    const host = pageHost(req);
    return reply.code(200).header('cache-control', 'no-store').send({
      domain: options.domain,
      webSockets: webSocketUrls(host, options.webSockets()),
    });
  });
  app.get<{ Params: { '*': string } }>('/console/*', pub, async (req, reply) => send(req, reply, req.params['*']));
}
