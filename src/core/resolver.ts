/**
 * Next-hop resolution, RFC 3263-lite: transport from the scheme and `transport` parameter, host from
 * `maddr` or the host part, port from the URI or the transport's default. No NAPTR or SRV lookups yet
 * (RFC 3263 §4.1 / §4.2): a host name is looked up for A/AAAA records only, with the port of the URI
 * or 5060/5061, which is what a URI with an explicit port means anyway (§4.2).
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { SipUri, type Uri } from '../sip/index.js';
import type { Destination, TransportProtocol } from '../transport/types.js';
import { unbracket } from '../transport/address.js';

export interface ResolveOptions {
  /** A/AAAA lookup; `dns.promises.lookup` with both families by default (tests pass a fake). */
  lookup?: (host: string) => Promise<string | undefined>;
}

const TRANSPORTS: ReadonlySet<string> = new Set(['udp', 'tcp', 'tls', 'ws', 'wss']);

/**
 * Where to send a request for `uri`, or undefined when it cannot be reached: not a SIP URI, a transport
 * this stack does not speak, an `.invalid` host (RFC 6761 §6.4: a WebSocket client's Contact, reachable
 * only on its own connection, RFC 7118 §5.2), or a name that does not resolve.
 */
export async function resolve(uri: Uri, options: ResolveOptions = {}): Promise<Destination | undefined> {
  if (!(uri instanceof SipUri)) return undefined;
  const protocol = transportOf(uri);
  if (protocol === undefined) return undefined;
  const maddr = uri.params.get('maddr');
  const host = unbracket(typeof maddr === 'string' && maddr.length > 0 ? maddr.toLowerCase() : uri.hostname);
  if (host === 'invalid' || host.endsWith('.invalid')) return undefined;
  const port = uri.port ?? (protocol === 'tls' || protocol === 'wss' ? 5061 : 5060);
  if (isIP(host) !== 0) return { protocol, address: host, port };
  const address = await (options.lookup ?? lookupAny)(host).catch(() => undefined);
  return address === undefined ? undefined : { protocol, address, port };
}

/**
 * RFC 3263 §4.1 without NAPTR: the `transport` parameter names it; else `sips:` means TLS (§26.2.2)
 * and `sip:` UDP. RFC 7118 §5.2 spells WebSocket `transport=ws` for both WS and WSS, the scheme telling
 * them apart; `transport=wss` is accepted too.
 */
function transportOf(uri: SipUri): TransportProtocol | undefined {
  const t = uri.transport;
  if (t === undefined) return uri.scheme === 'sips' ? 'tls' : 'udp';
  if (!TRANSPORTS.has(t)) return undefined;
  if (uri.scheme === 'sips') {
    if (t === 'ws' || t === 'wss') return 'wss';
    return 'tls';
  }
  return t as TransportProtocol;
}

/** A and AAAA, whichever the system resolver returns first (`family: 0`, its own order). */
async function lookupAny(host: string): Promise<string | undefined> {
  const all = await dns.lookup(host, { all: true, family: 0 });
  return all[0]?.address;
}

