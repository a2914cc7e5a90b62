/**
 * The HTTP side of a node: `/health` for load balancers and operators, `POST /reload` for `softswitch
 * reload`, and the admin API under `/v1/` (later steps add routes there with `HttpServer.routes`).
 *
 * Every route but `GET /health` and the API's description (`/v1/openapi.json`, the UI at `/v1/docs`,
 * openapi.ts) needs `Authorization: Bearer <admin token>` (RFC 6750 §2.1), checked in
 * one onRequest hook before any route runs, so a route added later is protected without doing anything,
 * and an unknown path answers 401 rather than telling what exists. A browser cannot set that header on a
 * cross-site request without a CORS preflight this server grants only to the origins of http.corsOrigins
 * (none by default, cors.ts), which closes the cross-site `POST /reload` too. Tokens are never logged.
 *
 * Every refusal, the hook's and fastify's own (bad JSON, a body over http.bodyLimit, an unknown route behind a
 * valid token) included, answers `{ code, message }` (refusal.ts); a failure answers 500 API_ERR_INTERNAL and
 * is logged, its stack never sent. GET answers under /v1/ carry weak ETags (etag.ts).
 *
 * With `userTokens`, apps sign in at `POST /v1/auth/token` (user-tokens.ts) and their access tokens pass
 * the same hook on routes added with `routes(plugin, { access: 'user' })`; on any other route they get 403
 * insufficient_scope (RFC 6750 §3.1). A route reads who asked with principalOf(request). An app signs out
 * with `DELETE /v1/auth/token` and its access token.
 *
 * A meeting guest's token (the `urn:softswitch:meeting-guest` grant) passes only on routes added with
 * `access: 'guest'` (the meeting's join and participant routes, the ICE servers): 403 insufficient_scope elsewhere.
 * Those routes read it with callerOf(request); principalOf(request) never answers a guest, so a route written for
 * users and admins cannot take a guest for an admin.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchema } from 'fastify';
import { z } from 'zod';
import { categoryLogger, type Logger } from '../../src/log/index.js';
import { allowOrigins } from './cors.js';
import { addEtags } from './etag.js';
import { FailureLimiter } from './failure-limiter.js';
import { ADMIN_ONLY, ADMIN_OR_USER, ADMIN_USER_OR_GUEST, NO_TOKEN, documentApi, errorBody, errors, jsonSchema, noContent, response, withBodyRefusals, withTokenRefusals } from './openapi.js';
import { type ApiErrorCode, Refusal as ApiRefusal, apiError, errorJson } from './refusal.js';
import { GUEST_GRANT, type UserTokens, grantBody, isUserTokenShape } from './user-tokens.js';

/** Who may call a route: admin tokens only, user access tokens as well, or meeting guests' tokens too. */
export type RouteAccess = 'admin' | 'user' | 'guest';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A route anyone may call: `GET /health` and the API's description. Only the server sets it: routes added
     * with routes() lose it, so no route module can open itself.
     */
    public?: boolean;
    /** Set by HttpServer.routes(); absent: admin. */
    access?: RouteAccess;
  }
}

/** A meeting guest: its meeting, its guest id (its participant id there) and the name it gave. */
export type GuestPrincipal = { kind: 'guest'; meeting: string; guest: string; displayName: string };

/** Who made an authenticated request: an admin token (by its name), a user access token (user@domain, its session) or a guest's. */
export type Principal = { kind: 'admin'; name: string } | { kind: 'user'; user: string; session: string } | GuestPrincipal;

/** Filled by the one onRequest hook; a WeakMap keeps Fastify's request object as it is. */
const principals = new WeakMap<FastifyRequest, Principal>();

/** Who made this request, guests included: for routes added with `access: 'guest'`. */
export function callerOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (principal === undefined) throw new Error(`${request.method} ${request.routeOptions.url ?? ''} is not an authenticated route`);
  return principal;
}

/**
 * Who made this request: an admin or a user, on every route under routes(). The hook lets a guest only onto routes
 * open to guests; should one get further, this throws (500) rather than let `kind !== 'user'` read as an admin.
 */
