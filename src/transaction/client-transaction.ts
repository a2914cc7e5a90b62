import { type SipRequest, type SipResponse, serializeMessage } from '../sip/index.js';
import { type Destination, type Flow, isReliable } from '../transport/types.js';
import { Transaction } from './transaction.js';
import type { TransactionState } from './transaction-state.js';
import type { ClientTransaction, ClientTransactionUser, TransactionContext } from './types.js';

/**
 * What the two client transactions of RFC 3261 §17.1 share: the request serialised once and sent, then
 * re-sent on the flow it first left on; the responses passed to the TU; the TU told of a timeout or a
 * transport error (§17.1.1.2, §17.1.2.2, §17.1.4). Created and started by `TransactionLayer.sendRequest`.
 */
export abstract class ClientTransactionBase extends Transaction {
  readonly destination: Destination;
  readonly user: ClientTransactionUser;
  /** The most recent response passed to the TU. */
  lastResponse: SipResponse | undefined;
  private readonly bytes: Buffer;
  /** The destination, with the flow the request left on once known. */
  private sendTo: Destination;
  private sentFlow: Flow | undefined;

  constructor(
    request: SipRequest, key: string, destination: Destination, user: ClientTransactionUser, ctx: TransactionContext,
    initial: TransactionState,
  ) {
    super(request, key, ctx, initial, isReliable(destination.protocol));
    this.destination = destination;
    this.user = user;
    this.lastResponse = undefined;
    this.bytes = serializeMessage(request);
    this.sendTo = destination;
    this.sentFlow = undefined;
  }

  /** The flow the request went out on, once the transport has sent it. */
  get flow(): Flow | undefined {
    return this.sentFlow;
  }

  /** The interval of Timer A or E after one of `previous` (§17.1.1.2, §17.1.2.2). */
  protected abstract nextRetransmissionInterval(previous: number): number;

  /** Passes the request to the transport: the first transmission and every retransmission. */
  protected transmitRequest(): void {
    this.transmit(this.bytes, this.sendTo);
  }

  /**
   * Sends other bytes of this transaction (the ACK of a non-2xx, §17.1.1.3) where the request went: it
   * "MUST be sent to the same address, port, and transport to which the original request was sent".
   */
  protected sendOnRequestPath(bytes: Buffer): void {
    this.transmit(bytes, this.sendTo);
  }

  protected retransmit(previous: number): number {
    this.transmitRequest();
    return this.nextRetransmissionInterval(previous);
  }

  /** Passes a response up to the TU; a TU that throws is logged. */
  protected deliver(response: SipResponse): void {
    this.lastResponse = response;
    try {
      this.user.onResponse(response, this.asClient());
    } catch (err) {
      this.ctx.logger.error({ err, tx: this.key }, 'TU onResponse threw');
    }
  }

  protected tellUser(which: 'onTimeout' | 'onTransportError', error?: Error): void {
    try {
      if (which === 'onTimeout') this.user.onTimeout?.(this.asClient());
      else this.user.onTransportError?.(this.asClient(), error!);
    } catch (err) {
      this.ctx.logger.error({ err, tx: this.key }, `TU ${which} threw`);
    }
  }

  protected override sentCallback(): (flow: Flow) => void {
    return this.onSent;
  }

  /** The TU's callbacks take the union of the two concrete machines, which this always is. */
  private asClient(): ClientTransaction {
    return this as unknown as ClientTransaction;
  }

  private readonly onSent = (flow: Flow): void => {
    if (this.sentFlow !== undefined) return;
    this.sentFlow = flow;
    // Retransmissions and the ACK follow the first transmission's flow (same local socket or connection).
    if (this.sendTo.flowId === undefined) this.sendTo = { ...this.sendTo, flowId: flow.id };
  };
}
