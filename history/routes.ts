/**
 * The call history API, for operators and for the apps, mounted with `http.routes(callRoutes(calls),
 * { access: 'user' })` (platform/http):
 *
 *   GET /v1/calls?user=&number=&direction=&disposition=&since=&until=&limit=&cursor=
 *       newest first, `limit` (default 50, at most 500) a page: `{ calls: [...], next?: "<cursor>" }`;
 *       pass `next` back as `cursor` (with the same filters) for the page after
 *   GET /v1/calls/:id
 *       one record, or 404
 *
 * An admin token reads every call. A user token reads its own user's calls only (caller or callee): its
 * `user` filter is forced to the token's user, another user's is 403, and another user's call by id is 404
 * as if it did not exist (its id tells nothing).
 *
 * `since`/`until` take ISO-8601 (`2026-12-07T08:00:00Z`, `2026-12-07`) or ms since the epoch. The records
 * are CallRecords with their times (startedAt, answeredAt, endedAt) as ISO-8601 UTC text, like /v1/bans;
 * durations stay whole seconds.
 */
import type { FastifyInstance, FastifyReply, FastifySchema } from 'fastify';
import { z } from 'zod';
import { apiError, errors, isoTime, jsonSchema, normalizeUser, principalOf, response } from '../platform/http/index.js';
import { CALL_DIRECTIONS, CALL_DISPOSITIONS, MAX_CALL_PAGE, type CallParty, type CallQuery, type CallRecord, type CallRepository } from '../platform/store/index.js';

export const DEFAULT_PAGE = 50;

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/** ISO-8601 (with a zone, or a date alone: UTC) or ms since the epoch → ms; undefined when neither. */
export function parseInstant(text: string): number | undefined {
  const ms = /^\d{1,15}$/.test(text) ? Number(text) : ISO_8601.test(text) ? Date.parse(text) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}


const instant = z.string().transform((text, ctx) => {
  const ms = parseInstant(text);
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'expected an ISO-8601 time (2026-12-07T08:00:00Z) or ms since the epoch' });
  return ms ?? z.NEVER;
});

const callQuery = z.strictObject({
  user: z.string().max(511).regex(/^[^@\s]+@[^@\s]+$/, 'expected user@domain').transform(normalizeUser).optional(),
  number: z.string().min(1).max(64).optional(),
  direction: z.enum(CALL_DIRECTIONS).optional(),
  disposition: z.enum(CALL_DISPOSITIONS).optional(),
  since: instant.optional(),
  until: instant.optional(),
  limit: z.string().regex(/^\d{1,4}$/, 'expected a whole number').transform(Number).pipe(z.number().min(1).max(MAX_CALL_PAGE)).default(DEFAULT_PAGE),
  cursor: z.string().min(1).max(1024).optional(),
}).refine((q) => q.since === undefined || q.until === undefined || q.since < q.until, { message: 'since must be before until', path: ['since'] });

const party = z.object({
  user: z.string().optional(), domain: z.string().optional(), displayName: z.string().optional(), number: z.string().optional(), uri: z.string(),
});
/** A CallRecord as callToJson() writes it. */
export const callJson = z.object({
  id: z.string(),
  callId: z.string(),
  caller: party,
  callee: party,
  direction: z.enum(CALL_DIRECTIONS),
  disposition: z.enum(CALL_DISPOSITIONS),
  startedAt: isoTime,
  answeredAt: isoTime.optional(),
  endedAt: isoTime,
  duration: z.number().int().describe('whole seconds from start to end'),
  billableSeconds: z.number().int().describe('whole seconds from answer to end, rounded up'),
  finalCode: z.number().int().describe('the SIP final status of the INVITE'),
  finalReason: z.string().optional(),
  hangupBy: z.enum(['caller', 'callee', 'system']).optional(),
  endCause: z.enum(['bye', 'cancel', 'failure', 'timeout', 'keepalive', 'shutdown']),
  answeredDevice: z.string().optional(),
  answeredAor: z.string().optional(),
  backend: z.string().optional(),
  mediaRelayed: z.boolean(),
  mediaNode: z.string().optional(),
});

const schemas: Record<'list' | 'one', FastifySchema> = {
  list: {
    summary: 'Call history, newest first, a page at a time',
    description: 'A user token reads its own calls only (as caller or callee). Pass `next` back as `cursor`, with the same filters, for the next page. `since`/`until`: ISO-8601 or ms since the epoch.',
    tags: ['calls'],
    querystring: jsonSchema(callQuery),
    response: {
      200: response(z.object({ calls: z.array(callJson), next: z.string().optional().describe('the cursor of the next page, when there is one') }), 'a page of calls'),
      ...errors({ 400: 'a malformed query or cursor (the error names the parameter)', 403: 'a user token named another user' }),
    },
  },
  one: {
    summary: 'One call', tags: ['calls'],
    params: jsonSchema(z.object({ id: z.string() })),
    response: { 200: response(callJson, 'the call'), ...errors({ 404: 'no such call (or not one of this user\'s)' }) },
  },
};

/** True when `user` (user@domain) is the record's caller or callee. */
export function involves(record: CallRecord, user: string): boolean {
  const is = (party: CallParty) => party.user !== undefined && party.domain !== undefined && normalizeUser(`${party.user}@${party.domain}`) === user;
  return is(record.caller) || is(record.callee);
}

/** The record as the API answers it: times as ISO-8601 UTC text. */
export function callToJson(record: CallRecord): Record<string, unknown> {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return { ...record, startedAt: iso(record.startedAt), answeredAt: iso(record.answeredAt), endedAt: iso(record.endedAt) };
}

const badRequest = (reply: FastifyReply, message: string) => apiError(reply, 400, message);

export function callRoutes(calls: CallRepository): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/calls', { schema: schemas.list }, async (req, reply) => {
      const parsed = callQuery.safeParse(req.query ?? {});
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const reason = issue.code === 'unrecognized_keys' ? `unknown parameter(s) ${issue.keys.join(', ')}` : issue.message;
        return badRequest(reply, `${issue.path.join('.') || 'query'}: ${reason}`);
      }
      const query: CallQuery = parsed.data;
      const principal = principalOf(req);
      if (principal.kind === 'user') {
        if (query.user !== undefined && query.user !== principal.user) return apiError(reply, 403, 'a user token reads only its own calls');
        query.user = principal.user;
      }
      let page;
      try {
        page = await calls.list(query);
      } catch (err) {
        // The repository's word for a cursor it did not make (or made for other filters).
        if (err instanceof TypeError) return badRequest(reply, `cursor: ${err.message}`);
        throw err;
      }
      return { calls: page.calls.map(callToJson), ...(page.next === undefined ? {} : { next: page.next }) };
    });

    app.get<{ Params: { id: string } }>('/calls/:id', { schema: schemas.one }, async (req, reply) => {
      const record = await calls.get(req.params.id);
      const principal = principalOf(req);
      if (record === undefined || (principal.kind === 'user' && !involves(record, principal.user))) {
        return apiError(reply, 404, 'no such call');
      }
      return callToJson(record);
    });
  };
}
