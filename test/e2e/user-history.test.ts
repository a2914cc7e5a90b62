/**
 * The user's history, GET /v1/history (history/timeline-routes.ts), on a whole softswitch whose focus drives a real
 * Janus (test/helpers/meeting-testbed.ts): real calls between SIP.js phones over WSS (their records written by the
 * history writer) and real meeting joins, lobby and leaves, merged into one list newest first, paged with a cursor
 * across both kinds; only the user's own items; an admin names the user.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { API_DOMAIN } from '../helpers/api-client.js';
import { type MeetingTestbed, ok, refused, startMeetingTestbed } from '../helpers/meeting-testbed.js';
import { installTestWebSocket } from '../helpers/softphone.js';
import { TestUsers, type TestUser } from '../helpers/test-users.js';
import type { Softphone } from '../helpers/softphone.js';

const user = (name: string): TestUser => ({ name, address: `${name}@${API_DOMAIN}`, aor: `sip:${name}@${API_DOMAIN}`, password: `${name}-secret` });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface CallItem { kind: 'call'; at: string; call: { id: string; startedAt: string; caller: { user?: string }; callee: { user?: string } } }
interface MeetingItem { kind: 'meeting'; at: string; meeting: { id: string; participantId: string; title: string; role: string; state: string; joinedAt?: string; leftAt?: string } }
type Item = CallItem | MeetingItem;
interface Page { items: Item[]; next?: string }

/** A short name of an item, to compare lists: the call's id, or the meeting's title and the participant's state. */
const label = (i: Item): string => (i.kind === 'call' ? `call ${i.call.id}` : `meeting ${i.meeting.title} ${i.meeting.state}`);

