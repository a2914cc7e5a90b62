/**
 * The chat API for the apps, mounted with `http.routes(chatRoutes(chat), { access: 'user' })` (platform/http
 * prefixes `/v1`):
 *
 *   GET    /conversations?limit=                          { conversations }           user token
 *   POST   /conversations            { peer }             201 the direct conversation user token
 *   GET    /conversations/:id/messages?before=|after=&limit=   a MessagePage (oldest first)
 *   POST   /conversations/:id/messages { body, contentType? }   201 the message     user token
 *   POST   /conversations/:id/read   { messageId }        { unread }                  user token
 *   GET    /conversations/:id/search?q=&limit=            { messages } newest first
 *   DELETE /messages/:id                                  204 (delete for me)         user token
 *   GET    /messages/:id/receipts                         { receipts }
 *   POST   /groups                   { name, members, domain? }  201 the group    user token
 *   GET    /groups/:id/members                            { members }
 *   PUT    /groups/:id/members/:user { role? }            204 add, or change the role
 *   DELETE /groups/:id/members/:user                      204 remove (or leave)
 *
 * Who may do what is the service's decision (ChatApi checks the actor on every call); this layer checks the
 * shape of the request, says who asks (the token's user, or an admin), and turns ChatError codes into HTTP
 * statuses. "User token" routes act as a user (send as them, read for them): an admin token gets 403 there.
 * Users are `user@domain`, the domain lower-cased (RFC 3261 §19.1.4: the host is case-insensitive, the user
 * part is not). Times are ISO-8601 UTC text, like /v1/calls.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { z } from 'zod';
import { API_ERRORS, type ApiErrorCode, apiError, errors, isoTime, jsonSchema, noContent, normalizeUser, principalOf, response } from '../platform/http/index.js';
import {
  ChatError, type ChatActor, type ChatConversation, type ChatErrorCode, type ChatMember, type ChatMessage, type ChatReceipt, type ChatApi,
} from './types.js';

export const DEFAULT_LIMIT = 50;
/** Largest page of conversations, messages or search results. */
export const MAX_LIMIT = 200;
/** Members named in one POST /groups at most (the service applies messaging.maxGroupMembers). */
export const MAX_GROUP_MEMBERS_IN_REQUEST = 10_000;

/**
 * The API's code of each ChatError code (its status follows, API_ERRORS): the generic code where the status
 * says it all, CHAT_ERR_* where the chat service says more (a group's membership, not the token's scope).
 */
export const CHAT_ERROR_CODE: Readonly<Record<ChatErrorCode, ApiErrorCode>> = {
  'not-found': 'API_ERR_NOT_FOUND',
  forbidden: 'CHAT_ERR_FORBIDDEN',
  'too-large': 'API_ERR_TOO_LARGE',
  'unsupported-type': 'API_ERR_UNSUPPORTED_TYPE',
  'rate-limited': 'API_ERR_RATE_LIMITED',
  'group-full': 'CHAT_ERR_GROUP_FULL',
  invalid: 'API_ERR_INVALID',
};


