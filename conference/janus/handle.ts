/**
 * A plugin handle of a Janus session (JanusSession.attach). `message` sends a request to the plugin: a sync one
 * (videoroom create, list, kick …) is answered by `success` with plugindata; an async one (join, configure …) by `ack`
 * and then an `event` with the same transaction, maybe with a jsep. A plugin's own refusal (`error_code` in its data)
 * rejects with JANUS_ERR_PLUGIN. Events that answer no request go to the listeners.
 */
import { EventEmitter } from 'node:events';
import { emitSafely } from './emit-safely.js';
import { JanusError } from './janus-error.js';
import type { SessionChannel } from './session.js';
import type { JanusHandleEvents, JanusMessage, JanusRequestOptions, Jsep, PluginResult } from './types.js';

export class JanusHandle extends EventEmitter<JanusHandleEvents> {
  readonly id: number;
  readonly sessionId: number;
  readonly plugin: string;
  private readonly channel: SessionChannel;
  private readonly forget: () => void;
  private ended = false;

  /** @internal made by JanusSession.attach */
  constructor(id: number, sessionId: number, plugin: string, channel: SessionChannel, forget: () => void) {
    super();
    this.id = id;
    this.sessionId = sessionId;
    this.plugin = plugin;
    this.channel = channel;
    this.forget = forget;
  }

  get isDetached(): boolean {
    return this.ended;
  }

  /**
   * `message`: `body` to the plugin, with `jsep` when given. Resolves with the plugin's data (and jsep) from the sync
   * answer or the async event. Rejects with JANUS_ERR_PLUGIN (janusCode = the plugin's error_code), or as a request.
   */
  async message<T extends Record<string, unknown> = Record<string, unknown>>(
    body: Record<string, unknown> & { request: string },
    options: JanusRequestOptions & { jsep?: Jsep } = {},
  ): Promise<PluginResult<T>> {
    if (typeof body?.request !== 'string' || body.request === '') throw new TypeError('janus message: body.request must be a non-empty string');
    this.assertLive(`message:${body.request}`);
    const request: Record<string, unknown> & { janus: string } = { janus: 'message', session_id: this.sessionId, handle_id: this.id, body };
    if (options.jsep !== undefined) request.jsep = options.jsep;
    const reply = await this.channel.request(request, { timeoutMs: options.timeoutMs, untilEvent: true });
    const name = `message:${body.request}`;
    const data = reply.plugindata?.data;
    if (typeof data !== 'object' || data === null) {
      throw new JanusError('JANUS_ERR_REPLY', `janus ${name}: "${reply.janus}" without plugindata`, { request: name });
    }
    if (typeof data.error_code === 'number') {
      const reason = typeof data.error === 'string' ? data.error : undefined;
      throw new JanusError('JANUS_ERR_PLUGIN', `${this.plugin} ${body.request} refused: ${data.error_code} ${reason ?? ''}`.trimEnd(), {
        request: name, janusCode: data.error_code, reason,
      });
    }
    return { data: data as T, jsep: reply.jsep };
  }

  /** `trickle`: one ICE candidate, a list of them, or `{ completed: true }`. */
  async trickle(candidate: Record<string, unknown> | Record<string, unknown>[], options: JanusRequestOptions = {}): Promise<void> {
    this.assertLive('trickle');
    const body: Record<string, unknown> & { janus: string } = { janus: 'trickle', session_id: this.sessionId, handle_id: this.id };
    if (Array.isArray(candidate)) body.candidates = candidate;
    else body.candidate = candidate;
    await this.channel.request(body, options);
  }

  /** `hangup`: closes the handle's PeerConnection and keeps the handle. */
  async hangup(options: JanusRequestOptions = {}): Promise<void> {
    this.assertLive('hangup');
    await this.channel.request({ janus: 'hangup', session_id: this.sessionId, handle_id: this.id }, options);
  }

  /** `detach`: ends the handle in Janus; ends it here even when Janus could not be told. */
  async detach(options: JanusRequestOptions = {}): Promise<void> {
    if (this.ended) return;
    try {
      await this.channel.request({ janus: 'detach', session_id: this.sessionId, handle_id: this.id }, options);
    } finally {
      this.gone();
    }
  }

  /** @internal the session routes the messages whose sender is this handle here */
  dispatch(message: JanusMessage): void {
    const log = this.channel.log;
    switch (message.janus) {
      case 'event':
        emitSafely(this, log, 'event', [{ data: message.plugindata?.data ?? {}, jsep: message.jsep } satisfies PluginResult]);
        return;
      case 'webrtcup':
        emitSafely(this, log, 'webrtcup', []);
        return;
      case 'media':
        emitSafely(this, log, 'media', [{ type: String(message.type), receiving: message.receiving === true, mid: typeof message.mid === 'string' ? message.mid : undefined }]);
        return;
      case 'slowlink':
        emitSafely(this, log, 'slowlink', [{ uplink: message.uplink === true, lost: Number(message.lost ?? 0), mid: typeof message.mid === 'string' ? message.mid : undefined }]);
        return;
      case 'hangup':
        emitSafely(this, log, 'hangup', [typeof message.reason === 'string' ? message.reason : undefined]);
        return;
      case 'detached':
        this.gone();
        return;
      default:
        log.debug({ janus: message.janus, handle: this.id }, 'janus: a handle message not routed to listeners');
    }
  }

  /** @internal the handle no longer exists in Janus */
  gone(): void {
    if (this.ended) return;
    this.ended = true;
    this.forget();
    emitSafely(this, this.channel.log, 'detached', []);
  }

  private assertLive(request: string): void {
    if (this.ended || this.channel.isClosed()) {
      throw new JanusError('JANUS_ERR_CLOSED', `janus ${request}: handle ${this.id} is ${this.ended ? 'detached' : 'on a closed connection'}`, { request });
    }
  }
}
