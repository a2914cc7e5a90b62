/**
 * The push call server (RFC 8599 §5.6): wakes a sleeping device for a call and tells the routing policy
 * when (and as which binding) it registered again, so that the held INVITE is forked to it — once.
 *
 * One push per device per call: a second wake of the same device for the same call (the INVITE forked to
 * two AoRs the device shares, a retransmission) joins the first. One INVITE per device: the wait ends at the
 * first REGISTER of the device (the registrar's refresh rule: RFC 5626 +sip.instance and reg-id, the same
 * Contact, or the RFC 8599 pn-provider/pn-prid), whichever connection or worker it arrives on; later
 * refreshes do not count. A device that
 * was pushed but not reached gets a "cancel" push when the call ends without it (the caller hung up, another
 * device answered, the wake timed out), so the app can take its incoming-call screen down.
 */
import { type Logger, categoryLogger } from '../src/log/index.js';
import type { PushProvider } from '../src/sip/index.js';
import type { Binding } from '../registrar/index.js';
import { shortToken } from './delivery.js';
import type { PushPayload, PushProviderClient, PushResult } from './types.js';

/** The wake times kept for the median and p95 of /health. */
const WAKE_SAMPLES = 1000;

export interface PushServiceOptions {
  providers: ReadonlyMap<PushProvider, PushProviderClient>;
  /** Bindings added or refreshed, local or from another worker (RegistrarApi.onBinding). */
  onBinding(listener: (binding: Binding) => void): () => void;
  /** A provider said the device's token is dead: its push binding goes. */
  forget(binding: Binding): void;
  /** Whether a binding is the device registered again (the registrar's refresh rule: `isSameDevice`). */
  sameDevice(before: Binding, after: Binding): boolean;
  /** How long a device may take to register again after its push, ms. */
  wakeTimeoutMs: number;
  /** Message pushes carry the text (push.includeContent); otherwise the sender only. */
  includeContent?: boolean;
  logger: Logger;
  now?: () => number;
}

/** The call a device is woken for. */
export interface WakeCall {
  callId: string;
  /** The AoR the call is for (user@domain). */
  aor: string;
  from: string;
  fromName?: string | undefined;
}

export interface PushStats {
  sent: number;
  failed: Record<string, number>;
  woken: number;
  timedOut: number;
  cancelsSent: number;
  /** ms from the push to the device's REGISTER. */
  wakeMedianMs: number | undefined;
  wakeP95Ms: number | undefined;
  /** Provider answers by provider (apns, fcm, webpush): accepted, or not (any reason). */
  byProvider: Record<string, { ok: number; failed: number }>;
}

interface Wake {
  promise: Promise<Binding | undefined>;
  /** Ends the wait (its timer, its listeners) with this outcome. */
  end(binding: Binding | undefined): void;
  device: Binding;
  call: WakeCall;
}

function deviceKey(b: Binding): string {
  return b.push !== undefined ? `${b.aor}\n${b.push.provider}\n${b.push.prid}` : `${b.aor}\n${b.instanceId ?? b.contactUri}`;
}


export class PushService {
  private readonly providers: ReadonlyMap<PushProvider, PushProviderClient>;
  private readonly opts: PushServiceOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Wakes in progress by call and device. */
  private readonly wakes = new Map<string, Wake>();
  private readonly counters = { sent: 0, woken: 0, timedOut: 0, cancelsSent: 0 };
  private readonly failed: Record<string, number> = {};
  private readonly byProvider: Record<string, { ok: number; failed: number }> = {};
  private readonly wakeTimes: number[] = [];
  private closed = false;

  constructor(options: PushServiceOptions) {
    this.opts = options;
    this.providers = options.providers;
    this.log = categoryLogger(options.logger, 'push');
    this.now = options.now ?? Date.now;
  }

