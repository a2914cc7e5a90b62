/**
 * Test softphones on the two libraries our users build on: SIP.js (`UserAgent`, `Registerer`, `Inviter`,
 * `Invitation`) and JsSIP (`UA`, `WebSocketInterface`, `RTCSession`), both behind one small interface so a
 * test reads the same whichever library is at either end. They speak SIP over WS/WSS (RFC 7118) from Node,
 * with the media fakes of fake-media.ts: SDP offer/answer only, no media.
 *
 * Node 20 has no WebSocket global: `installTestWebSocket()` sets one (a subclass of `ws` that accepts the
 * server's self-signed certificate), only in test processes. It also records every SIP message each phone's
 * sockets carry, so tests can look at what went over the wire. SOFTPHONE_TRACE=1 prints that traffic to
 * stderr; SOFTPHONE_DEBUG=1 turns on the libraries' own logs.
 *
 * Every phone is stopped by `stop()`, which never throws and, after a bounded grace period for the
 * un-REGISTER, kills whatever sockets the phone still has open.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import JsSIP from 'jssip';
import {
  Invitation, Inviter, Messager, Publisher, PublisherState, Registerer, RegistererState, SessionState, Subscriber, SubscriptionState, UserAgent,
  type Session,
} from 'sip.js';
import { WebSocket as WsWebSocket } from 'ws';
import {
  type FakePcConfig, FakePeerConnection, type FakeSessionDescriptionHandler, type MediaDirection, type MediaProfile,
  createFakeMediaStream, createFakeSdhFactory, installFakeWebRtc,
} from './fake-media.js';

/** What the wrappers read of JsSIP's incoming requests and responses. */
interface JsSipIncomingRequest {
  from: { uri: { toString(): string } };
  to: { uri: { toString(): string } };
  body?: string;
  getHeader(name: string): string | undefined;
}
interface JsSipIncomingResponse {
  status_code: number;
  getHeader(name: string): string | undefined;
}

// ---- the common interface ----------------------------------------------------------------------------

export type SoftphoneErrorCode =
  | 'SOFTPHONE_ERR_STATUS' // a final non-2xx answer
  | 'SOFTPHONE_ERR_TIMEOUT' // nothing happened in time
  | 'SOFTPHONE_ERR_CANCELED' // the caller gave up (AbortSignal)
  | 'SOFTPHONE_ERR_FAILED' // the library gave up for another reason (transport, bad SDP, …)
  | 'SOFTPHONE_ERR_STATE'; // the call or phone is not in a state for this

