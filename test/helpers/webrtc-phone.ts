/**
 * WebRTC softphones with real media, for the media tests: JsSIP (`WebRtcPhone`) or SIP.js
 * (`SipJsWebRtcPhone`, answering only) for the signalling (SIP over WebSocket, RFC 7118) and libwebrtc
 * (`@roamhq/wrtc`) for ICE, DTLS-SRTP, RTP and the codecs, in Node. Each phone
 * sends a sine tone of its own frequency (`RTCAudioSource`) and listens to what it receives
 * (`RTCAudioSink`, decoded PCM), so a test can tell not only that packets arrived but that they decoded to
 * the tone it expects (the peer's, or its own when the far end echoes). With `video`, a phone also sends
 * a synthetic camera (`RTCVideoSource`, moving I420 frames) and counts the frames libwebrtc decodes
 * (`RTCVideoSink`), timed from the moment ICE and DTLS are connected.
 *
 * Only for child processes that do nothing else with WebRTC: `installWrtc()` replaces the WebRTC globals
 * (the fakes of fake-media.ts must not be used in the same process), and a process that loaded libwebrtc
 * should leave with `process.exit()`, which avoids libwebrtc's crash in its static destructors.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import JsSIP from 'jssip';
import { type Invitation, Registerer, SessionState, UserAgent, Web } from 'sip.js';
import { installTestWebSocket } from './softphone.js';
import { type Wrtc, type WrtcAudioSink, type WrtcAudioSource, type WrtcPeerConnection, type WrtcTrack, type WrtcVideoSink, type WrtcVideoSource, loadWrtc } from '../../support/wrtc.js';

export type { WrtcPeerConnection } from '../../support/wrtc.js';

// ---- libwebrtc (@roamhq/wrtc; its types in wrtc.ts) ------------------------------------------------

let wrtc: Wrtc | undefined;

/** Loads libwebrtc and sets the globals JsSIP uses (`RTCPeerConnection`, `window.RTCPeerConnection` …). */
export function installWrtc(): Wrtc {
  if (wrtc) return wrtc;
  wrtc = loadWrtc();
  const g = globalThis as Record<string, unknown>;
  for (const name of ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate', 'MediaStream'] as const) g[name] = wrtc[name];
  g.window = { RTCPeerConnection: wrtc.RTCPeerConnection, RTCSessionDescription: wrtc.RTCSessionDescription };
  // SIP.js's Web SDH announces remote tracks with a MediaStreamTrackEvent, which wrtc lacks
  if (g.MediaStreamTrackEvent === undefined) {
    g.MediaStreamTrackEvent = class MediaStreamTrackEvent extends Event {
      readonly track: unknown;
      constructor(type: string, init: { track: unknown }) {
        super(type);
        this.track = init.track;
      }
    };
  }
  installTestWebSocket();
  return wrtc;
}

// ---- tone in, tone out ------------------------------------------------------------------------------

const SAMPLE_RATE = 48_000;
const FRAME = SAMPLE_RATE / 100; // 10 ms, what RTCAudioSource expects

/** A sine tone fed to a WebRTC audio track in 10 ms frames. */
class ToneSource {
  readonly track: WrtcTrack;
  private readonly source: WrtcAudioSource;
  private readonly timer: NodeJS.Timeout;
  private n = 0;

  constructor(w: Wrtc, readonly frequency: number) {
    this.source = new w.nonstandard.RTCAudioSource();
    this.track = this.source.createTrack();
    const started = Date.now();
    // frames are sent by the clock, not by the timer's count: a late timer catches up
    this.timer = setInterval(() => {
      const due = Math.floor((Date.now() - started) / 10);
      for (let sent = 0; this.n < due && sent < 10; sent++) this.frame();
    }, 10);
  }

  private frame(): void {
    const samples = new Int16Array(FRAME);
    for (let i = 0; i < FRAME; i++) samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * this.frequency * (this.n * FRAME + i)) / SAMPLE_RATE));
    this.n++;
    this.source.onData({ samples, sampleRate: SAMPLE_RATE, bitsPerSample: 16, channelCount: 1, numberOfFrames: FRAME });
  }

  stop(): void {
    clearInterval(this.timer);
    this.track.stop();
  }
}

const CAMERA = { width: 320, height: 240, fps: 30 };

