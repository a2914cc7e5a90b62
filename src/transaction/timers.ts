/**
 * RFC 3261 §17 timer values (Table 4 of §A) and RFC 6026 Timers L and M, as functions of T1/T2/T4, and
 * the clock the transactions use. The clock is injected so that tests run hours of protocol time in
 * milliseconds and production timers never keep the process alive.
 */

/** RFC 3261 §17.1.1.1 / Table 4: the three base values every transaction timer derives from. */
export interface TimerConfig {
  /** RTT estimate, 500 ms by default. */
  T1: number;
  /** Maximum retransmission interval for non-INVITE requests and INVITE responses, 4 s. */
  T2: number;
  /** Maximum duration a message will remain in the network, 5 s. */
  T4: number;
}

/** RFC 3261 §17.1.1.1: "T1 is an estimate of the round-trip time (RTT), and it defaults to 500 ms." */
export const T1 = 500;
/** RFC 3261 Table 4: "T2 — 4s — The maximum retransmit interval for non-INVITE requests and INVITE responses". */
export const T2 = 4000;
/** RFC 3261 Table 4: "T4 — 5s — Maximum duration a message will remain in the network". */
export const T4 = 5000;

export const DEFAULT_TIMER_CONFIG: Readonly<TimerConfig> = Object.freeze({ T1, T2, T4 });

/**
 * The RFC names of the timers, as they appear in logs, by the one job each does in its machine (Table 4):
 * retransmit over an unreliable transport, give up waiting for a final response or an ACK, or end the
 * Completed, Confirmed or Accepted state that absorbs retransmissions.
 */
export type TimerName = RetransmissionTimer | TimeoutTimer | WaitTimer;
/** Timers A, E and G: "… retransmit interval" (Table 4). */
export type RetransmissionTimer = 'A' | 'E' | 'G';
/** Timers B, F and H: the transaction timeouts ("… transaction timeout timer", "Wait time for ACK receipt"). */
export type TimeoutTimer = 'B' | 'F' | 'H';
/** Timers D, I, J, K (RFC 3261) and L, M (RFC 6026): "Wait time for … retransmits". */
export type WaitTimer = 'D' | 'I' | 'J' | 'K' | 'L' | 'M';

// ---- INVITE client transaction (§17.1.1.2) ---------------------------------------------------------

/**
 * §17.1.1.2: "For unreliable transports (such as UDP), the client transaction MUST start timer A with a
 * value of T1."
 */
export function timerA(config: TimerConfig): number {
  return config.T1;
}

/**
 * §17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request by passing it to
 * the transport layer, and MUST reset the timer with a value of 2*T1." The INVITE interval keeps
 * doubling; it is not capped at T2.
 */
export function nextTimerA(previous: number): number {
  return previous * 2;
}

/** §17.1.1.2: "For any transport, the client transaction MUST start timer B with a value of 64*T1 seconds." */
export function timerB(config: TimerConfig): number {
  return 64 * config.T1;
}

/**
 * §17.1.1.2: "The client transaction SHOULD start timer D when it enters the 'Completed' state, with a
 * value of at least 32 seconds for unreliable transports, and a value of zero seconds for reliable
 * transports." At least 32 s, and never less than the 64*T1 a server with this T1 keeps retransmitting.
 */
export function timerD(config: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : Math.max(32_000, 64 * config.T1);
}

/**
 * RFC 6026 §8.4: "The client transaction MUST start Timer M when it enters the 'Accepted' state. Timer M
 * ... The value of Timer M is 64*T1."
 */
export function timerM(config: TimerConfig): number {
  return 64 * config.T1;
}

// ---- non-INVITE client transaction (§17.1.2.2) -----------------------------------------------------

/**
 * §17.1.2.2: "If an unreliable transport is in use, the client transaction MUST set timer E to fire in
 * T1 seconds."
 */
export function timerE(config: TimerConfig): number {
  return config.T1;
}

