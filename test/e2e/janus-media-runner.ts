/**
 * The participants of a Janus videoroom with real media, run by janus-media.test.ts inside the peers' namespace of a
 * JanusNetns (`ip netns exec NS node dist/test/e2e/janus-media-runner.js`), Janus being in the other namespace. All
 * Janus traffic goes through conference/janus (JanusAdmin, JanusClient, VideoRoomAdmin, JanusHandle.message): the
 * harness exercises our client. libwebrtc (`@roamhq/wrtc`) runs in this process.
 *
 * What it does, with the settings of JANUS_MEDIA_CONFIG (JSON, see RunnerConfig):
 *   1. adds a stored token through the Admin API and connects with it;
 *   2. creates a room (VideoRoomAdmin, VP8 and Opus);
 *   3. `camera` joins as a publisher and publishes a synthetic microphone (RTCAudioSource, a 440 Hz tone) and camera
 *      (RTCVideoSource, 640x360, 30 fps, VP8); with `screen`, a second participant publishes a screen-like video
 *      (1280x720 at 5 fps, as screen sharing sends few frames of a still page; it moves a little every frame);
 *   4. `subscribers` participants join as subscribers (ptype subscriber with a `streams` array: Janus 1.x
 *      multistream), each with ONE PeerConnection: the camera's audio and video, and for the first one also the
 *      screen's video from the start; they answer Janus's offer and `start`. With `screen`, the second one adds the
 *      screen to its live PeerConnection a moment later (`update` with `subscribe`: Janus's new offer, our answer
 *      with `start`), as a participant does when someone starts sharing during the meeting;
 *   5. after measureMs, reads each subscriber's inbound streams (getStats by SSRC, mapped to mids by Janus's offer,
 *      and the frames each track's RTCVideoSink got) and prints them;
 *   6. with `moderation`, counts the camera's audio packets reaching subscriber-1 over three windows of
 *      MODERATION_WINDOW_MS: as it is, after the room's `moderate` muted that stream, and after it lifted the mute;
 *   7. with `recording`, records the room for `recording.ms` (`edit` of its rec_dir, then `enable_recording` on and
 *      off, as the focus does): Janus writes the publishers' .mjr files, which the test converts and seals.
 *
 * The runner does not judge: it prints `JANUS-MEDIA-RESULT {json}` and the test asserts on it. A step that cannot
 * go on ends the run with `{ error }`. It leaves Janus as it found it (room destroyed, session destroyed, token
 * removed), exits with process.exit() (libwebrtc crashes in its static destructors otherwise) and kills itself after
 * RUNNER_TIMEOUT_MS whatever happens.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { JanusAdmin, JanusClient, type JanusHandle, type JanusSession, type Jsep, VIDEOROOM_PLUGIN, VideoRoomAdmin } from '../../conference/index.js';
import { camera as syntheticCamera, microphone as syntheticMicrophone } from '../helpers/synthetic-media.js';
import { type WrtcPeerConnection, type WrtcTrack, loadWrtc } from '../helpers/wrtc.js';

export interface RunnerConfig {
  /** Janus API, `ws://10.231.19.1:PORT`. */
  url: string;
  adminUrl: string;
  adminSecret: string;
  subscribers: number;
  /** A second publisher (screen-like video) that the first subscriber also receives, in the same PeerConnection. */
  screen: boolean;
  /** How long media flows after the subscribers' `start` before it is measured. */
  measureMs: number;
  /** Step 6: the videoroom `moderate` of the camera's audio, and what subscriber-1 receives of it. */
  moderation?: boolean;
  /**
   * Step 7: the room recorded into `dir` (Janus's side of the folder) for `ms`; `room` and `feed` (the camera's id) as
   * the focus would have them for a meeting and its participant (Janus picks them otherwise).
   */
  recording?: { dir: string; ms: number; room?: number; feed?: number };
}

/** Step 7: what was recorded. */
export interface RecordingReport {
  /** The camera's feed id: its .mjr files are named after it. */
  feed: number;
  /** The camera's packets sent while recording (it did publish then). */
  packetsSent: number;
}

