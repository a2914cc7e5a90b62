/**
 * The chat tables (platform/store/sql-message-repository.ts) in the shared store suite (repository-suite.ts
 * runs it on every target): conversations and members, messages and each user's inbox, what a reader sees,
 * device cursors, receipts, files and retention.
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { PURGE_BATCH, type ConversationRecord, type FileRecord, type NewMessage, type SqlStore, type StoredMessage } from '../../../../platform/store/index.js';
import { rejectsWith } from './targets.js';

const T0 = 1_800_000_000_000;
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';
const TABLES = ['chat_file_links', 'chat_files', 'chat_receipts', 'chat_devices', 'chat_inbox', 'chat_messages', 'chat_members', 'chat_conversations'];

let counter = 0;
/** A fresh 22-character public id. */
function nextId(): string {
  counter += 1;
  return `m${String(counter).padStart(21, '0')}`;
}

function group(id: string, overrides: Partial<ConversationRecord> = {}): ConversationRecord {
  return { id, kind: 'group', name: 'Ops', domain: 'example.com', createdBy: ALICE, createdAt: T0, ...overrides };
}

function direct(id: string): ConversationRecord {
  return { id, kind: 'direct', createdBy: ALICE, createdAt: T0 };
}

function message(conversationId: string, sender: string, overrides: Partial<NewMessage> = {}): NewMessage {
  return {
    id: nextId(), conversationId, kind: 'text', sender, contentType: 'text/plain', body: Buffer.from(`sealed ${counter}`), createdAt: T0 + counter, ...overrides,
  };
}

function file(id: string, overrides: Partial<FileRecord> = {}): FileRecord {
  return {
    id, owner: ALICE, contentType: 'image/png', size: 12_345, wrappedKey: Buffer.from([0, 1, 2, 250, 251, 252]), location: `ab/${id}`, name: 'cat.png',
    createdAt: T0, ...overrides,
  };
}

async function count(store: SqlStore, table: string): Promise<number> {
  const [row] = (await store.knex(table).count({ n: '*' })) as Array<{ n: number | string }>;
  return Number(row!.n);
}

async function counts(store: SqlStore): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = await count(store, t);
  return out;
}

const seqs = (messages: StoredMessage[]) => messages.map((m) => m.seq);