export class SoftphoneError extends Error {
  constructor(
    readonly code: SoftphoneErrorCode,
    message: string,
    /** The SIP status of the final response, when there was one. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'SoftphoneError';
  }
}

export interface SoftphoneOptions {
  /** Address-of-record, e.g. `sip:alice@example.com`. */
  uri: string;
  password: string;
  /** `ws://host:port` or `wss://host:port` of the server. */
  wsUrl: string;
  /** Digest username; the user part of `uri` by default. */
  authorizationUser?: string;
  /** SDP profile of the fake media; `webrtc` (what a browser offers) by default. */
  media?: MediaProfile;
  /** Seconds asked for in REGISTER; 300 by default. */
  registerExpires?: number;
  /** Label in traces; the user part of `uri` by default. */
  name?: string;
  /**
   * SIP.js only: Contact URI parameters, e.g. RFC 8599 `pn-provider`/`pn-prid`/`pn-param` of a mobile app
   * that a push wakes.
   */
  contactParams?: Record<string, string>;
  /** SIP.js only: the RFC 5626 +sip.instance UUID (a random one by default); the same app after a restart keeps it. */
  instanceId?: string;
}

/** How a call ended, seen from this phone. */
export interface CallEnd {
  originator: 'local' | 'remote' | 'system';
  /** `bye`: ended after it was established; `canceled`: CANCEL before the answer; `rejected`: a final non-2xx. */
  cause: 'bye' | 'canceled' | 'rejected' | 'failed';
  status?: number | undefined;
  /** The library's own words. */
  detail?: string | undefined;
}

export interface CallOptions {
  /** Aborting before the answer sends CANCEL; `call()` then rejects with SOFTPHONE_ERR_CANCELED. */
  signal?: AbortSignal;
  /** Until the call is established; 10 000 ms by default. */
  timeoutMs?: number;
  /** Every provisional response (status). */
  onProgress?: (status: number) => void;
}

export interface CallHandle {
  readonly ended: boolean;
  /** Direction of the audio in the last SDP received from the peer (its offer or answer). */
  readonly remoteDirection: MediaDirection | undefined;
  /** Sends BYE; resolves when the call has ended here (and, where the library tells, the BYE was answered 2xx). */
  hangup(): Promise<void>;
  /** Re-INVITE putting the peer on hold (a=sendonly); resolves on its 2xx. */
  hold(): Promise<void>;
  /** Re-INVITE back to a=sendrecv; resolves on its 2xx. */
  unhold(): Promise<void>;
  waitForEnded(timeoutMs?: number): Promise<CallEnd>;
}

export interface IncomingCall {
  /** The From URI. */
  readonly from: string;
  readonly requestUri: string;
  /** The INVITE as received. */
  readonly invite: string;
  /** Sends 200; resolves once the ACK has arrived. */
  accept(timeoutMs?: number): Promise<CallHandle>;
  /** A final non-2xx answer, e.g. 486. */
  reject(status: number): Promise<void>;
  waitForEnded(timeoutMs?: number): Promise<CallEnd>;
}

/** A MESSAGE (RFC 3428) the phone received. */
export interface ReceivedMessage {
  /** The From and To URIs. */
  readonly from: string;
  readonly to: string;
  readonly contentType: string;
  readonly body: string;
  /** The server's id of the message (X-Message-Id), when it gave one. */
  readonly messageId: string | undefined;
  /** The Date header: when the message was sent. */
  readonly date: string | undefined;
}

/** How the server answered a MESSAGE the phone sent. */
export interface SentMessage {
  status: number;
  /** The server's id of the stored message (X-Message-Id of the 202). */
  messageId: string | undefined;
}

export interface SendMessageOptions {
  contentType?: string;
  timeoutMs?: number;
}

/** A NOTIFY (RFC 6665) a subscription received. */
export interface ReceivedNotify {
  readonly body: string;
  readonly contentType: string;
  /** The Subscription-State header. */
  readonly subscriptionState: string;
}

/** A subscription the phone made (SUBSCRIBE), with the NOTIFYs it received. */
export interface Watch {
  readonly notifies: readonly ReceivedNotify[];
  /** Resolves with the first NOTIFY (already received or to come) that `match` accepts. */
  waitFor(match: (n: ReceivedNotify) => boolean, timeoutMs?: number): Promise<ReceivedNotify>;
  /** Un-SUBSCRIBE (Expires 0). */
  unsubscribe(): Promise<void>;
}

export interface SubscribeOptions {
  expires?: number;
  /** The Accept header; the event package's type by default. */
  accept?: string;
}

/** A PUBLISH the phone keeps refreshed (SIP.js Publisher, RFC 3903). */
export interface Publication {
  /** Publishes a new document (with the entity-tag of the last one). */
  publish(body: string): Promise<void>;
  /** PUBLISH with Expires 0. */
  unpublish(): Promise<void>;
}

const EVENT_TYPES: Record<string, string> = {
  presence: 'application/pidf+xml',
  dialog: 'application/dialog-info+xml',
  'message-summary': 'application/simple-message-summary',
};

/** One WebSocket a phone opened, with the SIP messages it carried. */
export interface PhoneSocket {
  readonly url: string;
  readonly isOpen: boolean;
  /** Whole messages, in order. */
  readonly messages: ReadonlyArray<{ dir: 'in' | 'out'; text: string }>;
  /** Messages the server sent after the phone stopped listening to this socket (reconnect `stale`). */
  readonly staleMessages: readonly string[];
}

export interface Softphone {
  readonly library: 'sip.js' | 'jssip';
  readonly aor: string;
  /** Every WebSocket opened so far, oldest first. */
  readonly sockets: readonly PhoneSocket[];
  /** REGISTER with digest auth; resolves on the 200 that lists our binding, rejects with the final status. */
  register(timeoutMs?: number): Promise<void>;
  /** REGISTER with Expires 0 for our contact. */
  unregister(timeoutMs?: number): Promise<void>;
  /** A header of the last 200 to our REGISTER, read through the library's own API (what an app would do). */
  registeredHeader(name: string): string | undefined;
  /** Resolves when the call is established (2xx, ACK sent); rejects with the final status otherwise. */
  call(target: string, options?: CallOptions): Promise<CallHandle>;
  onIncoming(handler: (call: IncomingCall) => void): void;
  /** The next incoming INVITE not yet taken. */
  waitForIncoming(timeoutMs?: number): Promise<IncomingCall>;
  /**
   * Drops the WebSocket and waits until the library has connected a new one and re-registered on it.
   * `stale: true` leaves the old TCP connection open but dead to the phone (as after a network change the
   * server has not noticed): whatever the server still sends there lands in `staleMessages`.
   */
  reconnect(options?: { stale?: boolean; timeoutMs?: number }): Promise<void>;
  /** Sends a MESSAGE outside a dialog; resolves on a 2xx, rejects (SOFTPHONE_ERR_STATUS with the status) otherwise. */
  sendMessage(target: string, body: string, options?: SendMessageOptions): Promise<SentMessage>;
  /** Every MESSAGE received so far, in order. */
  readonly received: readonly ReceivedMessage[];
  /** Resolves once `count` MESSAGEs in all have been received (the first `count`). */
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** The status incoming MESSAGEs are answered with; 200 by default (480: the app cannot take it now). */
  messageAnswer: number;
  /** SUBSCRIBE (RFC 6665); resolves once the subscription is accepted (2xx), rejects otherwise. */
  subscribe(target: string, event: string, options?: SubscribeOptions): Promise<Watch>;
  /** SIP.js only: PUBLISH `body` (PIDF) for the phone's own AoR; resolves on the 2xx. */
  publish(body: string, options?: { expires?: number }): Promise<Publication>;
  /** Un-registers (bounded), stops the user agent and closes every socket. Never throws. */
  stop(): Promise<void>;
  /**
   * The app is put to sleep (iOS and Android kill it in the background): its connection dies without an
   * un-REGISTER, and the phone is gone. A push can wake a new instance of it. Never throws.
   */
  sleep(): Promise<void>;
}

export function createSipJsPhone(options: SoftphoneOptions): Promise<Softphone> {
  return SipJsPhone.create(options);
}

export function createJsSipPhone(options: SoftphoneOptions): Promise<Softphone> {
  return JsSipPhone.create(options);
}

export type SoftphoneLibrary = Softphone['library'];

export function createPhone(library: SoftphoneLibrary, options: SoftphoneOptions): Promise<Softphone> {
  return library === 'sip.js' ? createSipJsPhone(options) : createJsSipPhone(options);
}

// ---- plumbing ---------------------------------------------------------------------------------------

const TRACE = process.env.SOFTPHONE_TRACE === '1';
const DEBUG = process.env.SOFTPHONE_DEBUG === '1';
const DEFAULT_TIMEOUT_MS = 10_000;
/** How long stop() waits for the un-REGISTER before closing the sockets anyway. */
const STOP_GRACE_MS = 2_000;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SoftphoneError('SOFTPHONE_ERR_TIMEOUT', `${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise settled from outside, for events. */
class Deferred<T> {
  readonly promise: Promise<T>;
  settled = false;
  private res!: (value: T) => void;
  private rej!: (err: unknown) => void;
  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.res = resolve;
      this.rej = reject;
    });
    this.promise.catch(() => undefined); // observed or not, never an unhandled rejection
  }
  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.res(value);
  }
  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.rej(err);
  }
}

function userOf(uri: string): string {
  const m = /^sips?:([^@;]+)@/i.exec(uri);
  if (!m) throw new TypeError(`not a SIP URI with a user part: ${uri}`);
  return decodeURIComponent(m[1]!);
}

/**
 * The WebSocket the libraries construct (`new WebSocket(url, 'sip')`). Each phone connects to a URL with
 * its own path (`/softphone-N`; the server ignores the path) so that its sockets can be found here.
 */
class TestWebSocket extends WsWebSocket implements PhoneSocket {
  static readonly byPath = new Map<string, TestWebSocket[]>();
  readonly messages: Array<{ dir: 'in' | 'out'; text: string }> = [];
  readonly staleMessages: string[] = [];
  /** ms since the epoch of the last message in or out. */
  lastActivity = 0;
  private stale = false;

  constructor(address: string | URL, protocols?: string | string[]) {
    super(address, protocols, { rejectUnauthorized: false, handshakeTimeout: 5_000 });
    const path = new URL(String(address)).pathname;
    const list = TestWebSocket.byPath.get(path) ?? [];
    list.push(this);
    TestWebSocket.byPath.set(path, list);
    this.on('error', () => undefined); // the libraries see errors through their own listeners
    const send = this.send.bind(this) as (data: unknown, cb?: (err?: Error) => void) => void;
    this.send = ((data: unknown, cb?: (err?: Error) => void) => {
      if (this.stale) return;
      const text = String(data);
      this.messages.push({ dir: 'out', text });
      this.lastActivity = Date.now();
      if (TRACE) process.stderr.write(`\n>>> ${path} ${new Date().toISOString()}\n${text}`);
      send(data, cb);
    }) as WsWebSocket['send'];
  }

  get isOpen(): boolean {
    return !this.stale && this.readyState === WsWebSocket.OPEN;
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message') {
      const text = String(args[0]);
      if (this.stale) {
        this.staleMessages.push(text);
        if (TRACE) process.stderr.write(`\n<<< (stale, not delivered) ${this.url}\n${text}`);
        return false;
      }
      this.messages.push({ dir: 'in', text });
      this.lastActivity = Date.now();
      if (TRACE) process.stderr.write(`\n<<< ${new URL(this.url).pathname} ${new Date().toISOString()}\n${text}`);
    }
    // After goStale() the library has had its close event; the real one comes when the test ends.
    if (this.stale && (event === 'close' || event === 'error')) return false;
    return super.emit(event, ...args);
  }

  /** Abrupt loss of the connection: no close frame, the server sees the TCP connection go. */
  drop(): void {
    this.terminate();
  }

  /** The library is told the socket closed (code 1006) while the TCP connection stays up, unused. */
  goStale(): void {
    super.emit('close', 1006, Buffer.alloc(0));
    this.stale = true;
    // JsSIP asks readyState whether it must reconnect.
    Object.defineProperty(this, 'readyState', { configurable: true, get: () => WsWebSocket.CLOSED });
    // The library may still call these on its old socket: they must not touch the connection.
    this.close = () => undefined;
    this.terminate = () => undefined;
  }

  /** Really closes it, stale or not. */
  kill(): void {
    Reflect.deleteProperty(this, 'readyState'); // ws's terminate() does nothing on a CLOSED socket
    WsWebSocket.prototype.terminate.call(this);
  }
}

let nextPhone = 0;

/** Sets `globalThis.WebSocket` for the libraries (idempotent). */
export function installTestWebSocket(): void {
  (globalThis as Record<string, unknown>).WebSocket = TestWebSocket;
}

/** What both phones share: sockets, incoming-call queue, registration events, reconnect and stop. */
abstract class PhoneBase implements Softphone {
  /** The last 200 to our REGISTER, as the library handed it over. */
  protected lastRegistered: { getHeader(name: string): string | undefined } | undefined;
  abstract readonly library: 'sip.js' | 'jssip';
  readonly aor: string;
  protected readonly options: SoftphoneOptions;
  /** The URL the library connects to: the server's, with this phone's own path. */
  protected readonly url: string;
  protected readonly events = new EventEmitter();
  protected stopped = false;
  private readonly path: string;
  private readonly queue: IncomingCall[] = [];
  private readonly waiters: Array<Deferred<IncomingCall>> = [];
  private readonly incomingHandlers: Array<(call: IncomingCall) => void> = [];
  readonly received: ReceivedMessage[] = [];
  messageAnswer = 200;

  protected constructor(options: SoftphoneOptions) {
    installTestWebSocket();
    this.options = options;
    this.aor = options.uri;
    this.path = `/softphone-${++nextPhone}-${encodeURIComponent(options.name ?? userOf(options.uri))}`;
    const u = new URL(options.wsUrl);
    u.pathname = this.path;
    this.url = u.toString();
    this.events.setMaxListeners(50);
  }

  get sockets(): readonly PhoneSocket[] {
    return TestWebSocket.byPath.get(this.path) ?? [];
  }

  protected get currentSocket(): TestWebSocket | undefined {
    const list = TestWebSocket.byPath.get(this.path);
    return list?.[list.length - 1];
  }

  abstract register(timeoutMs?: number): Promise<void>;
  abstract unregister(timeoutMs?: number): Promise<void>;

  registeredHeader(name: string): string | undefined {
    return this.lastRegistered?.getHeader(name);
  }
  abstract call(target: string, options?: CallOptions): Promise<CallHandle>;
  protected abstract stopAgent(): Promise<void>;

  onIncoming(handler: (call: IncomingCall) => void): void {
    this.incomingHandlers.push(handler);
  }

  waitForIncoming(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<IncomingCall> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.stopped) return Promise.reject(new SoftphoneError('SOFTPHONE_ERR_STATE', `${this.aor} is stopped`));
    const waiter = new Deferred<IncomingCall>();
    this.waiters.push(waiter);
    return withTimeout(waiter.promise, timeoutMs, `${this.aor} waiting for an incoming call`).catch((err: unknown) => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
      throw err;
    });
  }

  /**
   * Waits until the phone's signalling has been quiet for `quietMs` (bounded by `maxMs`). Before a
   * re-INVITE: a person never clicks "resume" 2 ms after "hold", but a test does, and both libraries answer
   * a re-INVITE that arrives while they still process the previous ACK with 500 (RFC 3261 §14.2).
   */
  protected readonly settle = async (quietMs = 100, maxMs = 2_000): Promise<void> => {
    const deadline = Date.now() + maxMs;
    for (;;) {
      const last = Math.max(0, ...(TestWebSocket.byPath.get(this.path) ?? []).map((s) => s.lastActivity));
      const wait = last + quietMs - Date.now();
      if (wait <= 0 || Date.now() >= deadline) return;
      await sleep(Math.min(wait, deadline - Date.now()));
    }
  };

  /** The last response to `method` this phone received, whole. */
  protected lastResponse(method: string): string | undefined {
    const cseq = new RegExp(`^CSeq:\\s*\\d+\\s+${method}\\s*$`, 'im');
    const all = this.sockets.flatMap((s) => s.messages);
    return all.reverse().find((m) => m.dir === 'in' && m.text.startsWith('SIP/2.0') && cseq.test(m.text))?.text;
  }

  protected deliverIncoming(call: IncomingCall): void {
    for (const h of this.incomingHandlers) {
      try {
        h(call);
      } catch {
        // a test's handler must not break the library's event loop
      }
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(call);
    else this.queue.push(call);
  }

  abstract sendMessage(target: string, body: string, options?: SendMessageOptions): Promise<SentMessage>;
  abstract subscribe(target: string, event: string, options?: SubscribeOptions): Promise<Watch>;
  abstract publish(body: string, options?: { expires?: number }): Promise<Publication>;

  waitForMessages(count: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ReceivedMessage[]> {
    if (this.received.length >= count) return Promise.resolve(this.received.slice(0, count));
    const done = new Promise<ReceivedMessage[]>((resolve) => {
      const check = (): void => {
        if (this.received.length < count) return;
        this.events.off('message', check);
        resolve(this.received.slice(0, count));
      };
      this.events.on('message', check);
    });
    return withTimeout(done, timeoutMs, `${this.aor} waiting for ${count} messages (${this.received.length} so far)`);
  }

  /** A MESSAGE arrived (answered with messageAnswer by the library wrapper). */
  protected messageReceived(m: ReceivedMessage): void {
    if (this.messageAnswer >= 300) return;
    this.received.push(m);
    this.events.emit('message');
  }

  /** Called on every REGISTER answered 200 with our binding. */
  protected registered(): void {
    this.events.emit('registered', this.currentSocket);
  }

  async reconnect(options: { stale?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const old = this.currentSocket;
    if (old === undefined || !old.isOpen) throw new SoftphoneError('SOFTPHONE_ERR_STATE', `${this.aor} has no open WebSocket to drop`);
    const again = new Promise<void>((resolve) => {
      const onRegistered = (socket: TestWebSocket | undefined) => {
        if (socket === undefined || socket === old) return;
        this.events.off('registered', onRegistered);
        resolve();
      };
      this.events.on('registered', onRegistered);
    });
    if (options.stale) old.goStale();
    else old.drop();
    await withTimeout(again, options.timeoutMs ?? 8_000, `${this.aor} re-registering on a new WebSocket`);
  }

  async sleep(): Promise<void> {
    // The connection goes first, so the un-REGISTER of stop() has nowhere to go.
    for (const s of TestWebSocket.byPath.get(this.path) ?? []) s.kill();
    await this.stop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of this.waiters.splice(0)) w.reject(new SoftphoneError('SOFTPHONE_ERR_STATE', `${this.aor} stopped while waiting for a call`));
    try {
      await withTimeout(this.stopAgent(), STOP_GRACE_MS + 1_000, `${this.aor} stopping`);
    } catch {
      // stopping is best effort; the sockets are closed below whatever happened
    }
    for (const s of TestWebSocket.byPath.get(this.path) ?? []) s.kill();
    TestWebSocket.byPath.delete(this.path);
    this.events.removeAllListeners();
  }
}

/** The NOTIFYs of one subscription, whichever library received them. */
class WatchRecord implements Watch {
  readonly notifies: ReceivedNotify[] = [];
  private readonly events = new EventEmitter();

  constructor(private readonly label: string, readonly unsubscribe: () => Promise<void>) {}

  add(n: ReceivedNotify): void {
    this.notifies.push(n);
    this.events.emit('notify');
  }

  waitFor(match: (n: ReceivedNotify) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ReceivedNotify> {
    const found = this.notifies.find(match);
    if (found !== undefined) return Promise.resolve(found);
    const from = this.notifies.length;
    const done = new Promise<ReceivedNotify>((resolve) => {
      let seen = from;
      const check = (): void => {
        for (; seen < this.notifies.length; seen++) {
          if (match(this.notifies[seen]!)) {
            this.events.off('notify', check);
            resolve(this.notifies[seen]!);
            return;
          }
        }
      };
      this.events.on('notify', check);
    });
    return withTimeout(done, timeoutMs, `${this.label} waiting for a NOTIFY (${this.notifies.length} so far: ${this.notifies.map((n) => n.subscriptionState).join(', ')})`);
  }
}

/** First-wins end of a call, with a promise for those who wait on it. */
class CallEnding {
  readonly done = new Deferred<CallEnd>();
  get ended(): boolean {
    return this.done.settled;
  }
  end(e: CallEnd): void {
    this.done.resolve(e);
  }
  wait(timeoutMs: number, what: string): Promise<CallEnd> {
    return withTimeout(this.done.promise, timeoutMs, what);
  }
}

// ---- SIP.js -----------------------------------------------------------------------------------------

class SipJsCall implements CallHandle {
  readonly ending = new CallEnding();
  /** True once we started a BYE/CANCEL/reject, so a Terminated state is ours. */
  localEnd = false;
  /** Set by the session delegate on the ACK of our 2xx. */
  readonly acked = new Deferred<void>();
  /** Resolved by the next ACK while we owe the peer an ACK wait (a re-INVITE we answered 2xx). */
  private pendingAck: Deferred<void> | undefined;
  private dialog: Session['dialog'];

  constructor(
    readonly session: Session,
    private readonly sdh: () => FakeSessionDescriptionHandler | undefined,
    private readonly settle: () => Promise<void>,
  ) {
    session.delegate = {
      onAck: () => {
        this.acked.resolve();
        this.pendingAck?.resolve();
        this.pendingAck = undefined;
      },
      // A re-INVITE we answered 2xx: its server transaction lasts until the ACK, and SIP.js refuses to
      // start our own re-INVITE meanwhile (RFC 3261 §14.1).
      onInvite: (_request, _response, statusCode) => {
        if (statusCode >= 200 && statusCode < 300) this.pendingAck ??= new Deferred<void>();
      },
      onBye: (bye) => {
        void bye.accept().catch(() => undefined);
        this.ending.end({ originator: 'remote', cause: 'bye' });
      },
      onCancel: () => this.ending.end({ originator: 'remote', cause: 'canceled' }),
    };
    session.stateChange.addListener((state) => {
      if (state === SessionState.Established) this.dialog = session.dialog;
      // SIP.js enters Terminated before it calls the delegates that say why (onReject, …): let them speak first.
      if (state === SessionState.Terminated) {
        this.releaseTimers();
        setImmediate(() => this.ending.end({ originator: this.localEnd ? 'local' : 'system', cause: 'failed', detail: 'session terminated' }));
      }
    });
  }

  get ended(): boolean {
    return this.ending.ended;
  }

  get remoteDirection(): MediaDirection | undefined {
    return this.sdh()?.media.remoteDirection;
  }

  /**
   * SIP.js 0.21 keeps one slot for the 2xx-retransmission timer of re-INVITEs it answers (RFC 6026 §8.1):
   * each re-INVITE starts a new chain and the older ones keep running, even after the dialog is disposed,
   * as long as `reinviteUserAgentServer` is set. Clearing it ends every chain at its next tick, so that a
   * test process can exit.
   */
  releaseTimers(): void {
    if (this.dialog) (this.dialog as unknown as { reinviteUserAgentServer?: unknown }).reinviteUserAgentServer = undefined;
  }

  async hangup(): Promise<void> {
    if (this.session.state !== SessionState.Established) {
      throw new SoftphoneError('SOFTPHONE_ERR_STATE', `cannot hang up a session in state ${this.session.state}`);
    }
    this.localEnd = true;
    const answered = new Deferred<number>();
    await this.session.bye({
      requestDelegate: {
        onAccept: (r) => answered.resolve(r.message.statusCode ?? 200),
        onReject: (r) => answered.resolve(r.message.statusCode ?? 0),
      },
    });
    this.ending.end({ originator: 'local', cause: 'bye' });
    const status = await withTimeout(answered.promise, DEFAULT_TIMEOUT_MS, 'BYE response');
    if (status < 200 || status >= 300) throw new SoftphoneError('SOFTPHONE_ERR_STATUS', `BYE answered ${status}`, status);
  }

  hold(): Promise<void> {
    return this.reinvite(true);
  }

  unhold(): Promise<void> {
    return this.reinvite(false);
  }

  waitForEnded(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CallEnd> {
    return this.ending.wait(timeoutMs, 'waiting for the call to end');
  }

  private async reinvite(hold: boolean): Promise<void> {
    if (this.pendingAck) await withTimeout(this.pendingAck.promise, 2_000, 'the ACK of the peer\'s re-INVITE');
    await this.settle();
    const result = new Deferred<void>();
    await this.session.invite({
      sessionDescriptionHandlerOptions: { hold } as object,
      requestDelegate: {
        onAccept: () => result.resolve(),
        onReject: (r) => {
          const status = r.message.statusCode ?? 0;
          result.reject(new SoftphoneError('SOFTPHONE_ERR_STATUS', `re-INVITE (${hold ? 'hold' : 'unhold'}) answered ${status} ${r.message.reasonPhrase ?? ''}`, status));
        },
      },
    });
    await withTimeout(result.promise, DEFAULT_TIMEOUT_MS, `re-INVITE (${hold ? 'hold' : 'unhold'})`);
  }
}

class SipJsIncoming implements IncomingCall {
  readonly call: SipJsCall;
  readonly from: string;
  readonly requestUri: string;
  readonly invite: string;
  private readonly ringing: Promise<unknown>;

  constructor(private readonly invitation: Invitation, sdh: () => FakeSessionDescriptionHandler | undefined, settle: () => Promise<void>) {
    this.call = new SipJsCall(invitation, sdh, settle);
    const msg = invitation.request;
    this.from = msg.from.uri.toString();
    this.requestUri = msg.ruri?.toString() ?? '';
    this.invite = msg.data;
    // A phone rings: 180 before any answer.
    this.ringing = invitation.progress().catch(() => undefined);
  }

  async accept(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CallHandle> {
    await this.ringing;
    await this.invitation.accept();
    await withTimeout(this.call.acked.promise, timeoutMs, 'waiting for the ACK of our 200');
    return this.call;
  }

  async reject(status: number): Promise<void> {
    await this.ringing;
    this.call.localEnd = true;
    await this.invitation.reject({ statusCode: status });
    this.call.ending.end({ originator: 'local', cause: 'rejected', status });
  }

  waitForEnded(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CallEnd> {
    return this.call.waitForEnded(timeoutMs);
  }
}

class SipJsPhone extends PhoneBase {
  readonly library = 'sip.js';
  private readonly ua: UserAgent;
  private readonly registerer: Registerer;
  private readonly sdhs = new WeakMap<Session, FakeSessionDescriptionHandler>();
  private readonly calls = new Set<SipJsCall>();
  private wantRegistered = false;
  private reconnecting = false;
  /** Publishers and subscribers to dispose at stop. */
  private readonly disposables: Array<() => Promise<void>> = [];

  static async create(options: SoftphoneOptions): Promise<SipJsPhone> {
    const phone = new SipJsPhone(options);
    try {
      await withTimeout(phone.ua.start(), 5_000, `${phone.aor} connecting`);
    } catch (err) {
      await phone.stop();
      throw err;
    }
    return phone;
  }

  private constructor(options: SoftphoneOptions) {
    super(options);
    const uri = UserAgent.makeURI(options.uri);
    if (uri === undefined) throw new TypeError(`not a SIP URI: ${options.uri}`);
    this.ua = new UserAgent({
      uri,
      authorizationUsername: options.authorizationUser ?? userOf(options.uri),
      authorizationPassword: options.password,
      transportOptions: { server: this.url, connectionTimeout: 5, traceSip: false },
      sessionDescriptionHandlerFactory: createFakeSdhFactory({
        profile: options.media ?? 'webrtc',
        onCreate: (session, handler) => this.sdhs.set(session, handler),
      }),
      logBuiltinEnabled: DEBUG,
      logLevel: DEBUG ? 'debug' : 'error',
      noAnswerTimeout: 30,
      userAgentString: 'softswitch-test SIP.js',
      ...(options.contactParams === undefined ? {} : { contactParams: options.contactParams }),
      ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId, instanceIdAlwaysAdded: true }),
      delegate: {
        onMessage: (message) => {
          const r = message.request;
          if (this.messageAnswer >= 300) return void message.reject({ statusCode: this.messageAnswer }).catch(() => undefined);
          void message.accept().catch(() => undefined);
          this.messageReceived({
            from: r.from.uri.toString(),
            to: r.to.uri.toString(),
            contentType: r.getHeader('Content-Type') ?? '',
            body: r.body,
            messageId: r.getHeader('X-Message-Id'),
            date: r.getHeader('Date'),
          });
        },
        onInvite: (invitation) => {
          if (this.stopped) return void invitation.reject({ statusCode: 480 }).catch(() => undefined);
          const incoming = new SipJsIncoming(invitation, () => this.sdhs.get(invitation), this.settle);
          this.calls.add(incoming.call);
          this.deliverIncoming(incoming);
        },
        onConnect: () => {
          if (this.wantRegistered && !this.stopped) this.sendRegister().catch(() => undefined);
        },
        onDisconnect: (error) => {
          if (error && !this.stopped) void this.reconnectLoop();
        },
      },
    });
    this.registerer = new Registerer(this.ua, { expires: options.registerExpires ?? 300 });
  }

  /** SIP.js leaves reconnection to the application (as its SimpleUser does): retry every 500 ms. */
  private async reconnectLoop(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let attempt = 0; attempt < 20 && !this.stopped; attempt++) {
        await sleep(attempt === 0 ? 100 : 500);
        if (this.stopped) return;
        try {
          await this.ua.reconnect();
          return;
        } catch {
          // try again
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  register(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    this.wantRegistered = true;
    // SIP.js drops, without telling, a 200 that does not list our contact with an expiry: say what came back.
    return withTimeout(this.sendRegister(), timeoutMs, `${this.aor} REGISTER`).catch((err: unknown) => {
      if (err instanceof SoftphoneError && err.code === 'SOFTPHONE_ERR_TIMEOUT') {
        throw new SoftphoneError(err.code, `${err.message}; last REGISTER response: ${this.lastResponse('REGISTER') ?? 'none'}`);
      }
      throw err;
    });
  }

  private sendRegister(): Promise<void> {
    const result = new Deferred<void>();
    this.registerer
      .register({
        requestDelegate: {
          onAccept: (r) => {
            this.lastRegistered = r.message;
            result.resolve();
            this.registered();
          },
          onReject: (r) => {
            const status = r.message.statusCode ?? 0;
            result.reject(new SoftphoneError('SOFTPHONE_ERR_STATUS', `REGISTER answered ${status} ${r.message.reasonPhrase ?? ''}`, status));
          },
          onRedirect: (r) => {
            const status = r.message.statusCode ?? 0;
            result.reject(new SoftphoneError('SOFTPHONE_ERR_STATUS', `REGISTER answered ${status}`, status));
          },
        },
      })
      .catch((err: unknown) => result.reject(new SoftphoneError('SOFTPHONE_ERR_FAILED', `REGISTER not sent: ${String(err)}`)));
    return result.promise;
  }

  async unregister(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    this.wantRegistered = false;
    const result = new Deferred<void>();
    await this.registerer.unregister({
      requestDelegate: {
        onAccept: () => result.resolve(),
        onReject: (r) => {
          const status = r.message.statusCode ?? 0;
          result.reject(new SoftphoneError('SOFTPHONE_ERR_STATUS', `un-REGISTER answered ${status}`, status));
        },
      },
    });
    await withTimeout(result.promise, timeoutMs, `${this.aor} un-REGISTER`);
  }

  async subscribe(target: string, event: string, options: SubscribeOptions = {}): Promise<Watch> {
    const uri = UserAgent.makeURI(target);
    if (uri === undefined) throw new TypeError(`not a SIP URI: ${target}`);
    const subscriber = new Subscriber(this.ua, uri, event, {
      expires: options.expires ?? 600,
      extraHeaders: [`Accept: ${options.accept ?? EVENT_TYPES[event] ?? '*/*'}`],
    });
    const watch = new WatchRecord(`${this.aor} watching ${target} (${event})`, () => subscriber.unsubscribe());
    this.disposables.push(() => subscriber.dispose());
    subscriber.delegate = {
      onNotify: (notification) => {
        void notification.accept().catch(() => undefined);
        const r = notification.request;
        watch.add({ body: r.body, contentType: r.getHeader('Content-Type') ?? '', subscriptionState: r.getHeader('Subscription-State') ?? '' });
      },
    };
    const accepted = new Deferred<void>();
    subscriber.stateChange.addListener((state) => {
      if (state === SubscriptionState.Subscribed) accepted.resolve();
      if (state === SubscriptionState.Terminated) accepted.reject(new SoftphoneError('SOFTPHONE_ERR_FAILED', `SUBSCRIBE to ${target} (${event}) ended: ${this.lastResponse('SUBSCRIBE')?.split('\r\n')[0] ?? 'no response'}`));
    });
    await subscriber.subscribe();
    await withTimeout(accepted.promise, DEFAULT_TIMEOUT_MS, `${this.aor} SUBSCRIBE ${target}`);
    return watch;
  }

  async publish(body: string, options: { expires?: number } = {}): Promise<Publication> {
    const uri = UserAgent.makeURI(this.aor)!;
    const publisher = new Publisher(this.ua, uri, 'presence', { expires: options.expires ?? 600, contentType: 'application/pidf+xml' });
    this.disposables.push(() => publisher.dispose());
    // SIP.js's Publisher tells no outcome per PUBLISH: the final responses to PUBLISH on the wire say it.
    const finals = (): string[] => this.sockets.flatMap((k) => k.messages)
      .filter((m) => m.dir === 'in' && /^SIP\/2\.0 [2-6]\d\d/.test(m.text) && /^CSeq:\s*\d+\s+PUBLISH\s*$/im.test(m.text)).map((m) => m.text);
    const send = async (content: string): Promise<void> => {
      for (let before = finals().length, attempt = 0; ; attempt++) {
        if (attempt === 0) await publisher.publish(content);
        const deadline = Date.now() + DEFAULT_TIMEOUT_MS;
        while (finals().length <= before) {
          if (Date.now() > deadline) throw new SoftphoneError('SOFTPHONE_ERR_TIMEOUT', `${this.aor} PUBLISH: no final response`);
          await sleep(10);
        }
        const last = finals().at(-1)!;
        const status = Number(last.slice(8, 11));
        // A 401/407 is answered by SIP.js with credentials: wait for the next final response.
        if (status === 401 || status === 407) {
          before = finals().length;
          continue;
        }
        if (status >= 300) throw new SoftphoneError('SOFTPHONE_ERR_STATUS', `PUBLISH answered ${last.split('\r\n')[0]}`, status);
        return;
      }
    };
    await send(body);
    return {
      publish: send,
      unpublish: async () => {
        const done = new Promise<void>((resolve) => publisher.stateChange.addListener((st) => st === PublisherState.Unpublished && resolve()));
        await publisher.unpublish();
        await withTimeout(done, DEFAULT_TIMEOUT_MS, `${this.aor} un-PUBLISH`);
      },
    };
  }

  sendMessage(target: string, body: string, options: SendMessageOptions = {}): Promise<SentMessage> {
    const uri = UserAgent.makeURI(target);
    if (uri === undefined) throw new TypeError(`not a SIP URI: ${target}`);
    const result = new Deferred<SentMessage>();
    const messager = new Messager(this.ua, uri, body, options.contentType ?? 'text/plain');
    messager
      .message({
        requestDelegate: {
          onAccept: (r) => result.resolve({ status: r.message.statusCode ?? 0, messageId: r.message.getHeader('X-Message-Id') }),
          onReject: (r) => {
            const status = r.message.statusCode ?? 0;
            result.reject(new SoftphoneError('SOFTPHONE_ERR_STATUS', `MESSAGE answered ${status} ${r.message.reasonPhrase ?? ''}`, status));
          },
        },
      })
      .catch((err: unknown) => result.reject(new SoftphoneError('SOFTPHONE_ERR_FAILED', `MESSAGE not sent: ${String(err)}`)));
    return withTimeout(result.promise, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, `${this.aor} MESSAGE to ${target}`);
  }

  async call(target: string, options: CallOptions = {}): Promise<CallHandle> {
    const uri = UserAgent.makeURI(target);
    if (uri === undefined) throw new TypeError(`not a SIP URI: ${target}`);
    const inviter = new Inviter(this.ua, uri, { earlyMedia: false });
    const call = new SipJsCall(inviter, () => this.sdhs.get(inviter), this.settle);
    this.calls.add(call);
    const outcome = new Deferred<CallHandle>();
    let finalStatus: number | undefined;
    let finalReason = '';
    let canceled = false;
    inviter.stateChange.addListener((state) => {
      if (state === SessionState.Established) outcome.resolve(call);
      // SIP.js moves to Terminated before it calls the request delegate's onReject: settle after it.
      if (state === SessionState.Terminated) setImmediate(settleTerminated);
    });
    const settleTerminated = () => {
      {
        if (canceled) {
          outcome.reject(new SoftphoneError('SOFTPHONE_ERR_CANCELED', `call canceled (final ${finalStatus ?? 'none'})`, finalStatus));
        } else if (finalStatus !== undefined) {
          outcome.reject(new SoftphoneError('SOFTPHONE_ERR_STATUS', `INVITE answered ${finalStatus} ${finalReason}`, finalStatus));
        } else {
          outcome.reject(new SoftphoneError('SOFTPHONE_ERR_FAILED', 'the call failed without a final response'));
        }
      }
    };
    const onAbort = () => {
      canceled = true;
      call.localEnd = true;
      if (inviter.state === SessionState.Initial || inviter.state === SessionState.Establishing) {
        inviter.cancel().catch(() => undefined);
      }
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await inviter.invite({
        requestDelegate: {
          onProgress: (r) => options.onProgress?.(r.message.statusCode ?? 0),
          onReject: (r) => {
            finalStatus = r.message.statusCode;
            finalReason = r.message.reasonPhrase ?? '';
            if (!canceled) call.ending.end({ originator: 'remote', cause: 'rejected', status: finalStatus });
            else call.ending.end({ originator: 'local', cause: 'canceled', status: finalStatus });
          },
        },
      });
      return await withTimeout(outcome.promise, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, `call to ${target}`);
    } catch (err) {
      if (inviter.state === SessionState.Initial || inviter.state === SessionState.Establishing) {
        call.localEnd = true;
        await inviter.cancel().catch(() => undefined);
      }
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  protected async stopAgent(): Promise<void> {
    this.wantRegistered = false;
    // Publishers and subscribers keep refresh timers of their own (minutes long) that the UA's stop leaves.
    for (const dispose of this.disposables.splice(0)) await withTimeout(dispose(), STOP_GRACE_MS, 'dispose').catch(() => undefined);
    if (this.registerer.state === RegistererState.Registered) {
      await withTimeout(this.unregister(STOP_GRACE_MS), STOP_GRACE_MS, 'un-REGISTER').catch(() => undefined);
    }
    await this.registerer.dispose().catch(() => undefined);
    await this.ua.stop();
    for (const call of this.calls) call.releaseTimers();
  }
}

// ---- JsSIP ------------------------------------------------------------------------------------------

type JsSipUa = InstanceType<typeof JsSIP.UA>;
type JsSipSession = ReturnType<JsSipUa['call']>;
interface JsSipEndEvent {
  originator: string;
  cause: string;
  message?: { status_code?: number } | null;
}

const JSSIP_CANCELED = 'Canceled';

function jssipEnd(kind: 'ended' | 'failed', e: JsSipEndEvent): CallEnd {
  const originator = e.originator === 'local' || e.originator === 'remote' ? e.originator : 'system';
  const status = e.message?.status_code;
  if (kind === 'ended') return { originator, cause: 'bye', detail: e.cause };
  if (e.cause === JSSIP_CANCELED) return { originator, cause: 'canceled', status, detail: e.cause };
  if (originator === 'remote' && status !== undefined && status >= 300) return { originator, cause: 'rejected', status, detail: e.cause };
  if (originator === 'local' && status === undefined && e.cause === 'Rejected') return { originator, cause: 'rejected', detail: e.cause };
  return { originator, cause: 'failed', status, detail: e.cause };
}

class JsSipCall implements CallHandle {
  readonly ending = new CallEnding();
  readonly confirmed = new Deferred<void>();

  constructor(
    readonly session: JsSipSession,
    private readonly settle: () => Promise<void>,
  ) {
    session.on('confirmed', () => this.confirmed.resolve());
    session.on('ended', (e) => this.ending.end(jssipEnd('ended', e as unknown as JsSipEndEvent)));
    session.on('failed', (e) => this.ending.end(jssipEnd('failed', e as unknown as JsSipEndEvent)));
  }

  get ended(): boolean {
    return this.ending.ended;
  }

  get remoteDirection(): MediaDirection | undefined {
    const pc = this.session.connection as unknown;
    return pc instanceof FakePeerConnection ? pc.media.remoteDirection : undefined;
  }

  async hangup(): Promise<void> {
    if (!this.session.isEstablished()) throw new SoftphoneError('SOFTPHONE_ERR_STATE', 'cannot hang up a call not established');
    this.session.terminate();
    await this.waitForEnded();
  }

  hold(): Promise<void> {
    return this.reinvite('hold');
  }

  unhold(): Promise<void> {
    return this.reinvite('unhold');
  }

  waitForEnded(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CallEnd> {
    return this.ending.wait(timeoutMs, 'waiting for the call to end');
  }

  private async reinvite(what: 'hold' | 'unhold'): Promise<void> {
    // JsSIP refuses to re-offer while a transaction of the dialog is open (e.g. the peer's re-INVITE
    // waiting for its ACK, RFC 3261 §14.1): wait for that, briefly.
    for (let i = 0; i < 40 && !this.session.isReadyToReOffer() && !this.ended; i++) await sleep(50);
    await this.settle();
    const done = new Deferred<void>();
    // JsSIP ends the call with BYE when a hold re-INVITE fails; that is the failure we see.
    void this.ending.done.promise.then((e) => done.reject(new SoftphoneError('SOFTPHONE_ERR_FAILED', `call ended during the ${what} re-INVITE (${e.detail ?? e.cause})`, e.status)));
    const started = what === 'hold' ? this.session.hold({}, () => done.resolve()) : this.session.unhold({}, () => done.resolve());
    if (!started) throw new SoftphoneError('SOFTPHONE_ERR_STATE', `JsSIP refused to ${what} now`);
    await withTimeout(done.promise, DEFAULT_TIMEOUT_MS, `re-INVITE (${what})`);
  }
}

class JsSipIncoming implements IncomingCall {
  readonly call: JsSipCall;
  readonly from: string;
  readonly requestUri: string;
  readonly invite: string;

  constructor(
    session: JsSipSession,
    request: { ruri: { toString(): string }; toString(): string },
    private readonly media: MediaProfile,
    settle: () => Promise<void>,
  ) {
    this.call = new JsSipCall(session, settle);
    this.from = session.remote_identity.uri.toString();
    this.requestUri = request.ruri.toString();
    this.invite = request.toString();
  }

  async accept(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CallHandle> {
    const pcConfig: FakePcConfig = { iceServers: [], fakeMediaProfile: this.media };
    this.call.session.answer({ mediaStream: createFakeMediaStream() as never, pcConfig: pcConfig as never });
    const ended = this.call.ending.done.promise.then((e) => {
      throw new SoftphoneError('SOFTPHONE_ERR_FAILED', `the call ended before the ACK (${e.detail ?? e.cause})`, e.status);
    });
    await withTimeout(Promise.race([this.call.confirmed.promise, ended]), timeoutMs, 'waiting for the ACK of our 200');
    return this.call;
  }

  async reject(status: number): Promise<void> {
    this.call.session.terminate({ status_code: status });
    await this.call.waitForEnded();
  }

  waitForEnded(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CallEnd> {
    return this.call.waitForEnded(timeoutMs);
  }
}

/** Node's Timeout/Immediate objects, as JsSIP keeps them in its transactions' fields. */
function isTimer(value: unknown): value is NodeJS.Timeout {
  return typeof value === 'object' && value !== null && typeof (value as NodeJS.Timeout).hasRef === 'function' && typeof (value as NodeJS.Timeout).refresh === 'function';
}

class JsSipPhone extends PhoneBase {
  readonly library = 'jssip';
  private readonly ua: JsSipUa;
  /** Every transaction the UA made: JsSIP leaves some timers running after them (see stopAgent). */
  private readonly transactions = new Set<object>();
  /** Subscriptions made, ended at stop. */
  private readonly subscribers: Array<ReturnType<JsSipUa['subscribe']>> = [];

  static async create(options: SoftphoneOptions): Promise<JsSipPhone> {
    installFakeWebRtc();
    if (DEBUG) JsSIP.debug.enable('JsSIP:*');
    const phone = new JsSipPhone(options);
    const connected = new Promise<void>((resolve) => phone.ua.once('connected', () => resolve()));
    phone.ua.start();
    try {
      await withTimeout(connected, 5_000, `${phone.aor} connecting`);
    } catch (err) {
      await phone.stop();
      throw err;
    }
    return phone;
  }

  private constructor(options: SoftphoneOptions) {
    super(options);
    this.ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(this.url)],
      uri: options.uri,
      password: options.password,
      authorization_user: options.authorizationUser ?? userOf(options.uri),
      register: false,
      register_expires: options.registerExpires ?? 300,
      session_timers: false,
      connection_recovery_min_interval: 1,
      connection_recovery_max_interval: 2,
      no_answer_timeout: 30,
      user_agent: 'softswitch-test JsSIP',
    });
    this.ua.on('registered', () => this.registered());
    this.ua.on('newMessage', (e: unknown) => {
      const ev = e as { originator: string; message: { reject(o: { status_code: number }): void }; request: JsSipIncomingRequest };
      if (ev.originator !== 'remote') return;
      // JsSIP answers 200 itself unless the app rejects first.
      if (this.messageAnswer >= 300) return void ev.message.reject({ status_code: this.messageAnswer });
      const r = ev.request;
      this.messageReceived({
        from: r.from.uri.toString(),
        to: r.to.uri.toString(),
        contentType: r.getHeader('Content-Type') ?? '',
        body: r.body ?? '',
        messageId: r.getHeader('X-Message-Id'),
        date: r.getHeader('Date'),
      });
    });
    (this.ua as unknown as EventEmitter).on('newTransaction', (e: { transaction: object }) => this.transactions.add(e.transaction));
    this.ua.on('newRTCSession', (e: unknown) => {
      const ev = e as unknown as { originator: string; session: JsSipSession; request: { ruri: { toString(): string }; toString(): string } };
      if (ev.originator !== 'remote') return;
      if (this.stopped) return void ev.session.terminate({ status_code: 480 });
      this.deliverIncoming(new JsSipIncoming(ev.session, ev.request, options.media ?? 'webrtc', this.settle));
    });
  }

  register(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const result = new Promise<void>((resolve, reject) => {
      const onOk = (e: { response: { getHeader(name: string): string | undefined } }) => {
        this.lastRegistered = e.response;
        cleanup();
        resolve();
      };
      const onFail = (e: { response?: { status_code?: number; reason_phrase?: string } | null; cause?: string }) => {
        cleanup();
        const status = e.response?.status_code;
        reject(
          status === undefined
            ? new SoftphoneError('SOFTPHONE_ERR_FAILED', `REGISTER failed: ${e.cause ?? 'no response'}`)
            : new SoftphoneError('SOFTPHONE_ERR_STATUS', `REGISTER answered ${status} ${e.response?.reason_phrase ?? ''}`, status),
        );
      };
      const cleanup = () => {
        this.ua.off('registered', onOk);
        this.ua.off('registrationFailed', onFail as never);
      };
      this.ua.on('registered', onOk);
      this.ua.on('registrationFailed', onFail as never);
    });
    this.ua.register();
    return withTimeout(result, timeoutMs, `${this.aor} REGISTER`);
  }

  unregister(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const result = new Promise<void>((resolve) => this.ua.once('unregistered', () => resolve()));
    this.ua.unregister();
    return withTimeout(result, timeoutMs, `${this.aor} un-REGISTER`);
  }

  subscribe(target: string, event: string, options: SubscribeOptions = {}): Promise<Watch> {
    const subscriber = this.ua.subscribe(target, event, options.accept ?? EVENT_TYPES[event] ?? '*/*', { expires: options.expires ?? 600, contentType: 'text/plain' } as never);
    this.subscribers.push(subscriber);
    const watch = new WatchRecord(`${this.aor} watching ${target} (${event})`, async () => {
      const ended = new Promise<void>((resolve) => subscriber.once('terminated', () => resolve()));
      subscriber.terminate();
      await withTimeout(ended, DEFAULT_TIMEOUT_MS, `${this.aor} un-SUBSCRIBE`);
    });
    subscriber.on('notify', (_final: boolean, request: JsSipIncomingRequest, body?: string, contentType?: string) => {
      watch.add({ body: body ?? '', contentType: contentType ?? '', subscriptionState: request.getHeader('Subscription-State') ?? '' });
    });
    const accepted = new Promise<Watch>((resolve, reject) => {
      subscriber.once('accepted', () => resolve(watch));
      subscriber.once('terminated', (code: number, reason?: string) => reject(new SoftphoneError('SOFTPHONE_ERR_FAILED', `SUBSCRIBE to ${target} (${event}) ended: code ${code} ${reason ?? ''}`)));
    });
    subscriber.subscribe();
    return withTimeout(accepted, DEFAULT_TIMEOUT_MS, `${this.aor} SUBSCRIBE ${target}`);
  }

  publish(): Promise<Publication> {
    // JsSIP 3.x has no PUBLISH client (its apps publish through the server's API or not at all).
    return Promise.reject(new SoftphoneError('SOFTPHONE_ERR_FAILED', 'JsSIP has no PUBLISH'));
  }

  sendMessage(target: string, body: string, options: SendMessageOptions = {}): Promise<SentMessage> {
    const result = new Promise<SentMessage>((resolve, reject) => {
      this.ua.sendMessage(target, body, {
        contentType: options.contentType ?? 'text/plain',
        eventHandlers: {
          succeeded: (e: unknown) => {
            const response = (e as { response: JsSipIncomingResponse }).response;
            resolve({ status: response.status_code, messageId: response.getHeader('X-Message-Id') });
          },
          failed: (e) => {
            const status = e.response?.status_code;
            reject(status === undefined
              ? new SoftphoneError('SOFTPHONE_ERR_FAILED', `MESSAGE failed: ${String(e.cause)}`)
              : new SoftphoneError('SOFTPHONE_ERR_STATUS', `MESSAGE answered ${status} ${e.response.reason_phrase ?? ''}`, status));
          },
        },
      });
    });
    return withTimeout(result, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, `${this.aor} MESSAGE to ${target}`);
  }

  async call(target: string, options: CallOptions = {}): Promise<CallHandle> {
    const pcConfig: FakePcConfig = { iceServers: [], fakeMediaProfile: this.options.media ?? 'webrtc' };
    const session = this.ua.call(target, {
      mediaStream: createFakeMediaStream() as never,
      pcConfig: pcConfig as never,
      eventHandlers: {
        progress: (e: unknown) => {
          const r = (e as unknown as { response?: { status_code?: number } }).response;
          if (r?.status_code !== undefined) options.onProgress?.(r.status_code);
        },
      },
    });
    const call = new JsSipCall(session, this.settle);
    const onAbort = () => {
      if (!session.isEnded()) session.terminate();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const failed = call.ending.done.promise.then((e): never => {
      if (e.cause === 'canceled' && e.originator === 'local') {
        throw new SoftphoneError('SOFTPHONE_ERR_CANCELED', `call canceled (${e.detail ?? ''})`, e.status);
      }
      if (e.status !== undefined && e.status >= 300) {
        throw new SoftphoneError('SOFTPHONE_ERR_STATUS', `INVITE answered ${e.status} (${e.detail ?? ''})`, e.status);
      }
      throw new SoftphoneError('SOFTPHONE_ERR_FAILED', `the call failed: ${e.detail ?? e.cause}`, e.status);
    });
    try {
      await withTimeout(Promise.race([call.confirmed.promise, failed]), options.timeoutMs ?? DEFAULT_TIMEOUT_MS, `call to ${target}`);
      return call;
    } catch (err) {
      if (!session.isEnded()) session.terminate();
      throw err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  protected async stopAgent(): Promise<void> {
    // A subscriber's refresh timer outlives ua.stop(): end its dialog here (JsSIP has no dispose).
    for (const sub of this.subscribers.splice(0)) (sub as unknown as { _terminateDialog(code: number): void })._terminateDialog(0);
    const unregistered = this.ua.isRegistered()
      ? new Promise<void>((resolve) => this.ua.once('unregistered', () => resolve()))
      : Promise.resolve();
    this.ua.stop(); // un-REGISTERs and ends the sessions
    await withTimeout(unregistered, STOP_GRACE_MS, 'JsSIP un-REGISTER').catch(() => undefined);
    // ua.stop() keeps the socket up to 2 s more for transactions in their completion timers, and a socket
    // closed under it then would make the transport reconnect. JsSIP has no public way to close at once:
    // do what its close timer does now.
    const internals = this.ua as unknown as { _closeTimer?: NodeJS.Timeout | null; _transport?: { disconnect(): void } };
    if (internals._closeTimer) {
      clearTimeout(internals._closeTimer);
      internals._closeTimer = null;
    }
    internals._transport?.disconnect();
    // JsSIP 3.13 starts Timer I on the ACK of a non-2xx final response without clearing Timer H, so every
    // 486/487 it sends leaves a 32 s timer behind; a stopped UA has no use for any transaction timer.
    for (const tr of this.transactions) {
      for (const value of Object.values(tr)) if (isTimer(value)) clearTimeout(value);
    }
  }

}
