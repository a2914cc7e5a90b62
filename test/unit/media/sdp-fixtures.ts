/**
 * SDP bodies for the media tests, written the way the endpoints write them: a Chrome-style WebRTC offer
 * (trimmed to opus, as the field notes suggest, so that reaching a G.711-only phone needs transcoding) and
 * a desk phone's plain RTP/AVP offer and answer. Addresses are loopback; nothing is ever sent to them.
 */
const crlf = (lines: string[]): string => `${lines.join('\r\n')}\r\n`;

/** A browser's audio offer over WSS: UDP/TLS/RTP/SAVPF, ICE, DTLS fingerprint, rtcp-mux, opus only. */
export function webrtcOffer(port = 50000, options: { withG711?: boolean } = {}): string {
  const pts = options.withG711 ? '111 0 8 126' : '111 126';
  return crlf([
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS 5b2d1a48-8a4f-4b8e-9b3e-6a1d2f0c9e71',
    `m=audio ${port} UDP/TLS/RTP/SAVPF ${pts}`,
    'c=IN IP4 127.0.0.1',
    `a=rtcp:${port} IN IP4 127.0.0.1`,
    `a=candidate:1467250027 1 udp 2122260223 127.0.0.1 ${port} typ host generation 0 network-id 1`,
    'a=ice-ufrag:Fk9X',
    'a=ice-pwd:sBvvPvWk3Q1zD6bGtZ0vXH6q',
    'a=ice-options:trickle',
    'a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08',
    'a=setup:actpass',
    'a=mid:0',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=sendrecv',
    'a=msid:5b2d1a48-8a4f-4b8e-9b3e-6a1d2f0c9e71 0c8d3a1e-4f1b-4a57-a8a4-5d1e1c3f2b90',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    ...(options.withG711 ? ['a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000'] : []),
    'a=rtpmap:126 telephone-event/8000',
    'a=ssrc:2591372415 cname:Yq7sPz0tXk1c2MhE',
    'a=ssrc:2591372415 msid:5b2d1a48-8a4f-4b8e-9b3e-6a1d2f0c9e71 0c8d3a1e-4f1b-4a57-a8a4-5d1e1c3f2b90',
  ]);
}

/** A desk phone's offer: RTP/AVP, G.711 and DTMF events, no ICE, no crypto. */
export function plainOffer(port = 40000): string {
  return crlf([
    'v=0',
    'o=alice 2890844526 2890844526 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 0 8 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendrecv',
  ]);
}

/** A G.711-only phone's answer: PCMU and DTMF events (and no opus). */
export function plainAnswer(port = 40010, pts: { pcmu?: number; dtmf?: number } = {}): string {
  const dtmf = pts.dtmf ?? 101;
  return crlf([
    'v=0',
    'o=bob 2808844564 2808844564 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 0 ${dtmf}`,
    'a=rtpmap:0 PCMU/8000',
    `a=rtpmap:${dtmf} telephone-event/8000`,
    `a=fmtp:${dtmf} 0-16`,
    'a=ptime:20',
    'a=sendrecv',
  ]);
}

