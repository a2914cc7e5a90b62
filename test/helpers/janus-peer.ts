/**
 * libwebrtc participants of a Janus videoroom, for the runners that run inside a JanusNetns's peers' namespace
 * (janus-media-runner.ts, meeting-media-runner.ts): synthetic microphone and camera tracks, a publisher (join and
 * `publish` with a non-trickle offer), a subscriber with ONE PeerConnection for every feed (Janus 1.x multistream
 * `streams`, `update` to add feeds), and what each one sent or received (getStats by SSRC mapped to mids, frames at
 * an RTCVideoSink). All Janus traffic goes through conference/janus. What a runner opens is registered with
 * onCleanup and undone by runCleanups; runTaggedMain gives a runner its one result line, its own timeout and the
 * process.exit() libwebrtc needs (it crashes in its static destructors otherwise).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type JanusHandle, type JanusSession, type Jsep, VIDEOROOM_PLUGIN } from '../../conference/index.js';
import { type WrtcPeerConnection, type WrtcTrack, loadWrtc } from '../../support/wrtc.js';
import { camera as syntheticCamera, microphone as syntheticMicrophone } from '../../support/synthetic-media.js';
import { num, ssrcMids } from '../../support/peer-stats.js';

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


export const wrtc = loadWrtc();

export const STEP_TIMEOUT_MS = 10_000;
/** No STUN, no TURN: host candidates on the veth are all there is. One transport for every m-line. */
const PC_CONFIG = { iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };

const cleanups: Array<() => unknown> = [];

/** Registers what the run's end undoes (runCleanups, newest first): closing, stopping, removing. */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

// ---- synthetic media (support/synthetic-media.ts, stopped with the run) -----------------------------

/** A 440 Hz tone (synthetic-media.ts). */
export function microphone(): WrtcTrack {
  return syntheticMicrophone(wrtc, cleanups);
}

/** A camera whose picture changes every frame (synthetic-media.ts). */
export function camera(width: number, height: number, fps: number): WrtcTrack {
  return syntheticCamera(wrtc, cleanups, width, height, fps);
}

// ---- signalling helpers ---------------------------------------------------------------------------------

export function peerConnection(): WrtcPeerConnection {
  const pc = new wrtc.RTCPeerConnection(PC_CONFIG);
  onCleanup(() => pc.close());
  return pc;
}

/** Non-trickle: the SDP sent to Janus carries every candidate, so ICE needs no `trickle` requests. */
export async function gathered(pc: WrtcPeerConnection): Promise<Jsep & { trickle: false }> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (pc.iceGatheringState !== 'complete') {
    if (Date.now() > deadline) throw new Error(`ICE gathering still "${pc.iceGatheringState}" after ${STEP_TIMEOUT_MS} ms`);
    await sleep(20);
  }
  const local = pc.localDescription;
  if (local === null) throw new Error('no local description');
  return { type: local.type as 'offer' | 'answer', sdp: local.sdp, trickle: false };
}

export async function until(what: string, check: () => boolean, timeoutMs = STEP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** `address:port` of every a=candidate line. */
export function candidates(sdp: string): string[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+) typ/gm)].map((m) => `${m[1]}:${m[2]}`);
}

export { num, ssrcMids };
export const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export async function statsById(pc: WrtcPeerConnection): Promise<Map<string, Record<string, unknown>>> {
  const all = new Map<string, Record<string, unknown>>();
  (await pc.getStats()).forEach((r) => all.set(String(r.id), r));
  return all;
}

// ---- participants -------------------------------------------------------------------------------------

export interface Publisher {
  report: PublisherReport;
  pc: WrtcPeerConnection;
  handle: JanusHandle;
}

export interface PublishOptions {
  /** Labels the video m-line (the publish request's `descriptions`), as a client sharing its screen does. */
  videoDescription?: string | undefined;
  /** The feed id to join with (a meeting's grant names it); Janus picks one otherwise. */
  id?: number | undefined;
  /** The videoroom `join`'s token: a room with an `allowed` list (a meeting's) admits only the tokens on it. */
  token?: string | undefined;
}

