import { type Logger, categoryLogger } from '../log/index.js';
import { type MessageCounters, type SipRequest, type SipResponse, type Via, createResponse } from '../sip/index.js';
import type { Destination, Flow, TransportSender } from '../transport/types.js';
import { TransactionError } from './errors.js';
import { InviteClientTransaction } from './invite-client-transaction.js';
import { InviteServerTransaction } from './invite-server-transaction.js';
import { NonInviteClientTransaction } from './non-invite-client-transaction.js';
import { NonInviteServerTransaction } from './non-invite-server-transaction.js';
import { type TimerConfig, type Timers, realTimers, timerConfig } from './timers.js';
import { TransactionState } from './transaction-state.js';
import { detach } from './transaction.js';
import type {
  AnyTransaction, ClientTransaction, ClientTransactionUser, IncomingRequest, ServerTransaction, TransactionContext,
} from './types.js';

export interface TransactionLayerOptions {
  transport: TransportSender;
  logger: Logger;
  /** The clock; Node's (unref'd) timers by default, a FakeClock in tests. */
  timers?: Timers;
  /** T1, T2, T4 overrides (ms); RFC 3261 defaults 500 / 4000 / 5000. */
  timing?: Partial<TimerConfig>;
  /**
   * 100 Trying for a new INVITE server transaction (§17.2.1): true (the default) sends it as soon as the
   * transaction is created; 'deferred' once the events of this turn of the event loop have been handled,
   * unless the TU has responded by then (§17.2.1 spares the 100 when the TU answers within 200 ms: a
   * digest challenge or a quick refusal then goes out alone, one datagram instead of two); false never.
   */
  sendTrying?: boolean | 'deferred';
  /**
   * Bound on the wire bytes held by server transactions (requests, last responses; `heldBytes`). Over it,
   * `receiveRequest` creates no transaction for a new request outside a dialog and answers `over-budget`.
   * Infinity (the default) never refuses.
   */
  memoryLimit?: number;
  /** Counts the responses the server transactions send (first transmissions, by method and code). */
  counters?: MessageCounters;
}

// Results that carry no data are shared: no allocation for the common absorbed cases.
const RETRANSMISSION: IncomingRequest = Object.freeze({ kind: 'retransmission' as const });
const ACK_ABSORBED: IncomingRequest = Object.freeze({ kind: 'ack-absorbed' as const });
const ACK_FOR_TU: IncomingRequest = Object.freeze({ kind: 'ack' as const });
const OVER_BUDGET: IncomingRequest = Object.freeze({ kind: 'over-budget' as const });

/**
 * The transaction layer of RFC 3261 §17: matches incoming requests to server transactions (§17.2.3,
 * with the RFC 2543 fallback) and responses to client transactions (§17.1.3), creates transactions,
 * and owns two Maps of live transactions keyed by a string built once per transaction. A transaction
 * leaves its Map when it terminates; `stop()` terminates them all.
 */
export class TransactionLayer {
  private readonly ctx: TransactionContext;
  private readonly log: Logger;
  private readonly sendTrying: boolean | 'deferred';
  private readonly clients = new Map<string, ClientTransaction>();
  private readonly servers = new Map<string, ServerTransaction>();
  private branchTag = '';
  private stopped = false;
  private held = 0;
  private readonly memoryLimit: number;

  constructor(options: TransactionLayerOptions) {
    if (options === null || typeof options !== 'object' || options.transport === undefined || options.logger === undefined) {
      throw new TypeError('TransactionLayer needs { transport, logger }');
    }
    this.log = categoryLogger(options.logger, 'sip.transaction');
    this.sendTrying = options.sendTrying ?? true;
    this.memoryLimit = options.memoryLimit ?? Infinity;
    this.ctx = {
      transport: options.transport,
      timers: options.timers ?? realTimers,
      config: timerConfig(options.timing),
      logger: this.log,
      owner: {
        transactionTerminated: (tx) => this.forget(tx),
        heldChanged: (delta) => {
          this.held += delta;
        },
      },
      counters: options.counters,
    };
  }

  /** The timer base values in use. */
  get timing(): Readonly<TimerConfig> {
    return this.ctx.config;
  }

  /** Live transactions, per side. */
  get stats(): { client: number; server: number } {
    return { client: this.clients.size, server: this.servers.size };
  }

