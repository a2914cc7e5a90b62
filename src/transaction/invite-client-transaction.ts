import { type SipRequest, type SipResponse, serializeMessage } from '../sip/index.js';
import { type Destination, type Flow, isReliable } from '../transport/types.js';
import { createAckForNon2xx } from './requests.js';
import { type TimerHandle, type TimerName, nextTimerA, timerA, timerB, timerD, timerM } from './timers.js';
import { Transaction } from './transaction.js';
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
export class InviteClientTransaction extends Transaction {
  readonly destination: Destination;
  readonly user: ClientTransactionUser;
  /** The most recent response passed to the TU. */
  lastResponse: SipResponse | undefined;
  private readonly reliable: boolean;
  private readonly bytes: Buffer;
  /** The destination, with the flow the INVITE left on once known, so the ACK takes the same path. */
  private sendTo: Destination;
  private sentFlow: Flow | undefined;
  private ackBytes: Buffer | undefined;
  private timerA: TimerHandle | undefined;
  private intervalA: number;
  private timerB: TimerHandle | undefined;
  private timerD: TimerHandle | undefined;
  private timerM: TimerHandle | undefined;

  /** @internal The layer creates transactions; see `TransactionLayer.sendRequest`. */
  constructor(request: SipRequest, key: string, destination: Destination, user: ClientTransactionUser, ctx: TransactionContext) {
    super(request, key, ctx, TransactionState.Calling);
    this.destination = destination;
    this.user = user;
    this.lastResponse = undefined;
    this.reliable = isReliable(destination.protocol);
    this.bytes = serializeMessage(request);
    this.sendTo = destination;
    this.sentFlow = undefined;
    this.ackBytes = undefined;
    this.timerA = undefined;
    this.intervalA = 0;
    this.timerB = undefined;
    this.timerD = undefined;
    this.timerM = undefined;
  }

  get kind(): 'invite-client' {
    return 'invite-client';
  }

  protected get transitions(): TransitionTable {
    return TRANSITIONS;
  }

  /** The flow the INVITE went out on, once the transport has sent it. */
  get flow(): Flow | undefined {
    return this.sentFlow;
  }

  /**
   * §17.1.1.2: "The initial state, 'calling', MUST be entered when the TU initiates a new client
   * transaction with an INVITE request. The client transaction MUST pass the request to the transport
   * layer for transmission". Timer A only for unreliable transports, Timer B for any.
   * @internal called once by the layer after the transaction is in its table.
   */
  start(): void {
    this.transmit(this.bytes, this.sendTo);
    if (!this.reliable) {
      this.intervalA = timerA(this.ctx.config);
      this.timerA = this.setTimer('A', this.intervalA);
    }
    this.timerB = this.setTimer('B', timerB(this.ctx.config));
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
            this.timerA = this.cancelTimer(this.timerA);
            this.timerB = this.cancelTimer(this.timerB);
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
          if (this.isIn(S.Accepted)) this.timerM = this.setTimer('M', timerM(this.ctx.config));
        } else {
          // §17.1.1.2: "When in either the 'Calling' or 'Proceeding' states, reception of a response
          // with status code from 300-699 MUST cause the client transaction to transition to
          // 'Completed'. The client transaction MUST pass the received response up to the TU, and the
          // client transaction MUST generate an ACK request".
          this.clearTimers();
          this.transition(S.Completed);
          this.ackBytes = serializeMessage(createAckForNon2xx(this.request, response));
          this.transmit(this.ackBytes, this.sendTo);
          this.deliver(response);
          if (!this.isIn(S.Completed)) return;
          const d = timerD(this.ctx.config, this.reliable);
          if (d === 0) this.terminate();
          else this.timerD = this.setTimer('D', d);
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
        if (status >= 300 && this.ackBytes !== undefined) this.transmit(this.ackBytes, this.sendTo);
        return;
      default:
        return;
    }
  }

  protected onTimer(name: TimerName): void {
    switch (name) {
      case 'A':
        // §17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request by passing
        // it to the transport layer, and MUST reset the timer with a value of 2*T1."
        this.timerA = undefined;
        if (this.state !== S.Calling) return;
        this.transmit(this.bytes, this.sendTo);
        this.intervalA = nextTimerA(this.intervalA);
        this.timerA = this.setTimer('A', this.intervalA);
        return;
      case 'B':
        // §17.1.1.2: "If the client transaction is still in the 'Calling' state when timer B fires, the
        // client transaction SHOULD inform the TU that a timeout has occurred."
        this.timerB = undefined;
        if (this.state !== S.Calling) return;
        this.clearTimers();
        this.emit('timeout');
        this.callUser('onTimeout');
        this.terminate();
        return;
      case 'D':
        // §17.1.1.2: "If timer D fires while the client transaction is in the 'Completed' state, the
        // client transaction MUST move to the 'Terminated' state."
        this.timerD = undefined;
        this.terminate();
        return;
      case 'M':
        // RFC 6026 §8.4: "If Timer M fires and the state machine is in the 'Accepted' state, the
        // machine MUST transition to the 'Terminated' state."
        this.timerM = undefined;
        this.terminate();
        return;
      default:
        return;
    }
  }

  protected clearTimers(): void {
    this.timerA = this.cancelTimer(this.timerA);
    this.timerB = this.cancelTimer(this.timerB);
    this.timerD = this.cancelTimer(this.timerD);
    this.timerM = this.cancelTimer(this.timerM);
  }

  protected override sentCallback(): (flow: Flow) => void {
    return this.onSent;
  }

  /**
   * §17.1.4: "the client transaction SHOULD inform the TU that a transport failure has occurred, and the
   * client transaction SHOULD transition directly to the 'Terminated' state."
   */
  protected transportFailed(error: Error): void {
    this.clearTimers();
    this.emit('transportError', error);
    this.callUser('onTransportError', error);
    this.terminate();
  }

  private readonly onSent = (flow: Flow): void => {
    if (this.sentFlow !== undefined) return;
    this.sentFlow = flow;
    // §17.1.1.3: the ACK "MUST be sent to the same address, port, and transport to which the original
    // request was sent": on a connection, the same connection.
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

  private callUser(which: 'onTimeout' | 'onTransportError', error?: Error): void {
    try {
      if (which === 'onTimeout') this.user.onTimeout?.(this);
      else this.user.onTransportError?.(this, error!);
    } catch (err) {
      this.ctx.logger.error({ err, tx: this.key }, `TU ${which} threw`);
    }
  }
}