export function principalOf(request: FastifyRequest): Exclude<Principal, GuestPrincipal> {
  const principal = callerOf(request);
  if (principal.kind === 'guest') throw new Error(`${request.method} ${request.routeOptions.url ?? ''} is not open to guests`);
  return principal;
}

/** The token endpoint (RFC 6749 §3.2): POST is the one route under /v1/ that takes no token; DELETE signs out. */
export const TOKEN_PATH = '/v1/auth/token';

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
  /** User sign-in (`POST /v1/auth/token`) and user access tokens; without it only admin tokens exist. */
  userTokens?: UserTokens;
  /**
   * Serve HTTPS with this PEM certificate and key (configuration key http.tls: the SIP TLS certificate).
   * Without it, a password grant is accepted only from a loopback peer.
   */
  tls?: { cert: string; key: string };
  /**
   * Largest request body fastify's own parsers read, bytes (configuration key http.bodyLimit; default
   * DEFAULT_BODY_LIMIT); more is 413. File uploads stream through their own parser and keep their own limit.
   */
  bodyLimit?: number;
  /** Exact origins granted CORS (configuration key http.corsOrigins); none: no CORS headers at all. */
  corsOrigins?: readonly string[];
}

/** 1 MiB: fastify's default, and far more than any JSON body of the API needs. */
export const DEFAULT_BODY_LIMIT = 1_048_576;

/** `/health`: `ok`, and the details (named checks) when the caller may see them. */
const healthBody = z.looseObject({ ok: z.boolean() });
const healthResponses = (details: string) => ({
  200: response(healthBody, `healthy; ${details}`),
  503: response(healthBody, `not healthy (a check says \`ok: false\`); ${details}`),
});
const HEALTH_SCHEMA: Record<'public' | 'v1', FastifySchema> = {
  public: {
    summary: 'Liveness and health, for load balancers',
    description: 'Anyone gets `{ ok }`; the details (addresses, counts, backends) go to loopback callers (http.healthDetails: open) and admin tokens.',
    tags: ['server'], security: NO_TOKEN, response: healthResponses('the details only when allowed'),
  },
  v1: { summary: 'Health with every detail', tags: ['server'], response: withTokenRefusals(healthResponses('with every named check'), 'admin') },
};
const RELOAD_SCHEMA: FastifySchema = {
  summary: 'Re-read the routing data from the store (softswitch reload)',
  tags: ['server'],
  response: withTokenRefusals({
    200: response(z.looseObject({}), 'reloaded: what changed'),
    ...errors({ 404: 'nothing to reload on this server', 500: 'the reload failed' }),
  }, 'admin'),
};
/** RFC 6749 §5.2: the token endpoint answers OAuth's `error` and `error_description`, and `{ code, message }` as every route does. */
const oauthError = errorBody.extend({ error: z.string(), error_description: z.string() });

/** An OAuth error body (RFC 6749 §5.2) that is also the API's `{ code, message }`. */
function oauthErrorJson(status: number, error: string, description: string, code?: ApiErrorCode) {
  return { error, error_description: description, ...errorJson(status, description, code) };
}
const SIGN_OUT_SCHEMA: FastifySchema = {
  summary: 'Sign out: end the session of this access token',
  description: 'The access token presented and its refresh token stop working (at once on this worker, within 5 s on the others); the user\'s other sessions go on. RFC 7009 in spirit.',
  tags: ['auth'],
  security: [{ userToken: [] }],
  response: {
    204: noContent,
    400: response(oauthError, 'not a user access token (an admin token has no session)'),
    401: response(oauthError, 'no token, or a dead one'),
    403: response(oauthError, 'a meeting guest\'s token: it has no session to end, and expires on its own'),
    503: response(oauthError, 'the store failed; Retry-After says when to come back'),
  },
};

