/**
 * The chat HTTP API (messaging/routes.ts) on a real HttpServer on loopback, with real admin and user tokens
 * from a temporary SQLite store, over an in-memory ChatApi that records its calls (the unit under test is
 * the route layer): who is passed as the actor, request validation, pagination parameters, ChatError codes
 * as HTTP statuses, and admin tokens refused where the route acts as a user.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { chatRoutes } from '../../../messaging/routes.js';
import {
  ChatError, type ChatActor, type ChatApi, type ChatConversation, type ChatErrorCode, type ChatMember, type ChatMessage, type ChatReceipt, type MessagePage,
} from '../../../messaging/types.js';
import { type HttpApp, startHttpApp } from '../../helpers/http-app.js';

const T0 = Date.parse('2026-12-07T08:00:00Z');

function message(id: string, seq: number, over: Partial<ChatMessage> = {}): ChatMessage {
  return { id, seq, conversationId: 'd-conv', kind: 'text', sender: 'bob@example.com', contentType: 'text/plain', body: `text ${id}`, createdAt: T0 + seq * 1000, ...over };
}

/** Records every call; answers canned values; throws `failWith` once when set. */
class RecordingChat implements ChatApi {
  calls: Array<{ method: string; args: unknown[] }> = [];
  failWith: Error | undefined;
  page: MessagePage = { messages: [message('m1', 1), message('m2', 2)] };

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const err = this.failWith;
    this.failWith = undefined;
    if (err !== undefined) throw err;
  }

  last(): { method: string; args: unknown[] } | undefined {
    return this.calls.at(-1);
  }

  private conversation(id: string, over: Partial<ChatConversation> = {}): ChatConversation {
    return { id, kind: 'direct', uri: 'sip:bob@example.com', role: 'member', unread: 1, last: message('m2', 2), ...over };
  }

  async conversations(actor: ChatActor & { kind: 'user' }, options: { limit: number }): Promise<ChatConversation[]> {
    this.record('conversations', actor, options);
    return [this.conversation('d-conv')];
  }

  async direct(actor: ChatActor & { kind: 'user' }, peer: string): Promise<ChatConversation> {
    this.record('direct', actor, peer);
    return this.conversation('d-conv', { uri: `sip:${peer}`, last: undefined, unread: 0 });
  }

  async messages(actor: ChatActor, conversationId: string, options: { before?: string; after?: string; limit: number }): Promise<MessagePage> {
    this.record('messages', actor, conversationId, options);
    return this.page;
  }

  async send(actor: ChatActor & { kind: 'user' }, conversationId: string, msg: { contentType: string; body: string }): Promise<ChatMessage> {
    this.record('send', actor, conversationId, msg);
    return message('m3', 3, { conversationId, sender: actor.user, ...msg });
  }

  async markRead(actor: ChatActor & { kind: 'user' }, conversationId: string, messageId: string): Promise<{ unread: number }> {
    this.record('markRead', actor, conversationId, messageId);
    return { unread: 4 };
  }

  async hide(actor: ChatActor & { kind: 'user' }, messageId: string): Promise<void> {
    this.record('hide', actor, messageId);
  }

  async search(actor: ChatActor, conversationId: string, text: string, limit: number): Promise<ChatMessage[]> {
    this.record('search', actor, conversationId, text, limit);
    return [message('m2', 2)];
  }

  async receipts(actor: ChatActor, messageId: string): Promise<ChatReceipt[]> {
    this.record('receipts', actor, messageId);
    return [{ user: 'bob@example.com', device: 'phone', deliveredAt: T0, displayedAt: undefined }];
  }

  async createGroup(actor: ChatActor & { kind: 'user' }, group: { name: string; domain?: string; members: string[] }): Promise<ChatConversation> {
    this.record('createGroup', actor, group);
    return this.conversation('group-g1', { kind: 'group', uri: 'sip:group-g1@example.com', name: group.name, role: 'owner', last: undefined, unread: 0 });
  }

  async members(actor: ChatActor, groupId: string): Promise<ChatMember[]> {
    this.record('members', actor, groupId);
    return [{ user: 'alice@example.com', role: 'owner', joinedAt: T0 }];
  }

  async addMember(actor: ChatActor, groupId: string, user: string, role?: 'admin' | 'member'): Promise<void> {
    this.record('addMember', actor, groupId, user, role);
  }

  async removeMember(actor: ChatActor, groupId: string, user: string): Promise<void> {
    this.record('removeMember', actor, groupId, user);
  }
}

