import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import type { Logger } from '../log/index.js';
import type { AdmissionTicket } from './admission.js';
import { formatHostPort, normalizeAddress } from './address.js';
import { type Listener, type ListenerDelegate, admitAccepted } from './listener.js';
import type { ListenSpec } from './types.js';

export interface WsListenerOptions {
  spec: ListenSpec & { protocol: 'ws' | 'wss' };
  delegate: ListenerDelegate;
  logger: Logger;
  maxMessageSize: number;
  /** Required for WSS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** How long from TCP accept to a completed WebSocket upgrade (TLS handshake included) before the socket is destroyed. */
  handshakeTimeoutMs: number;
}

/** A connection accepted and admitted that is not a WebSocket yet. */
interface Upgrading {
  ticket: AdmissionTicket;
  timer: NodeJS.Timeout;
}

/** RFC 7118 §4.1: the WebSocket subprotocol that carries SIP. */
const SIP_SUBPROTOCOL = 'sip';

/**
 * An HTTP (WS) or HTTPS (WSS) server that upgrades to WebSocket only when the client offers the `sip`
 * subprotocol (RFC 7118 §4.1); everything else gets an HTTP error and never becomes a flow. The listening
 * socket is plain TCP: every accepted connection is offered to the delegate's admit before any byte is
 * read, and has handshakeTimeoutMs to become a WebSocket (TLS handshake and HTTP upgrade included).
 */
export class WsListener implements Listener {
  private spec: ListenSpec;
  private readonly delegate: ListenerDelegate;
  private readonly log: Logger;
  /** Never listens: it sees only the admitted sockets the TCP server hands it. */
  private readonly server: HttpServer;
  private readonly front: NetServer;
  private readonly wss: WebSocketServer;
  private readonly handshakeTimeoutMs: number;
  /** Connections not upgraded yet, by `address|port` of the peer (what req.socket reports, TLS or not). */
  private readonly upgrading = new Map<string, Upgrading>();
  /** Raw sockets from accept until close, so that stop() ends handshakes and upgraded sockets alike. */
  private readonly sockets = new Set<Socket>();
  private started = false;

  constructor(options: WsListenerOptions) {
    this.spec = { ...options.spec };
    this.delegate = options.delegate;
    this.log = options.logger;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs;
    if (options.spec.protocol === 'wss') {
      if (!options.tls) throw new TypeError('a wss listener needs a certificate and key');
      const server = createHttpsServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: options.handshakeTimeoutMs });
      server.on('tlsClientError', (err, socket) => {
        this.log.debug({ peer: peerOf(socket), err: err.message }, 'TLS handshake failed');
        socket.destroy();
      });
      this.server = server;
    } else {
      this.server = createHttpServer();
    }
    this.front = createNetServer((socket) => this.onConnection(socket));
    // A plain HTTP request on a SIP WebSocket port.
    this.server.on('request', (_req, res) => {
      res.writeHead(426, { Upgrade: 'websocket', 'Content-Type': 'text/plain', Connection: 'close' });
      res.end('WebSocket with the sip subprotocol required (RFC 7118)\n');
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: options.maxMessageSize,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(SIP_SUBPROTOCOL) ? SIP_SUBPROTOCOL : false),
    });
    this.wss.on('error', (err) => this.log.warn({ err: err.message }, 'WebSocket server error'));
  }

  get local(): ListenSpec {
    return this.spec;
  }

  start(): Promise<ListenSpec> {
    if (this.started) throw new Error(`listener ${this.spec.protocol}:${formatHostPort(this.spec)} already started`);
    this.started = true;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new Error(`cannot listen on ${this.spec.protocol}:${formatHostPort(this.spec)}: ${err.message}`));
      };
      this.front.once('error', onError);
      this.front.listen({ host: this.spec.address, port: this.spec.port }, () => {
        this.front.off('error', onError);
        this.front.on('error', (err) => this.log.warn({ listen: `${this.spec.protocol}:${formatHostPort(this.spec)}`, err: err.message }, 'server socket error'));
        const bound = this.front.address();
        if (bound && typeof bound === 'object') {
          this.spec = { protocol: this.spec.protocol, address: normalizeAddress(bound.address), port: bound.port };
        }
        resolve(this.spec);
      });
    });
  }

  stop(): Promise<void> {
    const closed = this.front.listening ? new Promise<void>((resolve) => this.front.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    this.wss.close();
    return closed;
  }

  private onConnection(socket: Socket): void {
    const admitted = admitAccepted(socket, this.spec, this.delegate);
    if (admitted === undefined) return;
    const { remote, ticket } = admitted;
    const key = `${remote.address}|${remote.port}`;
    const timer = setTimeout(() => {
      this.log.debug({ peer: formatHostPort(remote), timeoutMs: this.handshakeTimeoutMs }, 'WebSocket upgrade not completed in time, closing');
      socket.destroy();
    }, this.handshakeTimeoutMs);
    timer.unref();
    this.upgrading.set(key, { ticket, timer });
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      clearTimeout(timer);
      if (this.upgrading.get(key)?.ticket === ticket) this.upgrading.delete(key);
      this.delegate.release(ticket);
    });
    this.server.emit('connection', socket);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const remoteAddress = req.socket.remoteAddress;
    const remotePort = req.socket.remotePort;
    if (remoteAddress === undefined || remotePort === undefined) {
      socket.destroy();
      return;
    }
    const remote = { address: normalizeAddress(remoteAddress), port: remotePort };
    const key = `${remote.address}|${remote.port}`;
    const pending = this.upgrading.get(key);
    if (pending === undefined) {
      socket.destroy(); // timed out or shed meanwhile
      return;
    }
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(SIP_SUBPROTOCOL)) {
      this.log.debug({ peer: formatHostPort(remote), offered: offered.filter((p) => p !== '') }, 'WebSocket without the sip subprotocol refused');
      refuse(socket, 400, 'Bad Request', 'the sip WebSocket subprotocol is required (RFC 7118)');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.upgrading.delete(key);
      clearTimeout(pending.timer);
      this.delegate.onWebSocket(ws, remote, this.spec, pending.ticket);
    });
  }
}

function refuse(socket: Duplex, status: number, reason: string, text: string): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

function peerOf(socket: Socket): string {
  return socket.remoteAddress === undefined ? 'unknown' : formatHostPort({ address: normalizeAddress(socket.remoteAddress), port: socket.remotePort ?? 0 });
}
