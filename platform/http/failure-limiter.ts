/**
 * Failed credential attempts per source address, in fixed windows: after `max` failures within a window
 * the address is refused (429) until the window ends. One limiter counts every kind of guess an HTTP
 * server sees (admin tokens, forged user tokens, passwords at the token endpoint), so a guesser cannot get
 * a fresh allowance by switching from one to the other. Per process: each worker counts on its own.
 */

/** Source addresses remembered before old windows are dropped. */
const MAX_ADDRESSES = 10_000;

interface Window {
  start: number;
  count: number;
}

export class FailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly max: number, private readonly windowMs: number) {}

  /** Seconds until `from` may try again when it is over the limit now, else undefined. */
  retryAfter(from: string, now: number): number | undefined {
    const w = this.windows.get(from);
    if (w === undefined || now - w.start >= this.windowMs || w.count < this.max) return undefined;
    return Math.ceil((w.start + this.windowMs - now) / 1000);
  }

  /** Counts a failure of `from`; true when this one reached the limit (the caller logs that once). */
  fail(from: string, now: number): boolean {
    let w = this.windows.get(from);
    if (w === undefined || now - w.start >= this.windowMs) {
      if (w === undefined && this.windows.size >= MAX_ADDRESSES) this.prune(now);
      w = { start: now, count: 0 };
      this.windows.set(from, w);
    }
    w.count++;
    return w.count === this.max;
  }

  private prune(now: number): void {
    for (const [address, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(address);
    // Still full (a flood from many addresses): forget them all rather than grow without bound.
    if (this.windows.size >= MAX_ADDRESSES) this.windows.clear();
  }
}
