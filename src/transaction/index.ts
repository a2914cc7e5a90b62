/**
 * The transaction layer (RFC 3261 §17, RFC 6026): the four transaction state machines with every timer,
 * request/response matching, and the two requests the layer builds (ACK for non-2xx, CANCEL).
 */
export { TransactionLayer, type TransactionLayerOptions } from './transaction-layer.js';
export { Transaction } from './transaction.js';
export { InviteClientTransaction } from './invite-client-transaction.js';
export { NonInviteClientTransaction } from './non-invite-client-transaction.js';
export { InviteServerTransaction } from './invite-server-transaction.js';
export { NonInviteServerTransaction } from './non-invite-server-transaction.js';
export { TransactionState, type TransitionTable } from './transaction-state.js';
export { TransactionError, TransactionStateError, type TransactionErrorCode } from './errors.js';
export { createAckForNon2xx, createCancel } from './requests.js';
export { responseDestination } from './response-destination.js';
export {
  T1, T2, T4, DEFAULT_TIMER_CONFIG, type TimerConfig, type TimerName, type TimerHandle, type Timers, realTimers, timerConfig,
  timerA, nextTimerA, timerB, timerD, timerE, nextTimerE, timerF, timerG, nextTimerG, timerH, timerI, timerJ, timerK, timerL, timerM,
} from './timers.js';
export type {
  AnyTransaction, ClientTransaction, ServerTransaction, ClientTransactionUser, IncomingRequest, TransactionKind,
  TransactionEvents,
} from './types.js';
