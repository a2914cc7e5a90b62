/**
 * Loop detection (RFC 3261 §16.3 step 4, §16.6 step 8). The branch of every request this proxy forwards
 * is `z9hG4bK` + a hash of the request as received + `.` + random. A request that comes back carrying a
 * Via of ours whose hash equals the hash of the request now has not changed on the way round: a loop.
 * When it changed (retargeted, a Route consumed) it is a spiral and is forwarded again.
 *
 * The hash leaves out the top Via that §16.6 step 8 lists: it differs at every hop, so a loop would never
 * be seen (RFC 5393 §4.2 fixes the text the same way). It covers the Request-URI, From tag, Call-ID,
 * CSeq number, Proxy-Require, Proxy-Authorization and Route.
 */
import type { Stack } from '../src/core/index.js';
import { MAGIC_COOKIE, type SipRequest, digestOf, randomToken } from '../src/sip/index.js';
import type { TransportProtocol } from '../src/transport/types.js';

const HASH_LENGTH = 10;

/**
 * The request "as received" (§16.6 step 8): the hash is computed once per request object and kept, so
 * that loose routing (which removes Routes, may rewrite the Request-URI) and forwarding agree with the
 * check made on arrival.
 */
const received = new WeakMap<SipRequest, string>();

/** The loop hash of a request, computed on first use and then fixed for that request object. */
export function loopHash(request: SipRequest): string {
  let h = received.get(request);
  if (h === undefined) {
    let text = request.uri + '\0' + (request.from?.tag ?? '') + '\0' + (request.callId ?? '') + '\0' + String(request.cseq?.seq ?? '');
    for (const v of request.getAll('proxy-require')) text += '\0pr:' + v;
    for (const v of request.getAll('proxy-authorization')) text += '\0pa:' + v;
    for (const v of request.getAll('route')) text += '\0r:' + v;
    h = digestOf('sha256', text, 'base64url').slice(0, HASH_LENGTH);
    received.set(request, h);
  }
  return h;
}

/** A fresh branch for forwarding `request`: magic cookie, loop hash, '.', random (unique per branch). */
export function loopBranch(request: SipRequest): string {
  return MAGIC_COOKIE + loopHash(request) + '.' + randomToken(10);
}

/**
 * §16.3 step 4: "If the request contains a Via header field with a sent-by value that equals a value
 * placed into previous requests by the proxy, the request has been forwarded by this element before.
 * The request has either looped or is legitimately spiraling through the element." A loop when the
 * branch of that Via carries the hash of the request now; the caller answers 482 (Loop Detected).
 */
export function isLoop(request: SipRequest, stack: Stack): boolean {
  let hash: string | undefined;
  for (const via of request.via) {
    const branch = via.branch;
    if (branch === undefined || !branch.startsWith(MAGIC_COOKIE)) continue;
    const dot = branch.indexOf('.', MAGIC_COOKIE.length);
    if (dot !== MAGIC_COOKIE.length + HASH_LENGTH) continue;
    if (!stack.isLocal(via.host, via.port, viaProtocol(via.transport))) continue;
    hash ??= loopHash(request);
    if (branch.slice(MAGIC_COOKIE.length, dot) === hash) return true;
  }
  return false;
}

function viaProtocol(transport: string): TransportProtocol {
  switch (transport) {
    case 'TLS':
      return 'tls';
    case 'WSS':
      return 'wss';
    case 'TCP':
      return 'tcp';
    case 'WS':
      return 'ws';
    default:
      return 'udp';
  }
}