/** A camera stand-in: I420 frames with a bar that moves every frame (so each frame differs from the last). */
class CameraSource {
  readonly track: WrtcTrack;
  private readonly source: WrtcVideoSource;
  private readonly timer: NodeJS.Timeout;
  private readonly data = new Uint8ClampedArray(CAMERA.width * CAMERA.height * 1.5);
  private n = 0;

  constructor(w: Wrtc) {
    this.source = new w.nonstandard.RTCVideoSource();
    this.track = this.source.createTrack();
    this.data.fill(128);
    this.timer = setInterval(() => this.frame(), 1000 / CAMERA.fps);
  }

  private frame(): void {
    const { width, height } = CAMERA;
    const bar = (this.n++ * 4) % width;
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) this.data[row + x] = Math.abs(x - bar) < 16 ? 235 : 16 + ((x + y) & 63);
    }
    this.source.onFrame({ width, height, data: this.data });
  }

  stop(): void {
    clearInterval(this.timer);
    this.track.stop();
  }
}

/** What a phone sends in a call: its tone, and a camera when it does video. */
export class LocalMedia {
  readonly tone: ToneSource;
  readonly camera: CameraSource | undefined;

  constructor(private readonly w: Wrtc, toneHz: number, video: boolean) {
    this.tone = new ToneSource(w, toneHz);
    this.camera = video ? new CameraSource(w) : undefined;
  }

  get tracks(): WrtcTrack[] {
    return this.camera ? [this.tone.track, this.camera.track] : [this.tone.track];
  }

  stream(): unknown {
    return new this.w.MediaStream(this.tracks);
  }

  stop(): void {
    this.tone.stop();
    this.camera?.stop();
  }
}

/** Goertzel power of one frequency in a block of samples, normalised by the block's length. */
function goertzel(samples: Float64Array, rate: number, frequency: number): number {
  const k = (2 * Math.cos((2 * Math.PI * frequency) / rate));
  let s1 = 0;
  let s2 = 0;
  for (const x of samples) {
    const s0 = x + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - k * s1 * s2) / (samples.length * samples.length);
}

/** What the decoded audio a phone received sounds like. */
export interface HeardAudio {
  /** Decoded samples handed to the sink (mono, after channel mixing). */
  samples: number;
  /** RMS of the decoded audio, 0 … 1. */
  rms: number;
  /** The strongest of the probed frequencies, in Hz (undefined when silent). */
  dominantHz: number | undefined;
  /** Goertzel power per probed frequency. */
  power: Record<string, number>;
}

/** Frequencies the phones send and the analysis probes. */
export const PROBE_FREQUENCIES = [440, 660, 880, 1000] as const;

/** Collects the decoded audio of a received track (the last ~2 s). */
class ToneListener {
  private readonly sink: WrtcAudioSink;
  private chunks: Float64Array[] = [];
  private total = 0;
  private rate = SAMPLE_RATE;

  constructor(w: Wrtc, track: WrtcTrack) {
    this.sink = new w.nonstandard.RTCAudioSink(track);
    this.sink.ondata = (d) => {
      this.rate = d.sampleRate;
      const ch = d.channelCount || 1;
      const frames = Math.floor(d.samples.length / ch);
      const mono = new Float64Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < ch; c++) sum += d.samples[i * ch + c]!;
        mono[i] = sum / ch / 32768;
      }
      this.chunks.push(mono);
      this.total += frames;
      if (this.chunks.length > 250) this.chunks.shift();
    };
  }

  /** Analyses the last `ms` of decoded audio. */
  heard(ms = 1000): HeardAudio {
    const want = Math.floor((this.rate * ms) / 1000);
    const recent: Float64Array[] = [];
    let have = 0;
    for (let i = this.chunks.length - 1; i >= 0 && have < want; i--) {
      recent.unshift(this.chunks[i]!);
      have += this.chunks[i]!.length;
    }
    const block = new Float64Array(have);
    let off = 0;
    for (const c of recent) {
      block.set(c, off);
      off += c.length;
    }
    let energy = 0;
    for (const x of block) energy += x * x;
    const rms = block.length === 0 ? 0 : Math.sqrt(energy / block.length);
    const power: Record<string, number> = {};
    let dominantHz: number | undefined;
    let best = 0;
    for (const f of PROBE_FREQUENCIES) {
      const p = block.length === 0 ? 0 : goertzel(block, this.rate, f);
      power[String(f)] = p;
      if (p > best) {
        best = p;
        dominantHz = f;
      }
    }
    return { samples: this.total, rms, dominantHz: rms > 0.001 ? dominantHz : undefined, power };
  }

  stop(): void {
    this.sink.stop();
  }
}

