/**
 * The notifier side of SIP-specific event notification (RFC 6665) for the packages the server serves:
 * `presence` (RFC 3856, PIDF), `dialog` (RFC 4235, busy lamps) and `message-summary` (RFC 3842, without a
 * voicemail backend: no messages).
 *
 * A SUBSCRIBE creates a subscription (a dialog: our To tag, the watcher's Contact and route set) answered
 * 200 with the granted Expires, and a NOTIFY with the current state follows at once (§4.2.1.2). A refresh
 * (in-dialog SUBSCRIBE) renews it and NOTIFYs again; Expires 0 ends it with a final NOTIFY
 * (`terminated;reason=timeout`), as does its expiry. A state change NOTIFYs every subscription of the user,
 * at most once per `notifyIntervalMs` each (changes in between are folded into the next one), and never a
 * presence document equal to the last one sent.
 *
 * NOTIFYs go to the connection the watcher registered its Contact on last (a WebSocket phone that
 * reconnected is reached on its new connection, like its calls), else to where the SUBSCRIBE came from. A
 * 481 or another final failure ends the subscription (§4.2.2.3); a dead connection does not (the watcher may
 * come back on a new one before the subscription expires).
 *
 * A watcher the policy does not allow is subscribed like any other and told nothing: a closed presentity
 * without activity or note, an empty dialog list (polite blocking, the idea of RFC 5025).
 */
import { type Logger, categoryLogger } from '../src/log/index.js';
import type { Stack } from '../src/core/index.js';
import { SipRequest, type SipResponse, headerKey, makeField, newTag } from '../src/sip/index.js';
import type { ServerTransaction } from '../src/transaction/index.js';
import type { Destination } from '../src/transport/types.js';
import { buildDialogInfo } from './dialog-info.js';
import { buildMessageSummary } from './message-summary.js';
import { blockedPidf, buildPidf } from './pidf.js';
import type { PresenceState } from './presence-state.js';
import type { WatchPolicy } from './types.js';

export type EventPackage = 'presence' | 'dialog' | 'message-summary';
export const EVENT_PACKAGES: readonly EventPackage[] = ['presence', 'dialog', 'message-summary'];

const CONTENT_TYPE: Record<EventPackage, string> = {
  presence: 'application/pidf+xml',
  dialog: 'application/dialog-info+xml',
  'message-summary': 'application/simple-message-summary',
};
/**
 * NOTIFY failures in a row (a dead connection, 408, 503) after which a subscription is given up; a Timer F
 * timeout or another final failure ends it at once (RFC 6665 §4.2.2).
 */
const MAX_FAILURES = 3;

export interface NotifierLimits {
  minExpires: number;
  maxExpires: number;
  defaultExpires: number;
  notifyIntervalMs: number;
  maxPerWatcher: number;
}

export interface NotifierOptions {
  stack: Pick<Stack, 'respond' | 'sendRequest' | 'advertisedAddress'>;
  state: PresenceState;
  policy: WatchPolicy;
  /** Where a request for a registered Contact goes now (its binding's connection), if it is registered. */
  contactDestination(uri: string): Destination | undefined;
  limits: NotifierLimits;
  logger: Logger;
  clock?: () => number;
}

interface Subscription {
  key: string;
  event: EventPackage;
  eventId: string | undefined;
  watcher: string;
  presentity: string;
  allowed: boolean;
  callId: string;
  localTag: string;
  remoteTag: string;
  /** The watcher's From (name-addr without tag) and Contact URI. */
  remoteUri: string;
  remoteTarget: string;
  routeSet: string[];
  /** Where the SUBSCRIBE came from. */
  origin: Destination;
  cseq: number;
  remoteCseq: number;
  expiresAt: number;
  expiryTimer?: NodeJS.Timeout | undefined;
  /** A throttled NOTIFY waits for this timer. */
  pendingTimer?: NodeJS.Timeout | undefined;
  lastNotifyAt: number;
  lastBody?: string | undefined;
  /** dialog-info `version` (RFC 4235 §4.1.2): one more per NOTIFY. */
  version: number;
  failures: number;
  ended: boolean;
}

export interface NotifierStats {
  subscriptions: number;
  notifies: number;
  notifyFailures: number;
  /** NOTIFYs folded into a later one by the throttle, or skipped as saying nothing new. */
  suppressed: number;
}