/** join (ptype publisher), then `publish` with an offer carrying `tracks`; resolves once Janus's PeerConnection is up. */
export async function publish(session: JanusSession, room: number, name: string, tracks: WrtcTrack[], options: PublishOptions = {}): Promise<Publisher> {
  const { videoDescription, id, token } = options;
  const handle = await session.attach(VIDEOROOM_PLUGIN, { opaqueId: `janus-media-${name}` });
  const { data: joined } = await handle.message<{ videoroom: string; id: number }>({ request: 'join', ptype: 'publisher', room, id, token, display: name });
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
    handle,
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

export async function publisherStats(p: Publisher): Promise<void> {
  for (const r of (await statsById(p.pc)).values()) {
    if (r.type !== 'outbound-rtp') continue;
    p.report.framesEncoded += num(r.framesEncoded);
    p.report.packetsSent += num(r.packetsSent);
  }
}

export interface Subscriber {
  name: string;
  handle: JanusHandle;
  pc: WrtcPeerConnection;
  offers: string[];
  attached: Attached[];
  startedAt: number;
  connectedAt: number | undefined;
  sinks: Map<string, { frames: number; firstAt: number | undefined; since: number }>;
}

export interface Attached {
  mid: string;
  type: string;
  feed: number;
  feedMid: string;
  feedDisplay: string | undefined;
  added: boolean;
}

/** The m-lines Janus's `attached` or `updated` event lists (the data channel and inactive ones aside). */
export function attachedStreams(streams: Array<Record<string, unknown>> | undefined, added: boolean): Attached[] {
  return (streams ?? []).filter((s) => s.active !== false && s.type !== 'data').map((s) => ({
    mid: String(s.mid), type: String(s.type), feed: num(s.feed_id), feedMid: String(s.feed_mid), feedDisplay: str(s.feed_display), added,
  }));
}

/**
 * Applies Janus's offer to the subscriber's PeerConnection, puts a frame counter on every new video track, and
 * sends the answer with `start` (also after an `update`: Janus waits for the answer in a `start`).
 */
export async function answer(sub: Subscriber, offer: Jsep): Promise<void> {
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
    onCleanup(() => sink.stop());
    sub.sinks.set(t.mid, counter);
  }
  await sub.pc.setLocalDescription(await sub.pc.createAnswer());
  const jsep = await gathered(sub.pc);
  const now = performance.now();
  for (const counter of sub.sinks.values()) if (counter.since === 0) counter.since = now;
  const started = await sub.handle.message<{ started?: string }>({ request: 'start' }, { jsep });
  if (started.data.started !== 'ok') throw new Error(`${sub.name}: start answered ${JSON.stringify(started.data)}`);
}

/** join (ptype subscriber; `token` for a room with an `allowed` list) with one `streams` entry per feed, answer Janus's offer in one PeerConnection, `start`. */
export async function subscribe(session: JanusSession, room: number, name: string, feeds: number[], token?: string): Promise<Subscriber> {
  const handle = await session.attach(VIDEOROOM_PLUGIN, { opaqueId: `janus-media-${name}` });
  const { data, jsep } = await handle.message<{ videoroom: string; streams?: Array<Record<string, unknown>> }>({
    request: 'join', ptype: 'subscriber', room, token, streams: feeds.map((feed) => ({ feed })),
  });
  if (data.videoroom !== 'attached' || jsep?.type !== 'offer') throw new Error(`${name}: join answered ${JSON.stringify(data)} ${jsep ? `with a ${jsep.type}` : 'without jsep'}`);
  const pc = peerConnection();
  const sub: Subscriber = { name, handle, pc, offers: [], attached: attachedStreams(data.streams, false), startedAt: performance.now(), connectedAt: undefined, sinks: new Map() };
  const watch = setInterval(() => {
    if (sub.connectedAt === undefined && pc.connectionState === 'connected') sub.connectedAt = performance.now();
  }, 10);
  onCleanup(() => clearInterval(watch));
  await answer(sub, jsep);
  return sub;
}

/** `update` with `subscribe`: more feeds in the same PeerConnection; Janus answers `updated` with a new offer. */
export async function addFeeds(sub: Subscriber, feeds: number[]): Promise<void> {
  const { data, jsep } = await sub.handle.message<{ videoroom: string; streams?: Array<Record<string, unknown>> }>({
    request: 'update', subscribe: feeds.map((feed) => ({ feed })),
  });
  if (data.videoroom !== 'updated' || jsep?.type !== 'offer') throw new Error(`${sub.name}: update answered ${JSON.stringify(data)} ${jsep ? `with a ${jsep.type}` : 'without jsep'}`);
  // `updated` lists every stream of the subscription: the new ones are those whose mid is new
  const known = new Set(sub.attached.map((a) => a.mid));
  sub.attached.push(...attachedStreams(data.streams, true).filter((a) => !known.has(a.mid)));
  await answer(sub, jsep);
}

export async function subscriberReport(sub: Subscriber): Promise<SubscriberReport> {
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


/** Runs what runCleanups undoes, newest first; each step best effort and at most 3 s (Janus may be gone). */
export async function runCleanups(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await Promise.race([fn(), sleep(3000)]);
    } catch {
      // best effort: Janus and the namespaces go with the test
    }
  }
}

/**
 * A runner's main: `run` fills `result`; whatever happens, the run is cleaned up and `<tag> {json}` printed, with
 * `error` when a step failed or the run outlived `timeoutMs`, and the process exits (libwebrtc crashes in its
 * static destructors otherwise). `cpuMs` and `elapsedMs` are the runner's own.
 */
export async function runTaggedMain<R extends { cpuMs: number; elapsedMs: number; error?: string | undefined }>(tag: string, timeoutMs: number, result: R, run: () => Promise<void>): Promise<void> {
  const startedAt = performance.now();
  const cpu = process.cpuUsage();
  const print = (code: number): void => {
    const used = process.cpuUsage(cpu);
    result.cpuMs = Math.round((used.user + used.system) / 1000);
    result.elapsedMs = Math.round(performance.now() - startedAt);
    process.stdout.write(`${tag} ${JSON.stringify(result)}\n`, () => process.exit(code));
  };
  const killer = setTimeout(() => {
    result.error = `the runner did not finish within ${timeoutMs} ms`;
    void Promise.race([runCleanups(), sleep(3000)]).finally(() => print(3));
  }, timeoutMs);
  try {
    await run();
  } catch (err) {
    result.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  await runCleanups();
  clearTimeout(killer);
  print(result.error !== undefined ? 1 : 0);
}