// ---- stats ------------------------------------------------------------------------------------------

/** The receive and send side of a call's audio, from `RTCPeerConnection.getStats()`. */
export interface AudioStats {
  iceConnectionState: string;
  /** inbound-rtp */
  packetsReceived: number;
  bytesReceived: number;
  totalSamplesReceived: number;
  concealedSamples: number;
  audioLevel: number;
  totalAudioEnergy: number;
  /** `audio/PCMU`, `audio/opus` … of the inbound stream. */
  inboundCodec: string | undefined;
  /** outbound-rtp */
  packetsSent: number;
  outboundCodec: string | undefined;
  /** `address:port` of the remote end of the selected ICE candidate pair (rtpengine, or the peer). */
  remoteCandidate: string | undefined;
  /** The type of the selected pair's local candidate (`host`, `srflx`, `relay`): `relay` when media goes through TURN. */
  localCandidateType: string | undefined;
}

/** The stats reports by id, and the codec mime type a report's codecId names. */
async function statsOf(pc: WrtcPeerConnection): Promise<{ all: Map<string, Record<string, unknown>>; codec: (id: unknown) => string | undefined }> {
  const report = await pc.getStats();
  const all = new Map<string, Record<string, unknown>>();
  report.forEach((r) => all.set(String(r.id), r));
  const codec = (id: unknown): string | undefined => {
    const c = typeof id === 'string' ? all.get(id) : undefined;
    return typeof c?.mimeType === 'string' ? c.mimeType : undefined;
  };
  return { all, codec };
}

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

async function audioStats(pc: WrtcPeerConnection): Promise<AudioStats> {
  const { all, codec } = await statsOf(pc);
  const out: AudioStats = {
    iceConnectionState: pc.iceConnectionState, packetsReceived: 0, bytesReceived: 0, totalSamplesReceived: 0,
    concealedSamples: 0, audioLevel: 0, totalAudioEnergy: 0, inboundCodec: undefined, packetsSent: 0,
    outboundCodec: undefined, remoteCandidate: undefined, localCandidateType: undefined,
  };
  for (const r of all.values()) {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      out.packetsReceived += num(r.packetsReceived);
      out.bytesReceived += num(r.bytesReceived);
      out.totalSamplesReceived += num(r.totalSamplesReceived);
      out.concealedSamples += num(r.concealedSamples);
      out.audioLevel = Math.max(out.audioLevel, num(r.audioLevel));
      out.totalAudioEnergy += num(r.totalAudioEnergy);
      out.inboundCodec ??= codec(r.codecId);
    } else if (r.type === 'outbound-rtp' && r.kind === 'audio') {
      out.packetsSent += num(r.packetsSent);
      out.outboundCodec ??= codec(r.codecId);
    } else if (r.type === 'transport' && typeof r.selectedCandidatePairId === 'string') {
      const pair = all.get(r.selectedCandidatePairId);
      const remote = typeof pair?.remoteCandidateId === 'string' ? all.get(pair.remoteCandidateId) : undefined;
      if (remote) out.remoteCandidate = `${String(remote.address ?? remote.ip)}:${String(remote.port)}`;
      const local = typeof pair?.localCandidateId === 'string' ? all.get(pair.localCandidateId) : undefined;
      if (typeof local?.candidateType === 'string') out.localCandidateType = local.candidateType;
    }
  }
  return out;
}

