/**
 * The participants of the meetings bench (bench/meetings.ts), run inside the peers' namespace of a JanusNetns
 * (`ip netns exec NS node dist/bench/meetings-peers.js`), Janus being in the other namespace. libwebrtc
 * (`@roamhq/wrtc`) runs here: its encoders, decoders and network threads use both cores, so one process holds every
 * peer; the bench reads Janus's CPU, not this process's.
 *
 * With MEETINGS_PEERS_CONFIG (JSON, PeersConfig):
 *   1. a stored token from the Admin API, one Janus session, a room (VP8 and Opus);
 *   2. the publishers join one after another and publish a synthetic microphone (Opus) and camera (VP8);
 *   3. the subscribers join one after another, each with ONE PeerConnection carrying the audio and video of the
 *      publishers it lists (Janus 1.x multistream `streams`), and `start`; every video track gets a sink counting
 *      decoded frames. Join time: from the subscriber's `join` request to the first decoded frame of the last of its
 *      videos (every one of them on screen);
 *   4. once every subscriber has decoded a frame of each of its videos, and `settleMs` later, it reads every
 *      PeerConnection's stats, prints `MEETINGS-STEADY`, waits `windowMs`, prints `MEETINGS-END` and reads the
 *      stats again: the bench reads Janus's CPU and memory at those two lines;
 *   5. prints `MEETINGS-RESULT {json}` (what was sent and received in the window, join times) and leaves Janus as it
 *      found it (room, session, token removed).
 *
 * It does not judge. It exits with process.exit() (libwebrtc crashes in its static destructors otherwise) and kills
 * itself after MEETINGS_PEERS_TIMEOUT_MS whatever happens.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { JanusAdmin, JanusClient, type JanusHandle, type JanusSession, type Jsep, VIDEOROOM_PLUGIN, VideoRoomAdmin } from '../conference/index.js';
import { camera, microphone } from '../test/helpers/synthetic-media.js';
import { type WrtcPeerConnection, loadWrtc } from '../test/helpers/wrtc.js';

export interface PeersConfig {
  /** Janus API, `ws://10.231.19.1:PORT`. */
  url: string;
  adminUrl: string;
  adminSecret: string;
  publishers: number;
  /** One entry per subscriber: the indexes (into the publishers) of the feeds it receives. */
  subscribers: number[][];
  video: { width: number; height: number; fps: number };
  /** Media flowing to everyone before the window opens. */
  settleMs: number;
  windowMs: number;
}

/** Totals of a PeerConnection's RTP streams of one kind, read from getStats. */
export interface RtpCounts {
  packets: number;
  bytes: number;
  /** Video: frames encoded (outbound) or decoded (inbound). */
  frames: number;
}

export interface PublisherResult {
  id: number;
  /** ms from the publisher's `join` request to Janus's `webrtcup`. */
  publishMs: number;
  /** What it sent in the window. */
  audio: RtpCounts;
  video: RtpCounts;
  /** The encoder's resolution at the end of the window (libwebrtc scales down when it thinks the CPU is short). */
  frameWidth: number;
  frameHeight: number;
}

export interface SubscribedStream {
  /** Index of the publisher. */
  publisher: number;
  kind: 'audio' | 'video';
  /** Received (and for video decoded) in the window. */
  counts: RtpCounts;
  /** Video: frames the sink got in the window. */
  sinkFrames: number;
  /** Video: ms from the `join` request to the first decoded frame. */
  firstFrameMs: number | undefined;
}

export interface SubscriberResult {
  /** ms from the `join` request to ICE+DTLS `connected`. */
  connectedMs: number | undefined;
  /** ms from the `join` request to the first decoded frame of the last of its videos. */
  joinMs: number | undefined;
  streams: SubscribedStream[];
  connectionState: string;
}

export interface PeersResult {
  publishers: PublisherResult[];
  subscribers: SubscriberResult[];
  /** The window as this process timed it, and its own CPU over it (libwebrtc: encoders, decoders, SRTP). */
  windowMs: number;
  peersCpuMs: number;
  error?: string;
}

const wrtc = loadWrtc();

