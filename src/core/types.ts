import type { SipRequest, SipResponse } from '../sip/index.js';
import type { InviteServerTransaction, ServerTransaction } from '../transaction/index.js';
import type { Flow, ListenSpec, TransportSender } from '../transport/types.js';

/** The transport as the stack drives it: the sender plus its lifecycle. */
export interface StackTransport extends TransportSender {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly listeners: ListenSpec[];
  /** The flow carried an authenticated request (REGISTER accepted): shed last under connection pressure. */
  markAuthenticated?(flowId: string): void;
}

/**
 * The module above the stack (proxy, registrar, or the default UAS): the stack hands it every request
 * that passed the checks and opened a server transaction, and what no transaction claimed.
 */
export interface StackUser {
  /**
   * A new request in its server transaction; the user answers through the transaction (or forwards).
   * For CANCEL, `cancels` is the INVITE server transaction it matched, if any.
   */
  onRequest(request: SipRequest, transaction: ServerTransaction, cancels?: InviteServerTransaction): void;
  /**
   * Called before any transaction exists, for requests that may be answered statelessly (an OPTIONS
   * ping to the server itself, RFC 3261 §8.2.7 / §16.3 / Kamailio's sl_send_reply). Returns true when
   * the request was answered and needs no transaction.
   */
  onStatelessRequest?(request: SipRequest, flow: Flow): boolean;
  /** An ACK that is not for a non-2xx final response (RFC 3261 §17.1.1.3: the ACK of a 2xx). */
  onAck?(request: SipRequest, flow: Flow, transaction?: InviteServerTransaction): void;
  /** A response that matched no client transaction (a proxy forwards 2xx to INVITE statelessly, §16.7). */
  onStrayResponse?(response: SipResponse, flow: Flow): void;
  /** A connection closed (bindings on it may be dropped, RFC 5626). */
  onFlowClosed?(flow: Flow, reason: string): void;
}

/**
 * Asked before anything is parsed (flood and brute-force bans live above the stack, in security/):
 * `admit` for every datagram and message of a source, `request` once per request (not response).
 * False drops the message silently: a banned source learns nothing and costs one Map lookup.
 */
export interface SourceGate {
  admit(address: string): boolean;
  request(address: string): boolean;
}
