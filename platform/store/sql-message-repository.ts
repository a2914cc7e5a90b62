/**
 * The chat tables (sql/0006_messaging.ts) on SQLite and MariaDB: the MessageRepository contract of
 * message-types.ts. Every argument is checked before any SQL runs, so a value that cannot be stored is a
 * TypeError and never half a transaction. Bodies and keys are opaque sealed bytes here; nothing is logged.
 *
 * Visibility is the inbox: a user sees a message of a conversation when they have a chat_inbox row for it
 * (they received it, or sent it: their carbon copy) that they have not hidden.
 */
import type { Knex } from 'knex';
import type { SqliteStatements } from './sqlite-statements.js';
import { type SqlContext, checkInteger, checkText, isUniqueViolation, optionalText, toNumber, toOptionalNumber, toOptionalString } from './sql-context.js';
import { StoreError } from './store-error.js';
import type {
  ConversationKind, ConversationRecord, ConversationSummary, FileRecord, InboxEntry, MemberRecord, MemberRole, MessageKind, MessagePageQuery,
  MessageRepository, NewMessage, ReceiptRecord, StoredMessage,
} from './message-types.js';

/** Column sizes of sql/0006_messaging.ts. */
const MAX_CONVERSATION_ID = 64;
const MAX_MESSAGE_ID = 32;
const MAX_FILE_ID = 32;
const MAX_USER = 511;
const MAX_DEVICE = 255;
const MAX_SHORT = 255;
const MAX_NOTIFY = 128;
const MAX_LOCATION = 512;
const MAX_WRAPPED_KEY = 255;
/**
 * The largest sealed body: above messaging.maxBodySize's ceiling (1 MiB) plus the envelope, below
 * MEDIUMBLOB's 16 MiB and MariaDB's default max_allowed_packet (16 MiB) for the whole INSERT.
 */
export const MAX_SEALED_BODY = 4 * 1024 * 1024;
/** The most rows one page, inbox read or conversation list returns. */
export const MAX_MESSAGE_PAGE = 1000;
/** Rows a purge deletes per statement: a huge purge never holds the tables long. */
export const PURGE_BATCH = 1000;
/** Rows per INSERT: SQLite binds at most 32,766 values a statement, and a group has up to 10,000 members. */
const INSERT_CHUNK = 500;
const MAX_MS = Number.MAX_SAFE_INTEGER;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

const CONVERSATION_KINDS: readonly ConversationKind[] = ['direct', 'group'];
const MEMBER_ROLES: readonly MemberRole[] = ['owner', 'admin', 'member'];
const MESSAGE_KINDS: readonly MessageKind[] = ['text', 'system', 'imdn'];
/** What a conversation lists and counts (an `imdn` is delivered, never listed). */
const LISTED_KINDS: readonly MessageKind[] = ['text', 'system'];

interface ConversationRow {
  id: string;
  kind: string;
  name: string | null;
  domain: string | null;
  created_by: string;
  created_at: number | string;
}

interface MemberRow {
  conversation_id: string;
  user: string;
  role: string;
  joined_at: number | string;
  read_seq: number | string;
}

interface MessageRow {
  seq: number | string;
  id: string;
  conversation_id: string;
  kind: string;
  sender: string;
  content_type: string;
  body: Buffer;
  imdn_id: string | null;
  notify: string | null;
  origin_device: string | null;
  ref_seq: number | string | null;
  created_at: number | string;
}

interface ReceiptRow {
  message_seq: number | string;
  user: string;
  device: string;
  delivered_at: number | string | null;
  displayed_at: number | string | null;
}

interface FileRow {
  id: string;
  owner: string;
  content_type: string;
  size: number | string;
  wrapped_key: Buffer;
  location: string;
  name: string | null;
  created_at: number | string;
}

const CONVERSATION_COLUMNS = ['id', 'kind', 'name', 'domain', 'created_by', 'created_at'] as const;
const MEMBER_COLUMNS = ['conversation_id', 'user', 'role', 'joined_at', 'read_seq'] as const;
const MESSAGE_COLUMNS = [
  'seq', 'id', 'conversation_id', 'kind', 'sender', 'content_type', 'body', 'imdn_id', 'notify', 'origin_device', 'ref_seq', 'created_at',
] as const;
const FILE_COLUMNS = ['id', 'owner', 'content_type', 'size', 'wrapped_key', 'location', 'name', 'created_at'] as const;

/** The message columns qualified by a table alias (`m.seq`, …). */
function messageColumns(alias: string): string[] {
  return MESSAGE_COLUMNS.map((c) => `${alias}.${c}`);
}

// ---- argument checks: TypeError before any SQL ----------------------------------------------------

