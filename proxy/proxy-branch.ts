import type { Logger } from '../src/log/index.js';
import type { Stack } from '../src/core/index.js';
import { SipRequest, type SipResponse, SipUri } from '../src/sip/index.js';
import {
  type ClientTransaction, type ClientTransactionUser, type TimerHandle, type Timers, createCancel,
} from '../src/transaction/index.js';
import { type Destination, type Flow, isConnectionOriented } from '../src/transport/types.js';
import { loopBranch } from './loop-detection.js';
import type { RecordRoute } from './record-route.js';
import type { BranchResult, BranchState, ForwardTarget, ProxyMedia, Resolve } from './types.js';
import { hasSdp } from './sdp-body.js';
import { type TopologyHiding, hideRequest, hides } from './topology-hiding.js';

/** What a branch needs from the proxy core; one object shared by every branch and context. */
export interface ProxyEnv {
  readonly stack: Stack;
  readonly log: Logger;
  readonly timers: Timers;
  /** Timer C, ms. */
  readonly timerC: number;
  /** How long a CANCELled INVITE branch may stay without a final response (64*T1). */
  readonly cancelGuard: number;
  readonly tokens: RecordRoute;
  readonly resolve: Resolve;
  /** The media relay hook, when one is configured. */
  readonly media: ProxyMedia | undefined;
  /** Topology hiding, when configured. */
  readonly hiding: TopologyHiding | undefined;
  /** A connection-oriented flow a dialog may be routed back to (flow tokens, in-dialog requests). */
  rememberFlow(destination: Destination): void;
}

/** What a branch tells its response context (§16.7). */
export interface BranchOwner {
  /** The request as received, after the routing policy's changes. */
  readonly request: SipRequest;
  /** The flow the request arrived on. */
  readonly inbound: Flow;
  /** The caller CANCELled: results the proxy makes up become 487. */
  readonly cancelled: boolean;
  branchProvisional(branch: ProxyBranch, response: SipResponse): void;
  branch2xx(branch: ProxyBranch, response: SipResponse): void;
  branchEnded(branch: ProxyBranch): void;
  /** A branch sent its copy without the Vias below ours (topology hiding): responses get them back. */
  viasHidden(): void;
}

/** Why a branch is being cancelled: the caller's CANCEL, another branch won (2xx, 6xx), or Timer C. */
export type CancelReason = 'caller' | 'fork' | 'timer-c';

/** A CANCEL's own client transaction needs a user; its responses mean nothing to the proxy (§16.10). */
const CANCEL_USER: ClientTransactionUser = { onResponse: () => undefined };

/**
 * One branch of a response context (RFC 3261 §16.6): the copy of the request for one target, its
 * client transaction, Timer C, and the CANCEL of §9.1 / §16.8 / §16.10. The branch is the transaction
 * user of its client transaction and reports to its context.
 */
export class ProxyBranch implements ClientTransactionUser {
  readonly index: number;
  readonly target: ForwardTarget;
  /** The copy sent on this branch (§16.6 step 1), our Via on top once sent. */
  readonly request: SipRequest;
  state: BranchState;
  /** Set once the branch has ended. */
  result: BranchResult | undefined;
  transaction: ClientTransaction | undefined;
  destination: Destination | undefined;
  /** The branch parameter of our Via on this branch (one media session per branch: rtpengine's via-branch). */
  viaBranch: string | undefined;
  private readonly owner: BranchOwner;
  private readonly env: ProxyEnv;
  private readonly recordRoute: boolean;
  private readonly invite: boolean;
  /** Any provisional response (100 included) seen: §9.1 lets a CANCEL go only after one. */
  private provisional: boolean;
  private cancelReason: CancelReason | undefined;
  private cancelSent: boolean;
  private timerC: TimerHandle | undefined;
  private guard: TimerHandle | undefined;
  /** The target's responseTimeoutMs, until the first response. */
  private firstResponse: TimerHandle | undefined;

