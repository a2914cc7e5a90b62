/**
 * Presence: the server is the presence agent of its users (RFC 3856): SUBSCRIBE/NOTIFY (RFC 6665) for
 * `presence`, `dialog` (busy lamps, RFC 4235) and `message-summary` (RFC 3842), PUBLISH (RFC 3903), state
 * merged from publications, registrations and calls (presence-state.ts), who may watch whom (policy.ts).
 *
 * `createPresence` composes the parts; the routing policy hands it SUBSCRIBE/PUBLISH for users of ours
 * (`service.take`) and in-dialog requests of its subscriptions (`notifier.owns` / `notifier.inDialog`).
 */
import type { Stack } from '../src/core/index.js';
import type { Logger } from '../src/log/index.js';
import type { DialogSnapshot } from '../src/dialog/index.js';
import { escapeUriUser } from '../src/sip/index.js';
import type { Destination } from '../src/transport/types.js';
import type { Binding } from '../registrar/index.js';
import { Notifier, type NotifierStats } from './notifier.js';
import { PresenceService } from './presence-service.js';
import { PresenceState } from './presence-state.js';
import type { Reachability, WatchPolicy } from './types.js';

export { Notifier, EVENT_PACKAGES, type EventPackage } from './notifier.js';
export { PresenceService } from './presence-service.js';
export { PresenceState } from './presence-state.js';
export type * from './types.js';

export interface PresenceOptions {
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
  maxPublishExpires: number;
  notifyIntervalMs: number;
  maxSubscriptionsPerWatcher: number;
}

export interface PresenceDeps {
  stack: Pick<Stack, 'respond' | 'sendRequest' | 'advertisedAddress'>;
  /** The registrar: bindings of an AoR, whether one only a push reaches, and every change of an AoR's bindings. */
  lookup(aor: string): Binding[];
  isAsleep(binding: Binding): boolean;
  onRegistrationChange(listener: (aor: string) => void): () => void;
  /** The dialog module's events. */
  onDialog(listener: (dialog: Readonly<DialogSnapshot>) => void): void;
  /** Where a request for a registered Contact goes now. */
  contactDestination(uri: string): Destination | undefined;
  policy: WatchPolicy;
  /** Allow-list changes made here (PresencePolicy.onChange): the presentity's watchers are judged again. */
  onPolicyChange?: (listener: (presentity: string) => void) => void;
  options: PresenceOptions;
  logger: Logger;
}

export interface PresenceStats extends NotifierStats {
  subscribes: number;
  publishes: number;
  forwarded: number;
  refused: number;
}

export interface Presence {
  readonly state: PresenceState;
  readonly notifier: Notifier;
  readonly service: PresenceService;
  stats(): PresenceStats;
  stop(): void;
}

/** `alice@example.com` → `sip:alice@example.com`, the registrar's AoR form. */
function aorOf(user: string): string {
  const at = user.lastIndexOf('@');
  return `sip:${escapeUriUser(user.slice(0, at))}@${user.slice(at + 1)}`;
}

/** `sip:alice@example.com` → `alice@example.com`. */
function userOf(aor: string): string {
  const bare = aor.replace(/^sips?:/, '');
  try {
    return decodeURIComponent(bare);
  } catch {
    return bare;
  }
}

export function createPresence(deps: PresenceDeps): Presence {
  const reachability = (user: string): Reachability => {
    const bindings = deps.lookup(aorOf(user));
    if (bindings.length === 0) return 'offline';
    return bindings.some((b) => !deps.isAsleep(b)) ? 'online' : 'push';
  };
  const state = new PresenceState({ reachability });
  const o = deps.options;
  const notifier = new Notifier({
    stack: deps.stack,
    state,
    policy: deps.policy,
    contactDestination: deps.contactDestination,
    limits: { minExpires: o.minExpires, maxExpires: o.maxExpires, defaultExpires: o.defaultExpires, notifyIntervalMs: o.notifyIntervalMs, maxPerWatcher: o.maxSubscriptionsPerWatcher },
    logger: deps.logger,
  });
  const service = new PresenceService({
    stack: deps.stack,
    state,
    notifier,
    limits: { minExpires: o.minExpires, maxPublishExpires: o.maxPublishExpires, defaultPublishExpires: Math.min(3600, o.maxPublishExpires) },
    logger: deps.logger,
  });
  // Registration state: a watcher learns online/offline as the user's devices come and go.
  const unsubscribe = deps.onRegistrationChange((aor) => state.emit('changed', userOf(aor)));
  deps.onDialog((d) => state.dialog(d));
  deps.onPolicyChange?.((presentity) => void notifier.recheck(presentity));
  return {
    state,
    notifier,
    service,
    stats: () => ({ ...notifier.stats(), ...service.counters }),
    stop() {
      unsubscribe();
      notifier.stop();
      state.stop();
    },
  };
}
