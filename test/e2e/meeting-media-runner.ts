/**
 * A whole meeting with real media (issue 19), run by meeting-media.test.ts inside the peers' namespace of a JanusNetns
 * (`ip netns exec NS node dist/test/e2e/meeting-media-runner.js`), the Janus nodes being in the other namespace. The
 * softswitch runs in this process (startApiServer: SQLite, HTTP on loopback) with `meetings.janus` naming the nodes
 * over the veth pair, and everything goes through its HTTP API, as apps do: the participants are libwebrtc peers
 * (test/helpers/janus-peer.ts) that talk Janus's own API with the grant their join answered (url, token, room, feed).
 *
 * The steps, with the settings of MEETING_MEDIA_CONFIG (JSON, see MeetingMediaConfig); each fills its part of the
 * result, and a step that cannot go on ends the run with `{ error }`:
 *   1. alice creates a meeting with a password, the lobby on and recording allowed;
 *   2. bob's wrong password; bob, carol and a guest wait in the lobby and alice admits them; a second guest is denied;
 *   3. the four publish a microphone (Opus) and a small camera (VP8 320x180, 15 fps), report their mids, and each
 *      subscribes to the three others in ONE PeerConnection; after measureMs, what each received of each;
 *   4. bob shares a screen (a second publisher handle with his token and his grant's screenFeedId) and the three others
 *      add it to their live PeerConnections (`update`);
 *   5. alice mutes everyone's audio (mute-all, ask to unmute): what each subscriber received over a window after it;
 *      dave, a late joiner, is admitted, publishes and reports his mids, alice adds him, and what she received of him
 *      over a window; the mute-all is lifted and each participant unmutes itself (guests too);
 *   6. alice kicks carol: whether Janus opens a new session with carol's token, and where carol's rejoin lands;
 *   7. two breakout rooms: alice and bob in room 1, the guest and dave in room 2; each re-joins the room its move
 *      named (and its poll answers), publishes and subscribes to its partner; then the rooms close and all four are
 *      back in the main room, subscribed to each other;
 *   8. alice records the meeting for recordMs, the participants leave and she stops it; the recording's files,
 *      downloaded into outDir;
 *   9. the meeting's history;
 *  10. with `failover`: the four re-join the main room with media, every participant listens to its event stream, the
 *      runner writes `readyFile` and the test kills the first node (SIGKILL); each participant's `reconnect` event (and its poll) name the second node, where all four
 *      re-join, publish and subscribe again, and what they received there.
 *
 * The runner does not judge: it prints `MEETING-MEDIA-RESULT {json}` and the test asserts on it. It exits with
 * process.exit() and kills itself after MEETING_MEDIA_RUNNER_TIMEOUT_MS whatever happens.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { JanusClient, JanusError, type JanusGrant, type JanusSession } from '../../conference/index.js';
import { type ApiAnswer, type ApiServer, conforms, startApiServer } from '../helpers/api-client.js';
import {
  type Publisher, type Subscriber, type SubscriberReport, addFeeds, camera, microphone, onCleanup, publish, runTaggedMain, subscribe, subscriberReport,
} from '../helpers/janus-peer.js';
import type { WrtcTrack } from '../../support/wrtc.js';

/** The participants; gus is the guest who is denied. */
export type Name = 'alice' | 'bob' | 'carol' | 'guest' | 'dave' | 'gus';
type People = Record<Exclude<Name, 'gus'>, Member>;

export interface MeetingMediaConfig {
  /** meetings.janus: `ws://10.231.19.1:PORT` URLs; the first node records into its recordingDir. */
  nodes: Array<{ url: string; adminUrl: string; adminSecret: string; recordingDir?: string | undefined }>;
  /** How long media flows before each measurement. */
  measureMs: number;
  recordMs: number;
  /** Where step 8 writes the recording's downloaded files. */
  outDir: string;
  /** Step 10: the focus's health checks (meetings.healthIntervalMs, meetings.downAfter), and the file that tells the test to kill node 1. */
  failover?: { readyFile: string; healthIntervalMs: number; downAfter: number } | undefined;
}