describe('the user\'s history: calls and meetings in one list, newest first, paged across both kinds', { timeout: 180_000 }, () => {
  let bed: MeetingTestbed;
  let phones: TestUsers;
  const phone: Record<string, Softphone> = {};
  /** The record ids of the calls made, in order. */
  const calls: string[] = [];

  const history = (token: string, query = ''): Promise<Page> => bed.call(token, 'GET', `/v1/history${query}`, 'GET /v1/history').then((a) => ok<Page>(a));
  /** Every page of `token`'s history at `limit` a page, following `next`. */
  const allPages = async (token: string, limit: number, extra = ''): Promise<Page[]> => {
    const pages: Page[] = [];
    for (let cursor: string | undefined; ;) {
      const page = await history(token, `?limit=${limit}${extra}${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
      pages.push(page);
      if (page.next === undefined) return pages;
      cursor = page.next;
    }
  };

  /** `from` calls `to` over SIP, `to` answers, `from` hangs up: the record's id once the writer has stored it. */
  const callAndHangUp = async (from: string, to: string): Promise<string> => {
    const known = new Set((await bed.api.t.server.store.calls.list({ limit: 500 })).calls.map((c) => c.id));
    const incoming = phone[to]!.waitForIncoming(5000);
    const calling = phone[from]!.call(`sip:${to}@${API_DOMAIN}`);
    const answered = await (await incoming).accept();
    const call = await calling;
    await call.hangup();
    await answered.waitForEnded(5000);
    for (const end = Date.now() + 5000; Date.now() < end; await sleep(50)) {
      await bed.api.t.server.history!.flush(5000);
      const fresh = (await bed.api.t.server.store.calls.list({ limit: 500 })).calls.filter((c) => !known.has(c.id));
      if (fresh.length > 0) {
        assert.equal(fresh.length, 1, JSON.stringify(fresh));
        // A millisecond apart from whatever comes next, so that the order by time is the order of the steps.
        await sleep(5);
        return fresh[0]!.id;
      }
    }
    assert.fail(`no record of the call from ${from} to ${to}`);
  };
  const meeting = async (owner: string, title: string, lobby: boolean): Promise<string> =>
    String(ok<{ id: string }>(await bed.call(bed.tokens[owner]!, 'POST', '/v1/meetings', 'POST /v1/meetings', { title, lobby }), 201).id);
  const join = async (name: string, id: string): Promise<string> => {
    const joined = ok<{ participant: { id: string } }>(await bed.call(bed.tokens[name]!, 'POST', `/v1/meetings/${id}/join`, 'POST /v1/meetings/{id}/join', {}));
    await sleep(5);
    return joined.participant.id;
  };
  const leave = async (token: string, id: string, pid: string): Promise<void> => {
    ok(await bed.call(token, 'DELETE', `/v1/meetings/${id}/participants/${pid}`, 'DELETE /v1/meetings/{id}/participants/{pid}'));
  };

  before(async () => {
    installTestWebSocket();
    bed = await startMeetingTestbed(['alice', 'bob', 'carol']);
    phones = new TestUsers(() => bed.api.t, API_DOMAIN);
    for (const name of ['alice', 'bob', 'carol']) phone[name] = await phones.phone(user(name), 'sip.js');

    // Alice's life, one step after the other: a call, her own meeting, a call back, bob's meeting (the lobby: bob
    // admits her), a rejoin of her own meeting. Carol's call with bob and her meeting are not alice's.
    calls.push(await callAndHangUp('alice', 'bob'));
    const standup = await meeting('alice', 'Standup', true);
    await leave(bed.tokens.alice!, standup, await join('alice', standup));
    calls.push(await callAndHangUp('bob', 'alice'));
    const review = await meeting('bob', 'Review', true);
    const waiting = await join('alice', review);
    ok(await bed.call(bed.tokens.bob!, 'POST', `/v1/meetings/${review}/participants/${waiting}/admit`, 'POST /v1/meetings/{id}/participants/{pid}/admit'));
    await sleep(5);
    calls.push(await callAndHangUp('carol', 'bob'));
    await join('carol', await meeting('carol', 'Carol\'s', false));
    await join('alice', standup);
  });
  after(async () => {
    await phones?.stop();
    await bed?.stop();
  });

  it('answers a user\'s calls and meeting participations interleaved by time, newest first, each call as /v1/calls answers it', async () => {
    const { items, next } = await history(bed.tokens.alice!);
    assert.equal(next, undefined);
    assert.deepEqual(items.map(label), [
      'meeting Standup admitted', 'meeting Review admitted', `call ${calls[1]}`, 'meeting Standup left', `call ${calls[0]}`,
    ]);
    const times = items.map((i) => Date.parse(i.at));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    const { calls: listed } = ok<{ calls: unknown[] }>(await bed.call(bed.tokens.alice!, 'GET', '/v1/calls', 'GET /v1/calls'));
    assert.deepEqual(items.filter((i) => i.kind === 'call').map((i) => (i as CallItem).call), listed, 'the same records as GET /v1/calls');
    for (const i of items) if (i.kind === 'call') assert.equal(i.at, i.call.startedAt);
    const [rejoin, review, , left] = items as [MeetingItem, MeetingItem, CallItem, MeetingItem];
    assert.equal(rejoin.meeting.role, 'owner');
    assert.ok(rejoin.meeting.joinedAt !== undefined && rejoin.meeting.leftAt === undefined, JSON.stringify(rejoin));
    assert.equal(review.meeting.role, 'participant');
    assert.ok(Date.parse(review.meeting.joinedAt!) > Date.parse(review.at), 'admitted from the lobby after asking');
    assert.ok(left.meeting.leftAt !== undefined);
    assert.equal(left.meeting.id, rejoin.meeting.id, 'one meeting, two participations');
    assert.notEqual(left.meeting.participantId, rejoin.meeting.participantId);
  });

  it('pages across both kinds with a cursor that loses and repeats nothing, even while new items come before it', async () => {
    const whole = (await history(bed.tokens.alice!)).items.map(label);
    const first = await history(bed.tokens.alice!, '?limit=2');
    assert.deepEqual(first.items.map(label), whole.slice(0, 2));
    assert.ok(first.next !== undefined);
    // A new participation, newer than everything: the pages after the first one do not move.
    const fresh = await meeting('alice', 'Later', false);
    await join('alice', fresh);
    const rest: string[] = [];
    for (let cursor: string | undefined = first.next; cursor !== undefined;) {
      const page: Page = await history(bed.tokens.alice!, `?limit=2&cursor=${encodeURIComponent(cursor)}`);
      assert.ok(page.items.length <= 2);
      rest.push(...page.items.map(label));
      cursor = page.next;
    }
    assert.deepEqual([...first.items.map(label), ...rest], whole);
    // From the start again, pages of every size give the whole list, the new item first.
    for (const limit of [1, 3, 4]) {
      assert.deepEqual((await allPages(bed.tokens.alice!, limit)).flatMap((p) => p.items.map(label)), ['meeting Later admitted', ...whole], `limit ${limit}`);
    }
    refused(await bed.call(bed.tokens.alice!, 'GET', '/v1/history?cursor=bm90IGEgY3Vyc29y', 'GET /v1/history'), 400, 'API_ERR_INVALID');
  });

  it('never shows another user\'s calls or meetings, and refuses a user token naming another user', async () => {
    const alice = (await history(bed.tokens.alice!)).items;
    assert.ok(!alice.some((i) => i.kind === 'call' && i.call.id === calls[2]), 'carol\'s call with bob');
    assert.ok(!alice.some((i) => i.kind === 'meeting' && i.meeting.title === 'Carol\'s'));
    const carol = (await history(bed.tokens.carol!)).items.map(label);
    assert.deepEqual(carol, ['meeting Carol\'s admitted', `call ${calls[2]}`]);
    const bob = (await history(bed.tokens.bob!)).items.map(label);
    // Bob owns Review and admitted alice from its lobby without joining it: no participation of his.
    assert.deepEqual(bob, [`call ${calls[2]}`, `call ${calls[1]}`, `call ${calls[0]}`]);
    refused(await bed.call(bed.tokens.alice!, 'GET', `/v1/history?user=bob@${API_DOMAIN}`, 'GET /v1/history'), 403, 'AUTH_ERR_SCOPE');
    assert.deepEqual((await history(bed.tokens.alice!, `?user=alice@${API_DOMAIN}`)).items.map(label), alice.map(label), 'naming itself is the same');
  });

  it('lets an admin token read a named user\'s history, page by page, and asks it to name one', async () => {
    for (const name of ['alice', 'bob']) {
      const own = (await history(bed.tokens[name]!)).items;
      const asAdmin = (await allPages(bed.api.admin, 2, `&user=${name}@${API_DOMAIN}`)).flatMap((p) => p.items);
      assert.deepEqual(asAdmin, own, name);
    }
    assert.match(refused(await bed.call(bed.api.admin, 'GET', '/v1/history', 'GET /v1/history'), 400, 'API_ERR_INVALID'), /^user: /);
  });
});
