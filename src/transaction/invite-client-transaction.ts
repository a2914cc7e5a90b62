import { type SipRequest, type SipResponse, serializeMessage } from '../sip/index.js';
import type { Destination } from '../transport/types.js';
import { ClientTransactionBase } from './client-transaction.js';
import { createAckForNon2xx } from './requests.js';
import { nextTimerA, timerA, timerB, timerD, timerM } from './timers.js';
import { TransactionState, type TransitionTable } from './transaction-state.js';
import type { ClientTransactionUser, TransactionContext } from './types.js';

const S = TransactionState;

/** RFC 3261 Figure 5 with RFC 6026 Figure 3 (Accepted). */
const TRANSITIONS: TransitionTable = {
  [S.Calling]: [S.Proceeding, S.Completed, S.Accepted, S.Terminated],
  [S.Proceeding]: [S.Completed, S.Accepted, S.Terminated],
  [S.Completed]: [S.Terminated],
  [S.Accepted]: [S.Terminated],
};

/**
 * The INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §8.4): retransmits the INVITE on Timer A
 * over UDP, gives up on Timer B, ACKs non-2xx final responses itself and waits in Completed (Timer D)
 * to ACK their retransmissions, and after a 2xx waits in Accepted (Timer M) passing every 2xx to the TU.
 * Created and started by `TransactionLayer.sendRequest`.
 */
export class InviteClientTransaction extends ClientTransactionBase {
  private ackBytes: Buffer | undefined;

  /** @internal The layer creates transactions; see `TransactionLayer.sendRequest`. */
  constructor(request: SipRequest, key: string, destination: Destination, user: ClientTransactionUser, ctx: TransactionContext) {
    super(request, key, destination, user, ctx, TransactionState.Calling);
    this.ackBytes = undefined;
  }

  get kind(): 'invite-client' {
    return 'invite-client';
  }

  protected get transitions(): TransitionTable {
    return TRANSITIONS;
  }

  /**
   * §17.1.1.2: "The initial state, 'calling', MUST be entered when the TU initiates a new client
   * transaction with an INVITE request. The client transaction MUST pass the request to the transport
   * layer for transmission". Timer A only for unreliable transports; Timer B for any: "If the client
   * transaction is still in the 'Calling' state when timer B fires, the client transaction SHOULD inform
   * the TU that a timeout has occurred."
   * @internal called once by the layer after the transaction is in its table.
   */
  start(): void {
    this.transmitRequest();
    this.startRetransmissions('A', timerA(this.ctx.config));
    this.startTimeout('B', timerB(this.ctx.config));
  }

  /** @internal A response the layer matched to this transaction (§17.1.3). */
  receiveResponse(response: SipResponse): void {
    const status = response.status;
    switch (this.state) {
      case S.Calling:
      case S.Proceeding:
        if (status < 200) {
          // §17.1.1.2: "If the client transaction receives a provisional response while in the 'Calling'
          // state, it transitions to the 'Proceeding' state. In the 'Proceeding' state, the client
          // transaction SHOULD NOT retransmit the request any longer." Timer B guards Calling only.
          if (this.state === S.Calling) {
            this.clearTimers();
            this.transition(S.Proceeding);
          }
          this.deliver(response);
        } else if (status < 300) {
          // RFC 6026 §8.4: "If a 2xx response is received while the client INVITE state machine is in
          // the 'Calling' or 'Proceeding' states, it MUST transition to the 'Accepted' state, pass the
          // 2xx response to the TU, and set Timer M to 64*T1."
          this.clearTimers();
          this.transition(S.Accepted);
          this.deliver(response);
          if (this.isIn(S.Accepted)) this.absorbRetransmissionsFor('M', timerM(this.ctx.config));
        } else {
          // §17.1.1.2: "When in either the 'Calling' or 'Proceeding' states, reception of a response
          // with status code from 300-699 MUST cause the client transaction to transition to
          // 'Completed'. The client transaction MUST pass the received response up to the TU, and the
          // client transaction MUST generate an ACK request".
          this.clearTimers();
          this.transition(S.Completed);
          this.ackBytes = serializeMessage(createAckForNon2xx(this.request, response));
          this.sendOnRequestPath(this.ackBytes);
          this.deliver(response);
          if (this.isIn(S.Completed)) this.absorbRetransmissionsFor('D', timerD(this.ctx.config, this.reliable));
        }
        return;
      case S.Accepted:
        // RFC 6026 §8.4: "any 2xx responses received while in the 'Accepted' state MUST be passed up to
        // the TU" — each is a separate dialog's 2xx or a retransmission the TU must ACK.
        if (status >= 200 && status < 300) this.deliver(response);
        return;
      case S.Completed:
        // §17.1.1.2: "Any retransmissions of the final response that are received while in the
        // 'Completed' state MUST cause the ACK to be re-passed to the transport layer for
        // retransmission, but the newly received response MUST NOT be passed up to the TU."
        if (status >= 300 && this.ackBytes !== undefined) this.sendOnRequestPath(this.ackBytes);
        return;
      default:
        return;
    }
  }

  /**
   * §17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request by passing it to the
   * transport layer, and MUST reset the timer with a value of 2*T1."
   */
  protected nextRetransmissionInterval(previous: number): number {
    return nextTimerA(previous);
  }
}
