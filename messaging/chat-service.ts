/**
 * The chat service: conversations, groups and messages over the store, in clear on this side and sealed
 * on the store's (every body goes through the envelope with the message id as its additional data, so a
 * copy of the database shows no text and a body moved to another row does not open).
 *
 * The SIP path (sip-messaging.ts) and the HTTP API (routes.ts) both post through `post`, so a message sent
 * either way is stored once, in the same conversation, and delivered the same way (delivery.ts).
 *
 * Who may do what:
 * - a user reads and posts in the conversations they are a member of; an admin token reads any;
 * - a direct conversation is the pair of users, created by the first message between them;
 * - a group is created by a user, its owner; the owner and admins add and remove members, the owner
 *   names admins; anyone leaves; when the owner leaves, the oldest admin (else the oldest member) owns it;
 * - joins and leaves are recorded in the group as system messages, delivered like any message;
 * - a meeting's group (issue 19 item 6) is opened by the focus on first admission, owned by the meeting's owner, and
 *   every admitted user becomes a member for the meeting's life: members stay after they leave, and the group outlives
 *   the meeting, as its chat history. An admitted meeting guest (no user, so no member) reads the group from its
 *   admission on and posts to it as `guest:<guest id>` (meetingMessages, postAsGuest; the focus decides who may).
 */
import { createHash, randomBytes } from 'node:crypto';
import { type Logger, categoryLogger } from '../src/log/index.js';
import type {
  ConversationRecord, FileRecord, MemberRecord, MemberRole, MessageRepository, NewMessage, StoredMessage,
} from '../platform/store/index.js';
import { aorOfUser } from './devices.js';
import type { SendLimits } from './send-limits.js';
import {
  type ChatActor, type ChatApi, type ChatConversation, type ChatMember, type ChatMessage, type ChatReceipt, type MessagePage,
  ChatError,
} from './types.js';

/** What seals bodies at rest (envelope.ts). */
export interface Sealer {
  seal(plain: Buffer, aad: string): Buffer;
  open(sealed: Buffer, aad: string): Buffer;
}

/** A message to store: where, from whom, what; the recipients follow from the conversation. */
export interface PostInput extends Pick<NewMessage, 'sender' | 'kind' | 'contentType' | 'imdnId' | 'notify' | 'originDevice' | 'refSeq'> {
  conversation: ConversationRecord;
  /** The body in clear (sealed here). */
  body: Buffer;
  /** Who gets it; default every member (the sender's carbon copy included). */
  recipients?: string[] | undefined;
}

/** A message was stored: the users whose streams got a row (delivery kicks them). */
export type StoredListener = (message: StoredMessage, recipients: string[], text: string | undefined) => void;

export interface ChatServiceOptions {
  repo: MessageRepository;
  sealer: Sealer;
  /** Served domains, lower-case: groups live in one of them. */
  domains: string[];
  /** Whether `user@domain` is a subscriber (group members must be). */
  userExists(user: string): Promise<boolean>;
  limits: SendLimits;
  maxGroupMembers: number;
  maxBodySize: number;
  /**
   * The receipt (RFC 5438 IMDN display notification) for a message read through the API, when its sender
   * asked for one; undefined when it did not.
   */
  displayReceipt?: (message: ChatMessage, reader: string, readAt: number) => { contentType: string; body: Buffer } | undefined;
  logger: Logger;
  clock?: () => number;
}

/** Content types a user may post through the API (the SIP path takes these too). */
const POSTABLE = /^(text\/[a-z0-9.+-]+|message\/cpim|application\/(json|vnd\.[a-z0-9.+-]+))$/;
/** A `before` past every seq: the store then reads a conversation backwards from its newest message. */
const NEWEST = Number.MAX_SAFE_INTEGER;
/** At most this many messages are read (and decrypted) by one search. */
const SEARCH_SCAN = 5000;
const SEARCH_BATCH = 200;
/** Display receipts sent by one mark-read at most (the newest ones). */
const READ_RECEIPTS_MAX = 100;
/** Direct conversations whose pair is cached (their membership never changes). */
const DIRECT_CACHE = 50_000;
/** Conversation records cached. */
const RECORD_CACHE = 50_000;
/** `/v1/files/<id>` in a message: the file is then readable by the conversation's members. */
const FILE_LINK = /\/v1\/files\/([A-Za-z0-9_-]{22})\b/g;

