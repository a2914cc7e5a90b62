/**
 * Breakout rooms of a meeting, through the REST API of a whole softswitch whose focus drives a real Janus
 * (support/janus.ts: token_auth on). Control plane: each participant's one Janus token is let into exactly one
 * videoroom at a time (the room's `allowed` list), so a join with it is accepted by the room the API names and refused
 * (433, unauthorized) by every other; a move kicks the participant's feed out of the room it leaves.
 * The rooms are opened, moved between and closed by moderators; with allowChoose a participant (a guest too) chooses.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JanusAdmin, JanusClient, JanusError, VIDEOROOM_ERROR, VIDEOROOM_PLUGIN, VideoRoomAdmin, type JanusGrant } from '../../conference/index.js';
import { AUDIO_MID, VIDEO_MID, publishWithoutMedia } from '../helpers/janus-publisher.js';
import { API_DOMAIN, type ApiAnswer, type ApiServer } from '../helpers/api-client.js';
import type { JanusServer } from '../../support/janus.js';
import { type MeetingTestbed, ok, refused, startMeetingTestbed } from '../helpers/meeting-testbed.js';

type Who = 'alice' | 'bob' | 'carol' | 'dave' | 'gina';
interface Admission { participant: { id: string; state: string }; janus?: JanusGrant; breakout?: number }
interface View { open: boolean; allowChoose: boolean; endsAt?: string; rooms: Array<{ number: number; name: string; room: number; participants: string[] }> }
interface Move { participantId: string; breakout: number; room: number }
interface Entry { kind: string; actor?: string; participantId?: string; detail?: string }

async function until(what: string, cond: () => Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('breakout rooms on a real Janus: open, assign, choose, close all, the timer, and the history', { timeout: 120_000 }, () => {
  let bed: MeetingTestbed;
  let janus: JanusServer;
  let api: ApiServer;
  let janusAdmin: JanusAdmin;
  let observer: VideoRoomAdmin;
  const tokens: Record<Who, string> = { alice: '', bob: '', carol: '', dave: '', gina: '' };
  const admissions = {} as Record<Who, Admission>;
  const clients: JanusClient[] = [];
  let meeting = '';

  const call = (who: Who, method: string, url: string, operation: string, json?: unknown): Promise<ApiAnswer> => bed.call(tokens[who], method, url, operation, json);
  const m = (path = '') => `/v1/meetings/${meeting}${path}`;
  const pid = (who: Who) => admissions[who].participant.id;
  const open = (who: Who, body: Record<string, unknown>) => call(who, 'POST', m('/breakouts'), 'POST /v1/meetings/{id}/breakouts', body);
  const view = (who: Who) => call(who, 'GET', m('/breakouts'), 'GET /v1/meetings/{id}/breakouts');
  const closeAll = (who: Who) => call(who, 'DELETE', m('/breakouts'), 'DELETE /v1/meetings/{id}/breakouts');
  const move = (who: Who, whom: Who, room: number) => call(who, 'PUT', m(`/participants/${pid(whom)}/breakout`), 'PUT /v1/meetings/{id}/participants/{pid}/breakout', { room });
  const poll = async (who: Who): Promise<Admission> => ok<Admission>(await call(who, 'GET', m(`/participants/${pid(who)}`), 'GET /v1/meetings/{id}/participants/{pid}'));
  const history = async (): Promise<Entry[]> => ok<{ entries: Entry[] }>(await call('alice', 'GET', m('/history?limit=1000'), 'GET /v1/meetings/{id}/history')).entries;

  /** Joins `room` as a publisher with `who`'s Janus token and feed id: 'joined' (the client stays in), or Janus's videoroom error code. */
  const joinWith = async (who: Who, room: number): Promise<'joined' | number> => {
    const grant = admissions[who].janus!;
    const client = await JanusClient.connect({ url: grant.url, token: grant.token });
    clients.push(client);
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    try {
      const { data } = await rooms.handle.message({ request: 'join', ptype: 'publisher', room, id: grant.feedId, token: grant.token, display: who });
      assert.equal(data.videoroom, 'joined', JSON.stringify(data));
      return 'joined';
    } catch (err) {
      if (err instanceof JanusError && err.code === 'JANUS_ERR_PLUGIN' && err.janusCode !== undefined) return err.janusCode;
      throw err;
    }
  };
  const feedsIn = async (room: number): Promise<number[]> => (await observer.listParticipants(room)).map((p) => p.id);

  before(async () => {
    bed = await startMeetingTestbed(['alice', 'bob', 'carol', 'dave']);
    ({ janus, api, admin: janusAdmin } = bed);
    Object.assign(tokens, bed.tokens);
    // The test's own token, to look at the rooms (exists, listparticipants).
    await janusAdmin.addToken('breakout-test-observer', [VIDEOROOM_PLUGIN]);
    const client = await JanusClient.connect({ url: janus.url, token: 'breakout-test-observer' });
    clients.push(client);
    observer = await VideoRoomAdmin.attach(await client.createSession());
    meeting = String(ok<{ id: string }>(await call('alice', 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'breakout test', lobby: false }), 201).id);
    // gina, a meeting guest, joins in her own test.
    for (const who of ['alice', 'bob', 'carol', 'dave'] as const) {
      admissions[who] = ok<Admission>(await call(who, 'POST', m('/join'), 'POST /v1/meetings/{id}/join', {}));
      assert.equal(admissions[who].participant.state, 'admitted');
    }
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await bed?.stop();
  });

  it('a participant that is not a moderator is refused 403 AUTH_ERR_SCOPE opening, moving others and closing; it sees no rooms open', async () => {
    refused(await open('dave', { rooms: 2 }), 403, 'AUTH_ERR_SCOPE');
    refused(await closeAll('dave'), 403, 'AUTH_ERR_SCOPE');
    assert.deepEqual(ok<View>(await view('dave')), { open: false, allowChoose: false, rooms: [] });
    refused(await open('alice', { rooms: 0 }), 400, 'API_ERR_INVALID');
    refused(await open('alice', { rooms: 1, names: ['a', 'b'] }), 400, 'API_ERR_INVALID');
    refused(await move('alice', 'bob', 1), 409, 'API_ERR_CONFLICT');
  });

  it('2 rooms, bob assigned to room 1 and carol to room 2: each token is accepted by its own room and refused by the other and by the main room', async () => {
    const main = admissions.bob.janus!.room;
    assert.equal(await joinWith('bob', main), 'joined', 'bob publishes in the main room first');
    assert.ok((await feedsIn(main)).includes(admissions.bob.janus!.feedId));

    const opened = ok<View>(await open('alice', { rooms: 2, names: ['Design'] }), 201);
    assert.equal(opened.open, true);
    assert.equal(opened.allowChoose, false);
    assert.deepEqual(opened.rooms.map((r) => [r.number, r.name, r.participants]), [[1, 'Design', []], [2, 'Room 2', []]]);
    const [room1, room2] = opened.rooms.map((r) => r.room) as [number, number];
    assert.equal(new Set([main, room1, room2]).size, 3, 'each breakout room is a videoroom of its own');
    refused(await open('alice', { rooms: 1 }), 409, 'API_ERR_CONFLICT');

    refused(await move('dave', 'bob', 1), 403, 'AUTH_ERR_SCOPE');
    refused(await move('dave', 'dave', 1), 403, 'AUTH_ERR_SCOPE');
    refused(await move('alice', 'bob', 3), 404, 'API_ERR_NOT_FOUND');
    assert.deepEqual(ok<Move>(await move('alice', 'bob', 1)), { participantId: pid('bob'), breakout: 1, room: room1 });
    assert.deepEqual(ok<Move>(await move('alice', 'carol', 2)), { participantId: pid('carol'), breakout: 2, room: room2 });

    // The move kicked bob's feed out of the main room, and his poll names room 1 with the same token.
    assert.ok(!(await feedsIn(main)).includes(admissions.bob.janus!.feedId), 'bob\'s feed is out of the main room');
    const polled = await poll('bob');
    assert.equal(polled.breakout, 1);
    assert.deepEqual(polled.janus, { ...admissions.bob.janus!, room: room1 });
    assert.equal((await poll('alice')).breakout, undefined, 'alice stays in the main room');

    assert.equal(await joinWith('bob', room2), VIDEOROOM_ERROR.UNAUTHORIZED, 'room 2 refuses bob');
    assert.equal(await joinWith('bob', main), VIDEOROOM_ERROR.UNAUTHORIZED, 'the main room refuses bob');
    assert.equal(await joinWith('bob', room1), 'joined');
    assert.equal(await joinWith('carol', room1), VIDEOROOM_ERROR.UNAUTHORIZED, 'room 1 refuses carol');
    assert.equal(await joinWith('carol', room2), 'joined');
    assert.equal(await joinWith('alice', room1), VIDEOROOM_ERROR.UNAUTHORIZED, 'a breakout room refuses whoever is not in it');

    const seen = ok<View>(await view('dave'));
    assert.deepEqual(seen.rooms.map((r) => r.participants), [[pid('bob')], [pid('carol')]]);
  });

  it('close all: everyone is back in the main room, which accepts bob\'s token again, and the breakout rooms are destroyed', async () => {
    const [room1, room2] = ok<View>(await view('alice')).rooms.map((r) => r.room) as [number, number];
    assert.deepEqual(ok(await closeAll('alice')), { back: 2 });
    refused(await closeAll('alice'), 409, 'API_ERR_CONFLICT');
    assert.equal(await observer.exists(room1), false, 'room 1 is gone');
    assert.equal(await observer.exists(room2), false, 'room 2 is gone');
    const polled = await poll('bob');
    assert.equal(polled.breakout, undefined);
    assert.deepEqual(polled.janus, admissions.bob.janus);
    assert.equal(await joinWith('bob', admissions.bob.janus!.room), 'joined', 'the main room accepts bob again');
    assert.deepEqual(ok<View>(await view('bob')), { open: false, allowChoose: false, rooms: [] });
  });

  it('with allowChoose a participant chooses a room itself (and still may not move others); without it, it is refused', async () => {
    const opened = ok<View>(await open('alice', { rooms: 2, allowChoose: true }), 201);
    assert.equal(opened.allowChoose, true);
    const room2 = opened.rooms[1]!.room;
    assert.deepEqual(ok<Move>(await move('dave', 'dave', 2)), { participantId: pid('dave'), breakout: 2, room: room2 });
    refused(await move('dave', 'carol', 1), 403, 'AUTH_ERR_SCOPE');
    refused(await move('dave', 'dave', 3), 404, 'API_ERR_NOT_FOUND');
    assert.equal((await poll('dave')).janus?.room, room2);
    assert.equal(await joinWith('dave', room2), 'joined');
    assert.deepEqual(ok<Move>(await move('dave', 'dave', 0)), { participantId: pid('dave'), breakout: 0, room: admissions.dave.janus!.room }, 'back to the main room by itself');
    assert.deepEqual(ok(await closeAll('alice')), { back: 0 });
    ok<View>(await open('alice', { rooms: 2 }), 201);
    refused(await move('dave', 'dave', 1), 403, 'AUTH_ERR_SCOPE');
    assert.deepEqual(ok(await closeAll('alice')), { back: 0 });
  });

  it('the timer closes the rooms by itself: carol is back in the main room and her room is destroyed', async () => {
    const opened = ok<View>(await open('alice', { rooms: 1, durationS: 1 }), 201);
    assert.ok(opened.endsAt !== undefined && Date.parse(opened.endsAt) > Date.now() - 1000);
    ok<Move>(await move('alice', 'carol', 1));
    assert.equal(await observer.exists(opened.rooms[0]!.room), true);
    // Only the history is read meanwhile: it closes nothing, the timer does.
    await until('the timer to close the rooms', async () => (await history()).some((e) => e.kind === 'breakout-close' && e.detail === '1 back timer'));
    assert.equal(await observer.exists(opened.rooms[0]!.room), false);
    const polled = await poll('carol');
    assert.equal(polled.breakout, undefined);
    assert.equal(polled.janus?.room, admissions.carol.janus!.room);
  });

  it('the history lists every breakout action in order, with who did it', async () => {
    const entries = (await history()).filter((e) => e.kind.startsWith('breakout-'));
    const alice = `alice@${API_DOMAIN}`;
    const dave = `dave@${API_DOMAIN}`;
    assert.deepEqual(entries.map((e) => [e.kind, e.actor, e.participantId, e.detail]), [
      ['breakout-open', alice, undefined, '2 rooms'],
      ['breakout-move', alice, pid('bob'), 'room 1'],
      ['breakout-move', alice, pid('carol'), 'room 2'],
      ['breakout-close', alice, undefined, '2 back'],
      ['breakout-open', alice, undefined, '2 rooms allowChoose'],
      ['breakout-move', dave, pid('dave'), 'room 2'],
      ['breakout-move', dave, pid('dave'), 'main room'],
      ['breakout-close', alice, undefined, '0 back'],
      ['breakout-open', alice, undefined, '2 rooms'],
      ['breakout-close', alice, undefined, '0 back'],
      ['breakout-open', alice, undefined, '1 rooms 1s'],
      ['breakout-move', alice, pid('carol'), 'room 1'],
      ['breakout-close', undefined, undefined, '1 back timer'],
    ]);
  });

  it('a meeting guest chooses a room itself when allowChoose (and moderates nothing)', async () => {
    const grant = await api.send('http', { method: 'POST', url: '/v1/auth/token', json: { grant_type: 'urn:softswitch:meeting-guest', meeting, display_name: 'Gina' } });
    tokens.gina = ok<{ access_token: string }>(grant).access_token;
    admissions.gina = ok<Admission>(await call('gina', 'POST', m('/join'), 'POST /v1/meetings/{id}/join', {}));
    assert.equal(admissions.gina.participant.state, 'admitted');
    const opened = ok<View>(await open('alice', { rooms: 1, allowChoose: true }), 201);
    refused(await open('gina', { rooms: 1 }), 403, 'AUTH_ERR_SCOPE');
    refused(await move('gina', 'bob', 1), 403, 'AUTH_ERR_SCOPE');
    assert.deepEqual(ok<Move>(await move('gina', 'gina', 1)), { participantId: pid('gina'), breakout: 1, room: opened.rooms[0]!.room });
    assert.equal(await joinWith('gina', opened.rooms[0]!.room), 'joined');
    assert.deepEqual(ok(await closeAll('alice')), { back: 1 });
  });

  it('an end time that passed without its timer (the server that opened the rooms restarted) closes them at the next request', async () => {
    const opened = ok<View>(await open('alice', { rooms: 1, durationS: 600 }), 201);
    ok<Move>(await move('alice', 'carol', 1));
    // What a restart leaves: the end time in SQL, no timer. The timer of this process is 10 minutes away.
    await api.t.server.store.knex('meeting_breakouts').where({ meeting_id: meeting }).update({ ends_at: Date.now() - 1 });
    const polled = await poll('carol');
    assert.equal(polled.breakout, undefined, 'carol\'s poll finds her back in the main room');
    assert.equal(polled.janus?.room, admissions.carol.janus!.room);
    assert.equal(await observer.exists(opened.rooms[0]!.room), false);
    assert.deepEqual((await history()).filter((e) => e.kind === 'breakout-close').at(-1)?.detail, '1 back timer');
    assert.deepEqual(ok<View>(await view('alice')), { open: false, allowChoose: false, rooms: [] });
  });

  it('a moderator\'s mute reaches a publisher in its breakout room; leaving from there takes its feed out; ending the meeting destroys the breakout rooms too', async () => {
    const opened = ok<View>(await open('alice', { rooms: 1 }), 201);
    const room1 = opened.rooms[0]!.room;
    ok<Move>(await move('alice', 'bob', 1));
    ok<Move>(await move('alice', 'carol', 1));
    // Bob publishes in room 1 and reports his mids there: the mute is the videoroom's `moderate` of that room.
    const publisher = await publishWithoutMedia({ ...admissions.bob.janus!, room: room1 }, 'bob');
    clients.push(publisher.client);
    ok(await call('bob', 'PUT', m(`/participants/${pid('bob')}/streams`), 'PUT /v1/meetings/{id}/participants/{pid}/streams', { audioMid: AUDIO_MID, videoMid: VIDEO_MID }));
    await until('bob\'s streams announced', async () => publisher.moderation.length === 2);
    publisher.moderation.splice(0);
    assert.equal(ok<{ audio: string }>(await call('alice', 'POST', m(`/participants/${pid('bob')}/mute`), 'POST /v1/meetings/{id}/participants/{pid}/mute', { audio: true })).audio, 'hard');
    await until('Janus to tell bob\'s handle of the mute', async () => publisher.moderation.some((e) => e.mid === AUDIO_MID && e.moderation === 'muted'));
    assert.ok((await feedsIn(room1)).includes(admissions.bob.janus!.feedId));
    ok(await call('bob', 'DELETE', m(`/participants/${pid('bob')}`), 'DELETE /v1/meetings/{id}/participants/{pid}'));
    assert.ok(!(await feedsIn(room1)).includes(admissions.bob.janus!.feedId), 'bob\'s feed left the breakout room');
    ok(await call('alice', 'POST', m('/end'), 'POST /v1/meetings/{id}/end'));
    assert.equal(await observer.exists(room1), false, 'the breakout room is gone');
    assert.equal(await observer.exists(admissions.alice.janus!.room), false, 'the main room is gone');
    assert.deepEqual(ok<View>(await view('alice')), { open: false, allowChoose: false, rooms: [] });
  });
});
