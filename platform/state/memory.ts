/**
 * The in-process shared state: what one node needs with nothing else to run. Maps with an expiry per key (read as
 * missing once past it, removed by an unref'd sweep) and an EventEmitter for pub/sub. The Redis implementation also
 * uses one as its local fallback during an outage.
 */
import { EventEmitter } from 'node:events';
import { DEFAULT_PREFIX, type SharedState, type SharedStateStats, checkTtl } from './types.js';

interface Entry {
  value: string;
  expiresAt: number;
}

/**
 * The keys and channels themselves. Several MemoryState objects may share one space: the tests' "two nodes" in one
 * process, and the contract suite that both implementations pass.
 */
export class MemorySpace {
  readonly entries = new Map<string, Entry>();
  readonly channels = new EventEmitter<Record<string, [string]>>();

  constructor() {
    // One listener per subscriber: many is normal.
    this.channels.setMaxListeners(0);
  }

  /** The entry under `key` if it has not expired (an expired one is removed on the way). */
  live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry;
    this.entries.delete(key);
    return undefined;
  }

  sweep(now: number): void {
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}

export interface MemoryStateOptions {
  /** Shared with other MemoryState objects; a new one by default. */
  space?: MemorySpace;
  prefix?: string;
  /** How often expired keys are removed, ms (reads never see them anyway). */
  sweepMs?: number;
  now?: () => number;
}

export class MemoryState implements SharedState {
  private readonly space: MemorySpace;
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly unsubscribes = new Set<() => void>();
  private operations = 0;

  constructor(options: MemoryStateOptions = {}) {
    this.space = options.space ?? new MemorySpace();
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => this.space.sweep(this.now()), options.sweepMs ?? 10_000);
    this.sweeper.unref();
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    return this.claimOnceNow(key, ttlMs);
  }

  /** claimOnce without the promise, for the Redis implementation's fallback. */
  claimOnceNow(key: string, ttlMs: number): boolean {
    checkTtl(ttlMs);
    this.operations++;
    const k = this.prefix + key;
    const now = this.now();
    if (this.space.live(k, now) !== undefined) return false;
    this.space.entries.set(k, { value: '1', expiresAt: now + ttlMs });
    return true;
  }

  async count(key: string, windowMs: number): Promise<number> {
    return this.countNow(key, windowMs);
  }

  countNow(key: string, windowMs: number): number {
    checkTtl(windowMs);
    this.operations++;
    const k = this.prefix + key;
    const now = this.now();
    const entry = this.space.live(k, now);
    // Like INCR on a key that holds no number: a count under a key used for something else starts again.
    const n = entry === undefined ? 1 : (Number.parseInt(entry.value, 10) || 0) + 1;
    this.space.entries.set(k, { value: String(n), expiresAt: entry?.expiresAt ?? now + windowMs });
    return n;
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    this.putNow(key, value, ttlMs);
  }

  putNow(key: string, value: string, ttlMs: number): void {
    checkTtl(ttlMs);
    this.operations++;
    this.space.entries.set(this.prefix + key, { value, expiresAt: this.now() + ttlMs });
  }

  async get(key: string): Promise<string | undefined> {
    return this.getNow(key);
  }

  getNow(key: string): string | undefined {
    this.operations++;
    return this.space.live(this.prefix + key, this.now())?.value;
  }

  async delete(key: string): Promise<void> {
    this.deleteNow(key);
  }

  deleteNow(key: string): void {
    this.operations++;
    this.space.entries.delete(this.prefix + key);
  }

  async publish(channel: string, message: string): Promise<void> {
    this.publishNow(channel, message);
  }

  /** Delivered on a later turn of the event loop, as a message through Redis is: a handler never runs inside publish. */
  publishNow(channel: string, message: string): void {
    this.operations++;
    const name = this.prefix + channel;
    setImmediate(() => this.space.channels.emit(name, message));
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => void> {
    const name = this.prefix + channel;
    const listener = (message: string): void => handler(message);
    this.space.channels.on(name, listener);
    const unsubscribe = (): void => {
      this.space.channels.off(name, listener);
      this.unsubscribes.delete(unsubscribe);
    };
    this.unsubscribes.add(unsubscribe);
    return unsubscribe;
  }

  stats(): SharedStateStats {
    return { backend: 'memory', connected: true, degradedSince: undefined, operations: this.operations, failures: 0, dropped: 0 };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const unsubscribe of [...this.unsubscribes]) unsubscribe();
  }
}
