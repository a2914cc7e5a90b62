/**
 * The HTTP side of a node: `/health` for load balancers and operators, `POST /reload` for `softswitch
 * reload`, and the admin API under `/v1/` (later steps add routes there with `HttpServer.routes`).
 *
 * Every route but `GET /health` needs `Authorization: Bearer <admin token>` (RFC 6750 §2.1), checked in
 * one onRequest hook before any route runs, so a route added later is protected without doing anything,
 * and an unknown path answers 401 rather than telling what exists. A browser cannot set that header on a
 * cross-site request without a CORS preflight this server never grants, which closes the cross-site
 * `POST /reload` too. Tokens are never logged.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { categoryLogger, type Logger } from '../../src/log/index.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A route anyone may call (only `GET /health`); never honoured under `/v1/`. */
    public?: boolean;
  }
}

export interface HealthSource {
  /** Named checks: each returns a JSON-serialisable status; `ok: false` anywhere makes the answer 503. */
  health(): Record<string, unknown> & { ok: boolean };
  /**
   * `POST /reload` (`softswitch reload`): re-reads routing data from the store; the result is answered
   * as JSON. Without it the route answers 404.
   */
  reload?(): Promise<unknown>;
}

/** What the server needs of the store's admin tokens (AdminTokenRepository has it). */
export interface AdminTokenSource {
  /** The token's record when the token exists (expired or not), else undefined. */
  lookup(token: string): Promise<{ readonly id: number; readonly name: string; readonly expiresAt: number | undefined } | undefined>;
  /** Records a use; failures are ignored. */
  touch?(id: number, at: number): Promise<void>;
}

export interface HttpServerOptions {
  /** `address:port` (configuration key http.listen). */
  listen: string;
  source: HealthSource;
  tokens: AdminTokenSource;
  logger: Logger;
  /**
   * Who gets the detailed `/health` without a token: `open` (everyone) or `token` (token holders only;
   * the rest get `{ ok }`). Default: `open` when `listen` is a loopback address, else `token`.
   */
  healthDetails?: 'open' | 'token';
  /** How long a checked token is trusted without asking the store again, ms (default TOKEN_CACHE_MS). */
  tokenCacheMs?: number;
}

/** A revoked token stops working within this time (the cache answers for it until then). */
export const TOKEN_CACHE_MS = 5000;
/** Failed token attempts allowed per source address and window before it gets 429 for the rest of it. */
export const TOKEN_FAILURES_MAX = 10;
export const TOKEN_FAILURE_WINDOW_MS = 60_000;
/** Source addresses remembered by the failure limiter before old windows are dropped. */
const LIMITER_MAX_ADDRESSES = 10_000;
const REALM = 'softswitch';

/** True for `127.0.0.0/8`, `::1`, `::ffff:127.x.y.z` and `localhost`: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** The path without the query: a client may have put a token there (RFC 6750 §2.3), which is never logged. */
function pathOf(req: FastifyRequest): string {
  const q = req.url.indexOf('?');
  return (q === -1 ? req.url : req.url.slice(0, q)).slice(0, 200);
}

interface CachedToken {
  readonly id: number;
  readonly name: string;
  readonly expiresAt: number | undefined;
  readonly until: number;
}

interface FailureWindow {
  start: number;
  count: number;
}

type Refusal = { status: 401 | 429 | 503; error: string; description: string; retryAfter?: number };

export class HttpServer {
  private readonly app: FastifyInstance;
  private readonly host: string;
  private readonly port: number;
  private readonly log: Logger;
  private readonly tokens: AdminTokenSource;
  private readonly cacheMs: number;
  /** By SHA-256 of the token: the token itself is kept nowhere. */
  private readonly cache = new Map<string, CachedToken>();
  private readonly failures = new Map<string, FailureWindow>();
  private boundPort = 0;

