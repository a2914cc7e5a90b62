/**
 * The shape shared by the UDP, stream and WebSocket listeners, and the callbacks they make into the
 * transport layer that owns them. Types only.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { AdmissionTicket } from './admission.js';
import { normalizeAddress } from './address.js';
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
  /**
   * Called before anything else for every datagram a UDP listener receives (keep-alives and STUN
   * included): false drops it silently.
   */
  admitDatagram(remote: HostPort, local: ListenSpec): boolean;
  /** A datagram that may be a SIP message (keep-alives and oversize datagrams already dropped). */
  onDatagram(data: Buffer, remote: HostPort, local: ListenSpec): void;
  /**
   * A TCP connection just accepted, before any byte is read or any TLS/HTTP work is done: a ticket when
   * it may stay (per-address and process caps, the transport user's admit), undefined to destroy it at
   * once. `close` ends it if it is shed later. The listener releases the ticket when the socket closes.
   */
  admit(remote: HostPort, local: ListenSpec, close: (reason: string) => void): AdmissionTicket | undefined;
  /** The socket of an admitted connection is gone. Idempotent. */
  release(ticket: AdmissionTicket): void;
  /** A TCP connection, or a TLS one whose handshake has completed. */
  onSocket(socket: Socket, local: ListenSpec, ticket: AdmissionTicket): void;
  /** A WebSocket that negotiated the `sip` subprotocol. */
  onWebSocket(ws: WebSocket, remote: HostPort, local: ListenSpec, ticket: AdmissionTicket): void;
}

/**
 * A socket just accepted on a stream listener, offered to admission before any byte is read: its remote
 * address and ticket, or undefined once it has been destroyed (gone already, or refused).
 */
export function admitAccepted(socket: Socket, spec: ListenSpec, delegate: ListenerDelegate): { remote: HostPort; ticket: AdmissionTicket } | undefined {
  // Errors on a socket still in the TLS handshake (or WebSocket upgrade) have no other listener yet.
  socket.on('error', () => undefined);
  if (socket.remoteAddress === undefined || socket.remotePort === undefined) {
    socket.destroy(); // already gone
    return undefined;
  }
  const remote = { address: normalizeAddress(socket.remoteAddress), port: socket.remotePort };
  const ticket = delegate.admit(remote, spec, () => socket.destroy());
  if (ticket === undefined) {
    socket.destroy();
    return undefined;
  }
  return { remote, ticket };
}
