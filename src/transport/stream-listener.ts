import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../log/index.js';
import type { AdmissionTicket } from './admission.js';
import { formatHostPort, normalizeAddress } from './address.js';
import { type Listener, type ListenerDelegate, admitAccepted } from './listener.js';
import type { ListenSpec } from './types.js';

export interface StreamListenerOptions {
  spec: ListenSpec & { protocol: 'tcp' | 'tls' };
  delegate: ListenerDelegate;
  logger: Logger;
  /** Required for TLS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** TLS: how long from TCP accept to a completed handshake before the socket is destroyed. */
  handshakeTimeoutMs: number;
}

/** A TLS connection accepted and admitted, whose handshake has not completed yet. */
interface Handshaking {
  ticket: AdmissionTicket;
  timer: NodeJS.Timeout;
}

/**
 * A TCP or TLS server socket. Every accepted TCP connection is offered to the delegate's admit before
 * any byte is read (TLS included: the TLS server only sees admitted sockets); TLS handshakes have
 * handshakeTimeoutMs to complete. Hands every admitted (and, for TLS, handshaken) socket to the delegate.
 */
export class StreamListener implements Listener {
  private spec: ListenSpec;
  private readonly delegate: ListenerDelegate;
  private readonly log: Logger;
  /** The listening socket: plain TCP even for TLS, so that admission comes before the handshake. */
  private readonly server: Server;
  private readonly tlsServer: TlsServer | undefined;
  private readonly handshakeTimeoutMs: number;
  /** Raw sockets from accept until close, so that stop() also ends TLS handshakes still in progress. */
  private readonly sockets = new Set<Socket>();
  /** TLS handshakes in progress by `address|port` of the peer (the TLSSocket reports the raw socket's). */
  private readonly handshaking = new Map<string, Handshaking>();
  private started = false;

  constructor(options: StreamListenerOptions) {
    this.spec = { ...options.spec };
    this.delegate = options.delegate;
    this.log = options.logger;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs;
    if (options.spec.protocol === 'tls') {
      if (!options.tls) throw new TypeError('a tls listener needs a certificate and key');
      const server = createTlsServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: options.handshakeTimeoutMs });
      server.on('secureConnection', (socket: TLSSocket) => this.onSecure(socket));
      server.on('tlsClientError', (err, socket) => {
        this.log.debug({ peer: peerOf(socket), err: err.message }, 'TLS handshake failed');
        socket.destroy();
      });
      this.tlsServer = server;
    }
    this.server = createNetServer((socket) => this.onConnection(socket));
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
    if (!this.server.listening) {
      for (const s of this.sockets) s.destroy();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  private onConnection(socket: Socket): void {
    const admitted = admitAccepted(socket, this.spec, this.delegate);
    if (admitted === undefined) return;
    const { remote, ticket } = admitted;
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.delegate.release(ticket);
    });
    if (this.tlsServer === undefined) {
      this.delegate.onSocket(socket, this.spec, ticket);
      return;
    }
    const key = `${remote.address}|${remote.port}`;
    const timer = setTimeout(() => {
      this.log.debug({ peer: formatHostPort(remote), timeoutMs: this.handshakeTimeoutMs }, 'TLS handshake not completed in time, closing');
      socket.destroy();
    }, this.handshakeTimeoutMs);
    timer.unref();
    this.handshaking.set(key, { ticket, timer });
    socket.once('close', () => {
      clearTimeout(timer);
      if (this.handshaking.get(key)?.ticket === ticket) this.handshaking.delete(key);
    });
    this.tlsServer.emit('connection', socket);
  }

  private onSecure(socket: TLSSocket): void {
    const key = socket.remoteAddress === undefined ? '' : `${normalizeAddress(socket.remoteAddress)}|${socket.remotePort ?? 0}`;
    const pending = this.handshaking.get(key);
    if (pending === undefined) {
      socket.destroy(); // closed meanwhile
      return;
    }
    this.handshaking.delete(key);
    clearTimeout(pending.timer);
    this.delegate.onSocket(socket, this.spec, pending.ticket);
  }
}

function peerOf(socket: Socket): string {
  return socket.remoteAddress === undefined ? 'unknown' : formatHostPort({ address: normalizeAddress(socket.remoteAddress), port: socket.remotePort ?? 0 });
}