export function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** The conversation of two users (either order gives the same id). */
export function directId(a: string, b: string): string {
  const [x, y] = a < b ? [a, b] : [b, a];
  return `d-${createHash('sha256').update(`${x}\n${y}`).digest('base64url').slice(0, 22)}`;
}

export function isGroupId(id: string): boolean {
  return /^group-[0-9a-f]{12}$/.test(id);
}

/** The group of meeting `meetingId`: derived, so every worker finds the same one without a column to keep it in. */
export function meetingGroupId(meetingId: string): string {
  return `group-${createHash('sha256').update(`meeting:${meetingId}`).digest('hex').slice(0, 12)}`;
}

/** The sender of a meeting guest's message: no "@", so never a user's user@domain. */
export function guestSender(guestId: string): string {
  return `guest:${guestId}`;
}

/** The guest id of a guest's sender (`guest:<id>`), else undefined. */
export function guestOfSender(sender: string): string | undefined {
  return sender.startsWith('guest:') ? sender.slice('guest:'.length) : undefined;
}

/** Who reads a meeting's group: a member user (its own view, as /v1/conversations), or a guest from its admission on. */
export type MeetingReader = { kind: 'user'; user: string } | { kind: 'guest'; since: number };

export class ChatService implements ChatApi {
  private readonly repo: MessageRepository;
  private readonly opts: ChatServiceOptions;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly listeners: StoredListener[] = [];
  /** Direct conversation id → its two users. */
  private readonly pairs = new Map<string, readonly [string, string]>();
  /** Conversation records by id (they never change after creation). */
  private readonly records = new Map<string, ConversationRecord>();

  constructor(options: ChatServiceOptions) {
    this.opts = options;
    this.repo = options.repo;
    this.log = categoryLogger(options.logger, 'messaging');
    this.clock = options.clock ?? Date.now;
  }

  onStored(listener: StoredListener): void {
    this.listeners.push(listener);
  }

  // ---- the one way in -----------------------------------------------------------------------------

