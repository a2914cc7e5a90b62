/**
 * Joining a meeting and its lobby under `/v1/meetings/:id` (mounted with `http.routes(participantRoutes(focus),
 * { access: 'guest' })`): the focus (focus.ts) decides who may do what. A meeting guest's token reaches these
 * routes of its own meeting only (403 on any other, whether it exists or not), and never moderates.
 *
 *   POST   /meetings/:id/join                          200 { participant, janus? }  admitted (with the Janus grant) or waiting
 *   GET    /meetings/:id/participants                  { participants }  moderators: everyone; admitted participants: the admitted
 *   GET    /meetings/:id/participants/:pid             { participant, janus? }  the participant itself (polling the lobby), or a moderator
 *   POST   /meetings/:id/participants/:pid/admit       the participant, admitted (moderators)
 *   POST   /meetings/:id/participants/:pid/deny        the participant, denied (moderators)
 *   DELETE /meetings/:id/participants/:pid             the participant: left (itself) or kicked (a moderator)
 *
 * A wrong or missing meeting password is 403 AUTH_ERR_SCOPE (the request is well-formed; the token may not enter),
 * like every other "not yours" of the meetings API.
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { callerOf, errors, isoTime, jsonSchema, parseInput, response } from '../platform/http/index.js';
import type { ParticipantRecord } from '../platform/store/index.js';
import { type Admission, type Focus, type ParticipantActor, guestElsewhere } from './focus.js';
import { MAX_MEETING_PASSWORD } from './meeting-password.js';
import { answerMeetingErrors } from './routes.js';

const meetingId = z.string().regex(/^[a-z2-7]{12}$/, 'not a meeting id');
const inputs = {
  meeting: z.strictObject({ id: meetingId }),
  participant: z.strictObject({ id: meetingId, pid: z.string().regex(/^[a-z2-7]{12}$/, 'not a participant id') }),
  join: z.strictObject({
    displayName: z.string().trim().min(1, 'must not be empty').max(255).optional().describe('the name others see; default the user part of the token\'s user, or the guest\'s name'),
    password: z.string().min(1).max(MAX_MEETING_PASSWORD).optional().describe('the meeting\'s password, when it has one (the owner needs none)'),
  }),
};

export const participantOut = z.object({
  id: z.string(),
  user: z.string().optional().describe('user@domain; absent for a guest or an admin token'),
  displayName: z.string(),
  role: z.enum(['owner', 'moderator', 'participant']),
  state: z.enum(['waiting', 'admitted', 'denied', 'left', 'kicked']),
  feedId: z.number().int().optional().describe('the videoroom feed id, from admission on'),
  askedAt: isoTime,
  decidedAt: isoTime.optional().describe('when admitted or denied'),
  leftAt: isoTime.optional().describe('when it left, was kicked or stopped waiting'),
});
const janusOut = z.object({
  url: z.string().describe('the Janus API (WebSocket, subprotocol janus-protocol)'),
  token: z.string().describe('the Janus token: `token` of every Janus request and of the videoroom `join`; revoked on leave or kick'),
  room: z.number().int().describe('the videoroom id'),
  feedId: z.number().int().describe('the `id` to join the room with as a publisher'),
  screenFeedId: z.number().int().describe('the `id` of a screen share: a second publisher with the same token, kicked with the first'),
});
const admissionOut = z.object({
  participant: participantOut,
  state: participantOut.shape.state,
  janus: janusOut.optional().describe('only to the participant itself, and only while admitted'),
  conversation: z.string().optional().describe('the meeting\'s group conversation (`/v1/conversations/{id}/messages`): to an admitted user itself, now a member of it'),
  breakout: z.number().int().optional().describe('the breakout room (1 …) the participant is in, `janus.room` being its videoroom: the app joins it with the same token; absent: the main room'),
});

const tags = ['meetings'];
const meetingParams = jsonSchema(z.object({ id: z.string().describe('the meeting id') }));
const participantParams = jsonSchema(z.object({ id: z.string().describe('the meeting id'), pid: z.string().describe('the participant id') }));
const decision = (what: string): FastifySchema => ({
  summary: `${what} a participant waiting in the lobby`, tags, params: participantParams,
  description: 'Moderators only: the meeting\'s owner, an admin, or a participant with the moderator role. Idempotent: a participant already so answers as it is.',
  response: {
    200: response(participantOut, `the participant, ${what === 'Admit' ? 'admitted' : 'denied'}`),
    ...errors(what === 'Admit'
      ? { 400: 'a malformed id', 403: 'not a moderator of the meeting', 404: 'no such meeting or participant', 409: 'the participant is no longer waiting, or the meeting is full', 503: 'the meeting\'s Janus node is not available' }
      : { 400: 'a malformed id', 403: 'not a moderator of the meeting', 404: 'no such meeting or participant', 409: 'the participant is no longer waiting' }),
  },
});
const docs: Record<'join' | 'list' | 'get' | 'admit' | 'deny' | 'remove', FastifySchema> = {
  join: {
    summary: 'Join a meeting', tags, params: meetingParams, body: jsonSchema(inputs.join),
    description: 'The owner, admins and moderators are admitted at once, as is everyone when the lobby is off; others wait in the lobby and poll '
      + '`GET /v1/meetings/{id}/participants/{pid}` for the outcome. Admitted, the answer carries the Janus grant (URL, token, room, feed id), never the room\'s secret. '
      + 'A user already waiting or admitted gets its participant back; a rejoin after a kick waits in the lobby again. '
      + 'A meeting guest (guest token) joins its own meeting only, as a participant: its participant id is its guest id, and once it has left, '
      + 'been kicked or denied, it needs a new guest token to ask again (409).',
    response: {
      200: response(admissionOut, 'admitted (with `janus`) or waiting'),
      ...errors({
        400: 'a malformed body or id', 403: 'a missing or wrong meeting password, or a guest token of another meeting', 404: 'no such meeting',
        409: 'the meeting is full, or this guest token has been used up (left, kicked or denied)',
        429: 'too many wrong meeting passwords from this user; Retry-After says when to come back',
        503: 'no Janus node is configured (meetings.janus), or the meeting\'s node does not answer',
      }),
    },
  },
  list: {
    summary: 'A meeting\'s participants', tags, params: meetingParams,
    description: 'Moderators see everyone who asked, the lobby included; an admitted participant sees who is admitted.',
    response: {
      200: response(z.object({ participants: z.array(participantOut) }), 'in the order they asked'),
      ...errors({ 400: 'a malformed id', 403: 'neither a moderator nor an admitted participant, or a guest token of another meeting', 404: 'no such meeting' }),
    },
  },
  get: {
    summary: 'One participant (how a waiting app learns the outcome)', tags, params: participantParams,
    description: 'To the participant itself, with its Janus grant once admitted; to a moderator, without it.',
    response: { 200: response(admissionOut, 'the participant and its state'), ...errors({ 400: 'a malformed id', 403: 'a guest token of another meeting', 404: 'no such meeting or participant' }) },
  },
  admit: decision('Admit'),
  deny: decision('Deny'),
  remove: {
    summary: 'Leave a meeting, or kick a participant', tags, params: participantParams,
    description: 'The participant itself leaves (or stops waiting); a moderator kicks it. Its Janus token is revoked, it is taken off the room\'s list and its feed out of the room.',
    response: {
      200: response(participantOut, 'the participant, left or kicked'),
      ...errors({ 400: 'a malformed id', 403: 'a guest token of another meeting', 404: 'no such meeting or participant', 503: 'the meeting\'s Janus node is not available' }),
    },
  },
};

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

export function participantJson(p: ParticipantRecord) {
  return {
    id: p.id, user: p.user, displayName: p.displayName, role: p.role, state: p.state, feedId: p.feedId,
    askedAt: iso(p.askedAt), decidedAt: iso(p.decidedAt), leftAt: iso(p.leftAt),
  };
}

export function admissionJson(a: Admission) {
  return {
    participant: participantJson(a.participant), state: a.participant.state,
    ...(a.janus === undefined ? {} : { janus: a.janus }), ...(a.conversation === undefined ? {} : { conversation: a.conversation }),
    ...(a.breakout === undefined ? {} : { breakout: a.breakout }),
  };
}

/** Who asks about meeting `id` on a route mounted with access 'guest': a guest token of another meeting goes no further. */
export function participantActorOf(req: Parameters<typeof callerOf>[0], id: string): ParticipantActor {
  const p = callerOf(req);
  if (p.kind === 'guest') {
    if (p.meeting !== id) throw guestElsewhere();
    return { kind: 'guest', meeting: p.meeting, guest: p.guest };
  }
  return p.kind === 'admin' ? { kind: 'admin' } : { kind: 'user', user: p.user };
}