  /** Wire bytes held by the live server transactions (what `memoryLimit` bounds). */
  get heldBytes(): number {
    return this.held;
  }

  /**
   * Transactions still waiting for a final response (server: Trying/Proceeding; client: Calling/Trying/
   * Proceeding). A stopping server waits for this to reach 0 (Stack.drain); transactions past their final
   * response only absorb retransmissions and are not counted. Walks both tables: for the drain, not per message.
   */
  get pending(): number {
    let n = 0;
    for (const tx of this.servers.values()) if (isPending(tx.state)) n++;
    for (const tx of this.clients.values()) if (isPending(tx.state)) n++;
    return n;
  }

  /**
   * Whether a request belongs to a live server transaction (a retransmission), or, for a CANCEL, whether
   * the INVITE it cancels is one (§9.2). Creates nothing: a draining stack asks before deciding whether
   * the request is new work it refuses.
   */
  matchesServer(request: SipRequest): boolean {
    const via = request.topVia;
    if (via === undefined || this.stopped) return false;
    const rfc3261 = via.isRfc3261Branch;
    const method = request.method === 'ACK' ? 'INVITE' : request.method;
    const key = rfc3261 ? branchKey(via, method, request) : rfc2543Key(request, via, method, request.to?.tag);
    if (this.servers.has(key)) return true;
    if (method !== 'CANCEL') return false;
    return this.servers.has(rfc3261 ? branchKey(via, 'INVITE', request) : rfc2543Key(request, via, 'INVITE', request.to?.tag));
  }