export class Notifier {
  private readonly opts: NotifierOptions;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly subs = new Map<string, Subscription>();
  private readonly byPresentity = new Map<string, Set<Subscription>>();
  private readonly perWatcher = new Map<string, number>();
  private readonly counters = { notifies: 0, notifyFailures: 0, suppressed: 0 };
  private stopped = false;

  constructor(options: NotifierOptions) {
    this.opts = options;
    this.log = categoryLogger(options.logger, 'presence');
    this.clock = options.clock ?? Date.now;
    options.state.on('changed', (user) => this.changed(user));
  }

  /** Whether an in-dialog request belongs to a subscription held here. */
  owns(req: SipRequest): boolean {
    const toTag = req.to?.tag;
    return toTag !== undefined && this.subs.has(keyOf(req.callId ?? '', toTag, req.from?.tag ?? ''));
  }

  /** A SUBSCRIBE outside a dialog for `presentity` (user@domain) from `watcher`, for one of EVENT_PACKAGES. */
  async subscribe(req: SipRequest, tx: ServerTransaction, event: EventPackage, watcher: string, presentity: string): Promise<void> {
    const expires = this.grantedExpires(req, tx);
    if (expires === undefined) return;
    if ((this.perWatcher.get(watcher) ?? 0) >= this.opts.limits.maxPerWatcher) {
      this.log.info({ watcher, limit: this.opts.limits.maxPerWatcher }, 'SUBSCRIBE refused: the watcher holds the most subscriptions allowed');
      this.opts.stack.respond(tx, 403, { reason: 'Forbidden (too many subscriptions)' });
      return;
    }
    const allowed = event === 'message-summary' ? watcher === presentity : await this.mayWatch(watcher, presentity);
    const contact = req.contact[0];
    const from = req.from!;
    const localTag = newTag();
    const sub: Subscription = {
      key: keyOf(req.callId!, localTag, from.tag ?? ''),
      event,
      eventId: req.event?.id,
      watcher,
      presentity,
      allowed,
      callId: req.callId!,
      localTag,
      remoteTag: from.tag ?? '',
      remoteUri: from.uri.toString(),
      remoteTarget: contact?.uri.toString() ?? from.uri.toString(),
      routeSet: req.recordRoute.map((r) => r.toString()),
      origin: { protocol: tx.flow.protocol, address: tx.flow.remote.address, port: tx.flow.remote.port, flowId: tx.flow.protocol === 'udp' ? undefined : tx.flow.id },
      cseq: 0,
      remoteCseq: req.cseq?.seq ?? 0,
      expiresAt: 0,
      lastNotifyAt: 0,
      version: 0,
      failures: 0,
      ended: false,
    };
    this.opts.stack.respond(tx, 200, { toTag: localTag, headers: [['Expires', String(expires)], ['Contact', this.ourContact(tx.flow.protocol)]] });
    if (expires === 0) {
      // A fetch (RFC 6665 §4.4.3): one NOTIFY with the state, and nothing kept.
      this.send(sub, 'terminated;reason=timeout');
      return;
    }
    this.add(sub, expires);
    this.send(sub);
    if (this.log.isLevelEnabled('debug')) this.log.debug({ watcher, presentity, event, expires, allowed }, 'subscription created');
  }

  /** An in-dialog request of a subscription held here (`owns` was true): a refresh or an unsubscribe. */
  inDialog(req: SipRequest, tx: ServerTransaction): void {
    const sub = this.subs.get(keyOf(req.callId ?? '', req.to?.tag ?? '', req.from?.tag ?? ''));
    if (sub === undefined) return void this.opts.stack.respond(tx, 481);
    if (req.method !== 'SUBSCRIBE') return void this.opts.stack.respond(tx, 405, { headers: [['Allow', 'SUBSCRIBE']] });
    const cseq = req.cseq?.seq ?? 0;
    // RFC 3261 §12.2.2: a request with a lower CSeq than the last one is out of order.
    if (cseq <= sub.remoteCseq) return void this.opts.stack.respond(tx, 500, { reason: 'Server Internal Error (CSeq out of order)' });
    sub.remoteCseq = cseq;
    const expires = this.grantedExpires(req, tx);
    if (expires === undefined) return;
    // A refresh from a new connection (the phone reconnected): NOTIFYs go there from now on.
    sub.origin = { protocol: tx.flow.protocol, address: tx.flow.remote.address, port: tx.flow.remote.port, flowId: tx.flow.protocol === 'udp' ? undefined : tx.flow.id };
    const contact = req.contact[0];
    if (contact !== undefined) sub.remoteTarget = contact.uri.toString();
    this.opts.stack.respond(tx, 200, { headers: [['Expires', String(expires)], ['Contact', this.ourContact(tx.flow.protocol)]] });
    if (expires === 0) return this.end(sub, 'timeout');
    this.arm(sub, expires);
    sub.lastBody = undefined;
    // A refresh judges the watcher again: an allow list changed on another worker counts from here.
    if (sub.event === 'message-summary') return this.send(sub);
    void this.mayWatch(sub.watcher, sub.presentity).then((allowed) => {
      sub.allowed = allowed;
      if (!sub.ended) this.send(sub);
    });
  }

