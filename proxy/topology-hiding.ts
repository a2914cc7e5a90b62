/**
 * Topology hiding (config `proxy.topologyHiding`): what a trusted peer (a backend of the pool, a trunk)
 * writes about its own addresses never reaches an untrusted one (a phone). Towards the untrusted peer:
 * its Contact is replaced by a URI of ours carrying the original sealed (record-route.ts `seal`), the
 * Record-Route values of the trusted side are taken out of the message and sealed into that URI too,
 * and a request's Via list is cut to our Via (the response brings back the request's Vias, see
 * ProxyContext). The phone's in-dialog requests come back to that URI and `restoreHidden` (run by
 * looseRoute) puts the Request-URI and Route set back before they are forwarded. Kamailio's topoh and
 * OpenSIPS' topology_hiding do the same with their own encodings.
 */
import type { Stack } from '../src/core/index.js';
import { type NameAddr, type SipMessage, type SipRequest, SipUri } from '../src/sip/index.js';
import type { TransportProtocol } from '../src/transport/types.js';
import { uriProtocol } from './loose-route.js';
import type { RecordRoute } from './record-route.js';

/**
 * Methods whose Contact is a dialog's remote target (RFC 3261 §12.1, RFC 3311, RFC 6665, RFC 3515): the
 * one a phone sends its in-dialog requests to. A REGISTER's Contact is the phone's own binding and a 3xx's
 * a list of places to try: neither is replaced.
 */
const TARGET_METHODS = new Set(['INVITE', 'UPDATE', 'SUBSCRIBE', 'NOTIFY', 'REFER']);

/** Who is trusted: the routing policy's trusted sources and backends, by address. */
export interface TopologyHiding {
  isTrusted(address: string): boolean;
}

/** Whether a message from `from` to `to` is hidden: from a trusted peer towards an untrusted one. */
export function hides(policy: TopologyHiding | undefined, from: string | undefined, to: string | undefined): boolean {
  return policy !== undefined && from !== undefined && to !== undefined && policy.isTrusted(from) && !policy.isTrusted(to);
}

/**
 * A response relayed up to an untrusted peer (it sent the request). Its Record-Route reads [values of
 * the trusted side..., ours..., the untrusted side's...]; the trusted side's are removed and, since a UAC
 * reverses the list into its route set (RFC 3261 §12.1.2), sealed in reverse order: the order in which
 * they follow ours in the phone's requests. The Contact becomes our URI for `protocol` (the phone's leg).
 */
export function hideResponse(response: SipMessage, stack: Stack, tokens: RecordRoute, protocol: TransportProtocol): void {
  const rr = response.recordRoute;
  const firstOurs = rr.findIndex((v) => isOurs(stack, v));
  const hidden = firstOurs > 0 ? rr.slice(0, firstOurs).map(String).reverse() : [];
  if (hidden.length > 0) response.set('Record-Route', rr.slice(firstOurs).map(String).join(', '));
  hideContact(response, stack, tokens, protocol, hidden);
}

/**
 * A request forwarded to an untrusted peer (`copy` before our Via and Record-Route are added): the
 * Record-Route values already there (the trusted side's pool) are removed and sealed in the order the
 * callee will put them in its route set (a UAS keeps the order, §12.1.1), its Contact replaced, and every
 * Via removed (ours is added next; the response gets the request's Vias back, ProxyContext).
 */
export function hideRequest(copy: SipRequest, stack: Stack, tokens: RecordRoute, protocol: TransportProtocol): void {
  const rr = copy.recordRoute;
  const hidden = rr.map(String);
  if (hidden.length > 0) copy.remove('record-route');
  hideContact(copy, stack, tokens, protocol, hidden);
  copy.remove('via');
}

/**
 * §16.4 for a hidden Contact: a Request-URI of ours whose user part unseals is put back (the original
 * Contact), and the sealed Route values go on top of the Route set. True when it was one of ours.
 */
export function restoreHidden(request: SipRequest, stack: Stack, tokens: RecordRoute): boolean {
  const ruri = request.ruri;
  if (!(ruri instanceof SipUri) || !stack.isLocal(ruri.host, ruri.port, uriProtocol(ruri))) return false;
  const parts = tokens.unseal(ruri.user);
  if (parts === undefined || parts.length === 0 || parts[0]!.length === 0) return false;
  request.setUri(parts[0]!);
  for (let i = parts.length - 1; i >= 1; i--) request.prepend('Route', parts[i]!);
  return true;
}

function hideContact(message: SipMessage, stack: Stack, tokens: RecordRoute, protocol: TransportProtocol, routes: string[]): void {
  const method = message.isRequest ? (message as SipRequest).method : message.cseq?.method;
  if (method === undefined || !TARGET_METHODS.has(method)) return;
  const contacts = message.contact;
  // A Contact list (a 3xx, a REGISTER) or `*` is not a dialog's remote target: left alone.
  if (contacts.length !== 1 || !(contacts[0]!.uri instanceof SipUri)) return;
  const contact = contacts[0]!;
  const value = tokens.localUri(stack, protocol, tokens.seal([contact.uri.toString(), ...routes]));
  message.set('Contact', value + headerParams(contact));
}

/** The Contact's header parameters (expires, +sip.instance, …) as they stood. */
function headerParams(na: NameAddr): string {
  let out = '';
  for (const [k, v] of na.params) out += v === null ? `;${k}` : `;${k}=${v}`;
  return out;
}

function isOurs(stack: Stack, value: NameAddr): boolean {
  return value.uri instanceof SipUri && stack.isLocal(value.uri.host, value.uri.port, uriProtocol(value.uri));
}
