import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { WebSocket } from 'ws';
import { categoryLogger, type Logger } from '../log/index.js';
import { addressFamily, formatHostPort, isWildcard, normalizeAddress } from './address.js';
import { ConnectionAdmission, type AdmissionTicket } from './admission.js';
import type { Connection, ConnectionDelegate } from './connection.js';
import { ConnectionTable } from './connection-table.js';
import { readFileLimit } from './file-limit.js';
import type { Listener, ListenerDelegate } from './listener.js';
import { StreamConnection } from './stream-connection.js';
import { StreamListener } from './stream-listener.js';
import {
  TransportError, type DatagramDispatcher, type Destination, type Flow, type HostPort, type ListenSpec,
  type StreamRelay, type TransportProtocol, type TransportSender, type TransportUser,
} from './types.js';
import { UdpListener } from './udp-listener.js';
import { WsConnection } from './ws-connection.js';
import { WsListener } from './ws-listener.js';

export interface TransportLayerOptions {
  /** Sockets to bind; port 0 takes an ephemeral port (see `listeners` after start()). */
  listen: ListenSpec[];
  /** The core: receives every message and every closed flow. */
  user: TransportUser;
  logger: Logger;
  /** Server certificate and key (PEM); required when a tls or wss listener is configured. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Outbound TLS. `rejectUnauthorized` defaults to true. */
  tlsClient?: { rejectUnauthorized?: boolean; ca?: string | Buffer };
  /** Largest SIP message accepted on any transport. Default 65535. */
  maxMessageSize?: number;
  /**
   * Cap on simultaneous TCP/TLS/WS/WSS connections, inbound and outbound, TLS handshakes and WebSocket
   * upgrades in progress included. Default 10000. Lowered to fit `fileLimit` (see admission.ts).
   */
  maxConnections?: number;
  /** Cap on simultaneous inbound connections from one address (IPv6: one /64). Default 1000. */
  maxConnectionsPerIp?: number;
  /**
   * The soft RLIMIT_NOFILE of this process; the connection cap keeps a reserve of files below it.
   * Default: read from /proc/self/limits; null: do not account for it.
   */
  fileLimit?: number | null;
  /**
   * A stream message must be complete this long after its first byte, and an inbound connection must
   * bring its first message this long after it is accepted (WebSocket: after the upgrade). Default 10000.
   */
  messageTimeoutMs?: number;
  /** From TCP accept to a completed TLS handshake or WebSocket upgrade. Default 10000. */
  handshakeTimeoutMs?: number;
  /** A stream connection without a byte either way for this long is closed. Default 600000 (10 min). */
  idleTimeoutMs?: number;
  /** WebSocket ping interval; a peer that has not answered by the next ping is terminated. Default 30000. */
  wsPingIntervalMs?: number;
  /** How long an outbound TCP connect plus TLS handshake may take. Default 10000. */
  connectTimeoutMs?: number;
}