  /**
   * Pushes the device and waits for it to register again: resolves with the binding it registered with,
   * or undefined when it did not within the wake timeout, its token is dead, or `signal` aborted first (the
   * call was answered elsewhere or cancelled). Never rejects.
   */
  wake(device: Binding, call: WakeCall, signal: AbortSignal): Promise<Binding | undefined> {
    const key = `${call.callId}\n${deviceKey(device)}`;
    const known = this.wakes.get(key);
    if (known !== undefined) return known.promise;
    let finish!: (b: Binding | undefined) => void;
    const promise = new Promise<Binding | undefined>((resolve) => (finish = resolve));
    const wake: Wake = { promise, end: (b) => done(b), device, call };
    /** The call push, true once the provider took it (a cancel push is then owed if the device is not reached). */
    let pushing: Promise<boolean> = Promise.resolve(false);
    this.wakes.set(key, wake);
    const started = this.now();
    const unsubscribe = this.opts.onBinding((b) => {
      if (!this.opts.sameDevice(device, b)) return;
      this.counters.woken++;
      this.sample(this.now() - started);
      done(b);
    });
    const timer = setTimeout(() => {
      this.counters.timedOut++;
      this.log.info({ callId: call.callId, aor: call.aor, provider: device.push?.provider, timeoutMs: this.opts.wakeTimeoutMs }, 'device did not register in time after its push');
      done(undefined);
    }, this.opts.wakeTimeoutMs);
    const onAbort = (): void => done(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const done = (b: Binding | undefined): void => {
      if (settled) return;
      settled = true;
      unsubscribe();
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      this.wakes.delete(key);
      // Pushed (or still being pushed), never reached: the app shows an incoming call that is over.
      if (b === undefined && !this.closed) {
        void pushing.then(async (pushed): Promise<void> => {
          if (pushed && !this.closed) await this.send(device, { kind: 'cancel', id: call.callId, aor: call.aor, from: call.from, fromName: call.fromName });
        });
      }
      finish(b);
    };
    if (signal.aborted) {
      done(undefined);
      return promise;
    }
    pushing = this.send(device, { kind: 'call', id: call.callId, aor: call.aor, from: call.from, fromName: call.fromName }).then((result) => {
      // A dead token or a provider that refused: this device cannot be woken for this call.
      if (!result.ok) done(undefined);
      return result.ok;
    });
    return promise;
  }

  /**
   * A push for a message to a device that is not connected (the messaging service's hook): the sender, and
   * the text only with `push.includeContent` (the push services, Apple's and Google's, see what a push carries).
   */
  async message(device: Binding, payload: Omit<PushPayload, 'kind'>): Promise<PushResult> {
    const { body, ...rest } = payload;
    return this.send(device, { ...rest, kind: 'message', ...(this.opts.includeContent === true && body !== undefined ? { body } : {}) });
  }

  stats(): PushStats {
    const sorted = [...this.wakeTimes].sort((a, b) => a - b);
    const at = (q: number): number | undefined => (sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
    const byProvider = Object.fromEntries(Object.entries(this.byProvider).map(([p, c]) => [p, { ...c }]));
    return { ...this.counters, failed: { ...this.failed }, wakeMedianMs: at(0.5), wakeP95Ms: at(0.95), byProvider };
  }

  /** Ends every wait (the server stops: the calls go with it) and closes the provider clients. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.wakes.values()]) w.end(undefined);
    await Promise.all([...this.providers.values()].map((p) => p.close().catch(() => undefined)));
  }

  private async send(device: Binding, payload: PushPayload): Promise<PushResult> {
    const params = device.push;
    const client = params === undefined ? undefined : this.providers.get(params.provider);
    if (params === undefined || client === undefined) return { ok: false, status: 0, reason: 'no provider' };
    const result = await client.send(params, payload);
    const perProvider = (this.byProvider[params.provider] ??= { ok: 0, failed: 0 });
    if (result.ok) {
      perProvider.ok++;
      if (payload.kind === 'cancel') this.counters.cancelsSent++;
      else this.counters.sent++;
    } else {
      perProvider.failed++;
      const reason = result.reason ?? `HTTP ${result.status}`;
      this.failed[reason] = (this.failed[reason] ?? 0) + 1;
      this.log.warn({ provider: params.provider, token: shortToken(params.prid), status: result.status, reason, kind: payload.kind }, 'push failed');
    }
    if (result.unregistered === true) {
      this.log.info({ provider: params.provider, token: shortToken(params.prid), aor: device.aor }, 'push token no longer valid: the push binding is removed');
      this.opts.forget(device);
    }
    return result;
  }

  private sample(ms: number): void {
    this.wakeTimes.push(ms);
    if (this.wakeTimes.length > WAKE_SAMPLES) this.wakeTimes.shift();
  }
}
