/**
 * The RTCIceServer list an app gives its RTCPeerConnection (W3C WebRTC §4.2.2 `RTCIceServer`: `urls`,
 * `username`, `credential`), built from turn.servers and a credential from TurnCredentials.
 *
 * STUN needs no credentials (RFC 8489 Binding requests are not authenticated by coturn): `stun:`/`stuns:`
 * URLs go in an entry of their own without them; `turn:`/`turns:` URLs in one with them. Several coturn
 * boxes share the load: the first server is a weighted random pick (weight 2 comes first twice as often as
 * weight 1), the others follow in their configured order, and the servers of the region the app asked for
 * come before all others (each group ordered that way).
 */

/** One configured STUN/TURN server (a turn.servers entry). */
export interface IceServerConfig {
  readonly urls: readonly string[];
  /** Higher: listed first more often; default 1. */
  readonly weight?: number | undefined;
  readonly region?: string | undefined;
}

/** What browsers take (RTCIceServer). */
export interface RtcIceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface IceServersOptions {
  /** Servers of this region first. */
  region?: string | undefined;
  /** A number in [0, 1): Math.random by default (tests). */
  random?: (() => number) | undefined;
}

const isStun = (url: string): boolean => /^stuns?:/i.test(url);

/** The servers with a weighted random pick first, the others after it in their order. */
function weightedOrder<T extends IceServerConfig>(servers: readonly T[], random: () => number): T[] {
  if (servers.length <= 1) return [...servers];
  const weightOf = (s: T): number => Math.max(1, s.weight ?? 1);
  const total = servers.reduce((sum, s) => sum + weightOf(s), 0);
  let point = random() * total;
  let first = servers.length - 1;
  for (const [i, s] of servers.entries()) {
    point -= weightOf(s);
    if (point < 0) {
      first = i;
      break;
    }
  }
  return [servers[first]!, ...servers.filter((_, i) => i !== first)];
}

export function iceServers(
  servers: readonly IceServerConfig[],
  credential: { readonly username: string; readonly credential: string },
  options: IceServersOptions = {},
): RtcIceServer[] {
  const random = options.random ?? Math.random;
  const region = options.region;
  const local = region === undefined ? [] : servers.filter((s) => s.region === region);
  const others = region === undefined ? servers : servers.filter((s) => s.region !== region);
  const ordered = [...weightedOrder(local, random), ...weightedOrder(others, random)];
  const out: RtcIceServer[] = [];
  for (const server of ordered) {
    const stun = server.urls.filter(isStun);
    const turn = server.urls.filter((u) => !isStun(u));
    if (stun.length > 0) out.push({ urls: stun });
    if (turn.length > 0) out.push({ urls: turn, username: credential.username, credential: credential.credential });
  }
  return out;
}
