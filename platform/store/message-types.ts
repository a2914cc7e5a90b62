/**
 * The chat store's types (sql/0006_messaging.ts): conversations, their members, messages, each user's
 * delivery stream (the inbox), each device's place in it, receipts and files. Types only.
 *
 * The store never sees plaintext: a message body and a file key arrive here sealed by messaging/ (the
 * AES-256-GCM envelope) and leave sealed. Users are `user@domain` text (domain lower-case).
 *
 * How delivery works on these tables (messaging/ drives it):
 * - A message is stored once (`chat_messages`, `seq` its place in the conversation and in time), and one
 *   inbox row is added per user who must receive it: every member but the sender, and the sender too (the
 *   carbon copy to its other devices). The inbox `seq` orders a user's stream.
 * - A device (a `+sip.instance`, a push token, else its Contact) has a cursor in its user's stream: the
 *   inbox seq it has received up to, in order. Delivery sends the rows after the cursor one at a time and
 *   moves the cursor on each 2xx, so every device gets every row once and in order, across restarts.
 * - A device seen for the first time starts after the furthest cursor of its user's devices: it gets the
 *   rows no device has received (msilo's "stored for an offline user"), not the history the others have.
 */

export type ConversationKind = 'direct' | 'group';
export type MemberRole = 'owner' | 'admin' | 'member';
/**
 * `text`: a user's message (any allowed content type); `system`: the server's note of a join, a leave, a
 * group created (body: JSON); `imdn`: a receipt (RFC 5438) on its way to the original sender, delivered
 * like a message but never listed in a conversation.
 */
export type MessageKind = 'text' | 'system' | 'imdn';

export interface ConversationRecord {
  /** `d-<22 base64url chars>` for a pair of users (deterministic), `group-<id>` for a group. */
  id: string;
  kind: ConversationKind;
  /** The group's name (groups only). */
  name?: string | undefined;
  /** The group's domain: its SIP URI is `sip:<id>@<domain>` (groups only). */
  domain?: string | undefined;
  createdBy: string;
  /** ms since the epoch. */
  createdAt: number;
}

export interface MemberRecord {
  conversationId: string;
  user: string;
  role: MemberRole;
  joinedAt: number;
  /** The seq of the last message this user has read (0: none). */
  readSeq: number;
}

export interface StoredMessage {
  /** Position in the conversation (and globally): assigned by the store, increasing. */
  seq: number;
  /** Public id: 22 base64url characters, random. */
  id: string;
  conversationId: string;
  kind: MessageKind;
  sender: string;
  /** The MIME type of the body as the sender gave it (`text/plain`, `message/cpim`, …). */
  contentType: string;
  /** The sealed body (messaging/envelope.ts). */
  body: Buffer;
  /** The IMDN Message-ID (RFC 5438 §6.3) of the sender's CPIM, when it had one. */
  imdnId?: string | undefined;
  /** The dispositions the sender asked for (`positive-delivery`, `negative-delivery`, `display`, `processing`). */
  notify?: string[] | undefined;
  /** The device the sender sent from (never given its own carbon copy). */
  originDevice?: string | undefined;
  /** For an `imdn`: the seq of the message it reports on. */
  refSeq?: number | undefined;
  createdAt: number;
}

export type NewMessage = Omit<StoredMessage, 'seq'>;

/** One row of a user's delivery stream, with its message. */
export interface InboxEntry {
  /** The inbox seq (the user's stream order). */
  seq: number;
  user: string;
  message: StoredMessage;
}

/** A message as one user sees it in a conversation listing. */
export interface ConversationSummary {
  conversation: ConversationRecord;
  /** The user's role in it. */
  role: MemberRole;
  /** The newest `text`/`system` message the user has not deleted, if any. */
  last?: StoredMessage | undefined;
  /** `text` messages from others after the user's readSeq, not deleted by the user. */
  unread: number;
}

/** A page of a conversation, oldest first; `before`/`after` are message seqs (exclusive). */
export interface MessagePageQuery {
  conversationId: string;
  /**
   * The reader: only the messages they have an inbox row for (received or sent while a member), minus the
   * ones they deleted. Undefined (an admin): every message of the conversation.
   */
  user?: string | undefined;
  before?: number | undefined;
  after?: number | undefined;
  limit: number;
  /** Default ['text', 'system']. */
  kinds?: MessageKind[] | undefined;
}

/** The receipt state of one message at one device of one recipient. */
export interface ReceiptRecord {
  messageSeq: number;
  user: string;
  device: string;
  deliveredAt?: number | undefined;
  displayedAt?: number | undefined;
}

