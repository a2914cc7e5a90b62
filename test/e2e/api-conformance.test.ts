/**
 * Every operation of the API's own document (`GET /v1/openapi.json` of a whole softswitch) is called with a valid
 * token and valid inputs, through fastify's inject and over real HTTP, and each answer is one the document
 * allows: a documented status and a body that matches the schema documented for it. The operations are
 * read from the document, not listed here: one without an example below fails the test, naming it. Each
 * resource family (tag) also has a refusal checked against the error schema its operation documents, read
 * from the document (the test knows no error shape).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  API_DOMAIN, type ApiRequest, type ApiServer, type OperationKey, VIAS, type Via, addBinding, conforms, recordCall, startApiServer,
} from '../helpers/api-client.js';
import { installTestWebSocket } from '../helpers/softphone.js';
import { TestUsers } from '../helpers/test-users.js';
import { startJanus, type JanusServer } from '../../support/janus.js';
import { AUDIO_MID, VIDEO_MID, publishWithoutMedia } from '../helpers/janus-publisher.js';
import type { JanusClient, JanusGrant } from '../../conference/index.js';

const ALICE = `alice@${API_DOMAIN}`;
const BOB = `bob@${API_DOMAIN}`;
const CAROL = `carol@${API_DOMAIN}`;
const ALICE_CALL = 'conformance-call-1';

/** What a request of an example needs: the server, its tokens, and fixtures made on demand. */
interface Ctx {
  api: ApiServer;
  admin: string;
  alice: string;
  via: Via;
  /** A number unique in this run (names, addresses, ports). */
  n(): number;
  /** Sends as admin and asserts a 2xx; the JSON answer. */
  setup(method: string, url: string, json?: unknown): Promise<Record<string, unknown>>;
  /** As alice; the JSON answer of a 2xx. */
  asAlice(method: string, url: string, json?: unknown, raw?: ApiRequest['raw']): Promise<Record<string, unknown>>;
  /** alice's direct conversation with bob. */
  conversation(): Promise<string>;
  /** A message alice sent there. */
  message(): Promise<string>;
  /** A group of alice's with bob (and carol). */
  group(withCarol?: boolean): Promise<string>;
  /** A text file alice uploaded. */
  file(): Promise<string>;
  /** A binding of alice's (a phone on 192.0.2.9), its contact URI. */
  binding(): string;
  /** A new user of example.com; its address. */
  user(): Promise<string>;
  /** A call in progress between two new users' SIP.js phones (registered over WSS), answered: its id as GET /v1/active-calls lists it. */
  callInProgress(): Promise<string>;
  /** A new meeting of alice's with the password `pw` and the lobby on: its id. */
  meeting(): Promise<string>;
  /** Bob waiting in the lobby of a new meeting of alice's: the meeting, his participant id and his token. */
  knock(): Promise<{ meeting: string; participant: string; bob: string }>;
  /** Alice admitted to a new meeting of hers, publishing in its room (an SDP offer, no media): the meeting and her participant id. */
  publishing(): Promise<{ meeting: string; participant: string }>;
  /** Alice admitted to a new meeting of hers with 2 breakout rooms open, moved to room 1: the meeting and her participant id. */
  inBreakout(): Promise<{ meeting: string; participant: string }>;
  /** A new meeting of alice's that allows recording, alice admitted (its room exists on Janus); with `recording`, recorded since. */
  recordable(recording: boolean): Promise<string>;
}

/** A request, and the status it must get where the document allows several successes (206 for a range). */
type Example = (ctx: Ctx) => (ApiRequest & { status?: number }) | Promise<ApiRequest & { status?: number }>;

/** A meeting guest's access token for `meeting` (the urn:softswitch:meeting-guest grant). */
async function guestToken(c: Ctx, meeting: string): Promise<string> {
  const answer = await c.api.send('http', { method: 'POST', url: '/v1/auth/token', json: { grant_type: 'urn:softswitch:meeting-guest', meeting, display_name: `guest ${c.n()}` } });
  assert.equal(answer.status, 200, answer.bytes.toString());
  return (answer.json as { access_token: string }).access_token;
}
const enc = encodeURIComponent;

/** A new meeting of alice's without a lobby, alice in it with a chat message, and a guest admitted: the meeting and the guest's token. */
async function guestInChat(c: Ctx): Promise<{ meeting: string; guest: string }> {
  const meeting = String((await c.asAlice('POST', '/v1/meetings', { title: `chat ${c.n()}`, lobby: false })).id);
  await c.asAlice('POST', `/v1/meetings/${meeting}/join`, {});
  const guest = await guestToken(c, meeting);
  const joined = await c.api.send('http', { method: 'POST', url: `/v1/meetings/${meeting}/join`, token: guest, json: {} });
  assert.equal(joined.status, 200, joined.bytes.toString());
  await c.asAlice('POST', `/v1/meetings/${meeting}/chat`, { text: 'welcome' });
  return { meeting, guest };
}

