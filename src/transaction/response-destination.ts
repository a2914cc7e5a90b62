import { type Via } from '../sip/index.js';
import type { Destination, Flow, TransportProtocol } from '../transport/types.js';

/**
 * Where a server transaction sends its responses: RFC 3261 §18.2.2 with RFC 3581 (rport).
 *
 * - Reliable transports (TCP, TLS, WS, WSS): "the response MUST be sent using the existing connection to
 *   the source of the original request", so `flowId` is the request's flow. If that connection is gone
 *   the transport falls back to the address: "the server SHOULD open a connection to the IP address in
 *   the 'received' parameter, if present, using the port in the 'sent-by' value, or the default port for
 *   that transport" (5060, or 5061 for TLS and WSS). rport is ignored here: on a stream it names the
 *   peer's ephemeral source port, where nothing listens (RFC 3581 §4 applies it to unreliable transports).
 * - UDP with `maddr`: "the response MUST be forwarded to the address listed there, using the port
 *   indicated in 'sent-by', or port 5060 if none is present".
 * - UDP otherwise: "sent to the address in the 'received' parameter, using the port indicated in the
 *   'sent-by' value, or using port 5060 if none is specified", and RFC 3581 §4: with an rport value, "the
 *   response MUST be sent ... to the port indicated in the 'rport' parameter". When that is exactly where
 *   the request came from, `flowId` is set too so the response leaves from the socket it arrived on.
 *
 * Undefined-safe: without a top Via (the core should have rejected the request), or without `received`
 * (the core sets it on arrival), the answer falls back to the flow's remote address and the sent-by
 * host, so this never throws. IPv6 references lose their brackets.
 */
export function responseDestination(topVia: Via | undefined, flow: Flow): Destination {
  const protocol = flow.protocol;
  if (topVia === undefined) {
    return { protocol, address: flow.remote.address, port: flow.remote.port, flowId: flow.id };
  }
  if (protocol !== 'udp') {
    return {
      protocol,
      address: topVia.received ?? stripBrackets(topVia.host),
      port: topVia.port ?? defaultPort(protocol),
      flowId: flow.id,
    };
  }
  const maddr = topVia.params.get('maddr');
  if (typeof maddr === 'string' && maddr.length > 0) {
    return { protocol, address: stripBrackets(maddr), port: topVia.port ?? 5060 };
  }
  const address = stripBrackets(topVia.received ?? topVia.host);
  const rport = topVia.rport;
  const port = typeof rport === 'number' && rport > 0 ? rport : topVia.port ?? 5060;
  if (address === stripBrackets(flow.remote.address) && port === flow.remote.port) {
    return { protocol, address, port, flowId: flow.id };
  }
  return { protocol, address, port };
}

function defaultPort(protocol: TransportProtocol): number {
  return protocol === 'tls' || protocol === 'wss' ? 5061 : 5060;
}

function stripBrackets(host: string): string {
  return host.charCodeAt(0) === 0x5b /* [ */ && host.charCodeAt(host.length - 1) === 0x5d ? host.slice(1, -1) : host;
}
