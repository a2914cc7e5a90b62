/**
 * A whole meeting with real media, through the API (issue 19's test: "real parts: Janus + libwebrtc peers"). Two Janus
 * nodes run in one network namespace, and in the other (joined by the veth pair of support/janus-netns.ts, no
 * packet leaves it) meeting-media-runner.ts runs a softswitch in-process whose `meetings.janus` names both nodes, and
 * the participants: libwebrtc peers that join through the API and talk Janus's API with the grants it answers. The
 * runner drives the meeting — lobby, media between four, a screen share, mute-all and a late joiner, a kick, breakout
 * rooms and back, a recording, the history — and prints what it measured; the assertions are here.
 * MEETING_MEDIA_VERBOSE=1 prints the runner's whole report.
 *
 * Whatever happens, the runner is killed after RUNNER_TIMEOUT_MS, both Janus nodes are stopped, both namespaces are
 * deleted (which kills what is left in them and removes the veth pair) and the temp folder (the runner's TMPDIR too)
 * is removed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { requireTool } from '../../support/tools.js';
import { JanusNetns } from '../../support/janus-netns.js';
import type { StreamReport, SubscriberReport } from '../helpers/janus-peer.js';
import { startJanus, type JanusServer } from '../../support/janus.js';
import { runTagged } from '../helpers/runner.js';
import type { DownloadedFile, MeetingMediaConfig, MeetingMediaResult, WindowCount } from './meeting-media-runner.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'meeting-media-runner.js');
const RUNNER_TIMEOUT_MS = 110_000;
/** How long media flows before each measurement. */
const MEASURE_MS = 3000;
const RECORD_MS = 3000;
/** 15 fps cameras and 50 audio packets a second, over MEASURE_MS: a third of it shows media that keeps flowing. */
const MIN_VIDEO_FRAMES = 15;
const MIN_AUDIO_PACKETS = 50;
/** The screen sends 5 fps. */
const MIN_SCREEN_FRAMES = 5;
/** A muted stream over a window: nothing, but a packet that was in flight. */
const MAX_MUTED_PACKETS = 2;
/** Step 10: a node killed mid-meeting (the runner's `failover`, which needs the focus's health checks and event streams). */
const FAILOVER = true;
/** EBML's magic (a Matroska/WebM file's first element) and a Cluster's id: the blocks that carry frames. */
const EBML = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
const CLUSTER = Buffer.from([0x1f, 0x43, 0xb6, 0x75]);

