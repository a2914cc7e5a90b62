/**
 * The presence store's types (sql/0007_presence.ts): each presentity's allow list, the watchers it lets
 * see its state under `presence.policy: contacts`. Types only.
 *
 * Users are `user@domain` text (domain lower-case, user part as given: RFC 3261 §19.1.4), at most
 * MAX_PRESENCE_USER (255) characters each; a longer one is a TypeError before any SQL.
 */

/**
 * The allow lists. Every method is one statement; nothing here decides who may watch whom
 * (presence/policy.ts does).
 */
export interface PresenceRepository {
  /** The watchers on `user`'s allow list, by watcher (code-point order). */
  allowed(user: string): Promise<string[]>;
  /** Whether `watcher` is on `user`'s allow list. */
  isAllowed(user: string, watcher: string): Promise<boolean>;
  /** Puts `watcher` on `user`'s allow list; resolves true when added (false: it was there already). */
  allow(user: string, watcher: string): Promise<boolean>;
  /** Takes `watcher` off `user`'s allow list; resolves true when removed (false: it was not there). */
  disallow(user: string, watcher: string): Promise<boolean>;
  /**
   * Removes `user`'s allow list and `user` from every other list (a deleted subscriber: a new one of the
   * same name must not inherit what the old one was allowed); resolves with how many rows went.
   */
  forget(user: string): Promise<number>;
}