const TIMEOUT_MS = Number(process.env.MEETINGS_PEERS_TIMEOUT_MS ?? 240_000);
const STEP_TIMEOUT_MS = 15_000;
/** How long every subscriber may take to show each of its videos, once all have joined. */
const FIRST_FRAMES_TIMEOUT_MS = 30_000;
/** Host candidates on the veth are all there is; one transport for every m-line. */
const PC_CONFIG = { iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };

const cleanups: Array<() => unknown> = [];

function peerConnection(): WrtcPeerConnection {
  const pc = new wrtc.RTCPeerConnection(PC_CONFIG);
  cleanups.push(() => pc.close());
  return pc;
}

/** Non-trickle: the SDP sent to Janus carries every candidate. */
async function gathered(pc: WrtcPeerConnection): Promise<Jsep & { trickle: false }> {
  await until('ICE gathering', () => pc.iceGatheringState === 'complete');
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

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

/** SSRC → mid, from the a=ssrc lines of each m-section of an SDP (older libwebrtc stats carry no mid). */
function ssrcMids(sdp: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const section of sdp.split(/^m=/m).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    if (mid === undefined) continue;
    for (const m of section.matchAll(/^a=ssrc:(\d+) /gm)) out.set(Number(m[1]), mid);
  }
  return out;
}

async function rtpStats(pc: WrtcPeerConnection, type: 'inbound-rtp' | 'outbound-rtp'): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  (await pc.getStats()).forEach((r) => {
    if (r.type === type) out.push(r);
  });
  return out;
}

const zero = (): RtpCounts => ({ packets: 0, bytes: 0, frames: 0 });
const minus = (a: RtpCounts, b: RtpCounts): RtpCounts => ({ packets: a.packets - b.packets, bytes: a.bytes - b.bytes, frames: a.frames - b.frames });

// ---- publishers ---------------------------------------------------------------------------------------

interface Publisher {
  id: number;
  pc: WrtcPeerConnection;
  publishMs: number;
}