  /**
   * Cluster workers: every client transaction's branch ends with `tag` (`~1` for worker 1), so that a
   * response reaching another worker through a shared UDP socket can be handed to the worker that holds
   * its transaction (server/cluster). The branch the caller wrote gets the tag appended in sendRequest when it
   * does not end with it already (a CANCEL copies its INVITE's branch). '' (the default) changes nothing.
   */
  setBranchTag(tag: string): void {
    if (typeof tag !== 'string' || !/^[A-Za-z0-9.!%*_+`'~-]*$/.test(tag)) throw new TypeError(`branch tag must be token characters, got ${JSON.stringify(tag)}`);
    this.branchTag = tag;
  }

  /**
   * A request from the network (the core has already added `received`/`rport` to its top Via).
   * §17.2.3 decides whether it belongs to a server transaction; a new one is created otherwise (for an
   * INVITE, 100 Trying goes out at once unless `sendTrying` is false). A request without a Via throws
   * TypeError: the core answers such requests 400 before they get here.
   */
  receiveRequest(request: SipRequest, flow: Flow): IncomingRequest {
    this.assertRunning('receiveRequest');
    const via = request.topVia;
    if (via === undefined) throw new TypeError('receiveRequest: request without a Via header field');
    const method = request.method;
    const rfc3261 = via.isRfc3261Branch;
    if (method === 'ACK') return this.receiveAck(request, via, rfc3261);

    const key = rfc3261 ? branchKey(via, method, request) : rfc2543Key(request, via, method, request.to?.tag);
    const existing = this.servers.get(key);
    if (existing !== undefined) {
      existing.receiveRetransmission();
      return RETRANSMISSION;
    }

    // Under memory pressure new work is refused before it costs anything; requests within a dialog (a
    // To tag: BYE, re-INVITE, in-dialog NOTIFY) and CANCEL still end what is already held.
    if (this.held > this.memoryLimit && method !== 'CANCEL' && request.to?.tag === undefined) return OVER_BUDGET;

    // The key is built from slices of the request's text; the table keeps it for the transaction's life.
    const ownKey = detach(key);
    if (method === 'INVITE') {
      const tx = new InviteServerTransaction(request, ownKey, flow, this.ctx);
      this.servers.set(ownKey, tx);
      // §17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows that the
      // TU will generate a provisional or final response within 200 ms". Sending it at once stops the
      // client's Timer A retransmissions soonest.
      if (this.sendTrying === true) tx.respond(createResponse(request, 100));
      else if (this.sendTrying === 'deferred') setImmediate(tryingUnlessAnswered, tx);
      return { kind: 'new', transaction: tx };
    }

    const tx = new NonInviteServerTransaction(request, ownKey, flow, this.ctx);
    this.servers.set(ownKey, tx);
    if (method === 'CANCEL') {
      // §9.2: "The CANCEL method requests that the TU at the server side cancel a pending transaction.
      // The TU determines the transaction to be cancelled by taking the CANCEL request, and then assuming
      // that the request method is anything but CANCEL or ACK and applying the transaction matching
      // procedures of Section 17.2.3." Only an INVITE can be pending long enough to be cancelled.
      const inviteKey = rfc3261 ? branchKey(via, 'INVITE', request) : rfc2543Key(request, via, 'INVITE', request.to?.tag);
      const target = this.servers.get(inviteKey);
      if (target !== undefined && target.kind === 'invite-server') {
        target.cancelled = true;
        return { kind: 'new', transaction: tx, cancels: target };
      }
    }
    return { kind: 'new', transaction: tx };
  }

  /**
   * A response from the network. §17.1.3: "If the response matches, the branch parameter in the top Via
   * of the response equals the one in the top Via of the request that created the transaction, and the
   * method parameter in the CSeq header field matches the method of the request." Returns true when a
   * client transaction took it, false for a stray response (the core decides: a proxy forwards a stray
   * 2xx statelessly, §16.7 / RFC 6026).
   */
  receiveResponse(response: SipResponse, flow: Flow): boolean {
    this.assertRunning('receiveResponse');
    const branch = response.topVia?.branch;
    const cseq = response.cseq;
    if (typeof branch !== 'string' || cseq === undefined) return false;
    const tx = this.clients.get(clientKey(branch, cseq.method));
    if (tx === undefined) {
      if (this.log.isLevelEnabled('debug')) {
        this.log.debug({ status: response.status, branch, method: cseq.method, flow: flow.id }, 'stray response');
      }
      return false;
    }
    tx.receiveResponse(response);
    return true;
  }

  /**
   * Starts a client transaction for a request whose top Via the caller has already added, with a fresh
   * RFC 3261 branch (§8.1.1.7), and sends it to `destination`. ACK is never sent in a transaction (the
   * ACK of a non-2xx is built by the INVITE client transaction, the ACK of a 2xx by the TU) and throws
   * TypeError, as does a request without a magic-cookie branch or whose CSeq method differs. A branch
   * and method already in use throw TransactionError (TRANSACTION_ERR_EXISTS).
   */
  sendRequest(request: SipRequest, destination: Destination, user: ClientTransactionUser): ClientTransaction {
    this.assertRunning('sendRequest');
    const method = request.method;
    if (method === 'ACK') throw new TypeError('sendRequest: ACK is not sent in a client transaction (RFC 3261 §17.1.1.3)');
    const via = request.topVia;
    let branch = via?.branch;
    if (via === undefined || typeof branch !== 'string' || !via.isRfc3261Branch) {
      throw new TypeError('sendRequest: the request needs a top Via with a fresh z9hG4bK branch');
    }
    if (this.branchTag !== '' && !branch.endsWith(this.branchTag)) {
      branch += this.branchTag;
      via.params.set('branch', branch);
      request.replaceFirstValue('via', via.toString());
    }
    const cseq = request.cseq;
    if (cseq === undefined || cseq.method !== method) {
      throw new TypeError(`sendRequest: CSeq method must be ${method} (RFC 3261 §8.1.1.5)`);
    }
    if (user === null || typeof user !== 'object' || typeof user.onResponse !== 'function') {
      throw new TypeError('sendRequest: user must implement onResponse');
    }
    const key = clientKey(branch, method);
    if (this.clients.has(key)) {
      throw new TransactionError('TRANSACTION_ERR_EXISTS', `a ${method} client transaction with branch ${branch} already exists`);
    }
    const tx = method === 'INVITE'
      ? new InviteClientTransaction(request, key, destination, user, this.ctx)
      : new NonInviteClientTransaction(request, key, destination, user, this.ctx);
    this.clients.set(key, tx);
    tx.start();
    return tx;
  }

  /** Terminates every transaction (their timers cleared, `terminated` emitted). The layer is then unusable. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const tx of [...this.clients.values()]) tx.terminate();
    for (const tx of [...this.servers.values()]) tx.terminate();
    this.clients.clear();
    this.servers.clear();
  }

  /**
   * §17.2.3: the ACK matches the INVITE server transaction with the same branch and sent-by (method
   * INVITE). An ACK for a non-2xx is absorbed there (§17.2.1); every other ACK goes to the TU, with the
   * transaction when one in Accepted matched (RFC 6026 §8.7: "Any ACKs received from the network while
   * in the 'Accepted' state MUST be passed directly to the TU and not absorbed").
   */
  private receiveAck(ack: SipRequest, via: Via, rfc3261: boolean): IncomingRequest {
    let found: ServerTransaction | undefined;
    if (rfc3261) {
      found = this.servers.get(branchKey(via, 'INVITE', ack));
    } else {
      // RFC 2543 §17: the ACK's To tag is the tag of the response sent, which the INVITE did not carry
      // (initial INVITE) or carried already (re-INVITE): one lookup for each.
      const tag = ack.to?.tag;
      found = this.servers.get(rfc2543Key(ack, via, 'INVITE', undefined));
      if (!ackTagMatches(found, tag)) {
        found = tag === undefined ? undefined : this.servers.get(rfc2543Key(ack, via, 'INVITE', tag));
        if (!ackTagMatches(found, tag)) found = undefined;
      }
    }
    if (found === undefined || found.kind !== 'invite-server') return ACK_FOR_TU;
    switch (found.state) {
      case TransactionState.Completed:
        found.receiveAck();
        return ACK_ABSORBED;
      case TransactionState.Accepted:
        return { kind: 'ack', transaction: found };
      default:
        // Confirmed: §17.2.1 absorbs further ACKs. Proceeding: an ACK before any final response
        // acknowledges nothing; dropped.
        return ACK_ABSORBED;
    }
  }

  private forget(tx: AnyTransaction): void {
    const table: Map<string, AnyTransaction> =
      tx.kind === 'invite-client' || tx.kind === 'non-invite-client' ? this.clients : this.servers;
    if (table.get(tx.key) === tx) table.delete(tx.key);
  }

  private assertRunning(what: string): void {
    if (this.stopped) throw new TransactionError('TRANSACTION_ERR_STOPPED', `${what}() after TransactionLayer.stop()`);
  }
}

/** §17.1.3: branch and CSeq method. */
function clientKey(branch: string, method: string): string {
  return branch + ' ' + method;
}

/**
 * §17.2.3 with a magic-cookie branch: branch, sent-by, and the method (INVITE for an ACK). Call-ID and
 * CSeq number are added: a retransmission, its CANCEL and the ACK of a non-2xx always carry the same
 * ones, while a different request that reuses a branch (a broken or hostile client; RFC 4475's
 * cparam01/cparam02 share one) is then its own transaction instead of being swallowed as a retransmission.
 */
function branchKey(via: Via, method: string, request: SipRequest): string {
  return via.branch + ' ' + via.sentBy + ' ' + method + ' ' + (request.callId ?? '') + ' ' + (request.cseq?.seq ?? '');
}

/**
 * RFC 2543 §17 matching, which §17.2.3 defers to when the branch lacks the magic cookie (a branch that
 * is just `z9hG4bK`, RFC 4475 §3.2.1, counts as lacking it): Request-URI, To tag, From tag, Call-ID,
 * CSeq and top Via. The top Via is compared by transport, sent-by and branch, not by its text: the core
 * adds received/rport to it on arrival, and those may differ between retransmissions behind a NAT.
 * The key starts with a space so it can never equal a branch key (a branch is a token).
 */
function rfc2543Key(request: SipRequest, via: Via, method: string, toTag: string | undefined): string {
  return (
    ' ' + request.uri +
    ' ' + (toTag ?? '') +
    ' ' + (request.from?.tag ?? '') +
    ' ' + (request.callId ?? '') +
    ' ' + (request.cseq?.seq ?? '') + ' ' + method +
    ' ' + via.transport + ' ' + via.sentBy + ' ' + (via.branch ?? '')
  );
}

function isPending(state: TransactionState): boolean {
  return state === TransactionState.Trying || state === TransactionState.Proceeding || state === TransactionState.Calling;
}

/** The deferred 100 Trying: only while the TU has sent nothing on a transaction still Proceeding. */
function tryingUnlessAnswered(tx: InviteServerTransaction): void {
  if (tx.state === TransactionState.Proceeding && tx.lastResponse === undefined) tx.respond(createResponse(tx.request, 100));
}

/** RFC 2543 §17: an ACK matches when "the To tag of the ACK matches the To tag of the response sent". */
function ackTagMatches(tx: ServerTransaction | undefined, tag: string | undefined): boolean {
  return tx !== undefined && tx.lastResponse !== undefined && tx.lastResponse.to?.tag === tag;
}
