import type { TransactionState } from './transaction-state.js';

/**
 * Errors of the transaction layer. Each has a stable code; all of them mean a bug in the caller or in
 * the layer, never a problem with a message from the network (those are handled, not thrown).
 */
export type TransactionErrorCode =
  | 'TRANSACTION_ERR_STATE' // a state machine was asked for a move the RFC does not have
  | 'TRANSACTION_ERR_TERMINATED' // a method was called on a terminated transaction
  | 'TRANSACTION_ERR_STOPPED' // the layer was used after stop()
  | 'TRANSACTION_ERR_EXISTS'; // a client transaction with this branch and method already exists

export class TransactionError extends Error {
  readonly code: TransactionErrorCode;
  constructor(code: TransactionErrorCode, message: string) {
    super(message);
    this.name = 'TransactionError';
    this.code = code;
  }
}

/** Thrown by `transition()` on a move its state machine does not allow. */
export class TransactionStateError extends TransactionError {
  readonly from: TransactionState;
  readonly to: TransactionState;
  constructor(kind: string, from: TransactionState, to: TransactionState) {
    super('TRANSACTION_ERR_STATE', `${kind} transaction: illegal transition ${from} → ${to}`);
    this.name = 'TransactionStateError';
    this.from = from;
    this.to = to;
  }
}
