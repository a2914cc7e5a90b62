import { createSocket, type Socket as DgramSocket, type RemoteInfo } from 'node:dgram';
import type { Logger } from '../log/index.js';
import { addressFamily, formatHostPort, normalizeAddress } from './address.js';
import type { Listener, ListenerDelegate } from './listener.js';
import { isStun, stunBindingResponse } from './stun.js';
import { TransportError, type ListenSpec } from './types.js';

export interface UdpListenerOptions {
  spec: ListenSpec;
  delegate: ListenerDelegate;
  logger: Logger;
  maxMessageSize: number;
}

/** One UDP socket (udp4 or udp6 by the listen address): receives datagrams and sends from the same port. */
/** Socket buffer size requested for UDP listeners (bench/README.md: drops at 500+ calls/s with the default). */
const UDP_BUFFER_BYTES = 4 * 1024 * 1024;

export class UdpListener implements Listener {
  private spec: ListenSpec;
  private readonly delegate: ListenerDelegate;
  private readonly log: Logger;
  private readonly maxMessageSize: number;
  private socket: DgramSocket | undefined;

  constructor(options: UdpListenerOptions) {
    this.spec = { ...options.spec };
    this.delegate = options.delegate;
    this.log = options.logger;
    this.maxMessageSize = options.maxMessageSize;
  }

  get local(): ListenSpec {
    return this.spec;
  }

  get family(): 4 | 6 {
    return addressFamily(this.spec.address);
  }

  start(): Promise<ListenSpec> {
    if (this.socket) throw new Error(`UDP listener ${formatHostPort(this.spec)} already started`);
    // A bigger receive queue absorbs event-loop pauses (garbage collection) under load instead of dropping
    // datagrams, which SIP over UDP turns into retransmissions and failed calls. The kernel caps it at
    // net.core.rmem_max (4 MiB here).
    const socket = createSocket({ type: this.family === 6 ? 'udp6' : 'udp4', recvBufferSize: UDP_BUFFER_BYTES, sendBufferSize: UDP_BUFFER_BYTES });
    this.socket = socket;
    return new Promise((resolve, reject) => {
      const onBindError = (err: Error): void => {
        this.socket = undefined;
        socket.close();
        reject(new Error(`cannot listen on udp:${formatHostPort(this.spec)}: ${err.message}`));
      };
      socket.once('error', onBindError);
      socket.bind({ address: this.spec.address, port: this.spec.port }, () => {
        socket.off('error', onBindError);
        socket.on('error', (err) => this.log.warn({ listen: `udp:${formatHostPort(this.spec)}`, err: err.message }, 'UDP socket error'));
        socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
        const bound = socket.address();
        this.spec = { protocol: 'udp', address: normalizeAddress(bound.address), port: bound.port };
        resolve(this.spec);
      });
    });
  }

  /** Sends one datagram; rejects with TransportError('TRANSPORT_ERR_SEND') when the kernel refuses it. */
  send(data: Buffer, address: string, port: number): Promise<void> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new TransportError('TRANSPORT_ERR_SEND', `UDP listener ${formatHostPort(this.spec)} is not running`));
    return new Promise((resolve, reject) => {
      socket.send(data, port, address, (err) => {
        if (err) reject(new TransportError('TRANSPORT_ERR_SEND', `UDP send to ${formatHostPort({ address, port })} failed: ${err.message}`));
        else resolve();
      });
    });
  }

  stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const remote = { address: normalizeAddress(rinfo.address), port: rinfo.port };
    if (!this.delegate.admitDatagram(remote, this.spec)) return; // banned source: not even a STUN answer
    if (msg.length > this.maxMessageSize) {
      this.log.debug({ peer: formatHostPort(remote), bytes: msg.length, max: this.maxMessageSize }, 'oversize datagram dropped');
      return;
    }
    if (isCrlfOnly(msg)) return; // RFC 5626 §3.5.1 CRLF keep-alive over UDP: nothing to answer
    if (isStun(msg)) {
      const response = stunBindingResponse(msg, remote);
      if (response) this.socket?.send(response, rinfo.port, rinfo.address, (err) => {
        if (err) this.log.debug({ peer: formatHostPort(remote), err: err.message }, 'STUN response not sent');
      });
      return;
    }
    this.delegate.onDatagram(msg, remote, this.spec);
  }
}

function isCrlfOnly(data: Buffer): boolean {
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b !== 0x0d && b !== 0x0a) return false;
  }
  return true;
}
