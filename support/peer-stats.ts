/**
 * Small readers of what libwebrtc peers report, shared by the Janus media tests (test/helpers/janus-peer.ts) and the
 * meetings bench (bench/meetings-peers.ts).
 */

/** SSRC → mid, from the a=ssrc lines of each m-section of an SDP (older libwebrtc stats carry no mid). */
export function ssrcMids(sdp: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const section of sdp.split(/^m=/m).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    if (mid === undefined) continue;
    for (const m of section.matchAll(/^a=ssrc:(\d+) /gm)) out.set(Number(m[1]), mid);
  }
  return out;
}

/** A getStats counter, 0 when the report has none. */
export const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
