/**
 * Moderation and history under `/v1/meetings/:id` (issue 19, items 4 and 8; mounted with
 * `http.routes(moderationRoutes(focus), { access: 'user' })`, and a participant's own media, mute and streams, with
 * `http.routes(participantMediaRoutes(focus), { access: 'guest' })`: a guest reports its mids like anyone, or no mute
 * would reach its feed on Janus): the focus (focus.ts) decides who may, and records every action in the meeting's history.
 *
 *   POST   /meetings/:id/participants/:pid/mute     { audio?, video? } (true mutes)  the participant's media; moderators, or itself within its block
 *   PUT    /meetings/:id/participants/:pid/streams  { audioMid?, videoMid? }  the participant's app reports its published mids
 *   PUT    /meetings/:id/participants/:pid/role     { role }  moderator | participant (moderators)
 *   POST   /meetings/:id/mute-all                   { media, mute?, allowUnmute? }  everyone's audio or video, late joiners included (moderators)
 *   GET    /meetings/:id/moderation                 the lock and the mute-alls (moderators and admitted participants)
 *   POST   /meetings/:id/lock, DELETE …/lock        no new participants / again open (moderators)
 *   POST   /meetings/:id/end                        everyone out, tokens revoked, the room destroyed (moderators)
 *   GET    /meetings/:id/history?limit=&cursor=     { entries, next? }  oldest first (moderators)
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { errors, isoTime, jsonSchema, pageQuery, parseInput, response } from '../platform/http/index.js';
import type { MeetingModeration } from '../platform/store/index.js';
import type { Focus, HistoryEntry, MediaState } from './focus.js';
import { participantActorOf, participantJson, participantOut } from './participant-routes.js';
import { answerMeetingErrors, meetingActorOf } from './routes.js';

export const HISTORY_PAGE = 100;
export const MAX_HISTORY_PAGE = 1000;

const id12 = (what: string) => z.string().regex(/^[a-z2-7]{12}$/, `not a ${what} id`);
const mid = z.string().regex(/^[\x21-\x7e]{1,64}$/, 'a mid is 1 to 64 printable characters without spaces');
const inputs = {
  meeting: z.strictObject({ id: id12('meeting') }),
  participant: z.strictObject({ id: id12('meeting'), pid: id12('participant') }),
  mute: z.strictObject({
    audio: z.boolean().optional().describe('true mutes the audio, false unmutes it; absent: unchanged'),
    video: z.boolean().optional().describe('true mutes the video, false unmutes it; absent: unchanged'),
  }).refine((b) => b.audio !== undefined || b.video !== undefined, 'name audio, video or both'),
  streams: z.strictObject({
    audioMid: mid.optional().describe('the mid of the published audio m-line'),
    videoMid: mid.optional().describe('the mid of the published video m-line'),
  }),
  role: z.strictObject({ role: z.enum(['moderator', 'participant']).describe('moderator: may admit, mute, lock, end; participant: takes the role back') }),
  muteAll: z.strictObject({
    media: z.enum(['audio', 'video']),
    mute: z.boolean().default(true).describe('false lifts the mute-all: nobody is unmuted, everyone may unmute itself again'),
    allowUnmute: z.boolean().default(false).describe('true: each may unmute itself; false: only a moderator unmutes ("ask to unmute")'),
  }),
  history: z.strictObject(pageQuery(HISTORY_PAGE, MAX_HISTORY_PAGE)),
};

const block = z.enum(['none', 'soft', 'hard']).describe('none: not muted; soft: muted, the participant may unmute itself; hard: muted until a moderator unmutes it');
const mediaOut = z.object({
  participantId: z.string(),
  audio: block,
  video: block,
  audioMid: z.string().optional().describe('as the participant\'s app reported it'),
  videoMid: z.string().optional(),
});
const moderationOut = z.object({ locked: z.boolean(), audio: block.describe('the mute-all of audio: what every publisher, late joiners included, gets'), video: block });
const entryOut = z.object({
  at: isoTime,
  kind: z.enum(['joined', 'admitted', 'denied', 'left', 'kicked', 'started', 'muted', 'unmuted', 'mute-all', 'unmute-all', 'locked', 'unlocked', 'role', 'ended', 'breakout-open', 'breakout-move', 'breakout-close', 'recording', 'node-moved']),
  actor: z.string().optional().describe('who did it (user@domain), for moderation actions of a user token'),
  participantId: z.string().optional(),
  user: z.string().optional(),
  displayName: z.string().optional(),
  detail: z.string().optional().describe('the medium, the new role, the breakout room, `started` or `stopped` of a recording, …'),
});

const tags = ['meetings'];
const meetingParams = jsonSchema(z.object({ id: z.string().describe('the meeting id') }));
const participantParams = jsonSchema(z.object({ id: z.string().describe('the meeting id'), pid: z.string().describe('the participant id') }));
const MODERATORS = 'Moderators only: the meeting\'s owner, an admin, or a participant with the moderator role. Recorded in the meeting\'s history.';
const lockDoc = (locked: boolean): FastifySchema => ({
  summary: locked ? 'Lock a meeting: nobody new joins' : 'Unlock a meeting', tags, params: meetingParams,
  description: `${MODERATORS} ${locked ? 'A locked meeting refuses the joins of everyone but its owner and admins (403); those already waiting may still be admitted.' : ''}`,
  response: { 200: response(moderationOut, 'the meeting\'s moderation state'), ...errors({ 400: 'a malformed id', 403: 'not a moderator of the meeting', 404: 'no such meeting' }) },
});
const docs: Record<'mute' | 'streams' | 'role' | 'muteAll' | 'moderation' | 'lock' | 'unlock' | 'end' | 'history', FastifySchema> = {
  mute: {
    summary: 'Mute or unmute a participant\'s audio or video', tags, params: participantParams, body: jsonSchema(inputs.mute),
    description: 'A moderator\'s mute is hard: only a moderator lifts it. The participant may mute itself (soft) and unmute itself unless its block is hard (403: ask a moderator). '
      + 'Applied on Janus with the videoroom `moderate` once the participant reported its stream mids; recorded in the history.',
    response: {
      200: response(mediaOut, 'the participant\'s media after the change'),
      ...errors({ 400: 'a malformed id or body', 403: 'not a moderator, or unmuting a hard block of one\'s own', 404: 'no such meeting or participant', 409: 'the participant is not admitted', 503: 'the meeting\'s Janus node is not available' }),
    },
  },
  streams: {
    summary: 'Report one\'s published streams (mids) to the focus', tags, params: participantParams, body: jsonSchema(inputs.streams),
    description: 'The participant itself, after its videoroom publish was answered: the focus then applies what moderation decided for it (a mute-all included). '
      + 'Janus\'s `moderate` names a stream by its mid, which the focus cannot learn from Janus\'s listparticipants.',
    response: {
      200: response(mediaOut, 'the participant\'s media'),
      ...errors({ 400: 'a malformed id or body', 403: 'not the participant itself', 404: 'no such meeting or participant', 409: 'not admitted, or Janus has no such stream of this publisher', 503: 'the meeting\'s Janus node is not available' }),
    },
  },
  role: {
    summary: 'Make a participant a moderator, or take the role back', tags, params: participantParams, body: jsonSchema(inputs.role),
    description: `${MODERATORS} The owner's role does not change; only a waiting or admitted participant's does.`,
    response: {
      200: response(participantOut, 'the participant with its new role'),
      ...errors({ 400: 'a malformed id or body', 403: 'not a moderator of the meeting', 404: 'no such meeting or participant', 409: 'the owner, or a participant no longer in the meeting' }),
    },
  },
  muteAll: {
    summary: 'Mute everyone\'s audio or video, late joiners included', tags, params: meetingParams, body: jsonSchema(inputs.muteAll),
    description: `${MODERATORS} With allowUnmute false ("ask to unmute") a participant's own unmute is refused until a moderator unmutes it. Lifting (mute false) unmutes nobody.`,
    response: {
      200: response(moderationOut, 'the meeting\'s moderation state'),
      ...errors({ 400: 'a malformed id or body', 403: 'not a moderator of the meeting', 404: 'no such meeting', 503: 'the meeting\'s Janus node is not available' }),
    },
  },
  moderation: {
    summary: 'A meeting\'s lock and mute-alls', tags, params: meetingParams,
    description: 'To its moderators and admitted participants.',
    response: { 200: response(moderationOut, 'the meeting\'s moderation state'), ...errors({ 400: 'a malformed id', 403: 'neither a moderator nor an admitted participant', 404: 'no such meeting' }) },
  },
  lock: lockDoc(true),
  unlock: lockDoc(false),
  end: {
    summary: 'End a meeting for everyone', tags, params: meetingParams,
    description: `${MODERATORS} Every Janus token is revoked and the room destroyed; every waiting or admitted participant has left; the lock and mutes are reset. The meeting stays (it may be joined again).`,
    response: {
      200: response(z.object({ ended: z.number().int().describe('how many participants were waiting or admitted') }), 'the meeting ended'),
      ...errors({ 400: 'a malformed id', 403: 'not a moderator of the meeting', 404: 'no such meeting', 503: 'the meeting\'s Janus node is not available' }),
    },
  },
  history: {
    summary: 'A meeting\'s history, oldest first', tags, params: meetingParams, querystring: jsonSchema(inputs.history),
    description: 'Joins, admissions, denials, leaves and kicks (from the participants), `started` (an admission into an empty room), every moderation action and `ended`. '
      + 'Moderators only. Pass `next` back as `cursor` for the entries after.',
    response: {
      200: response(z.object({ entries: z.array(entryOut), next: z.string().optional().describe('the cursor of the next page') }), 'a page of the history'),
      ...errors({ 400: 'a malformed id, query or cursor', 403: 'not a moderator of the meeting', 404: 'no such meeting' }),
    },
  },
};

const mediaJson = (m: MediaState) => m;
const moderationJson = (m: MeetingModeration) => ({ locked: m.locked, audio: m.audio, video: m.video });
const entryJson = (e: HistoryEntry) => ({ ...e, at: new Date(e.at).toISOString() });

/** A participant's media: its mute (by a moderator, or itself) and the mids its app reports; guests' tokens too. */
export function participantMediaRoutes(focus: Focus): (app: FastifyInstance) => void {
  return (app) => {
    answerMeetingErrors(app);

    app.post('/meetings/:id/participants/:pid/mute', { schema: docs.mute }, async (req) => {
      const { id, pid } = parseInput(inputs.participant, req.params, 'id');
      return mediaJson(await focus.mute(participantActorOf(req, id), id, pid, parseInput(inputs.mute, req.body ?? {}, 'body')));
    });

    app.put('/meetings/:id/participants/:pid/streams', { schema: docs.streams }, async (req) => {
      const { id, pid } = parseInput(inputs.participant, req.params, 'id');
      return mediaJson(await focus.streams(participantActorOf(req, id), id, pid, parseInput(inputs.streams, req.body ?? {}, 'body')));
    });
  };
}