const TOKEN_SCHEMA: FastifySchema = {
  summary: 'Sign in: a user access token (password or refresh_token grant), or a meeting guest\'s token',
  description: 'RFC 6749 §4.3 and §6. A password from another machine needs TLS. Failed attempts count against the source address (429 after too many).\n\n'
    + `Guests: the extension grant \`${GUEST_GRANT}\` (RFC 6749 §4.5) with \`meeting\` and \`display_name\` answers a guest access token for that meeting `
    + 'and no refresh token. It reaches only that meeting\'s join, participant and leave routes and `GET /v1/ice-servers`; a guest always waits in the lobby '
    + '(unless it is off), and the meeting\'s password is given at join. An unknown meeting is 401 invalid_grant and counts as a failed attempt.',
  tags: ['auth'],
  security: NO_TOKEN,
  body: jsonSchema(grantBody),
  response: {
    200: response(z.union([
      z.object({ access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number().int(), refresh_token: z.string(), user: z.string() }),
      z.object({
        access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number().int(),
        guest: z.string().describe('the guest id: its participant id once it joins'), meeting: z.string(),
      }),
    ]), 'the tokens (RFC 6749 §5.1): a user\'s with a refresh token, a guest\'s without'),
    400: response(oauthError, 'a malformed request or an unsupported grant (RFC 6749 §5.2)'),
    401: response(oauthError, 'wrong credentials or a bad refresh token'),
    429: response(oauthError, 'too many failed attempts from this address; Retry-After says when to come back'),
    503: response(oauthError, 'the store failed; Retry-After says when to come back'),
  },
};

/** A revoked token stops working within this time (the cache answers for it until then). */
export const TOKEN_CACHE_MS = 5000;
/** Failed token attempts allowed per source address and window before it gets 429 for the rest of it. */
export const TOKEN_FAILURES_MAX = 10;
export const TOKEN_FAILURE_WINDOW_MS = 60_000;
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

type Refusal = { status: 401 | 403 | 429 | 503; error: string; description: string; retryAfter?: number };

/** Fastify's own refusals of a request, in the API's words. */
function clientErrorMessage(err: { code?: string; message: string }, req: FastifyRequest): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return `body: larger than ${req.routeOptions.bodyLimit ?? DEFAULT_BODY_LIMIT} bytes`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return `body: content type ${JSON.stringify(req.headers['content-type'] ?? '')} is not accepted (send application/json)`;
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return 'body: empty, but Content-Type says application/json';
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return 'body: not valid JSON';
    default: return err instanceof SyntaxError ? `body: not valid JSON (${err.message})` : err.message;
  }
}

export class HttpServer {
  private readonly app: FastifyInstance;
  private readonly host: string;
  private readonly port: number;
  private readonly log: Logger;
  private readonly tokens: AdminTokenSource;
  private readonly cacheMs: number;
  /** By SHA-256 of the token: the token itself is kept nowhere. */
  private readonly cache = new Map<string, CachedToken>();
  /** Bad admin tokens, forged user tokens and wrong passwords, per source address. */
  private readonly failures = new FailureLimiter(TOKEN_FAILURES_MAX, TOKEN_FAILURE_WINDOW_MS);
  private readonly userTokens: UserTokens | undefined;
  private boundPort = 0;