  /** Seals and stores a message, links the files it names, and hands it to delivery. */
  async post(input: PostInput): Promise<StoredMessage> {
    const id = newId();
    const recipients = input.recipients ?? (await this.memberUsers(input.conversation));
    const stored = await this.repo.addMessage({
      id,
      conversationId: input.conversation.id,
      kind: input.kind,
      sender: input.sender,
      contentType: input.contentType,
      body: this.opts.sealer.seal(input.body, id),
      imdnId: input.imdnId,
      notify: input.notify,
      originDevice: input.originDevice,
      refSeq: input.refSeq,
      createdAt: this.clock(),
    }, recipients);
    const text = input.kind === 'text' ? input.body.toString('utf8') : undefined;
    if (text !== undefined) await this.linkFiles(text, input.sender, input.conversation.id);
    for (const l of this.listeners) {
      try {
        l(stored, recipients, text);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'a chat listener failed');
      }
    }
    return stored;
  }

  /** The stored message in clear. */
  toChat(m: StoredMessage): ChatMessage {
    return {
      id: m.id,
      seq: m.seq,
      conversationId: m.conversationId,
      kind: m.kind,
      sender: m.sender,
      contentType: m.contentType,
      body: this.opts.sealer.open(m.body, m.id).toString('utf8'),
      imdnId: m.imdnId,
      createdAt: m.createdAt,
    };
  }

  /** The body in clear, as bytes. */
  openBody(m: StoredMessage): Buffer {
    return this.opts.sealer.open(m.body, m.id);
  }

  /** The direct conversation of two users, created on first use. */
  async directConversation(a: string, b: string): Promise<ConversationRecord> {
    const id = directId(a, b);
    const known = await this.conversation(id);
    if (known !== undefined) return known;
    const record: ConversationRecord = { id, kind: 'direct', createdBy: a, createdAt: this.clock() };
    const members = a === b ? [{ user: a, role: 'member' as const }] : [{ user: a, role: 'member' as const }, { user: b, role: 'member' as const }];
    if (!(await this.repo.createConversation(record, members))) return (await this.repo.getConversation(id)) ?? record;
    return record;
  }

  /** The conversation's record (cached: a record never changes; a deleted one is forgotten by `forget`). */
  async conversation(id: string): Promise<ConversationRecord | undefined> {
    const cached = this.records.get(id);
    if (cached !== undefined) return cached;
    const record = await this.repo.getConversation(id);
    if (record !== undefined) {
      if (this.records.size >= RECORD_CACHE) this.records.delete(this.records.keys().next().value!);
      this.records.set(id, record);
    }
    return record;
  }

  /** The two users of a direct conversation (one when a user writes to themselves). */
  async pair(conversation: ConversationRecord): Promise<readonly [string, string]> {
    const cached = this.pairs.get(conversation.id);
    if (cached !== undefined) return cached;
    const users = (await this.repo.members(conversation.id)).map((m) => m.user);
    const pair = [users[0] ?? conversation.createdBy, users[1] ?? users[0] ?? conversation.createdBy] as const;
    if (this.pairs.size >= DIRECT_CACHE) this.pairs.delete(this.pairs.keys().next().value!);
    this.pairs.set(conversation.id, pair);
    return pair;
  }

  /** The SIP URI a conversation is addressed by from `user`'s side: the group's, or the other user's. */
  async uriFor(conversation: ConversationRecord, user: string): Promise<string> {
    if (conversation.kind === 'group') return `sip:${conversation.id}@${conversation.domain ?? ''}`;
    const [a, b] = await this.pair(conversation);
    return `sip:${a === user ? b : a}`;
  }

  async isMember(conversationId: string, user: string): Promise<boolean> {
    return (await this.repo.member(conversationId, user)) !== undefined;
  }

  /** The owner, or a member of a conversation a message linked the file to. */
  async mayReadFile(user: string, file: FileRecord): Promise<boolean> {
    if (file.owner === user) return true;
    for (const c of await this.repo.fileConversations(file.id)) if (await this.isMember(c, user)) return true;
    return false;
  }

  checkBody(contentType: string, size: number): void {
    if (size > this.opts.maxBodySize) throw new ChatError('too-large', `the body is ${size} bytes, more than messaging.maxBodySize (${this.opts.maxBodySize})`);
    if (!POSTABLE.test(contentType)) throw new ChatError('unsupported-type', `content type ${contentType} is not taken (text/*, message/cpim, application/json)`);
  }

  // ---- ChatApi --------------------------------------------------------------------------------------

  async conversations(actor: ChatActor & { kind: 'user' }, options: { limit: number }): Promise<ChatConversation[]> {
    const summaries = await this.repo.conversationsOf(actor.user, options.limit);
    return Promise.all(summaries.map(async (s) => ({
      id: s.conversation.id,
      kind: s.conversation.kind,
      uri: await this.uriFor(s.conversation, actor.user),
      name: s.conversation.name,
      role: s.role,
      last: s.last === undefined ? undefined : this.toChat(s.last),
      unread: s.unread,
    })));
  }

  async direct(actor: ChatActor & { kind: 'user' }, peer: string): Promise<ChatConversation> {
    if (!(await this.opts.userExists(peer))) throw new ChatError('not-found', `${peer} is not a user here`);
    const c = await this.directConversation(actor.user, peer);
    return this.summary(c, actor.user, 'member');
  }

  async messages(actor: ChatActor, conversationId: string, options: { before?: string; after?: string; limit: number }): Promise<MessagePage> {
    await this.readable(actor, conversationId);
    const user = actor.kind === 'user' ? actor.user : undefined;
    const before = options.before === undefined ? undefined : (await this.messageIn(conversationId, options.before)).seq;
    const after = options.after === undefined ? undefined : (await this.messageIn(conversationId, options.after)).seq;
    // Neither cursor: the newest page (the store reads backwards from `before`).
    const rows = await this.repo.page({ conversationId, user, before: before ?? (after === undefined ? NEWEST : undefined), after, limit: options.limit + 1 });
    const page: MessagePage = { messages: [] };
    let list = rows;
    if (after !== undefined) {
      // Newer than `after`: more after the page if the extra row came; older ones exist (`after` itself).
      if (list.length > options.limit) {
        list = list.slice(0, options.limit);
        page.after = list[list.length - 1]!.id;
      }
      if (list.length > 0) page.before = list[0]!.id;
    } else {
      // The newest page, or the one before `before`: older ones exist if the extra row came.
      if (list.length > options.limit) {
        list = list.slice(list.length - options.limit);
        page.before = list[0]!.id;
      }
      if (before !== undefined && list.length > 0) page.after = list[list.length - 1]!.id;
    }
    page.messages = list.map((m) => this.toChat(m));
    return page;
  }

  async send(actor: ChatActor & { kind: 'user' }, conversationId: string, message: { contentType: string; body: string }): Promise<ChatMessage> {
    const conversation = await this.readable(actor, conversationId);
    const body = Buffer.from(message.body, 'utf8');
    this.checkBody(message.contentType, body.length);
    this.opts.limits.take(actor.user, conversationId);
    const stored = await this.post({ conversation, sender: actor.user, kind: 'text', contentType: message.contentType, body });
    return this.toChat(stored);
  }

  async markRead(actor: ChatActor & { kind: 'user' }, conversationId: string, messageId: string): Promise<{ unread: number }> {
    const conversation = await this.readable(actor, conversationId);
    const target = await this.messageIn(conversationId, messageId);
    const before = (await this.repo.member(conversationId, actor.user))?.readSeq ?? 0;
    const now = await this.repo.markRead(conversationId, actor.user, target.seq);
    if (now > before) await this.displayed(conversation, actor.user, before, now, 'api');
    return { unread: await this.unread(conversationId, actor.user, now) };
  }

  /**
   * Messages of others in (from, to] are displayed at `device`: receipts recorded, and a display receipt
   * (IMDN) sent to each sender who asked (the newest READ_RECEIPTS_MAX).
   */
  async displayed(conversation: ConversationRecord, reader: string, from: number, to: number, device: string): Promise<void> {
    const at = this.clock();
    const rows = (await this.repo.page({ conversationId: conversation.id, user: reader, after: from, before: to + 1, limit: READ_RECEIPTS_MAX, kinds: ['text'] }))
      .filter((m) => m.sender !== reader);
    for (const m of rows) {
      await this.repo.receipt(m.seq, reader, device, 'displayed', at);
      if (!(m.notify?.includes('display') ?? false) || this.opts.displayReceipt === undefined) continue;
      const receipt = this.opts.displayReceipt(this.toChat(m), reader, at);
      if (receipt !== undefined) await this.post({ conversation, sender: reader, kind: 'imdn', refSeq: m.seq, recipients: [m.sender], ...receipt });
    }
  }

  async hide(actor: ChatActor & { kind: 'user' }, messageId: string): Promise<void> {
    const m = await this.repo.getMessage(messageId);
    if (m === undefined || !(await this.isMember(m.conversationId, actor.user))) throw new ChatError('not-found', 'no such message');
    await this.repo.hide(actor.user, m.seq);
  }

  async search(actor: ChatActor, conversationId: string, text: string, limit: number): Promise<ChatMessage[]> {
    await this.readable(actor, conversationId);
    // Bodies are sealed: the search opens them here, newest first, up to SEARCH_SCAN messages back.
    const needle = text.toLowerCase();
    const user = actor.kind === 'user' ? actor.user : undefined;
    const found: ChatMessage[] = [];
    let before = NEWEST;
    for (let scanned = 0; scanned < SEARCH_SCAN && found.length < limit;) {
      const rows = await this.repo.page({ conversationId, user, before, limit: SEARCH_BATCH, kinds: ['text'] });
      if (rows.length === 0) break;
      for (let i = rows.length - 1; i >= 0 && found.length < limit; i--) {
        const m = this.toChat(rows[i]!);
        if (m.body.toLowerCase().includes(needle)) found.push(m);
      }
      scanned += rows.length;
      before = rows[0]!.seq;
      if (rows.length < SEARCH_BATCH) break;
    }
    return found;
  }

  async receipts(actor: ChatActor, messageId: string): Promise<ChatReceipt[]> {
    const m = await this.repo.getMessage(messageId);
    if (m === undefined) throw new ChatError('not-found', 'no such message');
    await this.readable(actor, m.conversationId);
    const all = await this.repo.receipts(m.seq);
    // The sender (and an admin) sees every recipient's state; another member only their own.
    const mine = actor.kind === 'admin' || actor.user === m.sender ? all : all.filter((r) => r.user === actor.user);
    return mine.map((r) => ({ user: r.user, device: r.device, deliveredAt: r.deliveredAt, displayedAt: r.displayedAt }));
  }

  // ---- groups -----------------------------------------------------------------------------------------

  async createGroup(actor: ChatActor & { kind: 'user' }, group: { name: string; domain?: string; members: string[] }): Promise<ChatConversation> {
    const domain = (group.domain ?? actor.user.slice(actor.user.lastIndexOf('@') + 1)).toLowerCase();
    if (!this.opts.domains.includes(domain)) throw new ChatError('invalid', `${domain} is not a domain served here`);
    const users = [...new Set(group.members.filter((u) => u !== actor.user))];
    if (users.length + 1 > this.opts.maxGroupMembers) throw new ChatError('group-full', `a group has at most ${this.opts.maxGroupMembers} members (messaging.maxGroupMembers)`);
    for (const u of users) if (!(await this.opts.userExists(u))) throw new ChatError('invalid', `${u} is not a user here`);
    const record: ConversationRecord = {
      id: `group-${randomBytes(6).toString('hex')}`, kind: 'group', name: group.name, domain, createdBy: actor.user, createdAt: this.clock(),
    };
    await this.repo.createConversation(record, [{ user: actor.user, role: 'owner' }, ...users.map((user) => ({ user, role: 'member' as const }))]);
    await this.system(record, `${actor.user} created the group "${group.name}"${users.length > 0 ? ` with ${users.join(', ')}` : ''}`);
    return this.summary(record, actor.user, 'owner');
  }

  async members(actor: ChatActor, groupId: string): Promise<ChatMember[]> {
    await this.readable(actor, groupId, 'group');
    return (await this.repo.members(groupId)).map((m) => ({ user: m.user, role: m.role, joinedAt: m.joinedAt }));
  }

  async addMember(actor: ChatActor, groupId: string, user: string, role: Exclude<MemberRole, 'owner'> = 'member'): Promise<void> {
    const group = await this.readable(actor, groupId, 'group');
    const by = await this.roleOf(actor, groupId);
    if (by !== 'owner' && by !== 'admin') throw new ChatError('forbidden', 'only the owner and admins add members');
    if (role === 'admin' && by !== 'owner') throw new ChatError('forbidden', 'only the owner names admins');
    const current = await this.repo.member(groupId, user);
    if (current?.role === 'owner') throw new ChatError('forbidden', 'the owner\'s role does not change');
    if (current === undefined) {
      if (!(await this.opts.userExists(user))) throw new ChatError('invalid', `${user} is not a user here`);
      if ((await this.repo.members(groupId)).length >= this.opts.maxGroupMembers) {
        throw new ChatError('group-full', `the group has ${this.opts.maxGroupMembers} members already (messaging.maxGroupMembers)`);
      }
    }
    const added = await this.repo.putMember(groupId, user, role, this.clock());
    const who = actor.kind === 'user' ? actor.user : 'an administrator';
    if (added) await this.system(group, `${who} added ${user}`);
    else if (current?.role !== role) await this.system(group, `${who} made ${user} ${role === 'admin' ? 'an admin' : 'a member'}`);
  }

  async removeMember(actor: ChatActor, groupId: string, user: string): Promise<void> {
    const group = await this.readable(actor, groupId, 'group');
    const target = await this.repo.member(groupId, user);
    if (target === undefined) throw new ChatError('not-found', `${user} is not a member`);
    const self = actor.kind === 'user' && actor.user === user;
    if (!self) {
      const by = await this.roleOf(actor, groupId);
      if (by !== 'owner' && by !== 'admin') throw new ChatError('forbidden', 'only the owner and admins remove members');
      if (target.role === 'owner' || (target.role === 'admin' && by !== 'owner')) throw new ChatError('forbidden', `an ${by} cannot remove the ${target.role}`);
    }
    const before = await this.repo.members(groupId);
    await this.repo.removeMember(groupId, user);
    const note = self ? `${user} left` : `${actor.kind === 'user' ? actor.user : 'an administrator'} removed ${user}`;
    // The one removed learns it too: the note goes to the members before the change.
    await this.system(group, note, before.map((m) => m.user));
    if (target.role === 'owner') await this.passOwnership(group, before.filter((m) => m.user !== user));
  }

  // ---- meeting groups ---------------------------------------------------------------------------------

  /** The meeting's group, created on first use with its owner as the group's owner (two workers at once: one creates it). */
  async openMeetingGroup(meeting: { id: string; title: string; owner: string }): Promise<string> {
    const id = meetingGroupId(meeting.id);
    if ((await this.repo.getConversation(id)) !== undefined) return id;
    const record: ConversationRecord = {
      id, kind: 'group', name: meeting.title, domain: meeting.owner.slice(meeting.owner.lastIndexOf('@') + 1).toLowerCase(), createdBy: meeting.owner, createdAt: this.clock(),
    };
    if (await this.repo.createConversation(record, [{ user: meeting.owner, role: 'owner' }])) await this.system(record, `the chat of the meeting "${meeting.title}"`);
    return id;
  }

  /** An admitted participant joins the meeting's group (a note tells the members); once a member, it stays one. */
  async enterMeetingGroup(groupId: string, user: string): Promise<void> {
    const group = await this.conversation(groupId);
    if (group === undefined || group.kind !== 'group') throw new ChatError('not-found', 'no such group');
    if ((await this.repo.member(groupId, user)) !== undefined) return;
    if ((await this.repo.members(groupId)).length >= this.opts.maxGroupMembers) {
      throw new ChatError('group-full', `the meeting's group has ${this.opts.maxGroupMembers} members already (messaging.maxGroupMembers)`);
    }
    if (await this.repo.putMember(groupId, user, 'member', this.clock())) await this.system(group, `${user} joined the meeting`);
  }

  /**
   * A page of the meeting's group, newest first: `limit` messages older than the message `before` (none: the newest).
   * A user reads what it sees as a member; a guest, not a member, every text and note created from `since` on (the
   * groups' rule: a member reads from when it joined). `more`: older messages the reader may see exist.
   */
  async meetingMessages(groupId: string, reader: MeetingReader, options: { before?: string | undefined; limit: number }): Promise<{ messages: ChatMessage[]; more: boolean }> {
    if (reader.kind === 'user') {
      const page = await this.messages(reader, groupId, { ...(options.before === undefined ? {} : { before: options.before }), limit: options.limit });
      return { messages: page.messages.reverse(), more: page.before !== undefined };
    }
    if ((await this.conversation(groupId)) === undefined) throw new ChatError('not-found', 'no such group');
    const before = options.before === undefined ? NEWEST : (await this.messageIn(groupId, options.before)).seq;
    // Seqs follow time: past the first message older than the guest's admission, nothing more is its to read.
    const rows = (await this.repo.page({ conversationId: groupId, before, limit: options.limit + 1 })).filter((m) => m.createdAt >= reader.since);
    const more = rows.length > options.limit;
    return { messages: rows.slice(more ? 1 : 0).reverse().map((m) => this.toChat(m)), more };
  }

  /** A meeting guest's text in the meeting's group: the chat's size and rate limits, delivered to every member. */
  async postAsGuest(groupId: string, guestId: string, text: string): Promise<ChatMessage> {
    const conversation = await this.conversation(groupId);
    if (conversation === undefined || conversation.kind !== 'group') throw new ChatError('not-found', 'no such group');
    const body = Buffer.from(text, 'utf8');
    this.checkBody('text/plain', body.length);
    const sender = guestSender(guestId);
    this.opts.limits.take(sender, groupId);
    return this.toChat(await this.post({ conversation, sender, kind: 'text', contentType: 'text/plain', body }));
  }

  /**
   * The SIP URI a message comes from: its sender's AoR, or for a guest's (no AoR of its own) the group's, with a name
   * saying which guest. The record is cached by then (post read it).
   */
  senderOf(m: { sender: string; conversationId: string }): { uri: string; name?: string | undefined } {
    const guest = guestOfSender(m.sender);
    if (guest === undefined) return { uri: aorOfUser(m.sender) };
    return { uri: `sip:${m.conversationId}@${this.records.get(m.conversationId)?.domain ?? ''}`, name: `guest ${guest}` };
  }

  // ---- helpers ----------------------------------------------------------------------------------------

  private async passOwnership(group: ConversationRecord, rest: MemberRecord[]): Promise<void> {
    const next = rest.find((m) => m.role === 'admin') ?? rest[0];
    if (next === undefined) return;
    await this.repo.putMember(group.id, next.user, 'owner', next.joinedAt);
    await this.system(group, `${next.user} now owns the group`);
  }

  /** A system note in a group, from the group itself, to its members (or `to`). */
  private async system(group: ConversationRecord, text: string, to?: string[]): Promise<void> {
    await this.post({
      conversation: group, sender: `${group.id}@${group.domain ?? ''}`, kind: 'system', contentType: 'text/plain', body: Buffer.from(text, 'utf8'), recipients: to,
    });
  }

  private async memberUsers(conversation: ConversationRecord): Promise<string[]> {
    if (conversation.kind === 'direct') {
      const [a, b] = await this.pair(conversation);
      return a === b ? [a] : [a, b];
    }
    return (await this.repo.members(conversation.id)).map((m) => m.user);
  }

  /** The conversation, if the actor may read it (an admin any); else not-found (its existence is not told). */
  private async readable(actor: ChatActor, id: string, kind?: 'group'): Promise<ConversationRecord> {
    const c = await this.conversation(id);
    if (c === undefined || (kind !== undefined && c.kind !== kind) || (actor.kind === 'user' && !(await this.isMember(id, actor.user)))) {
      throw new ChatError('not-found', kind === 'group' ? 'no such group' : 'no such conversation');
    }
    return c;
  }

  private async roleOf(actor: ChatActor, groupId: string): Promise<MemberRole | 'administrator' | undefined> {
    if (actor.kind === 'admin') return 'owner';
    return (await this.repo.member(groupId, actor.user))?.role;
  }

  private async messageIn(conversationId: string, id: string): Promise<StoredMessage> {
    const m = await this.repo.getMessage(id);
    if (m === undefined || m.conversationId !== conversationId) throw new ChatError('not-found', `no message ${id} in this conversation`);
    return m;
  }

  private async unread(conversationId: string, user: string, readSeq: number): Promise<number> {
    const rows = await this.repo.page({ conversationId, user, after: readSeq, limit: 1000, kinds: ['text'] });
    return rows.filter((m) => m.sender !== user).length;
  }

  private async summary(c: ConversationRecord, user: string, role: MemberRole): Promise<ChatConversation> {
    return { id: c.id, kind: c.kind, uri: await this.uriFor(c, user), name: c.name, role, unread: 0 };
  }

  /** A message naming our file links it to the conversation, if its sender may read the file. */
  private async linkFiles(text: string, sender: string, conversationId: string): Promise<void> {
    for (const match of text.matchAll(FILE_LINK)) {
      const file = await this.repo.getFile(match[1]!);
      if (file !== undefined && (await this.mayReadFile(sender, file))) await this.repo.linkFile(file.id, conversationId);
    }
  }
}