/** Audio packets of the camera that subscriber-1 received in each window (step 6). */
export interface ModerationReport {
  /** The camera's audio mid, as Janus's `configured` listed it: what `moderate` names. */
  mid: string;
  unmuted: number;
  muted: number;
  resumed: number;
}

/** One m-line a subscriber receives. */
export interface StreamReport {
  mid: string;
  kind: 'audio' | 'video';
  /** The publisher (participant id) and its m-line this stream relays, as Janus's `attached` event says. */
  feed: number;
  feedMid: string;
  feedDisplay: string | undefined;
  /** inbound-rtp */
  packetsReceived: number;
  /** Audio: samples decoded, and how many of them the decoder made up (packet loss concealment). */
  totalSamplesReceived: number;
  concealedSamples: number;
  framesDecoded: number;
  keyFramesDecoded: number;
  codec: string | undefined;
  frameWidth: number | undefined;
  frameHeight: number | undefined;
  /** Frames the track's RTCVideoSink got (decoded frames handed to the application). */
  sinkFrames: number;
  /** ms from the `start` that brought this stream (the first, or the one after `update`) to the sink's first frame. */
  firstFrameMs: number | undefined;
  /** The stream came with an `update` (renegotiation of the live PeerConnection), not with the join. */
  added: boolean;
}

export interface SubscriberReport {
  name: string;
  /** PeerConnections this subscriber used (always one: every stream is an m-line of it). */
  peerConnections: number;
  connectionState: string;
  /** ms from Janus's first offer to the PeerConnection's `connected` (ICE and DTLS). */
  connectedMs: number | undefined;
  streams: StreamReport[];
  /** The candidates (address:port) in Janus's offers. */
  janusCandidates: string[];
  /** Offers Janus sent this subscriber (1, or 2 after an `update`). */
  offers: number;
  /** The remote candidate of the selected pair. */
  selectedRemote: string | undefined;
}

export interface PublisherReport {
  name: string;
  id: number;
  /** What Janus's `configured` event lists for this publisher: mid, type, codec. */
  streams: Array<{ mid: string; type: string; codec: string | undefined; description: string | undefined }>;
  /** The candidates (address:port) in Janus's answer. */
  janusCandidates: string[];
  /** ms from `publish` to Janus's `webrtcup`. */
  webrtcUpMs: number | undefined;
  framesEncoded: number;
  packetsSent: number;
}

export interface JanusMediaResult {
  room: number | undefined;
  publishers: PublisherReport[];
  subscribers: SubscriberReport[];
  /** The runner's own CPU time (libwebrtc: 2 encoders, up to 3 decoders) and wall time, ms. */
  cpuMs: number;
  elapsedMs: number;
  moderation?: ModerationReport;
  recording?: RecordingReport;
  error?: string;
}

const wrtc = loadWrtc();

const RUNNER_TIMEOUT_MS = Number(process.env.JANUS_MEDIA_RUNNER_TIMEOUT_MS ?? 50_000);
const STEP_TIMEOUT_MS = 10_000;
/** When the second subscriber adds the screen (`update`), after its `start`. */
const UPDATE_AFTER_MS = 1000;
/** Step 6: each window's length, and the pause after a `moderate` before the next window starts (packets in flight). */
const MODERATION_WINDOW_MS = 2000;
const MODERATION_SETTLE_MS = 300;
/** No STUN, no TURN: host candidates on the veth are all there is. One transport for every m-line. */
const PC_CONFIG = { iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };

const cleanups: Array<() => unknown> = [];

const microphone = (): WrtcTrack => syntheticMicrophone(wrtc, cleanups);
const camera = (width: number, height: number, fps: number): WrtcTrack => syntheticCamera(wrtc, cleanups, width, height, fps);

// ---- signalling helpers ---------------------------------------------------------------------------------

function peerConnection(): WrtcPeerConnection {
  const pc = new wrtc.RTCPeerConnection(PC_CONFIG);
  cleanups.push(() => pc.close());
  return pc;
}

/** Non-trickle: the SDP sent to Janus carries every candidate, so ICE needs no `trickle` requests. */
async function gathered(pc: WrtcPeerConnection): Promise<Jsep & { trickle: false }> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (pc.iceGatheringState !== 'complete') {
    if (Date.now() > deadline) throw new Error(`ICE gathering still "${pc.iceGatheringState}" after ${STEP_TIMEOUT_MS} ms`);
    await sleep(20);
  }
  const local = pc.localDescription;
  if (local === null) throw new Error('no local description');
  return { type: local.type as 'offer' | 'answer', sdp: local.sdp, trickle: false };
}

