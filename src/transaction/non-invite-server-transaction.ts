import { type SipRequest, type SipResponse, serializeMessage } from '../sip/index.js';
import { type Destination, type Flow, isReliable } from '../transport/types.js';
import { responseDestination } from './response-destination.js';
import { type TimerHandle, type TimerName, timerJ } from './timers.js';
import { Transaction, wireSize } from './transaction.js';
import { TransactionState, type TransitionTable } from './transaction-state.js';
import type { TransactionContext } from './types.js';

const S = TransactionState;

/** RFC 3261 Figure 8. */
const TRANSITIONS: TransitionTable = {
  [S.Trying]: [S.Proceeding, S.Completed, S.Terminated],
  [S.Proceeding]: [S.Completed, S.Terminated],
  [S.Completed]: [S.Terminated],
};

/**
 * The non-INVITE server transaction (RFC 3261 §17.2.2): sends the TU's responses, answers retransmitted
 * requests with the last response, and after the final response waits in Completed for Timer J.
 * Created by `TransactionLayer.receiveRequest` (CANCEL included).
 */
export class NonInviteServerTransaction extends Transaction {
  /** The flow the request arrived on. */
  readonly flow: Flow;
  /** Where responses go (§18.2.2, RFC 3581), computed once. */
  readonly responseDestination: Destination;
  /** The most recent response sent. */
  lastResponse: SipResponse | undefined;
  private lastBytes: Buffer | undefined;
  /** Size of the request as held (see `heldBytes`). */
  private requestBytes: number;
  private readonly reliable: boolean;
  private timerJ: TimerHandle | undefined;

  /** @internal The layer creates transactions; see `TransactionLayer.receiveRequest`. */
  constructor(request: SipRequest, key: string, flow: Flow, ctx: TransactionContext) {
    // §17.2.2: "The state machine is initialized in the 'Trying' state".
    super(request, key, ctx, TransactionState.Trying);
    this.flow = flow;
    this.responseDestination = responseDestination(request.topVia, flow);
    this.lastResponse = undefined;
    this.lastBytes = undefined;
    this.requestBytes = wireSize(request);
    this.reliable = isReliable(flow.protocol);
    this.timerJ = undefined;
    this.setHeld(this.requestBytes);
  }

  get kind(): 'non-invite-server' {
    return 'non-invite-server';
  }

  protected get transitions(): TransitionTable {
    return TRANSITIONS;
  }

  /**
   * Sends a response from the TU and drives the machine; after the final response any other is
   * discarded (§17.2.2). Throws TransactionError (TRANSACTION_ERR_TERMINATED) on a terminated
   * transaction and TypeError on a status outside 100–699.
   */
  respond(response: SipResponse): void {
    this.assertAlive('respond()');
    const status = response.status;
    if (!(status >= 100 && status <= 699)) throw new TypeError(`not a response status: ${status}`);
    const state = this.state;
    if (state !== S.Trying && state !== S.Proceeding) {
      // §17.2.2: "Any other final responses passed by the TU to the server transaction MUST be
      // discarded while in the 'Completed' state."
      const log = this.ctx.logger;
      if (log.isLevelEnabled('debug')) log.debug({ tx: this.key, state, status }, 'response discarded by the server transaction');
      return;
    }
    if (status < 200) {
      // §17.2.2: "While in the 'Trying' state, if the TU passes a provisional response to the server
      // transaction, the server transaction MUST enter the 'Proceeding' state. The response MUST be passed
      // to the transport layer for transmission. Any further provisional responses that are received from
      // the TU while in the 'Proceeding' state MUST be passed to the transport layer for transmission."
      if (state === S.Trying) this.transition(S.Proceeding);
      this.send(response);
      return;
    }
    // §17.2.2: "If the TU passes a final response (status codes 200-699) to the server while in the
    // 'Proceeding' [or 'Trying'] state, the transaction MUST enter the 'Completed' state, and the
    // response MUST be passed to the transport layer for transmission." and "When the server transaction
    // enters the 'Completed' state, it MUST set Timer J to fire in 64*T1 seconds for unreliable
    // transports, and zero seconds for reliable transports."
    this.transition(S.Completed);
    this.send(response);
    if (!this.isIn(S.Completed)) return;
    const j = timerJ(this.ctx.config, this.reliable);
    if (j === 0) {
      this.terminate();
      return;
    }
    this.timerJ = this.setTimer('J', j);
    this.compact();
  }

  /**
   * @internal The layer matched a retransmission of the request.
   * §17.2.2: "Once in the 'Trying' state, any further request retransmissions are discarded." "If a
   * retransmission of the request is received while in the 'Proceeding' state, the most recently sent
   * provisional response MUST be passed to the transport layer for retransmission." "While in the
   * 'Completed' state, the server transaction MUST pass the final response to the transport layer for
   * retransmission whenever a retransmission of the request is received."
   */
  receiveRetransmission(): void {
    if ((this.state === S.Proceeding || this.state === S.Completed) && this.lastBytes !== undefined) {
      this.transmit(this.lastBytes, this.responseDestination);
    }
  }

  protected onTimer(name: TimerName): void {
    // §17.2.2: "The server transaction remains in this state until Timer J fires, at which point it MUST
    // transition to the 'Terminated' state."
    if (name === 'J') {
      this.timerJ = undefined;
      this.terminate();
    }
  }

  protected clearTimers(): void {
    this.timerJ = this.cancelTimer(this.timerJ);
  }

  /** §17.2.4: the response could not be delivered; `transportError`, then Terminated. */
  protected transportFailed(error: Error): void {
    this.clearTimers();
    this.emit('transportError', error);
    this.terminate();
  }

  private send(response: SipResponse): void {
    this.lastResponse = response;
    this.lastBytes = serializeMessage(response);
    this.setHeld(this.requestBytes + this.lastBytes.length);
    this.transmit(this.lastBytes, this.responseDestination);
  }

  /** The final response is out: keep only what the rest of the transaction needs (see `compactRequest`). */
  private compact(): void {
    this.requestBytes = this.compactRequest();
    if (this.lastBytes !== undefined && this.lastResponse !== undefined) this.lastResponse = this.detachedResponse(this.lastResponse);
    this.setHeld(this.requestBytes + (this.lastBytes?.length ?? 0));
  }
}