function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new TypeError(`${name} must be one of ${allowed.join(', ')}`);
  return value as T;
}

const conversationId = (v: unknown) => checkText('conversationId', v, MAX_CONVERSATION_ID);
const userName = (v: unknown, name = 'user') => checkText(name, v, MAX_USER);
const deviceName = (v: unknown) => checkText('device', v, MAX_DEVICE);
const seqOf = (v: unknown, name = 'seq') => checkInteger(name, v, 0, MAX_SEQ);
const timeOf = (v: unknown, name: string) => checkInteger(name, v, 0, MAX_MS);
const limitOf = (v: unknown) => checkInteger('limit', v, 1, MAX_MESSAGE_PAGE);

function checkBytes(name: string, value: unknown, max: number): Buffer {
  if (!Buffer.isBuffer(value)) throw new TypeError(`${name} must be a Buffer`);
  if (value.length > max) throw new TypeError(`${name} is longer than ${max} bytes`);
  return value;
}

/** The requested dispositions as the comma list the column holds; [] is '' so that it reads back as []. */
function notifyText(notify: unknown): string | null {
  if (notify === undefined) return null;
  if (!Array.isArray(notify)) throw new TypeError('notify must be an array of strings');
  for (const n of notify) {
    if (typeof n !== 'string' || !/^[A-Za-z0-9-]+$/.test(n)) throw new TypeError('notify must hold disposition names (letters, digits, "-")');
  }
  const text = notify.join(',');
  if (text.length > MAX_NOTIFY) throw new TypeError(`notify is longer than ${MAX_NOTIFY} characters`);
  return text;
}

function conversationRow(c: ConversationRecord): ConversationRow {
  if (typeof c !== 'object' || c === null) throw new TypeError('conversation must be an object');
  return {
    id: conversationId(c.id),
    kind: checkOneOf('kind', c.kind, CONVERSATION_KINDS),
    name: optionalText('name', c.name, MAX_SHORT),
    // Host names compare case-insensitively (RFC 3261 §19.1.4): stored lower-case, as in `domains`.
    domain: optionalText('domain', c.domain, MAX_SHORT)?.toLowerCase() ?? null,
    created_by: userName(c.createdBy, 'createdBy'),
    created_at: timeOf(c.createdAt, 'createdAt'),
  };
}

type NewMessageRow = Omit<MessageRow, 'seq'>;

function messageRow(m: NewMessage): NewMessageRow {
  if (typeof m !== 'object' || m === null) throw new TypeError('message must be an object');
  return {
    id: checkText('id', m.id, MAX_MESSAGE_ID),
    conversation_id: conversationId(m.conversationId),
    kind: checkOneOf('kind', m.kind, MESSAGE_KINDS),
    sender: userName(m.sender, 'sender'),
    content_type: checkText('contentType', m.contentType, MAX_SHORT),
    body: checkBytes('body', m.body, MAX_SEALED_BODY),
    imdn_id: optionalText('imdnId', m.imdnId, MAX_SHORT),
    notify: notifyText(m.notify),
    origin_device: optionalText('originDevice', m.originDevice, MAX_DEVICE),
    ref_seq: m.refSeq === undefined ? null : seqOf(m.refSeq, 'refSeq'),
    created_at: timeOf(m.createdAt, 'createdAt'),
  };
}

function fileRow(f: FileRecord): FileRow {
  if (typeof f !== 'object' || f === null) throw new TypeError('file must be an object');
  return {
    id: checkText('id', f.id, MAX_FILE_ID),
    owner: userName(f.owner, 'owner'),
    content_type: checkText('contentType', f.contentType, MAX_SHORT),
    size: checkInteger('size', f.size, 0, MAX_SEQ),
    wrapped_key: checkBytes('wrappedKey', f.wrappedKey, MAX_WRAPPED_KEY),
    location: checkText('location', f.location, MAX_LOCATION),
    name: optionalText('name', f.name, MAX_SHORT),
    created_at: timeOf(f.createdAt, 'createdAt'),
  };
}

/** Each distinct, in the given order; a repeated entry is a TypeError (it would break a unique key). */
function distinct(name: string, values: unknown, check: (v: unknown) => string): string[] {
  if (!Array.isArray(values)) throw new TypeError(`${name} must be an array`);
  const out = values.map((v) => check(v));
  if (new Set(out).size !== out.length) throw new TypeError(`${name} names a user twice`);
  return out;
}

// ---- rows to records ------------------------------------------------------------------------------