const ALICE: ChatActor = { kind: 'user', user: 'alice@example.com' };
const ADMIN: ChatActor = { kind: 'admin' };

describe('the chat API: /v1/conversations, /v1/messages, /v1/groups', () => {
  const chat = new RecordingChat();
  let app: HttpApp;

  const asAlice = (method: string, path: string, body?: unknown) => app.call(method, path, app.tokens.alice!, body);
  const asAdmin = (method: string, path: string, body?: unknown) => app.call(method, path, app.adminToken, body);

  before(async () => {
    app = await startHttpApp(['alice'], () => chatRoutes(chat));
  });

  after(async () => {
    await app?.close();
  });

  beforeEach(() => {
    chat.calls = [];
    chat.failWith = undefined;
  });

  it('GET /conversations lists the token user\'s conversations, 50 by default, times as ISO-8601 text', async () => {
    const { status, body } = await asAlice('GET', '/conversations');
    assert.equal(status, 200);
    assert.deepEqual(chat.last(), { method: 'conversations', args: [ALICE, { limit: 50 }] });
    const [conversation] = body.conversations as Array<Record<string, unknown>>;
    assert.equal(conversation!.id, 'd-conv');
    assert.equal((conversation!.last as Record<string, unknown>).createdAt, '2026-12-07T08:00:02.000Z');
    await asAlice('GET', '/conversations?limit=7');
    assert.deepEqual(chat.last()?.args[1], { limit: 7 });
  });

  it('POST /conversations opens the direct conversation with the peer (domain lower-cased): 201', async () => {
    const { status, body } = await asAlice('POST', '/conversations', { peer: 'Bob@Example.COM' });
    assert.equal(status, 201);
    assert.deepEqual(chat.last(), { method: 'direct', args: [ALICE, 'Bob@example.com'] });
    assert.equal(body.uri, 'sip:Bob@example.com');
  });

  it('GET /conversations/:id/messages passes before/after/limit through and answers the page with its cursors', async () => {
    chat.page = { messages: [message('m1', 1), message('m2', 2)], before: 'm1', after: 'm2' };
    const older = await asAlice('GET', '/conversations/d-conv/messages?before=m5&limit=2');
    assert.equal(older.status, 200);
    assert.deepEqual(chat.last(), { method: 'messages', args: [ALICE, 'd-conv', { before: 'm5', limit: 2 }] });
    assert.deepEqual((older.body.messages as ChatMessage[]).map((m) => m.id), ['m1', 'm2']);
    assert.equal((older.body.messages as Array<{ createdAt: string }>)[0]!.createdAt, '2026-12-07T08:00:01.000Z');
    assert.equal(older.body.before, 'm1');
    assert.equal(older.body.after, 'm2');

    chat.page = { messages: [message('m9', 9)] };
    const newer = await asAlice('GET', '/conversations/d-conv/messages?after=m8');
    assert.deepEqual(chat.last()?.args[2], { after: 'm8', limit: 50 });
    assert.ok(!('before' in newer.body) && !('after' in newer.body), 'no cursor where there is no page');
  });

  it('reading routes take an admin token and pass an admin actor', async () => {
    assert.equal((await asAdmin('GET', '/conversations/d-conv/messages')).status, 200);
    assert.deepEqual(chat.last(), { method: 'messages', args: [ADMIN, 'd-conv', { limit: 50 }] });
    assert.equal((await asAdmin('GET', '/conversations/d-conv/search?q=hello')).status, 200);
    assert.deepEqual(chat.last(), { method: 'search', args: [ADMIN, 'd-conv', 'hello', 50] });
    assert.equal((await asAdmin('GET', '/messages/m1/receipts')).status, 200);
    assert.deepEqual(chat.last(), { method: 'receipts', args: [ADMIN, 'm1'] });
    assert.equal((await asAdmin('GET', '/groups/group-g1/members')).status, 200);
    assert.equal((await asAdmin('PUT', '/groups/group-g1/members/carol@example.com', { role: 'member' })).status, 204);
    assert.deepEqual(chat.last(), { method: 'addMember', args: [ADMIN, 'group-g1', 'carol@example.com', 'member'] });
    assert.equal((await asAdmin('DELETE', '/groups/group-g1/members/carol@example.com')).status, 204);
    assert.deepEqual(chat.last(), { method: 'removeMember', args: [ADMIN, 'group-g1', 'carol@example.com'] });
  });

  it('routes that act as a user refuse an admin token with 403 "needs a user token", without calling the service', async () => {
    const userOnly: Array<[string, string, unknown?]> = [
      ['GET', '/conversations'],
      ['POST', '/conversations', { peer: 'bob@example.com' }],
      ['POST', '/conversations/d-conv/messages', { body: 'hi' }],
      ['POST', '/conversations/d-conv/read', { messageId: 'm1' }],
      ['DELETE', '/messages/m1'],
      ['POST', '/groups', { name: 'team', members: ['bob@example.com'] }],
    ];
    for (const [method, path, body] of userOnly) {
      const answer = await asAdmin(method, path, body);
      assert.equal(answer.status, 403, `${method} ${path}`);
      assert.deepEqual(answer.body, { code: 'AUTH_ERR_SCOPE', message: 'needs a user token' });
    }
    assert.deepEqual(chat.calls, []);
  });

  it('POST /conversations/:id/messages sends as the token user, text/plain unless told: 201 with the message', async () => {
    const plain = await asAlice('POST', '/conversations/d-conv/messages', { body: 'hello' });
    assert.equal(plain.status, 201);
    assert.deepEqual(chat.last(), { method: 'send', args: [ALICE, 'd-conv', { contentType: 'text/plain', body: 'hello' }] });
    assert.equal(plain.body.sender, 'alice@example.com');
    assert.equal(plain.body.createdAt, '2026-12-07T08:00:03.000Z');
    await asAlice('POST', '/conversations/d-conv/messages', { body: '{"x":1}', contentType: 'application/json; charset=utf-8' });
    assert.deepEqual(chat.last()?.args[2], { contentType: 'application/json; charset=utf-8', body: '{"x":1}' });
  });

  it('read, search, delete for me, receipts: each passes the user and answers its shape', async () => {
    const read = await asAlice('POST', '/conversations/d-conv/read', { messageId: 'm2' });
    assert.deepEqual([read.status, read.body], [200, { unread: 4 }]);
    assert.deepEqual(chat.last(), { method: 'markRead', args: [ALICE, 'd-conv', 'm2'] });

    const search = await asAlice('GET', '/conversations/d-conv/search?q=Text%20M&limit=5');
    assert.equal(search.status, 200);
    assert.deepEqual(chat.last(), { method: 'search', args: [ALICE, 'd-conv', 'Text M', 5] });
    assert.deepEqual((search.body.messages as ChatMessage[]).map((m) => m.id), ['m2']);

    const hidden = await asAlice('DELETE', '/messages/m2');
    assert.equal(hidden.status, 204);
    assert.deepEqual(chat.last(), { method: 'hide', args: [ALICE, 'm2'] });

    const receipts = await asAlice('GET', '/messages/m2/receipts');
    assert.deepEqual(receipts.body, { receipts: [{ user: 'bob@example.com', device: 'phone', deliveredAt: '2026-12-07T08:00:00.000Z' }] });
  });

  it('groups: created by the token user (201), members listed with ISO times, added with a role or none, removed', async () => {
    const created = await asAlice('POST', '/groups', { name: ' team ', members: ['bob@EXAMPLE.com', 'carol@example.com'], domain: 'Example.com' });
    assert.equal(created.status, 201);
    assert.deepEqual(chat.last(), { method: 'createGroup', args: [ALICE, { name: 'team', members: ['bob@example.com', 'carol@example.com'], domain: 'example.com' }] });
    assert.equal(created.body.kind, 'group');

    const members = await asAlice('GET', '/groups/group-g1/members');
    assert.deepEqual(members.body, { members: [{ user: 'alice@example.com', role: 'owner', joinedAt: '2026-12-07T08:00:00.000Z' }] });

    assert.equal((await asAlice('PUT', '/groups/group-g1/members/dave@Example.com', { role: 'admin' })).status, 204);
    assert.deepEqual(chat.last(), { method: 'addMember', args: [ALICE, 'group-g1', 'dave@example.com', 'admin'] });
    assert.equal((await asAlice('PUT', '/groups/group-g1/members/dave@example.com')).status, 204);
    assert.deepEqual(chat.last(), { method: 'addMember', args: [ALICE, 'group-g1', 'dave@example.com', undefined] });
    assert.equal((await asAlice('DELETE', '/groups/group-g1/members/alice@example.com')).status, 204);
    assert.deepEqual(chat.last(), { method: 'removeMember', args: [ALICE, 'group-g1', 'alice@example.com'] });
  });

  it('refuses a malformed request with 400 naming the field, before the service is called', async () => {
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['GET', '/conversations?limit=0', undefined, /^limit: /],
      ['GET', '/conversations?limit=201', undefined, /^limit: /],
      ['GET', '/conversations?limit=ten', undefined, /^limit: expected a whole number/],
      ['GET', '/conversations?colour=blue', undefined, /unknown field\(s\) colour/],
      ['POST', '/conversations', {}, /^peer: /],
      ['POST', '/conversations', { peer: 'bob' }, /^peer: expected user@domain/],
      ['POST', '/conversations', { peer: 'bob@example.com', extra: 1 }, /unknown field\(s\) extra/],
      ['GET', '/conversations/d-conv/messages?before=m1&after=m2', undefined, /^before: before and after cannot be combined/],
      ['GET', '/conversations/d-conv/messages?before=..%2Fx', undefined, /^before: expected an id/],
      ['GET', '/conversations/d.conv/messages', undefined, /^id: expected an id/],
      ['POST', '/conversations/d-conv/messages', { body: '' }, /^body: expected a message/],
      ['POST', '/conversations/d-conv/messages', { body: 42 }, /^body: /],
      ['POST', '/conversations/d-conv/messages', { body: 'hi', contentType: 'not a type' }, /^contentType: expected a MIME type/],
      ['POST', '/conversations/d-conv/read', {}, /^messageId: /],
      ['GET', '/conversations/d-conv/search', undefined, /^q: /],
      ['GET', '/conversations/d-conv/search?q=', undefined, /^q: expected some text/],
      ['POST', '/groups', { name: 'team' }, /^members: /],
      ['POST', '/groups', { name: '', members: [] }, /^name: expected a name/],
      ['POST', '/groups', { name: 'team', members: ['bob@example.com', 'carol'] }, /^members\.1: expected user@domain/],
      ['PUT', '/groups/group-g1/members/carol@example.com', { role: 'owner' }, /^role: /],
      ['PUT', '/groups/group-g1/members/carol', {}, /^user: expected user@domain/],
      ['DELETE', '/groups/group-g1/members/carol', undefined, /^user: expected user@domain/],
    ];
    for (const [method, path, body, error] of cases) {
      const answer = await asAlice(method, path, body);
      assert.equal(answer.status, 400, `${method} ${path} ${JSON.stringify(body)}`);
      assert.equal(answer.body.code, 'API_ERR_INVALID');
      assert.match(String(answer.body.message), error, `${method} ${path}`);
    }
    assert.deepEqual(chat.calls, []);
  });

  it('turns ChatError codes into HTTP statuses and API codes (CHAT_ERR_* only where chat says more); rate-limited carries Retry-After', async () => {
    const expected: Array<[ChatErrorCode, number, string]> = [
      ['not-found', 404, 'API_ERR_NOT_FOUND'], ['forbidden', 403, 'CHAT_ERR_FORBIDDEN'], ['too-large', 413, 'API_ERR_TOO_LARGE'],
      ['unsupported-type', 415, 'API_ERR_UNSUPPORTED_TYPE'], ['rate-limited', 429, 'API_ERR_RATE_LIMITED'], ['group-full', 409, 'CHAT_ERR_GROUP_FULL'],
      ['invalid', 400, 'API_ERR_INVALID'],
    ];
    for (const [code, status, apiCode] of expected) {
      chat.failWith = new ChatError(code, `refused: ${code}`, code === 'rate-limited' ? 12 : undefined);
      const answer = await asAlice('POST', '/conversations/d-conv/messages', { body: 'hi' });
      assert.equal(answer.status, status, code);
      assert.deepEqual(answer.body, { code: apiCode, message: `refused: ${code}` });
      assert.equal(answer.headers.get('retry-after'), code === 'rate-limited' ? '12' : null, code);
    }
    chat.failWith = new ChatError('rate-limited', 'slow down');
    assert.equal((await asAlice('GET', '/conversations')).headers.get('retry-after'), '1', 'a Retry-After even when the service gave none');
  });

  it('every chat route needs a valid token', async () => {
    assert.equal((await app.call('GET', '/conversations', null)).status, 401);
    assert.equal((await app.call('GET', '/conversations/d-conv/messages', `${app.tokens.alice!.slice(0, -2)}xx`)).status, 401);
    assert.equal((await app.call('DELETE', '/messages/m1', null)).status, 401);
    assert.deepEqual(chat.calls, []);
  });
});
