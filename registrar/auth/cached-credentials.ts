import type { CredentialSource, SubscriberCredentials } from '../types.js';

/**
 * A short-lived cache in front of the subscriber store: every REGISTER and INVITE is challenged once and
 * answered once, so each authentication reads the same subscriber twice within a second or two; under
 * load the SQL round trip (query building, statement preparation) costs more than the digest itself
 * (bench/README.md). Unknown users are cached too, so a scanner trying names does not reach the
 * database for each try. A password changed with `softswitch user passwd` takes effect within `ttlMs`.
 *
 * While the store fails (MariaDB down or unreachable), a user seen within `staleMs` is still known by
 * what was read last: phones that registered before the outage go on calling each other, and the store
 * coming back changes nothing. Users never seen before get the store's error (the registrar answers 500).
 */
export class CachedCredentialSource implements CredentialSource {
  private readonly entries = new Map<string, { value: SubscriberCredentials | undefined; expires: number }>();

  constructor(
    private readonly inner: CredentialSource,
    private readonly ttlMs = 5_000,
    private readonly maxEntries = 100_000,
    private readonly clock: () => number = Date.now,
    private readonly staleMs = 3600_000,
  ) {}

  async getCredentials(username: string, domain: string): Promise<SubscriberCredentials | undefined> {
    const key = `${username}\u0000${domain}`;
    const now = this.clock();
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.expires > now) return hit.value;
    let value: SubscriberCredentials | undefined;
    try {
      value = await this.inner.getCredentials(username, domain);
    } catch (err) {
      if (hit !== undefined && hit.expires + this.staleMs > now) return hit.value;
      throw err;
    }
    if (this.entries.size >= this.maxEntries) this.entries.clear(); // crude but bounded: the cache only saves work
    this.entries.set(key, { value, expires: now + this.ttlMs });
    return value;
  }
}