  /**
   * The presentity's allow list changed: each watcher is judged again, and one that is allowed or blocked now
   * gets a NOTIFY that says so (a watcher removed from the list learns nothing more from then on).
   */
  async recheck(presentity: string): Promise<void> {
    for (const sub of [...(this.byPresentity.get(presentity) ?? [])]) {
      if (sub.event === 'message-summary') continue;
      const allowed = await this.mayWatch(sub.watcher, presentity);
      if (allowed === sub.allowed || sub.ended) continue;
      sub.allowed = allowed;
      sub.lastBody = undefined;
      this.send(sub);
    }
  }

  stats(): NotifierStats {
    return { subscriptions: this.subs.size, ...this.counters };
  }

  /** Ends every subscription with a final NOTIFY (`terminated;reason=noresource`: the server goes away). */
  stop(): void {
    if (this.stopped) return;
    for (const sub of [...this.subs.values()]) this.end(sub, 'noresource');
    this.stopped = true;
  }

  // ---- internals ------------------------------------------------------------------------------------------

  /** The policy's answer; a store that cannot answer blocks (never a leak of state). */
  private async mayWatch(watcher: string, presentity: string): Promise<boolean> {
    try {
      return await this.opts.policy.mayWatch(watcher, presentity);
    } catch (err) {
      this.log.warn({ watcher, presentity, err: (err as Error).message }, 'the presence policy could not answer: the watcher is told nothing');
      return false;
    }
  }

  /** The Expires to grant, or undefined after answering 423 (RFC 6665 §4.2.1.1) or 400. */
  private grantedExpires(req: SipRequest, tx: ServerTransaction): number | undefined {
    const { minExpires, maxExpires, defaultExpires } = this.opts.limits;
    const asked = req.expires ?? defaultExpires;
    if (!Number.isFinite(asked) || asked < 0) {
      this.opts.stack.respond(tx, 400, { reason: 'Bad Request (Expires)' });
      return undefined;
    }
    if (asked > 0 && asked < minExpires) {
      this.opts.stack.respond(tx, 423, { headers: [['Min-Expires', String(minExpires)]] });
      return undefined;
    }
    return Math.min(asked, maxExpires);
  }

  private add(sub: Subscription, expires: number): void {
    this.subs.set(sub.key, sub);
    let set = this.byPresentity.get(sub.presentity);
    if (set === undefined) {
      set = new Set();
      this.byPresentity.set(sub.presentity, set);
    }
    set.add(sub);
    this.perWatcher.set(sub.watcher, (this.perWatcher.get(sub.watcher) ?? 0) + 1);
    this.arm(sub, expires);
  }

  private remove(sub: Subscription): void {
    if (!this.subs.delete(sub.key)) return;
    sub.ended = true;
    clearTimeout(sub.expiryTimer);
    clearTimeout(sub.pendingTimer);
    const set = this.byPresentity.get(sub.presentity);
    set?.delete(sub);
    if (set?.size === 0) this.byPresentity.delete(sub.presentity);
    const n = (this.perWatcher.get(sub.watcher) ?? 1) - 1;
    if (n <= 0) this.perWatcher.delete(sub.watcher);
    else this.perWatcher.set(sub.watcher, n);
  }

  private arm(sub: Subscription, expires: number): void {
    sub.expiresAt = this.clock() + expires * 1000;
    clearTimeout(sub.expiryTimer);
    sub.expiryTimer = setTimeout(() => this.end(sub, 'timeout'), expires * 1000);
    sub.expiryTimer.unref();
  }

  /** The final NOTIFY, then the subscription is gone. */
  private end(sub: Subscription, reason: 'timeout' | 'noresource' | 'rejected'): void {
    if (sub.ended) return;
    this.remove(sub);
    this.send(sub, `terminated;reason=${reason}`);
  }

