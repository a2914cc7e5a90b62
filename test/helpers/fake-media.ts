/**
 * Media fakes for the SIP.js and JsSIP test softphones. They do the SDP offer/answer of RFC 3264 and
 * nothing else: no sockets, no RTP, no ICE checks, no DTLS. A call "established" with them proves the
 * signalling reached both ends and the SDP survived the trip, never that media could flow.
 *
 * - SIP.js: `createFakeSdhFactory()` is a `SessionDescriptionHandlerFactory`; its handler honours
 *   `sessionDescriptionHandlerOptions.hold` and `SessionDescriptionHandlerModifiers` (e.g. `Web.holdModifier`).
 * - JsSIP: `installFakeWebRtc()` puts a minimal `RTCPeerConnection` / `RTCSessionDescription` on the global
 *   object (JsSIP reads `window.RTCPeerConnection` and the bare globals), and `createFakeMediaStream()` is the
 *   `mediaStream` to pass to `ua.call()` / `session.answer()` so that getUserMedia is never called.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type {
  Session, SessionDescriptionHandler, SessionDescriptionHandlerFactory, SessionDescriptionHandlerModifier,
  SessionDescriptionHandlerOptions,
} from 'sip.js';

/** `webrtc`: UDP/TLS/RTP/SAVPF with ICE and DTLS attributes, as a browser offers; `rtp`: plain RTP/AVP, as a desk phone. */
export type MediaProfile = 'webrtc' | 'rtp';
export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
export type SignalingState = 'stable' | 'have-local-offer' | 'have-remote-offer' | 'closed';

export class FakeMediaError extends Error {
  readonly code = 'FAKE_MEDIA_ERR_SDP';
  constructor(message: string) {
    super(message);
    this.name = 'FakeMediaError';
  }
}

interface Codec {
  pt: number;
  name: string;
  rate: number;
  channels?: number | undefined;
}

/** What the fake endpoints "support", in preference order. */
const SUPPORTED: readonly Codec[] = [
  { pt: 111, name: 'opus', rate: 48000, channels: 2 },
  { pt: 0, name: 'PCMU', rate: 8000 },
  { pt: 101, name: 'telephone-event', rate: 8000 },
];
/** RFC 3551 static payload types an offer may use without an rtpmap. */
const STATIC: Readonly<Record<number, Codec>> = { 0: { pt: 0, name: 'PCMU', rate: 8000 }, 8: { pt: 8, name: 'PCMA', rate: 8000 } };
const DIRECTIONS: ReadonlySet<string> = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);
/** The discard port: the SDP names an address, and nothing is listening there. */
const FAKE_PORT = 9;

/** The audio stream of an SDP, as much of it as the fakes look at. */
export interface AudioDescription {
  proto: string;
  codecs: Codec[];
  direction: MediaDirection;
}