describe('a meeting with real media through the API: lobby, four participants, screen, mute-all, kick, breakout rooms, recording, history (two Janus nodes, two network namespaces)', { timeout: RUNNER_TIMEOUT_MS + 30_000 }, () => {
  let net: JanusNetns | undefined;
  const nodes: JanusServer[] = [];
  let dir: string | undefined;
  let result: MeetingMediaResult;

  before(async () => {
    requireTool('janus', 'janus');
    requireTool('ip', 'iproute2');
    requireTool('janus-pp-rec', 'janus-tools');
    dir = mkdtempSync(join(tmpdir(), 'softswitch-meeting-media-'));
    net = JanusNetns.create('mmedia');
    const options = { netns: net.server.name, listenAddress: net.serverAddress, iceEnforceList: JanusNetns.VETH };
    nodes.push(await startJanus({ ...options, recordings: true }), await startJanus(options));
    const readyFile = join(dir, 'kill-node-1');
    const config: MeetingMediaConfig = {
      nodes: nodes.map((n) => ({ url: n.url, adminUrl: n.adminUrl, adminSecret: n.adminSecret, recordingDir: n.recordingDir })),
      measureMs: MEASURE_MS, recordMs: RECORD_MS, outDir: dir,
      failover: FAILOVER ? { readyFile, healthIntervalMs: 500, downAfter: 2 } : undefined,
    };
    // the runner's temp folders (its softswitch's data) inside ours: gone with it even if the runner is killed
    const runnerTmp = join(dir, 'tmp');
    mkdirSync(runnerTmp);
    const env = { MEETING_MEDIA_CONFIG: JSON.stringify(config), MEETING_MEDIA_RUNNER_TIMEOUT_MS: String(RUNNER_TIMEOUT_MS - 5000), TMPDIR: runnerTmp };
    const running = runTagged(net.peers.exec(process.execPath, ['--enable-source-maps', RUNNER]), env, 'MEETING-MEDIA-RESULT', RUNNER_TIMEOUT_MS);
    // the runner writes readyFile once every participant listens to its events: node 1 dies then
    let done = false;
    void running.finally(() => (done = true));
    while (FAILOVER && !done && !existsSync(readyFile)) await sleep(20);
    if (FAILOVER && !done) await nodes[0]!.signal('SIGKILL');
    const { result: line, code, stdout, stderr } = await running;
    const logs = nodes.map((n, i) => `janus ${i + 1}:\n${n.logTail()}`).join('\n');
    if (line === undefined) assert.fail(`meeting media runner gave no result (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}\n${logs}`);
    result = JSON.parse(line) as MeetingMediaResult;
    if (process.env.MEETING_MEDIA_VERBOSE === '1') process.stderr.write(`${JSON.stringify(result, null, 1)}\n`);
    if (result.error !== undefined) assert.fail(`meeting media runner failed: ${result.error}\n${stderr}\n${logs}`);
  });

  after(async () => {
    try {
      await Promise.all(nodes.map((n) => n.stop()));
    } finally {
      net?.destroy();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    }
  });

  const pid = (name: string): string => {
    const id = result.participants[name];
    assert.ok(id, `no participant ${name}: ${JSON.stringify(result.participants)}`);
    return id;
  };
  const streamOf = (sub: SubscriberReport, publisher: string, kind: 'audio' | 'video'): StreamReport => {
    const s = sub.streams.find((x) => x.feedDisplay === publisher && x.kind === kind);
    assert.ok(s, `${sub.name} has no ${kind} stream of ${publisher}: ${JSON.stringify(sub.streams.map((x) => [x.feedDisplay, x.kind]))}`);
    return s;
  };
  const seen = (s: StreamReport): string => `packets ${s.packetsReceived}, decoded ${s.framesDecoded} (${s.sinkFrames} at the sink), ${s.frameWidth ?? '?'}x${s.frameHeight ?? '?'} ${s.codec ?? ''}`;
  /** Each subscriber, in one PeerConnection that is connected, decodes the audio and video of each publisher named for it. */
  const decodesEachOther = (reports: SubscriberReport[], others: Record<string, string[]>): void => {
    assert.deepEqual(reports.map((r) => r.name).sort(), Object.keys(others).sort());
    for (const sub of reports) {
      assert.equal(sub.connectionState, 'connected', sub.name);
      assert.deepEqual([...new Set(sub.streams.map((s) => s.feedDisplay))].sort(), [...others[sub.name]!].sort(), `${sub.name} receives exactly its room's others`);
      for (const publisher of others[sub.name]!) {
        const video = streamOf(sub, publisher, 'video');
        const audio = streamOf(sub, publisher, 'audio');
        assert.equal(video.codec, 'video/VP8', `${sub.name} ← ${publisher}: ${seen(video)}`);
        assert.ok(video.framesDecoded > MIN_VIDEO_FRAMES && video.sinkFrames > MIN_VIDEO_FRAMES, `${sub.name} ← ${publisher} video: ${seen(video)}`);
        assert.equal(audio.codec, 'audio/opus', `${sub.name} ← ${publisher}: ${seen(audio)}`);
        assert.ok(audio.packetsReceived > MIN_AUDIO_PACKETS, `${sub.name} ← ${publisher} audio: ${seen(audio)}`);
        // concealment here is mostly the runner's own starvation (4 peers, 12 decoders; the machine's other tests): a bound, not a quality figure
        assert.ok(audio.concealedSamples < audio.totalSamplesReceived / 2, `${sub.name} ← ${publisher} audio: ${audio.concealedSamples} of ${audio.totalSamplesReceived} samples concealed`);
      }
    }
  };
  const everyOther = (names: string[]): Record<string, string[]> => Object.fromEntries(names.map((n) => [n, names.filter((o) => o !== n)]));
  const counts = (window: WindowCount[], kind: 'audio' | 'video'): string => window.filter((c) => c.kind === kind).map((c) => `${c.subscriber}←${c.publisher}: ${kind === 'audio' ? c.packets : c.frames}`).join(', ');

  it('a wrong password is refused (403); bob, carol and a guest wait in the lobby and are admitted, a second guest is denied; the owner enters at once', () => {
    assert.equal(result.entry.wrongPassword, 403);
    assert.deepEqual(result.entry.joined, { alice: 'admitted', bob: 'waiting', carol: 'waiting', guest: 'waiting', gus: 'waiting' });
    assert.deepEqual(result.entry.decided, { alice: 'admitted', bob: 'admitted', carol: 'admitted', guest: 'admitted', gus: 'denied' });
  });

  it('each of the four admitted participants decodes every other one\'s audio (Opus) and video (VP8), all in one PeerConnection', () => {
    decodesEachOther(result.main, everyOther(['alice', 'bob', 'carol', 'guest']));
  });

  it('bob shares a screen (a second feed with his token) and the three others decode it, added to their live PeerConnections', () => {
    assert.ok(result.screen, 'step 4 ran');
    assert.equal(result.screen.feed, result.screen.granted, 'published under the grant\'s screenFeedId (kicked with his camera)');
    for (const sub of result.screen.subscribers) {
      const screen = streamOf(sub, 'bob-screen', 'video');
      assert.equal(screen.feed, result.screen.feed);
      assert.equal(screen.added, true, 'came with an update');
      assert.ok(screen.framesDecoded > MIN_SCREEN_FRAMES, `${sub.name} ← screen: ${seen(screen)}`);
      assert.ok(streamOf(sub, 'bob', 'video').framesDecoded > MIN_VIDEO_FRAMES, `${sub.name} still decodes bob's camera`);
    }
    assert.deepEqual(result.screen.subscribers.map((s) => s.name).sort(), ['alice', 'carol', 'guest']);
  });

  it('mute-all audio: the server stops every publisher\'s audio at every subscriber while their video goes on', () => {
    assert.ok(result.mute, 'step 5 ran');
    assert.equal(result.mute.status, 200);
    const cameras = result.mute.window.filter((c) => c.publisher !== 'bob-screen');
    assert.equal(cameras.filter((c) => c.kind === 'audio').length, 12, 'four subscribers, three audio streams each');
    for (const c of cameras) {
      if (c.kind === 'audio') assert.ok(c.packets <= MAX_MUTED_PACKETS, `audio while muted: ${counts(cameras, 'audio')}`);
      else assert.ok(c.frames > MIN_VIDEO_FRAMES / 2, `video while audio is muted: ${counts(cameras, 'video')}`);
    }
    assert.equal(result.mute.lifted, 200, 'the mute-all is lifted');
    // lifted, it leaves each muted (soft) until it unmutes itself: the breakout rooms below hear everyone again
    assert.deepEqual(result.mute.unmuted, { alice: 200, bob: 200, carol: 200, guest: 200, dave: 200 });
  });

  it('a late joiner is muted by the mute-all once it reports its mids: its audio is not forwarded, its video is', () => {
    assert.ok(result.mute, 'step 5 ran');
    assert.equal(result.mute.daveStreams.audio, 'hard');
    assert.equal(result.mute.daveStreams.video, 'none');
    const audio = result.mute.dave.find((c) => c.kind === 'audio');
    const video = result.mute.dave.find((c) => c.kind === 'video');
    assert.ok(audio && video, JSON.stringify(result.mute.dave));
    assert.ok(audio.packets <= MAX_MUTED_PACKETS, `alice ← dave audio: ${audio.packets} packets`);
    assert.ok(video.frames > MIN_VIDEO_FRAMES / 2, `alice ← dave video: ${video.frames} frames`);
  });

  it('a kicked participant\'s token is refused by Janus (a new session fails), and her rejoin waits in the lobby again', () => {
    assert.deepEqual(result.kick, { status: 200, newSession: 'JANUS_ERR_REFUSED', rejoin: 'waiting' });
  });

  it('breakout rooms: the moves and polls name each pair\'s own videoroom, and media flows between the pair in each room', () => {
    const b = result.breakout;
    assert.ok(b, 'step 7 ran');
    assert.equal(b.opened, 201);
    for (const move of b.moves) assert.deepEqual([move.polledBreakout, move.polledRoom], [move.breakout, move.room], `${move.name}'s poll agrees with its move`);
    const room = (name: string): number => b.moves.find((x) => x.name === name)!.room;
    assert.deepEqual(b.moves.map((x) => [x.name, x.breakout]), [['alice', 1], ['bob', 1], ['guest', 2], ['dave', 2]]);
    assert.equal(room('alice'), room('bob'));
    assert.equal(room('guest'), room('dave'));
    assert.equal(new Set([room('alice'), room('guest'), b.mainRoom]).size, 3, 'two breakout rooms, neither the main room');
    decodesEachOther(b.rooms, { alice: ['bob'], bob: ['alice'], guest: ['dave'], dave: ['guest'] });
  });

  it('closing the breakout rooms brings everyone back to the main room, where media flows between all four again', () => {
    const b = result.breakout;
    assert.ok(b, 'step 7 ran');
    assert.equal(b.closed, 200);
    assert.deepEqual(b.polledRooms, [b.mainRoom, b.mainRoom, b.mainRoom, b.mainRoom]);
    decodesEachOther(b.back, everyOther(['alice', 'bob', 'guest', 'dave']));
  });

  it('the recording has a playable WebM video and an Ogg Opus audio of each participant who published while it ran', () => {
    const rec = result.recording;
    assert.ok(rec, 'step 8 ran');
    assert.deepEqual([rec.started, rec.stopped], [200, 200]);
    for (const name of ['alice', 'bob', 'guest', 'dave']) {
      const files: DownloadedFile[] = rec.files.filter((f) => f.participantId === pid(name));
      const video: DownloadedFile | undefined = files.find((f) => f.medium === 'video');
      const audio: DownloadedFile | undefined = files.find((f) => f.medium === 'audio');
      assert.ok(video && audio, `${name}'s files: ${JSON.stringify(rec.files)}`);
      assert.deepEqual([video.contentType, video.downloaded, audio.contentType, audio.downloaded], ['video/webm', 200, 'audio/ogg; codecs=opus', 200]);
      const webm = readFileSync(video.path);
      assert.deepEqual(webm.subarray(0, 4), EBML, `${name}'s video is EBML`);
      assert.ok(webm.subarray(0, 64).includes(Buffer.from('webm')) && webm.includes(CLUSTER), `${name}'s video: doctype webm with a Cluster (${webm.length} bytes)`);
      const ogg = readFileSync(audio.path);
      assert.ok(ogg.subarray(0, 4).toString('latin1') === 'OggS' && ogg.subarray(0, 64).includes(Buffer.from('OpusHead')), `${name}'s audio is Ogg Opus`);
    }
    assert.ok(rec.files.every((f) => f.participantId !== pid('carol')), 'nothing of carol, kicked before');
  });

  it('the history lists the start, joins, admissions, the denial, mute-all, the kick, the breakout rooms and the recording', () => {
    const kinds = (kind: string, participant?: string): number => result.history.filter((e) => e.kind === kind && (participant === undefined || e.participantId === participant)).length;
    assert.equal(result.history[0]?.kind, 'joined', 'oldest first');
    assert.equal(kinds('started'), 1);
    for (const name of ['alice', 'bob', 'carol', 'guest', 'dave', 'gus']) assert.equal(kinds('joined', pid(name)), 1, `${name} joined`);
    for (const name of ['alice', 'bob', 'carol', 'guest', 'dave']) assert.equal(kinds('admitted', pid(name)), 1, `${name} admitted`);
    assert.equal(kinds('denied', pid('gus')), 1);
    assert.equal(kinds('kicked', pid('carol')), 1);
    assert.equal(kinds('joined'), 7, 'six, and carol\'s rejoin');
    const detail = (kind: string): Array<string | undefined> => result.history.filter((e) => e.kind === kind).map((e) => e.detail);
    assert.deepEqual(detail('mute-all'), ['audio askToUnmute']);
    assert.deepEqual(detail('unmute-all'), ['audio']);
    assert.deepEqual(detail('breakout-open'), ['2 rooms']);
    assert.deepEqual(detail('breakout-move'), ['room 1', 'room 1', 'room 2', 'room 2']);
    assert.deepEqual(detail('breakout-close'), ['4 back']);
    assert.deepEqual(detail('recording'), ['started', `stopped: ${result.recording?.files.length} files`]);
    const order = result.history.map((e) => e.kind).filter((k) => ['started', 'denied', 'mute-all', 'kicked', 'breakout-open', 'breakout-close', 'recording'].includes(k));
    assert.deepEqual(order, ['started', 'denied', 'mute-all', 'kicked', 'breakout-open', 'breakout-close', 'recording', 'recording']);
  });

  it('a Janus node killed mid-meeting: each participant is told on its event stream to reconnect to the second node (its poll says so too), the room is there with the same id, and media flows between all four again', () => {
    const f = result.failover;
    assert.ok(f, 'step 10 ran');
    const [first, second] = nodes.map((n) => n.url);
    const four = ['alice', 'bob', 'guest', 'dave'];
    decodesEachOther(f.before, everyOther(four));
    assert.deepEqual(f.urlsBefore, [first, first, first, first], 'the meeting was on the first node (both empty: the first listed)');
    assert.ok(f.firstEventMs.every((ms) => ms !== undefined), `a participant event at once on every stream: ${JSON.stringify(f.firstEventMs)}`);
    assert.deepEqual(f.reconnects.map((r) => [r.name, r.reason, r.url, r.polledUrl, r.room]), four.map((name) => [name, 'node-down', second, second, result.breakout?.mainRoom]));
    decodesEachOther(f.rejoined, everyOther(four));
  });
});
