import { randomBytes } from 'node:crypto';
import type { Stack } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import { type SipRequest, SipResponse, type Via } from '../src/sip/index.js';
import { type InviteServerTransaction, type ServerTransaction, realTimers } from '../src/transaction/index.js';
import { type Destination, type Flow, type TransportProtocol, isConnectionOriented } from '../src/transport/types.js';
import { ProxyError } from './errors.js';
import { isLoop } from './loop-detection.js';
import { forwardStateless, looseRoute } from './loose-route.js';
import type { ProxyEnv } from './proxy-branch.js';
import { ProxyContext } from './proxy-context.js';
import { RecordRoute } from './record-route.js';
import { resolve } from '../src/core/index.js';
import { hideResponse, hides } from './topology-hiding.js';
import type { ForwardOptions, ForwardTarget, LooseRouteResult, ProxyCoreOptions } from './types.js';
import { unbracket } from '../src/transport/index.js';

/** RFC 3261 §16.6 step 11: "The timer C MUST be set for each client transaction ... greater than 3 minutes." */
const TIMER_C = 180_000;

/**
 * The stateful proxy core (RFC 3261 §16): forwards a request to one or several targets in parallel,
 * relays their responses per §16.7, cancels branches (§16.10, Timer C of §16.8), forwards stray 2xx
 * statelessly, and Record-Routes with flow tokens so a dialog's requests find the connections of its
 * legs again. Policy (who the targets are) is the routing script's; this is the mechanism.
 */
export class ProxyCore {
  /** Builds and checks the flow tokens and markers of our Record-Route values. */
  readonly recordRoute: RecordRoute;
  private readonly stack: Stack;
  private readonly log: Logger;
  private readonly env: ProxyEnv;
  /** Live response contexts by server transaction key. */
  private readonly contexts = new Map<string, ProxyContext>();
  /** Connection-oriented flows the proxy has seen, until they close: where flow tokens lead. */
  private readonly flows = new Map<string, Destination>();
  private stopped = false;

  constructor(options: ProxyCoreOptions) {
    if (options === null || typeof options !== 'object' || options.stack === undefined || options.logger === undefined) {
      throw new TypeError('ProxyCore needs { stack, logger }');
    }
    const timerC = options.timerCMs ?? TIMER_C;
    if (!Number.isFinite(timerC) || timerC <= 0) throw new TypeError(`timerCMs must be a positive number, got ${timerC}`);
    this.stack = options.stack;
    this.log = categoryLogger(options.logger, 'proxy');
    this.recordRoute = new RecordRoute(options.secret ?? randomBytes(32));
    this.recordRoute.hiding = options.topologyHiding;
    const flows = this.flows;
    this.env = {
      stack: this.stack,
      log: this.log,
      timers: options.timers ?? realTimers,
      timerC,
      cancelGuard: 64 * this.stack.transactions.timing.T1,
      tokens: this.recordRoute,
      resolve: options.resolve ?? ((uri) => resolve(uri)),
      media: options.media,
      hiding: options.topologyHiding,
      rememberFlow(destination: Destination): void {
        if (destination.flowId !== undefined) flows.set(destination.flowId, destination);
      },
    };
  }

  /** Live response contexts. */
  get size(): number {
    return this.contexts.size;
  }