const user = z.string().max(511).regex(/^[^@\s/]+@[^@\s/]+$/, 'expected user@domain').transform(normalizeUser);
/** Conversation ids (`d-…`, `group-…`) and message ids (base64url): nothing else is ever valid. */
const id = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'expected an id');
const limit = z.string().regex(/^\d{1,4}$/, 'expected a whole number').transform(Number).pipe(z.number().min(1).max(MAX_LIMIT)).default(DEFAULT_LIMIT);
/** A MIME type without parameters or with them (`text/plain; charset=utf-8`), as a client sends it. */
const contentType = z.string().max(255).regex(/^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=("[^"\r\n]*"|[A-Za-z0-9!#$&^_.+-]+))*$/, 'expected a MIME type such as text/plain');

const schemas = {
  idParams: z.strictObject({ id }),
  memberParams: z.strictObject({ id, user }),
  listQuery: z.strictObject({ limit }),
  pageQuery: z.strictObject({ before: id.optional(), after: id.optional(), limit })
    .refine((q) => q.before === undefined || q.after === undefined, { message: 'before and after cannot be combined', path: ['before'] }),
  searchQuery: z.strictObject({ q: z.string().min(1, 'expected some text').max(256), limit }),
  direct: z.strictObject({ peer: user }),
  send: z.strictObject({ body: z.string().min(1, 'expected a message'), contentType: contentType.default('text/plain') }),
  read: z.strictObject({ messageId: id }),
  group: z.strictObject({
    name: z.string().trim().min(1, 'expected a name').max(100),
    members: z.array(user).max(MAX_GROUP_MEMBERS_IN_REQUEST),
    domain: z.string().max(255).regex(/^[A-Za-z0-9.-]+$/, 'expected a domain name').transform((d) => d.toLowerCase()).optional(),
  }),
  role: z.strictObject({ role: z.enum(['admin', 'member']).optional() }),
};

/** The answers as messageToJson() and the others write them. */
const out = (() => {
  const message = z.object({
    id: z.string(), seq: z.number().int(), conversationId: z.string(), kind: z.enum(['text', 'system', 'imdn']), sender: z.string(),
    contentType: z.string(), body: z.string(), imdnId: z.string().optional(), createdAt: isoTime,
  });
  const conversation = z.object({
    id: z.string(), kind: z.enum(['direct', 'group']), uri: z.string().describe('the group\'s SIP URI, or the other user\'s AoR'),
    name: z.string().optional(), role: z.enum(['owner', 'admin', 'member']), last: message.optional(), unread: z.number().int(),
  });
  const receipt = z.object({ user: z.string(), device: z.string(), deliveredAt: isoTime.optional(), displayedAt: isoTime.optional() });
  const member = z.object({ user: z.string(), role: z.enum(['owner', 'admin', 'member']), joinedAt: isoTime });
  return { message, conversation, receipt, member };
})();

/** Every refusal a chat route may answer (a ChatError's code as CHAT_ERROR_CODE says). */
const chatErrors = (extra: Record<number, string> = {}) => errors({
  400: 'a malformed request (the error names the field)', 403: 'not allowed (not a member, or the route needs a user token)',
  404: 'no such conversation or message, or not visible to this user', 429: 'too many messages; Retry-After says when to come back', ...extra,
});
const params = jsonSchema(schemas.idParams);
const tags = ['chat'];

const docs: Record<string, FastifySchema> = {
  conversations: {
    summary: 'The user\'s conversations, the latest first', tags, querystring: jsonSchema(schemas.listQuery),
    response: { 200: response(z.object({ conversations: z.array(out.conversation) }), 'the conversations, with their last message and unread count'), ...chatErrors() },
  },
  direct: {
    summary: 'The direct conversation with a user (created when new)', tags, body: jsonSchema(schemas.direct),
    response: { 201: response(out.conversation, 'the conversation'), ...chatErrors() },
  },
  messages: {
    summary: 'A page of messages, oldest first', description: 'Pass `before` (or `after`) back for the page before (or after).',
    tags, params, querystring: jsonSchema(schemas.pageQuery),
    response: {
      200: response(z.object({ messages: z.array(out.message), before: z.string().optional(), after: z.string().optional() }), 'the page, and the cursors of the pages around it'),
      ...chatErrors(),
    },
  },
  send: {
    summary: 'Send a message', tags, params, body: jsonSchema(schemas.send),
    response: { 201: response(out.message, 'the message as stored'), ...chatErrors({ 413: 'the message is too large', 415: 'the content type is not accepted' }) },
  },
  read: {
    summary: 'Mark the conversation read up to a message', tags, params, body: jsonSchema(schemas.read),
    response: { 200: response(z.object({ unread: z.number().int() }), 'the messages still unread'), ...chatErrors() },
  },
  search: {
    summary: 'Messages containing a text, newest first', tags, params, querystring: jsonSchema(schemas.searchQuery),
    response: { 200: response(z.object({ messages: z.array(out.message) }), 'the messages found'), ...chatErrors() },
  },
  hide: { summary: 'Delete a message for me', tags, params, response: { 204: noContent, ...chatErrors() } },
  receipts: {
    summary: 'Delivery and read receipts of a message, per device', tags, params,
    response: { 200: response(z.object({ receipts: z.array(out.receipt) }), 'the receipts'), ...chatErrors() },
  },
  group: {
    summary: 'Create a group', tags, body: jsonSchema(schemas.group),
    response: { 201: response(out.conversation, 'the group\'s conversation'), ...chatErrors({ 409: 'too many members' }) },
  },
  members: {
    summary: 'A group\'s members', tags, params,
    response: { 200: response(z.object({ members: z.array(out.member) }), 'the members'), ...chatErrors() },
  },
  addMember: {
    summary: 'Add a member, or change a member\'s role', tags, params: jsonSchema(schemas.memberParams), body: jsonSchema(schemas.role),
    response: { 204: noContent, ...chatErrors({ 409: 'the group is full' }) },
  },
  removeMember: {
    summary: 'Remove a member (or leave)', tags, params: jsonSchema(schemas.memberParams),
    response: { 204: noContent, ...chatErrors() },
  },
};

/** Thrown by parse(): answered 400 naming the field. */
class BadRequest extends Error {}

function parse<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const reason = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message;
  throw new BadRequest(`${issue.path.join('.') || where}: ${reason}`);
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

export function messageToJson(message: ChatMessage): Record<string, unknown> {
  return { ...message, createdAt: iso(message.createdAt) };
}

export function conversationToJson(conversation: ChatConversation): Record<string, unknown> {
  return { ...conversation, last: conversation.last === undefined ? undefined : messageToJson(conversation.last) };
}

const receiptToJson = (receipt: ChatReceipt) => ({ ...receipt, deliveredAt: iso(receipt.deliveredAt), displayedAt: iso(receipt.displayedAt) });
const memberToJson = (member: ChatMember) => ({ ...member, joinedAt: iso(member.joinedAt) });

/** Thrown for a user-only route called with an admin token. */
class NeedsUser extends Error {}

function actorOf(req: FastifyRequest): ChatActor {
  const principal = principalOf(req);
  return principal.kind === 'user' ? { kind: 'user', user: principal.user } : { kind: 'admin' };
}

function userActorOf(req: FastifyRequest): ChatActor & { kind: 'user' } {
  const actor = actorOf(req);
  if (actor.kind !== 'user') throw new NeedsUser();
  return actor;
}

/** Runs a route's work and answers its refusals: 400 for the request's shape, the ChatError's status, 403 for an admin on a user route. */
async function answer(reply: FastifyReply, work: () => Promise<unknown>): Promise<unknown> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof BadRequest) return apiError(reply, 400, err.message);
    if (err instanceof NeedsUser) return apiError(reply, 403, 'needs a user token');
    if (err instanceof ChatError) {
      // RFC 6585 §4: 429 says when to come back; the service knows, else a second is a safe guess.
      if (err.code === 'rate-limited') void reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfterS ?? 1))));
      return apiError(reply, API_ERRORS[CHAT_ERROR_CODE[err.code]].status, err.message, CHAT_ERROR_CODE[err.code]);
    }
    throw err;
  }
}

