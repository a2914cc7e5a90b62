/**
 * Meetings under `/v1/meetings` (mounted with `http.routes(meetingRoutes(service), { access: 'user' })`): admin tokens
 * and user access tokens; the service (meetings.ts) decides what each may see and change.
 *
 *   GET    /meetings?owner=&limit=&cursor=   { meetings, next? }  newest first: a user's own, an admin's all or one owner's
 *   POST   /meetings                          201 the meeting (a user owns it; an admin names the owner)
 *   GET    /meetings/:id                      the meeting (owner, admin) or its public face (other users)
 *   PATCH  /meetings/:id                      200 the meeting after the change (owner, admin); null clears a field
 *   DELETE /meetings/:id                      204 (owner, admin)
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { type ApiErrorCode, Refusal, decodeCursor, errors, isoTime, jsonSchema, noContent, normalizeUser, pageOf, pageQuery, parseInput, principalOf, response } from '../platform/http/index.js';
import { MAX_MEETING_PARTICIPANTS } from '../platform/store/index.js';
import { MAX_MEETING_PASSWORD } from './meeting-password.js';
import { type MeetingActor, MeetingError, type MeetingPublicView, type MeetingService, type MeetingView } from './meetings.js';

export const MEETING_PAGE = 50;
export const MAX_MEETING_PAGE = 200;

/** The service's refusals as the API's codes: a meeting of someone else's is the token's scope (AUTH_ERR_SCOPE). */
export const STATUS: Record<MeetingError['code'], { status: 400 | 403 | 404 | 409 | 429 | 503; code: ApiErrorCode }> = {
  MEETING_ERR_INVALID: { status: 400, code: 'API_ERR_INVALID' },
  MEETING_ERR_FORBIDDEN: { status: 403, code: 'AUTH_ERR_SCOPE' },
  MEETING_ERR_NOT_FOUND: { status: 404, code: 'API_ERR_NOT_FOUND' },
  MEETING_ERR_CONFLICT: { status: 409, code: 'API_ERR_CONFLICT' },
  MEETING_ERR_RATE_LIMITED: { status: 429, code: 'API_ERR_RATE_LIMITED' },
  MEETING_ERR_UNAVAILABLE: { status: 503, code: 'API_ERR_UNAVAILABLE' },
};

const user = z.string().max(511).regex(/^[^@\s/:]+@[^@\s/:]+$/, 'expected user@domain').transform(normalizeUser);
const time = z.iso.datetime({ offset: true }).transform((t) => Date.parse(t)).describe('ISO-8601');
const title = z.string().trim().min(1, 'must not be empty').max(255);
const password = z.string().min(1, 'must not be empty').max(MAX_MEETING_PASSWORD);
const participants = z.number().int().min(1).max(MAX_MEETING_PARTICIPANTS);

const inputs = {
  list: z.strictObject({ owner: user.optional(), ...pageQuery(MEETING_PAGE, MAX_MEETING_PAGE) }),
  create: z.strictObject({
    title,
    owner: user.optional().describe('user@domain: an admin names the owner; a user token owns what it creates'),
    startsAt: time.optional(),
    endsAt: time.optional(),
    password: password.optional().describe('asked of everyone who joins; kept hashed, never answered'),
    lobby: z.boolean().optional().describe('default true: joiners wait until a moderator admits them'),
    maxParticipants: participants.optional().describe(`default 100, at most ${MAX_MEETING_PARTICIPANTS}`),
    recordingAllowed: z.boolean().optional().describe('default false'),
  }),
  change: z.strictObject({
    title: title.optional(),
    startsAt: time.nullable().optional(),
    endsAt: time.nullable().optional(),
    password: password.nullable().optional().describe('null removes the password'),
    lobby: z.boolean().optional(),
    maxParticipants: participants.optional(),
    recordingAllowed: z.boolean().optional(),
  }),
  id: z.strictObject({ id: z.string().regex(/^[a-z2-7]{12}$/, 'not a meeting id') }),
};

const publicOut = z.object({
  id: z.string(), title: z.string(), startsAt: isoTime.optional(), endsAt: isoTime.optional(), hasPassword: z.boolean(), lobby: z.boolean(),
  uri: z.string().describe('sip:meet-<id>@<domain>, for dial-in'), link: z.string().describe('the join page, on this server\'s HTTP address'),
  conversation: z.string().optional().describe('the meeting\'s group conversation: to its members (who were admitted) and admins, once it exists'),
});
const meetingOut = publicOut.extend({
  owner: z.string(), maxParticipants: z.number().int(), recordingAllowed: z.boolean(), createdAt: isoTime, updatedAt: isoTime,
});