/** Parses the first audio m-line of an SDP; throws FakeMediaError when there is none. */
export function parseAudio(sdp: string): AudioDescription {
  const lines = sdp.split(/\r?\n/);
  let sessionDirection: MediaDirection | undefined;
  let audio: { proto: string; pts: number[]; rtpmap: Map<number, Codec>; direction?: MediaDirection } | undefined;
  let inAudio = false;
  for (const line of lines) {
    if (line.startsWith('m=')) {
      if (audio !== undefined) break;
      const [media, , proto, ...fmts] = line.slice(2).trim().split(/\s+/);
      inAudio = media === 'audio';
      if (inAudio) audio = { proto: proto ?? '', pts: fmts.map(Number).filter(Number.isInteger), rtpmap: new Map() };
      continue;
    }
    if (!line.startsWith('a=')) continue;
    const attr = line.slice(2).trim();
    if (DIRECTIONS.has(attr)) {
      if (audio === undefined) sessionDirection = attr as MediaDirection;
      else if (inAudio) audio.direction = attr as MediaDirection;
      continue;
    }
    const m = /^rtpmap:(\d+)\s+([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(attr);
    if (m && audio && inAudio) {
      const pt = Number(m[1]);
      audio.rtpmap.set(pt, { pt, name: m[2]!, rate: Number(m[3]), channels: m[4] === undefined ? undefined : Number(m[4]) });
    }
  }
  if (audio === undefined) throw new FakeMediaError('the SDP has no audio stream');
  const codecs = audio.pts
    .map((pt) => audio.rtpmap.get(pt) ?? STATIC[pt])
    .filter((c): c is Codec => c !== undefined);
  return { proto: audio.proto, codecs, direction: audio.direction ?? sessionDirection ?? 'sendrecv' };
}

function isSecure(proto: string): boolean {
  return /SAVP/i.test(proto);
}

function same(a: Codec, b: Codec): boolean {
  return a.name.toLowerCase() === b.name.toLowerCase() && a.rate === b.rate;
}

/** RFC 3264 §6.1: the direction of an answer, from the offer's and what the answerer wants. */
function answerDirection(offered: MediaDirection, hold: boolean): MediaDirection {
  switch (offered) {
    case 'sendrecv':
      return hold ? 'sendonly' : 'sendrecv';
    case 'sendonly':
      return hold ? 'inactive' : 'recvonly';
    case 'recvonly':
      return 'sendonly';
    case 'inactive':
      return 'inactive';
  }
}

/**
 * The offer/answer state of one endpoint (RFC 3264), shaped like an RTCPeerConnection's signaling states so
 * both fakes share it. It produces fixed, valid SDP (audio, opus/PCMU, `c=IN IP4 127.0.0.1`) and checks what
 * it is given the way a browser would: an offer needs a codec we have, an answer our transport and one of
 * the codecs we offered.
 */
export class FakeMediaSession {
  signalingState: SignalingState = 'stable';
  /** The last SDP received from the peer, offer or answer. */
  remoteSdp: string | undefined;
  /** The last SDP sent to the peer. */
  localSdp: string | undefined;
  private readonly sessionId = String(randomInt(1, 2 ** 47));
  private version = 0;
  private readonly ufrag = randomBytes(3).toString('hex');
  private readonly pwd = randomBytes(12).toString('base64url').slice(0, 22);
  private readonly fingerprint = [...randomBytes(32)].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  private pendingOffer: AudioDescription | undefined;
  private localOffer: AudioDescription | undefined;

  constructor(readonly profile: MediaProfile = 'webrtc') {}

  /** The direction of the audio stream in the last SDP from the peer. */
  get remoteDirection(): MediaDirection | undefined {
    return this.remoteSdp === undefined ? undefined : parseAudio(this.remoteSdp).direction;
  }

  createOffer(direction: MediaDirection = 'sendrecv'): string {
    this.assertOpen();
    const proto = this.profile === 'webrtc' ? 'UDP/TLS/RTP/SAVPF' : 'RTP/AVP';
    return this.build(proto, [...SUPPORTED], direction, 'actpass');
  }

  createAnswer(hold = false): string {
    this.assertOpen();
    const offer = this.pendingOffer;
    if (this.signalingState !== 'have-remote-offer' || offer === undefined) {
      throw new FakeMediaError(`cannot answer in signaling state ${this.signalingState}`);
    }
    const codecs = offer.codecs.filter((c) => SUPPORTED.some((s) => same(s, c)));
    return this.build(offer.proto, codecs, answerDirection(offer.direction, hold), 'active');
  }

  setLocal(type: 'offer' | 'answer', sdp: string): void {
    this.assertOpen();
    if (type === 'offer') {
      if (this.signalingState === 'have-remote-offer') throw new FakeMediaError('cannot set a local offer while a remote offer is pending');
      this.localOffer = parseAudio(sdp);
      this.signalingState = 'have-local-offer';
    } else {
      if (this.signalingState !== 'have-remote-offer') throw new FakeMediaError(`cannot set a local answer in signaling state ${this.signalingState}`);
      this.pendingOffer = undefined;
      this.signalingState = 'stable';
    }
    this.localSdp = sdp;
  }

  setRemote(type: 'offer' | 'answer', sdp: string): void {
    this.assertOpen();
    const audio = parseAudio(sdp);
    if (type === 'offer') {
      if (this.signalingState === 'have-local-offer') throw new FakeMediaError('offer glare: a local offer is pending');
      if (!audio.codecs.some((c) => SUPPORTED.some((s) => s.name !== 'telephone-event' && same(s, c)))) {
        throw new FakeMediaError(`no supported audio codec offered (${audio.codecs.map((c) => c.name).join(', ') || 'none'})`);
      }
      this.pendingOffer = audio;
      this.signalingState = 'have-remote-offer';
    } else {
      const offer = this.localOffer;
      if (this.signalingState !== 'have-local-offer' || offer === undefined) {
        throw new FakeMediaError(`unexpected answer in signaling state ${this.signalingState}`);
      }
      if (isSecure(audio.proto) !== isSecure(offer.proto)) {
        throw new FakeMediaError(`the answer's transport ${audio.proto} does not match the offer's ${offer.proto}`);
      }
      if (!audio.codecs.some((c) => c.name !== 'telephone-event' && offer.codecs.some((o) => same(o, c)))) {
        throw new FakeMediaError('the answer has none of the offered audio codecs');
      }
      this.localOffer = undefined;
      this.signalingState = 'stable';
    }
    this.remoteSdp = sdp;
  }

  rollback(): void {
    this.assertOpen();
    this.pendingOffer = undefined;
    this.localOffer = undefined;
    this.signalingState = 'stable';
  }

  close(): void {
    this.signalingState = 'closed';
  }

  private assertOpen(): void {
    if (this.signalingState === 'closed') throw new FakeMediaError('the media session is closed');
  }

  private build(proto: string, codecs: Codec[], direction: MediaDirection, setup: 'actpass' | 'active'): string {
    this.version++;
    const pts = codecs.map((c) => c.pt).join(' ');
    const maps = codecs.map((c) => `a=rtpmap:${c.pt} ${c.name}/${c.rate}${c.channels ? `/${c.channels}` : ''}`);
    const fmtp = codecs.filter((c) => c.name === 'telephone-event').map((c) => `a=fmtp:${c.pt} 0-16`);
    const head = ['v=0', `o=- ${this.sessionId} ${this.version} IN IP4 127.0.0.1`, 's=-'];
    const lines = isSecure(proto)
      ? [
          ...head, 't=0 0', 'a=group:BUNDLE 0', 'a=msid-semantic: WMS',
          `m=audio ${FAKE_PORT} ${proto} ${pts}`, 'c=IN IP4 127.0.0.1', `a=rtcp:${FAKE_PORT} IN IP4 127.0.0.1`,
          `a=candidate:1 1 udp 2122260223 127.0.0.1 ${FAKE_PORT} typ host`, 'a=end-of-candidates',
          `a=ice-ufrag:${this.ufrag}`, `a=ice-pwd:${this.pwd}`, `a=fingerprint:sha-256 ${this.fingerprint}`,
          `a=setup:${setup}`, 'a=mid:0', `a=${direction}`, 'a=rtcp-mux', ...maps, ...fmtp,
        ]
      : [...head, 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${FAKE_PORT} ${proto} ${pts}`, ...maps, ...fmtp, 'a=ptime:20', `a=${direction}`];
    return `${lines.join('\r\n')}\r\n`;
  }
}

// ---- SIP.js ------------------------------------------------------------------------------------------

/** SIP.js's options for a description, plus the `hold` flag its Web handler understands. */
export interface FakeSdhOptions extends SessionDescriptionHandlerOptions {
  hold?: boolean;
}

/** What a modifier gets and returns (a DOM RTCSessionDescriptionInit). */
interface DescriptionInit {
  type: 'offer' | 'answer' | 'pranswer' | 'rollback';
  sdp?: string;
}

async function applyModifiers(desc: DescriptionInit, modifiers: SessionDescriptionHandlerModifier[] | undefined): Promise<DescriptionInit> {
  let d = desc;
  for (const modify of modifiers ?? []) d = (await modify(d as never)) as DescriptionInit;
  return d;
}

/** A SIP.js SessionDescriptionHandler that only does offer/answer, on a FakeMediaSession. */
export class FakeSessionDescriptionHandler implements SessionDescriptionHandler {
  readonly media: FakeMediaSession;

  constructor(profile: MediaProfile) {
    this.media = new FakeMediaSession(profile);
  }

  close(): void {
    this.media.close();
  }

  async getDescription(options?: FakeSdhOptions, modifiers?: SessionDescriptionHandlerModifier[]): Promise<{ body: string; contentType: string }> {
    const hold = options?.hold === true;
    const type = this.media.signalingState === 'have-remote-offer' ? 'answer' : 'offer';
    const sdp = type === 'answer' ? this.media.createAnswer(hold) : this.media.createOffer(hold ? 'sendonly' : 'sendrecv');
    const desc = await applyModifiers({ type, sdp }, modifiers);
    if (desc.sdp === undefined) throw new FakeMediaError('a modifier removed the SDP');
    this.media.setLocal(type, desc.sdp);
    return { body: desc.sdp, contentType: 'application/sdp' };
  }

  hasDescription(contentType: string): boolean {
    return contentType.toLowerCase().split(';')[0]!.trim() === 'application/sdp';
  }

  async rollbackDescription(): Promise<void> {
    this.media.rollback();
  }

  async setDescription(sdp: string, _options?: FakeSdhOptions, modifiers?: SessionDescriptionHandlerModifier[]): Promise<void> {
    const type = this.media.signalingState === 'have-local-offer' ? 'answer' : 'offer';
    const desc = await applyModifiers({ type, sdp }, modifiers);
    this.media.setRemote(type, desc.sdp ?? '');
  }

  sendDtmf(): boolean {
    return false;
  }
}

/** A SIP.js `sessionDescriptionHandlerFactory`; `onCreate` sees each handler (one per session). */
export function createFakeSdhFactory(
  options: { profile?: MediaProfile; onCreate?: (session: Session, handler: FakeSessionDescriptionHandler) => void } = {},
): SessionDescriptionHandlerFactory {
  return (session: Session) => {
    const handler = new FakeSessionDescriptionHandler(options.profile ?? 'webrtc');
    options.onCreate?.(session, handler);
    return handler;
  };
}

// ---- JsSIP -------------------------------------------------------------------------------------------

/** `pcConfig` key that picks the profile of a FakePeerConnection (browsers ignore unknown keys). */
export interface FakePcConfig {
  iceServers?: unknown[];
  fakeMediaProfile?: MediaProfile;
}

interface DescriptionLike {
  type: 'offer' | 'answer' | 'pranswer' | 'rollback';
  sdp: string;
}

export class FakeSessionDescription implements DescriptionLike {
  readonly type: DescriptionLike['type'];
  readonly sdp: string;
  constructor(init: { type: DescriptionLike['type']; sdp?: string }) {
    this.type = init.type;
    this.sdp = init.sdp ?? '';
  }
  toJSON(): DescriptionLike {
    return { type: this.type, sdp: this.sdp };
  }
}

export interface FakeTrack {
  readonly kind: 'audio';
  readonly id: string;
  enabled: boolean;
  readyState: 'live' | 'ended';
  stop(): void;
}

export interface FakeMediaStream {
  readonly id: string;
  readonly active: boolean;
  getTracks(): FakeTrack[];
  getAudioTracks(): FakeTrack[];
  getVideoTracks(): FakeTrack[];
}

/** One silent audio track that produces nothing: enough for JsSIP to skip getUserMedia. */
export function createFakeMediaStream(): FakeMediaStream {
  const track: FakeTrack = {
    kind: 'audio',
    id: randomBytes(8).toString('hex'),
    enabled: true,
    readyState: 'live',
    stop() {
      this.readyState = 'ended';
    },
  };
  return {
    id: randomBytes(8).toString('hex'),
    get active() {
      return track.readyState === 'live';
    },
    getTracks: () => [track],
    getAudioTracks: () => [track],
    getVideoTracks: () => [],
  };
}

/**
 * The part of RTCPeerConnection JsSIP's RTCSession uses (lib/RTCSession.js): createOffer/createAnswer,
 * set{Local,Remote}Description, localDescription/remoteDescription, signalingState, iceGatheringState
 * (always 'complete', so JsSIP sends the SDP at once without waiting for candidates), iceConnectionState
 * (never 'failed'), addTrack/getSenders (hold and mute toggle `track.enabled`), close, and EventTarget for
 * the listeners it adds. Offers are always sendrecv: JsSIP rewrites the direction itself for hold.
 */
export class FakePeerConnection extends EventTarget {
  static readonly instances = new Set<FakePeerConnection>();
  readonly media: FakeMediaSession;
  iceGatheringState: 'new' | 'gathering' | 'complete' = 'complete';
  iceConnectionState = 'new';
  connectionState = 'new';
  localDescription: FakeSessionDescription | null = null;
  remoteDescription: FakeSessionDescription | null = null;
  private readonly senders: Array<{ track: FakeTrack | null }> = [];

  constructor(config?: FakePcConfig) {
    super();
    this.media = new FakeMediaSession(config?.fakeMediaProfile ?? 'webrtc');
    FakePeerConnection.instances.add(this);
  }

  get signalingState(): SignalingState {
    return this.media.signalingState;
  }

  async createOffer(): Promise<DescriptionLike> {
    return { type: 'offer', sdp: this.media.createOffer('sendrecv') };
  }

  async createAnswer(): Promise<DescriptionLike> {
    return { type: 'answer', sdp: this.media.createAnswer(false) };
  }

  async setLocalDescription(desc: DescriptionLike): Promise<void> {
    if (desc.type !== 'offer' && desc.type !== 'answer') throw new FakeMediaError(`unsupported description type ${desc.type}`);
    this.media.setLocal(desc.type, desc.sdp);
    this.localDescription = new FakeSessionDescription(desc);
  }

  async setRemoteDescription(desc: DescriptionLike): Promise<void> {
    if (desc.type !== 'offer' && desc.type !== 'answer') throw new FakeMediaError(`unsupported description type ${desc.type}`);
    this.media.setRemote(desc.type, desc.sdp);
    this.remoteDescription = new FakeSessionDescription(desc);
  }

  addTrack(track: FakeTrack): { track: FakeTrack | null } {
    const sender = { track };
    this.senders.push(sender);
    return sender;
  }

  getSenders(): Array<{ track: FakeTrack | null }> {
    return [...this.senders];
  }

  getReceivers(): [] {
    return [];
  }

  getTransceivers(): [] {
    return [];
  }

  getRemoteStreams(): [] {
    return [];
  }

  close(): void {
    this.media.close();
    this.iceConnectionState = 'closed';
    this.connectionState = 'closed';
    FakePeerConnection.instances.delete(this);
  }
}

/**
 * Installs the fakes where JsSIP looks for WebRTC: the bare globals RTCPeerConnection and
 * RTCSessionDescription, and `window.RTCPeerConnection`. Only for test processes; idempotent.
 */
export function installFakeWebRtc(): void {
  const g = globalThis as Record<string, unknown>;
  g.RTCPeerConnection = FakePeerConnection;
  g.RTCSessionDescription = FakeSessionDescription;
  const w = g.window as Record<string, unknown> | undefined;
  if (w === undefined) g.window = { RTCPeerConnection: FakePeerConnection, RTCSessionDescription: FakeSessionDescription };
  else {
    w.RTCPeerConnection = FakePeerConnection;
    w.RTCSessionDescription = FakeSessionDescription;
  }
}