export function messageSuite(getStore: () => SqlStore): void {
  describe('chat store', () => {
    beforeEach(async () => {
      const knex = getStore().knex;
      // The conversations cascade to members, messages, inbox rows, receipts and file links.
      for (const t of ['chat_devices', 'chat_files', 'chat_conversations']) await knex(t).del();
    });

    describe('conversations and members', () => {
      it('createConversation stores the conversation and its members in the given order; the same id again resolves false and changes nothing', async () => {
        const store = getStore();
        const g = group('group-ops');
        assert.equal(await store.messages.createConversation(g, [{ user: CAROL, role: 'member' }, { user: ALICE, role: 'owner' }, { user: BOB, role: 'admin' }]), true);
        assert.deepEqual(await store.messages.getConversation('group-ops'), g);
        assert.deepEqual(await store.messages.members('group-ops'), [
          { conversationId: 'group-ops', user: CAROL, role: 'member', joinedAt: T0, readSeq: 0 },
          { conversationId: 'group-ops', user: ALICE, role: 'owner', joinedAt: T0, readSeq: 0 },
          { conversationId: 'group-ops', user: BOB, role: 'admin', joinedAt: T0, readSeq: 0 },
        ]);
        assert.equal(await store.messages.createConversation(group('group-ops', { name: 'Other' }), [{ user: 'dave@example.com', role: 'owner' }]), false);
        assert.equal((await store.messages.getConversation('group-ops'))?.name, 'Ops');
        assert.equal((await store.messages.members('group-ops')).length, 3);
      });

      it('a direct conversation reads back without name and domain; an unknown id is undefined', async () => {
        const store = getStore();
        assert.equal(await store.messages.createConversation(direct('d-AAAAAAAAAAAAAAAAAAAAAA'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]), true);
        const read = await store.messages.getConversation('d-AAAAAAAAAAAAAAAAAAAAAA');
        assert.deepEqual(read, direct('d-AAAAAAAAAAAAAAAAAAAAAA'));
        assert.ok(read !== undefined && !('name' in read) && !('domain' in read));
        assert.equal(await store.messages.getConversation('group-none'), undefined);
      });

      it('putMember adds (true) or changes the role of an existing member (false, joinedAt and read mark kept); removeMember says whether there was one', async () => {
        const store = getStore();
        await store.messages.createConversation(group('group-m'), [{ user: ALICE, role: 'owner' }]);
        assert.equal(await store.messages.putMember('group-m', BOB, 'member', T0 + 10), true);
        await store.messages.markRead('group-m', BOB, 7);
        assert.equal(await store.messages.putMember('group-m', BOB, 'admin', T0 + 20), false);
        assert.deepEqual(await store.messages.member('group-m', BOB), { conversationId: 'group-m', user: BOB, role: 'admin', joinedAt: T0 + 10, readSeq: 7 });
        assert.deepEqual((await store.messages.members('group-m')).map((m) => m.user), [ALICE, BOB]);
        assert.equal(await store.messages.removeMember('group-m', BOB), true);
        assert.equal(await store.messages.removeMember('group-m', BOB), false);
        assert.equal(await store.messages.member('group-m', BOB), undefined);
      });

      it('deleteConversation removes its members, messages, inbox rows, receipts and file links, and nothing of another conversation', async () => {
        const store = getStore();
        for (const id of ['group-gone', 'group-kept']) {
          await store.messages.createConversation(group(id), [{ user: ALICE, role: 'owner' }, { user: BOB, role: 'member' }]);
          const m = await store.messages.addMessage(message(id, ALICE), [BOB, ALICE]);
          await store.messages.receipt(m.seq, BOB, 'phone', 'delivered', T0);
        }
        await store.messages.addFile(file('f-linked'));
        await store.messages.linkFile('f-linked', 'group-gone');
        await store.messages.linkFile('f-linked', 'group-kept');
        await store.messages.deleteConversation('group-gone');
        assert.equal(await store.messages.getConversation('group-gone'), undefined);
        assert.deepEqual(await store.messages.members('group-gone'), []);
        assert.deepEqual(await store.messages.page({ conversationId: 'group-gone', limit: 10 }), []);
        assert.deepEqual(await store.messages.fileConversations('f-linked'), ['group-kept']);
        assert.deepEqual(await counts(store), {
          chat_file_links: 1, chat_files: 1, chat_receipts: 1, chat_devices: 0, chat_inbox: 2, chat_messages: 1, chat_members: 2, chat_conversations: 1,
        });
      });
    });

    describe('messages and the inbox', () => {
      it('addMessage returns the message with its seq, adds one inbox row per recipient in the given order, and reads back as written', async () => {
        const store = getStore();
        await store.messages.createConversation(group('group-a'), [{ user: ALICE, role: 'owner' }, { user: BOB, role: 'member' }, { user: CAROL, role: 'member' }]);
        const m = message('group-a', ALICE, { contentType: 'message/cpim', imdnId: 'imdn-1', notify: ['positive-delivery', 'display'], originDevice: '<urn:uuid:a1>' });
        const stored = await store.messages.addMessage(m, [CAROL, BOB, ALICE]);
        assert.ok(Number.isSafeInteger(stored.seq) && stored.seq > 0);
        assert.deepEqual(stored, { ...m, seq: stored.seq });
        assert.deepEqual(await store.messages.getMessage(m.id), stored);
        assert.deepEqual(await store.messages.getMessageBySeq(stored.seq), stored);
        const rows = (await store.knex('chat_inbox').select('user', 'seq').where({ message_seq: stored.seq }).orderBy('seq')) as Array<{ user: string }>;
        assert.deepEqual(rows.map((r) => r.user), [CAROL, BOB, ALICE]);
        const next = await store.messages.addMessage(message('group-a', BOB), [ALICE]);
        assert.ok(next.seq > stored.seq, 'seq increases');
      });

      it('optional fields stay absent, an empty notify list reads back as [], and an imdn keeps its refSeq', async () => {
        const store = getStore();
        await store.messages.createConversation(direct('d-opt'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
        const plain = await store.messages.addMessage(message('d-opt', ALICE), [BOB]);
        for (const key of ['imdnId', 'notify', 'originDevice', 'refSeq']) assert.ok(!(key in plain) && !(key in (await store.messages.getMessage(plain.id))!), key);
        const none = await store.messages.addMessage(message('d-opt', ALICE, { notify: [] }), [BOB]);
        assert.deepEqual((await store.messages.getMessage(none.id))?.notify, []);
        const imdn = await store.messages.addMessage(message('d-opt', BOB, { kind: 'imdn', contentType: 'message/imdn+xml', refSeq: plain.seq }), [ALICE]);
        assert.equal((await store.messages.getMessageBySeq(imdn.seq))?.refSeq, plain.seq);
        assert.equal(await store.messages.getMessage('no-such-message'), undefined);
        assert.equal(await store.messages.getMessageBySeq(imdn.seq + 1000), undefined);
      });

      it('a sealed body of 64 KiB + 200 bytes round-trips byte for byte', async () => {
        const store = getStore();
        await store.messages.createConversation(direct('d-big'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
        const body = Buffer.alloc(65_536 + 200);
        for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 13) & 0xff;
        const stored = await store.messages.addMessage(message('d-big', ALICE, { body }), [BOB]);
        const read = await store.messages.getMessage(stored.id);
        assert.equal(read?.body.length, 65_736);
        assert.ok(read?.body.equals(body));
      });

      it('findByImdnId finds the message of that sender, in whichever conversation', async () => {
        const store = getStore();
        await store.messages.createConversation(group('group-i'), [{ user: ALICE, role: 'owner' }, { user: BOB, role: 'member' }]);
        await store.messages.createConversation(group('group-j'), [{ user: ALICE, role: 'owner' }]);
        const m = await store.messages.addMessage(message('group-i', ALICE, { imdnId: 'id-42' }), [BOB]);
        await store.messages.addMessage(message('group-j', ALICE, { imdnId: 'id-43' }), [ALICE]);
        assert.deepEqual(await store.messages.findByImdnId(ALICE, 'id-42'), m);
        assert.equal(await store.messages.findByImdnId(BOB, 'id-42'), undefined);
        assert.equal(await store.messages.findByImdnId(ALICE, 'id-44'), undefined);
      });

      it('addMessage to a conversation that does not exist is refused by the foreign key (STORE_ERR_INVALID) and writes nothing', async () => {
        const store = getStore();
        await rejectsWith(store.messages.addMessage(message('group-missing', ALICE), [BOB]), 'STORE_ERR_INVALID');
        assert.equal(await count(store, 'chat_messages'), 0);
      });
    });

    describe('what a reader sees: page', () => {
      /** group-p: alice, bob, carol; bob joined late (no inbox row for the first two). */
      async function conversation(store: SqlStore): Promise<StoredMessage[]> {
        await store.messages.createConversation(group('group-p'), [{ user: ALICE, role: 'owner' }, { user: BOB, role: 'member' }, { user: CAROL, role: 'member' }]);
        const out: StoredMessage[] = [];
        out.push(await store.messages.addMessage(message('group-p', ALICE), [CAROL, ALICE]));
        out.push(await store.messages.addMessage(message('group-p', CAROL), [ALICE, CAROL]));
        for (let i = 0; i < 4; i++) out.push(await store.messages.addMessage(message('group-p', i % 2 === 0 ? ALICE : BOB), [ALICE, BOB, CAROL]));
        out.push(await store.messages.addMessage(message('group-p', ALICE, { kind: 'system', contentType: 'application/json' }), [ALICE, BOB, CAROL]));
        out.push(await store.messages.addMessage(message('group-p', BOB, { kind: 'imdn', contentType: 'message/imdn+xml', refSeq: out[2]!.seq }), [ALICE]));
        return out;
      }

      it('a user sees only the text and system messages they have an inbox row for, oldest first; no user (an admin) sees every one', async () => {
        const store = getStore();
        const all = await conversation(store);
        const listed = all.slice(0, 7);
        assert.deepEqual(await store.messages.page({ conversationId: 'group-p', user: ALICE, limit: 100 }), listed);
        assert.deepEqual(seqs(await store.messages.page({ conversationId: 'group-p', user: BOB, limit: 100 })), seqs(listed.slice(2)));
        assert.deepEqual(seqs(await store.messages.page({ conversationId: 'group-p', limit: 100 })), seqs(listed));
        assert.deepEqual(seqs(await store.messages.page({ conversationId: 'group-p', user: ALICE, limit: 100, kinds: ['imdn'] })), [all[7]!.seq]);
        assert.deepEqual(seqs(await store.messages.page({ conversationId: 'group-p', user: CAROL, limit: 100, kinds: ['imdn'] })), []);
        assert.deepEqual(await store.messages.page({ conversationId: 'group-p', user: 'dave@example.com', limit: 100 }), []);
      });

      it('before and after are exclusive; with before the page is the limit messages just before it, still oldest first', async () => {
        const store = getStore();
        const s = seqs((await conversation(store)).slice(0, 7));
        const page = async (q: { before?: number; after?: number; limit: number }) => seqs(await store.messages.page({ conversationId: 'group-p', user: ALICE, ...q }));
        assert.deepEqual(await page({ limit: 3 }), s.slice(0, 3));
        assert.deepEqual(await page({ after: s[2]!, limit: 3 }), s.slice(3, 6));
        assert.deepEqual(await page({ before: s[5]!, limit: 2 }), [s[3], s[4]]);
        assert.deepEqual(await page({ before: s[1]!, limit: 5 }), [s[0]]);
        assert.deepEqual(await page({ after: s[1]!, before: s[4]!, limit: 10 }), [s[2], s[3]]);
        assert.deepEqual(await page({ after: s[6]!, limit: 10 }), []);
      });

      it('hide removes the message for that user only', async () => {
        const store = getStore();
        const all = await conversation(store);
        await store.messages.hide(CAROL, all[3]!.seq);
        assert.ok(!seqs(await store.messages.page({ conversationId: 'group-p', user: CAROL, limit: 100 })).includes(all[3]!.seq));
        assert.ok(seqs(await store.messages.page({ conversationId: 'group-p', user: ALICE, limit: 100 })).includes(all[3]!.seq));
        assert.ok(seqs(await store.messages.page({ conversationId: 'group-p', limit: 100 })).includes(all[3]!.seq));
      });

      it('markRead moves the read mark forward only and resolves with the read seq now', async () => {
        const store = getStore();
        const all = await conversation(store);
        assert.equal(await store.messages.markRead('group-p', BOB, all[4]!.seq), all[4]!.seq);
        assert.equal(await store.messages.markRead('group-p', BOB, all[2]!.seq), all[4]!.seq);
        assert.equal((await store.messages.member('group-p', BOB))?.readSeq, all[4]!.seq);
        assert.equal(await store.messages.markRead('group-p', BOB, all[6]!.seq), all[6]!.seq);
      });
    });

    describe('conversation list: conversationsOf', () => {
      it('lists the user\'s conversations most recently active first, with role, last visible text/system message and unread count', async () => {
        const store = getStore();
        await store.messages.createConversation(group('group-old', { createdAt: T0 }), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'owner' }]);
        await store.messages.createConversation(direct('d-ab'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
        await store.messages.createConversation(group('group-empty', { createdAt: T0 + 5 }), [{ user: ALICE, role: 'admin' }]);
        await store.messages.createConversation(group('group-empty-older', { createdAt: T0 + 1 }), [{ user: ALICE, role: 'member' }]);
        await store.messages.createConversation(group('group-not-mine'), [{ user: BOB, role: 'owner' }]);

        const d1 = await store.messages.addMessage(message('d-ab', BOB), [ALICE, BOB]);
        const g1 = await store.messages.addMessage(message('group-old', BOB), [ALICE, BOB]);
        const g2 = await store.messages.addMessage(message('group-old', BOB), [ALICE, BOB]);
        await store.messages.addMessage(message('group-old', ALICE), [BOB, ALICE]);
        const sys = await store.messages.addMessage(message('group-old', BOB, { kind: 'system', contentType: 'application/json' }), [ALICE, BOB]);
        const d2 = await store.messages.addMessage(message('d-ab', BOB), [ALICE, BOB]);
        const d3 = await store.messages.addMessage(message('d-ab', BOB), [ALICE, BOB]);
        // An imdn is never the last message nor unread; a hidden message neither.
        await store.messages.addMessage(message('d-ab', BOB, { kind: 'imdn', contentType: 'message/imdn+xml', refSeq: d1.seq }), [ALICE]);
        await store.messages.hide(ALICE, d3.seq);
        await store.messages.markRead('group-old', ALICE, g1.seq);
        await store.messages.addMessage(message('group-not-mine', BOB), [BOB]);

        const list = await store.messages.conversationsOf(ALICE, 10);
        assert.deepEqual(list.map((s) => s.conversation.id), ['d-ab', 'group-old', 'group-empty', 'group-empty-older']);
        assert.deepEqual(list.map((s) => s.role), ['member', 'member', 'admin', 'member']);
        assert.deepEqual(list.map((s) => s.last?.seq), [d2.seq, sys.seq, undefined, undefined]);
        // d-ab: d1, d2 (d3 hidden); group-old: g2 (g1 read, g3 her own, the system note is no text).
        assert.deepEqual(list.map((s) => s.unread), [2, 1, 0, 0]);
        assert.deepEqual(list[0]!.last, d2);
        assert.deepEqual(list[1]!.conversation, group('group-old', { createdAt: T0 }));
        assert.ok(!('last' in list[2]!));

        assert.deepEqual((await store.messages.conversationsOf(ALICE, 2)).map((s) => s.conversation.id), ['d-ab', 'group-old']);
        assert.deepEqual((await store.messages.conversationsOf(ALICE, 10, d2.seq)).map((s) => s.conversation.id), ['group-old', 'group-empty', 'group-empty-older']);
        assert.deepEqual((await store.messages.conversationsOf(ALICE, 10, sys.seq)).map((s) => s.conversation.id), ['group-empty', 'group-empty-older']);
        assert.deepEqual((await store.messages.conversationsOf(BOB, 10)).map((s) => [s.conversation.id, s.unread]), [['group-not-mine', 0], ['d-ab', 0], ['group-old', 1]]);
        assert.deepEqual(await store.messages.conversationsOf('nobody@example.com', 10), []);
      });
    });

    describe('devices: cursor, inbox, advance', () => {
      async function threeRows(store: SqlStore): Promise<StoredMessage[]> {
        await store.messages.createConversation(direct('d-dev'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
        const out: StoredMessage[] = [];
        for (let i = 0; i < 3; i++) out.push(await store.messages.addMessage(message('d-dev', ALICE), [BOB]));
        return out;
      }

      it('a user without inbox rows: a new device starts at 0', async () => {
        assert.equal(await getStore().messages.cursor(BOB, 'phone'), 0);
      });

      it('inbox returns the rows after a seq, oldest first, at most limit, each with its message', async () => {
        const store = getStore();
        const sent = await threeRows(store);
        const all = await store.messages.inbox(BOB, 0, 10);
        assert.deepEqual(all.map((e) => e.message), sent);
        assert.deepEqual(all.map((e) => e.user), [BOB, BOB, BOB]);
        assert.ok(all[0]!.seq < all[1]!.seq && all[1]!.seq < all[2]!.seq);
        assert.deepEqual((await store.messages.inbox(BOB, all[0]!.seq, 1)).map((e) => e.seq), [all[1]!.seq]);
        assert.deepEqual(await store.messages.inbox(ALICE, 0, 10), []);
      });

      it('a new device starts after the furthest cursor of the user\'s devices (0 for the first); a known device keeps its cursor', async () => {
        const store = getStore();
        await threeRows(store);
        const rows = await store.messages.inbox(BOB, 0, 10);
        assert.equal(await store.messages.cursor(BOB, 'phone'), 0, 'the first device gets every row');
        await store.messages.advance(BOB, 'phone', rows[0]!.seq, T0 + 100);
        assert.equal(await store.messages.cursor(BOB, 'phone'), rows[0]!.seq);
        assert.equal(await store.messages.cursor(BOB, 'laptop'), rows[0]!.seq);
        await store.messages.advance(BOB, 'phone', rows[1]!.seq, T0 + 101);
        await store.messages.advance(BOB, 'phone', rows[2]!.seq, T0 + 102);
        assert.equal(await store.messages.cursor(BOB, 'tablet'), rows[2]!.seq);
        // The laptop kept the cursor it was given.
        assert.equal(await store.messages.cursor(BOB, 'laptop'), rows[0]!.seq);
      });

      it('concurrent first calls for the same device all resolve with the one stored cursor', async () => {
        const store = getStore();
        await threeRows(store);
        const results = await Promise.all([0, 1, 2, 3, 4].map(() => store.messages.cursor(BOB, 'race')));
        assert.equal(new Set(results).size, 1);
        assert.equal(await count(store, 'chat_devices'), 1);
      });

      it('advance never moves the cursor back, records last_seen, and records a delivery in the same step', async () => {
        const store = getStore();
        const sent = await threeRows(store);
        const rows = await store.messages.inbox(BOB, 0, 10);
        await store.messages.advance(BOB, 'phone', rows[2]!.seq, T0 + 300, sent[2]!.seq);
        await store.messages.advance(BOB, 'phone', rows[1]!.seq, T0 + 400);
        assert.equal(await store.messages.cursor(BOB, 'phone'), rows[2]!.seq);
        const device = (await store.knex('chat_devices').first('last_seen').where({ device: 'phone' })) as { last_seen: number | string };
        assert.equal(Number(device.last_seen), T0 + 400);
        assert.deepEqual((await store.messages.receipts(sent[2]!.seq)).map((r) => [r.device, r.deliveredAt]), [['phone', T0 + 300]]);
        assert.deepEqual(await store.messages.receipts(sent[1]!.seq), []);
        // A row passed over counts as received: a new device starts after it.
        assert.equal(await store.messages.cursor(BOB, 'tablet'), rows[2]!.seq);
      });

      it('a delivery recorded by advance keeps its earliest time, and one for a message that is gone is refused (STORE_ERR_INVALID) without moving the cursor', async () => {
        const store = getStore();
        const sent = await threeRows(store);
        const rows = await store.messages.inbox(BOB, 0, 10);
        await store.messages.advance(BOB, 'phone', rows[0]!.seq, T0 + 500, sent[0]!.seq);
        await store.messages.advance(BOB, 'phone', rows[0]!.seq, T0 + 600, sent[0]!.seq);
        assert.deepEqual((await store.messages.receipts(sent[0]!.seq)).map((r) => r.deliveredAt), [T0 + 500]);
        await store.messages.advance(BOB, 'phone', rows[0]!.seq, T0 + 450, sent[0]!.seq);
        assert.deepEqual((await store.messages.receipts(sent[0]!.seq)).map((r) => r.deliveredAt), [T0 + 450]);
        // Cursor and receipt are one transaction: the refused receipt takes the cursor step with it.
        await rejectsWith(store.messages.advance(BOB, 'phone', rows[2]!.seq, T0 + 700, sent[2]!.seq + 1000), 'STORE_ERR_INVALID');
        assert.equal(await store.messages.cursor(BOB, 'phone'), rows[0]!.seq);
        const device = (await store.knex('chat_devices').first('last_seen').where({ device: 'phone' })) as { last_seen: number | string };
        assert.equal(Number(device.last_seen), T0 + 450);
      });

      it('addMessage with more recipients than one INSERT holds adds every inbox row in the given order, each readable page by page', async () => {
        const store = getStore();
        const users = Array.from({ length: 600 }, (_, i) => `u${String(i).padStart(3, '0')}@example.com`);
        await store.messages.createConversation(group('group-many'), users.map((user) => ({ user, role: 'member' as const })));
        const sent = await store.messages.addMessage(message('group-many', users[0]!), [...users].reverse());
        const rows = (await store.knex('chat_inbox').select('user').where({ message_seq: sent.seq }).orderBy('seq')) as Array<{ user: string }>;
        assert.deepEqual(rows.map((r) => r.user), [...users].reverse());
        const second = await store.messages.addMessage(message('group-many', users[1]!), [users[599]!]);
        const page = await store.messages.inbox(users[599]!, 0, 1);
        assert.deepEqual(page.map((e) => e.message), [sent]);
        assert.deepEqual((await store.messages.inbox(users[599]!, page[0]!.seq, 5)).map((e) => e.message), [second]);
      });

      it('a message written while another transaction writes is stored whole once that ends, with the event loop free meanwhile', async () => {
        const store = getStore();
        await store.messages.createConversation(direct('d-busy'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
        let release!: () => void;
        const held = new Promise<void>((resolve) => (release = resolve));
        let holding!: () => void;
        const locked = new Promise<void>((resolve) => (holding = resolve));
        // On SQLite this holds the file's one write lock (the prepared-statement connection gets SQLITE_BUSY).
        const other = store.knex.transaction(async (trx) => {
          await trx('chat_devices').insert({ user: CAROL, device: 'holder', cursor: 0, last_seen: T0 });
          holding();
          await held;
        });
        await locked;
        let settled = false;
        const storing = store.messages.addMessage(message('d-busy', ALICE), [BOB, ALICE]).then((m) => {
          settled = true;
          return m;
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        if (store.dialect === 'sqlite') assert.equal(settled, false, 'the message waits for the lock');
        release();
        await other;
        const stored = await storing;
        assert.deepEqual((await store.messages.inbox(BOB, 0, 10)).map((e) => e.message), [stored]);
        assert.deepEqual((await store.messages.inbox(ALICE, 0, 10)).map((e) => e.message), [stored]);
        assert.equal(await count(store, 'chat_messages'), 1);
      });
    });

    describe('receipts', () => {
      it('each state keeps its earliest time, displaying implies delivered, and receipts lists every device', async () => {
        const store = getStore();
        await store.messages.createConversation(direct('d-r'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
        const m = await store.messages.addMessage(message('d-r', ALICE), [BOB, ALICE]);
        await store.messages.receipt(m.seq, BOB, 'phone', 'delivered', T0 + 20);
        await store.messages.receipt(m.seq, BOB, 'phone', 'delivered', T0 + 10);
        await store.messages.receipt(m.seq, BOB, 'phone', 'delivered', T0 + 30);
        await store.messages.receipt(m.seq, BOB, 'phone', 'displayed', T0 + 50);
        await store.messages.receipt(m.seq, BOB, 'phone', 'displayed', T0 + 60);
        await store.messages.receipt(m.seq, BOB, 'laptop', 'displayed', T0 + 40);
        assert.deepEqual(await store.messages.receipts(m.seq), [
          { messageSeq: m.seq, user: BOB, device: 'laptop', deliveredAt: T0 + 40, displayedAt: T0 + 40 },
          { messageSeq: m.seq, user: BOB, device: 'phone', deliveredAt: T0 + 10, displayedAt: T0 + 50 },
        ]);
        await store.messages.receipt(m.seq, CAROL, 'web', 'delivered', T0 + 70);
        const carol = (await store.messages.receipts(m.seq)).find((r) => r.user === CAROL);
        assert.deepEqual(carol, { messageSeq: m.seq, user: CAROL, device: 'web', deliveredAt: T0 + 70 });
        assert.deepEqual(await store.messages.receipts(m.seq + 1000), []);
      });

      it('a receipt for a message that does not exist is refused (STORE_ERR_INVALID)', async () => {
        await rejectsWith(getStore().messages.receipt(999_999_999, BOB, 'phone', 'delivered', T0), 'STORE_ERR_INVALID');
      });
    });

    describe('files', () => {
      it('addFile and getFile round-trip the record (wrapped key bytes included); links are kept once per conversation; deleteFile drops the links', async () => {
        const store = getStore();
        await store.messages.createConversation(direct('d-f1'), [{ user: ALICE, role: 'member' }]);
        await store.messages.createConversation(direct('d-f2'), [{ user: ALICE, role: 'member' }]);
        const f = file('f-1');
        await store.messages.addFile(f);
        assert.deepEqual(await store.messages.getFile('f-1'), f);
        const noName = file('f-2', { name: undefined });
        delete noName.name;
        await store.messages.addFile(noName);
        assert.deepEqual(await store.messages.getFile('f-2'), noName);
        await store.messages.linkFile('f-1', 'd-f2');
        await store.messages.linkFile('f-1', 'd-f1');
        await store.messages.linkFile('f-1', 'd-f2');
        assert.deepEqual(await store.messages.fileConversations('f-1'), ['d-f1', 'd-f2']);
        await rejectsWith(store.messages.addFile(file('f-1')), 'STORE_ERR_INVALID');
        await store.messages.deleteFile('f-1');
        assert.equal(await store.messages.getFile('f-1'), undefined);
        assert.deepEqual(await store.messages.fileConversations('f-1'), []);
        assert.equal(await count(store, 'chat_file_links'), 0);
      });

      it('linking a file that does not exist, or to a conversation that does not, is refused (STORE_ERR_INVALID)', async () => {
        const store = getStore();
        await store.messages.createConversation(direct('d-f3'), [{ user: ALICE, role: 'member' }]);
        await store.messages.addFile(file('f-3'));
        await rejectsWith(store.messages.linkFile('f-none', 'd-f3'), 'STORE_ERR_INVALID');
        await rejectsWith(store.messages.linkFile('f-3', 'd-none'), 'STORE_ERR_INVALID');
        assert.deepEqual(await store.messages.fileConversations('f-3'), []);
      });
    });

    describe('retention: purge', () => {
      it('deletes the messages created before the time with their inbox rows and receipts, and the files, in batches; returns what went', async () => {
        const store = getStore();
        await store.messages.createConversation(direct('d-old'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
        // More than two batches of old messages, written straight into the table (addMessage one by one would be slow).
        const old = 2 * PURGE_BATCH + 17;
        for (let i = 0; i < old; i += 500) {
          const rows = Array.from({ length: Math.min(500, old - i) }, (_, j) => ({
            id: `old-${i + j}`, conversation_id: 'd-old', kind: 'text', sender: ALICE, content_type: 'text/plain', body: Buffer.from('x'), created_at: T0 - 1000 + (i + j) % 1000,
          }));
          await store.knex('chat_messages').insert(rows);
        }
        const oldOne = await store.messages.addMessage(message('d-old', ALICE, { createdAt: T0 - 1 }), [BOB, ALICE]);
        await store.messages.receipt(oldOne.seq, BOB, 'phone', 'displayed', T0);
        const kept = await store.messages.addMessage(message('d-old', ALICE, { createdAt: T0 }), [BOB, ALICE]);
        await store.messages.receipt(kept.seq, BOB, 'phone', 'delivered', T0 + 1);
        const oldFile = file('f-old', { createdAt: T0 - 5 });
        await store.messages.addFile(oldFile);
        await store.messages.addFile(file('f-new', { createdAt: T0 }));
        await store.messages.linkFile('f-old', 'd-old');

        const result = await store.messages.purge(T0);
        assert.equal(result.messages, old + 1);
        assert.deepEqual(result.files, [oldFile]);
        assert.deepEqual(seqs(await store.messages.page({ conversationId: 'd-old', limit: 100 })), [kept.seq]);
        assert.deepEqual(await counts(store), {
          chat_file_links: 0, chat_files: 1, chat_receipts: 1, chat_devices: 0, chat_inbox: 2, chat_messages: 1, chat_members: 2, chat_conversations: 1,
        });
        assert.deepEqual(await store.messages.purge(T0), { messages: 0, files: [] });
      });
    });

    describe('bad arguments', () => {
      it('a value that does not fit is a TypeError and writes nothing', async () => {
        const store = getStore();
        await store.messages.createConversation(direct('d-bad'), [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
        const before = await counts(store);
        const m = store.messages;
        const bad: Array<[string, () => Promise<unknown>]> = [
          ['recipient not a string', () => m.addMessage(message('d-bad', ALICE), [BOB, 42 as unknown as string])],
          ['recipient twice', () => m.addMessage(message('d-bad', ALICE), [BOB, BOB])],
          ['body not a Buffer', () => m.addMessage(message('d-bad', ALICE, { body: 'clear text' as unknown as Buffer }), [BOB])],
          ['notify with a comma', () => m.addMessage(message('d-bad', ALICE, { notify: ['display,processing'] }), [BOB])],
          ['unknown kind', () => m.addMessage(message('d-bad', ALICE, { kind: 'spam' as 'text' }), [BOB])],
          ['id too long', () => m.addMessage(message('d-bad', ALICE, { id: 'x'.repeat(33) }), [BOB])],
          ['sender too long', () => m.addMessage(message('d-bad', `${'a'.repeat(510)}@x`), [BOB])],
          ['negative createdAt', () => m.addMessage(message('d-bad', ALICE, { createdAt: -1 }), [BOB])],
          ['member twice', () => m.createConversation(direct('d-bad2'), [{ user: ALICE, role: 'member' }, { user: ALICE, role: 'member' }])],
          ['unknown role', () => m.createConversation(direct('d-bad3'), [{ user: ALICE, role: 'king' as 'owner' }])],
          ['conversation id too long', () => m.createConversation(direct('d'.repeat(65)), [])],
          ['putMember unknown role', () => m.putMember('d-bad', CAROL, 'guest' as 'member', T0)],
          ['markRead fraction', () => m.markRead('d-bad', ALICE, 1.5)],
          ['advance negative seq', () => m.advance(BOB, 'phone', -1, T0)],
          ['advance empty device', () => m.advance(BOB, '', 1, T0)],
          ['receipt unknown state', () => m.receipt(1, BOB, 'phone', 'read' as 'displayed', T0)],
          ['file key not a Buffer', () => m.addFile(file('f-bad', { wrappedKey: 'k' as unknown as Buffer }))],
          ['file location too long', () => m.addFile(file('f-bad', { location: 'l'.repeat(513) }))],
          ['page limit 0', () => m.page({ conversationId: 'd-bad', limit: 0 })],
          ['page no kinds', () => m.page({ conversationId: 'd-bad', limit: 10, kinds: [] })],
          ['conversationsOf limit too large', () => m.conversationsOf(ALICE, 1_000_000)],
          ['purge not a number', () => m.purge('yesterday' as unknown as number)],
        ];
        for (const [what, call] of bad) await assert.rejects(call(), TypeError, what);
        assert.deepEqual(await counts(store), before);
      });
    });
  });
}
