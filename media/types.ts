/**
 * The media module's public types: what the proxy tells the gateway about each leg, and the gateway's
 * options. Types only.
 */
import type { Logger } from '../src/log/index.js';
import type { RtpenginePool } from './rtpengine/index.js';

/** The SIP transport a leg's signalling uses (what the Via / the binding's flow says). */
export type SipTransport = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/**
 * `webrtc`: a browser or WebRTC softphone: ICE, DTLS-SRTP, rtcp-mux, UDP/TLS/RTP/SAVPF, opus.
 * `plain`: RTP/AVP without ICE or DTLS: FreeSWITCH, trunks, desk phones.
 */
export type MediaProfile = 'webrtc' | 'plain';

/** One leg of a call as the proxy sees it. */
export interface LegInfo {
  transport: SipTransport;
  /** The SDP this leg sent, when known (the offer for the caller, the answer for the callee). */
  sdp?: string | Buffer | undefined;
}

export interface MediaOfferParams {
  callId: string;
  fromTag: string;
  /** The branch of the forked INVITE this offer goes out on: one media session per branch. */
  viaBranch?: string | undefined;
  /** The caller's offer. */
  sdp: string | Buffer;
  /** The caller's leg. */
  from: LegInfo;
  /** The callee's leg (its `sdp` is usually unknown at offer time). */
  to: LegInfo;
}

export interface MediaAnswerParams {
  callId: string;
  fromTag: string;
  toTag: string;
  viaBranch?: string | undefined;
  /** The callee's answer. */
  sdp: string | Buffer;
  /** The caller's leg; its `sdp`, the original offer, refines the caller's profile. */
  from: LegInfo;
  /** The callee's leg. */
  to: LegInfo;
}

export interface MediaDeleteParams {
  callId: string;
  /** Without fromTag the whole call goes. */
  fromTag?: string | undefined;
  toTag?: string | undefined;
  /** With a branch and no toTag, only that branch of a fork goes (a loser). */
  viaBranch?: string | undefined;
}

export interface MediaGatewayOptions {
  pool: RtpenginePool;
  logger: Logger;
  /** Relay WebRTC ⇄ WebRTC and plain ⇄ plain calls too (media always through rtpengine); default false. */
  alwaysRelay?: boolean | undefined;
  /** Seconds rtpengine keeps a deleted call (its `delete delay`); default: rtpengine's own setting. */
  deleteDelaySec?: number | undefined;
}

export interface CreateMediaGatewayOptions {
  /** rtpengine ng addresses: `udp:host:port[;weight=N]` or `host:port`. Empty: no media relay. */
  nodes: readonly string[];
  logger: Logger;
  alwaysRelay?: boolean | undefined;
  deleteDelaySec?: number | undefined;
  /** Per-node ng command timeout, retransmissions included; default 3000 ms. */
  timeoutMs?: number | undefined;
  /** How long a failed node is left out; default 30 000 ms. */
  downtimeMs?: number | undefined;
  /** Health-check ping interval; default 10 000 ms. */
  pingIntervalMs?: number | undefined;
  /** A call's node is forgotten this long after its last command; default 12 h. */
  stickyTtlMs?: number | undefined;
}

/** Options of `ngFlags`. */
export interface NgFlagsOptions {
  /** Codecs rtpengine should add to the offer and transcode to (its `codec: { transcode }`). */
  transcode?: readonly string[] | undefined;
}
