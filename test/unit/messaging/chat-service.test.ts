/**
 * The chat service (messaging/chat-service.ts) on a real SQLite store and a real envelope: direct
 * conversations, who may do what in a group, system notes, sealed bodies, the send limits, and meetings' groups.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../src/log/index.js';
import type { SqlStore, StoredMessage } from '../../../platform/store/index.js';
import { ChatService, directId, isGroupId, meetingGroupId } from '../../../messaging/chat-service.js';
import { Envelope } from '../../../messaging/envelope.js';
import { SendLimits } from '../../../messaging/send-limits.js';
import { ChatError, type ChatActor } from '../../../messaging/types.js';
import { openTempStore } from '../../helpers/temp-store.js';

const DOMAIN = 'example.com';
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin'].map((u) => `${u}@${DOMAIN}`);
const [ALICE, BOB, CAROL, DAVE, ERIN] = USERS as [string, string, string, string, string];
const user = (u: string): ChatActor & { kind: 'user' } => ({ kind: 'user', user: u });
const ADMIN: ChatActor = { kind: 'admin' };

async function rejectsWith(p: Promise<unknown>, code: ChatError['code']): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof ChatError && err.code === code);
}

describe('chat service', () => {
  let store: SqlStore;
  let close: () => Promise<void>;
  let chat: ChatService;
  let stored: Array<{ message: StoredMessage; recipients: string[] }>;
  let now: number;

  function service(options: { maxGroupMembers?: number; ratePerMinute?: number; floodPer10s?: number } = {}): ChatService {
    const s = new ChatService({
      repo: store.messages,
      sealer: new Envelope(randomBytes(32)),
      domains: [DOMAIN],
      userExists: (u) => Promise.resolve(USERS.includes(u)),
      limits: new SendLimits({ ratePerMinute: options.ratePerMinute ?? 100, floodPer10s: options.floodPer10s ?? 100, clock: () => now }),
      maxGroupMembers: options.maxGroupMembers ?? 4,
      maxBodySize: 1024,
      logger: silentLogger(),
      clock: () => now,
    });
    s.onStored((message, recipients) => stored.push({ message, recipients }));
    return s;
  }

  beforeEach(async () => {
    ({ store, close } = await openTempStore());
    stored = [];
    now = Date.parse('2026-12-07T08:00:00Z');
    chat = service();
  });
  afterEach(() => close());

  it('the direct conversation of two users is one, whichever of them starts it', async () => {
    const a = await chat.direct(user(ALICE), BOB);
    const b = await chat.direct(user(BOB), ALICE);
    assert.equal(a.id, b.id);
    assert.equal(a.id, directId(BOB, ALICE));
    assert.equal(a.uri, `sip:${BOB}`);
    assert.equal(b.uri, `sip:${ALICE}`);
    await rejectsWith(chat.direct(user(ALICE), `nobody@${DOMAIN}`), 'not-found');
  });

  it('a message is stored sealed: the store holds no plaintext, the service reads it back', async () => {
    const c = await chat.direct(user(ALICE), BOB);
    const m = await chat.send(user(ALICE), c.id, { contentType: 'text/plain', body: 'the secret plan' });
    const row = await store.messages.getMessage(m.id);
    assert.ok(row !== undefined);
    assert.equal(row.body.includes(Buffer.from('the secret plan')), false);
    assert.equal(chat.toChat(row).body, 'the secret plan');
    // Both users' streams get it: the recipient, and the sender's other devices.
    assert.deepEqual(stored.at(-1)?.recipients.sort(), [ALICE, BOB].sort());
  });

  it('only members read a conversation; to anyone else it does not exist', async () => {
    const c = await chat.direct(user(ALICE), BOB);
    await chat.send(user(ALICE), c.id, { contentType: 'text/plain', body: 'hi' });
    await rejectsWith(chat.messages(user(CAROL), c.id, { limit: 10 }), 'not-found');
    await rejectsWith(chat.send(user(CAROL), c.id, { contentType: 'text/plain', body: 'me too' }), 'not-found');
    assert.equal((await chat.messages(ADMIN, c.id, { limit: 10 })).messages.length, 1);
  });

  it('a body over maxBodySize is too-large, a content type not taken is unsupported-type', async () => {
    const c = await chat.direct(user(ALICE), BOB);
    await rejectsWith(chat.send(user(ALICE), c.id, { contentType: 'text/plain', body: 'x'.repeat(1025) }), 'too-large');
    await rejectsWith(chat.send(user(ALICE), c.id, { contentType: 'image/png', body: 'x' }), 'unsupported-type');
  });

  it('a group: the owner adds, admins add, members do not; only the owner names admins; a system note for each change', async () => {
    const g = await chat.createGroup(user(ALICE), { name: 'Team', members: [BOB] });
    assert.equal(g.role, 'owner');
    await rejectsWith(chat.addMember(user(BOB), g.id, CAROL), 'forbidden');
    await chat.addMember(user(ALICE), g.id, BOB, 'admin');
    await chat.addMember(user(BOB), g.id, CAROL);
    await rejectsWith(chat.addMember(user(BOB), g.id, DAVE, 'admin'), 'forbidden');
    const members = await chat.members(user(CAROL), g.id);
    assert.deepEqual(members.map((m) => [m.user, m.role]), [[ALICE, 'owner'], [BOB, 'admin'], [CAROL, 'member']]);
    const notes = (await chat.messages(user(ALICE), g.id, { limit: 10 })).messages.map((m) => m.body);
    assert.deepEqual(notes, [
      `${ALICE} created the group "Team" with ${BOB}`,
      `${ALICE} made ${BOB} an admin`,
      `${BOB} added ${CAROL}`,
    ]);
    // Carol joined after the first two notes: her view starts at her joining.
    assert.deepEqual((await chat.messages(user(CAROL), g.id, { limit: 10 })).messages.map((m) => m.body), [`${BOB} added ${CAROL}`]);
  });

  it('a group holds at most maxGroupMembers; members must be users here', async () => {
    const g = await chat.createGroup(user(ALICE), { name: 'Four', members: [BOB, CAROL, DAVE] });
    await rejectsWith(chat.addMember(user(ALICE), g.id, ERIN), 'group-full');
    await rejectsWith(chat.createGroup(user(ALICE), { name: 'Five', members: [BOB, CAROL, DAVE, ERIN] }), 'group-full');
    await rejectsWith(chat.createGroup(user(ALICE), { name: 'Ghost', members: [`ghost@${DOMAIN}`] }), 'invalid');
    await rejectsWith(chat.createGroup(user(ALICE), { name: 'Elsewhere', members: [], domain: 'other.example' }), 'invalid');
  });

  it('anyone leaves; the owner leaving hands the group to the oldest admin; the one removed hears of it', async () => {
    const g = await chat.createGroup(user(ALICE), { name: 'Team', members: [BOB, CAROL] });
    await chat.addMember(user(ALICE), g.id, CAROL, 'admin');
    await rejectsWith(chat.removeMember(user(BOB), g.id, CAROL), 'forbidden');
    await chat.removeMember(user(CAROL), g.id, BOB);
    assert.deepEqual(stored.at(-1)?.recipients.sort(), [ALICE, BOB, CAROL].sort(), 'the note goes to the members before the change');
    await chat.removeMember(user(ALICE), g.id, ALICE);
    const members = await chat.members(user(CAROL), g.id);
    assert.deepEqual(members.map((m) => [m.user, m.role]), [[CAROL, 'owner']]);
    await rejectsWith(chat.members(user(BOB), g.id), 'not-found');
  });

  it('mark read moves the unread count and records displayed receipts; it never goes back', async () => {
    const c = await chat.direct(user(ALICE), BOB);
    const sent = [];
    for (let i = 0; i < 4; i++) sent.push(await chat.send(user(ALICE), c.id, { contentType: 'text/plain', body: `m${i}` }));
    assert.equal((await chat.conversations(user(BOB), { limit: 10 }))[0]?.unread, 4);
    assert.deepEqual(await chat.markRead(user(BOB), c.id, sent[2]!.id), { unread: 1 });
    assert.deepEqual(await chat.markRead(user(BOB), c.id, sent[0]!.id), { unread: 1 });
    const receipts = await chat.receipts(user(ALICE), sent[1]!.id);
    assert.equal(receipts.length, 1);
    assert.equal(receipts[0]?.user, BOB);
    assert.ok(receipts[0]?.displayedAt !== undefined);
  });

  it('search finds text in sealed bodies, newest first, and not what the reader deleted', async () => {
    const c = await chat.direct(user(ALICE), BOB);
    for (const body of ['Lunch at noon?', 'no', 'LUNCH moved to one']) await chat.send(user(ALICE), c.id, { contentType: 'text/plain', body });
    const found = await chat.search(user(BOB), c.id, 'lunch', 10);
    assert.deepEqual(found.map((m) => m.body), ['LUNCH moved to one', 'Lunch at noon?']);
    await chat.hide(user(BOB), found[0]!.id);
    assert.deepEqual((await chat.search(user(BOB), c.id, 'lunch', 10)).map((m) => m.body), ['Lunch at noon?']);
    assert.equal((await chat.search(user(ALICE), c.id, 'lunch', 10)).length, 2);
  });

  it('messaging.ratePerMinute and floodPer10s: beyond them a send is rate-limited with the seconds to wait', async () => {
    chat = service({ ratePerMinute: 5, floodPer10s: 3 });
    const c = await chat.direct(user(ALICE), BOB);
    const d = await chat.direct(user(ALICE), CAROL);
    for (let i = 0; i < 3; i++) await chat.send(user(ALICE), c.id, { contentType: 'text/plain', body: `${i}` });
    await assert.rejects(chat.send(user(ALICE), c.id, { contentType: 'text/plain', body: 'flood' }), (err: unknown) => {
      assert.ok(err instanceof ChatError && err.code === 'rate-limited');
      assert.equal(err.retryAfterS, 10);
      return true;
    });
    await chat.send(user(ALICE), d.id, { contentType: 'text/plain', body: 'to carol' });
    await chat.send(user(ALICE), d.id, { contentType: 'text/plain', body: 'to carol' });
    await rejectsWith(chat.send(user(ALICE), d.id, { contentType: 'text/plain', body: 'sixth' }), 'rate-limited');
    now += 60_000;
    await chat.send(user(ALICE), d.id, { contentType: 'text/plain', body: 'a minute later' });
  });

  it('a meeting\'s group is one per meeting, derived from its id, owned by the meeting\'s owner; opening it again changes nothing', async () => {
    const meeting = { id: 'abcdefghijkm', title: 'weekly', owner: ALICE };
    const id = await chat.openMeetingGroup(meeting);
    assert.equal(id, meetingGroupId(meeting.id));
    assert.equal(isGroupId(id), true, 'a group id like any other: the SIP and HTTP paths take it');
    assert.notEqual(meetingGroupId('abcdefghijkn'), id);
    assert.equal(await chat.openMeetingGroup(meeting), id);
    assert.deepEqual((await chat.members(ADMIN, id)).map((m) => [m.user, m.role]), [[ALICE, 'owner']]);
    assert.deepEqual(stored.map((s) => s.message.kind), ['system'], 'one note, on creation');
  });

  it('admitted participants enter the meeting\'s group once each, with a note to the members; a full group refuses the next', async () => {
    chat = service({ maxGroupMembers: 3 });
    const id = await chat.openMeetingGroup({ id: 'abcdefghijkm', title: 'weekly', owner: ALICE });
    await chat.enterMeetingGroup(id, BOB);
    await chat.enterMeetingGroup(id, BOB);
    await chat.enterMeetingGroup(id, ALICE);
    await chat.enterMeetingGroup(id, CAROL);
    assert.deepEqual((await chat.members(ADMIN, id)).map((m) => [m.user, m.role]), [[ALICE, 'owner'], [BOB, 'member'], [CAROL, 'member']]);
    const notes = (await chat.messages(user(ALICE), id, { limit: 10 })).messages.map((m) => m.body);
    assert.deepEqual(notes.slice(1), [`${BOB} joined the meeting`, `${CAROL} joined the meeting`]);
    await rejectsWith(chat.enterMeetingGroup(id, DAVE), 'group-full');
    await rejectsWith(chat.enterMeetingGroup(meetingGroupId('nosuchmeetin'), DAVE), 'not-found');
    // A member posts like in any group.
    await chat.send(user(CAROL), id, { contentType: 'text/plain', body: 'hello all' });
    assert.equal((await chat.messages(user(ALICE), id, { limit: 10 })).messages.at(-1)?.body, 'hello all');
  });

});
