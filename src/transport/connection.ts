/**
 * What the transport layer needs from one connection of a stream transport (TCP, TLS, WS, WSS), and what a
 * connection needs from the layer that owns it. Types only.
 */
import type { Flow, TransportProtocol } from './types.js';

export interface Connection {
  /** The flow id (RFC 5626 flow), unique for the life of the process. */
  readonly id: string;
  readonly protocol: TransportProtocol;
  /** The flow as the core sees it: the listener it belongs to and the peer's address. */
  readonly flow: Flow;
  /** False once the connection has begun to close; it carries nothing more. */
  readonly isOpen: boolean;
  /** Writes one SIP message (stream) or frame (WebSocket); resolves once handed to the kernel. */
  send(data: Buffer): Promise<void>;
  /** Closes at once; the delegate hears `onClosed` with this reason. Idempotent. */
  close(reason: string): void;
}

export interface ConnectionDelegate {
  /** One complete SIP message off the connection. */
  onMessage(data: Buffer, connection: Connection): void;
  /**
   * Called exactly once per connection. `established` is false for an outbound connection that never
   * finished connecting: nobody above the transport ever saw its flow.
   */
  onClosed(connection: Connection, reason: string, established: boolean): void;
}