export function moderationRoutes(focus: Focus): (app: FastifyInstance) => void {
  const actorOf = meetingActorOf;

  return (app) => {
    answerMeetingErrors(app);

    app.put('/meetings/:id/participants/:pid/role', { schema: docs.role }, async (req) => {
      const { id, pid } = parseInput(inputs.participant, req.params, 'id');
      return participantJson(await focus.setRole(actorOf(req), id, pid, parseInput(inputs.role, req.body ?? {}, 'body').role));
    });

    app.post('/meetings/:id/mute-all', { schema: docs.muteAll }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      const body = parseInput(inputs.muteAll, req.body ?? {}, 'body');
      return moderationJson(await focus.muteAll(actorOf(req), id, body.media, body.mute, body.allowUnmute));
    });

    app.get('/meetings/:id/moderation', { schema: docs.moderation }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return moderationJson(await focus.moderation(actorOf(req), id));
    });

    app.post('/meetings/:id/lock', { schema: docs.lock }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return moderationJson(await focus.lock(actorOf(req), id, true));
    });

    app.delete('/meetings/:id/lock', { schema: docs.unlock }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return moderationJson(await focus.lock(actorOf(req), id, false));
    });

    app.post('/meetings/:id/end', { schema: docs.end }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return { ended: await focus.endForAll(actorOf(req), id) };
    });

    app.get('/meetings/:id/history', { schema: docs.history }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      const q = parseInput(inputs.history, req.query, 'query');
      const page = await focus.history(actorOf(req), id, { after: q.cursor, limit: q.limit });
      return { entries: page.entries.map(entryJson), ...(page.next === undefined ? {} : { next: page.next }) };
    });
  };
}
