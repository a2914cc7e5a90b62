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
 * The peers themselves (tracks, publish, subscribe, stats) are test/helpers/janus-peer.ts, shared with
 * meeting-media-runner.ts. The runner does not judge: it prints `JANUS-MEDIA-RESULT {json}` and the test asserts on
 * it. A step that cannot go on ends the run with `{ error }`. It leaves Janus as it found it (room destroyed, session
 * destroyed, token removed), exits with process.exit() (libwebrtc crashes in its static destructors otherwise) and kills itself after
 * RUNNER_TIMEOUT_MS whatever happens.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { JanusAdmin, JanusClient, VIDEOROOM_PLUGIN, VideoRoomAdmin } from '../../conference/index.js';
import {
  type PublisherReport, type Publisher, type Subscriber, type SubscriberReport, addFeeds, camera, microphone, num, onCleanup, publish, publisherStats,
  runTaggedMain, statsById, subscribe, subscriberReport,
} from '../helpers/janus-peer.js';

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

export type { PublisherReport, StreamReport, SubscriberReport } from '../helpers/janus-peer.js';

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

const RUNNER_TIMEOUT_MS = Number(process.env.JANUS_MEDIA_RUNNER_TIMEOUT_MS ?? 50_000);
/** When the second subscriber adds the screen (`update`), after its `start`. */
const UPDATE_AFTER_MS = 1000;
/** Step 6: each window's length, and the pause after a `moderate` before the next window starts (packets in flight). */
const MODERATION_WINDOW_MS = 2000;
const MODERATION_SETTLE_MS = 300;

// ---- the run -----------------------------------------------------------------------------------------

async function run(config: RunnerConfig, result: JanusMediaResult): Promise<void> {
  const admin = await JanusAdmin.connect({ url: config.adminUrl, adminSecret: config.adminSecret });
  onCleanup(() => admin.close());
  const token = randomBytes(16).toString('hex');
  await admin.addToken(token, [VIDEOROOM_PLUGIN]);
  onCleanup(() => admin.removeToken(token));
  const client = await JanusClient.connect({ url: config.url, token });
  onCleanup(() => client.close());
  const session = await client.createSession();
  onCleanup(() => session.destroy());

  const rooms = await VideoRoomAdmin.attach(session, { opaqueId: 'janus-media-focus' });
  const secret = randomBytes(8).toString('hex');
  const room = await rooms.create({ room: config.recording?.room, description: 'janus-media', secret, publishers: 4, videocodec: 'vp8', audiocodec: 'opus' });
  result.room = room;
  onCleanup(() => rooms.destroy(room, { secret }));

  const publishers = [await publish(session, room, 'camera', [microphone(), camera(640, 360, 30)], { id: config.recording?.feed })];
  if (config.screen) {
    publishers.push(await publish(session, room, 'screen', [camera(1280, 720, 5)], { videoDescription: 'screen' }));
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

async function main(): Promise<void> {
  const result: JanusMediaResult = { room: undefined, publishers: [], subscribers: [], cpuMs: 0, elapsedMs: 0 };
  await runTaggedMain('JANUS-MEDIA-RESULT', RUNNER_TIMEOUT_MS, result, () => run(JSON.parse(process.env.JANUS_MEDIA_CONFIG ?? '') as RunnerConfig, result));
}

void main();