  /** A source changed for `user`: each of its subscriptions is told, within the throttle. */
  private changed(user: string): void {
    for (const sub of this.byPresentity.get(user) ?? []) {
      if (sub.event === 'message-summary' || sub.pendingTimer !== undefined) {
        if (sub.pendingTimer !== undefined) this.counters.suppressed++;
        continue;
      }
      const wait = sub.lastNotifyAt + this.opts.limits.notifyIntervalMs - this.clock();
      if (wait <= 0) {
        this.send(sub);
        continue;
      }
      sub.pendingTimer = setTimeout(() => {
        sub.pendingTimer = undefined;
        if (!sub.ended) this.send(sub);
      }, wait);
      sub.pendingTimer.unref();
    }
  }

  private body(sub: Subscription): string {
    const { state } = this.opts;
    switch (sub.event) {
      case 'presence':
        return sub.allowed ? buildPidf(state.view(sub.presentity)) : blockedPidf(`sip:${sub.presentity}`);
      case 'dialog':
        return buildDialogInfo(`sip:${sub.presentity}`, sub.version, 'full', sub.allowed ? state.dialogInfo(sub.presentity) : []);
      case 'message-summary':
        return buildMessageSummary({ waiting: false, account: `sip:${sub.presentity}` });
    }
  }

  /** Sends a NOTIFY with the current state; `subscriptionState` for the final one. */
  private send(sub: Subscription, subscriptionState?: string): void {
    if (this.stopped) return;
    const body = this.body(sub);
    if (subscriptionState === undefined && sub.event === 'presence' && body === sub.lastBody) {
      this.counters.suppressed++;
      return;
    }
    sub.lastBody = body;
    sub.lastNotifyAt = this.clock();
    if (sub.event === 'dialog') sub.version++;
    const remaining = Math.max(0, Math.round((sub.expiresAt - this.clock()) / 1000));
    const request = this.notifyRequest(sub, subscriptionState ?? `active;expires=${remaining}`, body);
    const destination = this.opts.contactDestination(sub.remoteTarget) ?? sub.origin;
    this.counters.notifies++;
    const failed = (why: string, permanent: boolean): void => {
      this.counters.notifyFailures++;
      sub.failures++;
      if (this.log.isLevelEnabled('debug')) this.log.debug({ watcher: sub.watcher, presentity: sub.presentity, why }, 'NOTIFY failed');
      if (!sub.ended && (permanent || sub.failures >= MAX_FAILURES)) this.remove(sub);
    };
    try {
      this.opts.stack.sendRequest(request, destination, {
        onResponse: (res: SipResponse) => {
          if (res.status < 200) return;
          if (res.status < 300) sub.failures = 0;
          // §4.2.2.3: a 481 (or another failure) says the subscription is gone at the watcher.
          else failed(String(res.status), res.status !== 408 && res.status !== 503);
        },
        onTimeout: () => failed('timeout', true),
        onTransportError: (_tx, err) => failed(err.message, false),
      });
    } catch (err) {
      failed((err as Error).message, false);
    }
  }

  private notifyRequest(sub: Subscription, subscriptionState: string, body: string): SipRequest {
    const fields: Array<[string, string]> = [['Max-Forwards', '70']];
    for (const r of sub.routeSet) fields.push(['Route', r]);
    fields.push(
      ['From', `<sip:${sub.presentity}>;tag=${sub.localTag}`],
      ['To', `<${sub.remoteUri}>;tag=${sub.remoteTag}`],
      ['Call-ID', sub.callId],
      ['CSeq', `${++sub.cseq} NOTIFY`],
      ['Contact', this.ourContact(sub.origin.protocol)],
      ['Event', sub.eventId === undefined ? sub.event : `${sub.event};id=${sub.eventId}`],
      ['Subscription-State', subscriptionState],
      ['Content-Type', CONTENT_TYPE[sub.event]],
    );
    const request = new SipRequest({ method: 'NOTIFY', uri: sub.remoteTarget, headers: fields.map(([n, v]) => makeField(headerKey(n), n, v)) });
    request.setBody(body);
    return request;
  }

  private ourContact(protocol: Destination['protocol']): string {
    const a = this.opts.stack.advertisedAddress(protocol);
    const host = a === undefined ? 'softswitch.invalid' : a.host.includes(':') ? `[${a.host}]` : a.host;
    const transport = protocol === 'udp' ? '' : `;transport=${protocol === 'wss' ? 'ws' : protocol}`;
    return `<sip:presence@${host}${a === undefined ? '' : `:${a.port}`}${transport}>`;
  }
}

function keyOf(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\n${localTag}\n${remoteTag}`;
}
