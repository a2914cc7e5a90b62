import type { SipRequest, SipResponse } from '../sip/index.js';
import type { Flow } from '../transport/types.js';
import { ServerTransactionBase } from './server-transaction.js';
import { timerG, timerH, timerI, timerL } from './timers.js';
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
export class InviteServerTransaction extends ServerTransactionBase {
  /** Set by the layer when a CANCEL matched this transaction (§9.2), whatever the state then was. */
  cancelled: boolean;

  /** @internal The layer creates transactions; see `TransactionLayer.receiveRequest`. */
  constructor(request: SipRequest, key: string, flow: Flow, ctx: TransactionContext) {
    // §17.2.1: "When a server transaction is constructed for a request, it enters the 'Proceeding' state."
    super(request, key, flow, ctx, TransactionState.Proceeding);
    this.cancelled = false;
  }

  get kind(): 'invite-server' {
    return 'invite-server';
  }

  protected get transitions(): TransitionTable {
    return TRANSITIONS;
  }

  /** Discarded: a 100 or any other response after a final one, a non-2xx in Accepted. */
  protected passResponse(response: SipResponse): void {
    const status = response.status;
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
          // RFC 6026 §8.7: "If Timer L fires while the INVITE server transaction is in the 'Accepted'
          // state, the transaction MUST transition to the 'Terminated' state."
          this.transition(S.Accepted);
          this.send(response);
          if (!this.isIn(S.Accepted)) return;
          this.absorbRetransmissionsFor('L', timerL(this.ctx.config));
          this.compact();
        } else {
          // §17.2.1: "While in the 'Proceeding' state, if the TU passes a response with status code
          // from 300 to 699 to the server transaction, the response MUST be passed to the transport layer
          // for transmission, and the state machine MUST enter the 'Completed' state. For unreliable
          // transports, timer G is set to fire in T1 seconds, and is not set to fire for reliable
          // transports." and "timer H MUST be set to fire in 64*T1 seconds for all transports." "If timer H
          // fires while in the 'Completed' state, it implies that the ACK was never received. In this
          // case, the server transaction MUST transition to the 'Terminated' state, and MUST indicate to
          // the TU that a transaction failure has occurred."
          this.transition(S.Completed);
          this.send(response);
          if (!this.isIn(S.Completed)) return;
          this.startRetransmissions('G', timerG(this.ctx.config));
          this.startTimeout('H', timerH(this.ctx.config));
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
   * @internal The layer matched an ACK to this transaction while it is Completed or Confirmed.
   * §17.2.1: "If an ACK is received while the server transaction is in the 'Completed' state, the server
   * transaction MUST transition to the 'Confirmed' state. As Timer G is ignored in this state, any
   * retransmissions of the response will cease." and "When this state is entered, timer I is set to fire
   * in T4 seconds for unreliable transports, and zero seconds for reliable transports." ACKs in Confirmed
   * are absorbed. "Once timer I fires, the server MUST transition to the 'Terminated' state."
   */
  receiveAck(): void {
    if (this.state !== S.Completed) return;
    this.clearTimers();
    this.transition(S.Confirmed);
    this.absorbRetransmissionsFor('I', timerI(this.ctx.config, this.reliable));
  }
}
