/**
 * A small client for Janus's WebSocket API in the browser (subprotocol `janus-protocol`), written for the meeting
 * page: one session, its plugin handles, and the requests the videoroom needs. The server's client
 * (conference/janus/) is Node-only; the messages are the same.
 *
 * Every request carries a random `transaction` and the participant's Janus `token` (token_auth: the softswitch
 * stored it at admission and takes it back on leave or kick). A plugin message is asynchronous: Janus answers
 * `ack`, then an `event` with the same transaction is the answer; `keepalive` and `trickle` end at the `ack`.
 * A message that answers nothing pending (a publisher joined, someone talks, a hangup) goes to its handle's
 * listener. The session sends a keepalive every 25 s, well under Janus's default session_timeout of 60 s.
 */

export interface Jsep {
  type: RTCSdpType;
  sdp: string;
}

/** Any message Janus sends: `janus` names it (success, error, ack, event, webrtcup, media, hangup, timeout …). */
interface JanusMessage {
  janus: string;
  transaction?: string;
  session_id?: number;
  sender?: number;
  data?: { id?: number };
  plugindata?: { plugin: string; data: Record<string, unknown> };
  jsep?: Jsep;
  error?: { code: number; reason?: string };
  reason?: string;
}

/** A plugin's answer or event: its data and, when it brings one, a session description. */
export interface PluginEvent {
  data: Record<string, unknown>;
  jsep: Jsep | undefined;
}

/** Janus refused (`error`, code from janus.h) or the plugin did (`error_code` in its data, e.g. 433 unauthorized). */
export class JanusError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

const KEEPALIVE_MS = 25_000;
const REQUEST_TIMEOUT_MS = 15_000;

interface Pending {
  untilEvent: boolean;
  resolve: (m: JanusMessage) => void;
  reject: (err: Error) => void;
  timer: number;
}

function transactionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, 'x');
}

/** The plugin's own refusal inside an event (`{ error_code, error }`), as an exception. */
function pluginError(data: Record<string, unknown>): JanusError | undefined {
  if (typeof data.error_code !== 'number') return undefined;
  return new JanusError(data.error_code, `${data.error_code} ${typeof data.error === 'string' ? data.error : 'plugin error'}`);
}

export class JanusSession {
  private readonly pending = new Map<string, Pending>();
  private readonly handles = new Map<number, JanusHandle>();
  private keepalive: number | undefined;
  private closed = false;
  /** Called once when the session is gone: the socket closed, or Janus timed it out. */
  onclose: ((why: string) => void) | undefined;

  private constructor(private readonly ws: WebSocket, private readonly token: string, private id = 0) {
    ws.addEventListener('message', (e) => this.receive(String(e.data)));
    ws.addEventListener('close', () => this.gone('the connection to Janus closed'));
  }

  get sessionId(): number {
    return this.id;
  }

