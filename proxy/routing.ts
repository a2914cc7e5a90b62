/**
 * The routing policy: what happens to every request, in the order an operator reads a kamailio.cfg.
 * It only calls module APIs (registrar, proxy core, location service); sockets and timers never appear
 * here. Read `route()` top to bottom to see where a call goes.
 */
import type { Stack, StackUser } from '../src/core/index.js';
import { ALLOWED_METHODS, answerCancel } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import { type SipRequest, type SipResponse, SipUri, type Uri } from '../src/sip/index.js';
import type { InviteServerTransaction, ServerTransaction } from '../src/transaction/index.js';
import type { Destination, Flow } from '../src/transport/types.js';
import type { Binding, CredentialSource, RegistrarApi } from '../registrar/index.js';
import { aorOf } from '../registrar/index.js';
import { forwardStateless, looseRoute } from './loose-route.js';
import { isLoop } from './loop-detection.js';
import type { MediaHook } from './media-hook.js';
import type { ProxyCore } from './proxy-core.js';
import type { RecordRoute } from './record-route.js';
import { resolve as resolveUri } from './resolver.js';
import type { ForwardTarget } from './types.js';

export interface RouterDeps {
  stack: Stack;
  proxy: ProxyCore;
  /** The proxy core's Record-Route signer: the same secret verifies the Routes that come back. */
  recordRoute: RecordRoute;
  registrar: RegistrarApi;
  /** Who exists (404 for unknown users, 480 for known users without a binding). */
  subscribers: CredentialSource;
  /** The WebRTC gateway's call state: a BYE releases the call's media. */
  media?: MediaHook;
  /** The domains this softswitch serves. */
  domains: string[];
  logger: Logger;
}

const OPTIONS_HEADERS: Array<[string, string]> = [['Allow', ALLOWED_METHODS.join(', ')], ['Accept', 'application/sdp'], ['Supported', 'path, outbound']];

export class Router implements StackUser {
  private readonly stack: Stack;
  private readonly proxy: ProxyCore;
  private readonly rr: RecordRoute;
  private readonly registrar: RegistrarApi;
  private readonly subscribers: CredentialSource;
  private readonly domains: Set<string>;
  private readonly media: MediaHook | undefined;
  private readonly log: Logger;

  constructor(deps: RouterDeps) {
    this.stack = deps.stack;
    this.proxy = deps.proxy;
    this.rr = deps.recordRoute;
    this.registrar = deps.registrar;
    this.subscribers = deps.subscribers;
    this.domains = new Set(deps.domains.map((d) => d.toLowerCase()));
    this.media = deps.media;
    this.log = categoryLogger(deps.logger, 'proxy.route');
  }

  // ---- the policy -------------------------------------------------------------------------------

  private async route(req: SipRequest, tx: ServerTransaction, cancels?: InviteServerTransaction): Promise<void> {
    // 1. CANCEL ends the matching INVITE's branches (RFC 3261 §16.10); the INVITE then gets its 487.
    if (req.method === 'CANCEL') {
      if (cancels !== undefined && this.proxy.cancel(cancels)) this.stack.respond(tx, 200);
      else answerCancel(this.stack, tx, cancels);
      return;
    }

    // 2. Loops (§16.3 step 4).
    if (isLoop(req, this.stack)) return this.reply(tx, 482);

    // 3. In-dialog requests follow the Record-Route path that set the dialog up.
    if (req.to?.tag !== undefined) return this.routeInDialog(req, tx);

    // 4. Routes pre-loaded by the client (we as its outbound proxy) are consumed.
    if (req.route.length > 0) looseRoute(req, this.stack, this.rr);

    // 5. Requests for the server itself: keep-alive OPTIONS; nothing else is served here.
    if (this.isForServer(req.ruri) && req.method !== 'REGISTER') {
      if (req.method === 'OPTIONS') return this.reply(tx, 200, OPTIONS_HEADERS);
      return this.reply(tx, ALLOWED_METHODS.includes(req.method) ? 404 : 501, [['Allow', ALLOWED_METHODS.join(', ')]]);
    }

    // 6. REGISTER for our domains (or to our own address) goes to the registrar; we relay nobody's
    //    REGISTER elsewhere.
    if (req.method === 'REGISTER') {
      if (!this.isOurDomain(req.ruri) && !this.isForServer(req.ruri)) return this.reply(tx, 403, [], 'Forbidden (not a domain served here)');
      return this.registrar.handle(req, tx);
    }

    // 7. Everyone who is not a trusted source proves who they are, as the user in From (407).
    const caller = await this.authenticateCaller(req, tx);
    if (caller === undefined) return;

    // 8. A user of ours: every registered contact rings at once (parallel forking, §16.5/16.6).
    if (this.isOurDomain(req.ruri)) return this.routeToLocalUser(req, tx);

    // 9. Never an open relay: other domains are not reached from here (trunks come with the dialplan).
    this.log.info({ from: caller, ruri: req.uri }, 'relaying denied');
    return this.reply(tx, 403, [], 'Forbidden (relaying denied)');
  }

  /** In-dialog: our Record-Route must be on top and carry our signature, or the request goes nowhere. */
  private async routeInDialog(req: SipRequest, tx: ServerTransaction): Promise<void> {
    const destination = await this.inDialogDestination(req);
    if (destination === undefined) return this.reply(tx, req.route.length === 0 ? 481 : 403);
    // A BYE ends the call's media through the relay, whatever the far end answers.
    if (req.method === 'BYE') this.media?.end(req.callId!);
    this.proxy.forward(req, tx, [{ uri: req.ruri, destination }], { recordRoute: false });
  }

