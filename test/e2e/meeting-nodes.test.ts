/**
 * Meetings on several Janus nodes and the participants' event streams, through the REST API of a whole softswitch
 * whose focus drives two real Janus processes (support/janus.ts, loopback): each new meeting's room goes to the
 * least-loaded node; /metrics shows each node's state, capacity and load; a waiting participant learns its admission
 * from its event stream and moderators learn who knocks; and when a node is killed, its meetings move to the other
 * node, whose Janus then lets the same tokens into the same room, and the participants are told to reconnect.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JanusClient, VideoRoomAdmin, type JanusGrant } from '../../conference/index.js';
import type { ApiAnswer } from '../helpers/api-client.js';
import { type MeetingTestbed, ok, refused, startMeetingTestbed } from '../helpers/meeting-testbed.js';
import { parseExposition, valueOf } from '../helpers/prometheus.js';
import { SseReader } from '../helpers/sse.js';

type Who = 'alice' | 'bob' | 'carol';
interface Admission {
  participant: { id: string; state: string };
  state: string;
  janus?: JanusGrant;
}

/** Node 1 carries 4 forwarded streams at most (two participants publishing to each other); node 2 much more. */
const NODE1_CAPACITY = 4;
const HEALTH_MS = 200;

describe('meetings on several Janus nodes, and the participants\' event streams', { timeout: 120_000 }, () => {
  let bed: MeetingTestbed;
  /** The first test's meeting: on node 1, alice and bob in it. */
  let first = '';
  const readers: SseReader[] = [];
  const clients: JanusClient[] = [];

  const call = (who: Who | 'admin', method: string, url: string, operation: string, json?: unknown): Promise<ApiAnswer> =>
    bed.call(who === 'admin' ? bed.api.admin : bed.tokens[who]!, method, url, operation, json);
  const meeting = async (settings: Record<string, unknown> = {}): Promise<string> =>
    String(ok<{ id: string }>(await call('alice', 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'nodes', lobby: false, ...settings }), 201).id);
  const join = async (who: Who, id: string): Promise<Admission> => ok<Admission>(await call(who, 'POST', `/v1/meetings/${id}/join`, 'POST /v1/meetings/{id}/join', {}));
  const poll = async (who: Who, id: string, pid: string): Promise<Admission> =>
    ok<Admission>(await call(who, 'GET', `/v1/meetings/${id}/participants/${pid}`, 'GET /v1/meetings/{id}/participants/{pid}'));
  const events = async (who: Who, id: string, pid: string): Promise<SseReader> => {
    const r = await SseReader.open(`${bed.api.base}/v1/meetings/${id}/participants/${pid}/events`, bed.tokens[who]!);
    if (!(r instanceof SseReader)) assert.fail(`the event stream does not open: ${JSON.stringify(r)}`);
    readers.push(r);
    return r;
  };
  const metrics = async () => {
    const res = await fetch(`${bed.api.base}/metrics`, { headers: { authorization: `Bearer ${bed.api.admin}` } });
    assert.equal(res.status, 200);
    return parseExposition(await res.text());
  };
  /** Waits until `check` holds, a health round or a few later. */
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, HEALTH_MS / 2));
    }
  };
  /** Opens a Janus session with the grant's token on the grant's node and joins its room as a publisher with its feed id. */
  const enter = async (grant: JanusGrant): Promise<void> => {
    const client = await JanusClient.connect({ url: grant.url, token: grant.token });
    clients.push(client);
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    const { data } = await rooms.handle.message({ request: 'join', ptype: 'publisher', room: grant.room, id: grant.feedId, token: grant.token, display: 'test' });
    assert.equal(data.videoroom, 'joined', JSON.stringify(data));
  };

  before(async () => {
    bed = await startMeetingTestbed(['alice', 'bob', 'carol'], {
      nodes: 2, meetings: { healthIntervalMs: HEALTH_MS, downAfter: 2 }, nodeSettings: [{ capacity: NODE1_CAPACITY }, { capacity: 1000 }],
    });
  });
  after(async () => {
    for (const r of readers) r.close();
    await Promise.allSettled(clients.map((c) => c.close()));
    await bed?.stop();
  });

  it('places each new meeting\'s room on the node with the least load for its capacity (fewer rooms breaking a tie), and a full node takes none', async () => {
    const [one, two] = bed.nodes;
    first = await meeting();
    assert.equal((await join('alice', first)).janus?.url, one!.url, 'both empty: the first node listed');
    const second = await meeting();
    assert.equal((await join('alice', second)).janus?.url, two!.url, 'equal load: the node with fewer rooms');
    // bob joins the first: two participants publishing to each other, 4 streams: node 1 is at its capacity.
    assert.equal((await join('bob', first)).janus?.url, one!.url, 'a meeting stays on its node');
    const third = await meeting();
    assert.equal((await join('alice', third)).janus?.url, two!.url, 'node 1 is full');
    const fourth = await meeting();
    assert.equal((await join('alice', fourth)).janus?.url, two!.url, 'node 1 is still full, though it has fewer rooms');
  });

  it('shows each Janus node in /metrics: up, its capacity, and its rooms, participants and forwarded streams', async () => {
    const [one, two] = bed.nodes;
    await until('the load of the last joins in /metrics', async () => valueOf(await metrics(), 'softswitch_janus_node_rooms', { node: two!.url }) === 3);
    const e = await metrics();
    for (const node of [one!, two!]) assert.equal(valueOf(e, 'softswitch_janus_node_up', { node: node.url }), 1);
    assert.equal(valueOf(e, 'softswitch_janus_node_capacity_streams', { node: one!.url }), NODE1_CAPACITY);
    assert.equal(valueOf(e, 'softswitch_janus_node_capacity_streams', { node: two!.url }), 1000);
    assert.equal(valueOf(e, 'softswitch_janus_node_rooms', { node: one!.url }), 1);
    assert.equal(valueOf(e, 'softswitch_janus_node_participants', { node: one!.url }), 2);
    assert.equal(valueOf(e, 'softswitch_janus_node_streams', { node: one!.url }), 4);
    assert.equal(valueOf(e, 'softswitch_janus_node_participants', { node: two!.url }), 3);
    assert.equal(valueOf(e, 'softswitch_janus_node_streams', { node: two!.url }), 0, 'three participants alone in their rooms forward nothing');
  });

  it('tells a waiting participant over its event stream that it was admitted (with its grant) or kicked, and the moderators who knocks', async () => {
    const id = await meeting({ lobby: true });
    const owner = await join('alice', id);
    const aliceStream = await events('alice', id, owner.participant.id);
    assert.equal((await aliceStream.next('participant')).state, 'admitted');
    assert.deepEqual((await aliceStream.next('lobby')).waiting, [], 'nobody waits yet');

    const bob = await join('bob', id);
    assert.equal(bob.state, 'waiting');
    const bobStream = await events('bob', id, bob.participant.id);
    assert.equal((await bobStream.next('participant')).state, 'waiting');
    const knock = await aliceStream.next('lobby', (d) => d.waiting.length === 1);
    assert.equal(knock.waiting[0].id, bob.participant.id, 'the moderator learns who knocks');

    ok(await call('alice', 'POST', `/v1/meetings/${id}/participants/${bob.participant.id}/admit`, 'POST /v1/meetings/{id}/participants/{pid}/admit'));
    const admitted = await bobStream.next('participant', (d) => d.state === 'admitted');
    assert.ok(admitted.janus?.token, 'the admission carries the Janus grant');
    await enter(admitted.janus);
    assert.deepEqual((await aliceStream.next('lobby', (d) => d.waiting.length === 0)).waiting, []);

    // Nobody else reads bob's stream (a participant's id is unguessable: to others it does not exist).
    const carol = await SseReader.open(`${bed.api.base}/v1/meetings/${id}/participants/${bob.participant.id}/events`, bed.tokens.carol!);
    assert.ok(!(carol instanceof SseReader) && carol.status === 404, carol instanceof SseReader ? 'the stream opened' : JSON.stringify(carol));

    ok(await call('alice', 'DELETE', `/v1/meetings/${id}/participants/${bob.participant.id}`, 'DELETE /v1/meetings/{id}/participants/{pid}'));
    assert.equal((await bobStream.next('participant', (d) => d.state === 'kicked')).state, 'kicked');
    await bobStream.ended; // a final state ends the stream
  });

  it('refuses a sixth event stream for one participant (429): what one client can hold open is bounded', async () => {
    const id = await meeting();
    const alice = await join('alice', id);
    for (let i = 0; i < 5; i++) await events('alice', id, alice.participant.id);
    const sixth = await SseReader.open(`${bed.api.base}/v1/meetings/${id}/participants/${alice.participant.id}/events`, bed.tokens.alice!);
    assert.ok(!(sixth instanceof SseReader));
    assert.equal(sixth.status, 429);
    readers.splice(-5).forEach((r) => r.close());
    // Closed streams free their places.
    await until('a closed stream to free its place', async () => {
      const again = await SseReader.open(`${bed.api.base}/v1/meetings/${id}/participants/${alice.participant.id}/events`, bed.tokens.alice!);
      if (!(again instanceof SseReader)) return false;
      readers.push(again);
      return true;
    });
  });

  it('marks a killed node down and moves its meetings to the other node: the same tokens enter the same room there, and participants are told to reconnect', async () => {
    const [one, two] = bed.nodes;
    // Alice and bob are in the first test's meeting, on node 1: joining again answers their grants.
    const alice = await join('alice', first);
    const bob = await join('bob', first);
    assert.equal(alice.janus?.url, one!.url);
    const bobStream = await events('bob', first, bob.participant.id);
    assert.equal((await bobStream.next('participant')).janus.url, one!.url);

    await one!.signal('SIGKILL');
    const told = await bobStream.next('reconnect', () => true, 15_000);
    assert.equal(told.reason, 'node-down');
    assert.equal(told.janus.url, two!.url, 'the meeting moved to the node that answers');
    assert.deepEqual({ token: told.janus.token, room: told.janus.room, feedId: told.janus.feedId }, { token: bob.janus!.token, room: bob.janus!.room, feedId: bob.janus!.feedId }, 'the same token, room and feed id');
    assert.equal((await poll('alice', first, alice.participant.id)).janus?.url, two!.url, 'a poll says so too');
    // Node 2's Janus lets both in with the tokens they have: the room was recreated there with its allowed list.
    await enter(told.janus);
    await enter({ ...alice.janus!, url: two!.url });

    const e = await metrics();
    assert.equal(valueOf(e, 'softswitch_janus_node_up', { node: one!.url }), 0, 'the node is down in /metrics');
    const history = ok<{ entries: Array<{ kind: string; detail?: string }> }>(await call('alice', 'GET', `/v1/meetings/${first}/history`, 'GET /v1/meetings/{id}/history'));
    assert.ok(history.entries.some((h) => h.kind === 'node-moved' && h.detail === '2 participants'), JSON.stringify(history.entries));
    // A new meeting goes to the node that is up, whatever their load.
    const later = await meeting();
    assert.equal((await join('alice', later)).janus?.url, two!.url);
    // With no node up, a new room cannot be made: 503, Retry-After.
    await two!.signal('SIGKILL');
    await until('node 2 to be down', async () => valueOf(await metrics(), 'softswitch_janus_node_up', { node: two!.url }) === 0);
    const none = await meeting();
    const answer = await call('alice', 'POST', `/v1/meetings/${none}/join`, 'POST /v1/meetings/{id}/join', {});
    assert.match(refused(answer, 503, 'API_ERR_UNAVAILABLE'), /no Janus node is available/);
  });
});