/** A browser's answer to a G.711 offer: UDP/TLS/RTP/SAVPF, ICE, DTLS active, rtcp-mux, PCMU. */
export function webrtcAnswer(port = 50010): string {
  return crlf([
    'v=0',
    'o=- 7086516233290618772 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=msid-semantic: WMS',
    `m=audio ${port} UDP/TLS/RTP/SAVPF 0 101`,
    'c=IN IP4 127.0.0.1',
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=candidate:3170325135 1 udp 2122260223 127.0.0.1 ${port} typ host generation 0 network-id 1`,
    'a=ice-ufrag:q3Zl',
    'a=ice-pwd:2XbBk7Gf0pWJnYxq8yV6hT1m',
    'a=ice-options:trickle',
    'a=fingerprint:sha-256 1E:6B:4C:13:58:F1:05:0A:7D:92:AE:3C:61:B2:0F:88:D4:47:5E:9B:C0:2A:73:E6:19:5D:8F:34:A1:C7:06:BB',
    'a=setup:active',
    'a=mid:1',
    'a=sendrecv',
    'a=rtcp-mux',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=ssrc:1181282392 cname:Ek2X3m0Yq1p9Lz7T',
  ]);
}

/** Video codecs as browsers and phones number them: VP8 (RFC 7741), H.264 constrained baseline (RFC 6184). */
export type VideoCodec = 'VP8' | 'H264';
const VIDEO_RTPMAP: Record<VideoCodec, { pt: number; lines: string[] }> = {
  VP8: { pt: 96, lines: ['a=rtpmap:96 VP8/90000'] },
  H264: { pt: 102, lines: ['a=rtpmap:102 H264/90000', 'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f'] },
};
/** What libwebrtc asks of a video sender (RFC 4585 NACK and PLI, RFC 5104 FIR, REMB, transport-cc). */
const BROWSER_FEEDBACK = ['goog-remb', 'transport-cc', 'ccm fir', 'nack', 'nack pli'];

/**
 * A browser's audio + video offer: UDP/TLS/RTP/SAVPF, opus with G.711, `codecs` on the video m-line with
 * the feedback libwebrtc asks for. Each m-line has its own port (no BUNDLE), as rtpengine 10.5 answers.
 */
export function webrtcVideoOffer(port = 50100, codecs: readonly VideoCodec[] = ['VP8', 'H264']): string {
  const audio = webrtcOffer(port, { withG711: true }).replace('a=group:BUNDLE 0\r\n', '');
  const pts = codecs.map((c) => VIDEO_RTPMAP[c].pt);
  return `${audio}${crlf([
    `m=video ${port + 2} UDP/TLS/RTP/SAVPF ${pts.join(' ')}`,
    'c=IN IP4 127.0.0.1',
    `a=candidate:1467250027 1 udp 2122260223 127.0.0.1 ${port + 2} typ host generation 0 network-id 1`,
    'a=ice-ufrag:Fk9X',
    'a=ice-pwd:sBvvPvWk3Q1zD6bGtZ0vXH6q',
    'a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08',
    'a=setup:actpass',
    'a=mid:1',
    'a=sendrecv',
    'a=rtcp-mux',
    ...codecs.flatMap((c) => [...VIDEO_RTPMAP[c].lines, ...BROWSER_FEEDBACK.map((fb) => `a=rtcp-fb:${VIDEO_RTPMAP[c].pt} ${fb}`)]),
    'a=ssrc:3735928559 cname:Yq7sPz0tXk1c2MhE',
  ])}`;
}

/** A browser's answer with audio (PCMU) and video (`codec`), ICE, DTLS active, rtcp-mux. */
export function webrtcVideoAnswer(port = 50110, codec: VideoCodec = 'VP8'): string {
  const { pt, lines } = VIDEO_RTPMAP[codec];
  return `${webrtcAnswer(port)}${crlf([
    `m=video ${port + 2} UDP/TLS/RTP/SAVPF ${pt}`,
    'c=IN IP4 127.0.0.1',
    `a=candidate:3170325135 1 udp 2122260223 127.0.0.1 ${port + 2} typ host generation 0 network-id 1`,
    'a=ice-ufrag:q3Zl',
    'a=ice-pwd:2XbBk7Gf0pWJnYxq8yV6hT1m',
    'a=fingerprint:sha-256 1E:6B:4C:13:58:F1:05:0A:7D:92:AE:3C:61:B2:0F:88:D4:47:5E:9B:C0:2A:73:E6:19:5D:8F:34:A1:C7:06:BB',
    'a=setup:active',
    'a=mid:2',
    'a=sendrecv',
    'a=rtcp-mux',
    ...lines,
    ...BROWSER_FEEDBACK.map((fb) => `a=rtcp-fb:${pt} ${fb}`),
  ])}`;
}

/**
 * A SIP video phone's offer or answer: PCMU audio without feedback and one video codec on `RTP/AVP`, with
 * `a=rtcp-fb` (nack, nack pli, ccm fir) for its payload type, or for every one (`wildcard`, `a=rtcp-fb:*`
 * as baresip writes it), or none (`feedback: false`); `videoPort` 0 rejects the video (an answer that declines it).
 */
export function plainVideoSdp(options: { port?: number; videoPort?: number; codec?: VideoCodec; feedback?: boolean | 'wildcard' } = {}): string {
  const port = options.port ?? 40100;
  const videoPort = options.videoPort ?? port + 2;
  const { pt, lines } = VIDEO_RTPMAP[options.codec ?? 'VP8'];
  const fbPt = options.feedback === 'wildcard' ? '*' : pt;
  const feedback = options.feedback === false || videoPort === 0 ? [] : ['nack', 'nack pli', 'ccm fir'].map((fb) => `a=rtcp-fb:${fbPt} ${fb}`);
  return crlf([
    'v=0',
    'o=baresip 3517112416 3517112416 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 0 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-15',
    'a=sendrecv',
    `m=video ${videoPort} RTP/AVP ${pt}`,
    ...lines,
    ...feedback,
    'a=sendrecv',
  ]);
}
