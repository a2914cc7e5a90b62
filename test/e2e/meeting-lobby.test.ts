/**
 * Joining a meeting, its lobby and admission, through the REST API of a whole softswitch whose focus drives a real
 * Janus (support/janus.ts: token_auth on, API and Admin API on loopback). Control plane only: the Janus tokens
 * the API hands out open (or, once revoked, no longer open) Janus sessions and let their holder into the videoroom
 * as a publisher; media is tested in janus-media.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JanusAdmin, JanusClient, JanusError, VideoRoomAdmin, type JanusGrant } from '../../conference/index.js';
import { API_DOMAIN, type ApiAnswer, type ApiServer, conforms, startApiServer } from '../helpers/api-client.js';
import { startJanus, type JanusServer } from '../../support/janus.js';
import { publishWithoutMedia } from '../helpers/janus-publisher.js';
import { type MeetingTestbed, ok, refused, startMeetingTestbed } from '../helpers/meeting-testbed.js';

const ALICE = `alice@${API_DOMAIN}`;
const PASSWORD = 'open sesame';

interface Participant {
  id: string;
  user?: string;
  role: string;
  state: string;
  feedId?: number;
}
interface Admission {
  participant: Participant;
  state: string;
  janus?: JanusGrant;
}

describe('meetings on a real Janus: join, lobby, admit, deny, kick and leave', { timeout: 120_000 }, () => {
  let bed: MeetingTestbed;
  let janus: JanusServer;
  let api: ApiServer;
  let janusAdmin: JanusAdmin;
  const tokens: Record<'alice' | 'bob' | 'carol' | 'dave', string> = { alice: '', bob: '', carol: '', dave: '' };
  const clients: JanusClient[] = [];

  /** Sends over HTTP as `who`, checks the answer against the API's document, and returns it. */
  const call = (who: keyof typeof tokens, method: string, url: string, operation: string, json?: unknown): Promise<ApiAnswer> => bed.call(tokens[who], method, url, operation, json);
  const meeting = async (settings: Record<string, unknown>): Promise<string> => String(ok<{ id: string }>(await call('alice', 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'lobby test', ...settings }), 201).id);
  const join = (who: keyof typeof tokens, id: string, body: Record<string, unknown> = {}) => call(who, 'POST', `/v1/meetings/${id}/join`, 'POST /v1/meetings/{id}/join', body);
  const poll = (who: keyof typeof tokens, id: string, pid: string) => call(who, 'GET', `/v1/meetings/${id}/participants/${pid}`, 'GET /v1/meetings/{id}/participants/{pid}');
  const list = (who: keyof typeof tokens, id: string) => call(who, 'GET', `/v1/meetings/${id}/participants`, 'GET /v1/meetings/{id}/participants');
  const decide = (who: keyof typeof tokens, id: string, pid: string, what: 'admit' | 'deny') =>
    call(who, 'POST', `/v1/meetings/${id}/participants/${pid}/${what}`, `POST /v1/meetings/{id}/participants/{pid}/${what}`);
  const remove = (who: keyof typeof tokens, id: string, pid: string) => call(who, 'DELETE', `/v1/meetings/${id}/participants/${pid}`, 'DELETE /v1/meetings/{id}/participants/{pid}');

  /** Opens a Janus session with the grant's token and joins its room as a publisher with its feed id. */
  const enter = async (grant: JanusGrant): Promise<void> => {
    const client = await JanusClient.connect({ url: grant.url, token: grant.token });
    clients.push(client);
    const session = await client.createSession();
    const rooms = await VideoRoomAdmin.attach(session);
    assert.equal(await rooms.exists(grant.room), true, 'the room exists on Janus');
    const { data } = await rooms.handle.message({ request: 'join', ptype: 'publisher', room: grant.room, id: grant.feedId, token: grant.token, display: 'test' });
    assert.equal(data.videoroom, 'joined', JSON.stringify(data));
    assert.equal(data.id, grant.feedId);
  };
  const refusedByJanus = (grant: JanusGrant) => bed.refusedByJanus(grant);
  const storedTokens = async (): Promise<string[]> => (await janusAdmin.listTokens()).map((t) => t.token);

  before(async () => {
    bed = await startMeetingTestbed(['alice', 'bob', 'carol', 'dave']);
    ({ janus, api, admin: janusAdmin } = bed);
    Object.assign(tokens, bed.tokens);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await bed?.stop();
  });

  let lobbied = '';
  let aliceGrant: JanusGrant;
  let bob: Admission;
  let bobGrant: JanusGrant;
  let open = '';
  let carolGrant: JanusGrant;

  it('the owner joins without the password and is admitted at once: its Janus token opens a session, the room exists and it joins as a publisher', async () => {
    lobbied = await meeting({ password: PASSWORD });
    const alice = ok<Admission>(await join('alice', lobbied, { displayName: 'Alice' }));
    assert.deepEqual([alice.state, alice.participant.state, alice.participant.role, alice.participant.user], ['admitted', 'admitted', 'owner', ALICE]);
    assert.ok(alice.janus, 'an admitted participant gets its Janus grant');
    assert.equal(alice.janus.url, janus.url);
    assert.equal(alice.janus.feedId, alice.participant.feedId);
    assert.ok(!JSON.stringify(alice).includes('secret'), 'no room secret in the answer');
    await enter(alice.janus);
    aliceGrant = alice.janus;
    // joining again answers the same participant, not a second one
    assert.equal(ok<Admission>(await join('alice', lobbied)).participant.id, alice.participant.id);
  });

  it('a wrong or missing password is refused 403 AUTH_ERR_SCOPE; with the right one bob waits in the lobby, and no Janus token is stored for him', async () => {
    assert.match(refused(await join('bob', lobbied, { password: 'guess' }), 403, 'AUTH_ERR_SCOPE'), /wrong meeting password/);
    assert.match(refused(await join('bob', lobbied), 403, 'AUTH_ERR_SCOPE'), /asks for a password/);
    const before = await storedTokens();
    bob = ok<Admission>(await join('bob', lobbied, { password: PASSWORD, displayName: 'Bob' }));
    assert.deepEqual([bob.state, bob.participant.role, bob.janus], ['waiting', 'participant', undefined]);
    assert.deepEqual(await storedTokens(), before, 'waiting stores no token on Janus');
    // polling says the same; a waiting participant is not yet one who sees who is in
    assert.deepEqual([ok<Admission>(await poll('bob', lobbied, bob.participant.id)).state, ok<Admission>(await poll('bob', lobbied, bob.participant.id)).janus], ['waiting', undefined]);
    refused(await list('bob', lobbied), 403, 'AUTH_ERR_SCOPE');
    // nobody but bob and the moderators sees his row, and he cannot admit himself
    refused(await poll('carol', lobbied, bob.participant.id), 404, 'API_ERR_NOT_FOUND');
    refused(await decide('bob', lobbied, bob.participant.id, 'admit'), 403, 'AUTH_ERR_SCOPE');
  });

  it('after 5 wrong passwords a user\'s joins are refused 429 API_ERR_RATE_LIMITED with Retry-After, even with the right password', async () => {
    for (let i = 0; i < 5; i++) refused(await join('dave', lobbied, { password: `guess ${i}` }), 403, 'AUTH_ERR_SCOPE');
    refused(await join('dave', lobbied, { password: PASSWORD }), 429, 'API_ERR_RATE_LIMITED');
    const res = await fetch(`${api.base}/v1/meetings/${lobbied}/join`, {
      method: 'POST', headers: { authorization: `Bearer ${tokens.dave}`, 'content-type': 'application/json' }, body: JSON.stringify({ password: PASSWORD }),
    });
    assert.equal(res.status, 429);
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(retryAfter > 0 && retryAfter <= 600, `Retry-After: ${res.headers.get('retry-after')}`);
    // the owner needs no password, and others are not held back by dave's guesses
    assert.equal(ok<Admission>(await join('alice', lobbied)).state, 'admitted');
  });

  it('the owner sees the lobby and admits bob: his poll says admitted with a Janus token that opens a session and enters the room', async () => {
    const { participants } = ok<{ participants: Participant[] }>(await list('alice', lobbied));
    assert.deepEqual(participants.map((p) => [p.user, p.state]), [[ALICE, 'admitted'], [`bob@${API_DOMAIN}`, 'waiting']]);
    const admitted = ok<Participant>(await decide('alice', lobbied, bob.participant.id, 'admit'));
    assert.equal(admitted.state, 'admitted');
    // a second admission changes nothing
    assert.equal(ok<Participant>(await decide('alice', lobbied, bob.participant.id, 'admit')).feedId, admitted.feedId);
    const polled = ok<Admission>(await poll('bob', lobbied, bob.participant.id));
    assert.equal(polled.state, 'admitted');
    assert.ok(polled.janus);
    bobGrant = polled.janus;
    assert.equal(bobGrant.feedId, admitted.feedId);
    await enter(bobGrant);
    // the owner polling bob sees his state, not his token
    assert.equal(ok<Admission>(await poll('alice', lobbied, bob.participant.id)).janus, undefined);
    // an admitted participant sees who is in
    assert.deepEqual(ok<{ participants: Participant[] }>(await list('bob', lobbied)).participants.map((p) => p.state), ['admitted', 'admitted']);
  });

  it('carol is denied: her poll says denied, without a token; a denied participant cannot be admitted after all (409)', async () => {
    const carol = ok<Admission>(await join('carol', lobbied, { password: PASSWORD }));
    assert.equal(carol.state, 'waiting');
    assert.equal(ok<Participant>(await decide('alice', lobbied, carol.participant.id, 'deny')).state, 'denied');
    const polled = ok<Admission>(await poll('carol', lobbied, carol.participant.id));
    assert.deepEqual([polled.state, polled.janus], ['denied', undefined]);
    refused(await decide('alice', lobbied, carol.participant.id, 'admit'), 409, 'API_ERR_CONFLICT');
  });

  it('the owner kicks bob: his camera and screen feeds leave the room, Janus refuses his token, and his rejoin waits in the lobby again', async () => {
    assert.equal(await refusedByJanus(bobGrant), false, 'bob\'s token works before the kick');
    // Bob (in the room as a publisher since his admission) shares his screen: a second publisher with the grant's screenFeedId.
    assert.equal(bobGrant.screenFeedId, bobGrant.feedId + 1);
    clients.push((await publishWithoutMedia({ ...bobGrant, feedId: bobGrant.screenFeedId }, 'bob-screen')).client);
    const watcher = await JanusClient.connect({ url: aliceGrant.url, token: aliceGrant.token });
    clients.push(watcher);
    const rooms = await VideoRoomAdmin.attach(await watcher.createSession());
    const feeds = async (): Promise<number[]> => (await rooms.listParticipants(bobGrant.room)).map((p) => p.id);
    assert.deepEqual((await feeds()).filter((id) => id === bobGrant.feedId || id === bobGrant.screenFeedId).sort(), [bobGrant.feedId, bobGrant.screenFeedId].sort());
    const kicked = ok<Participant>(await remove('alice', lobbied, bob.participant.id));
    assert.equal(kicked.state, 'kicked');
    assert.deepEqual((await feeds()).filter((id) => id === bobGrant.feedId || id === bobGrant.screenFeedId), [], 'both of bob\'s feeds are out of the room');
    assert.equal(await refusedByJanus(bobGrant), true, 'bob\'s token is refused after the kick');
    assert.ok(!(await storedTokens()).includes(bobGrant.token));
    assert.deepEqual([ok<Admission>(await poll('bob', lobbied, bob.participant.id)).state, ok<Admission>(await poll('bob', lobbied, bob.participant.id)).janus], ['kicked', undefined]);
    const again = ok<Admission>(await join('bob', lobbied, { password: PASSWORD }));
    assert.equal(again.state, 'waiting');
    assert.notEqual(again.participant.id, bob.participant.id, 'a rejoin is a new participant');
    bob = again;
  });

  it('bob, admitted again, leaves himself: his token is revoked too', async () => {
    ok<Participant>(await decide('alice', lobbied, bob.participant.id, 'admit'));
    const grant = ok<Admission>(await poll('bob', lobbied, bob.participant.id)).janus;
    assert.ok(grant);
    assert.notEqual(grant.token, bobGrant.token, 'each admission has a token of its own');
    assert.equal(await refusedByJanus(grant), false);
    assert.equal(ok<Participant>(await remove('bob', lobbied, bob.participant.id)).state, 'left');
    assert.equal(await refusedByJanus(grant), true);
  });

  it('with the lobby off, everyone is admitted at once, with a token good for that room only; a full meeting refuses the next one (409)', async () => {
    open = await meeting({ lobby: false, maxParticipants: 2 });
    const carol = ok<Admission>(await join('carol', open));
    assert.equal(carol.state, 'admitted');
    assert.ok(carol.janus);
    await enter(carol.janus);
    carolGrant = carol.janus;
    // her token is on this room's list only: it does not let her into the lobbied meeting's room
    const client = await JanusClient.connect({ url: carol.janus.url, token: carol.janus.token });
    clients.push(client);
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    await assert.rejects(rooms.handle.message({ request: 'join', ptype: 'publisher', room: aliceGrant.room, token: carol.janus.token }),
      (err: unknown) => err instanceof JanusError && err.janusCode === 433);
    assert.equal(ok<Admission>(await join('alice', open)).state, 'admitted');
    refused(await join('bob', open), 409, 'API_ERR_CONFLICT');
  });

  it('deleting a meeting with people in it revokes their tokens and destroys its room', async () => {
    assert.equal(await refusedByJanus(carolGrant), false);
    const deleted = await call('alice', 'DELETE', `/v1/meetings/${open}`, 'DELETE /v1/meetings/{id}');
    assert.equal(deleted.status, 204, deleted.bytes.toString());
    assert.equal(await refusedByJanus(carolGrant), true, 'carol\'s token is refused once the meeting is deleted');
    const client = await JanusClient.connect({ url: aliceGrant.url, token: aliceGrant.token });
    clients.push(client);
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    assert.equal(await rooms.exists(carolGrant.room), false, 'the room is gone');
    assert.equal(await rooms.exists(aliceGrant.room), true, 'other meetings\' rooms stay');
  });

  it('with Janus down, a join that would admit answers 503 API_ERR_UNAVAILABLE and leaves no participant behind', async () => {
    const open = await meeting({ lobby: false });
    await janus.stop();
    assert.match(refused(await join('carol', open), 503, 'API_ERR_UNAVAILABLE'), /Janus node is not available/);
    assert.deepEqual(ok<{ participants: Participant[] }>(await list('alice', open)).participants, []);
  });
});

