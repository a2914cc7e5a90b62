/**
 * The admin routes the web console's admin page reads that no service had yet, mounted under `/v1/` (admin
 * token required, platform/http):
 *   GET /v1/registrations   the bindings held (RFC 3261 §10.3): AoR, contact, transport, address, user agent,
 *                           expiry, RFC 5626 instance, RFC 8599 push provider and whether the device sleeps
 *   GET /v1/active-calls    the dialogs not ended yet, oldest first: caller, callee, state, times, media relay
 *   DELETE /v1/active-calls/:id   hangs a call up (Kamailio's dlg_end_dlg): an answered call gets a BYE to each
 *                           side and ends (history: `bye`, hung up by the `system`); a ringing one has its
 *                           branches CANCELled and the caller gets 487 (history: `cancel` by the `system`)
 *
 * Registrations are replicated to every worker, so any worker's list is the whole. A call is held by the
 * worker that forwarded its INVITE (`owner`): with `--workers N` the worker that answers asks the others
 * (through the primary, as a metrics scrape does) for their calls, and for the hang-up of one it does not
 * hold; a worker silent for a second is counted in `workersMissing`.
 */
import type { FastifyInstance, FastifyReply, FastifySchema } from 'fastify';
import { z } from 'zod';
import { apiError, decodeCursor, errors, isoTime, jsonSchema, normalizeUser, pageOf, pageQuery, parseInput, response } from '../platform/http/index.js';
import type { Binding } from '../registrar/types.js';
import type { DialogSnapshot, HangupOutcome } from '../src/dialog/types.js';

export interface AdminRouteDeps {
  /** Every unexpired binding. */
  registrations(): readonly Binding[];
  /** Reachable only by a push (registrar's isAsleep). */
  isAsleep(binding: Binding): boolean;
  /** The dialogs not ended yet, of every worker; `workersMissing`: the workers that did not answer in time. */
  activeCalls(): Promise<{ calls: readonly DialogSnapshot[]; workersMissing: number }>;
  /** Hangs the call up where it is held (DialogTracker.hangUpAnywhere). */
  hangUp(id: string): Promise<{ result: HangupOutcome; workersMissing: number }>;
}

/** A call's id as the list gives it (a UUID; anything of that shape is looked for). */
const callParams = z.strictObject({ id: z.string().min(1).max(64).regex(/^[0-9A-Za-z-]+$/, 'expected a call id from GET /v1/active-calls') });

/** `?user=user@domain` narrows both lists to one user (as caller or callee for calls). */
const query = z.strictObject({
  user: z.string().max(511).regex(/^[^@\s/:]+@[^@\s/:]+$/, 'expected user@domain').transform(normalizeUser).optional(),
});

/** Bindings per page of GET /registrations by default, and at most: a node may hold tens of thousands. */
export const REGISTRATION_PAGE = 500;
export const MAX_REGISTRATION_PAGE = 5000;
/** The registrations' query: a user, and a page of the bindings sorted by (AoR, contact). */
const registrationsQuery = query.extend(pageQuery(REGISTRATION_PAGE, MAX_REGISTRATION_PAGE));

/** One binding as the API answers it (registrationJson), here and in the user's devices (server/user-routes.ts). */
export const registrationEntry = z.object({
  aor: z.string(), contact: z.string(), transport: z.string(), address: z.string(), userAgent: z.string().optional(),
  expiresAt: isoTime, updatedAt: isoTime, instance: z.string().optional(), push: z.string().optional(), asleep: z.boolean(),
});

