import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../log/index.js';
import { formatHostPort, normalizeAddress } from './address.js';
import type { Listener, ListenerDelegate } from './listener.js';
import type { ListenSpec } from './types.js';

export interface StreamListenerOptions {
  spec: ListenSpec & { protocol: 'tcp' | 'tls' };
  delegate: ListenerDelegate;
  logger: Logger;
  /** Required for TLS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/** A TCP or TLS server socket; hands every accepted (and, for TLS, handshaken) socket to the delegate. */
export class StreamListener implements Listener {
  private spec: ListenSpec;
  private readonly delegate: ListenerDelegate;
  private readonly log: Logger;
  private readonly server: Server;
  /** Raw sockets from accept until close, so that stop() also ends TLS handshakes still in progress. */
  private readonly sockets = new Set<Socket>();
  private started = false;

  constructor(options: StreamListenerOptions) {
    this.spec = { ...options.spec };
    this.delegate = options.delegate;
    this.log = options.logger;
    if (options.spec.protocol === 'tls') {
      if (!options.tls) throw new TypeError('a tls listener needs a certificate and key');
      const server = createTlsServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: 10_000 });
      server.on('secureConnection', (socket: TLSSocket) => this.accept(socket));
      server.on('tlsClientError', (err, socket) => {
        this.log.debug({ peer: peerOf(socket), err: err.message }, 'TLS handshake failed');
        socket.destroy();
      });
      this.server = server;
    } else {
      this.server = createNetServer((socket) => this.accept(socket));
    }
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      // Errors on a socket still in the TLS handshake have no other listener yet.
      socket.on('error', () => undefined);
    });
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

  private accept(socket: Socket): void {
    if (socket.remoteAddress === undefined || socket.remotePort === undefined) {
      socket.destroy(); // already gone
      return;
    }
    const remote = { address: normalizeAddress(socket.remoteAddress), port: socket.remotePort };
    if (!this.delegate.admit(remote, this.spec)) {
      socket.destroy();
      return;
    }
    this.delegate.onSocket(socket, this.spec);
  }
}

function peerOf(socket: Socket): string {
  return socket.remoteAddress === undefined ? 'unknown' : formatHostPort({ address: normalizeAddress(socket.remoteAddress), port: socket.remotePort ?? 0 });
}