/** The object without its undefined fields: a record reads back with the same keys it was written with. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function toConversation(r: ConversationRow): ConversationRecord {
  return defined<ConversationRecord>({
    id: r.id,
    kind: r.kind as ConversationKind,
    name: toOptionalString(r.name),
    domain: toOptionalString(r.domain),
    createdBy: r.created_by,
    createdAt: toNumber(r.created_at),
  });
}

function toMember(r: MemberRow): MemberRecord {
  return { conversationId: r.conversation_id, user: r.user, role: r.role as MemberRole, joinedAt: toNumber(r.joined_at), readSeq: toNumber(r.read_seq) };
}

function toMessage(r: MessageRow): StoredMessage {
  return defined<StoredMessage>({
    seq: toNumber(r.seq),
    id: r.id,
    conversationId: r.conversation_id,
    kind: r.kind as MessageKind,
    sender: r.sender,
    contentType: r.content_type,
    body: Buffer.from(r.body),
    imdnId: toOptionalString(r.imdn_id),
    notify: r.notify === null ? undefined : r.notify === '' ? [] : r.notify.split(','),
    originDevice: toOptionalString(r.origin_device),
    refSeq: toOptionalNumber(r.ref_seq),
    createdAt: toNumber(r.created_at),
  });
}

function toReceipt(r: ReceiptRow): ReceiptRecord {
  return defined<ReceiptRecord>({
    messageSeq: toNumber(r.message_seq),
    user: r.user,
    device: r.device,
    deliveredAt: toOptionalNumber(r.delivered_at),
    displayedAt: toOptionalNumber(r.displayed_at),
  });
}

function toFile(r: FileRow): FileRecord {
  return defined<FileRecord>({
    id: r.id,
    owner: r.owner,
    contentType: r.content_type,
    size: toNumber(r.size),
    wrappedKey: Buffer.from(r.wrapped_key),
    location: r.location,
    name: toOptionalString(r.name),
    createdAt: toNumber(r.created_at),
  });
}

/** A conversation-list row: the conversation, the user's membership, and the last message as `m_*`. */
type SummaryRow = ConversationRow & { role: string; unread: number | string; last_seq: number | string | null } & {
  [K in (typeof MESSAGE_COLUMNS)[number] as `m_${K}`]: MessageRow[K] | null;
};

function toSummary(r: SummaryRow): ConversationSummary {
  const last: MessageRow | undefined = r.m_seq === null ? undefined : {
    seq: r.m_seq, id: r.m_id!, conversation_id: r.m_conversation_id!, kind: r.m_kind!, sender: r.m_sender!, content_type: r.m_content_type!,
    body: r.m_body!, imdn_id: r.m_imdn_id, notify: r.m_notify, origin_device: r.m_origin_device, ref_seq: r.m_ref_seq, created_at: r.m_created_at!,
  };
  return defined<ConversationSummary>({
    conversation: toConversation(r),
    role: r.role as MemberRole,
    last: last === undefined ? undefined : toMessage(last),
    unread: toNumber(r.unread),
  });
}

/**
 * INSERT … VALUES (…), (…) in chunks, the rows in the order given: each gets a higher auto-increment id
 * than the one before. (knex writes SQLite's multi-row insert as INSERT … SELECT … UNION ALL SELECT …,
 * whose row order SQLite does not promise.)
 */
async function insertInOrder(db: Knex, table: string, columns: readonly string[], rows: ReadonlyArray<readonly Knex.Value[]>): Promise<void> {
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    await db.raw(`insert into ?? (${columns.map(() => '??').join(', ')}) values ${chunk.map(() => tuple).join(', ')}`, [table, ...columns, ...chunk.flat()]);
  }
}

// Insert-unless-there: `.onConflict(key).merge([a key column])`, an update that changes nothing, rather
// than `.ignore()`: MariaDB's INSERT IGNORE also turns a foreign-key or data error into a warning, so a
// receipt for a message that is gone would vanish silently there and fail on SQLite.

/** min(column, value) as SQL, NULL counting as "not yet": the earliest time of a state. */
function earliest(db: Knex, column: string, at: number): Knex.Raw {
  return db.raw('case when ?? is null or ?? > ? then ? else ?? end', [column, column, at, at, column]);
}

// ---- SQLite fast paths ----------------------------------------------------------------------------
// The delivery hot path (addMessage, cursor, inbox, advance) and the reads each message makes
// (getConversation, member) on statements prepared once (sqlite-statements.ts): knex builds and
// prepares every query anew and runs its transaction machinery, about a quarter of the server's time on a
// 1:1 message (bench/README.md, chat). Each statement below is what the knex path runs on SQLite, and its
// rows go through the same converters. A write is one better-sqlite3 transaction, so when runFast retries
// it on SQLITE_BUSY nothing of a first try is left behind. MariaDB keeps the knex path.

