import { SipResponse, type SipRequest, createResponse } from '../src/sip/index.js';
import type { ServerTransaction } from '../src/transaction/index.js';
import type { Flow } from '../src/transport/types.js';
import { type BranchOwner, ProxyBranch, type ProxyEnv } from './proxy-branch.js';
import type { BranchResult, ForwardOptions, ForwardTarget, ProxyContextEvents } from './types.js';
import { hasSdp } from './sdp-body.js';
import { hideResponse, hides } from './topology-hiding.js';

type E = ProxyContextEvents;
type Listener<A extends unknown[]> = (...args: A) => void;

/**
 * §16.7 step 6: "The proxy SHOULD give preference to responses that provide information affecting
 * resubmission of this request, such as 401, 407, 415, 420, and 484 if the 4xx class is chosen."
 */
const RESUBMISSION = [401, 407, 415, 420, 484];

/**
 * The response context of one forwarded request (RFC 3261 §16.6–§16.10): its branches, the responses
 * that go upstream at once (provisional, every 2xx), the best final response once every branch has
 * ended, and the CANCEL of the branches when a 2xx or 6xx wins or the caller cancels. Made by
 * `ProxyCore.forward`, which owns the table of live contexts.
 */
export class ProxyContext implements BranchOwner {
  readonly request: SipRequest;
  readonly serverTx: ServerTransaction;
  readonly branches: ProxyBranch[] = [];
  /** The final response sent upstream (the first 2xx or the best one), once sent. */
  final: SipResponse | undefined;
  /** The caller CANCELled (§16.10). */
  cancelled = false;
  private readonly env: ProxyEnv;
  private readonly options: ForwardOptions;
  private readonly recordRoute: boolean;
  private readonly isInvite: boolean;
  private readonly onDone: (context: ProxyContext) => void;
  /** A 6xx arrived: §16.7 step 5 "MUST NOT create any new branches in this context". */
  private closedToNewBranches = false;
  /** Upstream sends waiting behind a media rewrite, and the chain that keeps them in order. */
  private queued = 0;
  private upstream: Promise<void> = Promise.resolve();
  private starting = false;
  private attempts = 0;
  private finished = false;
  /** Targets that may still come (devices being woken by a push): the context stays open for them. */
  private awaited: number;
  /** A branch hid the request's Vias (topology hiding): every response upstream gets them back. */
  private hiddenVias = false;
  private listeners: { [K in keyof E]?: Array<Listener<E[K]>> } = {};

  /** @internal `ProxyCore.forward` creates contexts. */
  constructor(env: ProxyEnv, request: SipRequest, serverTx: ServerTransaction, options: ForwardOptions, onDone: (context: ProxyContext) => void) {
    this.env = env;
    this.request = request;
    this.serverTx = serverTx;
    this.options = options;
    this.isInvite = request.method === 'INVITE';
    this.recordRoute = options.recordRoute ?? createsDialog(request);
    this.onDone = onDone;
    this.final = undefined;
    this.awaited = options.awaiting ?? 0;
  }

  get inbound(): Flow {
    return this.serverTx.flow;
  }

