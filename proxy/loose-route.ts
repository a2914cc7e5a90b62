/**
 * Route processing of a request that arrives at the proxy (RFC 3261 §16.4) and the stateless forwarding
 * of ACK for 2xx (§16.11), which has no transaction of its own.
 */
import type { Stack } from '../src/core/index.js';
import { MAGIC_COOKIE, type SipRequest, SipUri, type Via, digestOf } from '../src/sip/index.js';
import type { Destination, TransportProtocol } from '../src/transport/types.js';
import { loopHash } from './loop-detection.js';
import type { RecordRoute } from './record-route.js';
import { type TopologyHiding, restoreHidden } from './topology-hiding.js';
import type { LooseRouteResult, TokenCheck } from './types.js';

/**
 * ACKs of a trusted source routed here, until forwardStateless sends them: towards an untrusted peer they
 * go with our Via alone (topology hiding; an ACK gets no response, so the Vias below ours serve nothing).
 */
const trustedAcks = new WeakMap<SipRequest, TopologyHiding>();

/**
 * §16.4, for a request that carries Route header fields (or a Request-URI a strict router wrote):
 *
 * "If the Request-URI contains a value this proxy previously placed into a Record-Route header field
 * (see Section 16.6 item 4), the proxy MUST replace the Request-URI in the request with the last value
 * from the Route header field, and remove that value from the Route header field." Ours means: it names
 * one of our listeners and carries a valid token or marker.
 *
 * "If the first value in the Route header field indicates this proxy, the proxy MUST remove that value
 * from the request." Every such value on top is removed (a double Record-Route puts two of ours there).
 * A value indicates this proxy when it names one of our listeners, or carries a valid flow token.
 *
 * The request is modified in place; its loop hash (loop-detection.ts) is taken first, "as received".
 */
export function looseRoute(request: SipRequest, stack: Stack, tokens: RecordRoute): LooseRouteResult {
  loopHash(request);
  const callId = request.callId;
  let ours = false;
  let verified = false;
  let flow: string | undefined;

  const ruri = request.ruri;
  if (ruri instanceof SipUri) {
    const check = tokens.check(ruri.user, callId);
    const routes = request.route;
    if (check.valid && isLocalUri(stack, ruri) && routes.length > 0) {
      request.setUri(routes[routes.length - 1]!.uri);
      removeLastRoute(request);
      ours = true;
      verified = true;
      flow = check.flowId;
    }
  }

  for (;;) {
    const top = request.route[0];
    if (top === undefined || !(top.uri instanceof SipUri)) break;
    const check: TokenCheck = tokens.check(top.uri.user, callId);
    const names = isLocalUri(stack, top.uri) || (check.valid && check.flowId !== undefined);
    if (!names) break;
    request.removeFirstValue('route');
    ours = true;
    if (check.valid) verified = true;
    flow = check.flowId;
  }

  // Topology hiding: the Request-URI is the Contact we gave a phone in place of a backend's; its sealed
  // original (and the backend pool's Route values) take its place. The seal authenticates it like a MAC.
  if (request.route.length === 0 && restoreHidden(request, stack, tokens)) {
    ours = true;
    verified = true;
  }

  const hiding = tokens.hiding;
  if (hiding !== undefined && request.method === 'ACK') {
    const source = sourceAddress(request.topVia);
    if (source !== undefined && hiding.isTrusted(source)) trustedAcks.set(request, hiding);
  }

  const result: LooseRouteResult = { ours, verified, next: request.route.length > 0 ? 'route' : 'ruri' };
  if (flow !== undefined) result.flow = flow;
  return result;
}

/**
 * Forwards a request without a transaction: the ACK of a 2xx (§16.11, §17.1.1.3: it is end to end and
 * not part of the INVITE transaction). Max-Forwards is decremented (70 when absent; a request with
 * Max-Forwards 0 is dropped and false returned) and a Via added whose branch is derived from the request
 * (§16.11: "the value placed in the branch parameter ... MUST be the same each time a retransmission
 * ... is forwarded"), so retransmissions carry the same branch.
 */
export function forwardStateless(request: SipRequest, destination: Destination, stack: Stack): boolean {
  const mf = request.maxForwards;
  if (mf === 0) return false;
  request.set('Max-Forwards', String(mf === undefined ? 70 : mf - 1));
  const hiding = trustedAcks.get(request);
  if (hiding !== undefined && !hiding.isTrusted(destination.address)) request.remove('via');
  request.prepend('Via', stack.viaFor(destination.protocol, statelessBranch(request)));
  stack.sendStateless(request, destination);
  return true;
}

/**
 * §16.11: with a magic-cookie top Via the branch can be derived from it ("the proxy MAY use the branch
 * of the top Via as the basis"); the Request-URI (after routing), Call-ID, CSeq and tags are hashed in
 * as well so two requests that share a branch upstream (an ACK and a CANCEL) still differ here.
 */
function statelessBranch(request: SipRequest): string {
  const top = request.topVia;
  const text = (top?.branch ?? '') + '\0' + (top?.sentBy ?? '') + '\0' + request.uri + '\0' + (request.callId ?? '')
    + '\0' + (request.cseq?.seq ?? '') + ' ' + request.method + '\0' + (request.from?.tag ?? '') + '\0' + (request.to?.tag ?? '');
  const h = digestOf('sha256', text, 'base64url').slice(0, 22);
  return MAGIC_COOKIE + 'sl' + h;
}

/** Where a request came from, as the core stamped it on the top Via (§18.2.1 received, else sent-by). */
function sourceAddress(via: Via | undefined): string | undefined {
  if (via === undefined) return undefined;
  const host = via.received ?? via.host;
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

function isLocalUri(stack: Stack, uri: SipUri): boolean {
  return stack.isLocal(uri.host, uri.port, uriProtocol(uri));
}

/** The transport a URI names, for the default port of `isLocal`. */
export function uriProtocol(uri: SipUri): TransportProtocol {
  const t = uri.transport;
  if (uri.scheme === 'sips') return t === 'ws' || t === 'wss' ? 'wss' : 'tls';
  switch (t) {
    case 'tcp':
    case 'tls':
    case 'ws':
    case 'wss':
      return t;
    default:
      return 'udp';
  }
}

/** Removes the last Route value, keeping the others where the first Route field stood. */
function removeLastRoute(request: SipRequest): void {
  const values = request.route.map(String);
  values.pop();
  if (values.length === 0) request.remove('route');
  else request.set('Route', values.join(', '));
}