  private async routeToLocalUser(req: SipRequest, tx: ServerTransaction): Promise<void> {
    const uri = req.ruri as SipUri;
    const aor = aorOf(uri);
    const bindings = this.registrar.lookup(aor);
    if (bindings.length === 0) {
      const exists = (await this.subscribers.getCredentials(uri.userUnescaped ?? '', uri.hostname)) !== undefined;
      return this.reply(tx, exists ? 480 : 404);
    }
    this.log.debug({ aor, branches: bindings.length, callId: req.callId }, 'forking to bindings');
    this.proxy.forward(req, tx, bindings.map(targetOf));
  }

  // ---- ACK, responses, flows (StackUser) ---------------------------------------------------------

  onRequest(request: SipRequest, transaction: ServerTransaction, cancels?: InviteServerTransaction): void {
    this.route(request, transaction, cancels).catch((err: Error) => {
      this.log.error({ err: err.message, method: request.method, callId: request.callId }, 'routing failed');
      if (transaction.lastResponse === undefined || transaction.lastResponse.status < 200) this.reply(transaction, 500);
    });
  }

  /** OPTIONS pings to the server itself are answered without a transaction. */
  onStatelessRequest(request: SipRequest, flow: Flow): boolean {
    if (request.method !== 'OPTIONS' || request.to?.tag !== undefined || request.route.length > 0) return false;
    if (!this.isForServer(request.ruri)) return false;
    this.stack.respondStateless(request, flow, 200, { headers: OPTIONS_HEADERS });
    return true;
  }

  /** The ACK of a 2xx travels the dialog's route set like any in-dialog request, statelessly (§16.11). */
  onAck(request: SipRequest): void {
    this.inDialogDestination(request).then(
      (destination) => {
        if (destination !== undefined) forwardStateless(request, destination, this.stack);
        else this.log.debug({ callId: request.callId }, 'ACK without a route of ours dropped');
      },
      (err: Error) => this.log.warn({ err: err.message }, 'ACK routing failed'),
    );
  }

  onStrayResponse(response: SipResponse, flow: Flow): void {
    this.proxy.onStrayResponse(response, flow);
  }

  onFlowClosed(flow: Flow): void {
    this.proxy.onFlowClosed(flow);
    const dropped = this.registrar.onFlowClosed(flow);
    if (dropped > 0) this.log.debug({ flow: flow.id, dropped }, 'bindings of a closed connection dropped');
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /**
   * Where an in-dialog request goes: after our Route values are removed (§16.4), the connection named
   * in our Record-Route (a WebSocket softphone is reachable only there), else a registered contact's
   * connection, else the next Route or the Request-URI resolved. Undefined when the route is not ours.
   */
  private async inDialogDestination(req: SipRequest): Promise<Destination | undefined> {
    const lr = looseRoute(req, this.stack, this.rr);
    if (!lr.ours || !lr.verified) return undefined;
    if (lr.next === 'route') return resolveUri(req.route[0]!.uri);
    const flow = lr.flow === undefined ? undefined : this.proxy.flowDestination(lr.flow);
    if (flow !== undefined) return flow;
    const binding = this.registrar.lookupByContact(req.ruri);
    if (binding !== undefined) return targetOf(binding).destination;
    return resolveUri(req.ruri);
  }

  /**
   * Returns the caller's identity when authenticated as the user in From (RFC 3261 §22.3, 407), or
   * undefined after answering the request.
   */
  private async authenticateCaller(req: SipRequest, tx: ServerTransaction): Promise<string | undefined> {
    const from = req.from!.uri;
    if (!(from instanceof SipUri) || !this.domains.has(from.hostname)) {
      this.reply(tx, 403, [], 'Forbidden (caller is not a user of this domain)');
      return undefined;
    }
    const result = await this.registrar.authenticator.authenticate(req, 'proxy', from.hostname);
    if (!result.ok) {
      this.reply(tx, result.status, result.headers, result.reason);
      return undefined;
    }
    if (result.username !== (from.userUnescaped ?? '') || result.domain !== from.hostname) {
      this.log.info({ user: `${result.username}@${result.domain}`, from: from.toString() }, 'From does not match the credentials');
      this.reply(tx, 403, [], 'Forbidden (From does not match the credentials)');
      return undefined;
    }
    return `${result.username}@${result.domain}`;
  }

  private isOurDomain(uri: Uri): boolean {
    return uri instanceof SipUri && this.domains.has(uri.hostname);
  }

  /** A SIP URI without a user part that names one of our domains or listeners. */
  private isForServer(uri: Uri): boolean {
    if (!(uri instanceof SipUri) || uri.user !== undefined) return false;
    return this.domains.has(uri.hostname) || this.stack.isLocal(uri.host, uri.port);
  }

  private reply(tx: ServerTransaction, status: number, headers: Array<[string, string]> = [], reason?: string): void {
    this.stack.respond(tx, status, { headers, reason });
  }
}

/** A binding becomes a branch: its contact as Request-URI, sent over its own connection (RFC 5626). */
function targetOf(b: Binding): ForwardTarget & { destination: Destination } {
  const destination: Destination = b.flow !== undefined
    ? { protocol: b.flow.protocol, address: b.flow.remote.address, port: b.flow.remote.port, flowId: b.flow.id }
    // No connection (UDP, or loaded from the store): where the REGISTER came from, which crosses NATs.
    : { protocol: b.received.protocol, address: b.received.address, port: b.received.port };
  const target: ForwardTarget & { destination: Destination } = { uri: b.contact.uri, destination };
  if (b.path !== undefined && b.path.length > 0) target.route = b.path;
  return target;
}
