import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import type { Logger } from '../log/index.js';
import { formatHostPort, normalizeAddress } from './address.js';
import type { Listener, ListenerDelegate } from './listener.js';
import type { ListenSpec } from './types.js';

export interface WsListenerOptions {
  spec: ListenSpec & { protocol: 'ws' | 'wss' };
  delegate: ListenerDelegate;
  logger: Logger;
  maxMessageSize: number;
  /** Required for WSS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** RFC 7118 §4.1: the WebSocket subprotocol that carries SIP. */
const SIP_SUBPROTOCOL = 'sip';

/**
 * An HTTP (WS) or HTTPS (WSS) server that upgrades to WebSocket only when the client offers the `sip`
 * subprotocol (RFC 7118 §4.1); everything else gets an HTTP error and never becomes a flow.
 */
export class WsListener implements Listener {
  private spec: ListenSpec;
  private readonly delegate: ListenerDelegate;
  private readonly log: Logger;
  private readonly server: HttpServer;
  private readonly wss: WebSocketServer;
  /** Raw sockets from accept until close, so that stop() ends handshakes and upgraded sockets alike. */
  private readonly sockets = new Set<Socket>();
  private started = false;

  constructor(options: WsListenerOptions) {
    this.spec = { ...options.spec };
    this.delegate = options.delegate;
    this.log = options.logger;
    if (options.spec.protocol === 'wss') {
      if (!options.tls) throw new TypeError('a wss listener needs a certificate and key');
      const server = createHttpsServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: 10_000 });
      server.on('tlsClientError', (err, socket) => {
        this.log.debug({ peer: peerOf(socket), err: err.message }, 'TLS handshake failed');
        socket.destroy();
      });
      this.server = server;
    } else {
      this.server = createHttpServer();
    }
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    });
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
      this.server.once('error', onError);
      this.server.listen({ host: this.spec.address, port: this.spec.port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.log.warn({ listen: `${this.spec.protocol}:${formatHostPort(this.spec)}`, err: err.message }, 'server socket error'));
        const bound = this.server.address();
        if (bound && typeof bound === 'object') {
          this.spec = { protocol: this.spec.protocol, address: normalizeAddress(bound.address), port: bound.port };
        }
        resolve(this.spec);
      });
    });
  }

  stop(): Promise<void> {
    const closed = this.server.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    this.wss.close();
    return closed;
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const remoteAddress = req.socket.remoteAddress;
    const remotePort = req.socket.remotePort;
    if (remoteAddress === undefined || remotePort === undefined) {
      socket.destroy();
      return;
    }
    const remote = { address: normalizeAddress(remoteAddress), port: remotePort };
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!offered.includes(SIP_SUBPROTOCOL)) {
      this.log.debug({ peer: formatHostPort(remote), offered: offered.filter((p) => p !== '') }, 'WebSocket without the sip subprotocol refused');
      refuse(socket, 400, 'Bad Request', 'the sip WebSocket subprotocol is required (RFC 7118)');
      return;
    }
    if (!this.delegate.admit(remote, this.spec)) {
      refuse(socket, 503, 'Service Unavailable', 'too many connections');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.delegate.onWebSocket(ws, remote, this.spec));
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