export interface FileRecord {
  /** 22 base64url characters, random. */
  id: string;
  owner: string;
  contentType: string;
  /** Plaintext size in bytes. */
  size: number;
  /** The file's own key, sealed by the master key (messaging/envelope.ts). */
  wrappedKey: Buffer;
  /** Where the file store keeps the ciphertext (a relative path for the local disk). */
  location: string;
  /** The original file name, if the upload gave one. */
  name?: string | undefined;
  createdAt: number;
}

/**
 * The chat tables. Every method is one statement or one transaction; nothing here decides who may do
 * what (messaging/ does).
 */
export interface MessageRepository {
  // ---- conversations and members ----
  /** Creates the conversation with its members (one transaction); resolves false when the id exists already. */
  createConversation(conversation: ConversationRecord, members: Array<{ user: string; role: MemberRole }>): Promise<boolean>;
  getConversation(id: string): Promise<ConversationRecord | undefined>;
  /** Current members, in join order. */
  members(conversationId: string): Promise<MemberRecord[]>;
  member(conversationId: string, user: string): Promise<MemberRecord | undefined>;
  /** Adds or changes a member's role; resolves true when added (false: existed, role updated). */
  putMember(conversationId: string, user: string, role: MemberRole, at: number): Promise<boolean>;
  /** Resolves true when the user was a member. */
  removeMember(conversationId: string, user: string): Promise<boolean>;
  /** Deletes the conversation, its members, messages, inbox rows and receipts. */
  deleteConversation(id: string): Promise<void>;
  /** The user's conversations, the most recently active first (by last message seq, else creation). */
  conversationsOf(user: string, limit: number, beforeSeq?: number): Promise<ConversationSummary[]>;

  // ---- messages and the inbox ----
  /**
   * Stores the message and one inbox row per `recipients` user (in that order) in one transaction;
   * resolves with the stored message (its seq assigned).
   */
  addMessage(message: NewMessage, recipients: string[]): Promise<StoredMessage>;
  getMessage(id: string): Promise<StoredMessage | undefined>;
  getMessageBySeq(seq: number): Promise<StoredMessage | undefined>;
  /**
   * The message `sender` sent with this IMDN Message-ID, in whatever conversation: a receipt names only
   * the id, and comes back to the sender directly even for a group message (RFC 5438 §7.1.1.1).
   */
  findByImdnId(sender: string, imdnId: string): Promise<StoredMessage | undefined>;
  /** Oldest first; see MessagePageQuery. */
  page(query: MessagePageQuery): Promise<StoredMessage[]>;
  /** "Delete for me": the user no longer sees the message (listing, unread, search). */
  hide(user: string, messageSeq: number): Promise<void>;
  /** Moves the user's read mark forward (never back); resolves with the read seq now. */
  markRead(conversationId: string, user: string, seq: number): Promise<number>;

  // ---- devices ----
  /**
   * The device's cursor; a device seen for the first time gets the furthest cursor of the user's devices
   * (0 when it is the first), stored, and returned.
   */
  cursor(user: string, device: string): Promise<number>;
  /** The inbox rows of `user` after `afterSeq`, oldest first, at most `limit`. */
  inbox(user: string, afterSeq: number, limit: number): Promise<InboxEntry[]>;
  /**
   * The device received inbox row `seq` (or passed it over: its own message): its cursor moves to `seq`
   * (never back), so the next new device of the user starts after it. With
   * `delivered` (a message seq), the same transaction records the message delivered at the device.
   */
  advance(user: string, device: string, seq: number, at: number, delivered?: number): Promise<void>;

  // ---- receipts ----
  /** Records a delivery or display at a device (earliest time kept per state). */
  receipt(messageSeq: number, user: string, device: string, state: 'delivered' | 'displayed', at: number): Promise<void>;
  receipts(messageSeq: number): Promise<ReceiptRecord[]>;

  // ---- files ----
  addFile(file: FileRecord): Promise<void>;
  getFile(id: string): Promise<FileRecord | undefined>;
  /** The file may be read by the members of this conversation (a message linked it). */
  linkFile(fileId: string, conversationId: string): Promise<void>;
  fileConversations(fileId: string): Promise<string[]>;
  deleteFile(id: string): Promise<void>;

  // ---- retention ----
  /**
   * Deletes messages created before `before` (their inbox rows, receipts) and files created before it;
   * resolves with what went, the files' locations so the file store deletes their bytes.
   */
  purge(before: number): Promise<{ messages: number; files: FileRecord[] }>;
}