const INSERT_MESSAGE_SQL =
  `INSERT INTO chat_messages (${MESSAGE_COLUMNS.filter((c) => c !== 'seq').join(', ')}) ` +
  `VALUES (${MESSAGE_COLUMNS.filter((c) => c !== 'seq').map((c) => `@${c}`).join(', ')}) RETURNING seq`;
/** One inbox row, run once per recipient in order: each gets a higher seq than the one before. */
const INSERT_INBOX_SQL = 'INSERT INTO chat_inbox ("user", message_seq, conversation_id) VALUES (?, ?, ?)';
/** The inbox rows after a seq with their messages, on the index (user, seq). */
const INBOX_SQL =
  `SELECT i.seq AS inbox_seq, i."user" AS inbox_user, ${messageColumns('m').join(', ')} ` +
  'FROM chat_inbox AS i JOIN chat_messages AS m ON m.seq = i.message_seq WHERE i."user" = ? AND i.seq > ? ORDER BY i.seq LIMIT ?';
const GET_CURSOR_SQL = 'SELECT cursor FROM chat_devices WHERE "user" = ? AND device = ?';
const FURTHEST_CURSOR_SQL = 'SELECT max(cursor) AS c FROM chat_devices WHERE "user" = ?';
/** A new device's row unless a concurrent first call stored one (knex's merge(['user']) on SQLite). */
const INSERT_DEVICE_SQL = 'INSERT INTO chat_devices ("user", device, cursor, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT ("user", device) DO NOTHING';
/** advance()'s insert-or-update pair as one upsert: the cursor never moves back, last_seen always. */
const ADVANCE_SQL =
  'INSERT INTO chat_devices ("user", device, cursor, last_seen) VALUES (@user, @device, @cursor, @at) ON CONFLICT ("user", device) ' +
  'DO UPDATE SET cursor = CASE WHEN cursor < excluded.cursor THEN excluded.cursor ELSE cursor END, last_seen = excluded.last_seen';
/** writeReceipt(…, 'delivered', …) as one upsert: delivered_at keeps its earliest time. */
const DELIVERED_SQL =
  'INSERT INTO chat_receipts (message_seq, "user", device, delivered_at, displayed_at) VALUES (@seq, @user, @device, @at, NULL) ' +
  'ON CONFLICT (message_seq, "user", device) DO UPDATE SET delivered_at = ' +
  'CASE WHEN delivered_at IS NULL OR delivered_at > excluded.delivered_at THEN excluded.delivered_at ELSE delivered_at END';
const GET_CONVERSATION_SQL = `SELECT ${CONVERSATION_COLUMNS.join(', ')} FROM chat_conversations WHERE id = ?`;
/** A conversation's members in join order. */
const MEMBERS_SQL = `SELECT ${MEMBER_COLUMNS.map((c) => (c === 'user' ? '"user"' : c)).join(', ')} FROM chat_members WHERE conversation_id = ? ORDER BY id`;
const GET_MEMBER_SQL = `SELECT ${MEMBER_COLUMNS.map((c) => (c === 'user' ? '"user"' : c)).join(', ')} FROM chat_members WHERE conversation_id = ? AND "user" = ?`;
type InboxRow = MessageRow & { inbox_seq: number | string; inbox_user: string };

function toInboxEntry(r: InboxRow): InboxEntry {
  return { seq: toNumber(r.inbox_seq), user: r.inbox_user, message: toMessage(r) };
}

export class SqlMessageRepository implements MessageRepository {
  constructor(private readonly ctx: SqlContext) {}

  // ---- conversations and members ----

  async createConversation(conversation: ConversationRecord, members: Array<{ user: string; role: MemberRole }>): Promise<boolean> {
    const row = conversationRow(conversation);
    if (!Array.isArray(members)) throw new TypeError('members must be an array');
    const users = distinct('members', members.map((m) => (typeof m === 'object' && m !== null ? m.user : undefined)), (v) => userName(v, 'members[].user'));
    const memberRows = members.map((m, i) => [row.id, users[i]!, checkOneOf('members[].role', m.role, MEMBER_ROLES), row.created_at, 0] as const);
    return this.ctx.run('creating a conversation', (db) => db.transaction(async (trx) => {
      try {
        await trx('chat_conversations').insert(row);
      } catch (err) {
        // The primary key decides, also between two processes creating the same direct conversation.
        if (isUniqueViolation(err)) return false;
        throw err;
      }
      // The auto-increment id is the join order: the members in the order given.
      await insertInOrder(trx, 'chat_members', MEMBER_COLUMNS, memberRows);
      return true;
    }));
  }

