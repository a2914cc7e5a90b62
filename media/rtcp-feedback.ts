/**
 * RTCP feedback (RFC 4585 PLI and NACK, RFC 5104 FIR) through rtpengine for video phones. Pure functions.
 *
 * rtpengine forwards feedback between a WebRTC leg (`UDP/TLS/RTP/SAVPF`) and an `RTP/AVP` leg only when
 * the AVP leg's own SDP carries `a=rtcp-fb` (since 7.4, media_socket.c `determine_handler`); otherwise its
 * SAVPF→AVP handler strips every RTPFB/PSFB packet (`rtcp_avpf2avp_filter`). Before mr11.5.1.20 / mr12.2
 * (Debian 12 ships 10.5) it cannot parse the wildcard form `a=rtcp-fb:* nack pli` that baresip and many
 * phones write: sdp.c `parse_attribute_rtcp_fb` compares the wrong field against "*", fails, and the line
 * is not taken as feedback. Such a phone looks like an AVP-only one, and a browser's picture loss
 * indications never reach it: the browser waits seconds for the phone's next scheduled keyframe.
 *
 * RFC 4585 §4.2: `*` applies the feedback to every payload type of the m-line, so the same feedback
 * written per payload type means the same thing, and every rtpengine reads it.
 */

/**
 * The SDP with each media-level `a=rtcp-fb:* <value>` written once per payload type of its m-line
 * (`a=rtcp-fb:96 <value>`, `a=rtcp-fb:97 <value>` …), in its place; lines already there are not repeated.
 * An SDP without a wildcard is returned as it is (the same string).
 */
export function expandFeedbackWildcards(sdp: string): string {
  if (!WILDCARD.test(sdp)) return sdp;
  // m-sections: the session part, then one per m= line (RFC 8866 §5); a wildcard before the first m=
  // (session level, which RFC 4585 §4.2 does not define) has no payload types to expand to.
  return sdp.split(/(?=^m=)/m).map((section) => {
    const m = /^m=\S+ \S+ \S+ ([\d ]+?)\s*$/m.exec(section);
    if (!m) return section;
    const payloads = m[1]!.split(' ').filter((p) => p !== '');
    const present = new Set(section.split(/\r?\n/));
    return section.replace(WILDCARD_LINE, (_line, value: string, eol: string) => {
      const lines = payloads.map((pt) => `a=rtcp-fb:${pt} ${value}`).filter((l) => !present.has(l));
      return lines.length === 0 ? '' : `${lines.join(eol || '\r\n')}${eol}`;
    });
  }).join('');
}

const WILDCARD = /^a=rtcp-fb:\*[ \t]/m;
const WILDCARD_LINE = /^a=rtcp-fb:\*[ \t]+([^\r\n]*?)[ \t]*(\r?\n|$)/gm;