/** What a subscriber received of one publisher's medium over a window (differences of its counters). */
export interface WindowCount {
  subscriber: string;
  publisher: string | undefined;
  kind: 'audio' | 'video';
  packets: number;
  frames: number;
}

export interface HistoryEntry { kind: string; actor?: string; participantId?: string; detail?: string }
export interface RecordedFile { participantId?: string; feedId?: number; medium: string; contentType: string; size: number; fileId: string }
/** A recording's file as the runner downloaded it: where, and the download's status. */
export type DownloadedFile = RecordedFile & { path: string; downloaded: number };

export interface MeetingMediaResult {
  meeting: string;
  /** Participant ids by name (gus: the denied guest). */
  participants: Record<string, string>;
  /** What the lobby did: answers' statuses and the states each one reached. */
  entry: { wrongPassword: number; joined: Record<string, string>; decided: Record<string, string> };
  /** Step 3: each of the four, subscribed to the three others. */
  main: SubscriberReport[];
  /** Step 4: alice, carol and the guest after adding bob's screen; the screen's feed. */
  screen: { feed: number; granted: number; subscribers: SubscriberReport[] } | undefined;
  /** Step 5. */
  mute: { status: number; window: WindowCount[]; daveStreams: Record<string, unknown>; dave: WindowCount[]; lifted: number; unmuted: Record<string, number> } | undefined;
  /** Step 6: the kick's status, Janus's answer to a new session with carol's token, and the state of her rejoin. */
  kick: { status: number; newSession: string; rejoin: string } | undefined;
  /** Step 7. */
  breakout: {
    opened: number;
    moves: Array<{ name: string; breakout: number; room: number; polledRoom: number | undefined; polledBreakout: number | undefined }>;
    rooms: SubscriberReport[];
    closed: number;
    mainRoom: number;
    polledRooms: Array<number | undefined>;
    back: SubscriberReport[];
  } | undefined;
  /** Step 8: the statuses of start and stop, the session's files and where each was downloaded. */
  recording: { started: number; stopped: number; stopMs: number; files: DownloadedFile[] } | undefined;
  history: HistoryEntry[];
  failover?: {
    /** The four back in the main room, subscribed to each other, before the node dies; the Janus URL each was on. */
    before: SubscriberReport[];
    urlsBefore: string[];
    /** Each participant's `reconnect` event, and its poll after. */
    reconnects: Array<{ name: string; reason: string | undefined; url: string | undefined; room: number | undefined; polledUrl: string | undefined }>;
    /** When the first `participant` event arrived on each stream (it is sent at once): ms after opening it. */
    firstEventMs: Array<number | undefined>;
    /** ms from the test's kill signal (readyFile written) to the last reconnect event. */
    toldMs: number;
    rejoined: SubscriberReport[];
  };
  cpuMs: number;
  elapsedMs: number;
  error?: string;
}

const RUNNER_TIMEOUT_MS = Number(process.env.MEETING_MEDIA_RUNNER_TIMEOUT_MS ?? 100_000);
const PASSWORD = 'meet-s3cret';
const GUEST_GRANT = 'urn:softswitch:meeting-guest';
/** After a moderation, before a window is counted: packets in flight, and new m-lines' first keyframes. */
const SETTLE_MS = 500;
const WINDOW_MS = 2000;
const FAILOVER_TIMEOUT_MS = 20_000;
/** The recording's stop converts 8 files, one janus-pp-rec after the other. */
const STOP_TIMEOUT_MS = 60_000;
/** config.measureMs, for regroup. */
let measureMs = 3000;

interface Admission { participant: { id: string; state: string }; state?: string; janus?: JanusGrant; breakout?: number }

