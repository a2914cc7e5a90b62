/**
 * What the transport layer and the layers above it share. Types only, so that transactions and the
 * core can be tested over an in-memory transport.
 */

export type TransportProtocol = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** Reliable transports get no retransmissions (RFC 3261 §17.1.1.2, §17.1.2.2). */
export function isReliable(protocol: TransportProtocol): boolean {
  return protocol !== 'udp';
}

/** Stream transports that carry SIP over a connection the peer may have opened (TCP, TLS, WS, WSS). */
export function isConnectionOriented(protocol: TransportProtocol): boolean {
  return protocol !== 'udp';
}

export interface HostPort {
  address: string;
  port: number;
}

/** One listening socket, e.g. `udp:127.0.0.1:5060`. */
export interface ListenSpec extends HostPort {
  protocol: TransportProtocol;
}

/**
 * Where a message came from or goes to. For connection-oriented transports `flowId` names the exact
 * connection (RFC 5626 flow); for UDP it identifies the local socket plus remote address.
 */
export interface Flow {
  readonly id: string;
  readonly protocol: TransportProtocol;
  /** The local listener the message arrived on / leaves from (used for Via and Record-Route). */
  readonly local: HostPort;
  readonly remote: HostPort;
}

/** A destination to send to: a flow to reuse if it is still alive, else an address to reach. */
export interface Destination {
  protocol: TransportProtocol;
  address: string;
  port: number;
  /** Send on this connection if it is still open (responses §18.2.2, calls to a registered softphone). */
  flowId?: string;
}

/** The callbacks of the layer above the transport (the core). */
export interface TransportUser {
  /** One complete SIP message (datagram, WebSocket frame, or framed out of a stream). */
  onMessage(data: Buffer, flow: Flow): void;
  /** A connection closed or failed; bindings and transactions on it may react. */
  onFlowClosed?(flow: Flow, reason: string): void;
  /**
   * Asked first, for every datagram received (before the cluster dispatcher, STUN and keep-alives) and
   * for every TCP/TLS/WS/WSS connection just accepted (before any byte is read): false drops the
   * datagram silently / destroys the socket at once. Absent: everything is admitted. Must be cheap.
   */
  admit?(remote: HostPort, protocol: TransportProtocol): boolean;
}

/**
 * Decides, for each datagram a UDP listener received, whether this process handles it. Cluster workers
 * share their UDP sockets, so a datagram reaches an arbitrary worker; the dispatcher hands the datagrams
 * of transactions held elsewhere to their worker (server/cluster). Without one, every datagram is handled here.
 */
export interface DatagramDispatcher {
  /** True when the datagram was handed to another process and must not be delivered here. */
  dispatch(data: Buffer, remote: HostPort, local: ListenSpec): boolean;
  /**
   * A message read from one of this process's connections: true when it was handed to another process
   * (a response to a request that process forwarded over this connection) and must not be delivered here.
   */
  dispatchStream?(data: Buffer, flow: Flow): boolean;
}

/**
 * Cluster workers: sends on a connection that another worker holds (its flow id says which), relayed to
 * that worker, which writes the bytes on the connection.
 */
export interface StreamRelay {
  /** True when the flow id names a connection of another process (which may be gone). */
  isRemote(flowId: string): boolean;
  /** Relays the bytes; rejects with TransportError when the owner is down or its connection is closed. */
  send(data: Buffer, flowId: string): Promise<void>;
}

/** The transport as the transaction layer and the core see it. */
export interface TransportSender {
  /** Sends bytes; resolves with the flow used; rejects with TransportError when it cannot be delivered. */
  send(data: Buffer, destination: Destination): Promise<Flow>;
  /** The listener the stack advertises for a protocol (Via sent-by, Record-Route), if it has one. */
  listenerFor(protocol: TransportProtocol, family?: 4 | 6): ListenSpec | undefined;
}

export type TransportErrorCode =
  | 'TRANSPORT_ERR_NO_LISTENER'
  | 'TRANSPORT_ERR_CONNECT'
  | 'TRANSPORT_ERR_FLOW_GONE'
  | 'TRANSPORT_ERR_SEND'
  | 'TRANSPORT_ERR_LIMIT';

export class TransportError extends Error {
  readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string) {
    super(message);
    this.name = 'TransportError';
    this.code = code;
  }
}