const tags = ['meetings'];
const params = jsonSchema(z.object({ id: z.string().describe('the meeting id') }));
const docs: Record<'list' | 'create' | 'get' | 'change' | 'remove', FastifySchema> = {
  list: {
    summary: 'Meetings, newest first', tags, querystring: jsonSchema(inputs.list),
    description: 'A user token lists its own meetings; an admin every meeting, or one owner\'s. Pass `next` back as `cursor` (same `owner`) for the page after.',
    response: {
      200: response(z.object({ meetings: z.array(meetingOut), next: z.string().optional().describe('the cursor of the next page') }), 'a page of meetings'),
      ...errors({ 400: 'a malformed query or cursor', 403: 'a user token named another owner' }),
    },
  },
  create: {
    summary: 'Create or schedule a meeting', tags, body: jsonSchema(inputs.create),
    description: 'The lobby is on by default: everyone but the owner and moderators waits to be admitted.',
    response: { 201: response(meetingOut, 'the meeting'), ...errors({ 400: 'a malformed body, an unknown owner, or an end before the start', 403: 'a user token named another owner' }) },
  },
  get: {
    summary: 'One meeting', tags, params,
    description: 'Its owner and admins get every setting; other users its public face (what a join page shows). Members of the meeting\'s chat '
      + '(everyone admitted so far) and admins also get `conversation`, the group of the meeting\'s chat.',
    response: { 200: response(z.union([meetingOut, publicOut]), 'the meeting'), ...errors({ 400: 'a malformed id', 404: 'no such meeting' }) },
  },
  change: {
    summary: 'Change a meeting', tags, params, body: jsonSchema(inputs.change),
    response: { 200: response(meetingOut, 'the meeting after the change'), ...errors({ 400: 'a malformed body or id, or an end before the start', 403: 'not the owner', 404: 'no such meeting' }) },
  },
  remove: {
    summary: 'Delete a meeting', tags, params,
    description: 'Participants still in the meeting are put out: their Janus tokens are revoked and the room destroyed.',
    response: { 204: noContent, ...errors({ 400: 'a malformed id', 403: 'not the owner', 404: 'no such meeting', 503: 'participants are in the meeting and its Janus node is not available' }) },
  },
};

function json(v: MeetingView | MeetingPublicView) {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const out: Record<string, unknown> = { ...v, startsAt: iso(v.startsAt), endsAt: iso(v.endsAt) };
  if ('createdAt' in v) Object.assign(out, { createdAt: iso(v.createdAt), updatedAt: iso(v.updatedAt) });
  return out;
}

export interface MeetingRouteOptions {
  /** The meeting's group conversation when the actor may read it (a member, an admin), else undefined. */
  conversationOf?: ((actor: MeetingActor, meetingId: string) => Promise<string | undefined>) | undefined;
}

/** An admin token or a user access token as the meeting service sees it (a route mounted for users only). */
export function meetingActorOf(req: Parameters<typeof principalOf>[0]): MeetingActor {
  const p = principalOf(req);
  return p.kind === 'admin' ? { kind: 'admin' } : { kind: 'user', user: p.user };
}

/**
 * The meeting services' refusals in the API's shape, for every conference route scope: a MeetingError is rethrown as a
 * Refusal (with its Retry-After), which the server's own error handler (the scope's parent) answers like every other.
 */
export function answerMeetingErrors(app: FastifyInstance): void {
  app.setErrorHandler(async (err, _req, reply) => {
    if (!(err instanceof MeetingError)) throw err;
    if (err.retryAfter !== undefined) void reply.header('retry-after', String(err.retryAfter));
    throw new Refusal(STATUS[err.code].status, err.message, STATUS[err.code].code);
  });
}

export function meetingRoutes(service: MeetingService, options: MeetingRouteOptions = {}): (app: FastifyInstance) => void {
  const actorOf = meetingActorOf;
  const idOf = (raw: unknown): string => parseInput(inputs.id, raw, 'id').id;

  return (app) => {
    answerMeetingErrors(app);

    app.get('/meetings', { schema: docs.list }, async (req) => {
      const q = parseInput(inputs.list, req.query, 'query');
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, 2);
      const createdAt = after === undefined ? undefined : Number(after[0]);
      if (after !== undefined && !Number.isSafeInteger(createdAt)) throw new Refusal(400, 'cursor: not a cursor this list made (pass back `next` as it was answered)');
      const found = await service.list(actorOf(req), { owner: q.owner, after: after && { createdAt: createdAt!, id: after[1]! }, limit: q.limit + 1 });
      const page = pageOf(found, q.limit, (m) => [String(m.createdAt), m.id]);
      return { meetings: page.items.map(json), ...(page.next === undefined ? {} : { next: page.next }) };
    });

    app.post('/meetings', { schema: docs.create }, async (req, reply) => {
      const body = parseInput(inputs.create, req.body, 'body');
      return reply.code(201).send(json(await service.create(actorOf(req), body)));
    });

    app.get('/meetings/:id', { schema: docs.get }, async (req) => {
      const actor = actorOf(req);
      const meeting = json(await service.get(actor, idOf(req.params)));
      const conversation = await options.conversationOf?.(actor, String(meeting.id));
      return conversation === undefined ? meeting : { ...meeting, conversation };
    });

    app.patch('/meetings/:id', { schema: docs.change }, async (req) => {
      const id = idOf(req.params);
      return json(await service.update(actorOf(req), id, parseInput(inputs.change, req.body, 'body')));
    });

    app.delete('/meetings/:id', { schema: docs.remove }, async (req, reply) => {
      await service.remove(actorOf(req), idOf(req.params));
      return reply.code(204).send();
    });
  };
}
