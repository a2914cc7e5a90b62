import type { SipRequest, SipResponse } from '../sip/index.js';
import type { Destination } from '../transport/types.js';
import { ClientTransactionBase } from './client-transaction.js';
import { nextTimerE, timerE, timerF, timerK } from './timers.js';
import { TransactionState, type TransitionTable } from './transaction-state.js';
import type { ClientTransactionUser, TransactionContext } from './types.js';

const S = TransactionState;

/** RFC 3261 Figure 6. */
const TRANSITIONS: TransitionTable = {
  [S.Trying]: [S.Proceeding, S.Completed, S.Terminated],
  [S.Proceeding]: [S.Completed, S.Terminated],
  [S.Completed]: [S.Terminated],
};

/**
 * The non-INVITE client transaction (RFC 3261 §17.1.2): retransmits on Timer E over UDP (doubling up to
 * T2, then T2 once a provisional arrived), gives up on Timer F, and after the final response waits in
 * Completed for Timer K to absorb its retransmissions. Created and started by `TransactionLayer.sendRequest`.
 */
export class NonInviteClientTransaction extends ClientTransactionBase {
  /** @internal The layer creates transactions; see `TransactionLayer.sendRequest`. */
  constructor(request: SipRequest, key: string, destination: Destination, user: ClientTransactionUser, ctx: TransactionContext) {
    super(request, key, destination, user, ctx, TransactionState.Trying);
  }

  get kind(): 'non-invite-client' {
    return 'non-invite-client';
  }

  protected get transitions(): TransitionTable {
    return TRANSITIONS;
  }

  /**
   * §17.1.2.2: "The 'Trying' state is entered when the TU initiates a new client transaction with a
   * request. When entering this state, the client transaction SHOULD set timer F to fire in 64*T1
   * seconds. The request MUST be passed to the transport layer for transmission. If an unreliable
   * transport is in use, the client transaction MUST set timer E to fire in T1 seconds." and "If Timer F
   * fires while the client transaction is still in the 'Trying' [or 'Proceeding'] state, the client
   * transaction SHOULD inform the TU about the timeout, and then it SHOULD enter the 'Terminated' state."
   * @internal called once by the layer after the transaction is in its table.
   */
  start(): void {
    this.transmitRequest();
    this.startRetransmissions('E', timerE(this.ctx.config));
    this.startTimeout('F', timerF(this.ctx.config));
  }

  /** @internal A response the layer matched to this transaction (§17.1.3). */
  receiveResponse(response: SipResponse): void {
    const state = this.state;
    if (state !== S.Trying && state !== S.Proceeding) {
      // §17.1.2.2: "The 'Completed' state exists to buffer any additional response retransmissions
      // that may be received (which is why the client transaction remains there only for unreliable
      // transports)."
      return;
    }
    if (response.status < 200) {
      // §17.1.2.2: "If a provisional response is received while in the 'Trying' state, the response
      // MUST be passed to the TU, and then the client transaction SHOULD move to the 'Proceeding'
      // state." Timers E and F keep running.
      if (state === S.Trying) this.transition(S.Proceeding);
      this.deliver(response);
      return;
    }
    // §17.1.2.2: "If a final response (status codes 200-699) is received while in the 'Trying' [or
    // 'Proceeding'] state, the response MUST be passed to the TU, and the client transaction MUST
    // transition to the 'Completed' state." and "Once the client transaction enters the 'Completed'
    // state, it MUST set Timer K to fire in T4 seconds for unreliable transports, and zero seconds for
    // reliable transports." and "If Timer K fires while in this state, the client transaction MUST
    // transition to the 'Terminated' state."
    this.clearTimers();
    this.transition(S.Completed);
    this.deliver(response);
    if (this.isIn(S.Completed)) this.absorbRetransmissionsFor('K', timerK(this.ctx.config, this.reliable));
  }

  /**
   * §17.1.2.2: "If timer E fires while still in this state [Trying], the timer is reset, but this time with
   * a value of MIN(2*T1, T2) ... If Timer E fires while in the Proceeding state, the request MUST be passed
   * to the transport layer for retransmission, and Timer E MUST be reset with a value of T2 seconds."
   */
  protected nextRetransmissionInterval(previous: number): number {
    return nextTimerE(previous, this.ctx.config, this.isIn(S.Proceeding));
  }
}
