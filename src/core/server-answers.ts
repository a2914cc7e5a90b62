/** What the server answers as itself: the methods it advertises, its OPTIONS answer, a CANCEL's answer. */
import type { InviteServerTransaction, ServerTransaction } from '../transaction/index.js';
import type { Stack } from './stack.js';

/** Methods this element implements, advertised in Allow. */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'MESSAGE', 'INFO', 'UPDATE', 'PRACK', 'REFER', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH'];

/** What an OPTIONS to the server itself is answered with (keep-alive pings, load balancer probes); never mutated. */
export const OPTIONS_HEADERS: Array<[string, string]> = [['Allow', ALLOWED_METHODS.join(', ')], ['Accept', 'application/sdp'], ['Supported', 'path, outbound']];

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
