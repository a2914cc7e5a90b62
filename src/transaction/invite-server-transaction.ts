import { type SipRequest, type SipResponse, serializeMessage } from '../sip/index.js';
import { type Destination, type Flow, isReliable } from '../transport/types.js';
import { responseDestination } from './response-destination.js';
import { type TimerHandle, type TimerName, nextTimerG, timerG, timerH, timerI, timerL } from './timers.js';
import { Transaction, wireSize } from './transaction.js';
import { TransactionState, type TransitionTable } from './transaction-state.js';
import type { TransactionContext } from './types.js';

const S = TransactionState;

/** RFC 3261 Figure 7 with RFC 6026 Figure 5 (Accepted). */
const TRANSITIONS: TransitionTable = {
  [S.Proceeding]: [S.Completed, S.Accepted, S.Terminated],
  [S.Completed]: [S.Confirmed, S.Terminated],
  [S.Confirmed]: [S.Terminated],
  [S.Accepted]: [S.Terminated],
};

/**
 * The INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §8.5–8.7). Provisional responses from the
 * TU are sent and re-sent on retransmitted INVITEs; a non-2xx final is retransmitted on Timer G over UDP
 * until the ACK arrives (Completed → Confirmed, absorbed for Timer I) or Timer H gives up; a 2xx moves it
 * to Accepted for Timer L, where retransmitted INVITEs are absorbed, further 2xx from the TU are sent and
 * ACKs go to the TU. Created by `TransactionLayer.receiveRequest`.
 */
export class InviteServerTransaction extends Transaction {
  /** The flow the INVITE arrived on. */
  readonly flow: Flow;
  /** Where responses go (§18.2.2, RFC 3581), computed once. */
  readonly responseDestination: Destination;
  /** Set by the layer when a CANCEL matched this transaction (§9.2), whatever the state then was. */
  cancelled: boolean;
  /** The most recent response sent. */
  lastResponse: SipResponse | undefined;
  private lastBytes: Buffer | undefined;
  /** Size of the request as held (see `heldBytes`). */
  private requestBytes: number;
  private readonly reliable: boolean;
  private timerG: TimerHandle | undefined;
  private intervalG: number;
  private timerH: TimerHandle | undefined;
  private timerI: TimerHandle | undefined;
  private timerL: TimerHandle | undefined;

  /** @internal The layer creates transactions; see `TransactionLayer.receiveRequest`. */
  constructor(request: SipRequest, key: string, flow: Flow, ctx: TransactionContext) {
    // §17.2.1: "When a server transaction is constructed for a request, it enters the 'Proceeding' state."
    super(request, key, ctx, TransactionState.Proceeding);
    this.flow = flow;
    this.responseDestination = responseDestination(request.topVia, flow);
    this.cancelled = false;
    this.lastResponse = undefined;
    this.lastBytes = undefined;
    this.requestBytes = wireSize(request);
    this.reliable = isReliable(flow.protocol);
    this.timerG = undefined;
    this.intervalG = 0;
    this.timerH = undefined;
    this.timerI = undefined;
    this.timerL = undefined;
    this.setHeld(this.requestBytes);
  }

  get kind(): 'invite-server' {
    return 'invite-server';
  }

  protected get transitions(): TransitionTable {
    return TRANSITIONS;
  }

  /**
   * Sends a response from the TU and drives the machine. Responses the RFC says to discard (a 100 or any
   * other response after a final one, a non-2xx in Accepted) are dropped with a debug line. Throws
   * TransactionError (TRANSACTION_ERR_TERMINATED) on a terminated transaction and TypeError on a status
   * outside 100–699.
   */
  respond(response: SipResponse): void {
    this.assertAlive('respond()');
    const status = response.status;
    if (!(status >= 100 && status <= 699)) throw new TypeError(`not a response status: ${status}`);
    switch (this.state) {
      case S.Proceeding:
        if (status < 200) {
          // §17.2.1: "The TU passes any number of provisional responses to the server transaction. So
          // long as the server transaction is in the 'Proceeding' state, each of these MUST be passed to
          // the transport layer for transmission."
          this.send(response);
        } else if (status < 300) {
          // RFC 6026 §8.5: "If, while in the 'Proceeding' state, the TU passes a 2xx response to the
          // server transaction, the server transaction MUST pass this response to the transport layer
          // for transmission ... The server transaction MUST then transition to the 'Accepted' state."
          this.transition(S.Accepted);
          this.send(response);
          if (!this.isIn(S.Accepted)) return;
          this.timerL = this.setTimer('L', timerL(this.ctx.config));
          this.compact();
        } else {
          // §17.2.1: "While in the 'Proceeding' state, if the TU passes a response with status code
          // from 300 to 699 to the server transaction, the response MUST be passed to the transport layer
          // for transmission, and the state machine MUST enter the 'Completed' state. For unreliable
          // transports, timer G is set to fire in T1 seconds, and is not set to fire for reliable
          // transports." and "timer H MUST be set to fire in 64*T1 seconds for all transports."
          this.transition(S.Completed);
          this.send(response);
          if (!this.isIn(S.Completed)) return;
          if (!this.reliable) {
            this.intervalG = timerG(this.ctx.config);
            this.timerG = this.setTimer('G', this.intervalG);
          }
          this.timerH = this.setTimer('H', timerH(this.ctx.config));
          this.compact();
        }
        return;
      case S.Accepted:
        // RFC 6026 §8.7: "Any retransmission of the 2xx response passed from the TU to the transaction
        // while in the 'Accepted' state MUST be passed to the transport layer for transmission." (a proxy
        // forwarding the 2xx retransmissions of the UAS, or 2xx from other forks).
        if (status >= 200 && status < 300) this.send(response);
        else this.discard(response);
        return;
      default:
        this.discard(response);
        return;
    }
  }

