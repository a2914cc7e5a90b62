/** What the server answers as itself: the methods it serves at its own address, its OPTIONS answer, a CANCEL's answer. */
import type { InviteServerTransaction, ServerTransaction } from '../transaction/index.js';
import type { Stack } from './stack.js';

/**
 * The methods the server serves at its own address (a Request-URI without a user part that names one of
 * its hosts or domains): its Allow header. RFC 3261 §20.5: Allow "lists the set of methods supported by
 * the UA generating the message. All methods, including ACK and CANCEL, understood by the UA MUST be
 * included"; answering a request to its own address the server is that UA, and serves OPTIONS (pings,
 * probes), REGISTER (the registrar or the mid-registrar), CANCEL (§9.2) and ACK (of its non-2xx answers,
 * absorbed by their transactions). What it forwards for its users does not belong here: a proxy is
 * "method agnostic" (§11.2, which is why a proxy answering an OPTIONS for someone else omits Allow), and
 * listing INVITE or MESSAGE would tell a client that the server itself takes calls or messages.
 */
export const ALLOWED_METHODS: readonly string[] = ['ACK', 'CANCEL', 'OPTIONS', 'REGISTER'];

/**
 * The methods the server recognises but does not serve at its own address: those it proxies for its
 * users' calls, chat and presence (RFC 3261; PRACK RFC 3262, UPDATE RFC 3311, INFO RFC 6086, MESSAGE
 * RFC 3428, REFER RFC 3515, SUBSCRIBE and NOTIFY RFC 6665, PUBLISH RFC 3903). Sent to its own address
 * they get 405, anything else 501 (§21.5.2).
 */
const PROXIED_METHODS: ReadonlySet<string> = new Set(['INVITE', 'BYE', 'PRACK', 'UPDATE', 'INFO', 'MESSAGE', 'REFER', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH']);

const ALLOW: [string, string] = ['Allow', ALLOWED_METHODS.join(', ')];

/** What an OPTIONS to the server itself is answered with (keep-alive pings, load balancer probes); never mutated. */
export const OPTIONS_HEADERS: Array<[string, string]> = [ALLOW, ['Accept', 'application/sdp'], ['Supported', 'path, outbound']];

/**
 * Answers a request addressed to the server itself that neither the registrar (REGISTER) nor
 * `answerCancel` takes: OPTIONS gets 200 with OPTIONS_HEADERS; a method the server proxies for its users
 * gets 405 (§21.4.6: "understood, but not allowed for the address identified by the Request-URI. The
 * response MUST include an Allow header field containing a list of valid methods for the indicated
 * address"); any other method 501 (§21.5.2: "the appropriate response when a UAS does not recognize the
 * request method and is not capable of supporting it for any user"), with the same Allow.
 */
export function answerAtOwnAddress(stack: Stack, tx: ServerTransaction, method: string): void {
  if (method === 'OPTIONS') stack.respond(tx, 200, { headers: OPTIONS_HEADERS });
  else stack.respond(tx, PROXIED_METHODS.has(method) ? 405 : 501, { headers: [ALLOW] });
}

/**
 * RFC 3261 §9.2: a CANCEL that matches no transaction gets 481; otherwise 200, and the INVITE, if it has
 * no final response yet, 487 Request Terminated.
 */
export function answerCancel(stack: Stack, tx: ServerTransaction, invite?: InviteServerTransaction): void {
  if (invite === undefined) {
    stack.respond(tx, 481);
    return;
  }
  stack.respond(tx, 200);
  if (invite.lastResponse === undefined || invite.lastResponse.status < 200) stack.respond(invite, 487);
}
