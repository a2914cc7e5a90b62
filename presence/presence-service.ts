/**
 * The presence agent for the users of the served domains: what the routing policy hands SUBSCRIBE and
 * PUBLISH requests for a user of ours to.
 *
 * - SUBSCRIBE `presence` and `dialog`: served here (notifier.ts). `message-summary` (RFC 3842): voicemail
 *   lives on the backends when a mid-registrar/FreeSWITCH pool is configured, so the SUBSCRIBE goes there
 *   (`forwardVoicemail`); otherwise it is answered here with no messages. Never looped back to the phone
 *   that sent it. Another package: 489 Bad Event (RFC 6665 §8.2.1) with Allow-Events.
 * - PUBLISH `presence` (RFC 3903): the user's own devices (or a trusted source) publish PIDF; entity-tags,
 *   expiry and conditional refresh (SIP-If-Match: 412 for an unknown tag); the body becomes the user's
 *   published state (presence-state.ts).
 */
import type { Stack } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import type { SipRequest } from '../src/sip/index.js';
import type { ServerTransaction } from '../src/transaction/index.js';
import { EVENT_PACKAGES, type EventPackage, type Notifier } from './notifier.js';
import { PidfError, parsePidf } from './pidf.js';
import type { PresenceState } from './presence-state.js';
import type { PublishedState } from './types.js';

const ALLOW_EVENTS = EVENT_PACKAGES.join(', ');
/** Publications one user may hold at once (each of its devices publishes one). */
const MAX_PUBLICATIONS = 16;
/** The largest PIDF taken, bytes. */
const MAX_PIDF = 65_536;

export interface PresenceServiceOptions {
  stack: Pick<Stack, 'respond'>;
  state: PresenceState;
  notifier: Notifier;
  limits: { minExpires: number; maxPublishExpires: number; defaultPublishExpires: number };
  logger: Logger;
}

export class PresenceService {
  private readonly opts: PresenceServiceOptions;
  private readonly log: Logger;
  readonly counters = { subscribes: 0, publishes: 0, forwarded: 0, refused: 0 };

  constructor(options: PresenceServiceOptions) {
    this.opts = options;
    this.log = categoryLogger(options.logger, 'presence');
  }

  /**
   * A SUBSCRIBE or PUBLISH outside a dialog for `presentity` (user@domain of a subscriber). `watcher` is the
   * authenticated user, or a trusted source's From. `forwardVoicemail`, when set, takes message-summary
   * SUBSCRIBEs to the voicemail backends.
   */
  async take(req: SipRequest, tx: ServerTransaction, watcher: string, presentity: string, trusted: boolean, forwardVoicemail?: () => void): Promise<void> {
    const event = req.event?.type;
    if (req.method === 'PUBLISH') return this.publish(req, tx, event, watcher, presentity, trusted);
    if (event === undefined || !EVENT_PACKAGES.includes(event as EventPackage)) return this.badEvent(tx, event);
    this.counters.subscribes++;
    if (event === 'message-summary' && forwardVoicemail !== undefined) {
      this.counters.forwarded++;
      return forwardVoicemail();
    }
    await this.opts.notifier.subscribe(req, tx, event as EventPackage, watcher, presentity);
  }

  private publish(req: SipRequest, tx: ServerTransaction, event: string | undefined, publisher: string, presentity: string, trusted: boolean): void {
    const { stack, state, limits } = this.opts;
    if (event !== 'presence') return this.badEvent(tx, event);
    // Only the user's own devices say what the user is doing (a trusted source may publish for anyone).
    if (!trusted && publisher !== presentity) return this.refuse(tx, 403, 'Forbidden (a user publishes only their own presence)');
    const ifMatch = req.get('sip-if-match')?.trim();
    const asked = req.expires ?? limits.defaultPublishExpires;
    if (!Number.isFinite(asked) || asked < 0) return this.refuse(tx, 400, 'Bad Request (Expires)');
    if (asked > 0 && asked < limits.minExpires) return void stack.respond(tx, 423, { headers: [['Min-Expires', String(limits.minExpires)]] });
    const expires = Math.min(asked, limits.maxPublishExpires);
    // RFC 3903 §6 step 4: a tag we do not hold (expired, or another node's) is 412.
    if (ifMatch !== undefined && state.publication(presentity, ifMatch) === undefined) return this.refuse(tx, 412, 'Conditional Request Failed');
    if (expires === 0) {
      if (ifMatch === undefined) return this.refuse(tx, 400, 'Bad Request (Expires 0 without SIP-If-Match)');
      state.unpublish(presentity, ifMatch);
      this.counters.publishes++;
      return void stack.respond(tx, 200, { headers: [['SIP-ETag', ifMatch], ['Expires', '0']] });
    }
    let published: PublishedState | undefined;
    if (req.body.length > 0) {
      if (req.contentType !== 'application/pidf+xml') {
        return void stack.respond(tx, 415, { headers: [['Accept', 'application/pidf+xml']] });
      }
      if (req.body.length > MAX_PIDF) return this.refuse(tx, 413, 'Request Entity Too Large');
      try {
        published = parsePidf(req.body.toString('utf8'));
      } catch (err) {
        if (!(err instanceof PidfError)) throw err;
        return this.refuse(tx, 400, `Bad Request (${err.message.slice(0, 80)})`);
      }
    } else if (ifMatch === undefined) {
      // §6 step 3: an initial publication carries a body.
      return this.refuse(tx, 400, 'Bad Request (an initial PUBLISH needs a body)');
    }
    if (ifMatch === undefined && state.publicationCount(presentity) >= MAX_PUBLICATIONS) return this.refuse(tx, 403, 'Forbidden (too many publications)');
    const p = state.publish(presentity, ifMatch, published, expires);
    this.counters.publishes++;
    stack.respond(tx, 200, { headers: [['SIP-ETag', p.etag], ['Expires', String(expires)]] });
  }

  private badEvent(tx: ServerTransaction, event: string | undefined): void {
    this.counters.refused++;
    this.opts.stack.respond(tx, 489, { headers: [['Allow-Events', ALLOW_EVENTS]], reason: event === undefined ? 'Bad Event (no Event header)' : 'Bad Event' });
  }

  private refuse(tx: ServerTransaction, status: number, reason: string): void {
    this.counters.refused++;
    if (this.log.isLevelEnabled('debug')) this.log.debug({ status, reason }, 'presence request refused');
    this.opts.stack.respond(tx, status, { reason });
  }
}
