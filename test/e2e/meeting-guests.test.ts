/**
 * Guests who join a meeting with a link (the `urn:softswitch:meeting-guest` grant of POST /v1/auth/token), and the
 * meeting's chat, through the REST API of a whole softswitch whose focus drives a real Janus (support/janus.ts),
 * as in meeting-lobby.test.ts: a guest's token reaches its own meeting's join and participant routes and the ICE
 * servers, nothing else; admitted users become members of the meeting's group conversation, which outlives the meeting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GUEST_GRANT, TOKEN_FAILURES_MAX, UserTokens, loadTokenKey } from '../../platform/http/index.js';
import { SqlRefreshTokenRepository } from '../../platform/store/index.js';
import { silentLogger } from '../../src/log/index.js';
import { JanusClient, VideoRoomAdmin, type JanusGrant } from '../../conference/index.js';
import { API_DOMAIN, API_TOKEN_SECRET, type ApiAnswer, type ApiServer, VIAS, conforms, securityOf, startApiServer } from '../helpers/api-client.js';
import { type MeetingTestbed, ok, refused, startMeetingTestbed } from '../helpers/meeting-testbed.js';

const ALICE = `alice@${API_DOMAIN}`;
const BOB = `bob@${API_DOMAIN}`;
const PASSWORD = 'guests welcome';

interface Participant {
  id: string;
  user?: string;
  displayName: string;
  role: string;
  state: string;
}
interface Admission {
  participant: Participant;
  state: string;
  janus?: JanusGrant;
  conversation?: string;
}
interface GuestToken {
  access_token: string;
  token_type: string;
  expires_in: number;
  guest: string;
  meeting: string;
  refresh_token?: string;
}

describe('meeting guests on a real Janus: the guest grant, the lobby, and what a guest token reaches', { timeout: 120_000 }, () => {
  let bed: MeetingTestbed;
  let api: ApiServer;
  const tokens = { alice: '', bob: '' };
  const clients: JanusClient[] = [];
  let meeting = '';
  let other = '';
  let guest: GuestToken;
  let guestRow: Admission;

  /** Sends over HTTP with `token`, checks the answer against the API's document, and returns it. */
  const call = (token: string | null, method: string, url: string, operation: string, json?: unknown): Promise<ApiAnswer> => bed.call(token, method, url, operation, json);
  const grant = (json: Record<string, unknown>) => call(null, 'POST', '/v1/auth/token', 'POST /v1/auth/token', { grant_type: GUEST_GRANT, ...json });
  const join = (token: string, id: string, body: Record<string, unknown> = {}) => call(token, 'POST', `/v1/meetings/${id}/join`, 'POST /v1/meetings/{id}/join', body);
  const poll = (token: string, id: string, pid: string) => call(token, 'GET', `/v1/meetings/${id}/participants/${pid}`, 'GET /v1/meetings/{id}/participants/{pid}');
  const admit = (id: string, pid: string) => call(tokens.alice, 'POST', `/v1/meetings/${id}/participants/${pid}/admit`, 'POST /v1/meetings/{id}/participants/{pid}/admit');
  const create = async (settings: Record<string, unknown>): Promise<string> =>
    String(ok<{ id: string }>(await call(tokens.alice, 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'guests test', ...settings }), 201).id);

  /** Opens a Janus session with the grant's token and joins its room as a publisher with its feed id. */
  const enter = async (grant: JanusGrant): Promise<void> => {
    const client = await JanusClient.connect({ url: grant.url, token: grant.token });
    clients.push(client);
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    const { data } = await rooms.handle.message({ request: 'join', ptype: 'publisher', room: grant.room, id: grant.feedId, token: grant.token, display: 'guest' });
    assert.equal(data.videoroom, 'joined', JSON.stringify(data));
  };
  const refusedByJanus = (grant: JanusGrant) => bed.refusedByJanus(grant);

  before(async () => {
    bed = await startMeetingTestbed(['alice', 'bob']);
    ({ api } = bed);
    Object.assign(tokens, bed.tokens);
    meeting = await create({ password: PASSWORD });
    other = await create({ lobby: false });
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await bed?.stop();
  });

  it('the guest grant answers a guest access token for the meeting, with no refresh token (RFC 6749 §4.5 extension grant)', async () => {
    guest = ok<GuestToken>(await grant({ meeting, display_name: 'Gina Guest' }));
    assert.equal(guest.token_type, 'Bearer');
    assert.equal(guest.meeting, meeting);
    assert.match(guest.guest, /^[a-z2-7]{12}$/);
    assert.ok(guest.expires_in > 0 && guest.expires_in <= 86_400, `expires_in ${guest.expires_in}`);
    assert.equal(guest.refresh_token, undefined, 'a guest asks again rather than refresh');
  });

  it('refuses a grant for an unknown meeting (401 invalid_grant), and a meeting password given at the grant rather than at join (400)', async () => {
    const unknown = await grant({ meeting: 'aaaaaaaaaaaa', display_name: 'Nobody' });
    assert.equal(unknown.status, 401, unknown.bytes.toString());
    assert.equal((unknown.json as { error: string }).error, 'invalid_grant');
    const early = await grant({ meeting, display_name: 'Gina', password: PASSWORD });
    assert.equal(early.status, 400, early.bytes.toString());
    assert.match((early.json as { error_description: string }).error_description, /given at join/);
  });

  it('a guest with a wrong or missing password is refused 403 AUTH_ERR_SCOPE at join', async () => {
    assert.match(refused(await join(guest.access_token, meeting, { password: 'guess' }), 403, 'AUTH_ERR_SCOPE'), /wrong meeting password/);
    assert.match(refused(await join(guest.access_token, meeting), 403, 'AUTH_ERR_SCOPE'), /asks for a password/);
  });

  it('with the password the guest waits in the lobby, as a participant with its guest id, no user and its display name', async () => {
    guestRow = ok<Admission>(await join(guest.access_token, meeting, { password: PASSWORD }));
    assert.deepEqual(
      [guestRow.state, guestRow.participant.id, guestRow.participant.user, guestRow.participant.displayName, guestRow.participant.role, guestRow.janus],
      ['waiting', guest.guest, undefined, 'Gina Guest', 'participant', undefined],
    );
    // joining again with the same token answers the same row; polling says the same
    assert.equal(ok<Admission>(await join(guest.access_token, meeting, { password: PASSWORD })).participant.id, guest.guest);
    assert.equal(ok<Admission>(await poll(guest.access_token, meeting, guest.guest)).state, 'waiting');
    // the owner sees the guest in the lobby
    const { participants } = ok<{ participants: Participant[] }>(await call(tokens.alice, 'GET', `/v1/meetings/${meeting}/participants`, 'GET /v1/meetings/{id}/participants'));
    assert.deepEqual(participants.map((p) => [p.id, p.user, p.displayName, p.state]), [[guest.guest, undefined, 'Gina Guest', 'waiting']]);
  });

  it('a guest cannot admit itself (403), and does not see others\' rows (404)', async () => {
    refused(await call(guest.access_token, 'POST', `/v1/meetings/${meeting}/participants/${guest.guest}/admit`, 'POST /v1/meetings/{id}/participants/{pid}/admit'), 403, 'AUTH_ERR_SCOPE');
    const alice = ok<Admission>(await join(tokens.alice, meeting));
    refused(await poll(guest.access_token, meeting, alice.participant.id), 404, 'API_ERR_NOT_FOUND');
  });

  it('admitted by the owner, the guest\'s poll carries a Janus token that opens a session and enters the room; a guest gets no conversation', async () => {
    assert.equal(ok<Participant>(await admit(meeting, guest.guest)).state, 'admitted');
    const polled = ok<Admission>(await poll(guest.access_token, meeting, guest.guest));
    assert.equal(polled.state, 'admitted');
    assert.ok(polled.janus, 'the admitted guest gets its Janus grant');
    assert.equal(polled.conversation, undefined, 'no user, no chat membership (guest chat is for later)');
    await enter(polled.janus);
    // admitted, the guest sees who is in
    const { participants } = ok<{ participants: Participant[] }>(await call(guest.access_token, 'GET', `/v1/meetings/${meeting}/participants`, 'GET /v1/meetings/{id}/participants'));
    assert.deepEqual(participants.map((p) => p.state), ['admitted', 'admitted']);
    guestRow = polled;
  });

  it('a guest token is refused 403 insufficient_scope on /v1/calls, /v1/conversations, /v1/meetings and sign-out, and 403 on another meeting\'s routes', async () => {
    for (const [method, url, operation] of [
      ['GET', '/v1/calls', 'GET /v1/calls'],
      ['GET', '/v1/conversations', 'GET /v1/conversations'],
      ['GET', '/v1/meetings', 'GET /v1/meetings'],
      ['GET', `/v1/meetings/${meeting}`, 'GET /v1/meetings/{id}'],
      ['DELETE', '/v1/auth/token', 'DELETE /v1/auth/token'],
    ] as const) {
      const res = await call(guest.access_token, method, url, operation);
      assert.equal(res.status, 403, `${method} ${url}: ${res.bytes.toString()}`);
      assert.match(res.challenge, /error="insufficient_scope"/, `${method} ${url}: WWW-Authenticate`);
    }
    assert.match(refused(await join(guest.access_token, other), 403, 'AUTH_ERR_SCOPE'), /another meeting/);
    refused(await call(guest.access_token, 'GET', `/v1/meetings/${other}/participants`, 'GET /v1/meetings/{id}/participants'), 403, 'AUTH_ERR_SCOPE');
    refused(await join(guest.access_token, 'bbbbbbbbbbbb'), 403, 'AUTH_ERR_SCOPE');
  });

  it('the document opens to guest tokens exactly the meeting\'s join, participant, event-stream, own-media, chat and breakout routes and the ICE servers; every other operation refuses one 403', async () => {
    const open = [...api.operations].filter(([, op]) => securityOf(api.doc, op).some((s) => 'guestToken' in s)).map(([key]) => key).sort();
    assert.deepEqual(open, [
      'DELETE /v1/meetings/{id}/breakouts', 'DELETE /v1/meetings/{id}/participants/{pid}', 'GET /v1/ice-servers', 'GET /v1/meetings/{id}/breakouts',
      'GET /v1/meetings/{id}/chat', 'GET /v1/meetings/{id}/participants', 'GET /v1/meetings/{id}/participants/{pid}',
      'GET /v1/meetings/{id}/participants/{pid}/events', 'POST /v1/meetings/{id}/breakouts',
      'POST /v1/meetings/{id}/chat', 'POST /v1/meetings/{id}/join', 'POST /v1/meetings/{id}/participants/{pid}/admit', 'POST /v1/meetings/{id}/participants/{pid}/deny',
      'POST /v1/meetings/{id}/participants/{pid}/mute', 'PUT /v1/meetings/{id}/participants/{pid}/breakout', 'PUT /v1/meetings/{id}/participants/{pid}/streams',
    ]);
    const closed = [...api.operations].filter(([, op]) => {
      const security = securityOf(api.doc, op);
      return security.length > 0 && !security.some((s) => 'guestToken' in s);
    });
    for (const [key] of closed) {
      const [method, path] = key.split(' ') as [string, string];
      // Any value fills the path: the token is refused before the route runs.
      const url = path.replace(/\{[^}]+\}/g, 'x');
      for (const via of VIAS) {
        const res = await api.send(via, { method, url, token: guest.access_token });
        assert.equal(res.status, 403, `${via} ${key} with a guest token: ${res.status} ${res.bytes.toString()}`);
        assert.match(res.challenge, /error="insufficient_scope"/, `${via} ${key}: WWW-Authenticate`);
        conforms(api, key, res, `${via} ${key} with a guest token`);
      }
    }
  });

  it('a guest token gets ICE servers with a credential of its own, and may not name a user', async () => {
    const ice = ok<{ iceServers: Array<{ username?: string }> }>(await call(guest.access_token, 'GET', '/v1/ice-servers', 'GET /v1/ice-servers'));
    assert.ok(ice.iceServers.some((s) => s.username?.endsWith(`:guest-${guest.guest}`)), JSON.stringify(ice));
    refused(await call(guest.access_token, 'GET', `/v1/ice-servers?user=${ALICE}`, 'GET /v1/ice-servers'), 403, 'AUTH_ERR_SCOPE');
  });

  it('refuses an expired guest token signed with the server\'s own key (401 invalid_token)', async () => {
    const store = api.t.server.store;
    const signer = new UserTokens({
      subscribers: store.subscribers, refreshTokens: new SqlRefreshTokenRepository(store), now: () => Date.now() - 2 * 3_600_000, guestTtlSeconds: 60,
      key: loadTokenKey({ dataDir: api.t.dataDir, secret: API_TOKEN_SECRET, logger: silentLogger() }), domains: [API_DOMAIN],
      meetings: { exists: async () => true },
    });
    const answer = await signer.grant({ grant_type: GUEST_GRANT, meeting, display_name: 'Late' }, true);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const expired = (answer.body as { access_token: string }).access_token;
    const res = await join(expired, meeting, { password: PASSWORD });
    assert.equal(res.status, 401, res.bytes.toString());
    assert.match(res.challenge, /error="invalid_token", error_description="expired token"/);
  });

  it('the guest leaves: its Janus token is revoked, and its guest token is used up (409): a new one waits in the lobby again', async () => {
    assert.ok(guestRow.janus);
    assert.equal(ok<Participant>(await call(guest.access_token, 'DELETE', `/v1/meetings/${meeting}/participants/${guest.guest}`, 'DELETE /v1/meetings/{id}/participants/{pid}')).state, 'left');
    assert.equal(await refusedByJanus(guestRow.janus), true, 'the guest\'s Janus token is refused after it left');
    refused(await join(guest.access_token, meeting, { password: PASSWORD }), 409, 'API_ERR_CONFLICT');
    const again = ok<GuestToken>(await grant({ meeting, display_name: 'Gina Guest' }));
    assert.notEqual(again.guest, guest.guest);
    assert.equal(ok<Admission>(await join(again.access_token, meeting, { password: PASSWORD })).state, 'waiting');
  });

  it('with the lobby off a guest is admitted at once', async () => {
    const g = ok<GuestToken>(await grant({ meeting: other, display_name: 'Walk-in' }));
    const admitted = ok<Admission>(await join(g.access_token, other));
    assert.equal(admitted.state, 'admitted');
    assert.ok(admitted.janus);
    await enter(admitted.janus);
  });

  let conversation = '';

  it('admitted users are members of the meeting\'s conversation: the admission, the poll and GET meeting carry its id, and they post to it', async () => {
    const alice = ok<Admission>(await join(tokens.alice, meeting));
    assert.ok(alice.conversation, 'the owner\'s admission carries the conversation');
    conversation = alice.conversation;
    const bob = ok<Admission>(await join(tokens.bob, meeting, { password: PASSWORD }));
    assert.deepEqual([bob.state, bob.conversation], ['waiting', undefined], 'a waiting user is not a member yet');
    assert.equal(ok<{ conversation?: string }>(await call(tokens.bob, 'GET', `/v1/meetings/${meeting}`, 'GET /v1/meetings/{id}')).conversation, undefined);
    refused(await call(tokens.bob, 'GET', `/v1/conversations/${conversation}/messages`, 'GET /v1/conversations/{id}/messages'), 404, 'API_ERR_NOT_FOUND');
    ok<Participant>(await admit(meeting, bob.participant.id));
    assert.equal(ok<Admission>(await poll(tokens.bob, meeting, bob.participant.id)).conversation, conversation);
    assert.equal(ok<{ conversation?: string }>(await call(tokens.bob, 'GET', `/v1/meetings/${meeting}`, 'GET /v1/meetings/{id}')).conversation, conversation);
    assert.equal(ok<{ conversation?: string }>(await call(tokens.alice, 'GET', `/v1/meetings/${meeting}`, 'GET /v1/meetings/{id}')).conversation, conversation);
    const { members } = ok<{ members: Array<{ user: string; role: string }> }>(await call(tokens.alice, 'GET', `/v1/groups/${conversation}/members`, 'GET /v1/groups/{id}/members'));
    assert.deepEqual(members.map((m) => [m.user, m.role]), [[ALICE, 'owner'], [BOB, 'member']]);
    ok(await call(tokens.bob, 'POST', `/v1/conversations/${conversation}/messages`, 'POST /v1/conversations/{id}/messages', { body: 'hello from the meeting' }), 201);
    const page = ok<{ messages: Array<{ sender: string; body: string; kind?: string }> }>(
      await call(tokens.alice, 'GET', `/v1/conversations/${conversation}/messages`, 'GET /v1/conversations/{id}/messages'));
    assert.ok(page.messages.some((m) => m.sender === BOB && m.body === 'hello from the meeting'), JSON.stringify(page.messages));
  });

  it('members stay after they leave, and the conversation survives the meeting\'s end as its history', async () => {
    const bob = ok<Admission>(await join(tokens.bob, meeting, { password: PASSWORD }));
    ok<Participant>(await call(tokens.bob, 'DELETE', `/v1/meetings/${meeting}/participants/${bob.participant.id}`, 'DELETE /v1/meetings/{id}/participants/{pid}'));
    assert.equal((await call(tokens.alice, 'DELETE', `/v1/meetings/${meeting}`, 'DELETE /v1/meetings/{id}')).status, 204);
    for (const token of [tokens.alice, tokens.bob]) {
      const page = ok<{ messages: Array<{ body: string }> }>(await call(token, 'GET', `/v1/conversations/${conversation}/messages`, 'GET /v1/conversations/{id}/messages'));
      assert.ok(page.messages.some((m) => m.body === 'hello from the meeting'), JSON.stringify(page.messages));
    }
  });
  it('a guest\'s wrong meeting passwords count per source address: fresh guest tokens do not get around the limit (429), users are not held back', async () => {
    const locked = await create({ password: PASSWORD });
    const fresh = async () => ok<GuestToken>(await grant({ meeting: locked, display_name: 'Guesser' })).access_token;
    let guesses = 0;
    for (;;) {
      const res = await join(await fresh(), locked, { password: `guess ${guesses}` });
      if (res.status === 429) break;
      refused(res, 403, 'AUTH_ERR_SCOPE');
      guesses++;
      assert.ok(guesses <= 5, 'refused 429 by the 5th wrong password from this address at the latest');
    }
    refused(await join(await fresh(), locked, { password: PASSWORD }), 429, 'API_ERR_RATE_LIMITED');
    assert.equal(ok<Admission>(await join(tokens.bob, locked, { password: PASSWORD })).state, 'waiting');
  });
});

describe('the guest grant without Janus', { timeout: 60_000 }, () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer(['alice']);
  });
  after(async () => {
    await api?.stop();
  });

  it('counts grants for unknown meetings against the source address like wrong passwords: then 429 with Retry-After', async () => {
    for (let i = 0; i < TOKEN_FAILURES_MAX; i++) {
      const res = await api.send('http', { method: 'POST', url: '/v1/auth/token', json: { grant_type: GUEST_GRANT, meeting: 'cccccccccccc', display_name: `guess ${i}` } });
      assert.equal(res.status, 401, res.bytes.toString());
    }
    const res = await fetch(`${api.base}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: GUEST_GRANT, meeting: 'cccccccccccc', display_name: 'one more' }),
    });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
  });
});
