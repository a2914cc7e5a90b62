/**
 * One WebSocket to Janus and its transactions, shared by the Janus API client (subprotocol `janus-protocol`) and the
 * Admin API client (`janus-admin-protocol`). Every request carries a random `transaction`; Janus echoes it in the
 * answer, so answers may come in any order. A request ends on its answer, its timeout, or the socket's close; a
 * message that answers nothing pending goes to `onMessage` (events, webrtcup, hangup, session timeouts …).
 */
import { randomBytes } from 'node:crypto';
import { WebSocket, type RawData } from 'ws';
import type { Logger } from '../../src/log/index.js';
import { JanusError } from './janus-error.js';
import type { JanusClosedInfo, JanusMessage } from './types.js';

export interface JanusSocketOptions {
  url: string;
  protocol: 'janus-protocol' | 'janus-admin-protocol';
  /** Also the time the WebSocket handshake may take. */
  timeoutMs: number;
  logger: Logger;
  onMessage: (message: JanusMessage) => void;
  onClose: (info: JanusClosedInfo) => void;
}

export interface SendOptions {
  timeoutMs: number;
  /**
   * An async plugin request: Janus first answers `ack`, then sends an `event` with the same transaction, which is
   * the answer. Without it an `ack` is the answer (keepalive, trickle).
   */
  untilEvent?: boolean;
}

interface Pending {
  request: string;
  untilEvent: boolean;
  resolve: (message: JanusMessage) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class JanusSocket {
  readonly url: string;
  private readonly ws: WebSocket;
  private readonly log: Logger;
  private readonly pending = new Map<string, Pending>();
  private readonly onMessage: (message: JanusMessage) => void;
  private readonly onClose: (info: JanusClosedInfo) => void;
  private closing = false;
  private closedInfo: JanusClosedInfo | undefined;
  private readonly closedPromise: Promise<void>;

  private constructor(ws: WebSocket, options: JanusSocketOptions) {
    this.url = options.url;
    this.ws = ws;
    this.log = options.logger;
    this.onMessage = options.onMessage;
    this.onClose = options.onClose;
    ws.on('message', (data: RawData, isBinary: boolean) => this.receive(data, isBinary));
    this.closedPromise = new Promise((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        this.closed({ code, reason: reason.toString('utf8'), local: this.closing });
        resolve();
      });
    });
    // the close that follows an error does the cleanup; an unhandled 'error' would throw
    ws.on('error', (err: Error) => this.log.warn({ url: this.url, err: err.message }, 'janus websocket error'));
  }

  /** Opens the WebSocket; rejects with JANUS_ERR_CONNECT when it does not open within `timeoutMs`. */
  static open(options: JanusSocketOptions): Promise<JanusSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(options.url, options.protocol, { handshakeTimeout: options.timeoutMs });
      const fail = (err: Error): void => {
        ws.removeAllListeners();
        ws.on('error', () => {});
        ws.terminate();
        reject(new JanusError('JANUS_ERR_CONNECT', `cannot open ${options.protocol} to ${options.url}: ${err.message}`, { cause: err }));
      };
      ws.once('error', fail);
      ws.once('unexpected-response', (_req, res) => fail(new Error(`HTTP ${res.statusCode ?? '?'} to the upgrade`)));
      ws.once('open', () => {
        ws.removeListener('error', fail);
        // Janus answers an unknown subprotocol without one: then its messages would not be the API's
        if (ws.protocol !== options.protocol) {
          fail(new Error(`the server chose subprotocol "${ws.protocol}"`));
          return;
        }
        resolve(new JanusSocket(ws, options));
      });
    });
  }

  get isClosed(): boolean {
    return this.closedInfo !== undefined || this.closing;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends `body` with a fresh transaction and resolves with Janus's answer. Rejects with JanusError:
   * JANUS_ERR_REFUSED on `janus: error`, JANUS_ERR_TIMEOUT, JANUS_ERR_CLOSED.
   */
  send(body: Record<string, unknown> & { janus: string }, options: SendOptions): Promise<JanusMessage> {
    const request = typeof body.body === 'object' && body.body !== null && typeof (body.body as { request?: unknown }).request === 'string'
      ? `${body.janus}:${(body.body as { request: string }).request}`
      : body.janus;
    if (this.isClosed) return Promise.reject(new JanusError('JANUS_ERR_CLOSED', `janus ${request}: the connection to ${this.url} is closed`, { request }));
    let transaction = randomBytes(12).toString('base64url');
    while (this.pending.has(transaction)) transaction = randomBytes(12).toString('base64url');
    return new Promise<JanusMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(transaction);
        reject(new JanusError('JANUS_ERR_TIMEOUT', `janus ${request}: no answer from ${this.url} within ${options.timeoutMs} ms`, { request }));
      }, options.timeoutMs);
      this.pending.set(transaction, { request, untilEvent: options.untilEvent === true, resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...body, transaction }), (err) => {
        if (err === undefined || err === null) return;
        const p = this.pending.get(transaction);
        if (p === undefined) return;
        this.settle(transaction, p);
        p.reject(new JanusError('JANUS_ERR_CLOSED', `janus ${request}: could not send to ${this.url}: ${err.message}`, { request, cause: err }));
      });
    });
  }

  /** Closes the WebSocket; pending requests reject with JANUS_ERR_CLOSED. Resolves once it is closed. */
  close(): Promise<void> {
    if (this.closedInfo === undefined && !this.closing) {
      this.closing = true;
      this.ws.close(1000, 'client closed');
      // a peer that does not finish the closing handshake is cut off
      const cut = setTimeout(() => this.ws.terminate(), 2000);
      cut.unref();
      void this.closedPromise.then(() => clearTimeout(cut));
    }
    return this.closedPromise;
  }

  private receive(data: RawData, isBinary: boolean): void {
    let message: JanusMessage;
    try {
      if (isBinary) throw new Error('binary frame');
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { janus?: unknown }).janus !== 'string') throw new Error('no "janus" member');
      message = parsed as JanusMessage;
    } catch (err) {
      this.log.warn({ url: this.url, err: (err as Error).message }, 'janus: a message that is not Janus JSON was dropped');
      return;
    }
    const transaction = message.transaction;
    const p = transaction === undefined ? undefined : this.pending.get(transaction);
    if (p === undefined || transaction === undefined) {
      this.onMessage(message);
      return;
    }
    if (message.janus === 'ack' && p.untilEvent) return; // the event with the same transaction is the answer
    this.settle(transaction, p);
    if (message.janus === 'error') {
      const code = typeof message.error?.code === 'number' ? message.error.code : undefined;
      const reason = typeof message.error?.reason === 'string' ? message.error.reason : undefined;
      p.reject(new JanusError('JANUS_ERR_REFUSED', `janus ${p.request} refused: ${code ?? '?'} ${reason ?? ''}`.trimEnd(), { request: p.request, janusCode: code, reason }));
      return;
    }
    p.resolve(message);
  }

  private settle(transaction: string, p: Pending): void {
    clearTimeout(p.timer);
    this.pending.delete(transaction);
  }

  private closed(info: JanusClosedInfo): void {
    this.closedInfo = info;
    for (const [transaction, p] of [...this.pending]) {
      this.settle(transaction, p);
      p.reject(new JanusError('JANUS_ERR_CLOSED', `janus ${p.request}: the connection to ${this.url} closed (${info.code}${info.reason === '' ? '' : ` ${info.reason}`})`, { request: p.request }));
    }
    this.onClose(info);
  }
}
