/**
 * Request-rate flood detection per source address, the way Kamailio's and OpenSIPS's `pike` module does
 * it: more than `limit` requests from one address within one `windowMs` sampling window bans the address
 * for `banSeconds`. Counting is one Map update per request; whether the address is exempt (a trusted
 * source, a backend, an operator's allow-list) is asked only when it crosses the limit, so the exemption
 * check costs nothing per packet.
 */
import type { BanList } from './ban-list.js';

export interface FloodDetectorOptions {
  bans: BanList;
  /** Requests one source may send within one window. */
  limit: number;
  windowMs: number;
  banSeconds: number;
  /** Sources never banned for their rate (trusted sources, backends, `security.pike.exempt`). */
  exempt?: (address: string) => boolean;
  /** Distinct sources counted per window; a flood of spoofed sources beyond it goes uncounted, not into memory. Default 200 000. */
  maxTracked?: number;
  clock?: () => number;
}

export class FloodDetector {
  private readonly bans: BanList;
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly banSeconds: number;
  private readonly exempt: (address: string) => boolean;
  private readonly maxTracked: number;
  private readonly clock: () => number;
  private counts = new Map<string, number>();
  private windowEnds = 0;

  constructor(options: FloodDetectorOptions) {
    for (const [k, v] of [['limit', options.limit], ['windowMs', options.windowMs], ['banSeconds', options.banSeconds]] as const) {
      if (!Number.isFinite(v) || v <= 0) throw new TypeError(`${k} must be positive, got ${v}`);
    }
    this.bans = options.bans;
    this.limit = options.limit;
    this.windowMs = options.windowMs;
    this.banSeconds = options.banSeconds;
    this.exempt = options.exempt ?? (() => false);
    this.maxTracked = options.maxTracked ?? 200_000;
    this.clock = options.clock ?? Date.now;
  }

  /** Counts one request from `address`; false when the address is (now) banned and the request must be dropped. */
  hit(address: string): boolean {
    const now = this.clock();
    if (now >= this.windowEnds) {
      this.counts = new Map();
      this.windowEnds = now + this.windowMs;
    }
    const seen = this.counts.get(address);
    if (seen === undefined) {
      if (this.counts.size < this.maxTracked) this.counts.set(address, 1);
      return true;
    }
    const n = seen + 1; // an exempt source counts from −∞ and stays under the limit
    this.counts.set(address, n);
    if (n <= this.limit) return true;
    // Over the limit: asked once per window whether this source may be that busy.
    if (n === this.limit + 1 && this.exempt(address)) {
      this.counts.set(address, Number.NEGATIVE_INFINITY);
      return true;
    }
    if (!this.bans.isBanned(address)) this.bans.ban(address, this.banSeconds, 'flood');
    return false;
  }
}
