/**
 * Types of the stateful proxy core (RFC 3261 §16): what the routing policy hands to `ProxyCore.forward`,
 * what loose routing reports, and the options of the core. Types only, so fakes stay trivial.
 */
import type { Logger } from '../src/log/index.js';
import type { Stack } from '../src/core/index.js';
import type { SipRequest, SipResponse, Uri } from '../src/sip/index.js';
import type { Timers } from '../src/transaction/index.js';
import type { Destination, Flow } from '../src/transport/types.js';
import type { ProxyBranch } from './proxy-branch.js';

/** One target of the target set (§16.5): where one branch of a (possibly forked) request goes. */
export interface ForwardTarget {
  /** The Request-URI of this branch (§16.6 step 2). */
  uri: Uri;
  /**
   * Where to send it without resolving anything, e.g. a registered binding's flow (RFC 5626). Without
   * it the next hop is resolved from the top Route, else from `uri` (RFC 3263-lite, see resolver.ts).
   */
  destination?: Destination;
  /** Route values to put on top of the copy, in order (the binding's Path, RFC 3327 §5.3). */
  route?: string[];
  /**
   * Ends the branch as a 408 when nothing at all (not even 100 Trying) has come back within this many
   * ms (Kamailio's `fr_timer`): a dead backend is given up, and the failover callback can try the next,
   * long before Timer B's 32 s. Without it only the transaction timers apply.
   */
  responseTimeoutMs?: number;
  /** Header fields to add to this branch's copy only (e.g. P-Asserted-Identity towards a trunk). */
  headers?: Array<[string, string]>;
}

/** A resolver of next hops; `resolve()` of resolver.ts by default. */
export type Resolve = (uri: Uri) => Promise<Destination | undefined>;

export interface ForwardOptions {
  /**
   * Insert Record-Route (§16.6 step 4). Default: true for dialog-creating requests (INVITE, SUBSCRIBE,
   * REFER and NOTIFY without a To tag), false otherwise.
   */
  recordRoute?: boolean;
  /**
   * Serial forking / failover (§16.7 step 5 lets the proxy add branches before choosing the best
   * response): called once every branch has ended without a 2xx or 6xx and the caller has not cancelled,
   * with the response that would go upstream. Targets it returns become new branches; none sends the
   * best response upstream. `status` is the best branch's own status, before §16.7's 503 → 500
   * conversion of the upstream copy (a 503 from a backend is a reason to fail over, a 500 is not).
   */
  failover?: (best: SipResponse, attempt: number, status: number) => ForwardTarget[] | undefined;
  /**
   * Targets that may come later (RFC 8599: devices being woken by a push), each through
   * `ProxyContext.arrive()` or, when it will not come, `giveUp()`. Until then the context stays open even
   * with every branch ended (or none started: no 480 at once).
   */
  awaiting?: number;
}

/**
 * What the proxy asks of a media relay (the WebRTC gateway): SDP rewriting on the way through, and the
 * end of a call's media. Each method rewrites the message body in place; a rejection fails the branch
 * (its `status`, 488 by default) or, for a response, sends the error upstream instead.
 */
export interface ProxyMedia {
  /** A branch copy with an SDP offer is about to go out towards `outbound`. */
  outgoingRequest(copy: SipRequest, inbound: Flow, outbound: Destination, viaBranch: string): Promise<void>;
  /** A provisional or 2xx response with SDP is about to go upstream to `inbound`. */
  upstreamResponse(response: SipResponse, request: SipRequest, inbound: Flow, outbound: Destination | undefined, viaBranch: string | undefined): Promise<void>;
}

export interface ProxyCoreOptions {
  stack: Stack;
  logger: Logger;
  /** HMAC key for flow tokens and Record-Route markers; 32 random bytes by default. */
  secret?: Buffer;
  /** Timer C (RFC 3261 §16.6 step 11: "MUST be greater than 3 minutes"): 180 000 ms by default. */
  timerCMs?: number;
  /** The clock for Timer C and the CANCEL guard; pass the stack's clock (a FakeClock in tests). */
  timers?: Timers;
  /** Next-hop resolution; `resolve()` of resolver.ts by default. */
  resolve?: Resolve;
  /** The media relay hook (WebRTC gateway); without it SDP passes through untouched. */
  media?: ProxyMedia;
  /**
   * Topology hiding (proxy/topology-hiding.ts): messages from a trusted peer to an untrusted one carry
   * none of the trusted side's Contact, Record-Route and Via. Off when absent.
   */
  topologyHiding?: { isTrusted(address: string): boolean };
}

/** What `looseRoute` did to a request carrying Route header fields (§16.4, §16.12). */
export interface LooseRouteResult {
  /** At least one Route value (or a strict router's Request-URI) naming this proxy was removed. */
  ours: boolean;
  /** A removed value carried a valid HMAC: this proxy Record-Routed the dialog. */
  verified: boolean;
  /** The flow id in the last removed value, the flow that faces the request's destination. */
  flow?: string;
  /** Where the request goes next: its (remaining) top Route, or its Request-URI. */
  next: 'route' | 'ruri';
}

/** What a Record-Route or Route user part says once checked (record-route.ts). */
export interface TokenCheck {
  /** The HMAC is right: this proxy wrote the value. */
  valid: boolean;
  /** The flow id, for a flow token (not for a plain Record-Route marker). */
  flowId?: string;
}

/** Where a branch stands. */
export type BranchState = 'resolving' | 'calling' | 'proceeding' | 'ended';

/** How a branch ended (§16.7): a response from the next hop, or one the proxy stands in for. */
export interface BranchResult {
  status: number;
  /** The response received; undefined when the proxy made the result up (timeout, send failure, CANCEL). */
  response?: SipResponse;
}

/** Events of a ProxyContext. */
export type ProxyContextEvents = {
  /** A provisional response (not 100) went upstream from `branch`. */
  provisional: [response: SipResponse, branch: ProxyBranch];
  /**
   * The final response sent upstream: the first 2xx (with the branch it came from), or the best one
   * (§16.7 step 6; no branch: it may be one the proxy made up).
   */
  final: [response: SipResponse, branch: ProxyBranch | undefined];
  /** Every branch ended and a final response went upstream; the context left the core's table. */
  done: [];
};
