/**
 * Breakout rooms under `/v1/meetings/:id` (issue 19, item 5; mounted with `http.routes(breakoutRoutes(focus),
 * { access: 'guest' })`: a guest chooses a room when allowed, in its own meeting only). The focus (focus.ts) decides
 * who may, moves Janus tokens between the rooms' `allowed` lists, and records every action in the meeting's history.
 *
 *   POST   /meetings/:id/breakouts                    201 { rooms, names?, allowChoose?, durationS? }  opens N rooms (moderators)
 *   GET    /meetings/:id/breakouts                    the rooms and who is in each (moderators and admitted participants)
 *   DELETE /meetings/:id/breakouts                    everyone back in the main room, the rooms destroyed (moderators)
 *   PUT    /meetings/:id/participants/:pid/breakout   { room }  moves a participant (moderators), or itself with allowChoose; 0: the main room
 *
 * "Media follows": the answer (and the participant's poll, GET …/participants/:pid) names the videoroom to join; the
 * app joins it with the Janus token it has, Janus having kicked its feed from the room it left.
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { errors, isoTime, jsonSchema, parseInput, response } from '../platform/http/index.js';
import { MAX_BREAKOUT_ROOMS } from '../platform/store/index.js';
import type { BreakoutMove, BreakoutView, Focus } from './focus.js';
import { participantActorOf } from './participant-routes.js';
import { answerMeetingErrors } from './routes.js';

/** A breakout lasts a day at most: a longer timer is a mistake, not a meeting. */
export const MAX_BREAKOUT_S = 24 * 3600;

const id12 = (what: string) => z.string().regex(/^[a-z2-7]{12}$/, `not a ${what} id`);
const inputs = {
  meeting: z.strictObject({ id: id12('meeting') }),
  participant: z.strictObject({ id: id12('meeting'), pid: id12('participant') }),
  open: z.strictObject({
    rooms: z.number().int().min(1).max(MAX_BREAKOUT_ROOMS).describe('how many breakout rooms'),
    names: z.array(z.string().trim().min(1, 'must not be empty').max(255)).max(MAX_BREAKOUT_ROOMS).optional().describe('the names of the first rooms; the others are "Room n"'),
    allowChoose: z.boolean().default(false).describe('true: participants choose a room themselves (PUT …/participants/{pid}/breakout)'),
    durationS: z.number().int().min(1).max(MAX_BREAKOUT_S).optional().describe('the rooms close by themselves (everyone back) after this many seconds'),
  }),
  move: z.strictObject({ room: z.number().int().min(0).max(MAX_BREAKOUT_ROOMS).describe('the breakout room number; 0: back to the main room') }),
};

const viewOut = z.object({
  open: z.boolean().describe('false: no breakout rooms (never opened, or closed); everyone is in the main room'),
  allowChoose: z.boolean(),
  endsAt: isoTime.optional().describe('when the rooms close by themselves'),
  rooms: z.array(z.object({
    number: z.number().int().describe('1 …'),
    name: z.string(),
    room: z.number().int().describe('its videoroom id'),
    participants: z.array(z.string()).describe('the participant ids in it'),
  })),
});
const moveOut = z.object({
  participantId: z.string(),
  breakout: z.number().int().describe('the room it is in now: 1 …, or 0 for the main room'),
  room: z.number().int().describe('the videoroom its app joins, with the same Janus token'),
});

const tags = ['meetings'];
const meetingParams = jsonSchema(z.object({ id: z.string().describe('the meeting id') }));
const participantParams = jsonSchema(z.object({ id: z.string().describe('the meeting id'), pid: z.string().describe('the participant id') }));
const MODERATORS = 'Moderators only: the meeting\'s owner, an admin, or a participant with the moderator role. Recorded in the meeting\'s history.';
const docs: Record<'open' | 'list' | 'close' | 'move', FastifySchema> = {
  open: {
    summary: 'Open breakout rooms', tags, params: meetingParams, body: jsonSchema(inputs.open),
    description: `${MODERATORS} Each room is a videoroom of its own, created when its first participant is moved in. Everyone stays in the main room until moved `
      + '(or until it chooses, with allowChoose). With durationS the rooms close by themselves: a timer of the server that opened them, and, should that server be gone, '
      + 'the next request about the rooms after the end time.',
    response: {
      201: response(viewOut, 'the rooms'),
      ...errors({ 400: 'a malformed id or body', 403: 'not a moderator of the meeting', 404: 'no such meeting', 409: 'breakout rooms are open already', 503: 'no Janus node' }),
    },
  },
  list: {
    summary: 'A meeting\'s breakout rooms and who is in each', tags, params: meetingParams,
    description: 'To its moderators and admitted participants (guests included): the rooms to choose from, with allowChoose.',
    response: { 200: response(viewOut, 'the rooms'), ...errors({ 400: 'a malformed id', 403: 'neither a moderator nor an admitted participant', 404: 'no such meeting' }) },
  },
  close: {
    summary: 'Close the breakout rooms: everyone back in the main room', tags, params: meetingParams,
    description: `${MODERATORS} Every participant's token goes back on the main room's list and the breakout rooms are destroyed (Janus kicks who is in them): apps re-join the main room.`,
    response: {
      200: response(z.object({ back: z.number().int().describe('how many admitted participants came back from a breakout room') }), 'the rooms closed'),
      ...errors({ 400: 'a malformed id', 403: 'not a moderator of the meeting', 404: 'no such meeting', 409: 'no breakout rooms are open', 503: 'the meeting\'s Janus node is not available' }),
    },
  },
  move: {
    summary: 'Move a participant to a breakout room, or back to the main room', tags, params: participantParams, body: jsonSchema(inputs.move),
    description: 'A moderator moves any admitted participant; a participant moves itself when the rooms were opened with allowChoose. Its Janus token goes on the target room\'s '
      + '`allowed` list and off the previous room\'s, and its feed is kicked from the previous room: its app joins the room answered with the token it has. Recorded in the history.',
    response: {
      200: response(moveOut, 'where the participant is now'),
      ...errors({
        400: 'a malformed id or body', 403: 'not a moderator, or choosing when the moderators assign', 404: 'no such meeting, participant or breakout room',
        409: 'no breakout rooms are open, or the participant is not admitted', 503: 'the meeting\'s Janus node is not available',
      }),
    },
  },
};

const viewJson = (v: BreakoutView) => ({ ...v, endsAt: v.endsAt === undefined ? undefined : new Date(v.endsAt).toISOString() });
const moveJson = (m: BreakoutMove) => m;

export function breakoutRoutes(focus: Focus): (app: FastifyInstance) => void {
  return (app) => {
    answerMeetingErrors(app);

    app.post('/meetings/:id/breakouts', { schema: docs.open }, async (req, reply) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      const body = parseInput(inputs.open, req.body ?? {}, 'body');
      return reply.code(201).send(viewJson(await focus.openBreakouts(participantActorOf(req, id), id, body)));
    });

    app.get('/meetings/:id/breakouts', { schema: docs.list }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return viewJson(await focus.breakouts(participantActorOf(req, id), id));
    });

    app.delete('/meetings/:id/breakouts', { schema: docs.close }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return { back: await focus.closeBreakouts(participantActorOf(req, id), id) };
    });

    app.put('/meetings/:id/participants/:pid/breakout', { schema: docs.move }, async (req) => {
      const { id, pid } = parseInput(inputs.participant, req.params, 'id');
      return moveJson(await focus.moveToBreakout(participantActorOf(req, id), id, pid, parseInput(inputs.move, req.body ?? {}, 'body').room));
    });
  };
}
