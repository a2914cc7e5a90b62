import { type SipUri, escapeUriUser, unescapeUriPart } from '../../src/sip/index.js';

/**
 * The canonical address-of-record of a SIP/SIPS URI: `sip:user@domain` (RFC 3261 §10.3 step 5) with
 * the scheme always `sip`, no port, parameters or headers, the domain lower-cased and the user as
 * written except that escapes are made canonical: an octet is escaped exactly when the user grammar
 * requires it (`sip:%61lice@…` and `sip:alice@…` are one AoR, and the result is still a valid URI).
 */
export function aorOf(uri: SipUri): string {
  const host = uri.host.toLowerCase();
  if (uri.user === undefined) return `sip:${host}`;
  return `sip:${escapeUriUser(unescapeUriPart(uri.user))}@${host}`;
}

/**
 * The AoR of `uri` in the served domain `domain` it stands for (ServedDomains.canonical): the same as
 * aorOf when the URI names the domain, else the user at that domain (a phone set up with the server's IP).
 */
export function aorIn(uri: SipUri, domain: string): string {
  if (uri.hostname === domain) return aorOf(uri);
  if (uri.user === undefined) return `sip:${domain}`;
  return `sip:${escapeUriUser(unescapeUriPart(uri.user))}@${domain}`;
}