  /**
   * Forwards `request`, received in `serverTx`, to every target in parallel (§16.6) and relays the
   * responses (§16.7). The checks of §16.3 steps 3 and 4 are made here too: Max-Forwards 0 is answered
   * 483 and a loop 482. An empty target list is answered 480. ACK and CANCEL are not forwarded here (see
   * `forwardStateless` and `cancel`): TypeError; after `stop()`: ProxyError (PROXY_ERR_STOPPED).
   */
  forward(request: SipRequest, serverTx: ServerTransaction, targets: ForwardTarget[], options: ForwardOptions = {}): ProxyContext {
    if (this.stopped) throw new ProxyError('PROXY_ERR_STOPPED', 'forward() after ProxyCore.stop()');
    if (request.method === 'ACK' || request.method === 'CANCEL') {
      throw new TypeError(`forward: ${request.method} is not forwarded statefully (use forwardStateless / cancel)`);
    }
    if (this.contexts.has(serverTx.key)) throw new TypeError('forward: this server transaction is already being forwarded');
    const context = new ProxyContext(this.env, request, serverTx, options, (c) => this.forget(c));
    // §16.3 step 3: "If the request contains a Max-Forwards header field with a field value of zero (0),
    // the element MUST NOT forward the request ... the element MUST return a 483 (Too many hops)".
    if (request.maxForwards === 0) {
      context.reject(483);
      return context;
    }
    // §16.3 step 4: "If ... the request has looped, the element MUST return a 482 (Loop Detected)".
    if (isLoop(request, this.stack)) {
      this.log.info({ ruri: request.uri, callId: request.callId }, 'loop detected');
      context.reject(482);
      return context;
    }
    const inbound = serverTx.flow;
    if (isConnectionOriented(inbound.protocol)) {
      this.flows.set(inbound.id, { protocol: inbound.protocol, address: inbound.remote.address, port: inbound.remote.port, flowId: inbound.id });
    }
    this.contexts.set(serverTx.key, context);
    context.start(targets);
    return context;
  }

  /**
   * §16.10: called by the routing policy once it has answered 200 to a CANCEL that matched `inviteTx`:
   * every pending branch is CANCELled (one without a provisional response as soon as it gets one, §9.1)
   * and the caller gets the best response, normally 487. False when no context forwards that INVITE.
   */
  cancel(inviteTx: InviteServerTransaction): boolean {
    const context = this.contexts.get(inviteTx.key);
    if (context === undefined) return false;
    context.cancel();
    return true;
  }

  /** The response context forwarding this server transaction's request, while it lives. */
  contextFor(serverTx: ServerTransaction): ProxyContext | undefined {
    return this.contexts.get(serverTx.key);
  }

  /** §16.4 Route processing with our tokens; see loose-route.ts. */
  looseRoute(request: SipRequest): LooseRouteResult {
    return looseRoute(request, this.stack, this.recordRoute);
  }

  /**
   * Where a flow token leads, if that flow is still open: a connection the proxy has seen and that has
   * not closed, or a UDP flow (its id names the address). Undefined sends the caller back to the
   * Request-URI.
   */
  flowDestination(flowId: string): Destination | undefined {
    const known = this.flows.get(flowId);
    if (known !== undefined) return known;
    return udpFlowDestination(flowId);
  }

  /**
   * The target of a request routed by `looseRoute`: its Request-URI, sent on the flow of the last Route
   * removed when that flow is still open (the connection of a WebSocket leg), else resolved from the top
   * Route or the Request-URI.
   */
  nextHop(request: SipRequest, routed: LooseRouteResult): ForwardTarget {
    const destination = routed.flow === undefined ? undefined : this.flowDestination(routed.flow);
    return destination === undefined ? { uri: request.ruri } : { uri: request.ruri, destination };
  }

  /**
   * Forwards a request without a transaction, the ACK of a 2xx (§16.11): to `destination`, or else to the
   * resolved top Route or Request-URI. False when it was not sent (Max-Forwards 0, unresolvable).
   */
  async forwardStateless(request: SipRequest, destination?: Destination): Promise<boolean> {
    let to = destination;
    if (to === undefined) {
      const uri = request.route[0]?.uri ?? request.ruri;
      to = await this.env.resolve(uri).catch(() => undefined);
      if (to === undefined) {
        this.log.info({ method: request.method, target: uri.toString() }, 'stateless forward: next hop cannot be resolved');
        return false;
      }
    }
    try {
      return forwardStateless(request, to, this.stack);
    } catch (err) {
      this.log.info({ err: (err as Error).message, method: request.method }, 'stateless forward failed');
      return false;
    }
  }