/** The video a call received and sent, from `getStats()` and the decoded-frame sink. */
export interface VideoStats {
  /** ms from `connectionState` "connected" (ICE and DTLS) to the first frame decoded; undefined when none was. */
  firstFrameMs: number | undefined;
  /** Frames handed to the sink (decoded) so far. */
  framesRendered: number;
  /** inbound-rtp */
  packetsReceived: number;
  framesDecoded: number;
  keyFramesDecoded: number;
  framesDropped: number;
  /** PLIs and FIRs this side sent, asking the far end for a keyframe (RFC 4585 §6.3.1, RFC 5104 §4.3.1). */
  pliSent: number;
  firSent: number;
  inboundCodec: string | undefined;
  /** outbound-rtp */
  framesEncoded: number;
  keyFramesEncoded: number;
  /** PLIs and FIRs that reached this side's encoder. */
  pliReceived: number;
  firReceived: number;
  outboundCodec: string | undefined;
}

async function videoStats(pc: WrtcPeerConnection, receiver: VideoReceiver): Promise<VideoStats> {
  const { all, codec } = await statsOf(pc);
  const out: VideoStats = {
    firstFrameMs: receiver.firstFrameMs, framesRendered: receiver.frames, packetsReceived: 0, framesDecoded: 0, keyFramesDecoded: 0,
    framesDropped: 0, pliSent: 0, firSent: 0, inboundCodec: undefined, framesEncoded: 0, keyFramesEncoded: 0, pliReceived: 0,
    firReceived: 0, outboundCodec: undefined,
  };
  for (const r of all.values()) {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      out.packetsReceived += num(r.packetsReceived);
      out.framesDecoded += num(r.framesDecoded);
      out.keyFramesDecoded += num(r.keyFramesDecoded);
      out.framesDropped += num(r.framesDropped);
      out.pliSent += num(r.pliCount);
      out.firSent += num(r.firCount);
      out.inboundCodec ??= codec(r.codecId);
    } else if (r.type === 'outbound-rtp' && r.kind === 'video') {
      out.framesEncoded += num(r.framesEncoded);
      out.keyFramesEncoded += num(r.keyFramesEncoded);
      out.pliReceived += num(r.pliCount);
      out.firReceived += num(r.firCount);
      out.outboundCodec ??= codec(r.codecId);
    }
  }
  return out;
}

/**
 * Times a call's media: when its peer connection became "connected" (ICE and DTLS), and when the first
 * video frame was decoded. It watches from the moment the call exists, so nothing that happens before the
 * SIP library reports the call established is missed; it stops when both are known.
 */
class VideoReceiver {
  connectedAt: number | undefined;
  firstFrameAt: number | undefined;
  frames = 0;
  private sink: WrtcVideoSink | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(w: Wrtc, pc: () => WrtcPeerConnection | undefined) {
    this.timer = setInterval(() => {
      const conn = pc();
      if (!conn) return;
      if (this.connectedAt === undefined && conn.connectionState === 'connected') this.connectedAt = performance.now();
      if (!this.sink) {
        const track = conn.getReceivers().find((r) => r.track?.kind === 'video')?.track;
        if (track) {
          this.sink = new w.nonstandard.RTCVideoSink(track);
          this.sink.onframe = () => {
            this.firstFrameAt ??= performance.now();
            this.frames++;
          };
        }
      }
      if (this.connectedAt !== undefined && this.sink) clearInterval(this.timer);
    }, 5);
  }

  get firstFrameMs(): number | undefined {
    return this.firstFrameAt === undefined || this.connectedAt === undefined ? undefined : Math.round(this.firstFrameAt - this.connectedAt);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sink?.stop();
  }
}

// ---- the phone --------------------------------------------------------------------------------------

export interface WebRtcPhoneOptions {
  uri: string;
  password: string;
  /** `ws://host:port` or `wss://host:port`. */
  wsUrl: string;
  /** Frequency of the tone this phone sends, one of PROBE_FREQUENCIES. */
  toneHz: number;
  /** Send a camera too (audio + video calls). */
  video?: boolean;
  /**
   * Audio codecs to keep in the SDP this phone sends (e.g. `['opus']` for a browser offer trimmed to
   * opus); everything libwebrtc offers by default.
   */
  codecs?: readonly string[];
  /**
   * SIP.js only: Contact URI parameters, e.g. the RFC 8599 `pn-provider`/`pn-prid`/`pn-param` of a mobile
   * app that a push wakes.
   */
  contactParams?: Record<string, string>;
  /** SIP.js only: the RFC 5626 +sip.instance UUID; the same app started again after a push keeps it. */
  instanceId?: string;
  /** The RTCPeerConnection's ICE servers (what GET /v1/ice-servers gave the app); default none. */
  iceServers?: ReadonlyArray<{ urls: string[]; username?: string; credential?: string }>;
  /** `relay`: only TURN relay candidates (W3C WebRTC §4.2.1), as behind a firewall that lets only TURN out. */
  iceTransportPolicy?: 'all' | 'relay';
}