/**
 * §17.1.2.2: "If timer E fires while still in this state [Trying], the timer is reset, but this time
 * with a value of MIN(2*T1, T2). When the timer fires again, it is reset to a MIN(4*T1, T2)." and "If
 * Timer E fires while in the Proceeding state, the request MUST be passed to the transport layer for
 * retransmission, and Timer E MUST be reset with a value of T2 seconds."
 */
export function nextTimerE(previous: number, config: TimerConfig, proceeding: boolean): number {
  return proceeding ? config.T2 : Math.min(previous * 2, config.T2);
}

/** §17.1.2.2: "the client transaction MUST set timer F to fire in 64*T1 seconds." */
export function timerF(config: TimerConfig): number {
  return 64 * config.T1;
}

/**
 * §17.1.2.2: "the client transaction MUST start timer K ... Timer K ... T4 seconds for unreliable
 * transports, and zero seconds for reliable transports."
 */
export function timerK(config: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : config.T4;
}

// ---- INVITE server transaction (§17.2.1) -----------------------------------------------------------

/**
 * §17.2.1: "For unreliable transports, timer G is set to fire in T1 seconds".
 */
export function timerG(config: TimerConfig): number {
  return config.T1;
}

/**
 * §17.2.1: "If timer G fires, the response is passed to the transport layer once more for
 * retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when timer G
 * fires, the response is passed to the transport again for transmission, and timer G is reset with a
 * value that doubles, unless that value exceeds T2, in which case it is reset with the value of T2."
 */
export function nextTimerG(previous: number, config: TimerConfig): number {
  return Math.min(previous * 2, config.T2);
}

/**
 * §17.2.1: "When the 'Completed' state is entered, timer H MUST be set to fire in 64*T1 seconds for all
 * transports."
 */
export function timerH(config: TimerConfig): number {
  return 64 * config.T1;
}

/**
 * §17.2.1: "The purpose of the 'Confirmed' state is to absorb any additional ACK messages ... When this
 * state is entered, timer I is set to fire in T4 seconds for unreliable transports, and zero seconds for
 * reliable transports."
 */
export function timerI(config: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : config.T4;
}

/**
 * RFC 6026 §8.7: "The server transaction MUST start Timer L when it enters the 'Accepted' state ...
 * The value of Timer L is 64*T1."
 */
export function timerL(config: TimerConfig): number {
  return 64 * config.T1;
}

// ---- non-INVITE server transaction (§17.2.2) -------------------------------------------------------

/**
 * §17.2.2: "When the server transaction enters the 'Completed' state, it MUST set Timer J to fire in
 * 64*T1 seconds for unreliable transports, and zero seconds for reliable transports."
 */
export function timerJ(config: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : 64 * config.T1;
}

// ---- the clock -------------------------------------------------------------------------------------

/** Whatever the clock returns to cancel a timer later. */
export type TimerHandle = object;

/** The clock of the transaction layer: Node's timers in production, a FakeClock in tests. */
export interface Timers {
  setTimeout(cb: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle): void;
}

/** Node's timers, unref'd: a pending Timer D never keeps a stopping process alive. */
export const realTimers: Timers = {
  setTimeout(cb: () => void, ms: number): TimerHandle {
    const t = setTimeout(cb, ms);
    t.unref();
    return t;
  },
  clearTimeout(h: TimerHandle): void {
    clearTimeout(h as NodeJS.Timeout);
  },
};

/** Checks a partial TimerConfig and merges it over the defaults; bad values throw TypeError. */
export function timerConfig(timing: Partial<TimerConfig> = {}): TimerConfig {
  const config: TimerConfig = { T1: timing.T1 ?? T1, T2: timing.T2 ?? T2, T4: timing.T4 ?? T4 };
  for (const name of ['T1', 'T2', 'T4'] as const) {
    const v = config[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new TypeError(`timing.${name} must be a positive number of milliseconds, got ${String(v)}`);
    }
  }
  return config;
}
