import type { Socket } from 'node:net';
import type { Logger } from '../log/index.js';
import { SipParseError, StreamFramer } from '../sip/index.js';
import { formatHostPort, normalizeAddress } from './address.js';
import type { Connection, ConnectionDelegate } from './connection.js';
import { TransportError, type Flow, type HostPort } from './types.js';

export interface StreamConnectionOptions {
  id: string;
  protocol: 'tcp' | 'tls';
  socket: Socket;
  /** The listener the flow belongs to; when absent, the socket's own local address once connected. */
  local: HostPort | undefined;
  remote: HostPort;
  delegate: ConnectionDelegate;
  logger: Logger;
  maxMessageSize: number;
  idleTimeoutMs: number;
  /**
   * A message must be complete this long after its first byte; an inbound connection must also deliver
   * its first message this long after it was accepted (TLS: after the handshake). Else it is closed.
   */
  messageTimeoutMs: number;
  /** Outbound only: the socket event that makes it usable, and how long to wait for it. */
  connecting?: { event: 'connect' | 'secureConnect'; timeoutMs: number };
}

/** RFC 5626 §4.4.1: the pong that answers a double-CRLF ping. */
const CRLF = Buffer.from('\r\n', 'latin1');

/**
 * Bytes a peer may leave unread before we give up on it: without a cap a client that stops reading would
 * make us buffer every message sent to it.
 */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/** Socket errors that are routine on the Internet and not worth more than a debug line. */
const ROUTINE_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNREFUSED']);

type State = 'connecting' | 'open' | 'closed';

/**
 * One TCP or TLS connection, inbound or outbound: frames the byte stream into SIP messages by
 * Content-Length (RFC 3261 §18.3), answers CRLF keep-alive pings (RFC 5626 §4.4.1) and closes itself after
 * idleTimeoutMs without a byte either way.
 */
export class StreamConnection implements Connection {
  readonly id: string;
  readonly protocol: 'tcp' | 'tls';
  private currentFlow: Flow;
  private readonly socket: Socket;
  private readonly framer: StreamFramer;
  private readonly delegate: ConnectionDelegate;
  private readonly log: Logger;
  private state: State;
  private readonly ready: Promise<void>;
  private settleReady: ((err?: Error) => void) | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;
  private readonly messageTimeoutMs: number;
  /** One timer per connection, re-armed with refresh(): no allocation per message. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private deadlineArmed = false;
  /** Inbound, nothing framed yet: the deadline counts from accept, not from the first byte. */
  private awaitingFirstMessage: boolean;

  constructor(options: StreamConnectionOptions) {
    this.id = options.id;
    this.protocol = options.protocol;
    this.socket = options.socket;
    this.delegate = options.delegate;
    this.log = options.logger;
    this.framer = new StreamFramer({ maxMessageSize: options.maxMessageSize });
    this.messageTimeoutMs = options.messageTimeoutMs;
    this.awaitingFirstMessage = options.connecting === undefined;
    this.currentFlow = Object.freeze({
      id: options.id,
      protocol: options.protocol,
      local: Object.freeze({ address: options.local?.address ?? '', port: options.local?.port ?? 0 }),
      remote: Object.freeze({ address: options.remote.address, port: options.remote.port }),
    });
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.setTimeout(options.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => this.close('idle timeout'));
    socket.on('error', (err) => this.onError(err));
    socket.on('close', () => this.finish(this.lastError ? `error: ${errorText(this.lastError)}` : 'peer closed'));

    const connecting = options.connecting;
    if (connecting) {
      this.state = 'connecting';
      this.ready = new Promise<void>((resolve, reject) => {
        this.settleReady = (err) => (err ? reject(err) : resolve());
      });
      this.ready.catch(() => undefined); // awaited by send(); a failure nobody waits for is not an unhandled rejection
      socket.once(connecting.event, () => this.onConnected(options.local === undefined));
      this.connectTimer = setTimeout(() => this.close(`connect timeout after ${connecting.timeoutMs} ms`), connecting.timeoutMs);
      this.connectTimer.unref();
    } else {
      this.state = 'open';
      this.ready = Promise.resolve();
      // A peer that connects and then says nothing (or dribbles bytes) holds a file descriptor for free.
      this.armDeadline();
    }
  }

  get flow(): Flow {
    return this.currentFlow;
  }

  get isOpen(): boolean {
    return this.state !== 'closed';
  }

