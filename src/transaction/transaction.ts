import { type HeaderField, SipRequest, SipResponse } from '../sip/index.js';
import type { Destination, Flow } from '../transport/types.js';
import { TransactionError, TransactionStateError } from './errors.js';
import type { RetransmissionTimer, TimerHandle, TimerName, TimeoutTimer, WaitTimer } from './timers.js';
import { TransactionState, type TransitionTable } from './transaction-state.js';
import type { AnyTransaction, TransactionContext, TransactionEvents, TransactionKind } from './types.js';

type E = TransactionEvents;
type Listener<A extends unknown[]> = (...args: A) => void;
type ListenerTable = { [K in keyof E]?: Array<Listener<E[K]>> };

/**
 * What the four §17 machines share: the request, the state with its one guarded `transition()`, the
 * timers by the job the RFC gives them (retransmission doubling from T1, timeout, the wait that absorbs
 * retransmissions), sending through the transport with failures reported once, the way a transaction
 * fails (timeout or transport error: event, TU, Terminated), and a small typed emitter (listeners are
 * stored only when someone listens, so an unobserved transaction costs nothing). All four machines share
 * one event map, so `on()` can be called on a `ServerTransaction` or `ClientTransaction` union.
 */
export abstract class Transaction {
  private req: SipRequest;
  /** The layer's table key, built once (§17.1.3 for clients, §17.2.3 for servers). */
  readonly key: string;
  protected readonly ctx: TransactionContext;
  private currentState: TransactionState;
  private listeners: ListenerTable | undefined;
  private held: number;
  /** Over a reliable transport nothing is retransmitted and the waits of Completed/Confirmed are zero. */
  protected readonly reliable: boolean;
  /** Timer A, E or G while it runs, and the interval it was last set to. */
  private retransmissionTimer: TimerHandle | undefined;
  private retransmissionInterval: number;
  /** Timer B, F or H while it runs. */
  private timeoutTimer: TimerHandle | undefined;
  /** Timer D, I, J, K, L or M while it runs. */
  private waitTimer: TimerHandle | undefined;

  constructor(request: SipRequest, key: string, ctx: TransactionContext, initial: TransactionState, reliable: boolean) {
    this.req = request;
    this.held = 0;
    this.key = key;
    this.ctx = ctx;
    this.currentState = initial;
    this.listeners = undefined;
    this.reliable = reliable;
    this.retransmissionTimer = undefined;
    this.retransmissionInterval = 0;
    this.timeoutTimer = undefined;
    this.waitTimer = undefined;
  }

  /**
   * The request that created the transaction. Once a server transaction has sent its final response, it
   * is a copy with only the fields a response echoes (§8.2.6.2: Via, From, To, Call-ID, CSeq).
   */
  get request(): SipRequest {
    return this.req;
  }

  /**
   * Wire bytes this transaction keeps alive (its request, its last response), as told to the layer;
   * server transactions only: what a client transaction holds is ours.
   */
  get heldBytes(): number {
    return this.held;
  }

  abstract get kind(): TransactionKind;
  protected abstract get transitions(): TransitionTable;
  /**
   * Timer A, E or G fired: passes the request (client) or the last response (server) to the transport
   * again and returns the timer's next interval, which is where the machines differ.
   */
  protected abstract retransmit(previous: number): number;
  /** Tells the TU of a timeout or a transport error, after the event and before Terminated. */
  protected abstract tellUser(which: 'onTimeout' | 'onTransportError', error?: Error): void;

  get state(): TransactionState {
    return this.currentState;
  }

  get isTerminated(): boolean {
    return this.currentState === TransactionState.Terminated;
  }

  /** For checks after a call that may have moved the state (a TU callback, a listener). */
  protected isIn(state: TransactionState): boolean {
    return this.currentState === state;
  }

