/**
 * State that several softswitch processes share (issue 20): single-use claims, rate-limit windows, short-lived values
 * and cross-node notifications. Two implementations: in-process (memory.ts, one node, nothing else to run) and Redis
 * (redis.ts, `cluster.redis`). Every key lives under a prefix (`softswitch:`) and has a TTL, so nothing grows without
 * bound. The methods never reject because the shared store is away: each implementation says what happens instead.
 */

export interface SharedState {
  /** True the first time `key` is claimed within `ttlMs`, false after (a single-use nonce count across nodes). */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
  /** Adds one to the window counter `key` and answers its value; the window starts at its first count and lasts `windowMs`. */
  count(key: string, windowMs: number): Promise<number>;
  /** Keeps `value` under `key` for `ttlMs` (a ban, later a binding). */
  put(key: string, value: string, ttlMs: number): Promise<void>;
  /** The value kept under `key`, or undefined when there is none or it has expired. */
  get(key: string): Promise<string | undefined>;
  delete(key: string): Promise<void>;
  /** Sends `message` to every subscriber of `channel` in every process sharing the state, this one included. */
  publish(channel: string, message: string): Promise<void>;
  /** Calls `handler` with each message on `channel`; resolves once subscribed, with the function that unsubscribes. */
  subscribe(channel: string, handler: (message: string) => void): Promise<() => void>;
  /** Figures for /metrics and /health. */
  stats(): SharedStateStats;
  close(): Promise<void>;
}

export interface SharedStateStats {
  readonly backend: 'memory' | 'redis';
  /** True while the shared store answers (always for memory). */
  readonly connected: boolean;
  /** Epoch ms at which the current outage began (operations fall back to this process alone); undefined when none. */
  readonly degradedSince: number | undefined;
  /** Operations asked of the state. */
  readonly operations: number;
  /** Operations the shared store failed (answered locally instead). */
  readonly failures: number;
  /** Messages published during an outage: heard only in this process, lost to the others. */
  readonly dropped: number;
}

/** The prefix of every key and channel unless told otherwise. */
export const DEFAULT_PREFIX = 'softswitch:';

/** A TTL or window must be a whole, positive number of milliseconds: a key without one would never go away. */
export function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`a TTL must be a positive whole number of ms, not ${ttlMs}`);
}