/** The RTCConfiguration of a phone's calls. */
function peerConfiguration(options: WebRtcPhoneOptions): { iceServers: unknown[]; iceTransportPolicy: 'all' | 'relay' } {
  return { iceServers: [...(options.iceServers ?? [])], iceTransportPolicy: options.iceTransportPolicy ?? 'all' };
}

type JsSipSession = ReturnType<InstanceType<typeof JsSIP.UA>['call']>;

/** What a call needs from the SIP library's session, whichever library it is. */
interface SessionControl {
  /** The session's RTCPeerConnection (once it exists). */
  pc(): WrtcPeerConnection;
  /** Resolves with the library's words when the session has ended. */
  readonly ended: Promise<string>;
  isEnded(): boolean;
  /** BYE (or CANCEL / reject, whatever ends it in its state). */
  terminate(): void;
}

function jssipControl(session: JsSipSession): SessionControl {
  const ended = new Promise<string>((resolve) => {
    session.on('ended', (e: unknown) => resolve(`ended: ${String((e as { cause?: unknown }).cause)}`));
    session.on('failed', (e: unknown) => resolve(`failed: ${String((e as { cause?: unknown }).cause)}`));
  });
  return {
    pc: () => session.connection as unknown as WrtcPeerConnection,
    ended,
    isEnded: () => session.isEnded(),
    terminate: () => session.terminate(),
  };
}

/** One call with media: the SDP exchanged, the audio stats and what was heard. */
export class WebRtcCall {
  private listener: ToneListener | undefined;
  private readonly video: VideoReceiver;

  constructor(
    private readonly w: Wrtc,
    private readonly control: SessionControl,
    readonly callId: string,
    private readonly media: LocalMedia,
  ) {
    this.video = new VideoReceiver(w, () => {
      try {
        return control.pc() ?? undefined;
      } catch {
        return undefined; // not created yet
      }
    });
  }

  get pc(): WrtcPeerConnection {
    return this.control.pc();
  }

  /** Starts listening to the received track (the receiver's track exists once the remote SDP is set). */
  listen(): void {
    if (this.listener) return;
    const track = this.pc.getReceivers().find((r) => r.track?.kind === 'audio')?.track;
    if (!track) throw new Error(`call ${this.callId}: no audio track received`);
    this.listener = new ToneListener(this.w, track);
  }