  constructor(options: HttpServerOptions) {
    const i = options.listen.lastIndexOf(':');
    this.host = options.listen.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = Number(options.listen.slice(i + 1));
    this.log = categoryLogger(options.logger, 'http');
    this.tokens = options.tokens;
    this.cacheMs = options.tokenCacheMs ?? TOKEN_CACHE_MS;
    this.userTokens = options.userTokens;
    const detailsOpen = (options.healthDetails ?? (isLoopbackHost(this.host) ? 'open' : 'token')) === 'open';
    const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    // The router's own refusals (a path that does not decode, a parameter over maxParamLength: 414) come before
    // any hook; they answer in the API's shape too.
    const frameworkErrors = (err: Error & { statusCode?: number }, _req: FastifyRequest, reply: FastifyReply) => {
      const status = err.statusCode ?? 400;
      return reply.code(status).send(errorJson(status, status === 414 ? 'path: a segment is longer than 1024 characters' : 'path: not a valid URL'));
    };
    // Path parameters are user addresses (`/v1/groups/:id/members/:user`): a 255-character user and its domain
    // fit, where fastify's default (100) would answer 414.
    const base = { logger: false, bodyLimit, frameworkErrors, routerOptions: { maxParamLength: 1024 } } as const;
    // The HTTPS instance has other type parameters; the routes and hooks used here are the same.
    this.app = (options.tls === undefined
      ? Fastify(base)
      : Fastify({ ...base, https: { cert: options.tls.cert, key: options.tls.key } })) as unknown as FastifyInstance;

    // On the root instance, before any plugin: every scope inherits them (a scope's own handler still wins).
    this.app.setErrorHandler(async (err: Error & { code?: string; statusCode?: unknown }, req, reply) => {
      if (err instanceof ApiRefusal) return apiError(reply, err.status, err.message, err.code);
      const status = err.statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        const message = clientErrorMessage(err, req);
        // A token request that is not JSON is still RFC 6749 §5.2's invalid_request to an OAuth client.
        return reply.code(status).send(req.routeOptions.url === TOKEN_PATH ? oauthErrorJson(status, 'invalid_request', message) : errorJson(status, message));
      }
      this.log.error({ method: req.method, path: pathOf(req), err: err.message, stack: err.stack }, 'request failed');
      return apiError(reply, 500, 'the server failed (see its log)');
    });
    // Reached only with a valid token: the hook answers 401 first to anyone else, whatever the path.
    this.app.setNotFoundHandler(async (req, reply) => apiError(reply, 404, `no route ${req.method} ${pathOf(req)}`));
    allowOrigins(this.app, options.corsOrigins ?? []);
    addEtags(this.app);

    this.app.addHook('onRequest', async (req, reply) => {
      const route = req.routeOptions.url ?? '';
      if (req.routeOptions.config.public === true) return;
      if (route === TOKEN_PATH && req.method === 'POST' && this.userTokens !== undefined) return;
      if (!(await this.authenticate(req, reply, req.routeOptions.config.access ?? 'admin'))) return reply;
    });

