/**
 * Participants of the meetings bench (bench/meetings.ts), run inside the peers' namespace of a JanusNetns
 * (`ip netns exec NS node dist/bench/meetings-peers.js`), Janus being in the other namespace; the bench runs several of
 * these processes, each with its share of the publishers and subscribers: libwebrtc reads every socket of a process on
 * one network thread, and one thread could not read what 10 subscribers of a 10-person meeting receive (the kernel
 * dropped most of it). The bench reads Janus's CPU, not these processes'.
 *
 * With MEETINGS_PEERS_CONFIG (JSON, PeersConfig), driven by one word a line on stdin, answering on stdout:
 *   - at start: a stored token from the Admin API, a Janus session, and with `createRoom` the room (VP8 and Opus,
 *     the id and secret the bench chose); `MEETINGS-READY`;
 *   - `publish`: its publishers join one after another (feed id = index + 1) and publish a synthetic microphone
 *     (Opus) and camera (VP8), each ready at Janus's `webrtcup`; `MEETINGS-PUBLISHED`;
 *   - `subscribe`: its subscribers join one after another, each with ONE PeerConnection carrying the audio and video
 *     of the feeds it lists (Janus 1.x multistream `streams`), and `start`; the next one joins once this one has
 *     decoded a frame of each of its videos (without decoding: received a packet of each). Join time: from the
 *     `join` request to that moment, read by polling getStats every POLL_MS. No sink takes the decoded frames (an
 *     RTCVideoSink copies every picture into the JS heap, which cost more than decoding it); `MEETINGS-SUBSCRIBED`;
 *   - `snapshot` (twice: the window's start and end): every PeerConnection's RTP counters; `MEETINGS-SNAPPED`;
 *   - `finish`: `MEETINGS-RESULT {json}` (what was sent and received between the snapshots, join times), then it
 *     leaves Janus as it found it (its handles, session and token; the room with `createRoom`) and exits.
 *
 * It does not judge. A step that fails ends the process with `MEETINGS-RESULT {error}`. It exits with process.exit()
 * (libwebrtc crashes in its static destructors otherwise) and kills itself after MEETINGS_PEERS_TIMEOUT_MS.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { JanusAdmin, JanusClient, type JanusHandle, type JanusSession, type Jsep, VIDEOROOM_PLUGIN, VideoRoomAdmin } from '../conference/index.js';
import { camera, microphone } from '../support/synthetic-media.js';
import { type WrtcPeerConnection, loadWrtc } from '../support/wrtc.js';
import { num, ssrcMids } from '../support/peer-stats.js';

export interface PeersConfig {
  /** Janus API, `ws://10.231.19.1:PORT`. */
  url: string;
  adminUrl: string;
  adminSecret: string;
  /** The room (id and secret chosen by the bench), created by the one process with `createRoom`. */
  room: number;
  secret: string;
  createRoom: boolean;
  /** Publishers in the whole room (the room's `publishers`). */
  roomPublishers: number;
  /** The publishers this process runs, by index (feed id = index + 1). */
  publishers: number[];
  /** The subscribers this process runs: their index and the publishers (indexes) whose feeds they receive. */
  subscribers: Array<{ index: number; feeds: number[] }>;
  /** The cameras, and the one bitrate their encoders keep (kbit/s). */
  video: { width: number; height: number; fps: number; kbps: number };
  /**
   * Whether the subscribers decode the video they receive. Without, they receive it all and decode none (see
   * withoutVideoDecoding): 50 libwebrtc VP8 decoders at 640×360 need more than this machine's two cores.
   */
  decode: boolean;
}

/** Totals of a PeerConnection's RTP streams of one kind, read from getStats. */
export interface RtpCounts {
  packets: number;
  bytes: number;
  /** Video: frames encoded (outbound) or decoded (inbound). */
  frames: number;
}

/** What a publisher sent in the window (a difference of two snapshots), with how long its publish took. */
export interface PublisherResult extends PublisherSnapshot {
  index: number;
  /** ms from the publisher's `join` request to Janus's `webrtcup`. */
  publishMs: number;
}

export interface SubscribedStream {
  /** Index of the publisher. */
  publisher: number;
  kind: 'audio' | 'video';
  /** Received (and for video decoded) in the window. */
  counts: RtpCounts;
  /** Video: ms from the `join` request to the first decoded frame (without decoding: the first packet). */
  firstFrameMs: number | undefined;
}