  /** Resolves when ICE (and DTLS, where there is one) is connected; bounded. */
  async waitForMedia(timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!['connected', 'completed'].includes(this.pc.iceConnectionState)) {
      if (Date.now() > deadline) throw new Error(`call ${this.callId}: ICE still "${this.pc.iceConnectionState}" after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  stats(): Promise<AudioStats> {
    return audioStats(this.pc);
  }

  videoStats(): Promise<VideoStats> {
    return videoStats(this.pc, this.video);
  }

  heard(ms?: number): HeardAudio {
    return this.listener?.heard(ms) ?? { samples: 0, rms: 0, dominantHz: undefined, power: {} };
  }

  get isEnded(): boolean {
    return this.control.isEnded();
  }

  /** BYE (when still up); resolves when the library has ended the session, bounded. */
  async hangup(timeoutMs = 5000): Promise<void> {
    if (!this.control.isEnded()) this.control.terminate();
    await Promise.race([this.control.ended, sleep(timeoutMs)]);
    this.close();
  }

  waitForEnded(timeoutMs = 5000): Promise<string> {
    return Promise.race([this.control.ended, sleep(timeoutMs).then(() => 'still up')]);
  }

  /** Ends the session if it is still up, and stops the tone, the camera and the listeners. Never throws. */
  dispose(): void {
    try {
      if (!this.control.isEnded()) this.control.terminate();
    } catch {
      // already gone
    }
    this.close();
  }

  close(): void {
    this.listener?.stop();
    this.video.stop();
    this.media.stop();
  }
}

/** A phone of either library, as the media tests use it. */
export interface MediaPhone {
  readonly library: 'jssip' | 'sip.js' | 'plain-rtp';
  readonly aor: string;
  register(timeoutMs?: number): Promise<void>;
  call(target: string, timeoutMs?: number): Promise<WebRtcCall>;
  /** Answers the next incoming call; `invite` is the INVITE as received. */
  answer(timeoutMs?: number): Promise<WebRtcCall & { invite: string }>;
  stop(): Promise<void>;
}

/** Keeps only the named audio codecs (and their rtx/fmtp lines) in an SDP's audio m-line. */
export function keepCodecs(sdp: string, codecs: readonly string[]): string {
  const keep = new Set(codecs.map((c) => c.toLowerCase()));
  const lines = sdp.split('\r\n');
  const pts = new Set<string>();
  for (const l of lines) {
    const m = /^a=rtpmap:(\d+) ([^/]+)\//.exec(l);
    if (m && keep.has(m[2]!.toLowerCase())) pts.add(m[1]!);
  }
  return lines
    .filter((l) => {
      const m = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+) /.exec(l);
      return !m || pts.has(m[1]!);
    })
    .map((l) => {
      const m = /^(m=audio \d+ \S+) (.*)$/.exec(l);
      return m ? `${m[1]} ${m[2]!.split(' ').filter((pt) => pts.has(pt)).join(' ')}` : l;
    })
    .join('\r\n');
}

export class WebRtcPhone implements MediaPhone {
  readonly library = 'jssip';
  private readonly w: Wrtc;
  private readonly ua: JsSIP.UA;
  private readonly incoming: Array<{ session: JsSipSession; callId: string; invite: string }> = [];
  private readonly calls: WebRtcCall[] = [];

  static async create(options: WebRtcPhoneOptions): Promise<WebRtcPhone> {
    const phone = new WebRtcPhone(options);
    const connected = new Promise<void>((resolve) => phone.ua.once('connected', () => resolve()));
    phone.ua.start();
    await Promise.race([connected, sleep(5000).then(() => Promise.reject(new Error(`${options.uri}: WebSocket not connected after 5 s`)))]);
    return phone;
  }

  /** The phone's address-of-record. */
  get aor(): string {
    return this.options.uri;
  }

  private constructor(private readonly options: WebRtcPhoneOptions) {
    this.w = installWrtc();
    this.ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(options.wsUrl)],
      uri: options.uri,
      password: options.password,
      register: false,
      session_timers: false,
      user_agent: 'softswitch-test JsSIP+wrtc',
    });
    this.ua.on('newRTCSession', (e: unknown) => {
      const ev = e as { originator: string; session: JsSipSession; request: { call_id: string; toString(): string } };
      if (ev.originator !== 'remote') return;
      this.trim(ev.session);
      this.incoming.push({ session: ev.session, callId: ev.request.call_id, invite: ev.request.toString() });
    });
  }

  /** REGISTER with digest auth; bounded. */
  register(timeoutMs = 5000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.options.uri}: REGISTER not answered in ${timeoutMs} ms`)), timeoutMs);
      this.ua.once('registered', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ua.once('registrationFailed', (e: unknown) => {
        clearTimeout(timer);
        reject(new Error(`${this.options.uri}: REGISTER failed (${String((e as { cause?: unknown }).cause)})`));
      });
      this.ua.register();
    });
  }

  /** Places a call with a tone track (and the camera); resolves once it is established (2xx, ACK sent). */
  async call(target: string, timeoutMs = 10_000): Promise<WebRtcCall> {
    const media = new LocalMedia(this.w, this.options.toneHz, this.options.video === true);
    const session = this.ua.call(target, { mediaStream: media.stream() as never, pcConfig: peerConfiguration(this.options) as never });
    this.trim(session);
    const callId = (session as unknown as { _request: { call_id: string } })._request.call_id;
    const call = new WebRtcCall(this.w, jssipControl(session), callId, media);
    this.calls.push(call);
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
      session.on('confirmed', () => {
        clearTimeout(timer);
        resolve('confirmed');
      });
      session.on('failed', (e: unknown) => {
        clearTimeout(timer);
        const status = (e as { message?: { status_code?: number } }).message?.status_code;
        resolve(`failed: ${String((e as { cause?: unknown }).cause)}${status === undefined ? '' : ` (${status})`}`);
      });
    });
    if (outcome !== 'confirmed') {
      call.close();
      if (!session.isEnded()) session.terminate();
      throw new Error(`call to ${target}: ${outcome}`);
    }
    call.listen();
    return call;
  }

  /** Answers the next incoming call with a tone track (and the camera); resolves once our 200 is ACKed. */
  async answer(timeoutMs = 10_000): Promise<WebRtcCall & { invite: string }> {
    const deadline = Date.now() + timeoutMs;
    while (this.incoming.length === 0) {
      if (Date.now() > deadline) throw new Error(`${this.options.uri}: no incoming call within ${timeoutMs} ms`);
      await sleep(20);
    }
    const { session, callId, invite } = this.incoming.shift()!;
    const media = new LocalMedia(this.w, this.options.toneHz, this.options.video === true);
    const call = Object.assign(new WebRtcCall(this.w, jssipControl(session), callId, media), { invite });
    this.calls.push(call);
    const confirmed = new Promise<string>((resolve) => {
      session.on('confirmed', () => resolve('confirmed'));
      session.on('failed', (e: unknown) => resolve(`failed: ${String((e as { cause?: unknown }).cause)}`));
      session.on('ended', (e: unknown) => resolve(`ended: ${String((e as { cause?: unknown }).cause)}`));
    });
    session.answer({ mediaStream: media.stream() as never, pcConfig: peerConfiguration(this.options) as never });
    const outcome = await Promise.race([confirmed, sleep(Math.max(1, deadline - Date.now())).then(() => 'no ACK in time')]);
    if (outcome !== 'confirmed') {
      call.close();
      throw new Error(`${this.options.uri}: answering ${callId}: ${outcome}`);
    }
    call.listen();
    return call;
  }

  /** Ends every call, un-registers (bounded) and stops the UA. Never throws. */
  async stop(): Promise<void> {
    for (const c of this.calls) c.dispose();
    const unregistered = this.ua.isRegistered() ? new Promise<void>((r) => this.ua.once('unregistered', () => r())) : Promise.resolve();
    try {
      this.ua.stop();
    } catch {
      // stopping twice
    }
    await Promise.race([unregistered, sleep(1500)]);
  }

  /** Trims the SDP we send to `options.codecs`, when set. */
  private trim(session: JsSipSession): void {
    const codecs = this.options.codecs;
    if (!codecs) return;
    session.on('sdp', (e: unknown) => {
      const ev = e as { originator: string; sdp: string };
      if (ev.originator === 'local') ev.sdp = keepCodecs(ev.sdp, codecs);
    });
  }
}