  constructor(owner: BranchOwner, env: ProxyEnv, target: ForwardTarget, index: number, recordRoute: boolean) {
    this.owner = owner;
    this.env = env;
    this.target = target;
    this.index = index;
    this.recordRoute = recordRoute;
    this.invite = owner.request.method === 'INVITE';
    this.request = buildCopy(owner.request, target);
    this.state = 'resolving';
    this.result = undefined;
    this.transaction = undefined;
    this.destination = undefined;
    this.viaBranch = undefined;
    this.provisional = false;
    this.cancelReason = undefined;
    this.cancelSent = false;
    this.timerC = undefined;
    this.guard = undefined;
    this.firstResponse = undefined;
  }

  get ended(): boolean {
    return this.state === 'ended';
  }

  /**
   * Sends the copy: to the target's destination when it names one, else to the resolved next hop, the
   * top Route when there is one and the Request-URI otherwise (§16.6 steps 7 and 10).
   */
  start(): void {
    const given = this.target.destination;
    if (given !== undefined) {
      this.send(given);
      return;
    }
    const nextHop = this.request.route[0]?.uri ?? this.request.ruri;
    this.env.resolve(nextHop).then(
      (destination) => this.resolved(destination, nextHop.toString()),
      (err: unknown) => {
        this.env.log.info({ err: String(err), target: nextHop.toString() }, 'next hop resolution failed');
        this.resolved(undefined, nextHop.toString());
      },
    );
  }

  /**
   * §16.10 / §9.1: "If no provisional response has been received, the CANCEL request MUST NOT be sent;
   * rather, the client MUST wait for the arrival of a provisional response before sending the request."
   * Only INVITE branches are cancelled; a non-INVITE request cannot be (§9.1: CANCEL "has no effect").
   */
  cancel(reason: CancelReason): void {
    if (this.ended || this.cancelReason !== undefined) return;
    this.cancelReason = reason;
    if (this.state === 'resolving') return; // ends with 487 once resolution completes
    if (!this.invite) return;
    if (this.provisional) this.sendCancel();
  }

  // ---- ClientTransactionUser ----------------------------------------------------------------------

  onResponse(response: SipResponse, transaction: ClientTransaction): void {
    if (transaction !== this.transaction) return;
    this.firstResponse = this.cancelTimer(this.firstResponse);
    const status = response.status;
    if (status < 200) {
      if (this.ended) return;
      this.provisional = true;
      this.state = 'proceeding';
      if (this.cancelReason !== undefined && this.invite) {
        this.sendCancel();
      } else if (status > 100 && this.invite) {
        // §16.7 step 2: "if the response is a provisional response with status codes 101 to 199
        // inclusive (i.e., anything but 100), the proxy MUST reset timer C for that client transaction."
        this.startTimerC();
      }
      // §16.7 step 5: "Any provisional response other than 100 (Trying) MUST be forwarded immediately."
      if (status > 100) this.owner.branchProvisional(this, response);
      return;
    }
    if (status < 300) {
      // RFC 6026 §8.4: every 2xx while Accepted comes here too (retransmissions, other dialogs); each
      // goes upstream. The first one ends the branch, after the context has seen it as a 2xx.
      const first = !this.ended;
      if (first) this.end({ status, response }, false);
      this.owner.branch2xx(this, response);
      if (first) this.owner.branchEnded(this);
      return;
    }
    if (this.ended) return;
    // §16.8: a 487 answering the CANCEL that Timer C caused is a timeout to the caller, not a CANCEL.
    if (status === 487 && this.cancelReason === 'timer-c') this.end({ status: 408 });
    else this.end({ status, response });
  }

  /** §16.7 step 6 counts a Timer B/F timeout as a 408 from the branch. */
  onTimeout(): void {
    if (!this.ended) this.end({ status: this.madeUp(408) });
  }

  /** §16.7 / RFC 3263 §4.3: a transport error is a 503 from the branch. */
  onTransportError(_transaction: ClientTransaction, error: Error): void {
    if (this.ended) return;
    this.env.log.info({ err: error.message, target: this.request.uri }, 'branch transport error');
    this.end({ status: this.madeUp(503) });
  }

