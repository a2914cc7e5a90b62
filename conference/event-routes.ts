/**
 * A participant's event stream (server-sent events, the WHATWG HTML "text/event-stream" format), so that apps learn at
 * once what otherwise they would poll for (mounted with access 'guest', like participant-routes.ts):
 *
 *   GET /meetings/:id/participants/:pid/events     text/event-stream, to the participant itself or a moderator
 *
 * Events (`event:` name, `data:` one line of JSON):
 *   participant  the same JSON as GET …/participants/{pid}: sent at once and on every change (admitted with its Janus
 *                grant, denied, kicked, left, moved to or from a breakout room, its room moved to another node);
 *   reconnect    `{ reason, janus }`: the room the app is in is not where it was — `node-down` (the meeting moved to
 *                another Janus node: connect there, join with the same token and feed id, publish and report the mids
 *                again) or `room` (a breakout move: join the room named);
 *   lobby        to moderators: `{ waiting: [participant …] }` on every change of who waits (a knock);
 *   end          `{ code, message }` when the stream ends because the participant cannot be read any more (the meeting
 *                was deleted). The stream also ends after a `participant` event whose state is final (left, kicked,
 *                denied).
 * Comments (`: keep-alive`) every 15 s keep proxies from closing an idle stream. A server that stops ends its streams
 * (the apps reconnect to another worker or node, as EventSource does by itself after `retry`).
 *
 * How it learns: MeetingSignals says "meeting X changed" (this worker's changes, and the other workers' through the
 * primary); the stream then reads the participant again and sends what differs. It also looks every 5 s, which covers
 * a signal lost between softswitch nodes until shared state moves to Redis. The cost is bounded: at most
 * STREAMS_PER_PARTICIPANT streams per participant (429 beyond), each a read per change of its meeting.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { Refusal, errors, jsonSchema, parseInput } from '../platform/http/index.js';
import type { Focus, ParticipantActor } from './focus.js';
import type { MeetingSignals } from './meeting-signals.js';
import { MeetingError } from './meetings.js';
import { admissionJson, participantActorOf, participantJson } from './participant-routes.js';
import { STATUS, answerMeetingErrors } from './routes.js';

const LOOK_EVERY_MS = 5000;
const KEEP_ALIVE_MS = 15_000;
/** A burst of changes (a mute-all, a breakout close) makes one read. */
const SETTLE_MS = 30;
/** An app may keep a few streams (tabs, a reconnect racing the old one); more is a leak or an attack. */
export const STREAMS_PER_PARTICIPANT = 5;
const FINAL = new Set(['left', 'kicked', 'denied']);

const id = z.string().regex(/^[a-z2-7]{12}$/, 'not an id');
const params = z.strictObject({ id, pid: id });

