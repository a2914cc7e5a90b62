/**
 * Moderation and history of a meeting, through the REST API of a whole softswitch whose focus drives a real Janus
 * (support/janus.ts). Control plane: participants join the videoroom and publish an SDP offer without media
 * (test/helpers/janus-publisher.ts: Janus creates the publisher's streams from the offer, which `moderate` needs), so Janus's
 * answers to `moderate` and its "moderation" events to the publisher are real. That a muted publisher's audio stops
 * reaching a subscriber is janus-media-moderation.test.ts (real media between network namespaces).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JanusAdmin, JanusClient, VideoRoomAdmin, VIDEOROOM_PLUGIN, type JanusGrant } from '../../conference/index.js';
import { AUDIO_MID, VIDEO_MID, publishWithoutMedia } from '../helpers/janus-publisher.js';
import { API_DOMAIN, type ApiAnswer } from '../helpers/api-client.js';
import type { JanusServer } from '../../support/janus.js';
import { type MeetingTestbed, ok, refused, startMeetingTestbed } from '../helpers/meeting-testbed.js';

type Who = 'alice' | 'bob' | 'carol' | 'dave' | 'erin';
interface Participant { id: string; role: string; state: string }
interface Admission { participant: Participant; state: string; janus?: JanusGrant }
interface Media { participantId: string; audio: string; video: string; audioMid?: string; videoMid?: string }
interface Entry { at: string; kind: string; actor?: string; participantId?: string; detail?: string }
/** A publisher in the room: the moderation events about it that Janus sent its handle, by mid. */
interface Publisher {
  grant: JanusGrant;
  participant: string;
  /** What Janus announced when the streams were reported: the moderation state of each (the focus sends every reported mid to `moderate`). */
  initial: Array<{ mid: string; moderation: string }>;
  /** Those after. */
  moderation: Array<{ mid: string; moderation: string }>;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('meeting moderation on a real Janus: mute, mute-all, lock, roles, end, and the history', { timeout: 120_000 }, () => {
  let bed: MeetingTestbed;
  let janus: JanusServer;
  let janusAdmin: JanusAdmin;
  const tokens: Record<Who, string> = { alice: '', bob: '', carol: '', dave: '', erin: '' };
  const clients: JanusClient[] = [];
  const publishers: Partial<Record<Who, Publisher>> = {};
  let meeting = '';

  const call = (who: Who, method: string, url: string, operation: string, json?: unknown): Promise<ApiAnswer> => bed.call(tokens[who], method, url, operation, json);
  const m = (path = '') => `/v1/meetings/${meeting}${path}`;
  const mute = (who: Who, pid: string, body: Record<string, boolean>) => call(who, 'POST', m(`/participants/${pid}/mute`), 'POST /v1/meetings/{id}/participants/{pid}/mute', body);
  const muteAll = (who: Who, body: Record<string, unknown>) => call(who, 'POST', m('/mute-all'), 'POST /v1/meetings/{id}/mute-all', body);
  const report = (who: Who, pid: string, body: Record<string, string>) => call(who, 'PUT', m(`/participants/${pid}/streams`), 'PUT /v1/meetings/{id}/participants/{pid}/streams', body);
  const role = (who: Who, pid: string, r: string) => call(who, 'PUT', m(`/participants/${pid}/role`), 'PUT /v1/meetings/{id}/participants/{pid}/role', { role: r });
  const join = (who: Who) => call(who, 'POST', m('/join'), 'POST /v1/meetings/{id}/join', {});
  const admit = (who: Who, pid: string) => call(who, 'POST', m(`/participants/${pid}/admit`), 'POST /v1/meetings/{id}/participants/{pid}/admit');
  const history = (who: Who, query = '') => call(who, 'GET', m(`/history${query}`), 'GET /v1/meetings/{id}/history');

  /** Joins the room as a publisher with the grant, publishes audio and video, and reports the mids to the focus. */
  const publish = async (who: Who, admission: Admission): Promise<Publisher> => {
    assert.ok(admission.janus, `${who} is admitted with a grant`);
    const grant = admission.janus;
    const { client, moderation } = await publishWithoutMedia(grant, who);
    clients.push(client);
    ok<Media>(await report(who, admission.participant.id, { audioMid: AUDIO_MID, videoMid: VIDEO_MID }));
    await until(`${who}'s streams announced`, () => moderation.length === 2);
    const publisher: Publisher = { grant, participant: admission.participant.id, initial: moderation.splice(0), moderation };
    publishers[who] = publisher;
    return publisher;
  };
  /** Joins (the owner at once; others through the lobby, admitted by alice) and publishes. */
  const enter = async (who: Who): Promise<Publisher> => {
    let admission = ok<Admission>(await join(who));
    if (admission.state === 'waiting') {
      ok<Participant>(await admit('alice', admission.participant.id));
      admission = ok<Admission>(await call(who, 'GET', m(`/participants/${admission.participant.id}`), 'GET /v1/meetings/{id}/participants/{pid}'));
    }
    return publish(who, admission);
  };
  const refusedByJanus = (grant: JanusGrant) => bed.refusedByJanus(grant);

  before(async () => {
    bed = await startMeetingTestbed(Object.keys(tokens));
    ({ janus, admin: janusAdmin } = bed);
    Object.assign(tokens, bed.tokens);
    const created = await call('alice', 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'moderation test' });
    assert.equal(created.status, 201);
    meeting = String((created.json as { id: string }).id);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await bed?.stop();
  });

  it('a participant that is not a moderator is refused 403 AUTH_ERR_SCOPE for every moderation action, and for another\'s streams', async () => {
    await enter('alice');
    const bob = await enter('bob');
    const carol = await enter('carol');
    refused(await mute('bob', carol.participant, { audio: true }), 403, 'AUTH_ERR_SCOPE');
    refused(await muteAll('bob', { media: 'audio' }), 403, 'AUTH_ERR_SCOPE');
    refused(await call('bob', 'POST', m('/lock'), 'POST /v1/meetings/{id}/lock'), 403, 'AUTH_ERR_SCOPE');
    refused(await call('bob', 'DELETE', m('/lock'), 'DELETE /v1/meetings/{id}/lock'), 403, 'AUTH_ERR_SCOPE');
    refused(await call('bob', 'POST', m('/end'), 'POST /v1/meetings/{id}/end'), 403, 'AUTH_ERR_SCOPE');
    refused(await role('bob', carol.participant, 'moderator'), 403, 'AUTH_ERR_SCOPE');
    refused(await role('bob', bob.participant, 'moderator'), 403, 'AUTH_ERR_SCOPE');
    refused(await history('bob'), 403, 'AUTH_ERR_SCOPE');
    refused(await report('bob', carol.participant, { audioMid: AUDIO_MID }), 403, 'AUTH_ERR_SCOPE');
    // an admitted participant sees the moderation state; nothing was muted or locked by the refusals
    assert.deepEqual(ok(await call('bob', 'GET', m('/moderation'), 'GET /v1/meetings/{id}/moderation')), { locked: false, audio: 'none', video: 'none' });
    assert.deepEqual([bob.moderation, carol.moderation], [[], []]);
    assert.deepEqual(bob.initial, [{ mid: AUDIO_MID, moderation: 'unmuted' }, { mid: VIDEO_MID, moderation: 'unmuted' }], 'reported streams start unmuted');
  });

  it('the owner mutes bob\'s audio: Janus accepts `moderate` and tells bob\'s handle; bob cannot unmute himself (403), a moderator can', async () => {
    const bob = publishers.bob!;
    const muted = ok<Media>(await mute('alice', bob.participant, { audio: true }));
    assert.deepEqual([muted.audio, muted.video, muted.audioMid], ['hard', 'none', AUDIO_MID]);
    await until('bob\'s moderation event', () => bob.moderation.length === 1);
    assert.deepEqual(bob.moderation, [{ mid: AUDIO_MID, moderation: 'muted' }]);
    assert.match(refused(await mute('bob', bob.participant, { audio: false }), 403, 'AUTH_ERR_SCOPE'), /muted by a moderator/);
    assert.equal(ok<Media>(await mute('alice', bob.participant, { audio: false })).audio, 'none');
    await until('bob\'s unmute event', () => bob.moderation.length === 2);
    assert.deepEqual(bob.moderation[1], { mid: AUDIO_MID, moderation: 'unmuted' });
    // muting oneself is soft: one's own unmute is allowed
    assert.equal(ok<Media>(await mute('bob', bob.participant, { video: true })).video, 'soft');
    assert.equal(ok<Media>(await mute('bob', bob.participant, { video: false })).video, 'none');
    await until('bob\'s video events', () => bob.moderation.length === 4);
    assert.deepEqual(bob.moderation.slice(2).map((e) => [e.mid, e.moderation]), [[VIDEO_MID, 'muted'], [VIDEO_MID, 'unmuted']]);
  });

  it('a reported mid that the publisher has not published is refused 409 API_ERR_CONFLICT: Janus checks it', async () => {
    ok(await muteAll('alice', { media: 'video', allowUnmute: true }));
    refused(await report('carol', publishers.carol!.participant, { audioMid: AUDIO_MID, videoMid: 'nope' }), 409, 'API_ERR_CONFLICT');
    ok(await muteAll('alice', { media: 'video', mute: false }));
  });

  it('mute-all of audio with "ask to unmute": everyone in is muted, a late joiner is muted as soon as it reports its streams and cannot unmute itself until lifted', async () => {
    const { bob, carol } = publishers;
    const bobBefore = bob!.moderation.length;
    assert.deepEqual(ok(await muteAll('alice', { media: 'audio', allowUnmute: false })), { locked: false, audio: 'hard', video: 'none' });
    await until('bob and carol muted', () => bob!.moderation.length > bobBefore && carol!.moderation.some((e) => e.mid === AUDIO_MID && e.moderation === 'muted'));
    assert.deepEqual(bob!.moderation.slice(bobBefore), [{ mid: AUDIO_MID, moderation: 'muted' }]);
    const dave = await enter('dave');
    assert.deepEqual(dave.initial, [{ mid: AUDIO_MID, moderation: 'muted' }, { mid: VIDEO_MID, moderation: 'unmuted' }], 'dave\'s audio is muted as he reports it');
    assert.equal(ok<Media>(await call('dave', 'GET', m('/moderation'), 'GET /v1/meetings/{id}/moderation')).audio, 'hard');
    assert.match(refused(await mute('dave', dave.participant, { audio: false }), 403, 'AUTH_ERR_SCOPE'), /ask one to unmute you/);
    // lifted: nobody is unmuted by it, but dave may now unmute himself
    assert.deepEqual(ok(await muteAll('alice', { media: 'audio', mute: false })), { locked: false, audio: 'none', video: 'none' });
    assert.equal(dave.moderation.length, 0, 'lifting the mute-all turns nobody\'s microphone on');
    assert.equal(ok<Media>(await mute('dave', dave.participant, { audio: false })).audio, 'none');
    await until('dave unmuted', () => dave.moderation.length === 1);
    assert.deepEqual(dave.moderation, [{ mid: AUDIO_MID, moderation: 'unmuted' }]);
  });

  it('lock: a new join is refused 403 (the owner still gets in); unlock: it is allowed', async () => {
    assert.equal(ok<{ locked: boolean }>(await call('alice', 'POST', m('/lock'), 'POST /v1/meetings/{id}/lock')).locked, true);
    assert.match(refused(await join('erin'), 403, 'AUTH_ERR_SCOPE'), /locked/);
    assert.equal(ok<Admission>(await join('alice')).state, 'admitted');
    assert.equal(ok<{ locked: boolean }>(await call('alice', 'DELETE', m('/lock'), 'DELETE /v1/meetings/{id}/lock')).locked, false);
    assert.equal(ok<Admission>(await join('erin')).state, 'waiting');
  });

  it('make moderator: carol can then admit erin from the lobby and mute; revoked, she is refused again; the owner\'s role does not change', async () => {
    const carol = publishers.carol!;
    const erin = ok<{ participants: Array<Participant & { user?: string }> }>(await call('alice', 'GET', m('/participants'), 'GET /v1/meetings/{id}/participants'))
      .participants.find((p) => p.state === 'waiting');
    assert.ok(erin);
    refused(await admit('carol', erin.id), 403, 'AUTH_ERR_SCOPE');
    assert.equal(ok<Participant>(await role('alice', carol.participant, 'moderator')).role, 'moderator');
    assert.equal(ok<Participant>(await admit('carol', erin.id)).state, 'admitted');
    assert.equal(ok<Media>(await mute('carol', publishers.bob!.participant, { video: true })).video, 'hard');
    assert.equal(ok<Participant>(await role('carol', carol.participant, 'participant')).role, 'participant');
    refused(await mute('carol', publishers.bob!.participant, { video: false }), 403, 'AUTH_ERR_SCOPE');
    refused(await role('alice', publishers.alice!.participant, 'participant'), 409, 'API_ERR_CONFLICT');
  });

  it('end: every token is refused by Janus, the room is gone, and everyone has left', async () => {
    const grants = Object.values(publishers).map((p) => p.grant);
    for (const g of grants) assert.equal(await refusedByJanus(g), false);
    assert.deepEqual(ok(await call('alice', 'POST', m('/end'), 'POST /v1/meetings/{id}/end')), { ended: 5 });
    for (const g of grants) assert.equal(await refusedByJanus(g), true, 'a token of the ended meeting is refused');
    assert.ok(!(await janusAdmin.listTokens()).some((t) => grants.some((g) => g.token === t.token)));
    // the test's own token, to look at the rooms
    await janusAdmin.addToken('moderation-test-observer', [VIDEOROOM_PLUGIN]);
    const client = await JanusClient.connect({ url: janus.url, token: 'moderation-test-observer' });
    clients.push(client);
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    assert.equal(await rooms.exists(grants[0]!.room), false, 'the room is gone');
    const { participants } = ok<{ participants: Participant[] }>(await call('alice', 'GET', m('/participants'), 'GET /v1/meetings/{id}/participants'));
    assert.deepEqual(new Set(participants.map((p) => p.state)), new Set(['left']));
    assert.deepEqual(ok(await call('alice', 'GET', m('/moderation'), 'GET /v1/meetings/{id}/moderation')), { locked: false, audio: 'none', video: 'none' });
  });

  it('the history lists all of it in time order, and pages with a cursor to the same list', async () => {
    const { entries, next } = ok<{ entries: Entry[]; next?: string }>(await history('alice'));
    assert.equal(next, undefined);
    const times = entries.map((e) => Date.parse(e.at));
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'oldest first');
    const kinds = entries.map((e) => e.kind);
    assert.equal(kinds[0], 'joined');
    assert.equal(kinds[1], 'started', 'the first admission starts the meeting');
    assert.equal(kinds[kinds.length - 1], 'ended');
    const moderation = entries.filter((e) => !['joined', 'admitted', 'left', 'kicked', 'denied', 'started'].includes(e.kind)).map((e) => `${e.kind} ${e.detail ?? ''}`.trim());
    assert.deepEqual(moderation, [
      'muted audio', 'unmuted audio', 'muted video', 'unmuted video', 'mute-all video', 'unmute-all video', 'mute-all audio askToUnmute', 'unmute-all audio', 'unmuted audio',
      'locked', 'unlocked', 'role moderator', 'muted video', 'role participant', 'ended 5 participants',
    ]);
    const bobMuted = entries.find((e) => e.kind === 'muted');
    assert.deepEqual([bobMuted?.actor, bobMuted?.participantId], [`alice@${API_DOMAIN}`, publishers.bob!.participant]);
    assert.equal(kinds.filter((k) => k === 'left').length, 5);
    assert.ok(kinds.indexOf('admitted', kinds.indexOf('role')) > kinds.indexOf('role'), 'erin admitted after carol became a moderator');
    // paging: three at a time gives the same list
    const paged: Entry[] = [];
    let cursor: string | undefined;
    do {
      const page = ok<{ entries: Entry[]; next?: string }>(await history('alice', `?limit=3${cursor === undefined ? '' : `&cursor=${cursor}`}`));
      paged.push(...page.entries);
      cursor = page.next;
    } while (cursor !== undefined);
    assert.deepEqual(paged, entries);
    refused(await history('alice', '?cursor=bm90LWEtY3Vyc29y'), 400, 'API_ERR_INVALID');
  });
});