  /** Clears the branch's timers (the core is stopping). */
  stop(): void {
    this.clearTimers();
  }

  // ---- internals ----------------------------------------------------------------------------------

  private resolved(destination: Destination | undefined, nextHop: string): void {
    if (this.ended) return;
    if (this.cancelReason !== undefined) {
      this.end({ status: 487 });
      return;
    }
    if (destination === undefined) {
      this.env.log.info({ target: nextHop }, 'next hop cannot be resolved');
      this.end({ status: this.madeUp(480) });
      return;
    }
    this.send(destination);
  }

  private send(destination: Destination): void {
    this.destination = destination;
    this.viaBranch = loopBranch(this.owner.request);
    const media = this.env.media;
    if (media !== undefined && hasSdp(this.request)) {
      // The media relay rewrites the offer for the leg it goes to (WebRTC ⇄ plain RTP) before it leaves.
      this.state = 'calling';
      media.outgoingRequest(this.request, this.owner.inbound, destination, this.viaBranch).then(
        () => this.transmit(destination),
        (err: Error & { status?: number }) => {
          this.env.log.warn({ err: err.message, target: this.request.uri, callId: this.request.callId }, 'media relay refused the offer');
          if (!this.ended) this.end({ status: this.cancelReason !== undefined ? 487 : err.status ?? 488 });
        },
      );
      return;
    }
    this.transmit(destination);
  }

  private transmit(destination: Destination): void {
    if (this.ended) return;
    if (this.cancelReason !== undefined) {
      this.end({ status: 487 });
      return;
    }
    const { stack, tokens } = this.env;
    const copy = this.request;
    try {
      if (hides(this.env.hiding, this.owner.inbound.remote.address, destination.address)) {
        hideRequest(copy, stack, tokens, destination.protocol);
        this.owner.viasHidden();
      }
      if (this.recordRoute) tokens.insert(copy, stack, { inbound: this.owner.inbound, outbound: destination });
      // §16.6 step 8, with the loop-detecting branch of §16.3 step 4.
      copy.prepend('Via', stack.viaFor(destination.protocol, this.viaBranch!));
      this.state = 'calling';
      this.transaction = stack.transactions.sendRequest(copy, destination, this);
    } catch (err) {
      this.env.log.info({ err: (err as Error).message, target: copy.uri }, 'branch could not be sent');
      this.end({ status: this.madeUp(503) });
      return;
    }
    if (destination.flowId !== undefined && isConnectionOriented(destination.protocol)) this.env.rememberFlow(destination);
    // §16.6 step 11: "If the request is an INVITE, the proxy MUST set timer C".
    if (this.invite) this.startTimerC();
    const silence = this.target.responseTimeoutMs;
    if (silence !== undefined && silence > 0) {
      this.firstResponse = this.env.timers.setTimeout(() => {
        this.firstResponse = undefined;
        if (this.ended) return;
        // Nothing came back: §16.8's "as if the transaction received a 408" without waiting for Timer B.
        this.env.log.info({ target: this.request.uri, ms: silence }, 'no response from the next hop');
        this.transaction?.terminate();
        this.end({ status: this.madeUp(408) });
      }, silence);
    }
  }

  private sendCancel(): void {
    const tx = this.transaction;
    if (this.cancelSent || tx === undefined || this.ended) return;
    this.cancelSent = true;
    this.timerC = this.cancelTimer(this.timerC);
    // §9.1: the CANCEL goes where the INVITE went, on the same connection.
    const destination: Destination = { ...tx.destination };
    const flowId = tx.flow?.id;
    if (flowId !== undefined) destination.flowId = flowId;
    try {
      this.env.stack.transactions.sendRequest(createCancel(tx.request), destination, CANCEL_USER);
    } catch (err) {
      this.env.log.warn({ err: (err as Error).message, target: this.request.uri }, 'CANCEL could not be sent');
    }
    // A callee that never answers the CANCEL would leave the INVITE in Proceeding for ever (no timer
    // guards that state): after 64*T1 the branch ends as if it had answered.
    this.guard = this.env.timers.setTimeout(() => {
      this.guard = undefined;
      if (this.ended) return;
      this.transaction?.terminate();
      this.end({ status: this.cancelReason === 'timer-c' ? 408 : 487 });
    }, this.env.cancelGuard);
  }

