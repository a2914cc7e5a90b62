/**
 * Guests in the meeting's chat (GET/POST /v1/meetings/{id}/chat, conference/chat-routes.ts) on a whole softswitch whose
 * focus drives a real Janus (test/helpers/meeting-testbed.ts): an admitted guest reads the meeting's group from its
 * admission on and posts to it; the members read the guest's message with /v1/conversations and get it over SIP
 * MESSAGE on a registered SIP.js phone; only whoever is admitted now reads or posts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GUEST_GRANT } from '../../platform/http/index.js';
import { API_DOMAIN } from '../helpers/api-client.js';
import { type MeetingTestbed, ok, refused, startMeetingTestbed } from '../helpers/meeting-testbed.js';
import { type Softphone, installTestWebSocket } from '../helpers/softphone.js';
import { TestUsers } from '../helpers/test-users.js';

const BOB = `bob@${API_DOMAIN}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ChatMessage { id: string; kind: string; sender: string; senderName?: string; contentType: string; body: string; createdAt: string }
interface ChatPage { messages: ChatMessage[]; next?: string }
interface Admission { participant: { id: string; state: string }; conversation?: string }

describe('guests in the meeting\'s chat on a real Janus: an admitted guest reads and posts the group the members read', { timeout: 120_000 }, () => {
  let bed: MeetingTestbed;
  let phones: TestUsers;
  let bobPhone: Softphone;
  let meeting = '';
  let conversation = '';
  let guest = { token: '', id: '' };
  let guestAdmittedAt = 0;

  const readChat = (token: string, id: string, query = '') => bed.call(token, 'GET', `/v1/meetings/${id}/chat${query}`, 'GET /v1/meetings/{id}/chat');
  const postChat = (token: string, id: string, text: string) => bed.call(token, 'POST', `/v1/meetings/${id}/chat`, 'POST /v1/meetings/{id}/chat', { text });
  const readConversation = async (token: string): Promise<ChatMessage[]> =>
    ok<{ messages: ChatMessage[] }>(await bed.call(token, 'GET', `/v1/conversations/${conversation}/messages`, 'GET /v1/conversations/{id}/messages')).messages;
  /** A guest token for `id` (the urn:softswitch:meeting-guest grant), joined: waiting in the lobby, or admitted when it is off. */
  const guestJoins = async (id: string, name: string): Promise<{ token: string; id: string; state: string }> => {
    const granted = ok<{ access_token: string; guest: string }>(await bed.call(null, 'POST', '/v1/auth/token', 'POST /v1/auth/token', { grant_type: GUEST_GRANT, meeting: id, display_name: name }));
    const joined = ok<Admission>(await bed.call(granted.access_token, 'POST', `/v1/meetings/${id}/join`, 'POST /v1/meetings/{id}/join', {}));
    return { token: granted.access_token, id: granted.guest, state: joined.participant.state };
  };
  const admit = async (id: string, pid: string) =>
    ok<{ decidedAt: string }>(await bed.call(bed.tokens.alice!, 'POST', `/v1/meetings/${id}/participants/${pid}/admit`, 'POST /v1/meetings/{id}/participants/{pid}/admit'));

  before(async () => {
    installTestWebSocket();
    bed = await startMeetingTestbed(['alice', 'bob', 'carol']);
    phones = new TestUsers(() => bed.api.t, API_DOMAIN);
    bobPhone = await phones.phone({ name: 'bob', address: BOB, aor: `sip:${BOB}`, password: 'bob-secret' }, 'sip.js');
    meeting = String(ok<{ id: string }>(await bed.call(bed.tokens.alice!, 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'Guest chat' }), 201).id);
    // Alice (the owner) is admitted at once; bob waits and is admitted: both members of the meeting's group.
    conversation = String(ok<Admission>(await bed.call(bed.tokens.alice!, 'POST', `/v1/meetings/${meeting}/join`, 'POST /v1/meetings/{id}/join', {})).conversation);
    const bob = ok<Admission>(await bed.call(bed.tokens.bob!, 'POST', `/v1/meetings/${meeting}/join`, 'POST /v1/meetings/{id}/join', {}));
    await admit(meeting, bob.participant.id);
    assert.match(conversation, /^group-[0-9a-f]{12}$/);
  });
  after(async () => {
    await phones?.stop();
    await bed?.stop();
  });

  it('refuses a guest still waiting in the lobby (403), and a user never admitted', async () => {
    const joined = await guestJoins(meeting, 'Gina');
    assert.equal(joined.state, 'waiting');
    guest = { token: joined.token, id: joined.id };
    assert.match(refused(await readChat(guest.token, meeting), 403, 'AUTH_ERR_SCOPE'), /admitted/);
    refused(await postChat(guest.token, meeting, 'let me in'), 403, 'AUTH_ERR_SCOPE');
    refused(await readChat(bed.tokens.carol!, meeting), 403, 'AUTH_ERR_SCOPE');
    refused(await postChat(bed.tokens.carol!, meeting, 'hello?'), 403, 'AUTH_ERR_SCOPE');
  });

  it('an admitted guest reads the meeting\'s chat from its admission on, newest first, the members\' messages included', async () => {
    ok(await postChat(bed.tokens.alice!, meeting, 'before the guest came'), 201);
    guestAdmittedAt = Date.parse((await admit(meeting, guest.id)).decidedAt);
    const fromBob = ok<ChatMessage>(await bed.call(bed.tokens.bob!, 'POST', `/v1/conversations/${conversation}/messages`, 'POST /v1/conversations/{id}/messages', { body: 'welcome, Gina' }), 201);
    const { messages } = ok<ChatPage>(await readChat(guest.token, meeting));
    const texts = messages.filter((m) => m.kind === 'text');
    assert.deepEqual(texts.map((m) => [m.sender, m.body]), [[BOB, 'welcome, Gina']], JSON.stringify(messages));
    assert.equal(texts[0]!.id, fromBob.id, 'the message bob posted to the conversation');
    assert.ok(messages.every((m) => Date.parse(m.createdAt) >= guestAdmittedAt), 'nothing from before its admission');
  });

  it('an admitted guest posts as guest:<id>; the members read it with /v1/conversations, get it over SIP MESSAGE, and see its name here', async () => {
    const posted = ok<ChatMessage>(await postChat(guest.token, meeting, 'hello from Gina'), 201);
    assert.deepEqual([posted.sender, posted.senderName, posted.kind, posted.body], [`guest:${guest.id}`, 'Gina', 'text', 'hello from Gina']);
    const asBob = await readConversation(bed.tokens.bob!);
    const seen = asBob.find((m) => m.id === posted.id);
    assert.deepEqual([seen?.sender, seen?.body], [`guest:${guest.id}`, 'hello from Gina'], JSON.stringify(asBob));
    assert.ok((await readConversation(bed.tokens.alice!)).some((m) => m.id === posted.id), 'alice, a member, too');
    // Over SIP: from the group's address (a guest has none of its own), named after the guest.
    let message = bobPhone.received.find((m) => m.body === 'hello from Gina');
    for (const end = Date.now() + 5000; message === undefined && Date.now() < end; await sleep(50)) message = bobPhone.received.find((m) => m.body === 'hello from Gina');
    assert.ok(message !== undefined, `bob's phone got the guest's message: ${JSON.stringify(bobPhone.received)}`);
    assert.match(message!.from, new RegExp(`^sip:${conversation}@${API_DOMAIN.replace('.', '\\.')}$`));
    // Users in the meeting read the same chat here, with the guest's name.
    const { messages } = ok<ChatPage>(await readChat(bed.tokens.bob!, meeting));
    assert.deepEqual([messages[0]?.id, messages[0]?.senderName], [posted.id, 'Gina']);
    const fromBob = ok<ChatMessage>(await postChat(bed.tokens.bob!, meeting, 'nice to meet you'), 201);
    assert.equal(fromBob.sender, BOB);
    const asGuest = ok<ChatPage>(await readChat(guest.token, meeting)).messages.filter((m) => m.kind === 'text');
    assert.deepEqual(asGuest.map((m) => m.body), ['nice to meet you', 'hello from Gina', 'welcome, Gina']);
  });

  it('pages a guest\'s chat newest first with a cursor, down to its admission', async () => {
    const whole = ok<ChatPage>(await readChat(guest.token, meeting)).messages.map((m) => m.id);
    const paged: string[] = [];
    for (let cursor: string | undefined; ;) {
      const page = ok<ChatPage>(await readChat(guest.token, meeting, `?limit=1${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`));
      assert.ok(page.messages.length <= 1);
      paged.push(...page.messages.map((m) => m.id));
      if (page.next === undefined) break;
      cursor = page.next;
    }
    assert.deepEqual(paged, whole);
    refused(await readChat(guest.token, meeting, '?cursor=WyJubyBzdWNoIl0'), 400, 'API_ERR_INVALID');
  });

  it('holds the chat\'s size limit for a guest (413)', async () => {
    refused(await postChat(guest.token, meeting, 'x'.repeat(65_537)), 413, 'API_ERR_TOO_LARGE');
  });

  it('refuses a guest of another meeting (403), even one admitted there', async () => {
    const other = String(ok<{ id: string }>(await bed.call(bed.tokens.alice!, 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'Other', lobby: false }), 201).id);
    const elsewhere = await guestJoins(other, 'Otto');
    assert.equal(elsewhere.state, 'admitted');
    assert.match(refused(await readChat(elsewhere.token, meeting), 403, 'AUTH_ERR_SCOPE'), /another meeting/);
    refused(await postChat(elsewhere.token, meeting, 'hi'), 403, 'AUTH_ERR_SCOPE');
    // In its own meeting it reads and posts.
    ok(await postChat(elsewhere.token, other, 'in my own meeting'), 201);
  });

  it('refuses a guest once kicked (403), while the members keep what it wrote', async () => {
    ok(await bed.call(bed.tokens.alice!, 'DELETE', `/v1/meetings/${meeting}/participants/${guest.id}`, 'DELETE /v1/meetings/{id}/participants/{pid}'));
    refused(await readChat(guest.token, meeting), 403, 'AUTH_ERR_SCOPE');
    refused(await postChat(guest.token, meeting, 'still here?'), 403, 'AUTH_ERR_SCOPE');
    assert.ok((await readConversation(bed.tokens.bob!)).some((m) => m.sender === `guest:${guest.id}` && m.body === 'hello from Gina'));
  });
});