const doc: FastifySchema = {
  summary: 'A participant\'s event stream (server-sent events)', tags: ['meetings'],
  params: jsonSchema(z.object({ id: z.string().describe('the meeting id'), pid: z.string().describe('the participant id') })),
  description: 'text/event-stream. `participant` (the JSON of GET …/participants/{pid}) at once and on every change; `reconnect` `{ reason: "node-down" | "room", janus }` '
    + 'when the participant\'s room moved (another Janus node, or a breakout room); `lobby` `{ waiting }` to moderators when who waits changes; '
    + '`end` `{ code, message }` when the participant can no longer be read. The stream ends after a final state (left, kicked, denied). '
    + 'To the participant itself (its token, a guest\'s too) or a moderator; at most 5 streams per participant.',
  response: {
    200: { description: 'the event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
    ...errors({ 400: 'a malformed id', 403: 'a guest token of another meeting', 404: 'no such meeting or participant', 429: 'too many streams open for this participant' }),
  },
};

/** One server-sent event: a name and one line of JSON. */
function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function eventRoutes(focus: Focus, signals: MeetingSignals): (app: FastifyInstance) => void {
  const open = new Map<string, number>();
  /** Every stream's end: a server that stops ends them first, or its close would wait for them forever. */
  const live = new Set<() => void>();

  return (app) => {
    answerMeetingErrors(app);
    app.addHook('preClose', (done) => {
      for (const finish of [...live]) finish();
      done();
    });

    app.get('/meetings/:id/participants/:pid/events', { schema: doc }, async (req, reply) => {
      const { id: meetingId, pid } = parseInput(params, req.params, 'id');
      const actor: ParticipantActor = participantActorOf(req, meetingId);
      // Refusals (404, 403) answer as JSON before the stream starts.
      const first = admissionJson(await focus.participant(actor, meetingId, pid));
      const key = `${meetingId}/${pid}`;
      if ((open.get(key) ?? 0) >= STREAMS_PER_PARTICIPANT) throw new Refusal(429, `at most ${STREAMS_PER_PARTICIPANT} event streams per participant`, 'API_ERR_RATE_LIMITED');
      open.set(key, (open.get(key) ?? 0) + 1);
      const moderator = await focus.moderates(actor, meetingId);

      const out = new PassThrough();
      let last = '';
      let lastLobby = '';
      let lastJanus: { url: string; room: number } | undefined;
      let ended = false;
      let looking = false;
      let again = false;
      let settle: NodeJS.Timeout | undefined;

      const finish = (): void => {
        if (ended) return;
        ended = true;
        live.delete(finish);
        signals.off('changed', onChange);
        clearInterval(look);
        clearInterval(keepAlive);
        clearTimeout(settle);
        const n = (open.get(key) ?? 1) - 1;
        if (n <= 0) open.delete(key);
        else open.set(key, n);
        out.end();
      };
      const send = (event: string, data: unknown): void => {
        if (!ended) out.write(frame(event, data));
      };
      const sendParticipant = (json: ReturnType<typeof admissionJson>): void => {
        const text = JSON.stringify(json);
        if (text === last) return;
        last = text;
        send('participant', json);
        const janus = json.janus;
        if (janus !== undefined && lastJanus !== undefined && (janus.url !== lastJanus.url || janus.room !== lastJanus.room)) {
          send('reconnect', { reason: janus.url !== lastJanus.url ? 'node-down' : 'room', janus });
        }
        if (janus !== undefined) lastJanus = { url: janus.url, room: janus.room };
        if (FINAL.has(json.state)) finish();
      };
      const sendLobby = async (): Promise<void> => {
        if (!moderator) return;
        const waiting = (await focus.participants(actor, meetingId)).filter((p) => p.state === 'waiting').map(participantJson);
        const text = JSON.stringify(waiting);
        if (text === lastLobby) return;
        lastLobby = text;
        send('lobby', { waiting });
      };
      const refresh = async (): Promise<void> => {
        if (ended) return;
        if (looking) {
          again = true;
          return;
        }
        looking = true;
        try {
          do {
            again = false;
            sendParticipant(admissionJson(await focus.participant(actor, meetingId, pid)));
            if (!ended) await sendLobby();
          } while (again && !ended);
        } catch (err) {
          if (err instanceof MeetingError && err.code !== 'MEETING_ERR_UNAVAILABLE') {
            send('end', { code: STATUS[err.code].code, message: err.message });
            finish();
          }
          // A node or store that does not answer now: the next change or look tries again.
        } finally {
          looking = false;
        }
      };
      const onChange = (changed: string): void => {
        if (changed !== meetingId || settle !== undefined) return;
        settle = setTimeout(() => {
          settle = undefined;
          void refresh();
        }, SETTLE_MS);
      };
      const look = setInterval(() => void refresh(), LOOK_EVERY_MS);
      const keepAlive = setInterval(() => {
        if (!ended) out.write(': keep-alive\n\n');
      }, KEEP_ALIVE_MS);
      signals.on('changed', onChange);
      live.add(finish);
      reply.raw.once('close', finish);
      out.once('close', finish);

      out.write('retry: 3000\n\n');
      sendParticipant(first);
      if (!ended) await sendLobby().catch(() => undefined);
      return reply.code(200).header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-store').header('x-accel-buffering', 'no').send(out);
    });
  };
}