    const health = (reply: FastifyReply, details: boolean) => {
      const h = options.source.health();
      return reply.code(h.ok ? 200 : 503).send(details ? h : { ok: h.ok });
    };
    documentApi(this.app);
    // In a plugin, registered after the document's generator, which sees only the routes added after it.
    void this.app.register(async (app) => {
      // Liveness for anyone; the details (addresses, counts, backends) only on loopback or with a token.
      app.get('/health', { config: { public: true }, schema: HEALTH_SCHEMA.public }, async (req, reply) => {
        if (detailsOpen) return health(reply, true);
        if (req.headers.authorization === undefined) return health(reply, false);
        if (!(await this.authenticate(req, reply, 'admin'))) return reply;
        return health(reply, true);
      });
      app.get('/v1/health', { schema: HEALTH_SCHEMA.v1 }, async (_req, reply) => health(reply, true));
      app.post('/reload', { schema: RELOAD_SCHEMA }, async (_req, reply) => {
        const source = options.source;
        if (source.reload === undefined) return apiError(reply, 404, 'nothing to reload on this server');
        try {
          const result = await source.reload();
          return reply.code(200).send(result ?? { ok: true });
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'POST /reload failed');
          return apiError(reply, 500, (err as Error).message ?? String(err));
        }
      });
      if (this.userTokens !== undefined) this.tokenEndpoint(app, this.userTokens, options.tls !== undefined);
    });
  }

  /**
   * Adds routes under `/v1/` (before start()): `plugin` gets a Fastify scope whose paths are prefixed with
   * `/v1` and which inherits the token check, so whatever it registers needs an admin token, or with
   * `access: 'user'` an admin token or a user access token (the route then limits a user to their own
   * resources, through principalOf), or with `access: 'guest'` a meeting guest's token too (callerOf).
   */
  routes(plugin: (app: FastifyInstance) => void | Promise<void>, options: { access?: RouteAccess } = {}): void {
    const access = options.access ?? 'admin';
    void this.app.register(async (scope) => {
      // The document says who may call each route, from the same `access` the hook enforces.
      scope.addHook('onRoute', (route) => {
        route.config = { ...route.config, access, public: false };
        const responses = withTokenRefusals(withBodyRefusals(route.schema?.response as Record<string, unknown> | undefined, route.method), access);
        const security = { admin: ADMIN_ONLY, user: ADMIN_OR_USER, guest: ADMIN_USER_OR_GUEST }[access];
        route.schema = { ...route.schema, security, ...(responses === undefined ? {} : { response: responses }) };
      });
      return plugin(scope);
    }, { prefix: '/v1' });
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

  /**
   * `POST /v1/auth/token` (user-tokens.ts answers): no token needed, but wrong passwords and bad refresh
   * tokens count against the source address like bad admin tokens, and a password from another machine
   * needs TLS. RFC 6749 §5.1: the answer is never cached.
   */
  private tokenEndpoint(app: FastifyInstance, tokens: UserTokens, tls: boolean): void {
    app.post(TOKEN_PATH, { schema: TOKEN_SCHEMA }, async (req, reply) => {
      const from = req.socket.remoteAddress ?? '';
      const now = Date.now();
      void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      const retryAfter = this.failures.retryAfter(from, now);
      if (retryAfter !== undefined) {
        return reply.code(429).header('retry-after', String(retryAfter)).send(oauthErrorJson(429, 'rate_limited', 'too many failed attempts'));
      }
      let answer: Awaited<ReturnType<UserTokens['grant']>>;
      try {
        answer = await tokens.grant(req.body, tls || isLoopbackHost(from));
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'cannot answer a token request: the store failed');
        return reply.code(503).header('retry-after', '5').send(oauthErrorJson(503, 'temporarily_unavailable', 'the store failed'));
      }
      if (answer.status === 401) this.failed(from, now, answer.body.error_description, undefined, req, 'token request with bad credentials refused');
      else if (answer.status === 200 && 'guest' in answer.body) this.log.info({ from, guest: answer.body.guest, meeting: answer.body.meeting }, 'guest token issued');
      else if (answer.status === 200 && 'user' in answer.body) this.log.info({ from, user: answer.body.user }, 'user token issued');
      if (answer.status === 200) return reply.code(200).send(answer.body);
      const { error, error_description: description } = answer.body;
      return reply.code(answer.status).send(oauthErrorJson(answer.status, error, description, answer.status === 401 ? 'AUTH_ERR_INVALID_GRANT' : undefined));
    });
    // Sign-out: the hook has checked the access token (a dead one is 401 invalid_token there). RFC 7009 §2.2
    // answers 200 with no body; 204 says the same. A request body (RFC 7009's `token`) is not needed: the
    // session is the one of the access token presented.
    app.delete(TOKEN_PATH, { config: { access: 'user' }, schema: SIGN_OUT_SCHEMA }, async (req, reply) => {
      const principal = callerOf(req);
      void reply.header('cache-control', 'no-store');
      if (principal.kind !== 'user') {
        return reply.code(400).send(oauthErrorJson(400, 'invalid_request', 'a sign-out takes the user access token of the session to end'));
      }
      try {
        await tokens.signOut(principal.user, principal.session);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'cannot sign out: the store failed');
        return reply.code(503).header('retry-after', '5').send(oauthErrorJson(503, 'temporarily_unavailable', 'the store failed'));
      }
      this.log.info({ from: req.socket.remoteAddress ?? '', user: principal.user }, 'user signed out');
      return reply.code(204).send();
    });
  }

  /** True when the request carries a token valid for `access`; otherwise the refusal has been sent. */
  private async authenticate(req: FastifyRequest, reply: FastifyReply, access: RouteAccess): Promise<boolean> {
    const outcome = await this.check(req, access);
    if ('kind' in outcome) {
      principals.set(req, outcome);
      return true;
    }
    const refusal = outcome;
    const error = refusal.status === 403 ? 'insufficient_scope' : 'invalid_token';
    const challenge = refusal.status === 401 && refusal.error === 'missing_token'
      ? `Bearer realm="${REALM}"`
      : `Bearer realm="${REALM}", error="${error}", error_description="${refusal.description}"`;
    if (refusal.status === 401 || refusal.status === 403) void reply.header('www-authenticate', challenge);
    if (refusal.retryAfter !== undefined) void reply.header('retry-after', String(refusal.retryAfter));
    // 401 AUTH_ERR_INVALID_TOKEN, 403 AUTH_ERR_SCOPE, 429, 503: the statuses' own codes. Sign-out is the token
    // endpoint: its clients read RFC 6749 §5.2's fields too.
    if (req.routeOptions.url === TOKEN_PATH) void reply.code(refusal.status).send(oauthErrorJson(refusal.status, { 429: 'rate_limited', 503: 'temporarily_unavailable' }[refusal.status as number] ?? error, refusal.description));
    else void apiError(reply, refusal.status, refusal.description);
    return false;
  }

  private async check(req: FastifyRequest, access: RouteAccess): Promise<Principal | Refusal> {
    const from = req.socket.remoteAddress ?? '';
    const now = Date.now();
    const retryAfter = this.failures.retryAfter(from, now);
    if (retryAfter !== undefined) return { status: 429, error: 'rate_limited', description: 'too many failed token attempts', retryAfter };
    const header = req.headers.authorization;
    if (header === undefined || header === '') {
      this.log.debug({ from, method: req.method, path: pathOf(req) }, 'admin request without a token refused');
      return { status: 401, error: 'missing_token', description: 'an admin token is required (Authorization: Bearer …)' };
    }
    // RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
    const m = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    const token = m?.[1];
    if (token !== undefined && this.userTokens !== undefined && isUserTokenShape(token)) return this.checkUser(token, access, from, now, req);
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
    if (reason === undefined) return { kind: 'admin', name: cached!.name };
    this.failed(from, now, reason, cached?.name, req, 'admin request with a bad token refused');
    return { status: 401, error: 'invalid_token', description: reason };
  }

  /**
   * A user access token. Only a forged one (bad signature, not ours) counts as a guess: an expired one or
   * one from before a password change is what every app presents now and then, and it then refreshes.
   */
  private async checkUser(token: string, access: RouteAccess, from: string, now: number, req: FastifyRequest): Promise<Principal | Refusal> {
    let checked: Awaited<ReturnType<UserTokens['verify']>>;
    try {
      checked = await this.userTokens!.verify(token);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot check a user token: the store failed');
      return { status: 503, error: 'store_unavailable', description: 'the token cannot be checked now', retryAfter: 5 };
    }
    if (!checked.ok) {
      if (checked.forged) this.failed(from, now, checked.reason, undefined, req, 'request with a forged user token refused');
      else this.log.debug({ from, method: req.method, path: pathOf(req), reason: checked.reason }, 'user token refused');
      return { status: 401, error: 'invalid_token', description: checked.reason };
    }
    if (checked.kind === 'guest') {
      if (access !== 'guest') {
        this.log.debug({ from, method: req.method, path: pathOf(req), guest: checked.guest }, 'guest token on a route not open to guests refused');
        return { status: 403, error: 'insufficient_scope', description: 'a guest token reaches only its meeting and the ICE servers' };
      }
      return { kind: 'guest', meeting: checked.meeting, guest: checked.guest, displayName: checked.displayName };
    }
    if (access === 'admin') {
      this.log.debug({ from, method: req.method, path: pathOf(req), user: checked.user }, 'user token on an admin route refused');
      return { status: 403, error: 'insufficient_scope', description: 'this route needs an admin token' };
    }
    return { kind: 'user', user: checked.user, session: checked.session };
  }

  /** Counts a failed attempt against its source address: one log line per attempt, one when it trips. */
  private failed(from: string, now: number, reason: string, name: string | undefined, req: FastifyRequest, what: string): void {
    const tripped = this.failures.fail(from, now);
    this.log.warn({ from, method: req.method, path: pathOf(req), reason, ...(name === undefined ? {} : { token: name }) }, what);
    if (tripped) {
      this.log.warn({ from, failures: TOKEN_FAILURES_MAX, seconds: TOKEN_FAILURE_WINDOW_MS / 1000 }, 'too many failed admin token attempts: address refused (429) for the rest of the window');
    }
  }
}