  /** Every branch ended and a final response went upstream. */
  get done(): boolean {
    return this.finished;
  }

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const list = (this.listeners[event] ??= []) as Array<Listener<E[K]>>;
    list.push(listener);
    return this;
  }

  /**
   * @internal Starts one branch per target in parallel (§16.6); no target at all is a 480, unless targets
   * are awaited (ForwardOptions.awaiting): then the context waits for them.
   */
  start(targets: ForwardTarget[]): void {
    if (targets.length === 0 && this.awaited === 0) {
      this.respondLocally(480);
      this.finish();
      return;
    }
    this.addBranches(targets);
  }

  /** True while an awaited target may still become a branch: no final response, no CANCEL, no 6xx. */
  get open(): boolean {
    return this.final === undefined && !this.cancelled && !this.closedToNewBranches && !this.finished;
  }

  /**
   * One awaited target came (a woken device registered again): it becomes a branch (§16.6 lets a proxy
   * add targets to the set while the context is open). False, and nothing sent, when the context is no
   * longer open; the expectation is used up either way.
   */
  arrive(targets: ForwardTarget[]): boolean {
    if (this.awaited > 0) this.awaited--;
    if (!this.open) {
      this.completeIfAllEnded();
      return false;
    }
    this.addBranches(targets);
    return true;
  }

  /** One awaited target will not come (its device did not wake in time): the context may now complete. */
  giveUp(): void {
    if (this.awaited > 0) this.awaited--;
    this.completeIfAllEnded();
  }

  /** @internal Answers without forwarding (§16.3 checks) and ends the context. */
  reject(status: number): void {
    this.respondLocally(status);
    this.finish();
  }

  /**
   * §16.10: "the proxy MUST cancel any pending client transactions associated with the response
   * context." The 487 the branches answer (or stand in for) then goes upstream as the best response.
   */
  cancel(): void {
    this.cancelled = true;
    for (const b of this.branches) b.cancel('caller');
    // Only devices being woken, no branch yet: nothing will end on its own.
    this.completeIfAllEnded();
  }

  /** @internal Clears every branch's timers (the core is stopping). */
  stop(): void {
    for (const b of this.branches) b.stop();
  }

  // ---- BranchOwner ------------------------------------------------------------------------------

  branchProvisional(branch: ProxyBranch, response: SipResponse): void {
    if (this.final !== undefined) return;
    const sent = this.forwardUpstream(response, true, branch);
    if (sent !== undefined) this.emit('provisional', sent, branch);
  }

  /**
   * §16.7 step 5: "Any 2xx responses MUST be forwarded immediately" (RFC 6026 §8.5: several 2xx of
   * a forked INVITE all go upstream), and step 10: "If a final response has been sent ... the proxy MUST
   * cancel any pending client transactions associated with the response context." A non-INVITE request
   * has one final response: the first 2xx.
   */
  branch2xx(branch: ProxyBranch, response: SipResponse): void {
    if (this.final !== undefined && !this.isInvite) return;
    const sent = this.forwardUpstream(response, true, branch);
    if (this.final !== undefined || sent === undefined) return;
    this.setFinal(sent, branch);
    this.cancelPending('fork');
  }

  viasHidden(): void {
    this.hiddenVias = true;
  }

  branchEnded(branch: ProxyBranch): void {
    const status = branch.result?.status ?? 0;
    if (status >= 600 && this.final === undefined) {
      // §16.7 step 5: "If a 6xx response is received, it is not immediately forwarded, but the stateful
      // proxy SHOULD cancel all client pending transactions as described in Section 10, and it MUST NOT
      // create any new branches in this context."
      this.closedToNewBranches = true;
      this.cancelPending('fork');
    }
    this.completeIfAllEnded();
  }

  // ---- internals ----------------------------------------------------------------------------------

  private addBranches(targets: ForwardTarget[]): void {
    this.starting = true;
    const fresh: ProxyBranch[] = [];
    for (const target of targets) {
      const branch = new ProxyBranch(this, this.env, target, this.branches.length, this.recordRoute);
      this.branches.push(branch);
      fresh.push(branch);
    }
    for (const b of fresh) b.start();
    this.starting = false;
    this.completeIfAllEnded();
  }

  private cancelPending(reason: 'fork'): void {
    if (!this.isInvite) return;
    for (const b of this.branches) if (!b.ended) b.cancel(reason);
  }

  /**
   * §16.7 step 6: "A stateful proxy MUST send a final response to a response context's server
   * transaction if no final responses have been immediately forwarded by the above rules and all client
   * transactions in this response context have been terminated."
   */
  private completeIfAllEnded(): void {
    if (this.starting || this.finished) return;
    for (const b of this.branches) if (!b.ended) return;
    // Devices still waking keep the context open, unless it is decided already (CANCEL, 2xx, 6xx).
    if (this.awaited > 0 && this.open) return;
    if (this.final === undefined && this.branches.length === 0) {
      // Nobody was reached: the caller gave up (487), or no device woke in time (480).
      this.respondLocally(this.cancelled ? 487 : 480);
    } else if (this.final === undefined) {
      const best = chooseBest(this.branches.map((b) => b.result!));
      const failover = this.options.failover;
      if (failover !== undefined && !this.cancelled && !this.closedToNewBranches && best.status >= 300 && best.status < 600) {
        let targets: ForwardTarget[] | undefined;
        try {
          targets = failover(this.bestResponse(best), ++this.attempts, best.status);
        } catch (err) {
          this.env.log.error({ err, ruri: this.request.uri }, 'failover callback threw');
        }
        if (targets !== undefined && targets.length > 0) {
          this.addBranches(targets);
          return;
        }
      }
      this.sendBest(best);
    }
    this.finish();
  }

  private sendBest(best: BranchResult): void {
    if (best.response === undefined) {
      this.respondLocally(best.status);
      return;
    }
    const sent = this.forwardUpstream(this.bestResponse(best), false);
    if (sent !== undefined) this.setFinal(sent);
  }

  /**
   * The response to send upstream for the chosen result, our Via removed: §16.7 step 6 "If the selected
   * response is a 503, it MUST be converted to 500", and step 7 for 401/407: "the proxy MUST collect any
   * WWW-Authenticate and Proxy-Authenticate header field values from all other 401 (Unauthorized) and
   * 407 (Proxy Authentication Required) responses received so far in this response context and add them
   * to this response without modification before forwarding."
   */
  private bestResponse(best: BranchResult): SipResponse {
    if (best.response === undefined) {
      return new SipResponse({ status: best.status === 503 ? 500 : best.status });
    }
    const out = upstreamCopy(best.response);
    if (out.status === 503) out.setStatus(500);
    if (out.status === 401 || out.status === 407) {
      for (const b of this.branches) {
        const r = b.result?.response;
        if (r === undefined || r === best.response || (r.status !== 401 && r.status !== 407)) continue;
        for (const v of r.getAll('www-authenticate')) out.append('WWW-Authenticate', v);
        for (const v of r.getAll('proxy-authenticate')) out.append('Proxy-Authenticate', v);
      }
    }
    return out;
  }

  /**
   * §16.7 step 9 (our Via removed) then the server transaction sends it. Returns what was (or, behind a
   * media rewrite, will be) sent. With a media relay, a response carrying SDP waits for its rewrite, and
   * every later response waits behind it so that upstream sees them in the order they came.
   */
  private forwardUpstream(response: SipResponse, copy = true, branch?: ProxyBranch): SipResponse | undefined {
    const out = copy ? upstreamCopy(response) : response;
    if (this.serverTx.isTerminated) return undefined;
    this.hideUpstream(out, branch);
    const media = this.env.media;
    const rewrite = media !== undefined && out.status > 100 && out.status < 300 && hasSdp(out);
    if (!rewrite && this.queued === 0) return this.sendUpstream(out) ? out : undefined;
    this.queued++;
    this.upstream = this.upstream
      .then(async () => {
        if (rewrite) {
          try {
            await media.upstreamResponse(out, this.request, this.inbound, branch?.destination, branch?.viaBranch);
          } catch (err) {
            // The next hop has answered already; its SDP goes up unrewritten and the failure is logged.
            this.env.log.error({ err: (err as Error).message, status: out.status, callId: this.request.callId }, 'media relay could not rewrite the answer');
          }
        }
        this.sendUpstream(out);
      })
      .finally(() => this.queued--);
    return out;
  }

  /**
   * Topology hiding on the way up: the Vias a branch hid come back (the response then reads as it would
   * have without hiding), and a response from a trusted peer to an untrusted caller loses the trusted
   * side's Contact and Record-Route (topology-hiding.ts).
   */
  private hideUpstream(out: SipResponse, branch: ProxyBranch | undefined): void {
    const hiding = this.env.hiding;
    if (hiding === undefined) return;
    if (this.hiddenVias) {
      out.remove('via');
      const vias = this.request.getAll('via');
      for (let i = vias.length - 1; i >= 0; i--) out.prepend('Via', vias[i]!);
    }
    const from = (branch ?? this.branches[this.branches.length - 1])?.destination?.address;
    if (hides(hiding, from, this.inbound.remote.address)) hideResponse(out, this.env.stack, this.env.tokens, this.inbound.protocol);
  }

  private sendUpstream(out: SipResponse): boolean {
    if (this.serverTx.isTerminated) return false;
    try {
      this.serverTx.respond(out);
      return true;
    } catch (err) {
      this.env.log.warn({ err: (err as Error).message, status: out.status }, 'response could not go upstream');
      return false;
    }
  }

  private respondLocally(status: number): void {
    if (this.serverTx.isTerminated) return;
    const code = status === 503 ? 500 : status;
    if (this.queued > 0) {
      // Behind a response whose SDP is being rewritten: keep the order.
      const res = createResponse(this.serverTx.request, code);
      this.forwardUpstream(res, false);
      this.setFinal(res);
      return;
    }
    try {
      this.setFinal(this.env.stack.respond(this.serverTx, code));
    } catch (err) {
      this.env.log.warn({ err: (err as Error).message, status }, 'response could not go upstream');
    }
  }

  private setFinal(response: SipResponse, branch?: ProxyBranch): void {
    this.final = response;
    this.emit('final', response, branch);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone(this);
    this.emit('done');
  }

  private emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const list = this.listeners[event] as Array<Listener<E[K]>> | undefined;
    if (list === undefined) return;
    for (const l of list.slice()) {
      try {
        l(...args);
      } catch (err) {
        this.env.log.error({ err, event }, 'proxy context listener threw');
      }
    }
  }
}