export function chatRoutes(chat: ChatApi): (app: FastifyInstance) => void {
  return (app) => {
    app.get('/conversations', { schema: docs.conversations }, (req, reply) => answer(reply, async () => {
      const actor = userActorOf(req);
      const { limit } = parse(schemas.listQuery, req.query, 'query');
      return { conversations: (await chat.conversations(actor, { limit })).map(conversationToJson) };
    }));

    app.post('/conversations', { schema: docs.direct }, (req, reply) => answer(reply, async () => {
      const actor = userActorOf(req);
      const { peer } = parse(schemas.direct, req.body, 'body');
      return reply.code(201).send(conversationToJson(await chat.direct(actor, peer)));
    }));

    app.get('/conversations/:id/messages', { schema: docs.messages }, (req, reply) => answer(reply, async () => {
      const { id } = parse(schemas.idParams, req.params, 'path');
      const query = parse(schemas.pageQuery, req.query, 'query');
      const options: { before?: string; after?: string; limit: number } = { limit: query.limit };
      if (query.before !== undefined) options.before = query.before;
      if (query.after !== undefined) options.after = query.after;
      const page = await chat.messages(actorOf(req), id, options);
      return {
        messages: page.messages.map(messageToJson),
        ...(page.before === undefined ? {} : { before: page.before }),
        ...(page.after === undefined ? {} : { after: page.after }),
      };
    }));

    app.post('/conversations/:id/messages', { schema: docs.send }, (req, reply) => answer(reply, async () => {
      const actor = userActorOf(req);
      const { id } = parse(schemas.idParams, req.params, 'path');
      const message = parse(schemas.send, req.body, 'body');
      return reply.code(201).send(messageToJson(await chat.send(actor, id, { contentType: message.contentType, body: message.body })));
    }));

    app.post('/conversations/:id/read', { schema: docs.read }, (req, reply) => answer(reply, async () => {
      const actor = userActorOf(req);
      const { id } = parse(schemas.idParams, req.params, 'path');
      const { messageId } = parse(schemas.read, req.body, 'body');
      return chat.markRead(actor, id, messageId);
    }));

    app.get('/conversations/:id/search', { schema: docs.search }, (req, reply) => answer(reply, async () => {
      const { id } = parse(schemas.idParams, req.params, 'path');
      const { q, limit } = parse(schemas.searchQuery, req.query, 'query');
      return { messages: (await chat.search(actorOf(req), id, q, limit)).map(messageToJson) };
    }));

    app.delete('/messages/:id', { schema: docs.hide }, (req, reply) => answer(reply, async () => {
      const actor = userActorOf(req);
      const { id } = parse(schemas.idParams, req.params, 'path');
      await chat.hide(actor, id);
      return reply.code(204).send();
    }));

    app.get('/messages/:id/receipts', { schema: docs.receipts }, (req, reply) => answer(reply, async () => {
      const { id } = parse(schemas.idParams, req.params, 'path');
      return { receipts: (await chat.receipts(actorOf(req), id)).map(receiptToJson) };
    }));

    app.post('/groups', { schema: docs.group }, (req, reply) => answer(reply, async () => {
      const actor = userActorOf(req);
      const group = parse(schemas.group, req.body, 'body');
      const created = await chat.createGroup(actor, { name: group.name, members: group.members, ...(group.domain === undefined ? {} : { domain: group.domain }) });
      return reply.code(201).send(conversationToJson(created));
    }));

    app.get('/groups/:id/members', { schema: docs.members }, (req, reply) => answer(reply, async () => {
      const { id } = parse(schemas.idParams, req.params, 'path');
      return { members: (await chat.members(actorOf(req), id)).map(memberToJson) };
    }));

    app.put('/groups/:id/members/:user', { schema: docs.addMember }, (req, reply) => answer(reply, async () => {
      const { id, user } = parse(schemas.memberParams, req.params, 'path');
      const { role } = parse(schemas.role, req.body, 'body');
      await chat.addMember(actorOf(req), id, user, role);
      return reply.code(204).send();
    }));

    app.delete('/groups/:id/members/:user', { schema: docs.removeMember }, (req, reply) => answer(reply, async () => {
      const { id, user } = parse(schemas.memberParams, req.params, 'path');
      await chat.removeMember(actorOf(req), id, user);
      return reply.code(204).send();
    }));
  };
}
