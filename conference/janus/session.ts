/**
 * A Janus session: created by JanusClient.createSession, it sends a keepalive every keepaliveMs (Janus destroys a
 * session that gets no request for session_timeout seconds) and owns its plugin handles. Destroying it, Janus timing
 * it out, or its connection closing ends its handles, one way; a method called afterwards throws JANUS_ERR_CLOSED.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../../src/log/index.js';
import { emitSafely } from './emit-safely.js';
import { JANUS_CORE_ERROR, JanusError } from './janus-error.js';
import { JanusHandle } from './handle.js';
import type { JanusMessage, JanusRequestOptions, JanusSessionEvents } from './types.js';

/** What a session needs of its client (so the session never sees the socket or the credentials). */
export interface SessionChannel {
  readonly url: string;
  readonly log: Logger;
  readonly keepaliveMs: number;
  isClosed(): boolean;
  request(body: Record<string, unknown> & { janus: string }, options?: JanusRequestOptions & { untilEvent?: boolean }): Promise<JanusMessage>;
}

export const VIDEOROOM_PLUGIN = 'janus.plugin.videoroom';

export class JanusSession extends EventEmitter<JanusSessionEvents> {
  readonly id: number;
  private readonly channel: SessionChannel;
  private readonly forget: () => void;
  private readonly handles = new Map<number, JanusHandle>();
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private ended = false;

  /** @internal made by JanusClient.createSession */
  constructor(id: number, channel: SessionChannel, forget: () => void) {
    super();
    this.id = id;
    this.channel = channel;
    this.forget = forget;
    if (channel.keepaliveMs > 0) {
      this.keepaliveTimer = setInterval(() => void this.keepalive().catch(() => {}), channel.keepaliveMs);
      // a session must not keep the process alive by itself: its connection does, while it is open
      this.keepaliveTimer.unref();
    }
  }

  get isDestroyed(): boolean {
    return this.ended;
  }

  get handleIds(): number[] {
    return [...this.handles.keys()];
  }

  /**
   * `keepalive`: resets Janus's session_timeout. Sent by the timer; callable to probe the session. A session Janus
   * no longer knows (458) ends here.
   */
  async keepalive(options: JanusRequestOptions = {}): Promise<void> {
    this.assertLive('keepalive');
    try {
      await this.channel.request({ janus: 'keepalive', session_id: this.id }, options);
    } catch (err) {
      if (err instanceof JanusError && err.janusCode === JANUS_CORE_ERROR.SESSION_NOT_FOUND) this.gone();
      else if (!this.ended) this.channel.log.warn({ session: this.id, err: (err as Error).message }, 'janus keepalive failed');
      throw err;
    }
  }

  /** `attach`: a handle on `plugin` (the videoroom by default); `opaqueId` tags it in Janus's events and admin info. */
  async attach(plugin: string = VIDEOROOM_PLUGIN, options: JanusRequestOptions & { opaqueId?: string } = {}): Promise<JanusHandle> {
    this.assertLive('attach');
    const body: Record<string, unknown> & { janus: string } = { janus: 'attach', session_id: this.id, plugin };
    if (options.opaqueId !== undefined) body.opaque_id = options.opaqueId;
    const reply = await this.channel.request(body, options);
    const id = reply.data?.id;
    if (typeof id !== 'number') throw new JanusError('JANUS_ERR_REPLY', 'janus attach: the answer has no handle id', { request: 'attach' });
    const handle = new JanusHandle(id, this.id, plugin, this.channel, () => this.handles.delete(id));
    if (this.ended) {
      handle.gone(); // the session ended while attach was under way
      throw new JanusError('JANUS_ERR_CLOSED', `janus session ${this.id} ended during attach`, { request: 'attach' });
    }
    this.handles.set(id, handle);
    return handle;
  }

  /** `destroy`: ends the session in Janus (and its handles); ends it here even when Janus could not be told. */
  async destroy(options: JanusRequestOptions = {}): Promise<void> {
    if (this.ended) return;
    try {
      await this.channel.request({ janus: 'destroy', session_id: this.id }, options);
    } finally {
      this.gone();
    }
  }

  /** @internal the client routes the messages of this session here */
  dispatch(message: JanusMessage): void {
    if (message.janus === 'timeout') {
      this.channel.log.info({ session: this.id }, 'janus timed the session out');
      emitSafely(this, this.channel.log, 'timeout', []);
      this.gone();
      return;
    }
    const handle = typeof message.sender === 'number' ? this.handles.get(message.sender) : undefined;
    if (handle === undefined) {
      this.channel.log.debug({ janus: message.janus, session: this.id, sender: message.sender }, 'janus: a message for no known handle');
      return;
    }
    handle.dispatch(message);
  }

  /** @internal the session no longer exists in Janus: stop, end the handles, tell the listeners once */
  gone(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.keepaliveTimer !== undefined) clearInterval(this.keepaliveTimer);
    for (const handle of [...this.handles.values()]) handle.gone();
    this.handles.clear();
    this.forget();
    emitSafely(this, this.channel.log, 'destroyed', []);
  }

  private assertLive(request: string): void {
    if (this.ended || this.channel.isClosed()) {
      throw new JanusError('JANUS_ERR_CLOSED', `janus ${request}: session ${this.id} is ${this.ended ? 'destroyed' : 'on a closed connection'}`, { request });
    }
  }
}
