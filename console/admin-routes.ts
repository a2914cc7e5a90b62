/**
 * The admin routes the web console's admin page reads that no service had yet, mounted under `/v1/` (admin
 * token required, platform/http):
 *   GET /v1/registrations   the bindings held (RFC 3261 §10.3): AoR, contact, transport, address, user agent,
 *                           expiry, RFC 5626 instance, RFC 8599 push provider and whether the device sleeps
 *   GET /v1/active-calls    the dialogs not ended yet, oldest first: caller, callee, state, times, media relay
 *
 * Both answer what this process holds: registrations are replicated to every worker, so any worker's list is
 * the whole; a call is held by the worker that forwarded its INVITE (`owner`), so with `--workers N` the list
 * is that worker's calls.
 */
import type { FastifyInstance, FastifyReply, FastifySchema } from 'fastify';
import { z } from 'zod';
import { apiError, errors, isoTime, jsonSchema, normalizeUser, response } from '../platform/http/index.js';
import type { Binding } from '../registrar/types.js';
import type { DialogSnapshot } from '../src/dialog/types.js';

export interface AdminRouteDeps {
  /** Every unexpired binding. */
  registrations(): readonly Binding[];
  /** Reachable only by a push (registrar's isAsleep). */
  isAsleep(binding: Binding): boolean;
  /** The dialogs not ended yet. */
  activeCalls(): readonly DialogSnapshot[];
}

/** `?user=user@domain` narrows both lists to one user (as caller or callee for calls). */
const query = z.strictObject({
  user: z.string().max(511).regex(/^[^@\s/:]+@[^@\s/:]+$/, 'expected user@domain').transform(normalizeUser).optional(),
});

/** One binding as the API answers it (registrationJson), here and in the user's devices (server/user-routes.ts). */
export const registrationEntry = z.object({
  aor: z.string(), contact: z.string(), transport: z.string(), address: z.string(), userAgent: z.string().optional(),
  expiresAt: isoTime, updatedAt: isoTime, instance: z.string().optional(), push: z.string().optional(), asleep: z.boolean(),
});

const party = z.object({ user: z.string().optional(), domain: z.string().optional() }).passthrough();
const tags = ['admin'];
const querystring = jsonSchema(query);
const docs: Record<'registrations' | 'calls', FastifySchema> = {
  registrations: {
    summary: 'The registered devices (bindings), of everyone or of one user', tags, querystring,
    response: {
      200: response(z.object({
        registrations: z.array(registrationEntry),
      }), 'the bindings'),
      ...errors({ 400: 'a malformed query' }),
    },
  },
  calls: {
    summary: 'The calls in progress on the worker that answers, oldest first', tags, querystring,
    response: {
      200: response(z.object({
        calls: z.array(z.object({
          id: z.string(), callId: z.string(), state: z.string(), direction: z.string().optional(), caller: party, callee: party,
          answeredBy: z.unknown().optional(), backend: z.string().optional(), mediaRelayed: z.boolean().optional(), mediaNode: z.string().optional(),
          owner: z.number().optional(), createdAt: isoTime.optional(), ringingAt: isoTime.optional(), answeredAt: isoTime.optional(),
        }).passthrough()),
      }), 'the calls'),
      ...errors({ 400: 'a malformed query' }),
    },
  },
};

/** The query's user (user@domain, lower-cased), or the 400 already sent. */
function userOf(raw: unknown, reply: FastifyReply): { user: string | undefined } | undefined {
  const parsed = query.safeParse(raw ?? {});
  if (parsed.success) return { user: parsed.data.user };
  const issue = parsed.error.issues[0]!;
  void apiError(reply, 400, `${issue.path.join('.') || 'query'}: ${issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message}`);
  return undefined;
}

export function adminRoutes(deps: AdminRouteDeps): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/registrations', { schema: docs.registrations }, async (req, reply) => {
      const q = userOf(req.query, reply);
      if (q === undefined) return reply;
      // the user part is case-sensitive, the domain is not (RFC 3261 §19.1.4): both sides normalized alike
      const bindings = deps.registrations().filter((b) => q.user === undefined || normalizeUser(b.aor.replace(/^sips?:/, '')) === q.user);
      return { registrations: bindings.map((b) => registrationJson(b, deps.isAsleep(b))) };
    });
    app.get('/active-calls', { schema: docs.calls }, async (req, reply) => {
      const q = userOf(req.query, reply);
      if (q === undefined) return reply;
      const calls = deps.activeCalls().filter((d) => q.user === undefined || [d.caller, d.callee].some((p) => partyUser(p) === q.user));
      return { calls: calls.map(callJson) };
    });
  };
}

export function registrationJson(b: Binding, asleep: boolean) {
  return {
    aor: b.aor,
    contact: b.contactUri,
    transport: b.received.protocol,
    address: `${b.received.address}:${b.received.port}`,
    userAgent: b.userAgent,
    expiresAt: new Date(b.expiresAt).toISOString(),
    updatedAt: new Date(b.updatedAt).toISOString(),
    instance: b.instanceId,
    push: b.push?.provider,
    asleep,
  };
}

function partyUser(p: DialogSnapshot['caller']): string | undefined {
  return p.user === undefined || p.domain === undefined ? undefined : normalizeUser(`${p.user}@${p.domain}`);
}

function callJson(d: DialogSnapshot) {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: d.id,
    callId: d.callId,
    state: d.state,
    direction: d.direction,
    caller: d.caller,
    callee: d.callee,
    answeredBy: d.answeredBy,
    backend: d.backend,
    mediaRelayed: d.mediaRelayed,
    mediaNode: d.mediaNode,
    owner: d.owner,
    createdAt: iso(d.createdAt),
    ringingAt: iso(d.ringingAt),
    answeredAt: iso(d.answeredAt),
  };
}