/**
 * §16.7 step 6: "It MUST choose from the 6xx class responses if any exist in the context. If no 6xx
 * class responses are present, the proxy SHOULD choose from the lowest response class stored in the
 * response context. The proxy MAY select any response within that chosen class." Within the class this
 * picks, deterministically: a response a next hop really sent over one the proxy stands in for (a 486
 * over a 408 timeout), then 401/407/415/420/484 (resubmission information), then the lowest status code
 * (404 over 486), then the earliest branch.
 */
export function chooseBest(results: BranchResult[]): BranchResult {
  if (results.length === 0) return { status: 408 };
  const sixes = results.filter((r) => r.status >= 600);
  let pool = sixes;
  if (pool.length === 0) {
    let cls = 9;
    for (const r of results) cls = Math.min(cls, Math.floor(r.status / 100));
    pool = results.filter((r) => Math.floor(r.status / 100) === cls);
  }
  const real = pool.filter((r) => r.response !== undefined);
  if (real.length > 0) pool = real;
  const rank = (s: number): number => {
    const i = RESUBMISSION.indexOf(s);
    return i === -1 ? RESUBMISSION.length : i;
  };
  let best = pool[0]!;
  for (const r of pool) {
    const d = rank(r.status) - rank(best.status);
    if (d < 0 || (d === 0 && r.status < best.status)) best = r;
  }
  return best;
}

/** §16.6 step 4: requests that may create a dialog get Record-Route (out-of-dialog, no To tag). */
function createsDialog(request: SipRequest): boolean {
  if (request.to?.tag !== undefined) return false;
  const m = request.method;
  return m === 'INVITE' || m === 'SUBSCRIBE' || m === 'REFER' || m === 'NOTIFY';
}

/** A copy of a branch response without our Via (§16.7 step 9: "The proxy removes the topmost Via"). */
function upstreamCopy(response: SipResponse): SipResponse {
  const out = new SipResponse({
    status: response.status, reason: response.reason, headers: response.headers.slice(), body: response.body, version: response.version,
  });
  out.removeFirstValue('via');
  return out;
}