  /**
   * @internal The layer matched a retransmission of the INVITE.
   * §17.2.1: "If a request retransmission is received while in the 'Proceeding' state, the most recent
   * provisional response that was received from the TU MUST be passed to the transport layer for
   * retransmission." and "while in the 'Completed' state, if a request retransmission is received, the
   * server SHOULD pass the response to the transport for retransmission." RFC 6026 §8.7: in Accepted,
   * retransmitted INVITEs are absorbed. In Confirmed there is nothing to do.
   */
  receiveRetransmission(): void {
    if ((this.state === S.Proceeding || this.state === S.Completed) && this.lastBytes !== undefined) {
      this.transmit(this.lastBytes, this.responseDestination);
    }
  }

  /**
   * @internal The layer matched an ACK to this transaction while it is Completed or Confirmed.
   * §17.2.1: "If an ACK is received while the server transaction is in the 'Completed' state, the server
   * transaction MUST transition to the 'Confirmed' state. As Timer G is ignored in this state, any
   * retransmissions of the response will cease." and "When this state is entered, timer I is set to fire
   * in T4 seconds for unreliable transports, and zero seconds for reliable transports." ACKs in Confirmed
   * are absorbed.
   */
  receiveAck(): void {
    if (this.state !== S.Completed) return;
    this.timerG = this.cancelTimer(this.timerG);
    this.timerH = this.cancelTimer(this.timerH);
    this.transition(S.Confirmed);
    const i = timerI(this.ctx.config, this.reliable);
    if (i === 0) this.terminate();
    else this.timerI = this.setTimer('I', i);
  }

  protected onTimer(name: TimerName): void {
    switch (name) {
      case 'G':
        // §17.2.1: "If timer G fires, the response is passed to the transport layer once more for
        // retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds."
        this.timerG = undefined;
        if (this.state !== S.Completed || this.lastBytes === undefined) return;
        this.transmit(this.lastBytes, this.responseDestination);
        this.intervalG = nextTimerG(this.intervalG, this.ctx.config);
        this.timerG = this.setTimer('G', this.intervalG);
        return;
      case 'H':
        // §17.2.1: "If timer H fires while in the 'Completed' state, it implies that the ACK was never
        // received. In this case, the server transaction MUST transition to the 'Terminated' state, and
        // MUST indicate to the TU that a transaction failure has occurred."
        this.timerH = undefined;
        if (this.state !== S.Completed) return;
        this.clearTimers();
        this.emit('timeout');
        this.terminate();
        return;
      case 'I':
        // §17.2.1: "Once timer I fires, the server MUST transition to the 'Terminated' state."
        this.timerI = undefined;
        this.terminate();
        return;
      case 'L':
        // RFC 6026 §8.7: "If Timer L fires while the INVITE server transaction is in the 'Accepted'
        // state, the transaction MUST transition to the 'Terminated' state."
        this.timerL = undefined;
        this.terminate();
        return;
      default:
        return;
    }
  }

  protected clearTimers(): void {
    this.timerG = this.cancelTimer(this.timerG);
    this.timerH = this.cancelTimer(this.timerH);
    this.timerI = this.cancelTimer(this.timerI);
    this.timerL = this.cancelTimer(this.timerL);
  }

  /**
   * §17.2.4: when the transport (having tried the fallback address of §18.2.2) cannot deliver a
   * response, the TU is told through `transportError` and the transaction terminates.
   */
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

  private discard(response: SipResponse): void {
    const log = this.ctx.logger;
    if (log.isLevelEnabled('debug')) {
      log.debug({ tx: this.key, state: this.state, status: response.status }, 'response discarded by the INVITE server transaction');
    }
  }
}
