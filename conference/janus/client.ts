/**
 * A client of the Janus WebSocket API (subprotocol `janus-protocol`): one connection, its sessions (`create`,
 * keepalive, `destroy`) and their plugin handles (`attach`, `message`, `detach`). Janus ties a session to the
 * transport that created it and destroys it when that connection goes (reclaim_session_timeout 0), so the client owns
 * its sessions, and a session its handles: closing the client ends them all, one way.
 *
 * token (Janus token_auth) and apisecret go with every request, as Janus checks them on every request but info/ping.
 */
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../../src/log/index.js';
import { emitSafely } from './emit-safely.js';
import { JanusError } from './janus-error.js';
import { JanusSocket } from './janus-socket.js';
import { JanusSession, type SessionChannel } from './session.js';
import type { JanusClientEvents, JanusClientOptions, JanusClosedInfo, JanusMessage, JanusRequestOptions, JanusServerInfo } from './types.js';

const DEFAULT_TIMEOUT_MS = 10_000;
/** janus.js's default: well under Janus's default session_timeout of 60 s, even with a slow round trip. */
const DEFAULT_KEEPALIVE_MS = 25_000;

export class JanusClient extends EventEmitter<JanusClientEvents> {
  readonly url: string;
  private readonly socket: JanusSocket;
  private readonly log: Logger;
  private readonly token: string | undefined;
  private readonly apisecret: string | undefined;
  private readonly timeoutMs: number;
  private readonly keepaliveMs: number;
  private readonly sessions = new Map<number, JanusSession>();
  private closedInfo: JanusClosedInfo | undefined;

  private constructor(socket: JanusSocket, options: JanusClientOptions, log: Logger, timeoutMs: number, keepaliveMs: number) {
    super();
    this.url = options.url;
    this.socket = socket;
    this.log = log;
    this.token = options.token;
    this.apisecret = options.apisecret;
    this.timeoutMs = timeoutMs;
    this.keepaliveMs = keepaliveMs;
  }

  /** Opens the WebSocket to Janus; rejects with JANUS_ERR_CONNECT. */
  static async connect(options: JanusClientOptions): Promise<JanusClient> {
    if (typeof options?.url !== 'string' || !/^wss?:\/\//.test(options.url)) throw new TypeError('JanusClient: url must be a ws:// or wss:// URL');
    const timeoutMs = positive(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
    const keepaliveMs = options.keepaliveMs === 0 ? 0 : positive(options.keepaliveMs, DEFAULT_KEEPALIVE_MS, 'keepaliveMs');
    const log = options.logger ?? silentLogger();
    let client: JanusClient | undefined;
    // messages cannot arrive before open resolves (nothing was sent yet), so `client` is set when they do
    const socket = await JanusSocket.open({
      url: options.url,
      protocol: 'janus-protocol',
      timeoutMs,
      logger: log,
      onMessage: (message) => client?.route(message),
      onClose: (info) => client?.closed(info),
    });
    client = new JanusClient(socket, options, log, timeoutMs, keepaliveMs);
    return client;
  }

  get isClosed(): boolean {
    return this.closedInfo !== undefined || this.socket.isClosed;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.socket.inFlight;
  }

  /** `info`: Janus's version, settings and loaded plugins and transports (needs no session, nor a token). */
  async info(options: JanusRequestOptions = {}): Promise<JanusServerInfo> {
    const reply = await this.socket.send({ janus: 'info' }, { timeoutMs: options.timeoutMs ?? this.timeoutMs });
    if (reply.janus !== 'server_info') throw new JanusError('JANUS_ERR_REPLY', `janus info: answered "${reply.janus}"`, { request: 'info' });
    return reply as unknown as JanusServerInfo;
  }

  /** `create`: a new session, kept alive every keepaliveMs until it is destroyed. */
  async createSession(options: JanusRequestOptions = {}): Promise<JanusSession> {
    const reply = await this.request({ janus: 'create' }, options);
    const id = reply.data?.id;
    if (typeof id !== 'number') throw new JanusError('JANUS_ERR_REPLY', 'janus create: the answer has no session id', { request: 'create' });
    const session = new JanusSession(id, this.channel(), () => this.sessions.delete(id));
    this.sessions.set(id, session);
    return session;
  }

  /** The live sessions of this connection. */
  get sessionIds(): number[] {
    return [...this.sessions.keys()];
  }

  /**
   * Closes the connection: pending requests reject with JANUS_ERR_CLOSED, sessions and handles end (Janus destroys
   * them with the connection), `closed` is emitted. Resolves once the socket is closed.
   */
  close(): Promise<void> {
    return this.socket.close();
  }

  /** Sends a Janus API request with the credentials; the session and handle use it through their channel. */
  private request(body: Record<string, unknown> & { janus: string }, options: JanusRequestOptions & { untilEvent?: boolean } = {}): Promise<JanusMessage> {
    const withAuth: Record<string, unknown> & { janus: string } = { ...body };
    if (this.token !== undefined) withAuth.token = this.token;
    if (this.apisecret !== undefined) withAuth.apisecret = this.apisecret;
    return this.socket.send(withAuth, { timeoutMs: options.timeoutMs ?? this.timeoutMs, untilEvent: options.untilEvent });
  }

  private channel(): SessionChannel {
    return {
      url: this.url,
      log: this.log,
      keepaliveMs: this.keepaliveMs,
      isClosed: () => this.isClosed,
      request: (body, options) => this.request(body, options),
    };
  }

  private route(message: JanusMessage): void {
    emitSafely(this, this.log, 'message', [message]);
    const session = typeof message.session_id === 'number' ? this.sessions.get(message.session_id) : undefined;
    if (session === undefined) {
      this.log.debug({ janus: message.janus, session: message.session_id }, 'janus: a message for no known session');
      return;
    }
    session.dispatch(message);
  }

  private closed(info: JanusClosedInfo): void {
    if (this.closedInfo !== undefined) return;
    this.closedInfo = info;
    for (const session of [...this.sessions.values()]) session.gone();
    this.sessions.clear();
    this.log.info({ url: this.url, code: info.code, reason: info.reason, local: info.local }, 'janus connection closed');
    emitSafely(this, this.log, 'closed', [info]);
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`JanusClient: ${name} must be a positive number of milliseconds`);
  return value;
}
