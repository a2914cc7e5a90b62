/**
 * The shape shared by the UDP, stream and WebSocket listeners, and the callbacks they make into the
 * transport layer that owns them. Types only.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { HostPort, ListenSpec } from './types.js';

export interface Listener {
  /** The configured spec before start(), the bound one (real port) after. */
  readonly local: ListenSpec;
  /** Binds; resolves with the bound address, rejects when the address cannot be bound. */
  start(): Promise<ListenSpec>;
  /** Stops accepting and releases the socket; connections it accepted are closed by their owner. */
  stop(): Promise<void>;
}

export interface ListenerDelegate {
  /** A datagram that may be a SIP message (keep-alives and oversize datagrams already dropped). */
  onDatagram(data: Buffer, remote: HostPort, local: ListenSpec): void;
  /** A TCP connection, or a TLS one whose handshake has completed. */
  onSocket(socket: Socket, local: ListenSpec): void;
  /** Whether one more connection fits under maxConnections; logs the refusal when it does not. */
  admit(remote: HostPort, local: ListenSpec): boolean;
  /** A WebSocket that negotiated the `sip` subprotocol. */
  onWebSocket(ws: WebSocket, remote: HostPort, local: ListenSpec): void;
}
