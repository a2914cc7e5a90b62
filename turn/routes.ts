/**
 * How apps get their ICE servers, mounted with `http.routes(iceServerRoutes(deps), { access: 'guest' })`
 * (platform/http prefixes `/v1`):
 *
 *   GET /ice-servers?region=&user=     { iceServers, ttl, expiresAt }
 *
 * A user token gets credentials for its own user (`?user=` may name only that user); an admin token must
 * say for whom (`?user=user@domain`, 400 without): operators use it to test a TURN box. A meeting guest's token
 * gets credentials too (its WebRTC needs TURN as much as a user's), named `guest-<guest id>`, and names no one else. `iceServers` is the
 * RTCIceServer list (turn/ice-servers.ts) from turn.servers, else the embedded server's URLs; with neither
 * the answer is 503. `ttl` is the credential's life in seconds, `expiresAt` its end as ISO-8601 UTC text:
 * an app asks again before then. Every answer is `Cache-Control: no-store` (RFC 9111 §5.2.2.5): it holds a
 * credential, which no cache may keep.
 */
import type { FastifyInstance, FastifyReply, FastifySchema } from 'fastify';
import { z } from 'zod';
import { type ApiErrorStatus, apiError, callerOf, errors, isoTime, jsonSchema, normalizeUser, response } from '../platform/http/index.js';
import type { TurnCredential } from './credentials.js';
import { type IceServerConfig, type RtcIceServer, iceServers } from './ice-servers.js';

export interface IceServerRoutesDeps {
  /** Issues the credential (TurnCredentials). */
  credentials: { issue(user: string, ttlS: number, now?: number): TurnCredential };
  /** turn.servers; empty: the embedded server. */
  servers: readonly IceServerConfig[];
  /** turn.ttl, seconds. */
  ttlS: number;
  /** The embedded STUN/TURN server's URLs, undefined when it does not run. */
  embeddedUrls(): string[] | undefined;
  /** A number in [0, 1) for the weighted pick (tests); Math.random by default. */
  random?: () => number;
  /** ms since the epoch (tests); Date.now by default. */
  now?: () => number;
}

export const NO_SERVER = 'no STUN/TURN server configured';

const query = z.strictObject({
  region: z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/, 'expected a region name').optional(),
  user: z.string().max(511).regex(/^[^@\s/:]+@[^@\s/:]+$/, 'expected user@domain').transform(normalizeUser).optional(),
});

const schema: FastifySchema = {
  summary: 'STUN/TURN servers with a fresh credential, for RTCPeerConnection',
  description: 'A user token gets its own credentials (`user` may name only itself); an admin token must name the user; a meeting guest\'s token gets '
    + 'credentials for itself (`guest-<guest id>`) and names no user. The answer is never cached (Cache-Control: no-store).',
  tags: ['ice servers'],
  querystring: jsonSchema(query),
  response: {
    200: response(z.object({
      iceServers: z.array(z.object({ urls: z.array(z.string()), username: z.string().optional(), credential: z.string().optional() })).describe('RTCIceServer list (W3C WebRTC §4.2.4)'),
      ttl: z.number().int().describe('the credential\'s life, seconds'),
      expiresAt: isoTime.describe('when the credential ends: ask again before then'),
    }), 'the servers and the credential'),
    ...errors({
      400: 'a malformed query, or an admin token that names no user',
      403: 'a user token asked for another user, or a guest token named a user',
      503: NO_SERVER,
    }),
  },
};

function refuse(reply: FastifyReply, status: ApiErrorStatus, message: string): FastifyReply {
  return apiError(reply, status, message);
}

export function iceServerRoutes(deps: IceServerRoutesDeps): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/ice-servers', { schema }, async (req, reply) => {
      void reply.header('cache-control', 'no-store');
      const parsed = query.safeParse(req.query ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const reason = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
        return refuse(reply, 400, `${issue.path.join('.') || 'query'}: ${reason}`);
      }
      const principal = callerOf(req);
      let user: string;
      if (principal.kind === 'guest') {
        if (parsed.data.user !== undefined) return refuse(reply, 403, 'a guest token gets credentials for itself only');
        user = `guest-${principal.guest}`;
      } else if (principal.kind === 'user') {
        if (parsed.data.user !== undefined && parsed.data.user !== principal.user) return refuse(reply, 403, 'a user token gets credentials for its own user only');
        user = principal.user;
      } else {
        if (parsed.data.user === undefined) return refuse(reply, 400, 'user: an admin token must name the user (?user=user@domain)');
        user = parsed.data.user;
      }
      return iceServerAnswer(deps, user, parsed.data.region) ?? refuse(reply, 503, NO_SERVER);
    });
  };
}

/** What GET /v1/ice-servers answers (and X-Ice-Servers carries): undefined when there is no server to name. */
export interface IceServerAnswer {
  iceServers: RtcIceServer[];
  /** The credential's life, seconds. */
  ttl: number;
  /** Its end, ISO-8601 UTC. */
  expiresAt: string;
}

/** The RTCIceServer list for `user`: turn.servers, else the embedded server's URLs, with a fresh credential. */
export function iceServerAnswer(deps: IceServerRoutesDeps, user: string, region?: string): IceServerAnswer | undefined {
  let servers = deps.servers;
  if (servers.length === 0) {
    const urls = deps.embeddedUrls();
    if (urls === undefined || urls.length === 0) return undefined;
    servers = [{ urls }];
  }
  const credential = deps.credentials.issue(user, deps.ttlS, (deps.now ?? Date.now)());
  const list = iceServers(servers, credential, { region, random: deps.random });
  return { iceServers: list, ttl: deps.ttlS, expiresAt: new Date(credential.expiresAt).toISOString() };
}
