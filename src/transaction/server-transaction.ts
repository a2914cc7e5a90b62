import { type SipRequest, type SipResponse, serializeMessage } from '../sip/index.js';
import { type Destination, type Flow, isReliable } from '../transport/types.js';
import { responseDestination } from './response-destination.js';
import { nextTimerG } from './timers.js';
import { Transaction, wireSize } from './transaction.js';
import { TransactionState } from './transaction-state.js';
import type { TransactionContext } from './types.js';

/**
 * What the two server transactions of RFC 3261 §17.2 share: the responses of the TU sent to the address
 * §18.2.2 gives, the last one kept and re-sent on a retransmitted request, the request and the final
 * response compacted once the final response is out, and what they hold told to the layer. Their TU is the
 * core, which learns of a timeout or a transport error through the events. Created by
 * `TransactionLayer.receiveRequest`.
 */
export abstract class ServerTransactionBase extends Transaction {
  /** The flow the request arrived on. */
  readonly flow: Flow;
  /** Where responses go (§18.2.2, RFC 3581), computed once. */
  readonly responseDestination: Destination;
  /** The most recent response sent. */
  lastResponse: SipResponse | undefined;
  private lastBytes: Buffer | undefined;
  /** Size of the request as held (see `heldBytes`). */
  private requestBytes: number;

  constructor(request: SipRequest, key: string, flow: Flow, ctx: TransactionContext, initial: TransactionState) {
    super(request, key, ctx, initial, isReliable(flow.protocol));
    this.flow = flow;
    this.responseDestination = responseDestination(request.topVia, flow);
    this.lastResponse = undefined;
    this.lastBytes = undefined;
    this.requestBytes = wireSize(request);
    this.setHeld(this.requestBytes);
  }

  /**
   * Sends a response from the TU and drives the machine; responses the RFC says to discard are dropped
   * with a debug line. Throws TransactionError (TRANSACTION_ERR_TERMINATED) on a terminated transaction
   * and TypeError on a status outside 100–699.
   */
  respond(response: SipResponse): void {
    this.assertAlive('respond()');
    const status = response.status;
    if (!(status >= 100 && status <= 699)) throw new TypeError(`not a response status: ${status}`);
    this.passResponse(response);
  }

  /**
   * @internal The layer matched a retransmission of the request. §17.2.1 and §17.2.2: in Proceeding the
   * most recent provisional response, in Completed the final response, is passed to the transport again;
   * in any other state (Trying, Confirmed, Accepted) the retransmission is absorbed.
   */
  receiveRetransmission(): void {
    if (this.isIn(TransactionState.Proceeding) || this.isIn(TransactionState.Completed)) this.resendLastResponse();
  }

  /** The machine's rules for a response the TU passes (§17.2.1, §17.2.2), once it is known to be one. */
  protected abstract passResponse(response: SipResponse): void;

  /** Passes a response of the TU to the transport and keeps it for retransmissions. */
  protected send(response: SipResponse): void {
    this.lastResponse = response;
    this.lastBytes = serializeMessage(response);
    this.setHeld(this.requestBytes + this.lastBytes.length);
    this.ctx.counters?.responseSent(this.request.method, response.status);
    this.transmit(this.lastBytes, this.responseDestination);
  }

  /**
   * Timer G, the only timer a server transaction retransmits on (§17.2.1; a non-INVITE server transaction
   * sends only when a request arrives, §17.2.2): "timer G is reset with a value that doubles, unless that
   * value exceeds T2, in which case it is reset with the value of T2."
   */
  protected retransmit(previous: number): number {
    this.resendLastResponse();
    return nextTimerG(previous, this.ctx.config);
  }

  /** A server transaction's TU is the core, which listens to `timeout` and `transportError`. */
  protected tellUser(): void {}

  /** The final response is out: keep only what the rest of the transaction needs (see `compactRequest`). */
  protected compact(): void {
    this.requestBytes = this.compactRequest();
    if (this.lastBytes !== undefined && this.lastResponse !== undefined) this.lastResponse = this.detachedResponse(this.lastResponse);
    this.setHeld(this.requestBytes + (this.lastBytes?.length ?? 0));
  }

  protected discard(response: SipResponse): void {
    const log = this.ctx.logger;
    if (log.isLevelEnabled('debug')) {
      log.debug({ tx: this.key, kind: this.kind, state: this.state, status: response.status }, 'response discarded by the server transaction');
    }
  }

  private resendLastResponse(): void {
    if (this.lastBytes !== undefined) this.transmit(this.lastBytes, this.responseDestination);
  }
}
