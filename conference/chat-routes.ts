/**
 * The meeting's chat for whoever is in the meeting now, guests included (issue 19, item 6), mounted with
 * `http.routes(meetingChatRoutes(focus), { access: 'guest' })`:
 *
 *   GET  /meetings/:id/chat?limit=&cursor=   { messages, next? }  newest first; `next` is the cursor of older ones
 *   POST /meetings/:id/chat  { text }        201 the message
 *
 * Only a participant admitted right now (a user or a guest of this meeting) reads and posts: waiting, denied, left or
 * kicked is 403 AUTH_ERR_SCOPE, as is a guest token of another meeting. The messages are the meeting's group
 * conversation, the one member users read with /v1/conversations/{id}/messages and SIP MESSAGE: a user reads it as a
 * member (from when it joined the group), a guest from its admission on. A guest's messages are sent as
 * `guest:<guest id>` (no "@": never a user's address) and answered here with the guest's `senderName`. Size and rate
 * limits are the chat's (messaging.maxBodySize: 413; messaging.ratePerMinute: 429): the MeetingChat the server wires
 * in answers the chat's refusals as Refusals (and MeetingErrors), so this module needs nothing of messaging/.
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { Refusal, decodeCursor, encodeCursor, errors, isoTime, jsonSchema, pageQuery, parseInput, response } from '../platform/http/index.js';
import type { Focus, MeetingChatMessage } from './focus.js';
import { participantActorOf } from './participant-routes.js';
import { answerMeetingErrors } from './routes.js';

export const CHAT_PAGE = 50;
export const MAX_CHAT_PAGE = 200;

const meetingId = z.string().regex(/^[a-z2-7]{12}$/, 'not a meeting id');
const inputs = {
  meeting: z.strictObject({ id: meetingId }),
  page: z.strictObject(pageQuery(CHAT_PAGE, MAX_CHAT_PAGE)),
  post: z.strictObject({ text: z.string().min(1, 'expected a message').describe('plain text; at most messaging.maxBodySize bytes') }),
};

const messageOut = z.object({
  id: z.string(),
  kind: z.enum(['text', 'system']).describe('`system`: the group\'s own notes (who joined)'),
  sender: z.string().describe('user@domain; `guest:<guest id>` for a meeting guest; the group\'s address for its notes'),
  senderName: z.string().optional().describe('a guest\'s display name'),
  contentType: z.string(),
  body: z.string(),
  createdAt: isoTime,
});

const tags = ['meetings'];
const params = jsonSchema(z.object({ id: z.string().describe('the meeting id') }));
const refusals = {
  400: 'a malformed id, query, cursor or body', 403: 'not admitted in the meeting now (waiting, denied, left, kicked), or a guest token of another meeting',
  404: 'no such meeting (or the cursor names no message of its chat)', 503: 'the chat is off on this server (messaging.enabled)',
};
const docs: Record<'read' | 'post', FastifySchema> = {
  read: {
    summary: 'The meeting\'s chat, newest first', tags, params, querystring: jsonSchema(inputs.page),
    description: 'To a participant admitted now, users and guests alike: the meeting\'s group conversation (users see the same with '
      + '`/v1/conversations/{id}/messages`). A guest reads from its admission on. Pass `next` back as `cursor` for older messages.',
    response: {
      200: response(z.object({ messages: z.array(messageOut), next: z.string().optional().describe('the cursor of the older messages, when there are some') }), 'a page of the chat'),
      ...errors(refusals),
    },
  },
  post: {
    summary: 'Post to the meeting\'s chat', tags, params, body: jsonSchema(inputs.post),
    description: 'A participant admitted now, users and guests alike. Every member of the meeting\'s group gets it (API and SIP MESSAGE); '
      + 'a guest\'s message is sent as `guest:<guest id>`.',
    response: {
      201: response(messageOut, 'the message as stored'),
      ...errors({ ...refusals, 413: 'the message is larger than messaging.maxBodySize', 429: 'too many messages; Retry-After says when to come back' }),
    },
  },
};

function messageJson(m: MeetingChatMessage, names: ReadonlyMap<string, string>) {
  const senderName = names.get(m.sender);
  return {
    id: m.id, kind: m.kind, sender: m.sender, ...(senderName === undefined ? {} : { senderName }), contentType: m.contentType, body: m.body,
    createdAt: new Date(m.createdAt).toISOString(),
  };
}

export function meetingChatRoutes(focus: Focus): (app: FastifyInstance) => void {
  return (app) => {
    answerMeetingErrors(app);

    app.get('/meetings/:id/chat', { schema: docs.read }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      const q = parseInput(inputs.page, req.query, 'query');
      const before = q.cursor === undefined ? undefined : decodeCursor(q.cursor, 1)[0];
      if (before !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(before)) throw new Refusal(400, 'cursor: not a cursor this list made (pass back `next` as it was answered)');
      const page = await focus.chatMessages(participantActorOf(req, id), id, { before, limit: q.limit });
      const last = page.messages[page.messages.length - 1];
      return {
        messages: page.messages.map((m) => messageJson(m, page.names)),
        ...(page.more && last !== undefined ? { next: encodeCursor([last.id]) } : {}),
      };
    });

    app.post('/meetings/:id/chat', { schema: docs.post }, async (req, reply) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      const { text } = parseInput(inputs.post, req.body, 'body');
      const posted = await focus.chatPost(participantActorOf(req, id), id, text);
      return reply.code(201).send(messageJson(posted.message, posted.names));
    });
  };
}
