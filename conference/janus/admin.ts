/**
 * A client of the Janus Admin API over WebSocket (the websockets transport's admin_ws listener, subprotocol
 * `janus-admin-protocol`). Every request carries admin_secret. The focus uses it to hand out stored tokens
 * (token_auth): `add_token` with the plugins a token may attach to, `remove_token` when the meeting is over.
 */
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../../src/log/index.js';
import { emitSafely } from './emit-safely.js';
import { JanusError } from './janus-error.js';
import { JanusSocket } from './janus-socket.js';
import type { JanusAdminEvents, JanusAdminOptions, JanusMessage, JanusRequestOptions, JanusServerInfo, JanusStoredToken } from './types.js';

const DEFAULT_TIMEOUT_MS = 10_000;

export class JanusAdmin extends EventEmitter<JanusAdminEvents> {
  readonly url: string;
  private readonly socket: JanusSocket;
  private readonly adminSecret: string;
  private readonly timeoutMs: number;

  private constructor(socket: JanusSocket, options: JanusAdminOptions, timeoutMs: number) {
    super();
    this.url = options.url;
    this.socket = socket;
    this.adminSecret = options.adminSecret;
    this.timeoutMs = timeoutMs;
  }

  /** Opens the admin WebSocket; rejects with JANUS_ERR_CONNECT. */
  static async connect(options: JanusAdminOptions): Promise<JanusAdmin> {
    if (typeof options?.url !== 'string' || !/^wss?:\/\//.test(options.url)) throw new TypeError('JanusAdmin: url must be a ws:// or wss:// URL');
    if (typeof options.adminSecret !== 'string' || options.adminSecret === '') throw new TypeError('JanusAdmin: adminSecret is required');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError('JanusAdmin: timeoutMs must be a positive number of milliseconds');
    const log: Logger = options.logger ?? silentLogger();
    let admin: JanusAdmin | undefined;
    const socket = await JanusSocket.open({
      url: options.url,
      protocol: 'janus-admin-protocol',
      timeoutMs,
      logger: log,
      // the Admin API answers requests and sends nothing of its own
      onMessage: (message) => log.debug({ janus: message.janus }, 'janus admin: a message that answers no request'),
      onClose: (info) => {
        if (admin !== undefined) emitSafely(admin, log, 'closed', [info]);
      },
    });
    admin = new JanusAdmin(socket, options, timeoutMs);
    return admin;
  }

  get isClosed(): boolean {
    return this.socket.isClosed;
  }

  /** `info`: version, settings, plugins and transports of this Janus. */
  async info(options: JanusRequestOptions = {}): Promise<JanusServerInfo> {
    const reply = await this.request('info', {}, options);
    if (reply.janus !== 'server_info') throw new JanusError('JANUS_ERR_REPLY', `janus admin info: answered "${reply.janus}"`, { request: 'info' });
    return reply as unknown as JanusServerInfo;
  }

  /** `ping`: resolves with the round trip in milliseconds. */
  async ping(options: JanusRequestOptions = {}): Promise<number> {
    const started = performance.now();
    const reply = await this.request('ping', {}, options);
    if (reply.janus !== 'pong') throw new JanusError('JANUS_ERR_REPLY', `janus admin ping: answered "${reply.janus}"`, { request: 'ping' });
    return performance.now() - started;
  }

  /**
   * `add_token`: a stored token for token_auth, allowed to attach to `plugins` (every plugin when the list is absent
   * or empty). Resolves with the plugins Janus says the token may use. Refused (490) when token_auth is off.
   */
  async addToken(token: string, plugins?: string[], options: JanusRequestOptions = {}): Promise<string[]> {
    const reply = await this.request('add_token', plugins !== undefined && plugins.length > 0 ? { token: tokenOf(token), plugins } : { token: tokenOf(token) }, options);
    const allowed = reply.data?.plugins;
    return Array.isArray(allowed) ? allowed.filter((p): p is string => typeof p === 'string') : [];
  }

  /** `remove_token`: the token no longer opens sessions nor passes any request of the sessions it opened. */
  async removeToken(token: string, options: JanusRequestOptions = {}): Promise<void> {
    await this.request('remove_token', { token: tokenOf(token) }, options);
  }

  /** `list_tokens`: the stored tokens and the plugins each may attach to. */
  async listTokens(options: JanusRequestOptions = {}): Promise<JanusStoredToken[]> {
    const reply = await this.request('list_tokens', {}, options);
    const tokens = reply.data?.tokens;
    if (!Array.isArray(tokens)) throw new JanusError('JANUS_ERR_REPLY', 'janus admin list_tokens: no data.tokens', { request: 'list_tokens' });
    return tokens.map((t: { token?: unknown; allowed_plugins?: unknown }) => ({
      token: String(t.token),
      plugins: Array.isArray(t.allowed_plugins) ? t.allowed_plugins.filter((p): p is string => typeof p === 'string') : [],
    }));
  }

  /** `list_sessions`: the ids of every session Janus holds, whatever transport opened it. */
  async listSessions(options: JanusRequestOptions = {}): Promise<number[]> {
    const reply = await this.request('list_sessions', {}, options);
    const sessions = reply.sessions;
    if (!Array.isArray(sessions)) throw new JanusError('JANUS_ERR_REPLY', 'janus admin list_sessions: no sessions', { request: 'list_sessions' });
    return sessions.filter((s): s is number => typeof s === 'number');
  }

  /** Closes the admin WebSocket; pending requests reject with JANUS_ERR_CLOSED and `closed` is emitted. */
  close(): Promise<void> {
    return this.socket.close();
  }

  private request(janus: string, body: Record<string, unknown>, options: JanusRequestOptions): Promise<JanusMessage> {
    return this.socket.send({ ...body, janus, admin_secret: this.adminSecret }, { timeoutMs: options.timeoutMs ?? this.timeoutMs });
  }
}

function tokenOf(token: string): string {
  if (typeof token !== 'string' || token === '') throw new TypeError('janus admin: token must be a non-empty string');
  return token;
}