  /**
   * Ends the transaction at once, whatever its state: timers cleared, removed from the layer's table,
   * `terminated` emitted. The TU uses it to abandon a transaction; `TransactionLayer.stop()` calls it on
   * all of them. A no-op on a terminated transaction.
   */
  terminate(): void {
    if (this.currentState === TransactionState.Terminated) return;
    this.clearTimers();
    this.transition(TransactionState.Terminated);
    this.setHeld(0);
    this.ctx.owner.transactionTerminated(this as unknown as AnyTransaction);
    this.emit('terminated');
  }

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const table: ListenerTable = (this.listeners ??= {});
    const list = table[event];
    if (list === undefined) table[event] = [listener] as ListenerTable[K];
    else list.push(listener);
    return this;
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const list = this.listeners?.[event];
    if (list !== undefined) {
      const i = list.indexOf(listener);
      if (i !== -1) list.splice(i, 1);
    }
    return this;
  }

  /** Calls the listeners in order; one that throws is logged and the others still run. */
  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const list = this.listeners?.[event];
    if (list === undefined || list.length === 0) return;
    for (const listener of list.length === 1 ? list : list.slice()) {
      try {
        listener(...args);
      } catch (err) {
        this.ctx.logger.error({ err, tx: this.key, event: String(event) }, 'transaction listener threw');
      }
    }
  }

  /** The one way the state changes: a move the machine's table does not list throws TransactionStateError. */
  protected transition(to: TransactionState): void {
    const from = this.currentState;
    const allowed = this.transitions[from];
    if (allowed === undefined || !allowed.includes(to)) throw new TransactionStateError(this.kind, from, to);
    this.currentState = to;
    const log = this.ctx.logger;
    if (log.isLevelEnabled('debug')) {
      log.debug({ tx: this.key, kind: this.kind, method: this.request.method, from, to }, 'transaction state');
    }
    this.emit('stateChanged', to, from);
  }

  /** Tells the layer what this transaction now holds. */
  protected setHeld(bytes: number): void {
    if (bytes === this.held) return;
    this.ctx.owner.heldChanged?.(bytes - this.held);
    this.held = bytes;
  }

  /**
   * After the final response the request is needed only to echo its routing fields in a response the TU
   * might still pass (which is then discarded) and for the Call-ID/CSeq in logs. The parsed request keeps
   * the whole datagram and its decoded text alive (header values are slices of it) for Timer H/J/L, 32 s:
   * a flood of large requests answered with one 407 each held them all. A request of the five fields,
   * copied out of the text they were sliced from and parsed only if asked, keeps a few hundred bytes.
   * Returns the new request's size.
   */
  protected compactRequest(): number {
    const old = this.req;
    const fields: HeaderField[] = [];
    let size = old.uri.length + 16;
    for (const h of old.headers) {
      if (h.key === 'via' || h.key === 'from' || h.key === 'to' || h.key === 'call-id' || h.key === 'cseq') {
        fields.push({ key: h.key, name: detach(h.name), value: detach(h.value), raw: undefined });
        size += h.name.length + h.value.length + 4;
      }
    }
    this.req = new SipRequest({ method: detach(old.method), uri: detach(old.uri), headers: fields, version: detach(old.version) });
    return size;
  }

  /**
   * The last response as kept after the final one: status, reason, To (the tag RFC 2543 ACK matching
   * compares), Call-ID and CSeq, copied likewise. A response built by createResponse shares the request's
   * header fields, whose text would keep the request's text alive.
   */
  protected detachedResponse(response: SipResponse): SipResponse {
    const fields: HeaderField[] = [];
    for (const h of response.headers) {
      if (h.key === 'to' || h.key === 'call-id' || h.key === 'cseq') fields.push({ key: h.key, name: detach(h.name), value: detach(h.value), raw: undefined });
    }
    return new SipResponse({ status: response.status, reason: detach(response.reason), headers: fields });
  }

  /**
   * Starts Timer A, E or G at `first`, over an unreliable transport only (§17.1.1.2, §17.1.2.2, §17.2.1:
   * "For unreliable transports"); each time it fires, `retransmit` re-sends and gives the next interval.
   */
  protected startRetransmissions(name: RetransmissionTimer, first: number): void {
    if (this.reliable) return;
    this.retransmissionInterval = first;
    this.retransmissionTimer = this.setTimer(name, first);
  }

  /**
   * Starts Timer B, F or H. When it fires the transaction times out: `timeout`, the TU told, Terminated.
   * Every move out of the state it guards clears the timers, so it fires only in that state.
   */
  protected startTimeout(name: TimeoutTimer, ms: number): void {
    this.timeoutTimer = this.setTimer(name, ms);
  }

  /**
   * Completed, Confirmed and Accepted last as long as retransmissions may still arrive (Timer D, I, J, K, L
   * or M), then the transaction terminates; a wait of zero (reliable transports) terminates it at once.
   */
  protected absorbRetransmissionsFor(name: WaitTimer, ms: number): void {
    if (ms === 0) this.terminate();
    else this.waitTimer = this.setTimer(name, ms);
  }

  /** Cancels every timer the machine may have running. */
  protected clearTimers(): void {
    this.retransmissionTimer = this.cancelTimer(this.retransmissionTimer);
    this.timeoutTimer = this.cancelTimer(this.timeoutTimer);
    this.waitTimer = this.cancelTimer(this.waitTimer);
  }

  private setTimer(name: TimerName, ms: number): TimerHandle {
    return this.ctx.timers.setTimeout(() => this.fire(name), ms);
  }

  private cancelTimer(handle: TimerHandle | undefined): undefined {
    if (handle !== undefined) this.ctx.timers.clearTimeout(handle);
    return undefined;
  }

  /** Hands bytes to the transport; a rejection (or a synchronous throw) reaches `transportFailed` once. */
  protected transmit(data: Buffer, destination: Destination): void {
    let sent: Promise<Flow>;
    try {
      sent = this.ctx.transport.send(data, destination);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(this.sentCallback(), this.failedCallback);
  }

  /** Client transactions learn the flow their request went out on; servers need nothing. */
  protected sentCallback(): ((flow: Flow) => void) | undefined {
    return undefined;
  }

  /**
   * §17.1.4: "the client transaction SHOULD inform the TU that a transport failure has occurred, and the
   * client transaction SHOULD transition directly to the 'Terminated' state"; §17.2.4 likewise for a
   * response the transport (having tried the fallback address of §18.2.2) cannot deliver.
   */
  private transportFailed(error: Error): void {
    this.clearTimers();
    this.emit('transportError', error);
    this.tellUser('onTransportError', error);
    this.terminate();
  }

  /**
   * Timer B (§17.1.1.2) or F (§17.1.2.2): "inform the TU that a timeout has occurred"; Timer H (§17.2.1):
   * "the ACK was never received ... MUST indicate to the TU that a transaction failure has occurred".
   */
  private timedOut(): void {
    this.clearTimers();
    this.emit('timeout');
    this.tellUser('onTimeout');
    this.terminate();
  }

  /**
   * A send failed. Reported while the transaction is alive, then the transaction terminates; after
   * termination the failure is only logged.
   */
  private readonly failedCallback = (err: unknown): void => {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.currentState === TransactionState.Terminated) {
      this.ctx.logger.warn({ err: error, tx: this.key }, 'send failed after the transaction terminated');
      return;
    }
    try {
      this.transportFailed(error);
    } catch (e) {
      this.ctx.logger.error({ err: e, tx: this.key }, 'transport error handling threw');
    }
  };

  private fire(name: TimerName): void {
    const log = this.ctx.logger;
    if (log.isLevelEnabled('trace')) log.trace({ tx: this.key, timer: name, state: this.currentState }, 'timer fired');
    try {
      switch (name) {
        case 'A':
        case 'E':
        case 'G':
          this.retransmissionTimer = undefined;
          this.retransmissionInterval = this.retransmit(this.retransmissionInterval);
          this.retransmissionTimer = this.setTimer(name, this.retransmissionInterval);
          return;
        case 'B':
        case 'F':
        case 'H':
          this.timeoutTimer = undefined;
          this.timedOut();
          return;
        default:
          this.waitTimer = undefined;
          this.terminate();
      }
    } catch (err) {
      this.ctx.logger.error({ err, tx: this.key, timer: name }, 'timer handler threw');
    }
  }

  /** Throws the named error for a method called on a terminated transaction. */
  protected assertAlive(what: string): void {
    if (this.currentState === TransactionState.Terminated) {
      throw new TransactionError('TRANSACTION_ERR_TERMINATED', `${what} on a terminated ${this.kind} transaction (${this.key})`);
    }
  }
}

/**
 * About the octets a parsed message came from: its header fields as they stand and its body. One pass
 * over ~20 fields, no allocation (the pristine bytes are gone once the core stamps `received` on the Via).
 */
export function wireSize(msg: { headers: ReadonlyArray<{ name: string; value: string; raw: string | undefined }>; body: Buffer }): number {
  let n = msg.body.length + 64; // start line
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i]!;
    n += h.raw !== undefined ? h.raw.length : h.name.length + h.value.length + 4;
  }
  return n;
}

/**
 * A copy of a string that shares no memory with it: V8 keeps a slice (13+ characters) or a concatenation
 * pointing at the string it came from, so a header value would keep the whole message text alive.
 */
export function detach(s: string): string {
  return s.length === 0 ? '' : Buffer.from(s, 'latin1').toString('latin1');
}