async function until(what: string, check: () => boolean, timeoutMs = STEP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** `address:port` of every a=candidate line. */
function candidates(sdp: string): string[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+) typ/gm)].map((m) => `${m[1]}:${m[2]}`);
}

/** SSRC → mid, from the a=ssrc lines of each m-section of an SDP. */
function ssrcMids(sdp: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const section of sdp.split(/^m=/m).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    if (mid === undefined) continue;
    for (const m of section.matchAll(/^a=ssrc:(\d+) /gm)) out.set(Number(m[1]), mid);
  }
  return out;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

async function statsById(pc: WrtcPeerConnection): Promise<Map<string, Record<string, unknown>>> {
  const all = new Map<string, Record<string, unknown>>();
  (await pc.getStats()).forEach((r) => all.set(String(r.id), r));
  return all;
}

// ---- participants -------------------------------------------------------------------------------------

interface Publisher {
  report: PublisherReport;
  pc: WrtcPeerConnection;
}

/**
 * join (ptype publisher), then `publish` with an offer carrying `tracks`; resolves once Janus's PeerConnection is up.
 * `videoDescription` labels the video m-line (the publish request's `descriptions`), as a client sharing its screen does.
 */
async function publish(session: JanusSession, room: number, name: string, tracks: WrtcTrack[], videoDescription?: string, id?: number): Promise<Publisher> {
  const handle = await session.attach(VIDEOROOM_PLUGIN, { opaqueId: `janus-media-${name}` });
  const { data: joined } = await handle.message<{ videoroom: string; id: number }>({ request: 'join', ptype: 'publisher', room, id, display: name });
  if (joined.videoroom !== 'joined') throw new Error(`${name}: join answered "${joined.videoroom}"`);
  const pc = peerConnection();
  const stream = new wrtc.MediaStream(tracks);
  for (const track of tracks) pc.addTrack(track, stream);
  await pc.setLocalDescription(await pc.createOffer());
  const offer = await gathered(pc);
  let webrtcUpAt: number | undefined;
  handle.once('webrtcup', () => (webrtcUpAt = performance.now()));
  const started = performance.now();
  const videoMid = offer.sdp.split(/^m=/m).slice(1).find((section) => section.startsWith('video'))?.match(/^a=mid:(\S+)/m)?.[1];
  const descriptions = videoDescription !== undefined && videoMid !== undefined ? [{ mid: videoMid, description: videoDescription }] : undefined;
  const body = { request: 'publish', audiocodec: 'opus', videocodec: 'vp8', descriptions };
  const { data, jsep } = await handle.message<{ configured?: string; streams?: Array<Record<string, unknown>> }>(body, { jsep: offer });
  if (data.configured !== 'ok' || jsep?.type !== 'answer') throw new Error(`${name}: publish answered ${JSON.stringify(data)} ${jsep ? `with a ${jsep.type}` : 'without jsep'}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: jsep.sdp });
  await until(`${name}'s webrtcup`, () => webrtcUpAt !== undefined);
  return {
    pc,
    report: {
      name,
      id: joined.id,
      streams: (data.streams ?? []).map((s) => ({ mid: String(s.mid), type: String(s.type), codec: str(s.codec), description: str(s.description) })),
      janusCandidates: candidates(jsep.sdp),
      webrtcUpMs: webrtcUpAt === undefined ? undefined : Math.round(webrtcUpAt - started),
      framesEncoded: 0,
      packetsSent: 0,
    },
  };
}

async function publisherStats(p: Publisher): Promise<void> {
  for (const r of (await statsById(p.pc)).values()) {
    if (r.type !== 'outbound-rtp') continue;
    p.report.framesEncoded += num(r.framesEncoded);
    p.report.packetsSent += num(r.packetsSent);
  }
}

interface Subscriber {
  name: string;
  handle: JanusHandle;
  pc: WrtcPeerConnection;
  offers: string[];
  attached: Attached[];
  startedAt: number;
  connectedAt: number | undefined;
  sinks: Map<string, { frames: number; firstAt: number | undefined; since: number }>;
}

interface Attached {
  mid: string;
  type: string;
  feed: number;
  feedMid: string;
  feedDisplay: string | undefined;
  added: boolean;
}

/** The m-lines Janus's `attached` or `updated` event lists (the data channel and inactive ones aside). */
function attachedStreams(streams: Array<Record<string, unknown>> | undefined, added: boolean): Attached[] {
  return (streams ?? []).filter((s) => s.active !== false && s.type !== 'data').map((s) => ({
    mid: String(s.mid), type: String(s.type), feed: num(s.feed_id), feedMid: String(s.feed_mid), feedDisplay: str(s.feed_display), added,
  }));
}

/**
 * Applies Janus's offer to the subscriber's PeerConnection, puts a frame counter on every new video track, and
 * sends the answer with `start` (also after an `update`: Janus waits for the answer in a `start`).
 */
async function answer(sub: Subscriber, offer: Jsep): Promise<void> {
  sub.offers.push(offer.sdp);
  await sub.pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
  for (const t of sub.pc.getTransceivers()) {
    if (t.mid === null || sub.sinks.has(t.mid) || t.receiver.track.kind !== 'video') continue;
    const counter = { frames: 0, firstAt: undefined as number | undefined, since: 0 };
    const sink = new wrtc.nonstandard.RTCVideoSink(t.receiver.track);
    sink.onframe = () => {
      counter.firstAt ??= performance.now();
      counter.frames++;
    };
    cleanups.push(() => sink.stop());
    sub.sinks.set(t.mid, counter);
  }
  await sub.pc.setLocalDescription(await sub.pc.createAnswer());
  const jsep = await gathered(sub.pc);
  const now = performance.now();
  for (const counter of sub.sinks.values()) if (counter.since === 0) counter.since = now;
  const started = await sub.handle.message<{ started?: string }>({ request: 'start' }, { jsep });
  if (started.data.started !== 'ok') throw new Error(`${sub.name}: start answered ${JSON.stringify(started.data)}`);
}

/** join (ptype subscriber) with one `streams` entry per feed, answer Janus's offer in one PeerConnection, `start`. */
async function subscribe(session: JanusSession, room: number, name: string, feeds: number[]): Promise<Subscriber> {
  const handle = await session.attach(VIDEOROOM_PLUGIN, { opaqueId: `janus-media-${name}` });
  const { data, jsep } = await handle.message<{ videoroom: string; streams?: Array<Record<string, unknown>> }>({
    request: 'join', ptype: 'subscriber', room, streams: feeds.map((feed) => ({ feed })),
  });
  if (data.videoroom !== 'attached' || jsep?.type !== 'offer') throw new Error(`${name}: join answered ${JSON.stringify(data)} ${jsep ? `with a ${jsep.type}` : 'without jsep'}`);
  const pc = peerConnection();
  const sub: Subscriber = { name, handle, pc, offers: [], attached: attachedStreams(data.streams, false), startedAt: performance.now(), connectedAt: undefined, sinks: new Map() };
  const watch = setInterval(() => {
    if (sub.connectedAt === undefined && pc.connectionState === 'connected') sub.connectedAt = performance.now();
  }, 10);
  cleanups.push(() => clearInterval(watch));
  await answer(sub, jsep);
  return sub;
}

/** `update` with `subscribe`: more feeds in the same PeerConnection; Janus answers `updated` with a new offer. */
async function addFeeds(sub: Subscriber, feeds: number[]): Promise<void> {
  const { data, jsep } = await sub.handle.message<{ videoroom: string; streams?: Array<Record<string, unknown>> }>({
    request: 'update', subscribe: feeds.map((feed) => ({ feed })),
  });
  if (data.videoroom !== 'updated' || jsep?.type !== 'offer') throw new Error(`${sub.name}: update answered ${JSON.stringify(data)} ${jsep ? `with a ${jsep.type}` : 'without jsep'}`);
  // `updated` lists every stream of the subscription: the new ones are those whose mid is new
  const known = new Set(sub.attached.map((a) => a.mid));
  sub.attached.push(...attachedStreams(data.streams, true).filter((a) => !known.has(a.mid)));
  await answer(sub, jsep);
}

async function subscriberReport(sub: Subscriber): Promise<SubscriberReport> {
  const all = await statsById(sub.pc);
  const bySsrc = ssrcMids(sub.offers.at(-1) ?? '');
  const streams: StreamReport[] = sub.attached.map((a) => {
    const sink = sub.sinks.get(a.mid);
    return {
      mid: a.mid, kind: a.type === 'audio' ? 'audio' : 'video', feed: a.feed, feedMid: a.feedMid, feedDisplay: a.feedDisplay,
      packetsReceived: 0, totalSamplesReceived: 0, concealedSamples: 0, framesDecoded: 0, keyFramesDecoded: 0, codec: undefined,
      frameWidth: undefined, frameHeight: undefined, sinkFrames: sink?.frames ?? 0,
      firstFrameMs: sink?.firstAt === undefined ? undefined : Math.round(sink.firstAt - sink.since), added: a.added,
    };
  });
  let selectedRemote: string | undefined;
  for (const r of all.values()) {
    if (r.type === 'inbound-rtp') {
      // newer libwebrtc names the mid in the stats; otherwise Janus's offer ties the SSRC to its m-line
      const mid = str(r.mid) ?? bySsrc.get(num(r.ssrc));
      const s = streams.find((x) => x.mid === mid);
      if (s === undefined) continue;
      s.packetsReceived += num(r.packetsReceived);
      s.totalSamplesReceived += num(r.totalSamplesReceived);
      s.concealedSamples += num(r.concealedSamples);
      s.framesDecoded += num(r.framesDecoded);
      s.keyFramesDecoded += num(r.keyFramesDecoded);
      if (typeof r.frameWidth === 'number') s.frameWidth = r.frameWidth;
      if (typeof r.frameHeight === 'number') s.frameHeight = r.frameHeight;
      const codec = typeof r.codecId === 'string' ? all.get(r.codecId) : undefined;
      s.codec ??= str(codec?.mimeType);
    } else if (r.type === 'transport' && typeof r.selectedCandidatePairId === 'string') {
      const pair = all.get(r.selectedCandidatePairId);
      const remote = typeof pair?.remoteCandidateId === 'string' ? all.get(pair.remoteCandidateId) : undefined;
      if (remote) selectedRemote = `${String(remote.address ?? remote.ip)}:${String(remote.port)}`;
    }
  }
  return {
    name: sub.name,
    peerConnections: 1,
    connectionState: sub.pc.connectionState,
    connectedMs: sub.connectedAt === undefined ? undefined : Math.round(sub.connectedAt - sub.startedAt),
    streams,
    janusCandidates: sub.offers.flatMap(candidates),
    offers: sub.offers.length,
    selectedRemote,
  };
}

// ---- the run -----------------------------------------------------------------------------------------

async function run(config: RunnerConfig, result: JanusMediaResult): Promise<void> {
  const admin = await JanusAdmin.connect({ url: config.adminUrl, adminSecret: config.adminSecret });
  cleanups.push(() => admin.close());
  const token = randomBytes(16).toString('hex');
  await admin.addToken(token, [VIDEOROOM_PLUGIN]);
  cleanups.push(() => admin.removeToken(token));
  const client = await JanusClient.connect({ url: config.url, token });
  cleanups.push(() => client.close());
  const session = await client.createSession();
  cleanups.push(() => session.destroy());

  const rooms = await VideoRoomAdmin.attach(session, { opaqueId: 'janus-media-focus' });
  const secret = randomBytes(8).toString('hex');
  const room = await rooms.create({ room: config.recording?.room, description: 'janus-media', secret, publishers: 4, videocodec: 'vp8', audiocodec: 'opus' });
  result.room = room;
  cleanups.push(() => rooms.destroy(room, { secret }));

  const publishers = [await publish(session, room, 'camera', [microphone(), camera(640, 360, 30)], undefined, config.recording?.feed)];
  if (config.screen) {
    publishers.push(await publish(session, room, 'screen', [camera(1280, 720, 5)], 'screen'));
  }
  const [cam, screen] = publishers;
  const subscribers: Subscriber[] = [];
  for (let i = 1; i <= config.subscribers; i++) {
    const feeds = i === 1 && screen !== undefined ? [cam!.report.id, screen.report.id] : [cam!.report.id];
    subscribers.push(await subscribe(session, room, `subscriber-${i}`, feeds));
  }
  const measured = sleep(config.measureMs);
  const late = subscribers[1];
  if (screen !== undefined && late !== undefined) {
    // the camera flows to it first: the screen is added to a PeerConnection that is carrying media
    await sleep(UPDATE_AFTER_MS);
    await addFeeds(late, [screen.report.id]);
  }
  await measured;
  for (const p of publishers) await publisherStats(p);
  result.publishers = publishers.map((p) => p.report);
  for (const sub of subscribers) result.subscribers.push(await subscriberReport(sub));
  if (config.moderation) result.moderation = await moderation(rooms, room, secret, cam!, subscribers[0]!);
  if (config.recording !== undefined) result.recording = await recording(rooms, room, secret, cam!, config.recording);
}

/** Step 7: Janus records the room for a while: the focus's `edit` (rec_dir) and `enable_recording` on, then off. */
async function recording(rooms: VideoRoomAdmin, room: number, secret: string, cam: Publisher, options: { dir: string; ms: number }): Promise<RecordingReport> {
  await rooms.edit(room, { secret, recDir: options.dir });
  // publisherStats adds to the report: the window's packets are read here
  const sent = async (): Promise<number> => [...(await statsById(cam.pc)).values()].filter((r) => r.type === 'outbound-rtp').reduce((n, r) => n + num(r.packetsSent), 0);
  const before = await sent();
  await rooms.enableRecording({ room, record: true, secret });
  await sleep(options.ms);
  await rooms.enableRecording({ room, record: false, secret });
  return { feed: cam.report.id, packetsSent: (await sent()) - before };
}

/** Step 6: the camera's audio packets at `sub` in a window each: unmuted, muted by `moderate`, and after the unmute. */
async function moderation(rooms: VideoRoomAdmin, room: number, secret: string, cam: Publisher, sub: Subscriber): Promise<ModerationReport> {
  const mid = cam.report.streams.find((s) => s.type === 'audio')?.mid;
  if (mid === undefined) throw new Error(`the camera published no audio: ${JSON.stringify(cam.report.streams)}`);
  const packets = async (): Promise<number> => (await subscriberReport(sub)).streams.find((s) => s.kind === 'audio' && s.feed === cam.report.id)?.packetsReceived ?? 0;
  const window = async (): Promise<number> => {
    const before = await packets();
    await sleep(MODERATION_WINDOW_MS);
    return (await packets()) - before;
  };
  const unmuted = await window();
  await rooms.moderate({ room, id: cam.report.id, mid, mute: true, secret });
  await sleep(MODERATION_SETTLE_MS);
  const muted = await window();
  await rooms.moderate({ room, id: cam.report.id, mid, mute: false, secret });
  await sleep(MODERATION_SETTLE_MS);
  const resumed = await window();
  return { mid, unmuted, muted, resumed };
}

async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await Promise.race([fn(), sleep(3000)]);
    } catch {
      // best effort: Janus and the namespaces go with the test
    }
  }
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const cpu = process.cpuUsage();
  const result: JanusMediaResult = { room: undefined, publishers: [], subscribers: [], cpuMs: 0, elapsedMs: 0 };
  const print = (code: number): void => {
    const used = process.cpuUsage(cpu);
    result.cpuMs = Math.round((used.user + used.system) / 1000);
    result.elapsedMs = Math.round(performance.now() - startedAt);
    process.stdout.write(`JANUS-MEDIA-RESULT ${JSON.stringify(result)}\n`, () => process.exit(code));
  };
  const killer = setTimeout(() => {
    result.error = `the runner did not finish within ${RUNNER_TIMEOUT_MS} ms`;
    void Promise.race([cleanup(), sleep(3000)]).finally(() => print(3));
  }, RUNNER_TIMEOUT_MS);
  try {
    const config = JSON.parse(process.env.JANUS_MEDIA_CONFIG ?? '') as RunnerConfig;
    await run(config, result);
  } catch (err) {
    result.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  await cleanup();
  clearTimeout(killer);
  print(result.error !== undefined ? 1 : 0);
}

void main();