/**
 * The same phone on SIP.js: its own Web `SessionDescriptionHandler` on libwebrtc, fed the tone by a
 * `MediaStreamFactory`, no STUN server (the default configuration names a public one).
 */
export class SipJsWebRtcPhone implements MediaPhone {
  readonly library = 'sip.js';
  private readonly w: Wrtc;
  private readonly ua: UserAgent;
  private readonly registerer: Registerer;
  private readonly incoming: Invitation[] = [];
  private readonly calls: WebRtcCall[] = [];
  /** The media of the session being set up: the media stream factory hands it to the SDH. */
  private pendingMedia: LocalMedia | undefined;
  private invites = 0;

  static async create(options: WebRtcPhoneOptions): Promise<SipJsWebRtcPhone> {
    const phone = new SipJsWebRtcPhone(options);
    await Promise.race([phone.ua.start(), sleep(5000).then(() => Promise.reject(new Error(`${options.uri}: WebSocket not connected after 5 s`)))]);
    return phone;
  }

  get aor(): string {
    return this.options.uri;
  }

  /** INVITEs the user agent was handed, answered or not (a woken app must get its call once). */
  get invitesReceived(): number {
    return this.invites;
  }

  private constructor(private readonly options: WebRtcPhoneOptions) {
    this.w = installWrtc();
    const uri = UserAgent.makeURI(options.uri);
    if (!uri) throw new TypeError(`not a SIP URI: ${options.uri}`);
    const mediaStreamFactory: Web.MediaStreamFactory = () => {
      const media = this.pendingMedia ?? new LocalMedia(this.w, options.toneHz, options.video === true);
      this.pendingMedia = media;
      return Promise.resolve(media.stream() as never);
    };
    this.ua = new UserAgent({
      uri,
      authorizationUsername: /^sips?:([^@]+)@/.exec(options.uri)?.[1],
      authorizationPassword: options.password,
      transportOptions: { server: options.wsUrl, connectionTimeout: 5, traceSip: false },
      sessionDescriptionHandlerFactory: Web.defaultSessionDescriptionHandlerFactory(mediaStreamFactory),
      sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: peerConfiguration(options) as never, iceGatheringTimeout: 2000 },
      logLevel: 'error',
      userAgentString: 'softswitch-test SIP.js+wrtc',
      ...(options.contactParams === undefined ? {} : { contactParams: options.contactParams }),
      ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId, instanceIdAlwaysAdded: true }),
      delegate: {
        onInvite: (invitation) => {
          this.invites++;
          this.incoming.push(invitation);
        },
      },
    });
    this.registerer = new Registerer(this.ua, { expires: 300 });
  }

  register(timeoutMs = 5000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.options.uri}: REGISTER not answered in ${timeoutMs} ms`)), timeoutMs);
      this.registerer
        .register({
          requestDelegate: {
            onAccept: () => {
              clearTimeout(timer);
              resolve();
            },
            onReject: (r) => {
              clearTimeout(timer);
              reject(new Error(`${this.options.uri}: REGISTER answered ${r.message.statusCode}`));
            },
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err as Error);
        });
    });
  }

  call(): Promise<WebRtcCall> {
    return Promise.reject(new Error('SipJsWebRtcPhone only answers in these tests'));
  }

  async answer(timeoutMs = 10_000): Promise<WebRtcCall & { invite: string }> {
    const deadline = Date.now() + timeoutMs;
    while (this.incoming.length === 0) {
      if (Date.now() > deadline) throw new Error(`${this.options.uri}: no incoming call within ${timeoutMs} ms`);
      await sleep(20);
    }
    const invitation = this.incoming.shift()!;
    const media = new LocalMedia(this.w, this.options.toneHz, this.options.video === true);
    this.pendingMedia = media;
    const ended = new Promise<string>((resolve) => {
      invitation.stateChange.addListener((state) => {
        if (state === SessionState.Terminated) resolve('terminated');
      });
    });
    const control: SessionControl = {
      pc: () => (invitation.sessionDescriptionHandler as unknown as { peerConnection: WrtcPeerConnection }).peerConnection,
      ended,
      isEnded: () => invitation.state === SessionState.Terminated,
      terminate: () => {
        if (invitation.state === SessionState.Established) void invitation.bye().catch(() => undefined);
        else if (invitation.state !== SessionState.Terminated) void invitation.reject().catch(() => undefined);
      },
    };
    const call = Object.assign(new WebRtcCall(this.w, control, invitation.request.callId, media), { invite: invitation.request.toString() });
    this.calls.push(call);
    const established = new Promise<string>((resolve) => {
      invitation.stateChange.addListener((state) => {
        if (state === SessionState.Established) resolve('established');
        if (state === SessionState.Terminated) resolve('terminated');
      });
    });
    try {
      await invitation.accept();
    } finally {
      this.pendingMedia = undefined;
    }
    const outcome = await Promise.race([established, sleep(Math.max(1, deadline - Date.now())).then(() => 'not established in time')]);
    if (outcome !== 'established') {
      call.close();
      throw new Error(`${this.options.uri}: answering ${call.callId}: ${outcome}`);
    }
    call.listen();
    return call;
  }

  async stop(): Promise<void> {
    for (const c of this.calls) c.dispose();
    try {
      await Promise.race([this.registerer.unregister(), sleep(1500)]);
    } catch {
      // not registered
    }
    await Promise.race([this.ua.stop().catch(() => undefined), sleep(2000)]);
  }

  /**
   * The app is put to sleep (iOS kills it in the background): its WebSocket dies without a close frame,
   * so the un-REGISTER of stop() has nowhere to go and the server keeps the binding. Never throws.
   */
  async sleep(): Promise<void> {
    // the test WebSocket (softphone.ts) is a `ws` socket: terminate() drops the TCP connection
    (this.ua.transport as unknown as { ws?: { terminate(): void } }).ws?.terminate();
    await this.stop();
  }
}