/**
 * Valid requests of each operation, by `METHOD path` as the document spells it (several where the answer takes
 * other shapes: a page with a cursor, a byte range, an admin's view): each is called once per transport (inject,
 * HTTP), so an example that consumes its resource (a DELETE) makes it first.
 */
const EXAMPLES: Record<OperationKey, Example | Example[]> = {
  'GET /v1/openapi.json': () => ({ method: 'GET', url: '/v1/openapi.json' }),
  'GET /health': () => ({ method: 'GET', url: '/health' }),
  'GET /v1/health': (c) => ({ method: 'GET', url: '/v1/health', token: c.admin }),
  'POST /reload': (c) => ({ method: 'POST', url: '/reload', token: c.admin }),

  'POST /v1/auth/token': [
    () => ({ method: 'POST', url: '/v1/auth/token', json: { grant_type: 'password', username: ALICE, password: 'alice-secret' } }),
    // A meeting guest: a token for that meeting, without a refresh token.
    async (c) => ({ method: 'POST', url: '/v1/auth/token', json: { grant_type: 'urn:softswitch:meeting-guest', meeting: await c.meeting(), display_name: 'Guest' } }),
  ],
  'DELETE /v1/auth/token': async (c) => ({ method: 'DELETE', url: '/v1/auth/token', token: await c.api.signIn('alice') }),

  'GET /v1/bans': (c) => ({ method: 'GET', url: '/v1/bans', token: c.admin }),
  'POST /v1/bans': (c) => ({ method: 'POST', url: '/v1/bans', token: c.admin, json: { address: `192.0.2.${c.n()}`, seconds: 60, reason: 'conformance' } }),
  'DELETE /v1/bans/{address}': async (c) => {
    const address = `192.0.2.${c.n()}`;
    await c.setup('POST', '/v1/bans', { address, seconds: 60 });
    return { method: 'DELETE', url: `/v1/bans/${address}`, token: c.admin };
  },

  // Backends on 127.0.0.2: a backend's address is a trusted (PSTN) source, and the phones of callInProgress() call from 127.0.0.1.
  'GET /v1/backends': (c) => ({ method: 'GET', url: '/v1/backends', token: c.admin }),
  'POST /v1/backends': (c) => ({ method: 'POST', url: '/v1/backends', token: c.admin, json: { set: 'conformance', uri: `sip:127.0.0.2:${40_000 + c.n()}`, weight: 2 } }),
  'DELETE /v1/backends/{id}': async (c) => {
    const { id } = await c.setup('POST', '/v1/backends', { set: 'conformance', uri: `sip:127.0.0.2:${40_000 + c.n()}` });
    return { method: 'DELETE', url: `/v1/backends/${String(id)}`, token: c.admin };
  },
  'PUT /v1/backends/{id}/enabled': async (c) => {
    const { id } = await c.setup('POST', '/v1/backends', { set: 'conformance', uri: `sip:127.0.0.2:${40_000 + c.n()}` });
    return { method: 'PUT', url: `/v1/backends/${String(id)}/enabled`, token: c.admin, json: { enabled: false } };
  },
  'GET /v1/backend-sets': (c) => ({ method: 'GET', url: '/v1/backend-sets', token: c.admin }),
  'PUT /v1/backend-sets/{set}': async (c) => {
    await c.setup('POST', '/v1/backends', { set: 'conformance', uri: `sip:127.0.0.2:${40_000 + c.n()}` });
    return { method: 'PUT', url: '/v1/backend-sets/conformance', token: c.admin, json: { algorithm: 'least-calls' } };
  },
  'GET /v1/routes': (c) => ({ method: 'GET', url: '/v1/routes', token: c.admin }),
  'POST /v1/routes': (c) => ({ method: 'POST', url: '/v1/routes', token: c.admin, json: { pattern: `9${c.n()}([0-9]+)`, replace: '$1', set: 'conformance', priority: 5 } }),
  'DELETE /v1/routes/{id}': async (c) => {
    const { id } = await c.setup('POST', '/v1/routes', { pattern: `8${c.n()}([0-9]+)`, set: 'conformance' });
    return { method: 'DELETE', url: `/v1/routes/${String(id)}`, token: c.admin };
  },
  'GET /v1/dids': (c) => ({ method: 'GET', url: '/v1/dids', token: c.admin }),
  'POST /v1/dids': (c) => ({ method: 'POST', url: '/v1/dids', token: c.admin, json: { number: `+4930555${c.n()}`, username: 'alice', domain: API_DOMAIN } }),
  'DELETE /v1/dids/{number}': async (c) => {
    const number = `+4930666${c.n()}`;
    await c.setup('POST', '/v1/dids', { number, username: 'alice', domain: API_DOMAIN });
    return { method: 'DELETE', url: `/v1/dids/${enc(number)}`, token: c.admin };
  },
  'GET /v1/trusted': (c) => ({ method: 'GET', url: '/v1/trusted', token: c.admin }),
  'POST /v1/trusted': (c) => ({ method: 'POST', url: '/v1/trusted', token: c.admin, json: { cidr: `10.9.${c.n()}.0/24`, description: 'conformance' } }),
  'DELETE /v1/trusted/{id}': async (c) => {
    const { id } = await c.setup('POST', '/v1/trusted', { cidr: `10.8.${c.n()}.0/24` });
    return { method: 'DELETE', url: `/v1/trusted/${String(id)}`, token: c.admin };
  },

  'GET /v1/calls': [
    (c) => ({ method: 'GET', url: '/v1/calls?limit=10', token: c.alice }),
    // A page with a cursor to the next one, read by an admin.
    (c) => ({ method: 'GET', url: '/v1/calls?limit=1&direction=user-user', token: c.admin }),
  ],
  'GET /v1/history': [
    (c) => ({ method: 'GET', url: '/v1/history?limit=10', token: c.alice }),
    // A page with a cursor to the next one, read by an admin for a named user.
    (c) => ({ method: 'GET', url: `/v1/history?limit=1&user=${enc(ALICE)}`, token: c.admin }),
  ],
  'GET /v1/calls/{id}': [
    (c) => ({ method: 'GET', url: `/v1/calls/${ALICE_CALL}`, token: c.alice }),
    (c) => ({ method: 'GET', url: `/v1/calls/${ALICE_CALL}`, token: c.admin }),
  ],

  'GET /v1/presence/allow': [
    (c) => ({ method: 'GET', url: '/v1/presence/allow', token: c.alice }),
    (c) => ({ method: 'GET', url: `/v1/presence/allow?user=${ALICE}`, token: c.admin }),
  ],
  'PUT /v1/presence/allow/{*}': (c) => ({ method: 'PUT', url: `/v1/presence/allow/${BOB}`, token: c.alice }),
  'DELETE /v1/presence/allow/{*}': async (c) => {
    await c.asAlice('PUT', `/v1/presence/allow/${CAROL}`);
    return { method: 'DELETE', url: `/v1/presence/allow/${CAROL}`, token: c.alice };
  },

  'GET /v1/ice-servers': [
    (c) => ({ method: 'GET', url: '/v1/ice-servers', token: c.alice }),
    (c) => ({ method: 'GET', url: `/v1/ice-servers?user=${ALICE}`, token: c.admin }),
    // A meeting guest's WebRTC needs TURN too.
    async (c) => ({ method: 'GET', url: '/v1/ice-servers', token: await guestToken(c, await c.meeting()) }),
  ],

  'GET /v1/conversations': async (c) => {
    await c.message();
    return { method: 'GET', url: '/v1/conversations?limit=5', token: c.alice };
  },
  'POST /v1/conversations': (c) => ({ method: 'POST', url: '/v1/conversations', token: c.alice, json: { peer: BOB } }),
  'GET /v1/conversations/{id}/messages': [
    async (c) => {
      await c.message();
      return { method: 'GET', url: `/v1/conversations/${await c.conversation()}/messages?limit=5`, token: c.alice };
    },
    // The page before a message: its cursors around it.
    async (c) => {
      const before = await c.message();
      await c.message();
      return { method: 'GET', url: `/v1/conversations/${await c.conversation()}/messages?before=${before}&limit=1`, token: c.alice };
    },
    async (c) => ({ method: 'GET', url: `/v1/conversations/${await c.group()}/messages`, token: c.admin }),
  ],
  'POST /v1/conversations/{id}/messages': async (c) => ({
    method: 'POST', url: `/v1/conversations/${await c.conversation()}/messages`, token: c.alice, json: { body: 'hello over the API', contentType: 'text/plain' },
  }),
  'POST /v1/conversations/{id}/read': async (c) => ({
    method: 'POST', url: `/v1/conversations/${await c.conversation()}/read`, token: c.alice, json: { messageId: await c.message() },
  }),
  'GET /v1/conversations/{id}/search': async (c) => {
    await c.message();
    return { method: 'GET', url: `/v1/conversations/${await c.conversation()}/search?q=conformance&limit=5`, token: c.alice };
  },
  'DELETE /v1/messages/{id}': async (c) => ({ method: 'DELETE', url: `/v1/messages/${await c.message()}`, token: c.alice }),
  'GET /v1/messages/{id}/receipts': async (c) => ({ method: 'GET', url: `/v1/messages/${await c.message()}/receipts`, token: c.alice }),
  'POST /v1/groups': (c) => ({ method: 'POST', url: '/v1/groups', token: c.alice, json: { name: `group ${c.n()}`, members: [BOB] } }),
  'GET /v1/groups/{id}/members': async (c) => ({ method: 'GET', url: `/v1/groups/${await c.group()}/members`, token: c.alice }),
  'PUT /v1/groups/{id}/members/{user}': async (c) => ({ method: 'PUT', url: `/v1/groups/${await c.group()}/members/${CAROL}`, token: c.alice, json: { role: 'member' } }),
  'DELETE /v1/groups/{id}/members/{user}': async (c) => ({ method: 'DELETE', url: `/v1/groups/${await c.group(true)}/members/${CAROL}`, token: c.alice }),

  'POST /v1/files': (c) => ({ method: 'POST', url: '/v1/files?name=note.txt', token: c.alice, raw: { contentType: 'text/plain', data: 'a note for bob' } }),
  'GET /v1/files/{id}': [
    async (c) => ({ method: 'GET', url: `/v1/files/${await c.file()}`, token: c.alice }),
    async (c) => ({ method: 'GET', url: `/v1/files/${await c.file()}`, token: c.alice, headers: { range: 'bytes=2-3' }, status: 206 }),
    async (c) => ({ method: 'GET', url: `/v1/files/${await c.file()}`, token: c.admin }),
  ],
  'DELETE /v1/files/{id}': async (c) => ({ method: 'DELETE', url: `/v1/files/${await c.file()}`, token: c.alice }),

  'GET /v1/users': (c) => ({ method: 'GET', url: `/v1/users?domain=${API_DOMAIN}`, token: c.admin }),
  'POST /v1/users': (c) => ({ method: 'POST', url: '/v1/users', token: c.admin, json: { user: `new${c.n()}@${API_DOMAIN}`, password: 'a-new-secret' } }),
  'GET /v1/users/{user}': (c) => ({ method: 'GET', url: `/v1/users/${ALICE}`, token: c.admin }),
  'DELETE /v1/users/{user}': async (c) => ({ method: 'DELETE', url: `/v1/users/${await c.user()}`, token: c.admin }),
  'PUT /v1/users/{user}/password': async (c) => ({ method: 'PUT', url: `/v1/users/${await c.user()}/password`, token: c.admin, json: { password: 'another-secret' } }),
  'PUT /v1/users/{user}/enabled': async (c) => ({ method: 'PUT', url: `/v1/users/${await c.user()}/enabled`, token: c.admin, json: { enabled: false } }),
  'GET /v1/users/{user}/devices': (c) => {
    c.binding();
    return { method: 'GET', url: `/v1/users/${ALICE}/devices`, token: c.alice };
  },
  'DELETE /v1/users/{user}/devices': (c) => ({ method: 'DELETE', url: `/v1/users/${ALICE}/devices?contact=${enc(c.binding())}`, token: c.alice }),

  'GET /v1/tokens': (c) => ({ method: 'GET', url: '/v1/tokens', token: c.admin }),
  'POST /v1/tokens': (c) => ({ method: 'POST', url: '/v1/tokens', token: c.admin, json: { name: `conformance-${c.n()}`, expires: '1h' } }),
  'DELETE /v1/tokens/{id}': async (c) => {
    const { id } = await c.setup('POST', '/v1/tokens', { name: `conformance-${c.n()}` });
    return { method: 'DELETE', url: `/v1/tokens/${String(id)}`, token: c.admin };
  },

  'GET /v1/meetings': [
    async (c) => {
      await c.asAlice('POST', '/v1/meetings', { title: `list ${c.n()}` });
      return { method: 'GET', url: '/v1/meetings?limit=1', token: c.alice };
    },
    (c) => ({ method: 'GET', url: `/v1/meetings?owner=${ALICE}`, token: c.admin }),
  ],
  'POST /v1/meetings': [
    (c) => ({ method: 'POST', url: '/v1/meetings', token: c.alice, json: { title: `standup ${c.n()}`, password: 'pw', startsAt: '2027-01-04T09:00:00Z', endsAt: '2027-01-04T09:15:00Z' } }),
    (c) => ({ method: 'POST', url: '/v1/meetings', token: c.admin, json: { title: `for bob ${c.n()}`, owner: BOB, lobby: false } }),
  ],
  'GET /v1/meetings/{id}': [
    async (c) => ({ method: 'GET', url: `/v1/meetings/${String((await c.asAlice('POST', '/v1/meetings', { title: `get ${c.n()}` })).id)}`, token: c.alice }),
    // Another user sees the public face only.
    async (c) => ({ method: 'GET', url: `/v1/meetings/${String((await c.setup('POST', '/v1/meetings', { title: `bob's ${c.n()}`, owner: BOB })).id)}`, token: c.alice }),
  ],
  'PATCH /v1/meetings/{id}': async (c) => ({
    method: 'PATCH', url: `/v1/meetings/${String((await c.asAlice('POST', '/v1/meetings', { title: `patch ${c.n()}`, password: 'pw' })).id)}`, token: c.alice,
    json: { title: 'patched', password: null, endsAt: null },
  }),
  'DELETE /v1/meetings/{id}': async (c) => ({ method: 'DELETE', url: `/v1/meetings/${String((await c.asAlice('POST', '/v1/meetings', { title: `delete ${c.n()}` })).id)}`, token: c.alice }),
  'POST /v1/meetings/{id}/join': [
    // The owner: admitted at once, with the Janus grant.
    async (c) => ({ method: 'POST', url: `/v1/meetings/${await c.meeting()}/join`, token: c.alice, json: { displayName: 'Alice' } }),
    // Bob, with the password: waiting in the lobby.
    async (c) => ({ method: 'POST', url: `/v1/meetings/${await c.meeting()}/join`, token: await c.api.signIn('bob'), json: { password: 'pw' } }),
    // A guest with the password: waiting in the lobby, its guest id its participant id.
    async (c) => {
      const meeting = await c.meeting();
      return { method: 'POST', url: `/v1/meetings/${meeting}/join`, token: await guestToken(c, meeting), json: { password: 'pw' } };
    },
  ],
  'GET /v1/meetings/{id}/chat': [
    // An admitted guest reads the chat (from its admission on); the owner reads a page with a cursor to older ones.
    async (c) => {
      const { meeting, guest } = await guestInChat(c);
      return { method: 'GET', url: `/v1/meetings/${meeting}/chat`, token: guest };
    },
    async (c) => ({ method: 'GET', url: `/v1/meetings/${(await guestInChat(c)).meeting}/chat?limit=1`, token: c.alice }),
  ],
  'POST /v1/meetings/{id}/chat': [
    async (c) => {
      const { meeting, guest } = await guestInChat(c);
      return { method: 'POST', url: `/v1/meetings/${meeting}/chat`, token: guest, json: { text: 'hello from a guest' } };
    },
    async (c) => ({ method: 'POST', url: `/v1/meetings/${(await guestInChat(c)).meeting}/chat`, token: c.alice, json: { text: 'hello' } }),
  ],
  'GET /v1/meetings/{id}/participants': async (c) => ({ method: 'GET', url: `/v1/meetings/${(await c.knock()).meeting}/participants`, token: c.alice }),
  'GET /v1/meetings/{id}/participants/{pid}': [
    // Bob polls the lobby; the owner, a moderator, reads bob's row.
    async (c) => {
      const { meeting, participant, bob } = await c.knock();
      return { method: 'GET', url: `/v1/meetings/${meeting}/participants/${participant}`, token: bob };
    },
    async (c) => {
      const { meeting, participant } = await c.knock();
      return { method: 'GET', url: `/v1/meetings/${meeting}/participants/${participant}`, token: c.alice };
    },
    // Alice in a breakout room: her grant names its videoroom.
    async (c) => {
      const { meeting, participant } = await c.inBreakout();
      return { method: 'GET', url: `/v1/meetings/${meeting}/participants/${participant}`, token: c.alice };
    },
  ],
  'POST /v1/meetings/{id}/participants/{pid}/admit': async (c) => {
    const { meeting, participant } = await c.knock();
    return { method: 'POST', url: `/v1/meetings/${meeting}/participants/${participant}/admit`, token: c.alice };
  },
  'POST /v1/meetings/{id}/participants/{pid}/deny': async (c) => {
    const { meeting, participant } = await c.knock();
    return { method: 'POST', url: `/v1/meetings/${meeting}/participants/${participant}/deny`, token: c.alice };
  },
  // Bob's event stream after the owner denied him: one `participant` event with the final state, then the stream ends
  // (a live stream never ends, so the example is the one that does).
  'GET /v1/meetings/{id}/participants/{pid}/events': async (c) => {
    const { meeting, participant, bob } = await c.knock();
    await c.asAlice('POST', `/v1/meetings/${meeting}/participants/${participant}/deny`);
    return { method: 'GET', url: `/v1/meetings/${meeting}/participants/${participant}/events`, token: bob };
  },
  // The owner kicks bob out of the lobby.
  'DELETE /v1/meetings/{id}/participants/{pid}': async (c) => {
    const { meeting, participant } = await c.knock();
    return { method: 'DELETE', url: `/v1/meetings/${meeting}/participants/${participant}`, token: c.alice };
  },

  // Moderation: alice, the owner, on a meeting of hers (joined where the operation needs a participant).
  'POST /v1/meetings/{id}/participants/{pid}/mute': async (c) => {
    const meeting = await c.meeting();
    const { participant } = await c.asAlice('POST', `/v1/meetings/${meeting}/join`, {}) as { participant: { id: string } };
    return { method: 'POST', url: `/v1/meetings/${meeting}/participants/${participant.id}/mute`, token: c.alice, json: { audio: true } };
  },
  // Janus checks the mids reported: alice publishes first.
  'PUT /v1/meetings/{id}/participants/{pid}/streams': async (c) => {
    const { meeting, participant } = await c.publishing();
    return { method: 'PUT', url: `/v1/meetings/${meeting}/participants/${participant}/streams`, token: c.alice, json: { audioMid: AUDIO_MID, videoMid: VIDEO_MID } };
  },
  'PUT /v1/meetings/{id}/participants/{pid}/role': async (c) => {
    const { meeting, participant } = await c.knock();
    return { method: 'PUT', url: `/v1/meetings/${meeting}/participants/${participant}/role`, token: c.alice, json: { role: 'moderator' } };
  },
  'POST /v1/meetings/{id}/mute-all': async (c) => ({ method: 'POST', url: `/v1/meetings/${await c.meeting()}/mute-all`, token: c.alice, json: { media: 'audio', allowUnmute: true } }),
  'GET /v1/meetings/{id}/moderation': async (c) => ({ method: 'GET', url: `/v1/meetings/${await c.meeting()}/moderation`, token: c.alice }),
  'POST /v1/meetings/{id}/lock': async (c) => ({ method: 'POST', url: `/v1/meetings/${await c.meeting()}/lock`, token: c.alice }),
  'DELETE /v1/meetings/{id}/lock': async (c) => ({ method: 'DELETE', url: `/v1/meetings/${await c.meeting()}/lock`, token: c.alice }),
  'POST /v1/meetings/{id}/end': async (c) => ({ method: 'POST', url: `/v1/meetings/${(await c.knock()).meeting}/end`, token: c.alice }),
  'POST /v1/meetings/{id}/breakouts': [
    async (c) => ({ method: 'POST', url: `/v1/meetings/${await c.meeting()}/breakouts`, token: c.alice, json: { rooms: 2, names: ['Design'], allowChoose: true, durationS: 600 } }),
    async (c) => ({ method: 'POST', url: `/v1/meetings/${await c.meeting()}/breakouts`, token: c.admin, json: { rooms: 1 } }),
  ],
  'GET /v1/meetings/{id}/breakouts': [
    async (c) => {
      const { meeting } = await c.inBreakout();
      return { method: 'GET', url: `/v1/meetings/${meeting}/breakouts`, token: c.alice };
    },
    // None open.
    async (c) => ({ method: 'GET', url: `/v1/meetings/${await c.meeting()}/breakouts`, token: c.alice }),
  ],
  'DELETE /v1/meetings/{id}/breakouts': async (c) => ({ method: 'DELETE', url: `/v1/meetings/${(await c.inBreakout()).meeting}/breakouts`, token: c.alice }),
  'PUT /v1/meetings/{id}/participants/{pid}/breakout': [
    async (c) => {
      const { meeting, participant } = await c.inBreakout();
      return { method: 'PUT', url: `/v1/meetings/${meeting}/participants/${participant}/breakout`, token: c.alice, json: { room: 2 } };
    },
    // Back to the main room.
    async (c) => {
      const { meeting, participant } = await c.inBreakout();
      return { method: 'PUT', url: `/v1/meetings/${meeting}/participants/${participant}/breakout`, token: c.alice, json: { room: 0 } };
    },
  ],
  'GET /v1/meetings/{id}/history': [
    async (c) => ({ method: 'GET', url: `/v1/meetings/${(await c.knock()).meeting}/history`, token: c.alice }),
    // A page with a cursor to the next one.
    async (c) => ({ method: 'GET', url: `/v1/meetings/${(await c.knock()).meeting}/history?limit=1`, token: c.alice }),
  ],
  // Recordings: alice, the owner, on a meeting that allows them (Janus records the room; nobody publishes media here).
  'POST /v1/meetings/{id}/recording': async (c) => ({ method: 'POST', url: `/v1/meetings/${await c.recordable(false)}/recording`, token: c.alice }),
  'DELETE /v1/meetings/{id}/recording': async (c) => ({ method: 'DELETE', url: `/v1/meetings/${await c.recordable(true)}/recording`, token: c.alice }),
  'GET /v1/meetings/{id}/recordings': [
    async (c) => ({ method: 'GET', url: `/v1/meetings/${await c.recordable(true)}/recordings`, token: c.alice }),
    // A stopped session.
    async (c) => {
      const meeting = await c.recordable(true);
      await c.asAlice('DELETE', `/v1/meetings/${meeting}/recording`);
      return { method: 'GET', url: `/v1/meetings/${meeting}/recordings`, token: c.alice };
    },
  ],

  'GET /v1/registrations': [
    (c) => {
      c.binding();
      return { method: 'GET', url: '/v1/registrations', token: c.admin };
    },
    // A page with a cursor to the next one.
    (c) => {
      c.binding();
      c.binding();
      return { method: 'GET', url: '/v1/registrations?limit=1', token: c.admin };
    },
  ],
  'GET /v1/active-calls': async (c) => {
    await c.callInProgress();
    return { method: 'GET', url: '/v1/active-calls', token: c.admin };
  },
  // A fresh call each time: the hang-up ends it (both phones get a BYE).
  'DELETE /v1/active-calls/{id}': async (c) => ({ method: 'DELETE', url: `/v1/active-calls/${await c.callInProgress()}`, token: c.admin }),
};

/**
 * A refusal per resource family (the document's tags), answered with a 4xx the operation documents; the body is
 * checked against that status's schema in the document.
 */
const REFUSALS: Record<string, { op: OperationKey; example: Example }> = {
  auth: { op: 'POST /v1/auth/token', example: () => ({ method: 'POST', url: '/v1/auth/token', json: { grant_type: 'password', username: ALICE } }) },
  bans: { op: 'DELETE /v1/bans/{address}', example: (c) => ({ method: 'DELETE', url: '/v1/bans/192.0.2.250', token: c.admin }) },
  backends: { op: 'POST /v1/backends', example: (c) => ({ method: 'POST', url: '/v1/backends', token: c.admin, json: { set: 'conformance', uri: 'http://not-sip' } }) },
  routes: { op: 'DELETE /v1/routes/{id}', example: (c) => ({ method: 'DELETE', url: '/v1/routes/999999', token: c.admin }) },
  dids: { op: 'DELETE /v1/dids/{number}', example: (c) => ({ method: 'DELETE', url: '/v1/dids/%2B4930999999', token: c.admin }) },
  trusted: { op: 'POST /v1/trusted', example: (c) => ({ method: 'POST', url: '/v1/trusted', token: c.admin, json: { cidr: 'not an address' } }) },
  calls: { op: 'GET /v1/calls/{id}', example: (c) => ({ method: 'GET', url: '/v1/calls/no-such-call', token: c.alice }) },
  presence: { op: 'GET /v1/presence/allow', example: (c) => ({ method: 'GET', url: `/v1/presence/allow?user=${BOB}`, token: c.alice }) },
  'ice servers': { op: 'GET /v1/ice-servers', example: (c) => ({ method: 'GET', url: '/v1/ice-servers', token: c.admin }) },
  chat: { op: 'GET /v1/conversations/{id}/messages', example: (c) => ({ method: 'GET', url: '/v1/conversations/no-such-conversation/messages', token: c.alice }) },
  files: { op: 'GET /v1/files/{id}', example: (c) => ({ method: 'GET', url: '/v1/files/no-such-file', token: c.alice }) },
  users: { op: 'GET /v1/users/{user}', example: (c) => ({ method: 'GET', url: `/v1/users/nobody@${API_DOMAIN}`, token: c.admin }) },
  tokens: { op: 'DELETE /v1/tokens/{id}', example: (c) => ({ method: 'DELETE', url: '/v1/tokens/999999', token: c.admin }) },
  meetings: { op: 'GET /v1/meetings/{id}', example: (c) => ({ method: 'GET', url: '/v1/meetings/aaaaaaaaaaaa', token: c.alice }) },
  admin: { op: 'GET /v1/registrations', example: (c) => ({ method: 'GET', url: '/v1/registrations?user=not%20an%20address', token: c.admin }) },
};
/** Families whose documented refusals no client request can cause, and why. */
const NO_REFUSAL: Record<string, string> = {
  server: 'POST /reload answers 404 only on a server without a reload source, and 500 when the store fails; /health 503 when not started',
};

describe('the API answers every operation of its document as documented, via inject and over HTTP', { timeout: 120_000 }, () => {
  let api: ApiServer;
  let janus: JanusServer;
  let alice: string;
  let phones: TestUsers;
  let counter = 0;
  const made: { conversation?: string; message?: string } = {};
  const janusClients: JanusClient[] = [];

  before(async () => {
    installTestWebSocket();
    // A real Janus behind the meetings: joining and admitting answer as documented (the 503 of a server without one
    // is in meeting-lobby.test.ts).
    janus = await startJanus({ recordings: true });
    api = await startApiServer(['alice', 'bob', 'carol'], {
      meetings: { janus: [{ url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret, recordingDir: janus.recordingDir }] },
    });
    phones = new TestUsers(() => api.t, API_DOMAIN);
    alice = await api.signIn('alice');
    await recordCall(api, ALICE_CALL, 'alice', 'bob');
    // Two calls: a page of one has a cursor to the next.
    await recordCall(api, 'conformance-call-2', 'bob', 'alice');
  });

  after(async () => {
    await Promise.allSettled(janusClients.map((client) => client.close()));
    await phones?.stop();
    await api?.stop();
    await janus?.stop();
  });

  function ctx(via: Via): Ctx {
    const ok = async (request: ApiRequest): Promise<Record<string, unknown>> => {
      const res = await api.send('http', request);
      assert.ok(res.status >= 200 && res.status < 300, `setup ${request.method} ${request.url}: ${res.status} ${res.bytes.toString()}`);
      return (res.json ?? {}) as Record<string, unknown>;
    };
    const c: Ctx = {
      api, admin: api.admin, alice, via,
      n: () => ++counter,
      setup: (method, url, json) => ok({ method, url, token: api.admin, json }),
      asAlice: (method, url, json, raw) => ok({ method, url, token: alice, json, raw }),
      async conversation() {
        made.conversation ??= String((await c.asAlice('POST', '/v1/conversations', { peer: BOB })).id);
        return made.conversation;
      },
      async message() {
        return String((await c.asAlice('POST', `/v1/conversations/${await c.conversation()}/messages`, { body: `conformance ${c.n()}` })).id);
      },
      async group(withCarol = false) {
        return String((await c.asAlice('POST', '/v1/groups', { name: `group ${c.n()}`, members: withCarol ? [BOB, CAROL] : [BOB] })).id);
      },
      async file() {
        return String((await c.asAlice('POST', '/v1/files?name=note.txt', undefined, { contentType: 'text/plain', data: 'a note' })).id);
      },
      binding: () => addBinding(api, ALICE, 50_000 + c.n()),
      async user() {
        const user = `temp${c.n()}@${API_DOMAIN}`;
        await c.setup('POST', '/v1/users', { user, password: 'temp-secret' });
        return user;
      },
      async callInProgress() {
        const [caller, callee] = [await phones.add('caller'), await phones.add('callee')];
        const [from, to] = [await phones.phone(caller, 'sip.js'), await phones.phone(callee, 'sip.js')];
        const calling = from.call(callee.aor);
        const incoming = await to.waitForIncoming();
        await Promise.all([incoming.accept(), calling]);
        const { calls } = await c.setup('GET', `/v1/active-calls?user=${enc(caller.address)}`) as { calls: Array<{ id: string }> };
        assert.equal(calls.length, 1, `the call of ${caller.address} is in progress: ${JSON.stringify(await c.setup('GET', '/v1/active-calls'))}`);
        return calls[0]!.id;
      },
      async meeting() {
        return String((await c.asAlice('POST', '/v1/meetings', { title: `lobby ${c.n()}`, password: 'pw' })).id);
      },
      async knock() {
        const meeting = await c.meeting();
        const bob = await api.signIn('bob');
        const joined = await ok({ method: 'POST', url: `/v1/meetings/${meeting}/join`, token: bob, json: { password: 'pw' } });
        return { meeting, participant: String((joined.participant as { id: string }).id), bob };
      },
      async recordable(recording) {
        const meeting = String((await c.asAlice('POST', '/v1/meetings', { title: `recorded ${c.n()}`, recordingAllowed: true })).id);
        await c.asAlice('POST', `/v1/meetings/${meeting}/join`, {});
        if (recording) await c.asAlice('POST', `/v1/meetings/${meeting}/recording`);
        return meeting;
      },
      async publishing() {
        const meeting = await c.meeting();
        const joined = await c.asAlice('POST', `/v1/meetings/${meeting}/join`, {}) as { participant: { id: string }; janus: JanusGrant };
        janusClients.push((await publishWithoutMedia(joined.janus)).client);
        return { meeting, participant: joined.participant.id };
      },
      async inBreakout() {
        const meeting = await c.meeting();
        const joined = await c.asAlice('POST', `/v1/meetings/${meeting}/join`, {}) as { participant: { id: string } };
        await c.asAlice('POST', `/v1/meetings/${meeting}/breakouts`, { rooms: 2 });
        await c.asAlice('PUT', `/v1/meetings/${meeting}/participants/${joined.participant.id}/breakout`, { room: 1 });
        return { meeting, participant: joined.participant.id };
      },
    };
    return c;
  }

  it('has an example for every operation of the document (add one to EXAMPLES for a new route)', () => {
    const missing = [...api.operations.keys()].filter((key) => EXAMPLES[key] === undefined);
    assert.deepEqual(missing, [], `operations of /v1/openapi.json without an example in test/e2e/api-conformance.test.ts EXAMPLES: ${missing.join(', ')} ` +
      '(the Ctx makes fixtures: a user, a message, a file, a binding, a call in progress with callInProgress())');
    const stale = Object.keys(EXAMPLES).filter((key) => !api.operations.has(key));
    assert.deepEqual(stale, [], 'examples of operations the document no longer has');
  });

  it('answers each operation\'s valid request with a documented success whose body matches its schema', async (t) => {
    for (const key of api.operations.keys()) {
      const examples = EXAMPLES[key];
      if (examples === undefined) continue; // reported by the test above
      await t.test(key, async () => {
        for (const [via, example] of VIAS.flatMap((v) => [examples].flat().map((e) => [v, e] as const))) {
          const request = await example(ctx(via));
          const answer = await api.send(via, request);
          assert.ok(answer.status >= 200 && answer.status < 300, `${via} ${request.method} ${request.url}: ${answer.status} ${answer.bytes.toString().slice(0, 500)}`);
          if (request.status !== undefined) assert.equal(answer.status, request.status, `${via} ${request.method} ${request.url}`);
          conforms(api, key, answer, `${via} ${request.method} ${request.url}`);
        }
      });
    }
  });

  it('answers a refusal of each resource family with a documented 4xx whose body matches the documented error schema', async (t) => {
    const tags = new Set([...api.operations.values()].filter((op) => Object.keys(op.responses).some((s) => s.startsWith('4'))).flatMap((op) => op.tags ?? []));
    const uncovered = [...tags].filter((tag) => REFUSALS[tag] === undefined && NO_REFUSAL[tag] === undefined);
    assert.deepEqual(uncovered, [], `resource families (tags) with documented refusals but no example in REFUSALS: ${uncovered.join(', ')}`);
    for (const [tag, { op, example }] of Object.entries(REFUSALS)) {
      await t.test(`${tag}: ${op}`, async () => {
        assert.ok(api.operations.get(op)?.tags?.includes(tag), `${op} is an operation of ${tag}`);
        for (const via of VIAS) {
          const request = await example(ctx(via));
          const answer = await api.send(via, request);
          assert.ok(answer.status >= 400 && answer.status < 500, `${via} ${request.method} ${request.url}: ${answer.status} ${answer.bytes.toString().slice(0, 500)}`);
          conforms(api, op, answer, `${via} ${request.method} ${request.url}`);
        }
      });
    }
  });
});
