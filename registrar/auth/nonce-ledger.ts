/**
 * Which nonce-counts have been used (RFC 2617 §3.2.2 / RFC 7616 §3.4: a server that checks nc "can detect
 * replays"). Nonces are stateless (time + issuer + random, under an HMAC); the counts are not: every
 * (nonce, nc) must be accepted exactly once, across every worker of a node and every node.
 *
 * Each nonce names the process that issued it (its worker index and a random incarnation drawn at start),
 * and that process alone keeps its counts. Nearly every answer to a challenge reaches its issuer anyway —
 * UDP datagrams go to the worker of their Call-ID, which is the challenged request's, and a connection's
 * requests stay with its worker — so the common case is one Map lookup. An answer that reaches another
 * worker (a replay from another address, another connection) is claimed at the issuer through `remote`
 * (cluster IPC); a nonce of an issuer that no longer exists (a restarted worker or process) is claimed by
 * nobody, and the client gets a stale=true challenge: it retries at once with a fresh nonce, a replayer
 * gets nothing. Several nodes will plug a shared store in as `remote` (wave 2, shared state).
 */
import { randomInt } from 'node:crypto';

export interface NonceIssuer {
  /** Worker index, 0–255 (0 for a single process). */
  index: number;
  /** Random per process start, 24 bits: a restarted worker does not honour its predecessor's nonces. */
  incarnation: number;
}

/** Claims a nonce-count at another issuer; resolves false when that issuer is gone or does not answer. */
export type RemoteNonceClaim = (issuer: NonceIssuer, nonce: string, nc: number, expiresAt: number) => Promise<boolean>;

export interface NonceLedgerOptions {
  index?: number;
  incarnation?: number;
  /** Most nonces tracked at once; past it (after a sweep) claims fail safe (stale challenge). Default 1 000 000. */
  maxEntries?: number;
  clock?: () => number;
}

export class NonceLedger {
  readonly self: NonceIssuer;
  private readonly counts = new Map<string, { nc: number; expiresAt: number }>();
  private readonly maxEntries: number;
  private readonly clock: () => number;
  private remote: RemoteNonceClaim | undefined;
  private nextSweep = 0;

  constructor(options: NonceLedgerOptions = {}) {
    const index = options.index ?? 0;
    if (!Number.isInteger(index) || index < 0 || index > 255) throw new TypeError(`nonce issuer index must be 0–255, got ${index}`);
    this.self = { index, incarnation: options.incarnation ?? randomInt(1, 1 << 24) };
    this.maxEntries = options.maxEntries ?? 1_000_000;
    this.clock = options.clock ?? Date.now;
  }

  /** Nonces whose counts are kept here (tests, metrics). */
  get size(): number {
    return this.counts.size;
  }

  /** Cluster workers: where claims for other workers' nonces go. */
  setRemote(remote: RemoteNonceClaim | undefined): void {
    this.remote = remote;
  }

  /** True exactly once per (nonce, nc), and only for an nc above every one claimed before for that nonce. */
  claim(issuer: NonceIssuer, nonce: string, nc: number, expiresAt: number): boolean | Promise<boolean> {
    if (issuer.index === this.self.index && issuer.incarnation === this.self.incarnation) return this.claimHere(nonce, nc, expiresAt);
    // Another worker's, or this slot's predecessor's (still draining during a rolling restart).
    return this.remote === undefined ? false : this.remote(issuer, nonce, nc, expiresAt);
  }

  /** A claim for a nonce this process issued (a local one, or one another worker passes on). */
  claimHere(nonce: string, nc: number, expiresAt: number): boolean {
    const now = this.clock();
    if (expiresAt <= now || !Number.isSafeInteger(nc) || nc < 1) return false;
    const seen = this.counts.get(nonce);
    if (seen !== undefined) {
      if (nc <= seen.nc) return false;
      seen.nc = nc;
      return true;
    }
    if (this.counts.size >= this.maxEntries || now >= this.nextSweep) this.sweep(now);
    if (this.counts.size >= this.maxEntries) return false;
    this.counts.set(nonce, { nc, expiresAt });
    return true;
  }

  /** Forgets the counts of expired nonces, at most every 10 s unless full (a few ms for 100,000 entries). */
  private sweep(now: number): void {
    this.nextSweep = now + 10_000;
    for (const [nonce, entry] of this.counts) if (entry.expiresAt <= now) this.counts.delete(nonce);
  }
}
