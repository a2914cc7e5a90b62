/**
 * Who may watch whom (configuration key presence.policy): the presence service asks mayWatch() before it
 * tells a watcher anything, and a refused watcher gets the polite block (NOTIFYs that say nothing: closed,
 * no activity; RFC 5025's "polite-block" idea), so a refusal itself tells nothing either.
 *
 *   - A user always watches themself (their other devices show their own state).
 *   - `same-domain`: any user of the presentity's domain (host compared case-insensitively, RFC 3261
 *     §19.1.4); a watcher of another domain, or a trusted source's From without a user part, is refused.
 *   - `contacts`: only the watchers on the presentity's allow list (PresenceRepository,
 *     /v1/presence/allow), whatever their domain.
 *
 * Allow lists are cached per presentity for `cacheMs` (5 s by default): a busy presentity's SUBSCRIBEs and
 * refreshes, and the re-checks the service makes before each NOTIFY, cost no query. Changes made through
 * this policy (allow/disallow/forget) drop the entry at once and are announced to onChange() listeners, so
 * this worker's own subscriptions can be checked again at once.
 *
 * In a cluster every worker has its own policy and cache: a change made through another worker (or
 * straight in the store) is seen here when the cached list expires, so a worker may act on a list up to
 * `cacheMs` old. That bounds how long a removed watcher can still be told state after a disallow made
 * elsewhere, provided the service checks mayWatch() again before each NOTIFY (a cached answer costs nothing).
 */
import { normalizeUser } from '../platform/http/index.js';
import type { PresenceRepository } from '../platform/store/index.js';
import type { WatchPolicy } from './types.js';

export type PresencePolicyMode = 'same-domain' | 'contacts';

export interface PresencePolicyOptions {
  /** presence.policy. */
  mode: PresencePolicyMode;
  repo: PresenceRepository;
  /** How long an allow list is trusted without reading the store again, ms (default DEFAULT_POLICY_CACHE_MS; 0: never cached). */
  cacheMs?: number;
  /** ms since the epoch (tests). */
  clock?: () => number;
  /** Presentities whose allow list is cached at most (default DEFAULT_POLICY_CACHE_ENTRIES): the oldest go first. */
  maxCached?: number;
}

export const DEFAULT_POLICY_CACHE_MS = 5000;
export const DEFAULT_POLICY_CACHE_ENTRIES = 10_000;

interface CachedList {
  readonly watchers: Promise<ReadonlySet<string>>;
  readonly until: number;
}

/**
 * `sip:alice@Example.COM` or `alice@Example.COM` → `alice@example.com`; undefined when there is no user
 * part (a trusted source's From such as `sip:10.0.0.5`): such a watcher is no user of anyone's domain.
 */
export function watchIdentity(address: string): string | undefined {
  const bare = address.replace(/^sips?:/i, '');
  const at = bare.lastIndexOf('@');
  if (at <= 0 || at === bare.length - 1) return undefined;
  return normalizeUser(bare);
}

function domainOf(user: string): string {
  return user.slice(user.lastIndexOf('@') + 1);
}

export class PresencePolicy implements WatchPolicy {
  readonly mode: PresencePolicyMode;
  private readonly repo: PresenceRepository;
  private readonly cacheMs: number;
  private readonly clock: () => number;
  private readonly maxCached: number;
  /** By presentity; Map order is insertion order, so the first key is the oldest entry. */
  private readonly cache = new Map<string, CachedList>();
  private readonly listeners = new Set<(presentity: string) => void>();

  constructor(options: PresencePolicyOptions) {
    this.mode = options.mode;
    this.repo = options.repo;
    this.cacheMs = Math.max(0, options.cacheMs ?? DEFAULT_POLICY_CACHE_MS);
    this.clock = options.clock ?? Date.now;
    this.maxCached = Math.max(1, options.maxCached ?? DEFAULT_POLICY_CACHE_ENTRIES);
  }

  /**
   * Whether `watcher` may see `presentity`'s state. Rejects when the store fails (contacts mode): the
   * service must treat a rejection as a refusal, never as a permission.
   */
  async mayWatch(watcher: string, presentity: string): Promise<boolean> {
    const who = watchIdentity(watcher);
    const whom = watchIdentity(presentity);
    if (who === undefined || whom === undefined) return false;
    if (who === whom) return true;
    if (this.mode === 'same-domain') return domainOf(who) === domainOf(whom);
    return (await this.list(whom)).has(who);
  }

  /** `user`'s allow list as stored now (not cached: the API shows the truth), by watcher. */
  allowed(user: string): Promise<string[]> {
    return this.repo.allowed(this.identity(user, 'user'));
  }

  /** Puts `watcher` on `user`'s allow list; resolves true when added. TypeError for a malformed or too long user. */
  async allow(user: string, watcher: string): Promise<boolean> {
    const whom = this.identity(user, 'user');
    const added = await this.repo.allow(whom, this.identity(watcher, 'watcher'));
    this.changed(whom);
    return added;
  }

  /** Takes `watcher` off `user`'s allow list; resolves true when removed. */
  async disallow(user: string, watcher: string): Promise<boolean> {
    const whom = this.identity(user, 'user');
    const removed = await this.repo.disallow(whom, this.identity(watcher, 'watcher'));
    this.changed(whom);
    return removed;
  }

  /** A subscriber deleted: its allow list and its place on every other list go (every cached list is dropped). */
  async forget(user: string): Promise<number> {
    const whom = this.identity(user, 'user');
    const removed = await this.repo.forget(whom);
    this.cache.clear();
    this.emit(whom);
    return removed;
  }

  /**
   * Calls `listener` with the presentity whose list changed through this policy (after the change is
   * stored): the service re-checks that presentity's watchers, so a disallowed one stops getting state at
   * once. Listeners run synchronously and must not throw. Returns the function that removes the listener.
   */
  onChange(listener: (presentity: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private identity(user: string, name: string): string {
    const id = typeof user === 'string' ? watchIdentity(user) : undefined;
    if (id === undefined) throw new TypeError(`${name} must be user@domain`);
    return id;
  }

  private changed(presentity: string): void {
    this.cache.delete(presentity);
    this.emit(presentity);
  }

  private emit(presentity: string): void {
    for (const listener of this.listeners) listener(presentity);
  }

  /** The presentity's allow list, from the cache while fresh; concurrent misses share one read. */
  private list(presentity: string): Promise<ReadonlySet<string>> {
    const now = this.clock();
    const hit = this.cache.get(presentity);
    if (hit !== undefined && hit.until > now) return hit.watchers;
    this.cache.delete(presentity);
    const watchers = this.repo.allowed(presentity).then((list) => new Set(list));
    if (this.cacheMs === 0) return watchers;
    const entry: CachedList = { watchers, until: now + this.cacheMs };
    this.cache.set(presentity, entry);
    while (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value as string);
    // A failed read is not cached: the next check asks the store again.
    watchers.catch(() => {
      if (this.cache.get(presentity) === entry) this.cache.delete(presentity);
    });
    return watchers;
  }
}
