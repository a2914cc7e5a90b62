/**
 * Media profiles per leg, and the ng flags that turn an SDP into what the receiving leg speaks. Pure
 * functions: no I/O, no state.
 *
 * In rtpengine's ng protocol the flags of an `offer` shape the SDP sent on to the callee, and the flags of
 * an `answer` shape the SDP sent back to the caller: so `ngFlags` is always asked for the profile of the
 * side that RECEIVES the rewritten SDP.
 */
import { parse as parseSdp, parsePayloads, type SessionDescription } from 'sdp-transform';
import type { NgDict } from './rtpengine/index.js';
import type { LegInfo, MediaProfile, NgFlagsOptions } from './types.js';

/** RFC 3551 §6 static payload types an SDP may list without an rtpmap. */
const STATIC_PAYLOADS: Readonly<Record<number, string>> = {
  0: 'PCMU', 3: 'GSM', 4: 'G723', 8: 'PCMA', 9: 'G722', 18: 'G729',
};
/** Audio codecs every WebRTC browser implements (RFC 7874 §3: opus and G.711 are mandatory). */
const BROWSER_CODECS = ['OPUS', 'PCMU', 'PCMA', 'G722'];

/**
 * `webrtc` when the signalling comes over WebSocket (RFC 7118) or the SDP uses the WebRTC RTP profile
 * (`UDP/TLS/RTP/SAVPF`, or `RTP/SAVPF` from older stacks); `plain` otherwise.
 */
export function legProfile(leg: LegInfo): MediaProfile {
  if (leg.transport === 'ws' || leg.transport === 'wss') return 'webrtc';
  if (leg.sdp === undefined) return 'plain';
  return mediaProtocols(leg.sdp).some((p) => /^(UDP\/TLS\/RTP\/SAVPF?|RTP\/SAVPF)$/i.test(p)) ? 'webrtc' : 'plain';
}

/**
 * The ng dictionary entries for an SDP going to a leg of profile `receiver`.
 *
 * - webrtc: `UDP/TLS/RTP/SAVPF` (libwebrtc refuses an answer in `RTP/SAVPF`), rtpengine as the only ICE
 *   candidate, rtcp-mux offered and required (RFC 8834 §5.1.1), no SDES (browsers only do DTLS-SRTP), an
 *   `a=mid` per m-line. DTLS is left to rtpengine's default on purpose: it starts DTLS right after the
 *   offer, and a browser rejects an answer forced to `DTLS=passive` (see ARCHITECTURE, field notes).
 * - plain: `RTP/AVP` without ICE or DTLS, rtcp-mux taken apart onto separate RTCP ports.
 *
 * `options.transcode` adds `codec: { transcode }`: rtpengine adds those codecs to the offer and transcodes
 * when the callee picks one the caller did not offer (rtpengine reads it in offers only).
 */
export function ngFlags(receiver: MediaProfile, options: NgFlagsOptions = {}): NgDict {
  const flags: Record<string, NgDict[string]> =
    receiver === 'webrtc'
      ? {
          'transport-protocol': 'UDP/TLS/RTP/SAVPF',
          ICE: 'force',
          'rtcp-mux': ['offer', 'require'],
          SDES: ['off'],
          flags: ['generate-mid'],
          replace: ['origin', 'session-connection'],
        }
      : {
          'transport-protocol': 'RTP/AVP',
          ICE: 'remove',
          DTLS: 'off',
          'rtcp-mux': ['demux'],
          replace: ['origin', 'session-connection'],
        };
  if (options.transcode && options.transcode.length > 0) flags.codec = { transcode: [...options.transcode] };
  return flags;
}

/**
 * Which codecs to ask rtpengine to transcode to for an offer going to `receiver`, so the call has a
 * codec both ends speak:
 * - to a plain leg, an offer with opus but without G.711 gets PCMU and PCMA added, unless the plain
 *   leg is known (`receiverSdp`) to speak opus: phones and trunks rarely do, every one does G.711;
 * - to a WebRTC leg, an offer with none of the browser codecs gets opus and PCMU added.
 * Codecs already offered are never listed (listing them would only reorder the offer).
 */
export function transcodeCodecs(input: { offerSdp: string | Buffer; receiver: MediaProfile; receiverSdp?: string | Buffer | undefined }): string[] {
  const offered = new Set(audioCodecs(input.offerSdp).map((c) => c.toUpperCase()));
  if (offered.size === 0) return [];
  if (input.receiver === 'plain') {
    if (!offered.has('OPUS')) return [];
    if (input.receiverSdp !== undefined && audioCodecs(input.receiverSdp).some((c) => c.toUpperCase() === 'OPUS')) return [];
    return ['PCMU', 'PCMA'].filter((c) => !offered.has(c));
  }
  if (BROWSER_CODECS.some((c) => offered.has(c))) return [];
  return ['opus', 'PCMU'];
}

/** The codec names of the SDP's audio m-lines, in order, without duplicates (`opus`, `PCMU`, `telephone-event` …). */
export function audioCodecs(sdp: string | Buffer): string[] {
  const out: string[] = [];
  for (const m of parse(sdp).media) {
    if (m.type !== 'audio' || m.port === 0) continue;
    const rtpmap = new Map(m.rtp.map((r) => [r.payload, r.codec]));
    for (const pt of parsePayloads(String(m.payloads ?? ''))) {
      const name = rtpmap.get(pt) ?? STATIC_PAYLOADS[pt];
      if (name !== undefined && !out.includes(name)) out.push(name);
    }
  }
  return out;
}

/** The transport protocol of each m-line (`RTP/AVP`, `UDP/TLS/RTP/SAVPF` …). */
export function mediaProtocols(sdp: string | Buffer): string[] {
  // Asked of every INVITE and answer the proxy forwards: only the m= lines matter, so they are read
  // with one regular expression instead of a full sdp-transform parse (RFC 8866 §5.14:
  // m=<media> <port>[/<number of ports>] <proto> <fmt> …).
  const text = typeof sdp === 'string' ? sdp : sdp.toString('latin1');
  const out: string[] = [];
  for (const m of text.matchAll(M_LINE)) out.push(m[1]!);
  return out;
}

const M_LINE = /^m=[^ \r\n]+ [^ \r\n]+ ([^ \r\n]+)/gm;

function parse(sdp: string | Buffer): SessionDescription {
  return parseSdp(typeof sdp === 'string' ? sdp : sdp.toString('utf8'));
}
