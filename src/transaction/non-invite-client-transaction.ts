import { type SipRequest, type SipResponse, serializeMessage } from '../sip/index.js';
import { type Destination, type Flow, isReliable } from '../transport/types.js';
import { type TimerHandle, type TimerName, nextTimerE, timerE, timerF, timerK } from './timers.js';
import { Transaction } from './transaction.js';
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
export class NonInviteClientTransaction extends Transaction {
  readonly destination: Destination;
  readonly user: ClientTransactionUser;
  /** The most recent response passed to the TU. */
  lastResponse: SipResponse | undefined;
  private readonly reliable: boolean;
  private readonly bytes: Buffer;
  private sendTo: Destination;
  private sentFlow: Flow | undefined;
  private timerE: TimerHandle | undefined;
  private intervalE: number;
  private timerF: TimerHandle | undefined;
  private timerK: TimerHandle | undefined;

  /** @internal The layer creates transactions; see `TransactionLayer.sendRequest`. */
  constructor(request: SipRequest, key: string, destination: Destination, user: ClientTransactionUser, ctx: TransactionContext) {
    super(request, key, ctx, TransactionState.Trying);
    this.destination = destination;
    this.user = user;
    this.lastResponse = undefined;
    this.reliable = isReliable(destination.protocol);
    this.bytes = serializeMessage(request);
    this.sendTo = destination;
    this.sentFlow = undefined;
    this.timerE = undefined;
    this.intervalE = 0;
    this.timerF = undefined;
    this.timerK = undefined;
  }

  get kind(): 'non-invite-client' {
    return 'non-invite-client';
  }

  protected get transitions(): TransitionTable {
    return TRANSITIONS;
  }

  /** The flow the request went out on, once the transport has sent it. */
  get flow(): Flow | undefined {
    return this.sentFlow;
  }

  /**
   * §17.1.2.2: "The 'Trying' state is entered when the TU initiates a new client transaction with a
   * request. When entering this state, the client transaction SHOULD set timer F to fire in 64*T1
   * seconds. The request MUST be passed to the transport layer for transmission. If an unreliable
   * transport is in use, the client transaction MUST set timer E to fire in T1 seconds."
   * @internal called once by the layer after the transaction is in its table.
   */
  start(): void {
    this.transmit(this.bytes, this.sendTo);
    if (!this.reliable) {
      this.intervalE = timerE(this.ctx.config);
      this.timerE = this.setTimer('E', this.intervalE);
    }
    this.timerF = this.setTimer('F', timerF(this.ctx.config));
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
    // reliable transports."
    this.clearTimers();
    this.transition(S.Completed);
    this.deliver(response);
    if (!this.isIn(S.Completed)) return;
    const k = timerK(this.ctx.config, this.reliable);
    if (k === 0) this.terminate();
    else this.timerK = this.setTimer('K', k);
  }

  protected onTimer(name: TimerName): void {
    switch (name) {
      case 'E':
        // §17.1.2.2: "If timer E fires while still in this state, the timer is reset, but this time with
        // a value of MIN(2*T1, T2) ... If Timer E fires while in the Proceeding state, the request MUST
        // be passed to the transport layer for retransmission, and Timer E MUST be reset with a value of
        // T2 seconds."
        this.timerE = undefined;
        if (this.state !== S.Trying && this.state !== S.Proceeding) return;
        this.transmit(this.bytes, this.sendTo);
        this.intervalE = nextTimerE(this.intervalE, this.ctx.config, this.state === S.Proceeding);
        this.timerE = this.setTimer('E', this.intervalE);
        return;
      case 'F':
        // §17.1.2.2: "If Timer F fires while the client transaction is still in the 'Trying' [or
        // 'Proceeding'] state, the client transaction SHOULD inform the TU about the timeout, and then
        // it SHOULD enter the 'Terminated' state."
        this.timerF = undefined;
        if (this.state !== S.Trying && this.state !== S.Proceeding) return;
        this.clearTimers();
        this.emit('timeout');
        try {
          this.user.onTimeout?.(this);
        } catch (err) {
          this.ctx.logger.error({ err, tx: this.key }, 'TU onTimeout threw');
        }
        this.terminate();
        return;
      case 'K':
        // §17.1.2.2: "If Timer K fires while in this state, the client transaction MUST transition to
        // the 'Terminated' state."
        this.timerK = undefined;
        this.terminate();
        return;
      default:
        return;
    }
  }

  protected clearTimers(): void {
    this.timerE = this.cancelTimer(this.timerE);
    this.timerF = this.cancelTimer(this.timerF);
    this.timerK = this.cancelTimer(this.timerK);
  }

  protected override sentCallback(): (flow: Flow) => void {
    return this.onSent;
  }

  /** §17.1.4: inform the TU of the transport failure and go straight to Terminated. */
  protected transportFailed(error: Error): void {
    this.clearTimers();
    this.emit('transportError', error);
    try {
      this.user.onTransportError?.(this, error);
    } catch (err) {
      this.ctx.logger.error({ err, tx: this.key }, 'TU onTransportError threw');
    }
    this.terminate();
  }

  private readonly onSent = (flow: Flow): void => {
    if (this.sentFlow !== undefined) return;
    this.sentFlow = flow;
    // Retransmissions follow the first transmission's flow (same local socket or connection).
    if (this.sendTo.flowId === undefined) this.sendTo = { ...this.sendTo, flowId: flow.id };
  };

  private deliver(response: SipResponse): void {
    this.lastResponse = response;
    try {
      this.user.onResponse(response, this);
    } catch (err) {
      this.ctx.logger.error({ err, tx: this.key }, 'TU onResponse threw');
    }
  }
}