/** One participant: its API token, its row, and what it has open on Janus. */
interface Member {
  name: Name;
  access: string;
  pid: string;
  grant: JanusGrant | undefined;
  tracks: WrtcTrack[];
  client?: JanusClient | undefined;
  session?: JanusSession | undefined;
  publisher?: Publisher | undefined;
  screen?: Publisher | undefined;
  subscriber?: Subscriber | undefined;
}

let api: ApiServer;
let meeting = '';
const m = (path = ''): string => `/v1/meetings/${meeting}${path}`;

/** Sends over HTTP and checks the answer against the API document's `operation` (an undocumented answer is an error). */
async function call(token: string | null, method: string, url: string, operation: string, json?: unknown, timeoutMs?: number): Promise<ApiAnswer> {
  const answer = await api.send('http', { method, url, token, json, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  conforms(api, operation, answer, `${method} ${url}`);
  return answer;
}

/** The answer's JSON; anything but `status` ends the run. */
function want<T>(answer: ApiAnswer, status = 200, what = ''): T {
  if (answer.status !== status) throw new Error(`${what} answered ${answer.status}, not ${status}: ${answer.bytes.toString().slice(0, 500)}`);
  return answer.json as T;
}

const poll = async (who: Member): Promise<Admission> =>
  want<Admission>(await call(who.access, 'GET', m(`/participants/${who.pid}`), 'GET /v1/meetings/{id}/participants/{pid}'), 200, `${who.name}'s poll`);

// ---- a participant on Janus ------------------------------------------------------------------------------

/** Opens a session on the grant's node (once), publishes the participant's tracks in `room` with its feed id, and reports its mids. */
async function enter(who: Member, room: number): Promise<Record<string, unknown>> {
  const grant = who.grant;
  if (grant === undefined) throw new Error(`${who.name} has no Janus grant`);
  if (who.client === undefined) {
    const client = await JanusClient.connect({ url: grant.url, token: grant.token });
    onCleanup(() => client.close());
    who.client = client;
    who.session = await client.createSession();
  }
  who.publisher = await publish(who.session!, room, who.name, who.tracks, { id: grant.feedId, token: grant.token });
  const mid = (type: string): string | undefined => who.publisher!.report.streams.find((s) => s.type === type)?.mid;
  const answer = await call(who.access, 'PUT', m(`/participants/${who.pid}/streams`), 'PUT /v1/meetings/{id}/participants/{pid}/streams', { audioMid: mid('audio'), videoMid: mid('video') });
  return want<Record<string, unknown>>(answer, 200, `${who.name}'s streams`);
}

/** Subscribes `who` to the others' feeds in ONE PeerConnection. */
async function watch(who: Member, room: number, others: Member[]): Promise<void> {
  who.subscriber = await subscribe(who.session!, room, who.name, others.map((o) => o.grant!.feedId), who.grant!.token);
}

/** Closes everything the participant has open on Janus (its PeerConnections and session): it left the room. */
async function leave(who: Member): Promise<void> {
  for (const p of [who.publisher, who.screen]) p?.pc.close();
  who.subscriber?.pc.close();
  const client = who.client;
  Object.assign(who, { client: undefined, session: undefined, publisher: undefined, screen: undefined, subscriber: undefined });
  await client?.close();
}

const reports = (members: Member[]): Promise<SubscriberReport[]> => Promise.all(members.map((who) => subscriberReport(who.subscriber!)));

/** What each subscriber received of each stream between two reports. */
function counted(before: SubscriberReport[], after: SubscriberReport[]): WindowCount[] {
  return after.flatMap((sub) => sub.streams.map((s) => {
    const was = before.find((b) => b.name === sub.name)?.streams.find((b) => b.mid === s.mid);
    return { subscriber: sub.name, publisher: s.feedDisplay, kind: s.kind, packets: s.packetsReceived - (was?.packetsReceived ?? 0), frames: s.framesDecoded - (was?.framesDecoded ?? 0) };
  }));
}

async function window(members: Member[]): Promise<WindowCount[]> {
  const before = await reports(members);
  await sleep(WINDOW_MS);
  return counted(before, await reports(members));
}

/** Everyone leaves, enters `room` and subscribes to the others of `groups` (each group a room of its own). */
async function regroup(groups: Array<{ room: number; members: Member[] }>): Promise<SubscriberReport[]> {
  const all = groups.flatMap((g) => g.members);
  for (const who of all) await leave(who);
  // every publisher first: a subscription names feeds that must exist
  for (const g of groups) for (const who of g.members) await enter(who, g.room);
  for (const g of groups) for (const who of g.members) await watch(who, g.room, g.members.filter((o) => o !== who));
  await sleep(measureMs);
  return reports(all);
}

// ---- the steps -------------------------------------------------------------------------------------------

/** A participant with its microphone and camera (small: 4 peers each decode 3 others on 2 cores); gus never publishes. */
function member(name: Name, access: string): Member {
  return { name, access, pid: '', grant: undefined, tracks: name === 'gus' ? [] : [microphone(), camera(320, 180, 15)] };
}

async function guestToken(displayName: string): Promise<string> {
  const answer = await call(null, 'POST', '/v1/auth/token', 'POST /v1/auth/token', { grant_type: GUEST_GRANT, meeting, display_name: displayName });
  return want<{ access_token: string }>(answer, 200, `the guest grant for ${displayName}`).access_token;
}

/** Step 2: bob's wrong password, the lobby, three admissions and a denial. */
async function lobby(result: MeetingMediaResult, people: People, gus: Member): Promise<void> {
  const join = (who: Member, password?: string): Promise<ApiAnswer> =>
    call(who.access, 'POST', m('/join'), 'POST /v1/meetings/{id}/join', { displayName: who.name, ...(password === undefined ? {} : { password }) });
  result.entry.wrongPassword = (await join(people.bob, 'not-the-password')).status;
  for (const who of [people.alice, people.bob, people.carol, people.guest, gus]) {
    const admission = want<Admission>(await join(who, who.name === 'alice' ? undefined : PASSWORD), 200, `${who.name}'s join`);
    who.pid = admission.participant.id;
    result.participants[who.name] = who.pid;
    result.entry.joined[who.name] = admission.participant.state;
  }
  for (const who of [people.bob, people.carol, people.guest]) want(await call(people.alice.access, 'POST', m(`/participants/${who.pid}/admit`), 'POST /v1/meetings/{id}/participants/{pid}/admit'), 200, `${who.name}'s admission`);
  want(await call(people.alice.access, 'POST', m(`/participants/${gus.pid}/deny`), 'POST /v1/meetings/{id}/participants/{pid}/deny'), 200, 'the denial');
  for (const who of [people.alice, people.bob, people.carol, people.guest, gus]) {
    const admission = await poll(who);
    who.grant = admission.janus;
    result.entry.decided[who.name] = admission.participant.state;
  }
}

/** Step 5: mute-all audio, a window; dave joins late; the mute-all lifted. */
async function muteAll(result: MeetingMediaResult, people: People, inRoom: Member[], room: number): Promise<void> {
  const { alice, dave } = people;
  const status = (await call(alice.access, 'POST', m('/mute-all'), 'POST /v1/meetings/{id}/mute-all', { media: 'audio', allowUnmute: false })).status;
  await sleep(SETTLE_MS);
  const muted = await window(inRoom);
  const admission = want<Admission>(await call(dave.access, 'POST', m('/join'), 'POST /v1/meetings/{id}/join', { displayName: 'dave', password: PASSWORD }), 200, 'dave\'s join');
  dave.pid = admission.participant.id;
  result.participants.dave = dave.pid;
  want(await call(alice.access, 'POST', m(`/participants/${dave.pid}/admit`), 'POST /v1/meetings/{id}/participants/{pid}/admit'), 200, 'dave\'s admission');
  dave.grant = (await poll(dave)).janus;
  const daveStreams = await enter(dave, room);
  await addFeeds(alice.subscriber!, [dave.grant!.feedId]);
  await sleep(SETTLE_MS);
  const ofDave = (await window([alice])).filter((c) => c.publisher === 'dave');
  const lifted = (await call(alice.access, 'POST', m('/mute-all'), 'POST /v1/meetings/{id}/mute-all', { media: 'audio', mute: false })).status;
  // lifting it turns nobody's microphone on: each unmutes itself, as its app would when its user asks
  const unmuted: Record<string, number> = {};
  for (const who of [...inRoom, dave]) {
    unmuted[who.name] = (await call(who.access, 'POST', m(`/participants/${who.pid}/mute`), 'POST /v1/meetings/{id}/participants/{pid}/mute', { audio: false })).status;
  }
  result.mute = { status, window: muted, daveStreams, dave: ofDave, lifted, unmuted };
}

/** Step 6: carol kicked; her token on Janus; her rejoin. */
async function kick(result: MeetingMediaResult, people: People): Promise<void> {
  const { alice, carol } = people;
  const status = (await call(alice.access, 'DELETE', m(`/participants/${carol.pid}`), 'DELETE /v1/meetings/{id}/participants/{pid}')).status;
  await leave(carol);
  let newSession = 'accepted';
  try {
    const client = await JanusClient.connect({ url: carol.grant!.url, token: carol.grant!.token });
    onCleanup(() => client.close());
    await client.createSession();
  } catch (err) {
    newSession = err instanceof JanusError ? err.code : String(err);
  }
  const rejoin = want<Admission>(await call(carol.access, 'POST', m('/join'), 'POST /v1/meetings/{id}/join', { displayName: 'carol', password: PASSWORD }), 200, 'carol\'s rejoin');
  result.kick = { status, newSession, rejoin: rejoin.participant.state };
}

/** Step 7: two breakout rooms (alice and bob, the guest and dave), then back. */
async function breakouts(result: MeetingMediaResult, people: People, mainRoom: number): Promise<void> {
  const { alice, bob, guest, dave } = people;
  const opened = (await call(alice.access, 'POST', m('/breakouts'), 'POST /v1/meetings/{id}/breakouts', { rooms: 2 })).status;
  const moves: NonNullable<MeetingMediaResult['breakout']>['moves'] = [];
  for (const [who, n] of [[alice, 1], [bob, 1], [guest, 2], [dave, 2]] as const) {
    const move = want<{ breakout: number; room: number }>(
      await call(alice.access, 'PUT', m(`/participants/${who.pid}/breakout`), 'PUT /v1/meetings/{id}/participants/{pid}/breakout', { room: n }), 200, `${who.name}'s move`);
    const polled = await poll(who);
    moves.push({ name: who.name, breakout: move.breakout, room: move.room, polledRoom: polled.janus?.room, polledBreakout: polled.breakout });
  }
  const roomOf = (who: Member): number => moves.find((x) => x.name === who.name)!.room;
  const rooms = await regroup([{ room: roomOf(alice), members: [alice, bob] }, { room: roomOf(guest), members: [guest, dave] }]);
  const closed = (await call(alice.access, 'DELETE', m('/breakouts'), 'DELETE /v1/meetings/{id}/breakouts')).status;
  const polledRooms: Array<number | undefined> = [];
  for (const who of [alice, bob, guest, dave]) polledRooms.push((await poll(who)).janus?.room);
  const back = await regroup([{ room: mainRoom, members: [alice, bob, guest, dave] }]);
  result.breakout = { opened, moves, rooms, closed, mainRoom, polledRooms, back };
}

/**
 * Step 8: recorded for recordMs; each file of the session downloaded by alice (the owner) into outDir. The stop
 * converts every file (janus-pp-rec) before it answers: the participants leave first, their decoders would starve it.
 */
async function recording(result: MeetingMediaResult, alice: Member, inRoom: Member[], config: MeetingMediaConfig): Promise<void> {
  const started = (await call(alice.access, 'POST', m('/recording'), 'POST /v1/meetings/{id}/recording')).status;
  await sleep(config.recordMs);
  for (const who of inRoom) await leave(who);
  const stopAt = performance.now();
  const stop = await call(alice.access, 'DELETE', m('/recording'), 'DELETE /v1/meetings/{id}/recording', undefined, STOP_TIMEOUT_MS);
  const stopMs = Math.round(performance.now() - stopAt);
  const files: DownloadedFile[] = [];
  for (const f of (stop.status === 200 ? (stop.json as { files: RecordedFile[] }).files : [])) {
    const answer = await api.send('http', { method: 'GET', url: `/v1/files/${f.fileId}`, token: alice.access });
    const path = join(config.outDir, `${f.participantId ?? 'unknown'}-${f.medium}-${f.fileId}`);
    writeFileSync(path, answer.bytes);
    files.push({ ...f, path, downloaded: answer.status });
  }
  result.recording = { started, stopped: stop.status, stopMs, files };
}

// ---- step 10: a node lost ---------------------------------------------------------------------------------

interface EventStream { events: Array<{ event: string; data: Record<string, unknown>; at: number }>; openedAt: number }

/** GET …/participants/{pid}/events (text/event-stream), its events collected as they come. */
async function listen(who: Member): Promise<EventStream> {
  const stream: EventStream = { events: [], openedAt: performance.now() };
  const abort = new AbortController();
  onCleanup(() => abort.abort());
  const res = await fetch(`${api.base}${m(`/participants/${who.pid}/events`)}`, { headers: { authorization: `Bearer ${who.access}`, accept: 'text/event-stream' }, signal: abort.signal });
  if (res.status !== 200 || res.body === null) throw new Error(`${who.name}'s event stream answered ${res.status}: ${await res.text()}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  void (async () => {
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
        const event = /^event: ?(.*)$/m.exec(block)?.[1]?.trim() ?? 'message';
        const data = [...block.matchAll(/^data: ?(.*)$/gm)].map((x) => x[1]).join('\n');
        if (data !== '') stream.events.push({ event, data: JSON.parse(data) as Record<string, unknown>, at: performance.now() });
      }
    }
  })().catch(() => undefined); // aborted at the end of the run
  return stream;
}

async function failover(result: MeetingMediaResult, members: Member[], options: NonNullable<MeetingMediaConfig['failover']>, mainRoom: number): Promise<void> {
  // back in the room, media flowing, when the node dies
  const before = await regroup([{ room: mainRoom, members }]);
  const urlsBefore = members.map((who) => who.grant!.url);
  const streams = await Promise.all(members.map(listen));
  const deadline = Date.now() + FAILOVER_TIMEOUT_MS;
  const first = (s: EventStream, kind: string): EventStream['events'][number] | undefined => s.events.find((e) => e.event === kind);
  while (streams.some((s) => first(s, 'participant') === undefined) && Date.now() < deadline) await sleep(20);
  const firstEventMs = streams.map((s) => { const e = first(s, 'participant'); return e === undefined ? undefined : Math.round(e.at - s.openedAt); });
  const killAt = performance.now();
  writeFileSync(options.readyFile, 'kill node 1\n');
  while (streams.some((s) => first(s, 'reconnect') === undefined)) {
    if (Date.now() > deadline + FAILOVER_TIMEOUT_MS) throw new Error(`no reconnect event within ${2 * FAILOVER_TIMEOUT_MS} ms: ${JSON.stringify(streams.map((s) => s.events.map((e) => e.event)))}`);
    await sleep(50);
  }
  const toldMs = Math.round(Math.max(...streams.map((s) => first(s, 'reconnect')!.at)) - killAt);
  const reconnects: NonNullable<MeetingMediaResult['failover']>['reconnects'] = [];
  for (const [i, who] of members.entries()) {
    const data = first(streams[i]!, 'reconnect')!.data as { reason?: string; janus?: JanusGrant };
    const polled = await poll(who);
    reconnects.push({ name: who.name, reason: data.reason, url: data.janus?.url, room: data.janus?.room, polledUrl: polled.janus?.url });
    if (data.janus !== undefined) who.grant = data.janus;
  }
  const rejoined = await regroup([{ room: members[0]!.grant?.room ?? mainRoom, members }]);
  result.failover = { before, urlsBefore, reconnects, firstEventMs, toldMs, rejoined };
}

// ---- the run -----------------------------------------------------------------------------------------------

async function run(config: MeetingMediaConfig, result: MeetingMediaResult): Promise<void> {
  measureMs = config.measureMs;
  const health = config.failover === undefined ? {} : { healthIntervalMs: config.failover.healthIntervalMs, downAfter: config.failover.downAfter };
  api = await startApiServer(['alice', 'bob', 'carol', 'dave'], { meetings: { janus: config.nodes, ...health } });
  // after the stop, which a cleanup cuts short at 3 s (a recording's conversions may still run): its data folder goes anyway
  const dataDir = api.t.dataDir;
  onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
  onCleanup(() => api.stop());
  // step 1
  const users = await Promise.all((['alice', 'bob', 'carol', 'dave'] as const).map(async (name) => member(name, await api.signIn(name))));
  const [alice, bob, carol, dave] = users as [Member, Member, Member, Member];
  const created = await call(alice.access, 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'meeting media', password: PASSWORD, lobby: true, recordingAllowed: true });
  meeting = want<{ id: string }>(created, 201, 'the meeting\'s creation').id;
  result.meeting = meeting;
  const guest = member('guest', await guestToken('guest'));
  const gus = member('gus', await guestToken('gus'));
  const people: People = { alice, bob, carol, guest, dave };
  // step 2
  await lobby(result, people, gus);
  const four = [alice, bob, carol, guest];
  const room = alice.grant?.room;
  if (room === undefined) throw new Error('alice, the owner, has no Janus grant');
  // step 3
  for (const who of four) await enter(who, room);
  for (const who of four) await watch(who, room, four.filter((o) => o !== who));
  await sleep(measureMs);
  result.main = await reports(four);
  // step 4
  bob.screen = await publish(bob.session!, room, 'bob-screen', [camera(640, 360, 5)], { videoDescription: 'screen', token: bob.grant!.token, id: bob.grant!.screenFeedId });
  for (const who of [alice, carol, guest]) await addFeeds(who.subscriber!, [bob.screen.report.id]);
  await sleep(measureMs);
  result.screen = { feed: bob.screen.report.id, granted: bob.grant!.screenFeedId, subscribers: await reports([alice, carol, guest]) };
  // steps 5 to 9
  await muteAll(result, people, four, room);
  await kick(result, people);
  await breakouts(result, people, room);
  await recording(result, alice, [alice, bob, guest, dave], config);
  result.history = want<{ entries: HistoryEntry[] }>(await call(alice.access, 'GET', m('/history?limit=1000'), 'GET /v1/meetings/{id}/history'), 200, 'the history').entries;
  // step 10
  if (config.failover !== undefined) await failover(result, [alice, bob, guest, dave], config.failover, room);
}

async function main(): Promise<void> {
  const result: MeetingMediaResult = {
    meeting: '', participants: {}, entry: { wrongPassword: 0, joined: {}, decided: {} }, main: [], screen: undefined, mute: undefined, kick: undefined,
    breakout: undefined, recording: undefined, history: [], cpuMs: 0, elapsedMs: 0,
  };
  await runTaggedMain('MEETING-MEDIA-RESULT', RUNNER_TIMEOUT_MS, result, () => run(JSON.parse(process.env.MEETING_MEDIA_CONFIG ?? '') as MeetingMediaConfig, result));
}

void main();