  constructor(options: HttpServerOptions) {
    const i = options.listen.lastIndexOf(':');
    this.host = options.listen.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = Number(options.listen.slice(i + 1));
    this.log = categoryLogger(options.logger, 'http');
    this.tokens = options.tokens;
    this.cacheMs = options.tokenCacheMs ?? TOKEN_CACHE_MS;
    const detailsOpen = (options.healthDetails ?? (isLoopbackHost(this.host) ? 'open' : 'token')) === 'open';
    this.app = Fastify({ logger: false });

    this.app.addHook('onRequest', async (req, reply) => {
      const route = req.routeOptions.url ?? '';
      if (req.routeOptions.config.public === true && !route.startsWith('/v1')) return;
      if (!(await this.authenticate(req, reply))) return reply;
    });

    const health = (reply: FastifyReply, details: boolean) => {
      const h = options.source.health();
      return reply.code(h.ok ? 200 : 503).send(details ? h : { ok: h.ok });
    };
    // Liveness for anyone; the details (addresses, counts, backends) only on loopback or with a token.
    this.app.get('/health', { config: { public: true } }, async (req, reply) => {
      if (detailsOpen) return health(reply, true);
      if (req.headers.authorization === undefined) return health(reply, false);
      if (!(await this.authenticate(req, reply))) return reply;
      return health(reply, true);
    });
    this.app.get('/v1/health', async (_req, reply) => health(reply, true));
    this.app.post('/reload', async (_req, reply) => {
      const source = options.source;
      if (source.reload === undefined) return reply.code(404).send({ ok: false, error: 'nothing to reload on this server' });
      try {
        const result = await source.reload();
        return reply.code(200).send(result ?? { ok: true });
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'POST /reload failed');
        return reply.code(500).send({ ok: false, error: (err as Error).message ?? String(err) });
      }
    });
  }

  /**
   * Adds routes under `/v1/` (before start()): `plugin` gets a Fastify scope whose paths are prefixed with
   * `/v1` and which inherits the token check, so whatever it registers needs an admin token.
   */
  routes(plugin: (app: FastifyInstance) => void | Promise<void>): void {
    void this.app.register(async (scope) => plugin(scope), { prefix: '/v1' });
  }

  /** The Fastify instance, for what routes() does not cover (hooks, content parsers). */
  get fastify(): FastifyInstance {
    return this.app;
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.host, port: this.port });
    const addr = this.app.server.address();
    this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : this.port;
  }

  /** The port actually bound (the configured one, or the kernel's choice for 0). */
  get boundTo(): number {
    return this.boundPort;
  }

  async stop(): Promise<void> {
    await this.app.close();
  }

  /** True when the request carries a valid admin token; otherwise the refusal has been sent. */
  private async authenticate(req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const refusal = await this.check(req);
    if (refusal === undefined) return true;
    const challenge = refusal.status === 401 && refusal.error === 'missing_token'
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="invalid_token", error_description="${refusal.description}"`;
    if (refusal.status === 401) void reply.header('www-authenticate', challenge);
    if (refusal.retryAfter !== undefined) void reply.header('retry-after', String(refusal.retryAfter));
    void reply.code(refusal.status).send({ ok: false, error: refusal.description });
    return false;
  }

  private async check(req: FastifyRequest): Promise<Refusal | undefined> {
    const from = req.socket.remoteAddress ?? '';
    const now = Date.now();
    const window = this.failures.get(from);
    if (window !== undefined && now - window.start < TOKEN_FAILURE_WINDOW_MS && window.count >= TOKEN_FAILURES_MAX) {
      return { status: 429, error: 'rate_limited', description: 'too many failed token attempts', retryAfter: Math.ceil((window.start + TOKEN_FAILURE_WINDOW_MS - now) / 1000) };
    }
    const header = req.headers.authorization;
    if (header === undefined || header === '') {
      this.log.debug({ from, method: req.method, path: pathOf(req) }, 'admin request without a token refused');
      return { status: 401, error: 'missing_token', description: 'an admin token is required (Authorization: Bearer …)' };
    }
    // RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
    const m = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    const token = m?.[1];
    const hash = token === undefined ? undefined : createHash('sha256').update(token).digest('hex');
    let cached = hash === undefined ? undefined : this.cache.get(hash);
    if (cached !== undefined && cached.until <= now) {
      this.cache.delete(hash!);
      cached = undefined;
    }
    if (cached === undefined && token !== undefined) {
      let found: Awaited<ReturnType<AdminTokenSource['lookup']>>;
      try {
        found = await this.tokens.lookup(token);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'cannot check an admin token: the store failed');
        return { status: 503, error: 'store_unavailable', description: 'the token cannot be checked now', retryAfter: 5 };
      }
      if (found !== undefined) {
        cached = { id: found.id, name: found.name, expiresAt: found.expiresAt, until: now + this.cacheMs };
        if (this.cacheMs > 0) this.cache.set(hash!, cached);
        this.tokens.touch?.(found.id, now).catch(() => {});
      }
    }
    let reason: string | undefined;
    if (cached === undefined) reason = token === undefined ? 'malformed Authorization header' : 'unknown or revoked token';
    else if (cached.expiresAt !== undefined && cached.expiresAt <= now) reason = 'expired token';
    if (reason === undefined) return undefined;
    this.failed(from, now, reason, cached?.name, req);
    return { status: 401, error: 'invalid_token', description: reason };
  }

  /** Counts a failed attempt against its source address: one log line per attempt, one when it trips. */
  private failed(from: string, now: number, reason: string, name: string | undefined, req: FastifyRequest): void {
    let window = this.failures.get(from);
    if (window === undefined || now - window.start >= TOKEN_FAILURE_WINDOW_MS) {
      if (window === undefined && this.failures.size >= LIMITER_MAX_ADDRESSES) this.pruneFailures(now);
      window = { start: now, count: 0 };
      this.failures.set(from, window);
    }
    window.count++;
    this.log.warn({ from, method: req.method, path: pathOf(req), reason, ...(name === undefined ? {} : { token: name }) }, 'admin request with a bad token refused');
    if (window.count === TOKEN_FAILURES_MAX) {
      this.log.warn({ from, failures: window.count, seconds: TOKEN_FAILURE_WINDOW_MS / 1000 }, 'too many failed admin token attempts: address refused (429) for the rest of the window');
    }
  }

  private pruneFailures(now: number): void {
    for (const [address, w] of this.failures) if (now - w.start >= TOKEN_FAILURE_WINDOW_MS) this.failures.delete(address);
    // Still full (a flood from many addresses): forget them all rather than grow without bound.
    if (this.failures.size >= LIMITER_MAX_ADDRESSES) this.failures.clear();
  }
}