  private startTimerC(): void {
    this.timerC = this.cancelTimer(this.timerC);
    this.timerC = this.env.timers.setTimeout(() => this.onTimerC(), this.env.timerC);
  }

  /**
   * §16.8: "If timer C should fire, the proxy MUST either reset the timer with any value it chooses, or
   * terminate the client transaction. If the client transaction has received a provisional response,
   * the proxy MUST generate a CANCEL request matching that transaction. If the client transaction has
   * not received a provisional response, the proxy MUST behave as if the transaction received a 408
   * (Request Timeout) response."
   */
  private onTimerC(): void {
    this.timerC = undefined;
    if (this.ended) return;
    this.env.log.info({ target: this.request.uri }, 'Timer C fired');
    if (this.provisional) {
      this.cancelReason ??= 'timer-c';
      this.sendCancel();
      return;
    }
    this.transaction?.terminate();
    this.end({ status: this.madeUp(408) });
  }

  /** A result the proxy stands in for: once the caller has cancelled, the caller hears 487. */
  private madeUp(status: number): number {
    return this.owner.cancelled || this.cancelReason === 'caller' || this.cancelReason === 'fork' ? 487 : status;
  }

  private end(result: BranchResult, report = true): void {
    if (this.ended) return;
    this.state = 'ended';
    this.result = result;
    this.clearTimers();
    if (report) this.owner.branchEnded(this);
  }

  private clearTimers(): void {
    this.timerC = this.cancelTimer(this.timerC);
    this.guard = this.cancelTimer(this.guard);
    this.firstResponse = this.cancelTimer(this.firstResponse);
  }

  private cancelTimer(handle: TimerHandle | undefined): undefined {
    if (handle !== undefined) this.env.timers.clearTimeout(handle);
    return undefined;
  }
}

/**
 * §16.6 steps 1–3, 6 and 7: a copy of the request with the target's Request-URI, Max-Forwards
 * decremented (70 when absent), the target's Route values (Path) on top, and, when the first Route is a
 * strict router, the Request-URI moved to the end of the Route set.
 */
function buildCopy(original: SipRequest, target: ForwardTarget): SipRequest {
  const copy = new SipRequest({
    method: original.method, uri: target.uri, headers: original.headers.slice(), body: original.body, version: original.version,
  });
  // §16.6 step 3: "If the copy contains a Max-Forwards header field, the proxy MUST decrement its value
  // by one (1). If the copy does not contain a Max-Forwards header field, the proxy MUST add one with a
  // field value, which SHOULD be 70."
  const mf = original.maxForwards;
  copy.set('Max-Forwards', String(mf === undefined ? 70 : Math.max(0, mf - 1)));
  // §16.6 step 6 (RFC 3327 §5.3: the Path of the binding becomes a preloaded Route set).
  for (const [name, value] of target.headers ?? []) copy.append(name, value);
  const route = target.route ?? [];
  for (let i = route.length - 1; i >= 0; i--) copy.prepend('Route', route[i]!);
  // §16.6 step 7: "If that URI does not contain an lr parameter, the proxy MUST modify the copy as
  // follows: The proxy MUST place the Request-URI into the Route header field as the last value. The
  // proxy MUST then place the first Route header field value into the Request-URI and remove that value
  // from the Route header field."
  const first = copy.route[0];
  if (first !== undefined && first.uri instanceof SipUri && !first.uri.lr) {
    const values = copy.route.slice(1).map(String);
    values.push(`<${copy.uri}>`);
    copy.setUri(first.uri);
    copy.set('Route', values.join(', '));
  }
  return copy;
}