async function publish(session: JanusSession, room: number, index: number, video: PeersConfig['video']): Promise<Publisher> {
  const name = `participant-${index + 1}`;
  const handle = await session.attach(VIDEOROOM_PLUGIN, { opaqueId: `meetings-${name}` });
  let webrtcUpAt: number | undefined;
  handle.once('webrtcup', () => (webrtcUpAt = performance.now()));
  const started = performance.now();
  const { data: joined } = await handle.message<{ videoroom: string; id: number }>({ request: 'join', ptype: 'publisher', room, display: name });
  if (joined.videoroom !== 'joined') throw new Error(`${name}: join answered "${joined.videoroom}"`);
  const pc = peerConnection();
  const tracks = [microphone(wrtc, cleanups), camera(wrtc, cleanups, video.width, video.height, video.fps)];
  const stream = new wrtc.MediaStream(tracks);
  for (const track of tracks) pc.addTrack(track, stream);
  await pc.setLocalDescription(await pc.createOffer());
  const offer = await gathered(pc);
  const { data, jsep } = await handle.message<{ configured?: string }>({ request: 'publish', audiocodec: 'opus', videocodec: 'vp8' }, { jsep: offer });
  if (data.configured !== 'ok' || jsep?.type !== 'answer') throw new Error(`${name}: publish answered ${JSON.stringify(data)}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: jsep.sdp });
  await until(`${name}'s webrtcup`, () => webrtcUpAt !== undefined);
  return { id: joined.id, pc, publishMs: Math.round(webrtcUpAt! - started) };
}

interface PublisherSnapshot {
  audio: RtpCounts;
  video: RtpCounts;
  frameWidth: number;
  frameHeight: number;
}

async function publisherSnapshot(p: Publisher): Promise<PublisherSnapshot> {
  const snap: PublisherSnapshot = { audio: zero(), video: zero(), frameWidth: 0, frameHeight: 0 };
  for (const r of await rtpStats(p.pc, 'outbound-rtp')) {
    const counts = r.kind === 'video' || r.mediaType === 'video' ? snap.video : snap.audio;
    counts.packets += num(r.packetsSent);
    counts.bytes += num(r.bytesSent);
    counts.frames += num(r.framesEncoded);
    if (typeof r.frameWidth === 'number') snap.frameWidth = r.frameWidth;
    if (typeof r.frameHeight === 'number') snap.frameHeight = r.frameHeight;
  }
  return snap;
}

// ---- subscribers --------------------------------------------------------------------------------------

interface Stream {
  mid: string;
  publisher: number;
  kind: 'audio' | 'video';
  sink: { frames: number; firstAt: number | undefined } | undefined;
}

interface Subscriber {
  pc: WrtcPeerConnection;
  offer: string;
  streams: Stream[];
  joinAt: number;
  connectedAt: number | undefined;
}

async function subscribe(session: JanusSession, room: number, index: number, feeds: number[], publisherIndex: Map<number, number>): Promise<Subscriber> {
  const name = `subscriber-${index + 1}`;
  const handle: JanusHandle = await session.attach(VIDEOROOM_PLUGIN, { opaqueId: `meetings-${name}` });
  const joinAt = performance.now();
  const { data, jsep } = await handle.message<{ videoroom: string; streams?: Array<Record<string, unknown>> }>({
    request: 'join', ptype: 'subscriber', room, streams: feeds.map((feed) => ({ feed })),
  });
  if (data.videoroom !== 'attached' || jsep?.type !== 'offer') throw new Error(`${name}: join answered ${JSON.stringify(data)}`);
  const pc = peerConnection();
  const streams: Stream[] = (data.streams ?? []).filter((s) => s.active !== false && (s.type === 'audio' || s.type === 'video')).map((s) => ({
    mid: String(s.mid), publisher: publisherIndex.get(num(s.feed_id)) ?? -1, kind: s.type === 'audio' ? 'audio' : 'video', sink: undefined,
  }));
  const sub: Subscriber = { pc, offer: jsep.sdp, streams, joinAt, connectedAt: undefined };
  const watch = setInterval(() => {
    if (sub.connectedAt === undefined && pc.connectionState === 'connected') sub.connectedAt = performance.now();
  }, 10);
  cleanups.push(() => clearInterval(watch));
  await pc.setRemoteDescription({ type: 'offer', sdp: jsep.sdp });
  for (const t of pc.getTransceivers()) {
    const stream = streams.find((s) => s.mid === t.mid);
    if (stream === undefined || stream.kind !== 'video') continue;
    const counter = { frames: 0, firstAt: undefined as number | undefined };
    const sink = new wrtc.nonstandard.RTCVideoSink(t.receiver.track);
    sink.onframe = () => {
      counter.firstAt ??= performance.now();
      counter.frames++;
    };
    cleanups.push(() => sink.stop());
    stream.sink = counter;
  }
  await pc.setLocalDescription(await pc.createAnswer());
  const started = await handle.message<{ started?: string }>({ request: 'start' }, { jsep: await gathered(pc) });
  if (started.data.started !== 'ok') throw new Error(`${name}: start answered ${JSON.stringify(started.data)}`);
  return sub;
}

/** Per stream (by mid): packets, bytes and frames decoded so far, and the sink's frames. */
async function subscriberSnapshot(sub: Subscriber): Promise<Map<string, RtpCounts & { sinkFrames: number }>> {
  const bySsrc = ssrcMids(sub.offer);
  const out = new Map(sub.streams.map((s) => [s.mid, { ...zero(), sinkFrames: s.sink?.frames ?? 0 }]));
  for (const r of await rtpStats(sub.pc, 'inbound-rtp')) {
    const entry = out.get(typeof r.mid === 'string' ? r.mid : (bySsrc.get(num(r.ssrc)) ?? ''));
    if (entry === undefined) continue;
    entry.packets += num(r.packetsReceived);
    entry.bytes += num(r.bytesReceived);
    entry.frames += num(r.framesDecoded);
  }
  return out;
}

// ---- the run ------------------------------------------------------------------------------------------

async function run(config: PeersConfig, result: PeersResult): Promise<void> {
  const admin = await JanusAdmin.connect({ url: config.adminUrl, adminSecret: config.adminSecret });
  cleanups.push(() => admin.close());
  const token = randomBytes(16).toString('hex');
  await admin.addToken(token, [VIDEOROOM_PLUGIN]);
  cleanups.push(() => admin.removeToken(token));
  const client = await JanusClient.connect({ url: config.url, token });
  cleanups.push(() => client.close());
  const session = await client.createSession();
  cleanups.push(() => session.destroy());
  const rooms = await VideoRoomAdmin.attach(session, { opaqueId: 'meetings-focus' });
  const secret = randomBytes(8).toString('hex');
  const room = await rooms.create({ description: 'meetings bench', secret, publishers: config.publishers, videocodec: 'vp8', audiocodec: 'opus' });
  cleanups.push(() => rooms.destroy(room, { secret }));

  const publishers: Publisher[] = [];
  for (let i = 0; i < config.publishers; i++) publishers.push(await publish(session, room, i, config.video));
  const publisherIndex = new Map(publishers.map((p, i) => [p.id, i]));
  const subscribers: Subscriber[] = [];
  for (const [i, feeds] of config.subscribers.entries()) {
    subscribers.push(await subscribe(session, room, i, feeds.map((f) => publishers[f]!.id), publisherIndex));
  }
  const videos = subscribers.flatMap((s) => s.streams).filter((s) => s.kind === 'video');
  await until('a decoded frame of every video at every subscriber', () => videos.every((s) => s.sink?.firstAt !== undefined), FIRST_FRAMES_TIMEOUT_MS);
  await sleep(config.settleMs);

  const pubBefore = await Promise.all(publishers.map(publisherSnapshot));
  const subBefore = await Promise.all(subscribers.map(subscriberSnapshot));
  const cpuBefore = process.cpuUsage();
  const windowStart = performance.now();
  process.stdout.write('MEETINGS-STEADY\n');
  await sleep(config.windowMs);
  process.stdout.write('MEETINGS-END\n');
  const cpu = process.cpuUsage(cpuBefore);
  result.windowMs = Math.round(performance.now() - windowStart);
  result.peersCpuMs = Math.round((cpu.user + cpu.system) / 1000);
  const pubAfter = await Promise.all(publishers.map(publisherSnapshot));
  const subAfter = await Promise.all(subscribers.map(subscriberSnapshot));

  result.publishers = publishers.map((p, i) => ({
    id: p.id,
    publishMs: p.publishMs,
    audio: minus(pubAfter[i]!.audio, pubBefore[i]!.audio),
    video: minus(pubAfter[i]!.video, pubBefore[i]!.video),
    frameWidth: pubAfter[i]!.frameWidth,
    frameHeight: pubAfter[i]!.frameHeight,
  }));
  result.subscribers = subscribers.map((sub, i) => {
    const streams = sub.streams.map((s): SubscribedStream => {
      const after = subAfter[i]!.get(s.mid)!;
      const before = subBefore[i]!.get(s.mid)!;
      return {
        publisher: s.publisher,
        kind: s.kind,
        counts: minus(after, before),
        sinkFrames: after.sinkFrames - before.sinkFrames,
        firstFrameMs: s.sink?.firstAt === undefined ? undefined : Math.round(s.sink.firstAt - sub.joinAt),
      };
    });
    const firsts = streams.filter((s) => s.kind === 'video').map((s) => s.firstFrameMs);
    return {
      connectedMs: sub.connectedAt === undefined ? undefined : Math.round(sub.connectedAt - sub.joinAt),
      joinMs: firsts.some((f) => f === undefined) ? undefined : Math.max(...(firsts as number[])),
      streams,
      connectionState: sub.pc.connectionState,
    };
  });
}

async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await Promise.race([fn(), sleep(3000)]);
    } catch {
      // best effort: Janus and the namespaces go with the bench
    }
  }
}

async function main(): Promise<void> {
  const result: PeersResult = { publishers: [], subscribers: [], windowMs: 0, peersCpuMs: 0 };
  const print = (code: number): void => {
    process.stdout.write(`MEETINGS-RESULT ${JSON.stringify(result)}\n`, () => process.exit(code));
  };
  const killer = setTimeout(() => {
    result.error = `the peers did not finish within ${TIMEOUT_MS} ms`;
    void Promise.race([cleanup(), sleep(3000)]).finally(() => print(3));
  }, TIMEOUT_MS);
  try {
    await run(JSON.parse(process.env.MEETINGS_PEERS_CONFIG ?? '') as PeersConfig, result);
  } catch (err) {
    result.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  await cleanup();
  clearTimeout(killer);
  print(result.error !== undefined ? 1 : 0);
}

void main();