  /**
   * A response no client transaction took (the stack already checked that its top Via names us). A 2xx
   * to INVITE is forwarded statelessly to the next Via (§16.7 step 9 / RFC 6026 §8.4: 2xx that arrive
   * after the transaction ended are retransmissions the caller still needs to ACK); anything else is
   * dropped (§16.7: "Any response ... not matching a client transaction ... MUST NOT be forwarded").
   */
  onStrayResponse(response: SipResponse, flow: Flow): void {
    const via = response.topVia;
    const isInvite2xx = response.status >= 200 && response.status < 300 && response.cseq?.method === 'INVITE';
    if (!isInvite2xx || via === undefined || !this.stack.isLocal(via.host, via.port, viaProtocol(via))) {
      this.log.debug({ status: response.status, method: response.cseq?.method }, 'stray response dropped');
      return;
    }
    const out = new SipResponse({
      status: response.status, reason: response.reason, headers: response.headers.slice(), body: response.body, version: response.version,
    });
    out.removeFirstValue('via');
    const next = out.topVia;
    if (next === undefined) return;
    const destination = nextViaDestination(next);
    if (destination === undefined) {
      this.log.info({ via: next.toString() }, 'stray 2xx: next Via has an unknown transport');
      return;
    }
    // A retransmitted 2xx of a backend after the transaction ended is hidden like the first one.
    if (hides(this.env.hiding, flow.remote.address, destination.address)) hideResponse(out, this.stack, this.recordRoute, destination.protocol);
    this.stack.sendStateless(out, destination);
  }

  /** A connection closed: flow tokens naming it now fall back to the Request-URI. */
  onFlowClosed(flow: Flow): void {
    this.flows.delete(flow.id);
  }

  /** Clears the timers of every live context (the stack is stopping); `forward` then throws ProxyError. */
  stop(): void {
    this.stopped = true;
    for (const c of this.contexts.values()) c.stop();
    this.contexts.clear();
  }

  private forget(context: ProxyContext): void {
    if (this.contexts.get(context.serverTx.key) === context) this.contexts.delete(context.serverTx.key);
  }
}

/**
 * Where a response goes next without a transaction: §18.2.2 applied to the next Via — its `received`
 * address, and the port of `rport` (RFC 3581 §4) when filled in, else of sent-by, else the default.
 * On a connection-oriented transport `rport` still names the peer's source port, so the transport finds
 * the open connection by address (the flow id is not known without a transaction).
 */
function nextViaDestination(via: Via): Destination | undefined {
  const protocol = viaProtocol(via);
  if (protocol === undefined) return undefined;
  const maddr = via.params.get('maddr');
  const address = unbracket(typeof maddr === 'string' && maddr.length > 0 ? maddr : via.received ?? via.host);
  const rport = via.rport;
  const port = typeof rport === 'number' && rport > 0 ? rport : via.port ?? (protocol === 'tls' || protocol === 'wss' ? 5061 : 5060);
  return { protocol, address, port };
}

function viaProtocol(via: Via): TransportProtocol | undefined {
  switch (via.transport) {
    case 'UDP':
      return 'udp';
    case 'TCP':
      return 'tcp';
    case 'TLS':
      return 'tls';
    case 'WS':
      return 'ws';
    case 'WSS':
      return 'wss';
    default:
      return undefined;
  }
}

/** `udp:<local>><remote>` (the transport layer's UDP flow ids) → the remote address, with the flow id. */
function udpFlowDestination(flowId: string): Destination | undefined {
  if (!flowId.startsWith('udp:')) return undefined;
  const gt = flowId.indexOf('>');
  if (gt === -1) return undefined;
  const remote = flowId.slice(gt + 1);
  const colon = remote.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const port = Number(remote.slice(colon + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  return { protocol: 'udp', address: unbracket(remote.slice(0, colon)), port, flowId };
}