export interface SubscriberResult {
  index: number;
  /** ms from the `join` request to ICE+DTLS `connected`. */
  connectedMs: number | undefined;
  /** ms from the `join` request to the first decoded frame (without decoding: first packet) of the last of its videos. */
  joinMs: number | undefined;
  streams: SubscribedStream[];
  connectionState: string;
}

export interface PeersResult {
  publishers: PublisherResult[];
  subscribers: SubscriberResult[];
  /** The time between the two snapshots as this process timed it, and its own CPU over it (libwebrtc: encoders, decoders, SRTP). */
  windowMs: number;
  peersCpuMs: number;
  error?: string;
}

const wrtc = loadWrtc();

const TIMEOUT_MS = Number(process.env.MEETINGS_PEERS_TIMEOUT_MS ?? 240_000);
const STEP_TIMEOUT_MS = 15_000;
/** How long a subscriber may take to decode a frame of each of its videos after its `join`. */
const FIRST_FRAMES_TIMEOUT_MS = 30_000;
/** How often a joining subscriber's stats are read for its first decoded frames. */
const POLL_MS = 20;
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
  index: number;
  pc: WrtcPeerConnection;
  publishMs: number;
}

async function publish(session: JanusSession, room: number, index: number, video: PeersConfig['video']): Promise<Publisher> {
  const id = index + 1;
  const name = `participant-${index + 1}`;
  const handle = await session.attach(VIDEOROOM_PLUGIN, { opaqueId: `meetings-${name}` });
  let webrtcUpAt: number | undefined;
  handle.once('webrtcup', () => (webrtcUpAt = performance.now()));
  const started = performance.now();
  const { data: joined } = await handle.message<{ videoroom: string; id: number }>({ request: 'join', ptype: 'publisher', room, id, display: name });
  if (joined.videoroom !== 'joined') throw new Error(`${name}: join answered "${joined.videoroom}"`);
  const pc = peerConnection();
  const tracks = [microphone(wrtc, cleanups), camera(wrtc, cleanups, video.width, video.height, video.fps)];
  const stream = new wrtc.MediaStream(tracks);
  for (const track of tracks) pc.addTrack(track, stream);
  await pc.setLocalDescription(await pc.createOffer());
  const offer = await gathered(pc);
  const { data, jsep } = await handle.message<{ configured?: string }>({ request: 'publish', audiocodec: 'opus', videocodec: 'vp8' }, { jsep: offer });
  if (data.configured !== 'ok' || jsep?.type !== 'answer') throw new Error(`${name}: publish answered ${JSON.stringify(data)}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: withVideoBitrate(jsep.sdp, video.kbps) });
  await until(`${name}'s webrtcup`, () => webrtcUpAt !== undefined);
  if (joined.id !== id) throw new Error(`${name}: joined as ${joined.id}, not ${id}`);
  return { index, pc, publishMs: Math.round(webrtcUpAt! - started) };
}

/**
 * Janus's answer with the camera's bitrate pinned (libwebrtc's `x-google-min/start/max-bitrate` on the VP8 format):
 * otherwise the sender's congestion control, which reads queueing delay, lowers it as soon as the CPU is short (a
 * busy machine), and Janus's cost per stream follows the packets it carries.
 */
function withVideoBitrate(sdp: string, kbps: number): string {
  return sdp.split(/(?=^m=)/m).map((section) => {
    if (!section.startsWith('m=video')) return section;
    const pt = /^a=rtpmap:(\d+) VP8\/90000/m.exec(section)?.[1];
    if (pt === undefined) return section;
    const pin = `x-google-min-bitrate=${kbps};x-google-start-bitrate=${kbps};x-google-max-bitrate=${kbps}`;
    const fmtp = new RegExp(`^a=fmtp:${pt} (.*)$`, 'm');
    return fmtp.test(section)
      ? section.replace(fmtp, (_, params: string) => `a=fmtp:${pt} ${params};${pin}`)
      : section.replace(new RegExp(`^(a=rtpmap:${pt} VP8/90000\\r?\\n)`, 'm'), `$1a=fmtp:${pt} ${pin}\r\n`);
  }).join('');
}

export interface PublisherSnapshot {
  /** What it sent. */
  audio: RtpCounts;
  video: RtpCounts;
  /** The encoder's resolution at the end of the window (libwebrtc scales down when it thinks the CPU is short). */
  frameWidth: number;
  frameHeight: number;
  /** Keyframes it encoded, and picture loss indications it got from Janus. */
  keyFrames: number;
  plis: number;
}

async function publisherSnapshot(p: Publisher): Promise<PublisherSnapshot> {
  const snap: PublisherSnapshot = { audio: zero(), video: zero(), frameWidth: 0, frameHeight: 0, keyFrames: 0, plis: 0 };
  for (const r of await rtpStats(p.pc, 'outbound-rtp')) {
    const counts = r.kind === 'video' || r.mediaType === 'video' ? snap.video : snap.audio;
    counts.packets += num(r.packetsSent);
    counts.bytes += num(r.bytesSent);
    counts.frames += num(r.framesEncoded);
    snap.keyFrames += num(r.keyFramesEncoded);
    snap.plis += num(r.pliCount);
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
  /** When polling first saw a decoded frame (video). */
  firstAt: number | undefined;
}

interface Subscriber {
  index: number;
  pc: WrtcPeerConnection;
  offer: string;
  streams: Stream[];
  joinAt: number;
  connectedAt: number | undefined;
}

/**
 * Janus's offer with the video payload types renumbered (VP8 96 → 120, its RTX 97 → 121): libwebrtc answers with
 * the new numbers, Janus goes on sending the ones it offered (it does not rewrite payload types for a subscriber),
 * and libwebrtc counts those packets (inbound-rtp `packetsReceived`, `bytesReceived`) and drops them before any
 * decoder: a subscriber that receives everything and decodes no video.
 */
function withoutVideoDecoding(sdp: string): string {
  return sdp.split(/(?=^m=)/m).map((section) => {
    const m = /^m=video \S+ \S+ ([\d ]+)/.exec(section);
    if (m === null) return section;
    const renumbered = new Map(m[1]!.trim().split(' ').map((pt, i) => [pt, String(120 + i)]));
    const pt = (p: string): string => renumbered.get(p) ?? p;
    return section
      .replace(/^(m=video \S+ \S+ )([\d ]+)/m, (_, head: string, pts: string) => head + pts.trim().split(' ').map(pt).join(' '))
      .replace(/^a=(rtpmap|rtcp-fb|fmtp):(\d+) /gm, (_, attr: string, p: string) => `a=${attr}:${pt(p)} `)
      .replace(/\bapt=(\d+)/g, (_, p: string) => `apt=${pt(p)}`);
  }).join('');
}

async function subscribe(session: JanusSession, room: number, index: number, feeds: number[], decode: boolean): Promise<Subscriber> {
  const name = `subscriber-${index + 1}`;
  const handle: JanusHandle = await session.attach(VIDEOROOM_PLUGIN, { opaqueId: `meetings-${name}` });
  const joinAt = performance.now();
  const { data, jsep } = await handle.message<{ videoroom: string; streams?: Array<Record<string, unknown>> }>({
    request: 'join', ptype: 'subscriber', room, streams: feeds.map((feed) => ({ feed })),
  });
  if (data.videoroom !== 'attached' || jsep?.type !== 'offer') throw new Error(`${name}: join answered ${JSON.stringify(data)}`);
  const pc = peerConnection();
  const streams: Stream[] = (data.streams ?? []).filter((s) => s.active !== false && (s.type === 'audio' || s.type === 'video')).map((s) => ({
    mid: String(s.mid), publisher: num(s.feed_id) - 1, kind: s.type === 'audio' ? 'audio' : 'video', firstAt: undefined,
  }));
  const sub: Subscriber = { index, pc, offer: jsep.sdp, streams, joinAt, connectedAt: undefined };
  const watch = setInterval(() => {
    if (sub.connectedAt === undefined && pc.connectionState === 'connected') sub.connectedAt = performance.now();
  }, 10);
  cleanups.push(() => clearInterval(watch));
  await pc.setRemoteDescription({ type: 'offer', sdp: decode ? jsep.sdp : withoutVideoDecoding(jsep.sdp) });
  await pc.setLocalDescription(await pc.createAnswer());
  const started = await handle.message<{ started?: string }>({ request: 'start' }, { jsep: await gathered(pc) });
  if (started.data.started !== 'ok') throw new Error(`${name}: start answered ${JSON.stringify(started.data)}`);
  await firstFrames(name, sub, decode);
  return sub;
}

/** Polls the subscriber's stats until each of its videos has decoded a frame (or received a packet), noting when. */
async function firstFrames(name: string, sub: Subscriber, decode: boolean): Promise<void> {
  const videos = sub.streams.filter((s) => s.kind === 'video');
  const deadline = Date.now() + FIRST_FRAMES_TIMEOUT_MS;
  while (videos.some((s) => s.firstAt === undefined)) {
    if (Date.now() > deadline) {
      const shown = videos.filter((s) => s.firstAt !== undefined).length;
      throw new Error(`${name}: ${shown} of ${videos.length} videos decoded after ${FIRST_FRAMES_TIMEOUT_MS} ms (${sub.pc.connectionState})`);
    }
    await sleep(POLL_MS);
    const now = performance.now();
    const counts = await subscriberSnapshot(sub);
    for (const s of videos) {
      const c = counts.get(s.mid);
      if (s.firstAt === undefined && c !== undefined && (decode ? c.frames : c.packets) > 0) s.firstAt = now;
    }
  }
}

/** Per stream (by mid): packets, bytes and frames decoded so far. */
async function subscriberSnapshot(sub: Subscriber): Promise<Map<string, RtpCounts>> {
  const bySsrc = ssrcMids(sub.offer);
  const out = new Map(sub.streams.map((s) => [s.mid, zero()]));
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

/** The bench's commands, one word a line on stdin. */
const commands = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function command(expected: string): Promise<void> {
  const { value, done } = await commands.next();
  if (done === true || value !== expected) throw new Error(`expected the command "${expected}", got ${done === true ? 'the end of stdin' : `"${String(value)}"`}`);
}

const say = (line: string): boolean => process.stdout.write(`${line}\n`);

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
  const { room, secret } = config;
  if (config.createRoom) {
    const rooms = await VideoRoomAdmin.attach(session, { opaqueId: 'meetings-focus' });
    await rooms.create({ room, description: 'meetings bench', secret, publishers: config.roomPublishers, videocodec: 'vp8', audiocodec: 'opus' });
    cleanups.push(() => rooms.destroy(room, { secret }));
  }
  say('MEETINGS-READY');

  await command('publish');
  const publishers: Publisher[] = [];
  for (const index of config.publishers) publishers.push(await publish(session, room, index, config.video));
  say('MEETINGS-PUBLISHED');

  await command('subscribe');
  const subscribers: Subscriber[] = [];
  for (const { index, feeds } of config.subscribers) subscribers.push(await subscribe(session, room, index, feeds.map((f) => f + 1), config.decode));
  say('MEETINGS-SUBSCRIBED');

  const snapshot = async (): Promise<{ pubs: PublisherSnapshot[]; subs: Array<Map<string, RtpCounts>>; cpu: NodeJS.CpuUsage; at: number }> => {
    await command('snapshot');
    const taken = { pubs: await Promise.all(publishers.map(publisherSnapshot)), subs: await Promise.all(subscribers.map(subscriberSnapshot)), cpu: process.cpuUsage(), at: performance.now() };
    say('MEETINGS-SNAPPED');
    return taken;
  };
  const before = await snapshot();
  const after = await snapshot();
  await command('finish');
  result.windowMs = Math.round(after.at - before.at);
  result.peersCpuMs = Math.round((after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1000);

  result.publishers = publishers.map((p, i) => ({
    index: p.index,
    publishMs: p.publishMs,
    audio: minus(after.pubs[i]!.audio, before.pubs[i]!.audio),
    video: minus(after.pubs[i]!.video, before.pubs[i]!.video),
    frameWidth: after.pubs[i]!.frameWidth,
    frameHeight: after.pubs[i]!.frameHeight,
    keyFrames: after.pubs[i]!.keyFrames - before.pubs[i]!.keyFrames,
    plis: after.pubs[i]!.plis - before.pubs[i]!.plis,
  }));
  result.subscribers = subscribers.map((sub, i) => {
    const streams = sub.streams.map((s): SubscribedStream => ({
      publisher: s.publisher,
      kind: s.kind,
      counts: minus(after.subs[i]!.get(s.mid)!, before.subs[i]!.get(s.mid)!),
      firstFrameMs: s.firstAt === undefined ? undefined : Math.round(s.firstAt - sub.joinAt),
    }));
    const firsts = streams.filter((s) => s.kind === 'video').map((s) => s.firstFrameMs);
    return {
      index: sub.index,
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
