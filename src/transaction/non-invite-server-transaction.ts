import type { SipRequest, SipResponse } from '../sip/index.js';
import type { Flow } from '../transport/types.js';
import { ServerTransactionBase } from './server-transaction.js';
import { timerJ } from './timers.js';
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
export class NonInviteServerTransaction extends ServerTransactionBase {
  /** @internal The layer creates transactions; see `TransactionLayer.receiveRequest`. */
  constructor(request: SipRequest, key: string, flow: Flow, ctx: TransactionContext) {
    // §17.2.2: "The state machine is initialized in the 'Trying' state".
    super(request, key, flow, ctx, TransactionState.Trying);
  }

  get kind(): 'non-invite-server' {
    return 'non-invite-server';
  }

  protected get transitions(): TransitionTable {
    return TRANSITIONS;
  }

  /** After the final response any other is discarded (§17.2.2). */
  protected passResponse(response: SipResponse): void {
    const state = this.state;
    if (state !== S.Trying && state !== S.Proceeding) {
      // §17.2.2: "Any other final responses passed by the TU to the server transaction MUST be
      // discarded while in the 'Completed' state."
      this.discard(response);
      return;
    }
    if (response.status < 200) {
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
    // transports, and zero seconds for reliable transports." "The server transaction remains in this
    // state until Timer J fires, at which point it MUST transition to the 'Terminated' state."
    this.transition(S.Completed);
    this.send(response);
    if (!this.isIn(S.Completed)) return;
    this.absorbRetransmissionsFor('J', timerJ(this.ctx.config, this.reliable));
    if (this.isIn(S.Completed)) this.compact();
  }
}
