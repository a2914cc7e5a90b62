/**
 * What one user may send: so many messages a minute in all (messaging.ratePerMinute), and so many to one
 * recipient or group in 10 seconds (messaging.floodPer10s), so that one account, stolen or scripted,
 * cannot flood a user's phones or a group. Fixed windows, counted per process (a cluster's workers each
 * count their own; shared counters come with the shared state).
 */
import { ChatError } from './types.js';

const MINUTE_MS = 60_000;
const FLOOD_WINDOW_MS = 10_000;

interface Window {
  start: number;
  count: number;
}

export interface SendLimitOptions {
  ratePerMinute: number;
  floodPer10s: number;
  clock?: () => number;
}

export class SendLimits {
  private readonly perUser = new Map<string, Window>();
  private readonly perPair = new Map<string, Window>();
  private readonly clock: () => number;
  private lastSweep = 0;

  constructor(private readonly options: SendLimitOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** Counts one message from `sender` to `target` (a user or a group), or throws ChatError 'rate-limited'. */
  take(sender: string, target: string): void {
    const now = this.clock();
    this.sweep(now);
    const user = this.count(this.perUser, sender, now, MINUTE_MS);
    const pair = this.count(this.perPair, `${sender}\n${target}`, now, FLOOD_WINDOW_MS);
    if (user.count >= this.options.ratePerMinute) {
      throw new ChatError('rate-limited', `more than ${this.options.ratePerMinute} messages a minute`, Math.ceil((user.start + MINUTE_MS - now) / 1000));
    }
    if (pair.count >= this.options.floodPer10s) {
      throw new ChatError('rate-limited', `more than ${this.options.floodPer10s} messages to ${target} in 10 s`, Math.ceil((pair.start + FLOOD_WINDOW_MS - now) / 1000));
    }
    user.count++;
    pair.count++;
  }

  private count(map: Map<string, Window>, key: string, now: number, length: number): Window {
    let w = map.get(key);
    if (w === undefined || now - w.start >= length) {
      w = { start: now, count: 0 };
      map.set(key, w);
    }
    return w;
  }

  /** Windows that are over are forgotten once a minute: memory follows the senders of the last minute. */
  private sweep(now: number): void {
    if (now - this.lastSweep < MINUTE_MS) return;
    this.lastSweep = now;
    for (const [k, w] of this.perUser) if (now - w.start >= MINUTE_MS) this.perUser.delete(k);
    for (const [k, w] of this.perPair) if (now - w.start >= FLOOD_WINDOW_MS) this.perPair.delete(k);
  }
}