const PROTOCOLS: readonly TransportProtocol[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * The SIP transport layer (RFC 3261 §18): UDP, TCP, TLS, WS and WSS listeners, the table of open
 * connections, and the choice of socket for every message the layers above send.
 */
export class TransportLayer implements TransportSender {
  private readonly log: Logger;
  private readonly user: TransportUser;
  private readonly tlsClient: { rejectUnauthorized?: boolean; ca?: string | Buffer };
  private readonly maxMessageSize: number;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly wsPingIntervalMs: number;
  private readonly connectTimeoutMs: number;
  private readonly messageTimeoutMs: number;
  private readonly admission: ConnectionAdmission;
  /** The admission ticket of every open connection of this process, by flow id. */
  private readonly tickets = new Map<string, AdmissionTicket>();
  private readonly allListeners: Listener[] = [];
  private readonly udpListeners: UdpListener[] = [];
  /** UDP listeners by bound `address:port`, as written on the local side of a UDP flow id. */
  private readonly udpByLocal = new Map<string, UdpListener>();
  private readonly table = new ConnectionTable();
  /** Keeps flow ids unique across restarts and cluster workers (bindings may outlive a process). */
  private readonly instanceTag = randomBytes(3).toString('hex');
  private nextConnection = 1;
  /** Cluster workers: `w1` and the like, written first in every flow id so other workers know the owner. */
  private flowTag = '';
  private dispatcher: DatagramDispatcher | undefined;
  private relay: StreamRelay | undefined;
  private state: State = 'new';
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;

  constructor(options: TransportLayerOptions) {
    this.log = categoryLogger(options.logger, 'sip.transport');
    this.user = options.user;
    this.tlsClient = options.tlsClient ?? {};
    this.maxMessageSize = positive('maxMessageSize', options.maxMessageSize, 65535);
    this.maxConnections = positive('maxConnections', options.maxConnections, 10_000);
    this.idleTimeoutMs = positive('idleTimeoutMs', options.idleTimeoutMs, 600_000);
    this.wsPingIntervalMs = positive('wsPingIntervalMs', options.wsPingIntervalMs, 30_000);
    this.connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, 10_000);
    this.messageTimeoutMs = positive('messageTimeoutMs', options.messageTimeoutMs, 10_000);
    const handshakeTimeoutMs = positive('handshakeTimeoutMs', options.handshakeTimeoutMs, 10_000);
    const fileLimit = options.fileLimit === null ? undefined : options.fileLimit === undefined ? readFileLimit()?.soft : positive('fileLimit', options.fileLimit, 0);
    this.admission = new ConnectionAdmission({
      maxConnections: this.maxConnections,
      maxPerAddress: positive('maxConnectionsPerIp', options.maxConnectionsPerIp, 1000),
      fileLimit,
      log: this.log,
    });
    if (!Array.isArray(options.listen)) throw new TypeError('listen must be an array of ListenSpec');
    const delegate = this.listenerDelegate();
    for (const spec of options.listen) {
      if (!PROTOCOLS.includes(spec.protocol)) throw new TypeError(`unknown transport protocol ${JSON.stringify(spec.protocol)}`);
      if (!Number.isInteger(spec.port) || spec.port < 0 || spec.port > 65535) throw new TypeError(`bad port ${spec.port} for ${spec.protocol} listener`);
      if (typeof spec.address !== 'string' || spec.address === '') throw new TypeError(`missing address for ${spec.protocol} listener`);
      if ((spec.protocol === 'tls' || spec.protocol === 'wss') && !options.tls) {
        throw new TypeError(`the ${spec.protocol} listener on ${formatHostPort(spec)} needs options.tls (certificate and key)`);
      }
      const s = { ...spec, address: normalizeAddress(spec.address) };
      const common = { delegate, logger: this.log };
      switch (s.protocol) {
        case 'udp': {
          const l = new UdpListener({ ...common, spec: s, maxMessageSize: this.maxMessageSize });
          this.udpListeners.push(l);
          this.allListeners.push(l);
          break;
        }
        case 'tcp':
        case 'tls':
          this.allListeners.push(new StreamListener({ ...common, spec: { ...s, protocol: s.protocol }, handshakeTimeoutMs, ...(options.tls ? { tls: options.tls } : {}) }));
          break;
        case 'ws':
        case 'wss':
          this.allListeners.push(new WsListener({
            ...common, spec: { ...s, protocol: s.protocol }, maxMessageSize: this.maxMessageSize, handshakeTimeoutMs, ...(options.tls ? { tls: options.tls } : {}),
          }));
          break;
      }
    }
  }

  /** The bound listeners (real ports once started), in configuration order. */
  get listeners(): ListenSpec[] {
    return this.allListeners.map((l) => ({ ...l.local }));
  }

  /** Open TCP/TLS/WS/WSS connections, including outbound ones still connecting. */
  get connectionCount(): number {
    return this.table.size;
  }

  /** Open connections by protocol (tcp, tls, ws, wss): walks the table, for a scrape, not per message. */
  connectionCounts(): Partial<Record<TransportProtocol, number>> {
    const counts: Partial<Record<TransportProtocol, number>> = {};
    for (const c of this.table.all()) counts[c.protocol] = (counts[c.protocol] ?? 0) + 1;
    return counts;
  }

  /** Binds every listener; if one cannot be bound, releases the others and rejects. */
  start(): Promise<void> {
    if (this.state !== 'new') return Promise.reject(new Error(`TransportLayer cannot start: it is ${this.state}`));
    this.state = 'starting';
    this.startPromise = this.bindAll();
    return this.startPromise;
  }

  /** Closes every listener and connection (each reported through onFlowClosed) and clears every timer. Idempotent. */
  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  listenerFor(protocol: TransportProtocol, family?: 4 | 6): ListenSpec | undefined {
    const l = this.allListeners.find((x) => x.local.protocol === protocol && (family === undefined || addressFamily(x.local.address) === family));
    return l ? { ...l.local } : undefined;
  }

  /**
   * Sends one message. Over UDP from the listener the flow names, else one of the destination's family.
   * Over TCP/TLS on the flow's connection while it is open (§18.2.2), else on any open connection to the
   * address (§18.1.1), else on a new connection. Over WS/WSS only on an open connection: a browser
   * cannot be called back.
   */
  async send(data: Buffer, destination: Destination): Promise<Flow> {
    if (this.state !== 'running') throw new TransportError('TRANSPORT_ERR_SEND', `transport layer is ${this.state}`);
    if (!PROTOCOLS.includes(destination.protocol)) throw new TypeError(`unknown transport protocol ${JSON.stringify(destination.protocol)}`);
    if (!Number.isInteger(destination.port) || destination.port <= 0 || destination.port > 65535) throw new TypeError(`bad destination port ${destination.port}`);
    const remote = { address: normalizeAddress(destination.address), port: destination.port };
    switch (destination.protocol) {
      case 'udp':
        return this.sendUdp(data, remote, destination.flowId);
      case 'tcp':
      case 'tls':
        return this.sendStream(data, destination.protocol, remote, destination.flowId);
      case 'ws':
      case 'wss':
        return this.sendWs(data, destination.protocol, remote, destination.flowId);
    }
  }

  /**
   * Cluster workers: every datagram a UDP listener receives is first offered to `dispatcher`, which may
   * hand it to the worker that holds its transaction. Set before start(); undefined (the default) handles
   * every datagram in this process.
   */
  setDatagramDispatcher(dispatcher: DatagramDispatcher | undefined): void {
    this.dispatcher = dispatcher;
  }

  /**
   * Cluster workers: flow ids of this process's connections start with `tag` and '.' (`wss:w1.3fa2c1-7`),
   * and sends on another worker's connections go through `relay`. Set before start().
   */
  setStreamRelay(tag: string, relay: StreamRelay | undefined): void {
    if (!/^[a-z0-9]*$/.test(tag)) throw new TypeError(`flow tag must be lower-case letters and digits, got ${JSON.stringify(tag)}`);
    this.flowTag = tag === '' ? '' : `${tag}.`;
    this.relay = relay;
  }

  /**
   * Cluster workers: the bytes another worker relayed for one of this process's connections. Rejects
   * with TransportError (TRANSPORT_ERR_FLOW_GONE) when the connection is closed.
   */
  async sendOnFlow(flowId: string, data: Buffer): Promise<void> {
    const connection = this.state === 'running' ? this.table.get(flowId) : undefined;
    if (connection === undefined) throw new TransportError('TRANSPORT_ERR_FLOW_GONE', `flow ${flowId} is closed`);
    await connection.send(data);
  }

  /**
   * Cluster workers: a message another worker read on one of its connections and handed over (a
   * response to a request forwarded from here); handled as if read here. What is sent back on the flow
   * is relayed to that worker.
   */
  receiveFromFlow(data: Buffer, flow: Flow): boolean {
    if (this.state !== 'running') return false;
    this.deliver(data, flow);
    return true;
  }

  /**
   * A datagram another worker received on the shared UDP listener bound to `local` and handed over: it
   * is handled exactly as if this process had received it there (its responses leave from that socket).
   * Returns false when no UDP listener here is bound to `local`.
   */
  receiveDatagram(data: Buffer, remote: HostPort, local: HostPort): boolean {
    if (this.state !== 'running') return false;
    const listener = this.udpByLocal.get(formatHostPort(local));
    if (listener === undefined) return false;
    this.deliver(data, udpFlow(listener.local, { address: normalizeAddress(remote.address), port: remote.port }));
    return true;
  }

  /**
   * The flow carried a request its user authenticated (a REGISTER accepted): under connection pressure
   * it is never shed. UDP flows, other workers' flows and unknown ids are ignored.
   */
  markAuthenticated(flowId: string): void {
    const ticket = this.tickets.get(flowId);
    if (ticket !== undefined) this.admission.markAuthenticated(ticket);
  }

  /** Closes a TCP/TLS/WS/WSS flow (onFlowClosed follows); unknown ids and UDP flows are ignored. */
  closeFlow(flowId: string): void {
    this.table.get(flowId)?.close('closed by the core');
  }

  private async bindAll(): Promise<void> {
    const results = await Promise.allSettled(this.allListeners.map((l) => l.start()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.state = 'stopping';
      await Promise.all(this.allListeners.map((l) => l.stop().catch(() => undefined)));
      this.state = 'stopped';
      this.stopPromise = Promise.resolve();
      throw failed.reason;
    }
    for (const l of this.udpListeners) this.udpByLocal.set(formatHostPort(l.local), l);
    for (const l of this.allListeners) this.log.info({ listen: `${l.local.protocol}:${formatHostPort(l.local)}` }, 'listening');
    if (this.allListeners.length > this.udpListeners.length) this.admission.logLimits();
    if ((this.state as State) === 'starting') this.state = 'running';
  }

  private async shutdown(): Promise<void> {
    if (this.startPromise) await this.startPromise.catch(() => undefined);
    if (this.state === 'stopped') return;
    this.state = 'stopping';
    const closing = this.allListeners.map((l) =>
      l.stop().catch((err: unknown) => this.log.warn({ listen: `${l.local.protocol}:${formatHostPort(l.local)}`, err: String(err) }, 'listener did not close cleanly')),
    );
    for (const c of this.table.all()) c.close('transport stopped');
    await Promise.all(closing);
    this.state = 'stopped';
  }

  private async sendUdp(data: Buffer, remote: HostPort, flowId: string | undefined): Promise<Flow> {
    const family = addressFamily(remote.address);
    let listener = flowId === undefined ? undefined : this.udpByLocal.get(udpFlowLocal(flowId));
    if (!listener || listener.family !== family) listener = this.udpListeners.find((l) => l.family === family);
    if (!listener) throw new TransportError('TRANSPORT_ERR_NO_LISTENER', `no IPv${family} UDP listener to send to ${formatHostPort(remote)}`);
    await listener.send(data, remote.address, remote.port);
    return udpFlow(listener.local, remote);
  }

  private async sendStream(data: Buffer, protocol: 'tcp' | 'tls', remote: HostPort, flowId: string | undefined): Promise<Flow> {
    let connection = flowId === undefined ? undefined : this.table.get(flowId);
    if (connection === undefined && flowId !== undefined && this.relay?.isRemote(flowId)) {
      try {
        await this.relay.send(data, flowId);
        return this.remoteFlow(flowId, protocol, remote);
      } catch (err) {
        // §18.1.1: the flow is gone; TCP and TLS peers can still be reached on another connection.
        if (!(err instanceof TransportError) || err.code !== 'TRANSPORT_ERR_FLOW_GONE') throw err;
      }
    }
    if (connection?.protocol !== protocol) connection = this.table.findByAddress(protocol, remote.address, remote.port);
    connection ??= this.connect(protocol, remote);
    await connection.send(data);
    return connection.flow;
  }

  private async sendWs(data: Buffer, protocol: 'ws' | 'wss', remote: HostPort, flowId: string | undefined): Promise<Flow> {
    let connection: Connection | undefined;
    if (flowId !== undefined) {
      connection = this.table.get(flowId);
      if (connection === undefined && this.relay?.isRemote(flowId)) {
        await this.relay.send(data, flowId);
        return this.remoteFlow(flowId, protocol, remote);
      }
      if (connection?.protocol !== protocol) throw new TransportError('TRANSPORT_ERR_FLOW_GONE', `${protocol} flow ${flowId} is closed`);
    } else {
      connection = this.table.findByAddress(protocol, remote.address, remote.port);
      if (!connection) {
        throw new TransportError('TRANSPORT_ERR_FLOW_GONE', `no ${protocol} connection from ${formatHostPort(remote)}; WebSocket peers are reached only on their own connection`);
      }
    }
    await connection.send(data);
    return connection.flow;
  }

  /** The flow of another worker's connection, as far as this process knows it (the local side is our listener). */
  private remoteFlow(flowId: string, protocol: TransportProtocol, remote: HostPort): Flow {
    const l = this.listenerFor(protocol, addressFamily(remote.address));
    return { id: flowId, protocol, local: l ? { address: l.address, port: l.port } : { address: '0.0.0.0', port: 0 }, remote };
  }

  /** Opens an outbound TCP or TLS connection; it is then read like an inbound one. */
  private connect(protocol: 'tcp' | 'tls', remote: HostPort): StreamConnection {
    let connection: StreamConnection | undefined;
    const ticket = this.admission.admitOutbound(remote, protocol, (reason) => connection?.close(reason));
    if (ticket === undefined) {
      throw new TransportError('TRANSPORT_ERR_LIMIT', `connection limit of ${this.admission.limit} reached, cannot connect to ${protocol}:${formatHostPort(remote)}`);
    }
    try {
      const listener = this.listenerFor(protocol, addressFamily(remote.address));
      // Leave from the listener's address when it names one, so the peer sees the address we advertise in Via.
      const localAddress = listener && !isWildcard(listener.address) && (!isLoopback(listener.address) || isLoopback(remote.address)) ? listener.address : undefined;
      const socket: Socket =
        protocol === 'tls'
          ? tlsConnect({
            host: remote.address,
            port: remote.port,
            ...(localAddress === undefined ? {} : { localAddress }),
            rejectUnauthorized: this.tlsClient.rejectUnauthorized ?? true,
            ...(this.tlsClient.ca === undefined ? {} : { ca: this.tlsClient.ca }),
          })
          : netConnect({ host: remote.address, port: remote.port, ...(localAddress === undefined ? {} : { localAddress }) });
      connection = new StreamConnection({
        id: this.newFlowId(protocol),
        protocol,
        socket,
        local: listener ? { address: listener.address, port: listener.port } : undefined,
        remote,
        delegate: this.connectionDelegate,
        logger: this.log,
        maxMessageSize: this.maxMessageSize,
        idleTimeoutMs: this.idleTimeoutMs,
        messageTimeoutMs: this.messageTimeoutMs,
        connecting: { event: protocol === 'tls' ? 'secureConnect' : 'connect', timeoutMs: this.connectTimeoutMs },
      });
    } catch (err) {
      this.admission.release(ticket); // the socket was never made
      throw err;
    }
    this.tickets.set(connection.id, ticket);
    this.table.add(connection);
    this.log.debug({ flow: connection.id, peer: `${protocol}:${formatHostPort(remote)}` }, 'connecting');
    return connection;
  }

  private newFlowId(protocol: TransportProtocol): string {
    return `${protocol}:${this.flowTag}${this.instanceTag}-${this.nextConnection++}`;
  }

  private deliver(data: Buffer, flow: Flow): void {
    try {
      this.user.onMessage(data, flow);
    } catch (err) {
      this.log.error({ flow: flow.id, err: err instanceof Error ? err.message : String(err) }, 'transport user failed on a message');
    }
  }

  private readonly connectionDelegate: ConnectionDelegate = {
    onMessage: (data, connection) => {
      if (this.dispatcher?.dispatchStream !== undefined && this.dispatcher.dispatchStream(data, connection.flow)) return;
      this.deliver(data, connection.flow);
    },
    onClosed: (connection, reason, established) => {
      this.table.remove(connection);
      const ticket = this.tickets.get(connection.id);
      if (ticket !== undefined) {
        this.tickets.delete(connection.id);
        this.admission.release(ticket);
      }
      if (!established || !this.user.onFlowClosed) return;
      try {
        this.user.onFlowClosed(connection.flow, reason);
      } catch (err) {
        this.log.error({ flow: connection.id, err: err instanceof Error ? err.message : String(err) }, 'transport user failed on a closed flow');
      }
    },
  };

  private listenerDelegate(): ListenerDelegate {
    return {
      admitDatagram: (remote) => this.user.admit === undefined || this.userAdmits(remote, 'udp'),
      onDatagram: (data, remote, local) => {
        if (this.dispatcher !== undefined && this.dispatcher.dispatch(data, remote, local)) return;
        this.deliver(data, udpFlow(local, remote));
      },
      admit: (remote, local, close) => {
        if (this.state !== 'running') return undefined;
        if (this.user.admit !== undefined && !this.userAdmits(remote, local.protocol)) return undefined;
        return this.admission.admitInbound(remote, local.protocol, close);
      },
      release: (ticket) => this.admission.release(ticket),
      onSocket: (socket, local, ticket) => this.acceptSocket(socket, local, ticket),
      onWebSocket: (ws, remote, local, ticket) => this.acceptWebSocket(ws, remote, local, ticket),
    };
  }

  /** The transport user's admit; one that throws admits (a bug there must not close the edge). */
  private userAdmits(remote: HostPort, protocol: TransportProtocol): boolean {
    try {
      return this.user.admit?.(remote, protocol) !== false;
    } catch (err) {
      this.log.error({ peer: formatHostPort(remote), err: err instanceof Error ? err.message : String(err) }, 'transport user failed to decide admission');
      return true;
    }
  }

  /** Registers an accepted connection's flow with its ticket: shedding it now closes the flow. */
  private adopt(connection: Connection, ticket: AdmissionTicket): void {
    ticket.close = (reason) => connection.close(reason);
    this.tickets.set(connection.id, ticket);
    this.table.add(connection);
  }

  private acceptSocket(socket: Socket, local: ListenSpec, ticket: AdmissionTicket): void {
    if (local.protocol !== 'tcp' && local.protocol !== 'tls') throw new Error(`not a stream listener: ${local.protocol}`);
    const connection = new StreamConnection({
      id: this.newFlowId(local.protocol),
      protocol: local.protocol,
      socket,
      local,
      remote: { address: normalizeAddress(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
      delegate: this.connectionDelegate,
      logger: this.log,
      maxMessageSize: this.maxMessageSize,
      idleTimeoutMs: this.idleTimeoutMs,
      messageTimeoutMs: this.messageTimeoutMs,
    });
    this.adopt(connection, ticket);
    this.log.debug({ flow: connection.id, peer: `${local.protocol}:${formatHostPort(connection.flow.remote)}` }, 'accepted');
  }

  private acceptWebSocket(ws: WebSocket, remote: HostPort, local: ListenSpec, ticket: AdmissionTicket): void {
    if (local.protocol !== 'ws' && local.protocol !== 'wss') throw new Error(`not a WebSocket listener: ${local.protocol}`);
    if (this.state !== 'running') {
      ws.terminate();
      return;
    }
    const connection = new WsConnection({
      id: this.newFlowId(local.protocol),
      protocol: local.protocol,
      ws,
      local,
      remote,
      delegate: this.connectionDelegate,
      logger: this.log,
      idleTimeoutMs: this.idleTimeoutMs,
      pingIntervalMs: this.wsPingIntervalMs,
      messageTimeoutMs: this.messageTimeoutMs,
    });
    this.adopt(connection, ticket);
    this.log.debug({ flow: connection.id, peer: `${local.protocol}:${formatHostPort(remote)}` }, 'accepted');
  }
}

function udpFlow(local: HostPort, remote: HostPort): Flow {
  return { id: `udp:${formatHostPort(local)}>${formatHostPort(remote)}`, protocol: 'udp', local: { address: local.address, port: local.port }, remote };
}

/** The local `address:port` written in a UDP flow id, `udp:<local>><remote>`. */
function udpFlowLocal(flowId: string): string {
  if (!flowId.startsWith('udp:')) return '';
  const gt = flowId.indexOf('>');
  return gt === -1 ? '' : flowId.slice(4, gt);
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number, got ${value}`);
  return value;
}