  async getConversation(id: string): Promise<ConversationRecord | undefined> {
    const key = conversationId(id);
    return this.ctx.runFast(
      'reading a conversation',
      (s) => {
        const row = s.get<ConversationRow>(GET_CONVERSATION_SQL, key);
        return row === undefined ? undefined : toConversation(row);
      },
      async (db) => {
        const row = (await db('chat_conversations').first(...CONVERSATION_COLUMNS).where({ id: key })) as ConversationRow | undefined;
        return row === undefined ? undefined : toConversation(row);
      },
    );
  }

  async members(id: string): Promise<MemberRecord[]> {
    const key = conversationId(id);
    return this.ctx.runFast('listing members', (s) => s.all<MemberRow>(MEMBERS_SQL, key).map(toMember), async (db) => {
      const rows = (await db('chat_members').select(...MEMBER_COLUMNS).where({ conversation_id: key }).orderBy('id')) as MemberRow[];
      return rows.map(toMember);
    });
  }

  async member(id: string, user: string): Promise<MemberRecord | undefined> {
    const key = conversationId(id);
    const who = userName(user);
    return this.ctx.runFast(
      'reading a member',
      (s) => {
        const row = s.get<MemberRow>(GET_MEMBER_SQL, key, who);
        return row === undefined ? undefined : toMember(row);
      },
      async (db) => {
        const row = (await db('chat_members').first(...MEMBER_COLUMNS).where({ conversation_id: key, user: who })) as MemberRow | undefined;
        return row === undefined ? undefined : toMember(row);
      },
    );
  }

