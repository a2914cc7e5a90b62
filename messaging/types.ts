/**
 * The messaging service's public types: what the HTTP routes, the SIP path and the server wiring see.
 * Types only. Plaintext lives here; the store (platform/store/message-types.ts) holds it sealed.
 */
import type { ConversationKind, MemberRole, MessageKind } from '../platform/store/message-types.js';

export type { ConversationKind, MemberRole, MessageKind } from '../platform/store/message-types.js';

/** A message as the API answers it (and as the SIP path delivers it), body in clear. */
export interface ChatMessage {
  id: string;
  /** Position in time: pagination cursors are ids, ordering follows seq. */
  seq: number;
  conversationId: string;
  kind: MessageKind;
  sender: string;
  contentType: string;
  body: string;
  /** The IMDN Message-ID the sender gave (CPIM), when any. */
  imdnId?: string | undefined;
  /** ms since the epoch. */
  createdAt: number;
}

/** Delivery state of a message at one device of one recipient (history: `receipts`). */
export interface ChatReceipt {
  user: string;
  device: string;
  deliveredAt?: number | undefined;
  displayedAt?: number | undefined;
}

export interface ChatConversation {
  id: string;
  kind: ConversationKind;
  /** The group's SIP URI (`sip:group-…@domain`), or the other user's AoR for a direct conversation. */
  uri: string;
  name?: string | undefined;
  role: MemberRole;
  last?: ChatMessage | undefined;
  unread: number;
}

export interface ChatMember {
  user: string;
  role: MemberRole;
  joinedAt: number;
}

/** Why the service refused: the HTTP status and SIP status follow from the code. */
export type ChatErrorCode =
  | 'not-found' // 404: no such conversation/message/file (or not visible to this user)
  | 'forbidden' // 403: not a member, not an admin, …
  | 'too-large' // 413
  | 'unsupported-type' // 415
  | 'rate-limited' // 429 (SIP: 486? no — 503 with Retry-After; see sip-messaging.ts)
  | 'group-full' // 409
  | 'invalid'; // 400

export class ChatError extends Error {
  constructor(readonly code: ChatErrorCode, message: string, readonly retryAfterS?: number) {
    super(message);
    this.name = 'ChatError';
  }
}

/** What an HTTP caller is: a user (their own conversations) or an admin (any). */
export type ChatActor = { kind: 'user'; user: string } | { kind: 'admin' };

export interface MessagePage {
  /** Oldest first. */
  messages: ChatMessage[];
  /** Pass as `before` for the older page; absent when there is none. */
  before?: string | undefined;
  /** Pass as `after` for the newer page; absent when there is none. */
  after?: string | undefined;
}

/**
 * The chat API the HTTP routes call (messaging/routes.ts). Every method checks that `actor` may do it
 * and throws ChatError otherwise; a user actor only ever sees conversations they are a member of.
 */
export interface ChatApi {
  conversations(actor: ChatActor & { kind: 'user' }, options: { limit: number }): Promise<ChatConversation[]>;
  /** The direct conversation between the actor and `peer` (user@domain), created on first use. */
  direct(actor: ChatActor & { kind: 'user' }, peer: string): Promise<ChatConversation>;
  messages(actor: ChatActor, conversationId: string, options: { before?: string; after?: string; limit: number }): Promise<MessagePage>;
  /** Posts a text message as the actor (the API's send: delivered over SIP like a MESSAGE). */
  send(actor: ChatActor & { kind: 'user' }, conversationId: string, message: { contentType: string; body: string }): Promise<ChatMessage>;
  /** Marks everything up to and including `messageId` read for the actor (and tells the senders who asked: IMDN display). */
  markRead(actor: ChatActor & { kind: 'user' }, conversationId: string, messageId: string): Promise<{ unread: number }>;
  /** Delete for me. */
  hide(actor: ChatActor & { kind: 'user' }, messageId: string): Promise<void>;
  /** Messages of the conversation whose text contains `text` (case-insensitive), newest first. */
  search(actor: ChatActor, conversationId: string, text: string, limit: number): Promise<ChatMessage[]>;
  receipts(actor: ChatActor, messageId: string): Promise<ChatReceipt[]>;

  // ---- groups ----
  createGroup(actor: ChatActor & { kind: 'user' }, group: { name: string; domain?: string; members: string[] }): Promise<ChatConversation>;
  members(actor: ChatActor, groupId: string): Promise<ChatMember[]>;
  /** Owner/admin add, or change a role (owner only promotes to admin). */
  addMember(actor: ChatActor, groupId: string, user: string, role?: Exclude<MemberRole, 'owner'>): Promise<void>;
  /** Owner/admin remove someone; anyone removes themselves (leave). */
  removeMember(actor: ChatActor, groupId: string, user: string): Promise<void>;
}
