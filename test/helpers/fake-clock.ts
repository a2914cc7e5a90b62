import type { TimerHandle, Timers } from '../../src/transaction/index.js';

interface Entry {
  readonly due: number;
  readonly seq: number;
  readonly cb: () => void;
}

/**
 * A manual clock for the transaction layer: timers fire only inside `tick(ms)`, in order of due time
 * (ties in the order they were set), including timers set by callbacks that fall due within the tick.
 */
export class FakeClock implements Timers {
  /** Milliseconds since the clock was made. */
  now = 0;
  private seq = 0;
  private readonly entries = new Set<Entry>();

  setTimeout(cb: () => void, ms: number): TimerHandle {
    const entry: Entry = { due: this.now + Math.max(0, ms), seq: this.seq++, cb };
    this.entries.add(entry);
    return entry;
  }

  clearTimeout(h: TimerHandle): void {
    this.entries.delete(h as Entry);
  }

  /** Timers set and neither fired nor cleared. */
  get pending(): number {
    return this.entries.size;
  }

  /** Due times of the pending timers, relative to now, soonest first. */
  get pendingIn(): number[] {
    return [...this.entries].map((e) => e.due - this.now).sort((a, b) => a - b);
  }

  /** Advances the clock by `ms`, firing every timer that falls due on the way. */
  tick(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      let next: Entry | undefined;
      for (const e of this.entries) {
        if (e.due > target) continue;
        if (next === undefined || e.due < next.due || (e.due === next.due && e.seq < next.seq)) next = e;
      }
      if (next === undefined) break;
      this.entries.delete(next);
      this.now = next.due;
      next.cb();
    }
    this.now = target;
  }
}
