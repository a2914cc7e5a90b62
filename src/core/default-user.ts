import type { Logger } from '../log/index.js';
import { SipUri, type SipRequest } from '../sip/index.js';
import type { InviteServerTransaction, ServerTransaction } from '../transaction/index.js';
import type { Stack } from './stack.js';
import type { StackUser } from './types.js';

/** Methods this element implements, advertised in Allow. */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'MESSAGE', 'INFO', 'UPDATE', 'PRACK', 'REFER', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH'];
const KNOWN = new Set(ALLOWED_METHODS);

/**
 * The smallest useful user of the stack: answers OPTIONS (keep-alive pings, monitoring), CANCEL per
 * §9.2, a method it does not know at the server itself with 501, and anything for a user with 404.
 * The proxy replaces it once users and routes exist; it stays as the answer for the server's own URI.
 */
export class DefaultUser implements StackUser {
  constructor(private readonly stack: Stack, private readonly log: Logger) {}

  onRequest(request: SipRequest, tx: ServerTransaction, cancels?: InviteServerTransaction): void {
    switch (request.method) {
      case 'OPTIONS':
        this.stack.respond(tx, 200, { headers: [['Allow', ALLOWED_METHODS.join(', ')], ['Accept', 'application/sdp'], ['Supported', 'path, outbound']] });
        return;
      case 'CANCEL':
        answerCancel(this.stack, tx, cancels);
        return;
    }
    const uri = request.ruri;
    const forServer = uri instanceof SipUri && uri.user === undefined;
    if (!KNOWN.has(request.method) && forServer) {
      this.stack.respond(tx, 501, { headers: [['Allow', ALLOWED_METHODS.join(', ')]] });
      return;
    }
    this.log.debug({ method: request.method, ruri: request.uri }, 'no such user');
    this.stack.respond(tx, 404);
  }
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