describe('meetings without a Janus node (meetings.janus empty)', { timeout: 60_000 }, () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer(['alice']);
  });
  after(async () => {
    await api?.stop();
  });

  it('meetings as data work, and joining one answers 503 API_ERR_UNAVAILABLE naming the key', async () => {
    const token = await api.signIn('alice');
    const created = await api.send('http', { method: 'POST', url: '/v1/meetings', token, json: { title: 'no janus' } });
    assert.equal(created.status, 201);
    const answer = await api.send('http', { method: 'POST', url: `/v1/meetings/${String((created.json as { id: string }).id)}/join`, token, json: {} });
    conforms(api, 'POST /v1/meetings/{id}/join', answer, 'join without Janus');
    assert.equal(answer.status, 503);
    assert.deepEqual(answer.json, { code: 'API_ERR_UNAVAILABLE', message: 'meetings need a Janus node (meetings.janus)' });
  });
});

describe('a Janus node without token_auth', { timeout: 60_000 }, () => {
  let janus: JanusServer;
  let api: ApiServer;
  before(async () => {
    janus = await startJanus({ tokenAuth: false });
    api = await startApiServer(['alice'], { meetings: { janus: [{ url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret }] } });
  });
  after(async () => {
    await api?.stop();
    await janus?.stop();
  });

  it('is not used: without it anyone could open a session and pass the lobby, so joining answers 503 with Retry-After', async () => {
    const token = await api.signIn('alice');
    const created = await api.send('http', { method: 'POST', url: '/v1/meetings', token, json: { title: 'open janus' } });
    assert.equal(created.status, 201);
    const res = await fetch(`${api.base}/v1/meetings/${String((created.json as { id: string }).id)}/join`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}',
    });
    const body = await res.json() as { code: string; message: string };
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.equal(body.code, 'API_ERR_UNAVAILABLE');
    // Refused by the first check (the node is down: none is available) or, before it decided, at the first request.
    assert.match(body.message, /no Janus node is available|Janus node is not available/);
    assert.equal(res.headers.get('retry-after'), '5');
  });
});