  async putMember(id: string, user: string, role: MemberRole, at: number): Promise<boolean> {
    const row = { conversation_id: conversationId(id), user: userName(user), role: checkOneOf('role', role, MEMBER_ROLES), joined_at: timeOf(at, 'at'), read_seq: 0 };
    return this.ctx.run('adding a member', async (db) => {
      try {
        await db('chat_members').insert(row);
        return true;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
      // A member already: only the role changes (joined_at and the read mark stay).
      await db('chat_members').where({ conversation_id: row.conversation_id, user: row.user }).update({ role: row.role });
      return false;
    });
  }

  async removeMember(id: string, user: string): Promise<boolean> {
    const key = conversationId(id);
    const who = userName(user);
    return this.ctx.run('removing a member', async (db) => (await db('chat_members').where({ conversation_id: key, user: who }).del()) > 0);
  }

  async deleteConversation(id: string): Promise<void> {
    const key = conversationId(id);
    // The foreign keys cascade: members, messages (and through them inbox rows and receipts), file links.
    await this.ctx.run('deleting a conversation', async (db) => {
      await db('chat_conversations').where({ id: key }).del();
    });
  }

  async conversationsOf(user: string, limit: number, beforeSeq?: number): Promise<ConversationSummary[]> {
    const who = userName(user);
    const max = limitOf(limit);
    const before = beforeSeq === undefined ? undefined : seqOf(beforeSeq, 'beforeSeq');
    return this.ctx.run('listing conversations', async (db) => {
      // The user's visible messages of the conversation `mb` names (a correlated subquery per row, on
      // the inbox index (user, conversation_id, message_seq)): one query for the whole list, no N+1.
      const visible = (kinds: readonly MessageKind[]) => db('chat_inbox as i')
        .join('chat_messages as x', 'x.seq', 'i.message_seq')
        .where('i.user', who)
        .where('i.conversation_id', db.ref('mb.conversation_id'))
        .where('i.hidden', false)
        .whereIn('x.kind', kinds);
      const lastSeq = visible(LISTED_KINDS).max('i.message_seq');
      const unread = visible(['text']).count('*').whereNot('x.sender', who).where('i.message_seq', '>', db.ref('mb.read_seq'));
      const memberships = db('chat_members as mb')
        .join('chat_conversations as c', 'c.id', 'mb.conversation_id')
        .where('mb.user', who)
        .select(...CONVERSATION_COLUMNS.map((col) => `c.${col}`), 'mb.role', lastSeq.as('last_seq'), unread.as('unread'));
      // Activity: the last visible message's seq. A conversation without one (0) comes after those with
      // one, the newest created first; beforeSeq cannot page among those (they share activity 0).
      const query = db.from(memberships.as('s'))
        .leftJoin('chat_messages as m', 'm.seq', 's.last_seq')
        .select('s.*', ...MESSAGE_COLUMNS.map((col) => `m.${col} as m_${col}`))
        .orderByRaw('coalesce(??, 0) desc, ?? desc, ?? desc', ['s.last_seq', 's.created_at', 's.id'])
        .limit(max);
      if (before !== undefined) query.whereRaw('coalesce(??, 0) < ?', ['s.last_seq', before]);
      return ((await query) as SummaryRow[]).map(toSummary);
    });
  }

  // ---- messages and the inbox ----

  async addMessage(message: NewMessage, recipients: string[]): Promise<StoredMessage> {
    const row = messageRow(message);
    const users = distinct('recipients', recipients, (v) => userName(v, 'recipients[]'));
    return this.ctx.runFast(
      'storing a message',
      (s) => s.transaction(() => {
        const seq = toNumber(s.get<{ seq: number }>(INSERT_MESSAGE_SQL, row)!.seq);
        for (const user of users) s.run(INSERT_INBOX_SQL, user, seq, row.conversation_id);
        return toMessage({ ...row, seq });
      }),
      (db) => db.transaction(async (trx) => {
        const [inserted] = (await trx('chat_messages').insert(row)) as unknown[];
        const seq = toNumber(inserted);
        // The inbox order is the recipients' order.
        await insertInOrder(trx, 'chat_inbox', ['user', 'message_seq', 'conversation_id'], users.map((user) => [user, seq, row.conversation_id]));
        return toMessage({ ...row, seq });
      }),
    );
  }

  async getMessage(id: string): Promise<StoredMessage | undefined> {
    const key = checkText('id', id, MAX_MESSAGE_ID);
    return this.oneMessage('reading a message', (b) => b.where({ id: key }));
  }

  async getMessageBySeq(seq: number): Promise<StoredMessage | undefined> {
    const key = seqOf(seq);
    return this.oneMessage('reading a message', (b) => b.where({ seq: key }));
  }

  async findByImdnId(sender: string, imdnId: string): Promise<StoredMessage | undefined> {
    const from = userName(sender, 'sender');
    const imdn = checkText('imdnId', imdnId, MAX_SHORT);
    // The newest, should a sender ever reuse a Message-ID (RFC 5438 §6.3 asks it to be unique).
    return this.oneMessage('finding a message by its IMDN Message-ID', (b) => b.where({ imdn_id: imdn, sender: from }).orderBy('seq', 'desc'));
  }

  private async oneMessage(what: string, where: (b: Knex.QueryBuilder) => void): Promise<StoredMessage | undefined> {
    return this.ctx.run(what, async (db) => {
      const row = (await db('chat_messages').first(...MESSAGE_COLUMNS).modify(where)) as MessageRow | undefined;
      return row === undefined ? undefined : toMessage(row);
    });
  }

  async page(query: MessagePageQuery): Promise<StoredMessage[]> {
    if (typeof query !== 'object' || query === null) throw new TypeError('query must be an object');
    const key = conversationId(query.conversationId);
    const reader = query.user === undefined ? undefined : userName(query.user);
    const before = query.before === undefined ? undefined : seqOf(query.before, 'before');
    const after = query.after === undefined ? undefined : seqOf(query.after, 'after');
    const limit = limitOf(query.limit);
    let kinds: readonly MessageKind[] = LISTED_KINDS;
    if (query.kinds !== undefined) {
      if (!Array.isArray(query.kinds) || query.kinds.length === 0) throw new TypeError('kinds must be a non-empty array');
      kinds = query.kinds.map((k) => checkOneOf('kinds[]', k, MESSAGE_KINDS));
    }
    return this.ctx.run('reading a conversation page', async (db) => {
      const b = db('chat_messages as m').select(...messageColumns('m')).where('m.conversation_id', key).whereIn('m.kind', kinds);
      if (reader !== undefined) b.join('chat_inbox as i', 'i.message_seq', 'm.seq').where('i.user', reader).where('i.hidden', false);
      if (after !== undefined) b.where('m.seq', '>', after);
      if (before !== undefined) b.where('m.seq', '<', before);
      // With `before`, the `limit` messages just before it: read newest first, handed back oldest first.
      const rows = (await b.orderBy('m.seq', before === undefined ? 'asc' : 'desc').limit(limit)) as MessageRow[];
      if (before !== undefined) rows.reverse();
      return rows.map(toMessage);
    });
  }

  async hide(user: string, messageSeq: number): Promise<void> {
    const who = userName(user);
    const seq = seqOf(messageSeq, 'messageSeq');
    await this.ctx.run('hiding a message', async (db) => {
      await db('chat_inbox').where({ user: who, message_seq: seq }).update({ hidden: true });
    });
  }

  async markRead(id: string, user: string, seq: number): Promise<number> {
    const key = conversationId(id);
    const who = userName(user);
    const upTo = seqOf(seq);
    return this.ctx.run('marking messages read', async (db) => {
      // Never back: a late or replayed display report must not make messages unread again.
      await db('chat_members').where({ conversation_id: key, user: who }).where('read_seq', '<', upTo).update({ read_seq: upTo });
      const row = (await db('chat_members').first('read_seq').where({ conversation_id: key, user: who })) as { read_seq: number | string } | undefined;
      return row === undefined ? 0 : toNumber(row.read_seq);
    });
  }

  // ---- devices ----

  async cursor(user: string, device: string): Promise<number> {
    const who = userName(user);
    const dev = deviceName(device);
    return this.ctx.runFast('reading a device cursor', (s) => {
      const known = s.get<{ cursor: number }>(GET_CURSOR_SQL, who, dev);
      if (known !== undefined) return toNumber(known.cursor);
      // As below, in one transaction: the furthest cursor is read and the row written under one lock.
      return s.transaction(() => {
        const start = toOptionalNumber(s.get<{ c: number | null }>(FURTHEST_CURSOR_SQL, who)?.c) ?? 0;
        s.run(INSERT_DEVICE_SQL, who, dev, start, Date.now());
        return toNumber(s.get<{ cursor: number }>(GET_CURSOR_SQL, who, dev)!.cursor);
      });
    }, async (db) => {
      const read = async () => (await db('chat_devices').first('cursor').where({ user: who, device: dev })) as { cursor: number | string } | undefined;
      const existing = await read();
      if (existing !== undefined) return toNumber(existing.cursor);
      // A new device starts after the rows some device of the user has received (the furthest cursor: a
      // cursor moves in order, past a row only once it was delivered or was that device's own), so it gets
      // what reached no device (msilo's store for an offline user), and not the history the others have.
      const [furthest] = (await db('chat_devices').max({ c: 'cursor' }).where({ user: who })) as Array<{ c: number | string | null }>;
      const start = toOptionalNumber(furthest?.c) ?? 0;
      // Two first calls for the same device at once: one row wins, both answer with it.
      await db('chat_devices').insert({ user: who, device: dev, cursor: start, last_seen: Date.now() }).onConflict(['user', 'device']).merge(['user']);
      const stored = await read();
      if (stored === undefined) throw new StoreError('STORE_ERR_QUERY', 'reading a device cursor failed: the device was removed while it was created');
      return toNumber(stored.cursor);
    });
  }

  async inbox(user: string, afterSeq: number, limit: number): Promise<InboxEntry[]> {
    const who = userName(user);
    const after = seqOf(afterSeq, 'afterSeq');
    const max = limitOf(limit);
    return this.ctx.runFast('reading an inbox', (s) => s.all<InboxRow>(INBOX_SQL, who, after, max).map(toInboxEntry), async (db) => {
      const rows = (await db('chat_inbox as i')
        .join('chat_messages as m', 'm.seq', 'i.message_seq')
        .select('i.seq as inbox_seq', 'i.user as inbox_user', ...messageColumns('m'))
        .where('i.user', who)
        .where('i.seq', '>', after)
        .orderBy('i.seq', 'asc')
        .limit(max)) as InboxRow[];
      return rows.map(toInboxEntry);
    });
  }

  async advance(user: string, device: string, seq: number, at: number, delivered?: number): Promise<void> {
    const who = userName(user);
    const dev = deviceName(device);
    const to = seqOf(seq);
    const when = timeOf(at, 'at');
    const receiptFor = delivered === undefined ? undefined : seqOf(delivered, 'delivered');
    await this.ctx.runFast('advancing a device cursor', (s) => s.transaction(() => {
      s.run(ADVANCE_SQL, { user: who, device: dev, cursor: to, at: when });
      if (receiptFor !== undefined) s.run(DELIVERED_SQL, { seq: receiptFor, user: who, device: dev, at: when });
    }), (db) => db.transaction(async (trx) => {
      await trx('chat_devices').insert({ user: who, device: dev, cursor: to, last_seen: when }).onConflict(['user', 'device']).merge(['user']);
      // Never back: a late 2xx for an older row must not make the device receive newer ones again.
      await trx('chat_devices').where({ user: who, device: dev })
        .update({ cursor: trx.raw('case when ?? < ? then ? else ?? end', ['cursor', to, to, 'cursor']), last_seen: when });
      if (receiptFor !== undefined) await writeReceipt(trx, receiptFor, who, dev, 'delivered', when);
    }));
  }

  // ---- receipts ----

  async receipt(messageSeq: number, user: string, device: string, state: 'delivered' | 'displayed', at: number): Promise<void> {
    const seq = seqOf(messageSeq, 'messageSeq');
    const who = userName(user);
    const dev = deviceName(device);
    const kind = checkOneOf('state', state, ['delivered', 'displayed'] as const);
    const when = timeOf(at, 'at');
    await this.ctx.run('recording a receipt', (db) => db.transaction((trx) => writeReceipt(trx, seq, who, dev, kind, when)));
  }

  async receipts(messageSeq: number): Promise<ReceiptRecord[]> {
    const seq = seqOf(messageSeq, 'messageSeq');
    return this.ctx.run('listing receipts', async (db) => {
      const rows = (await db('chat_receipts').select('message_seq', 'user', 'device', 'delivered_at', 'displayed_at')
        .where({ message_seq: seq }).orderBy([{ column: 'user' }, { column: 'device' }])) as ReceiptRow[];
      return rows.map(toReceipt);
    });
  }

  // ---- files ----

  async addFile(file: FileRecord): Promise<void> {
    const row = fileRow(file);
    await this.ctx.run('storing a file record', async (db) => {
      await db('chat_files').insert(row);
    });
  }

  async getFile(id: string): Promise<FileRecord | undefined> {
    const key = checkText('id', id, MAX_FILE_ID);
    return this.ctx.run('reading a file record', async (db) => {
      const row = (await db('chat_files').first(...FILE_COLUMNS).where({ id: key })) as FileRow | undefined;
      return row === undefined ? undefined : toFile(row);
    });
  }

  async linkFile(fileId: string, id: string): Promise<void> {
    const file = checkText('fileId', fileId, MAX_FILE_ID);
    const key = conversationId(id);
    await this.ctx.run('linking a file', async (db) => {
      await db('chat_file_links').insert({ file_id: file, conversation_id: key }).onConflict(['file_id', 'conversation_id']).merge(['file_id']);
    });
  }

  async fileConversations(fileId: string): Promise<string[]> {
    const file = checkText('fileId', fileId, MAX_FILE_ID);
    return this.ctx.run('listing a file\'s conversations', async (db) => {
      const rows = (await db('chat_file_links').select('conversation_id').where({ file_id: file }).orderBy('conversation_id')) as Array<{ conversation_id: string }>;
      return rows.map((r) => r.conversation_id);
    });
  }

  async deleteFile(id: string): Promise<void> {
    const key = checkText('id', id, MAX_FILE_ID);
    await this.ctx.run('deleting a file record', async (db) => {
      await db('chat_files').where({ id: key }).del();
    });
  }

  // ---- retention ----

  async purge(before: number): Promise<{ messages: number; files: FileRecord[] }> {
    const cutoff = timeOf(before, 'before');
    return this.ctx.run('purging old messages and files', async (db) => {
      // PURGE_BATCH rows per statement, each its own short transaction, with the cascades (inbox rows,
      // receipts) it brings: writers wait for one batch at most, never for the whole purge.
      let messages = 0;
      for (;;) {
        const rows = (await db('chat_messages').select('seq').where('created_at', '<', cutoff).orderBy('seq').limit(PURGE_BATCH)) as Array<{ seq: number | string }>;
        if (rows.length === 0) break;
        messages += await db('chat_messages').whereIn('seq', rows.map((r) => toNumber(r.seq))).del();
        if (rows.length < PURGE_BATCH) break;
      }
      const files: FileRecord[] = [];
      for (;;) {
        const rows = (await db('chat_files').select(...FILE_COLUMNS).where('created_at', '<', cutoff).orderBy('id').limit(PURGE_BATCH)) as FileRow[];
        if (rows.length === 0) break;
        const ids = rows.map((r) => r.id);
        await db('chat_files').whereIn('id', ids).del();
        files.push(...rows.map(toFile));
        if (rows.length < PURGE_BATCH) break;
      }
      return { messages, files };
    });
  }
}

/**
 * Upserts a receipt. Reports arrive late, twice or out of order: each state keeps its earliest time, and a
 * message displayed was delivered (RFC 5438 §5.1: a display report may come without a delivery report).
 */
async function writeReceipt(trx: Knex.Transaction, seq: number, who: string, dev: string, kind: 'delivered' | 'displayed', when: number): Promise<void> {
  await trx('chat_receipts').insert({ message_seq: seq, user: who, device: dev, delivered_at: null, displayed_at: null })
    .onConflict(['message_seq', 'user', 'device']).merge(['message_seq']);
  const update: Record<string, Knex.Raw> = { delivered_at: earliest(trx, 'delivered_at', when) };
  if (kind === 'displayed') update.displayed_at = earliest(trx, 'displayed_at', when);
  await trx('chat_receipts').where({ message_seq: seq, user: who, device: dev }).update(update);
}