  /** Resolves once an outbound connection is established; rejects with TRANSPORT_ERR_CONNECT if it never is. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  async send(data: Buffer): Promise<void> {
    if (this.state === 'connecting') await this.ready;
    if (this.state !== 'open') throw new TransportError('TRANSPORT_ERR_SEND', `${this.id} to ${this.peer} is closed`);
    if (this.socket.writableLength > MAX_UNSENT_BYTES) {
      this.log.info({ flow: this.id, peer: this.peer, unsent: this.socket.writableLength }, 'peer does not read, closing connection');
      this.close('send buffer full');
      throw new TransportError('TRANSPORT_ERR_SEND', `${this.id} to ${this.peer}: peer does not read`);
    }
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => {
        if (err) reject(new TransportError('TRANSPORT_ERR_SEND', `${this.id} to ${this.peer}: ${errorText(err)}`));
        else resolve();
      });
    });
  }

  close(reason: string): void {
    this.finish(reason);
  }

  private get peer(): string {
    return `${this.protocol}:${formatHostPort(this.currentFlow.remote)}`;
  }

  private onConnected(useSocketLocal: boolean): void {
    if (this.state !== 'connecting') return;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (useSocketLocal && this.socket.localAddress !== undefined && this.socket.localPort !== undefined) {
      this.currentFlow = Object.freeze({
        ...this.currentFlow,
        local: Object.freeze({ address: normalizeAddress(this.socket.localAddress), port: this.socket.localPort }),
      });
    }
    this.state = 'open';
    this.log.debug({ flow: this.id, peer: this.peer }, 'connected');
    this.settleReady?.();
    this.settleReady = undefined;
  }

  private onData(chunk: Buffer): void {
    if (this.state !== 'open') return;
    let items;
    try {
      items = this.framer.push(chunk);
    } catch (err) {
      const reason = err instanceof SipParseError ? err.message : errorText(err);
      this.log.warn({ flow: this.id, peer: this.peer, reason }, 'cannot frame SIP stream, closing connection');
      this.close(`framing error: ${reason}`);
      return;
    }
    let framed = false;
    for (const item of items) {
      if (this.state !== 'open') return; // closed from inside onMessage
      if (item.kind === 'message') {
        framed = true;
        this.delegate.onMessage(item.data, this);
      } else if (item.crlfs >= 2) this.socket.write(CRLF);
    }
    if (this.state !== 'open') return;
    // The whole-message deadline: a partial message left over starts (or keeps) the clock; a completed
    // one stops it. Keep-alive CRLFs alone do not reset it while the first message is awaited.
    if (framed) this.awaitingFirstMessage = false;
    if (this.framer.buffered > 0) {
      if (framed || !this.deadlineArmed) this.armDeadline();
    } else if (!this.awaitingFirstMessage) {
      this.deadlineArmed = false;
    }
  }

  private armDeadline(): void {
    this.deadlineArmed = true;
    if (this.deadlineTimer === undefined) {
      this.deadlineTimer = setTimeout(() => this.onDeadline(), this.messageTimeoutMs);
      this.deadlineTimer.unref();
    } else {
      this.deadlineTimer.refresh();
    }
  }

  private onDeadline(): void {
    if (!this.deadlineArmed || this.state !== 'open') return;
    const what = this.awaitingFirstMessage ? 'no complete SIP message after connecting' : 'SIP message not complete after its first byte';
    this.log.info({ flow: this.id, peer: this.peer, timeoutMs: this.messageTimeoutMs, buffered: this.framer.buffered }, `${what}, closing connection`);
    this.close(`message timeout: ${what} within ${this.messageTimeoutMs} ms`);
  }

  private onError(err: Error): void {
    this.lastError = err;
    if (this.state === 'closed') return;
    const code = (err as NodeJS.ErrnoException).code;
    const fields = { flow: this.id, peer: this.peer, err: errorText(err) };
    if (code !== undefined && ROUTINE_ERRORS.has(code)) this.log.debug(fields, 'connection error');
    else this.log.info(fields, 'connection error');
    this.finish(`error: ${errorText(err)}`);
  }

  /** The one way out: every close path comes here, and the delegate hears of it exactly once. */
  private finish(reason: string): void {
    if (this.state === 'closed') return;
    const established = this.state === 'open';
    this.state = 'closed';
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    clearTimeout(this.deadlineTimer);
    this.deadlineArmed = false;
    this.socket.setTimeout(0);
    this.socket.destroy();
    if (this.settleReady) {
      this.settleReady(new TransportError('TRANSPORT_ERR_CONNECT', `cannot connect to ${this.peer}: ${reason}`));
      this.settleReady = undefined;
    }
    this.log.debug({ flow: this.id, peer: this.peer, reason }, 'connection closed');
    this.delegate.onClosed(this, reason, established);
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}
