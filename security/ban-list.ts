/**
 * Banned source addresses (OpenSIPS/Kamailio `pike` + `htable` bans): what the flood detector and the
 * password-guessing guard decide, checked for every datagram and every new connection before anything
 * is parsed. The answer must be synchronous and cheap, so every process keeps the whole list; changes
 * are replicated (cluster workers through the primary, later nodes through shared state) and a ban
 * expires by itself.
 */
import { type Logger, categoryLogger } from '../src/log/index.js';

export interface Ban {
  /** The source IP address, as the transport reports it. */
  address: string;
  /** Why: `flood` (requests per window), `auth` (failed authentications), `manual`. */
  reason: string;
  /** Milliseconds since the epoch. */
  since: number;
  until: number;
}

export type BanChange = { kind: 'ban'; ban: Ban } | { kind: 'lift'; address: string };

/** Where a ban decided here is told to the other processes (cluster workers, nodes). */
export interface BanReplication {
  changed(change: BanChange): void;
}

export interface BanListOptions {
  logger: Logger;
  /** Most bans kept at once; the oldest go first past it (spoofed UDP sources must not grow memory). Default 100 000. */
  maxBans?: number;
  clock?: () => number;
}

export class BanList {
  private readonly bans = new Map<string, Ban>();
  private readonly maxBans: number;
  private readonly clock: () => number;
  private readonly log: Logger;
  private replication: BanReplication | undefined;
  /** Bans ever decided here (for stats). */
  banned = 0;

  constructor(options: BanListOptions) {
    this.maxBans = options.maxBans ?? 100_000;
    if (!Number.isInteger(this.maxBans) || this.maxBans < 1) throw new TypeError(`maxBans must be a positive integer, got ${this.maxBans}`);
    this.clock = options.clock ?? Date.now;
    this.log = categoryLogger(options.logger, 'security.ban');
  }

  get size(): number {
    return this.bans.size;
  }

  setReplication(replication: BanReplication | undefined): void {
    this.replication = replication;
  }

  /** The hot-path question: one Map lookup; an expired ban is forgotten when met. */
  isBanned(address: string): boolean {
    if (this.bans.size === 0) return false;
    const ban = this.bans.get(address);
    if (ban === undefined) return false;
    if (ban.until > this.clock()) return true;
    this.bans.delete(address);
    return false;
  }

  /** Bans `address` for `seconds`; one log line per ban (fail2ban and operators read it), none per packet. */
  ban(address: string, seconds: number, reason: string): Ban {
    const now = this.clock();
    const ban: Ban = { address, reason, since: now, until: now + seconds * 1000 };
    this.put(ban);
    this.banned++;
    this.log.warn({ source: address, reason, seconds }, 'source banned');
    this.replication?.changed({ kind: 'ban', ban });
    return ban;
  }

  /** Lifts a ban (`softswitch ban lift`); false when there was none. */
  lift(address: string): boolean {
    const had = this.bans.delete(address);
    if (had) this.log.info({ source: address }, 'ban lifted');
    this.replication?.changed({ kind: 'lift', address });
    return had;
  }

  /** The bans in force, oldest first. */
  list(): Ban[] {
    const now = this.clock();
    const out: Ban[] = [];
    for (const [address, ban] of this.bans) {
      if (ban.until <= now) this.bans.delete(address);
      else out.push({ ...ban });
    }
    return out;
  }

  /** A change decided by another process: applied, not replicated again. */
  applyRemote(change: BanChange): void {
    if (change.kind === 'lift') {
      this.bans.delete(change.address);
      return;
    }
    const b = change.ban;
    if (typeof b?.address !== 'string' || !Number.isFinite(b.until) || !Number.isFinite(b.since)) return;
    this.put({ address: b.address, reason: String(b.reason), since: b.since, until: b.until });
  }

  private put(ban: Ban): void {
    this.bans.delete(ban.address); // re-inserted last: Map order is age order
    if (this.bans.size >= this.maxBans) {
      const now = this.clock();
      for (const [a, b] of this.bans) if (b.until <= now) this.bans.delete(a);
      while (this.bans.size >= this.maxBans) {
        const oldest = this.bans.keys().next().value as string;
        this.bans.delete(oldest);
      }
    }
    this.bans.set(ban.address, ban);
  }
}