  /** Connects and creates a session with the token. */
  static async open(url: string, token: string): Promise<JanusSession> {
    const ws = new WebSocket(url, 'janus-protocol');
    await new Promise<void>((resolve, reject) => {
      // an address that drops packets would keep the page waiting for the browser's own connect timeout (minutes)
      const timer = window.setTimeout(() => {
        ws.close();
        reject(new Error(`Janus at ${url} did not answer in ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      ws.addEventListener('open', () => {
        window.clearTimeout(timer);
        resolve();
      }, { once: true });
      ws.addEventListener('error', () => {
        window.clearTimeout(timer);
        reject(new Error(`cannot connect to Janus at ${url}`));
      }, { once: true });
    });
    const session = new JanusSession(ws, token);
    try {
      const created = await session.send({ janus: 'create' }, false);
      session.id = created.data?.id ?? 0;
    } catch (err) {
      ws.close();
      throw err;
    }
    session.keepalive = window.setInterval(() => {
      session.send({ janus: 'keepalive', session_id: session.id }, false).catch(() => {});
    }, KEEPALIVE_MS);
    return session;
  }

  async attach(plugin: string): Promise<JanusHandle> {
    const answer = await this.send({ janus: 'attach', session_id: this.id, plugin }, false);
    const handle = new JanusHandle(this, answer.data?.id ?? 0);
    this.handles.set(handle.id, handle);
    return handle;
  }

  /** Destroys the session on Janus (its handles hang up) and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.send({ janus: 'destroy', session_id: this.id }, false).catch(() => {});
    this.gone('closed');
    this.ws.close();
  }

  /** @internal: a request of this session or of one of its handles. */
  send(body: Record<string, unknown>, untilEvent: boolean): Promise<JanusMessage> {
    if (this.closed) return Promise.reject(new Error('the Janus session is closed'));
    const transaction = transactionId();
    return new Promise<JanusMessage>((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(transaction);
        reject(new Error(`Janus did not answer ${String(body.janus)} in ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(transaction, { untilEvent, resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...body, transaction, token: this.token }));
    });
  }

  /** @internal */
  forget(handle: JanusHandle): void {
    this.handles.delete(handle.id);
  }

  private receive(text: string): void {
    let m: JanusMessage;
    try {
      m = JSON.parse(text) as JanusMessage;
    } catch {
      return; // not JSON: nothing Janus sends
    }
    const pending = m.transaction === undefined ? undefined : this.pending.get(m.transaction);
    if (pending !== undefined && !(m.janus === 'ack' && pending.untilEvent)) {
      this.pending.delete(m.transaction!);
      window.clearTimeout(pending.timer);
      if (m.janus === 'error') pending.reject(new JanusError(m.error?.code ?? 0, `Janus: ${m.error?.code ?? ''} ${m.error?.reason ?? 'error'}`));
      else pending.resolve(m);
      return;
    }
    if (pending !== undefined) return; // the ack of an async request: its event follows
    if (m.janus === 'timeout') {
      this.gone('Janus timed the session out');
      return;
    }
    const handle = m.sender === undefined ? undefined : this.handles.get(m.sender);
    handle?.deliver(m);
  }

  private gone(why: string): void {
    if (this.closed) return;
    this.closed = true;
    window.clearInterval(this.keepalive);
    for (const p of this.pending.values()) {
      window.clearTimeout(p.timer);
      p.reject(new Error(why));
    }
    this.pending.clear();
    for (const h of this.handles.values()) h.deliver({ janus: 'detached' });
    this.handles.clear();
    this.onclose?.(why);
  }
}

export class JanusHandle {
  /** Plugin events that answer no request (publishers, leaving, talking, moderation, an unasked renegotiation …). */
  onevent: ((e: PluginEvent) => void) | undefined;
  /** Janus's PeerConnection of this handle is up. */
  onwebrtcup: (() => void) | undefined;
  /** Janus hung the PeerConnection up, or the handle is gone. */
  onhangup: ((reason: string) => void) | undefined;

  constructor(private readonly session: JanusSession, readonly id: number) {}

  /** A plugin request and its answer (the `event`, or a synchronous `success`); a plugin's error_code rejects. */
  async message(body: Record<string, unknown>, jsep?: Jsep): Promise<PluginEvent> {
    const m = await this.session.send({ janus: 'message', handle_id: this.id, body, ...(jsep === undefined ? {} : { jsep }), ...this.ids() }, true);
    const data = m.plugindata?.data ?? {};
    const err = pluginError(data);
    if (err !== undefined) throw err;
    return { data, jsep: m.jsep };
  }

  /** A local ICE candidate (trickle ICE); null says gathering is complete. */
  trickle(candidate: RTCIceCandidate | null): void {
    const c = candidate === null || candidate.candidate === ''
      ? { completed: true }
      : { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex };
    this.session.send({ janus: 'trickle', handle_id: this.id, candidate: c, ...this.ids() }, false).catch(() => {});
  }

  async detach(): Promise<void> {
    await this.session.send({ janus: 'detach', handle_id: this.id, ...this.ids() }, false).catch(() => {});
    this.session.forget(this);
  }

  /** @internal */
  deliver(m: JanusMessage): void {
    if (m.janus === 'event' && m.plugindata !== undefined) this.onevent?.({ data: m.plugindata.data, jsep: m.jsep });
    else if (m.janus === 'webrtcup') this.onwebrtcup?.();
    else if (m.janus === 'hangup') this.onhangup?.(m.reason ?? 'hangup');
    else if (m.janus === 'detached') this.onhangup?.('detached');
  }

  private ids(): { session_id: number } {
    return { session_id: this.session.sessionId };
  }
}
