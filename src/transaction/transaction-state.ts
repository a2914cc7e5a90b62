/** The states of RFC 3261 §17 (Figures 5–8) and RFC 6026 (Accepted). String values so logs read well. */
export enum TransactionState {
  Calling = 'Calling',
  Trying = 'Trying',
  Proceeding = 'Proceeding',
  Completed = 'Completed',
  Confirmed = 'Confirmed',
  /** RFC 6026 §7.1: the INVITE transaction after a 2xx, absorbing retransmissions without a new one. */
  Accepted = 'Accepted',
  Terminated = 'Terminated',
}

/** The moves a state machine allows, per state; anything else is a bug and throws. */
export type TransitionTable = Readonly<Partial<Record<TransactionState, readonly TransactionState[]>>>;