export function participantRoutes(focus: Focus): (app: FastifyInstance) => void {
  const actorOf = participantActorOf;
  /** The name a joiner shows when it gives none: a user's user part, a guest's own, "admin". */
  const nameOf = (req: Parameters<typeof callerOf>[0]): string => {
    const p = callerOf(req);
    return p.kind === 'user' ? p.user.slice(0, p.user.lastIndexOf('@')) : p.kind === 'guest' ? p.displayName : 'admin';
  };

  return (app) => {
    answerMeetingErrors(app);

    app.post('/meetings/:id/join', { schema: docs.join }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      const body = parseInput(inputs.join, req.body ?? {}, 'body');
      const actor = actorOf(req, id);
      return admissionJson(await focus.join(actor, id, { displayName: body.displayName ?? nameOf(req), password: body.password, from: req.socket.remoteAddress }));
    });

    app.get('/meetings/:id/participants', { schema: docs.list }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return { participants: (await focus.participants(actorOf(req, id), id)).map(participantJson) };
    });

    app.get('/meetings/:id/participants/:pid', { schema: docs.get }, async (req) => {
      const { id, pid } = parseInput(inputs.participant, req.params, 'id');
      return admissionJson(await focus.participant(actorOf(req, id), id, pid));
    });

    app.post('/meetings/:id/participants/:pid/admit', { schema: docs.admit }, async (req) => {
      const { id, pid } = parseInput(inputs.participant, req.params, 'id');
      return participantJson(await focus.admit(actorOf(req, id), id, pid));
    });

    app.post('/meetings/:id/participants/:pid/deny', { schema: docs.deny }, async (req) => {
      const { id, pid } = parseInput(inputs.participant, req.params, 'id');
      return participantJson(await focus.deny(actorOf(req, id), id, pid));
    });

    app.delete('/meetings/:id/participants/:pid', { schema: docs.remove }, async (req) => {
      const { id, pid } = parseInput(inputs.participant, req.params, 'id');
      return participantJson(await focus.remove(actorOf(req, id), id, pid));
    });
  };
}
