/**
 * The part of @roamhq/wrtc (libwebrtc for Node) the tests use, typed here because its own types need the DOM lib:
 * shared by the SIP phones (webrtc-phone.ts) and the Janus media runner.
 */
import { createRequire } from 'node:module';

export interface WrtcTrack {
  readonly kind: string;
  readonly id: string;
  stop(): void;
}
export interface WrtcTransceiver {
  readonly mid: string | null;
  readonly receiver: { track: WrtcTrack };
}
export interface WrtcStatsReport {
  forEach(fn: (report: Record<string, unknown>) => void): void;
}
export interface WrtcDescription {
  type: string;
  sdp: string;
}
export interface WrtcPeerConnection {
  readonly iceConnectionState: string;
  /** ICE and DTLS (RFC 8829 §4.1.11 / W3C RTCPeerConnectionState). */
  readonly connectionState: string;
  readonly iceGatheringState: string;
  readonly localDescription: WrtcDescription | null;
  getReceivers(): Array<{ track: WrtcTrack | null }>;
  getTransceivers(): WrtcTransceiver[];
  getStats(): Promise<WrtcStatsReport>;
  addTrack(track: WrtcTrack, stream: unknown): unknown;
  createOffer(): Promise<WrtcDescription>;
  createAnswer(): Promise<WrtcDescription>;
  setLocalDescription(description: WrtcDescription): Promise<void>;
  setRemoteDescription(description: WrtcDescription): Promise<void>;
  close(): void;
}
export interface WrtcAudioSource {
  createTrack(): WrtcTrack;
  onData(data: { samples: Int16Array; sampleRate: number; bitsPerSample: number; channelCount: number; numberOfFrames: number }): void;
}
export interface WrtcAudioSink {
  ondata: ((data: { samples: Int16Array; sampleRate: number; channelCount: number }) => void) | null;
  stop(): void;
}
export interface WrtcVideoSource {
  createTrack(): WrtcTrack;
  onFrame(frame: { width: number; height: number; data: Uint8ClampedArray }): void;
}
export interface WrtcVideoSink {
  onframe: ((event: { frame: { width: number; height: number } }) => void) | null;
  stop(): void;
}
export interface Wrtc {
  RTCPeerConnection: new (...args: unknown[]) => WrtcPeerConnection;
  RTCSessionDescription: unknown;
  RTCIceCandidate: unknown;
  MediaStream: new (tracks?: WrtcTrack[]) => unknown;
  nonstandard: {
    RTCAudioSource: new () => WrtcAudioSource;
    RTCAudioSink: new (track: WrtcTrack) => WrtcAudioSink;
    RTCVideoSource: new () => WrtcVideoSource;
    RTCVideoSink: new (track: WrtcTrack) => WrtcVideoSink;
  };
}

/** libwebrtc, loaded (a native addon: required, not imported). */
export function loadWrtc(): Wrtc {
  return createRequire(import.meta.url)('@roamhq/wrtc') as Wrtc;
}
