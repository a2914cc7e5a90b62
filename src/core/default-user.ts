import type { Logger } from '../log/index.js';
import { SipUri, type SipRequest } from '../sip/index.js';
import type { InviteServerTransaction, ServerTransaction } from '../transaction/index.js';
import type { Flow } from '../transport/types.js';
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

  /** OPTIONS to the server itself (keep-alive pings, load balancer probes) are answered statelessly. */
  onStatelessRequest(request: SipRequest, flow: Flow): boolean {
    if (request.method !== 'OPTIONS' || !isForServer(request)) return false;
    this.stack.respondStateless(request, flow, 200, { headers: OPTIONS_HEADERS });
    return true;
  }

  onRequest(request: SipRequest, tx: ServerTransaction, cancels?: InviteServerTransaction): void {
    switch (request.method) {
      case 'OPTIONS':
        this.stack.respond(tx, 200, { headers: OPTIONS_HEADERS });
        return;
      case 'CANCEL':
        answerCancel(this.stack, tx, cancels);
        return;
    }
    if (!KNOWN.has(request.method) && isForServer(request)) {
      this.stack.respond(tx, 501, { headers: [['Allow', ALLOWED_METHODS.join(', ')]] });
      return;
    }
    this.log.debug({ method: request.method, ruri: request.uri }, 'no such user');
    this.stack.respond(tx, 404);
  }
}

const OPTIONS_HEADERS: Array<[string, string]> = [['Allow', ALLOWED_METHODS.join(', ')], ['Accept', 'application/sdp'], ['Supported', 'path, outbound']];

/** A Request-URI without a user part names the server itself. */
function isForServer(request: SipRequest): boolean {
  const uri = request.ruri;
  return uri instanceof SipUri && uri.user === undefined;
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
