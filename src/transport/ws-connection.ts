import { isUtf8 } from 'node:buffer';
import { WebSocket, type RawData } from 'ws';
import type { Logger } from '../log/index.js';
import { formatHostPort } from './address.js';
import type { Connection, ConnectionDelegate } from './connection.js';
import { TransportError, type Flow, type HostPort } from './types.js';

export interface WsConnectionOptions {
  id: string;
  protocol: 'ws' | 'wss';
  ws: WebSocket;
  local: HostPort;
  /** The TCP peer (RFC 7118 §5: the flow is the WebSocket connection itself). */
  remote: HostPort;
  delegate: ConnectionDelegate;
  logger: Logger;
  idleTimeoutMs: number;
  pingIntervalMs: number;
  /** The first SIP message must arrive this long after the upgrade, else the connection is closed. */
  messageTimeoutMs: number;
}

/** The pong that answers a CRLF keep-alive ping (RFC 5626 §4.4.1, sent by SIP.js as "\r\n\r\n"). */
const CRLF = '\r\n';

/**
 * One SIP-over-WebSocket connection (RFC 7118): each text or binary frame is one SIP message. Dead peers
 * are found with WebSocket pings; the idle timeout counts SIP frames only, since our own pings and the
 * browser's automatic pongs would otherwise keep every connection alive forever.
 */
export class WsConnection implements Connection {
  readonly id: string;
  readonly protocol: 'ws' | 'wss';
  readonly flow: Flow;
  private readonly ws: WebSocket;
  private readonly delegate: ConnectionDelegate;
  private readonly log: Logger;
  private closed = false;
  private answeredPing = true;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly idleTimer: NodeJS.Timeout;
  /** Until the first SIP frame: a WebSocket that never carries SIP only holds a file descriptor. */
  private firstMessageTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;

  constructor(options: WsConnectionOptions) {
    this.id = options.id;
    this.protocol = options.protocol;
    this.ws = options.ws;
    this.delegate = options.delegate;
    this.log = options.logger;
    this.flow = Object.freeze({
      id: options.id,
      protocol: options.protocol,
      local: Object.freeze({ address: options.local.address, port: options.local.port }),
      remote: Object.freeze({ address: options.remote.address, port: options.remote.port }),
    });
    const ws = this.ws;
    ws.on('message', (data: RawData) => this.onFrame(toBuffer(data)));
    ws.on('pong', () => {
      this.answeredPing = true;
    });
    ws.on('error', (err) => {
      this.lastError = err;
      if (!this.closed) this.log.debug({ flow: this.id, peer: this.peer, err: err.message }, 'WebSocket error');
    });
    ws.on('close', (code: number) => {
      this.finish(this.lastError ? `error: ${this.lastError.message}` : `peer closed (WebSocket close ${code})`);
    });
    this.pingTimer = setInterval(() => this.heartbeat(), options.pingIntervalMs);
    this.pingTimer.unref();
    this.idleTimer = setTimeout(() => this.onIdle(), options.idleTimeoutMs);
    this.idleTimer.unref();
    const firstWithin = options.messageTimeoutMs;
    this.firstMessageTimer = setTimeout(() => {
      this.log.info({ flow: this.id, peer: this.peer, timeoutMs: firstWithin }, 'no SIP message after the WebSocket upgrade, closing connection');
      this.finish(`message timeout: no SIP message within ${firstWithin} ms of the upgrade`);
    }, firstWithin);
    this.firstMessageTimer.unref();
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  send(data: Buffer): Promise<void> {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new TransportError('TRANSPORT_ERR_FLOW_GONE', `${this.id} to ${this.peer} is closed`));
    }
    this.idleTimer.refresh();
    // RFC 7118 §5.1: SIP messages go in text frames when they are UTF-8, binary frames otherwise.
    const binary = !isUtf8(data);
    return new Promise((resolve, reject) => {
      this.ws.send(data, { binary }, (err) => {
        if (err) reject(new TransportError('TRANSPORT_ERR_SEND', `${this.id} to ${this.peer}: ${err.message}`));
        else resolve();
      });
    });
  }

  close(reason: string): void {
    this.finish(reason);
  }

  private get peer(): string {
    return `${this.protocol}:${formatHostPort(this.flow.remote)}`;
  }

  private onFrame(data: Buffer): void {
    if (this.closed) return;
    this.idleTimer.refresh();
    if (data.length === 0) return;
    const crlfs = crlfPairs(data);
    if (crlfs >= 0) {
      // A keep-alive frame; two or more CRLFs are a ping, one is a pong.
      if (crlfs >= 2) this.ws.send(CRLF, (err) => err && this.log.debug({ flow: this.id, err: err.message }, 'keep-alive pong not sent'));
      return;
    }
    if (this.firstMessageTimer !== undefined) {
      clearTimeout(this.firstMessageTimer);
      this.firstMessageTimer = undefined;
    }
    this.delegate.onMessage(data, this);
  }

  /** Dead-peer detection: a peer that did not answer the previous ping by now is gone. */
  private heartbeat(): void {
    if (this.closed) return;
    if (!this.answeredPing) {
      this.log.debug({ flow: this.id, peer: this.peer }, 'no WebSocket pong, terminating');
      this.finish('no answer to WebSocket ping');
      return;
    }
    this.answeredPing = false;
    try {
      this.ws.ping();
    } catch (err) {
      this.finish(`error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private onIdle(): void {
    this.log.debug({ flow: this.id, peer: this.peer }, 'idle WebSocket closed');
    this.finish('idle timeout');
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.firstMessageTimer);
    this.ws.terminate();
    this.log.debug({ flow: this.id, peer: this.peer, reason }, 'connection closed');
    this.delegate.onClosed(this, reason, true);
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The number of CRLF pairs when the frame holds nothing else (and at least one), else -1. */
function crlfPairs(data: Buffer): number {
  if (data.length === 0 || data.length % 2 !== 0) return -1;
  for (let i = 0; i < data.length; i += 2) {
    if (data[i] !== 0x0d || data[i + 1] !== 0x0a) return -1;
  }
  return data.length / 2;
}
