/**
 * Types shared by the transaction layer and its users: the callbacks of the transaction user (TU), the
 * event maps of the transactions, and what `TransactionLayer.receiveRequest` tells the core.
 */
import type { Logger } from '../log/index.js';
import type { MessageCounters, SipResponse } from '../sip/index.js';
import type { TransportSender } from '../transport/types.js';
import type { InviteClientTransaction } from './invite-client-transaction.js';
import type { InviteServerTransaction } from './invite-server-transaction.js';
import type { NonInviteClientTransaction } from './non-invite-client-transaction.js';
import type { NonInviteServerTransaction } from './non-invite-server-transaction.js';
import type { TimerConfig, Timers } from './timers.js';
import type { TransactionState } from './transaction-state.js';

export type ClientTransaction = InviteClientTransaction | NonInviteClientTransaction;
export type ServerTransaction = InviteServerTransaction | NonInviteServerTransaction;
export type AnyTransaction = ClientTransaction | ServerTransaction;

/** The four machines of RFC 3261 §17. */
export type TransactionKind = 'invite-client' | 'non-invite-client' | 'invite-server' | 'non-invite-server';

/**
 * The TU of a client transaction (RFC 3261 §17.1): a UAC core or a proxy core branch. Its callbacks
 * run synchronously inside the layer; one that throws is logged and does not break the transaction.
 */
export interface ClientTransactionUser {
  /**
   * Every response the RFC passes up: provisional responses, the final response, and for INVITE every
   * 2xx while Accepted (RFC 6026 §8.4). Retransmitted non-2xx finals are absorbed (and ACKed again).
   */
  onResponse(response: SipResponse, transaction: ClientTransaction): void;
  /** Timer B (INVITE) or Timer F (non-INVITE) fired: §17.1.1.2 / §17.1.2.2 "inform the TU that a timeout has occurred". */
  onTimeout?(transaction: ClientTransaction): void;
  /** §17.1.4: the transport could not send the request (or its ACK); the transaction is terminated. */
  onTransportError?(transaction: ClientTransaction, error: Error): void;
}

/** Events every transaction emits. */
export type TransactionEvents = {
  /** After every move of the state machine, Terminated included. */
  stateChanged: [state: TransactionState, previous: TransactionState];
  /** Once, when the transaction reaches Terminated and has left the layer's table. */
  terminated: [];
  /** §17.1.4 / §17.2.4: a send failed; the transaction terminates right after this event. */
  transportError: [error: Error];
  /**
   * The transaction timed out and terminates right after this event: Timer B (INVITE client) or F
   * (non-INVITE client), also reported to `ClientTransactionUser.onTimeout`; Timer H (INVITE server,
   * §17.2.1: "the ACK was never received ... MUST indicate to the TU that a transaction failure has
   * occurred"). A non-INVITE server transaction never times out.
   */
  timeout: [];
};

/** What `receiveRequest` found out about a request; the core acts on `kind`. */
export type IncomingRequest =
  /**
   * A request that starts a transaction: the TU must answer through `transaction.respond()`. For a
   * CANCEL, `cancels` is the INVITE server transaction it matched (§9.2), if any: the TU answers 200 to
   * the CANCEL and, while that INVITE is still Proceeding, 487 to the INVITE.
   */
  | { kind: 'new'; transaction: ServerTransaction; cancels?: InviteServerTransaction }
  /** A retransmission, absorbed; the last response was re-sent where §17.2.1 / §17.2.2 say so. */
  | { kind: 'retransmission' }
  /** An ACK for a non-2xx final response, absorbed by its INVITE server transaction (Completed → Confirmed). */
  | { kind: 'ack-absorbed' }
  /**
   * An ACK that is not for a non-2xx response (the ACK of a 2xx, its own transaction, RFC 3261 §17.1.1.3):
   * for the TU. `transaction` is the INVITE server transaction in Accepted it matched, if one did.
   */
  | { kind: 'ack'; transaction?: InviteServerTransaction }
  /**
   * A new request outside a dialog while the server transactions hold more than `memoryLimit` bytes: no
   * transaction was created; the core answers 503 with Retry-After statelessly.
   */
  | { kind: 'over-budget' };

/** @internal How a transaction tells its layer that it is gone. */
export interface TransactionOwner {
  transactionTerminated(transaction: AnyTransaction): void;
  /** The bytes a server transaction holds changed by `delta` (see `Transaction.heldBytes`). */
  heldChanged?(delta: number): void;
}

/** @internal Everything a transaction needs from its layer, one object shared by all transactions. */
export interface TransactionContext {
  readonly transport: TransportSender;
  readonly timers: Timers;
  readonly config: TimerConfig;
  readonly logger: Logger;
  readonly owner: TransactionOwner;
  /** Where the responses sent are counted (the stack's MessageCounters), if anywhere. */
  readonly counters?: MessageCounters;
}