const party = z.object({ user: z.string().optional(), domain: z.string().optional() }).passthrough();
const tags = ['admin'];
const querystring = jsonSchema(query);
const docs: Record<'registrations' | 'calls' | 'hangUp', FastifySchema> = {
  registrations: {
    summary: 'The registered devices (bindings), of everyone or of one user', tags, querystring: jsonSchema(registrationsQuery),
    description: 'A page of bindings by AoR then contact; pass `next` back as `cursor` (with the same `user`) for the page after.',
    response: {
      200: response(z.object({
        registrations: z.array(registrationEntry),
        next: z.string().optional().describe('the cursor of the next page, when there is one'),
      }), 'a page of the bindings'),
      ...errors({ 400: 'a malformed query or cursor' }),
    },
  },
  calls: {
    summary: 'The calls in progress on every worker, oldest first', tags, querystring,
    response: {
      200: response(z.object({
        workersMissing: z.number().int().min(0).describe('workers that did not list their calls within a second (left out)'),
        calls: z.array(z.object({
          id: z.string(), callId: z.string(), state: z.string(), direction: z.string().optional(), caller: party, callee: party,
          answeredBy: z.unknown().optional(), backend: z.string().optional(), mediaRelayed: z.boolean().optional(), mediaNode: z.string().optional(),
          owner: z.number().optional(), createdAt: isoTime.optional(), ringingAt: isoTime.optional(), answeredAt: isoTime.optional(),
        }).passthrough()),
      }), 'the calls'),
      ...errors({ 400: 'a malformed query' }),
    },
  },
  hangUp: {
    summary: 'Hang up a call: BYE to both sides of an answered call, CANCEL of a ringing one (the caller gets 487)',
    tags, params: jsonSchema(callParams),
    response: {
      202: response(z.object({
        id: z.string(),
        action: z.enum(['bye', 'cancel']).describe('bye: the BYEs are sent and the call has ended; cancel: the branches are being CANCELled'),
      }), 'the hang-up is under way'),
      ...errors({
        400: 'a malformed id',
        404: 'no call of that id is in progress',
        409: 'the call cannot be hung up: its INVITE is being decided, or it was answered before this version recorded its route',
        503: 'not found, but a worker that may hold it did not answer: try again',
      }),
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
      const q = parseInput(registrationsQuery, req.query, 'query');
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, 2);
      const key = (b: Binding): [string, string] => [b.aor, b.contactUri];
      const before = (a: readonly string[], b: readonly string[]) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : a[1]! > b[1]! ? 1 : 0);
      // the user part is case-sensitive, the domain is not (RFC 3261 §19.1.4): both sides normalized alike
      const bindings = deps.registrations()
        .filter((b) => (q.user === undefined || normalizeUser(b.aor.replace(/^sips?:/, '')) === q.user) && (after === undefined || before(key(b), after) > 0))
        .sort((a, b) => before(key(a), key(b)));
      const page = pageOf(bindings, q.limit, key);
      return { registrations: page.items.map((b) => registrationJson(b, deps.isAsleep(b))), ...(page.next === undefined ? {} : { next: page.next }) };
    });
    app.get('/active-calls', { schema: docs.calls }, async (req, reply) => {
      const q = userOf(req.query, reply);
      if (q === undefined) return reply;
      const all = await deps.activeCalls();
      const calls = all.calls.filter((d) => q.user === undefined || [d.caller, d.callee].some((p) => partyUser(p) === q.user));
      return { workersMissing: all.workersMissing, calls: calls.map(callJson) };
    });
    app.delete('/active-calls/:id', { schema: docs.hangUp }, async (req, reply) => {
      const params = callParams.safeParse(req.params);
      if (!params.success) return apiError(reply, 400, `id: ${params.error.issues[0]!.message}`);
      const { id } = params.data;
      const { result, workersMissing } = await deps.hangUp(id);
      switch (result) {
        case 'bye':
        case 'cancel':
          return reply.code(202).send({ id, action: result });
        case 'unreachable':
          return apiError(reply, 409, `call ${id} cannot be hung up now: its INVITE is being decided, or its route was not recorded`);
        case 'unknown':
          if (workersMissing > 0) {
            return apiError(reply, 503, `no call ${id} found, but ${workersMissing} worker(s) did not answer: try again`);
          }
          return apiError(reply, 404, `no call ${id} is in progress`);
      }
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
