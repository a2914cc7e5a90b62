/**
 * The routing policy: what happens to every request, in the order an operator reads a kamailio.cfg.
 * It only calls module APIs (registrar, proxy core, location service); sockets and timers never appear
 * here. Read `route()` top to bottom to see where a call goes.
 *
 * Layout: this is the ONE service file that may import other services (registrar/, balancer/, media/ through
 * their index.ts/types.ts): it composes their APIs the way a kamailio.cfg composes modules. Every other service
 * file imports only src/, platform/ and type-only the public index.ts/types.ts of another service
 * (test/unit/layout.test.ts enforces it).
 */
import type { Stack, StackUser } from '../src/core/index.js';
import { OPTIONS_HEADERS, answerAtOwnAddress, answerCancel, isNextHopFailure } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import { type SipRequest, type SipResponse, SipUri, TelUri, type Uri, escapeUriUser, parseCredentials, parseSipUri } from '../src/sip/index.js';
import type { InviteServerTransaction, ServerTransaction } from '../src/transaction/index.js';
import type { Destination, Flow } from '../src/transport/types.js';
import type { Binding, CredentialSource, RegistrarApi } from '../registrar/index.js';
import { ServedDomains, aorIn } from '../registrar/index.js';
import type { BackendChoice, BalancerApi, RoutingDataApi } from '../balancer/types.js';
import { forwardStateless, looseRoute } from './loose-route.js';
import { isLoop } from './loop-detection.js';
import type { ProxyContext } from './proxy-context.js';
import type { ProxyBranch } from './proxy-branch.js';
import type { ProxyCore } from './proxy-core.js';
import type { RecordRoute } from './record-route.js';
import { resolve as resolveUri } from '../src/core/index.js';
import type { ForwardOptions, ForwardTarget } from './types.js';
import type {
  DialogAnswerer, DialogBackend, DialogDirection, DialogHangup, DialogLegs, DialogParty, DialogSnapshot, DialogTracker, HangupResult,
} from '../src/dialog/index.js';
import { dialogLegs, sendByes } from './dialog-bye.js';

export interface RouterDeps {
  stack: Stack;
  proxy: ProxyCore;
  /** The proxy core's Record-Route signer: the same secret verifies the Routes that come back. */
  recordRoute: RecordRoute;
  registrar: RegistrarApi;
  /** Who exists (404 for unknown users, 480 for known users without a binding). */
  subscribers: CredentialSource;
  /** One dialog per forwarded call: what history, least-calls and the media relay follow. */
  dialogs: DialogTracker;
  /** The domains this softswitch serves. */
  domains: string[];
  /** PSTN routing: backends, dialplan, DIDs, trusted sources. Without it only user→user calls exist. */
  pstn?: PstnRouting;
  /** The mid-registrar, when REGISTERs go to a backend (registrar.mode other than local). */
  mid?: MidRegistrarRouting;
  /** The push call server (RFC 8599): sleeping devices are woken and the INVITE waits for them. */
  push?: PushRouting;
  /** Chat (messaging/): MESSAGEs to users and groups are stored and delivered by it instead of proxied. */
  messaging?: MessagingRouting;
  /** Presence (presence/): SUBSCRIBE and PUBLISH for users of ours are served by it. */
  presence?: PresenceRouting;
  logger: Logger;
}

/** What the routing policy asks of the presence server (presence/). */
export interface PresenceRouting {
  /** Whether an in-dialog request belongs to a subscription it serves (it is the notifier). */
  owns(request: SipRequest): boolean;
  inDialog(request: SipRequest, tx: ServerTransaction): void;
  /**
   * A SUBSCRIBE or PUBLISH outside a dialog for `presentity` (user@domain of a subscriber) from `watcher` (the
   * authenticated user, or a trusted source's From); `forwardVoicemail` takes message-summary to the backends.
   */
  take(request: SipRequest, tx: ServerTransaction, watcher: string, presentity: string, trusted: boolean, forwardVoicemail?: () => void): Promise<void>;
  /** The backend set that holds voicemail (the mid-registrar's), where message-summary SUBSCRIBEs go. */
  voicemailSet?: string | undefined;
}

/** What the routing policy asks of chat (messaging/). */
export interface MessagingRouting {
  /**
   * Takes a MESSAGE outside a dialog for `recipient` (`user@domain` of a subscriber, or a group's
   * `group-…@domain`): stores it and answers (202, or the refusal). `sender` is the authenticated user, or a
   * trusted source's From (`+4930123@10.0.0.5`: an SMS). Resolves false, having answered nothing, for a group
   * that does not exist.
   */
  take(request: SipRequest, tx: ServerTransaction, sender: string, recipient: string): Promise<boolean>;
  /** Whether a user part names a group (`group-…`). */
  isGroup(user: string): boolean;
}

export interface PstnRouting {
  balancer: BalancerApi;
  data: RoutingDataApi;
  /** ms without any response (not even 100 Trying) before a backend is given up for the next one. */
  failoverTimeoutMs: number;
  /** When set, calls between our own users go through this backend set (FreeSWITCH features) too. */
  userToUserSet?: string | undefined;
}

/** What the routing policy asks of the push call server. */
export interface PushRouting {
  /**
   * True for a device that only a push reaches now (push data, no live connection). A binding has push
   * data only for a provider configured here (the registrar's rule), so every such device can be woken.
   */
  isAsleep(binding: Binding): boolean;
  /** Pushes the device and resolves with the binding it registers again with (undefined: it did not, or `signal` aborted). */
  wake(binding: Binding, call: { callId: string; aor: string; from: string; fromName?: string | undefined }, signal: AbortSignal): Promise<Binding | undefined>;
  /** Send 180 Ringing to the caller while only sleeping devices are being woken. */
  ringingWhileWaking: boolean;
}

/** What the routing policy asks of the mid-registrar. */
export interface MidRegistrarRouting {
  handle(request: SipRequest, tx: ServerTransaction): Promise<void>;
  /** The devices an INVITE from a backend to a Contact we registered there reaches; undefined when not ours. */
  resolveIncoming(ruri: Uri): Binding[] | undefined;
  /** A device's connection closed: its registration at the backend is withdrawn at once. */
  onFlowClosed?(flow: Flow): void;
}

/** What the routing policy knows of a call when it forwards its INVITE (the dialog's facts). */
interface CallFacts {
  caller: DialogParty;
  callee: DialogParty;
  direction: DialogDirection;
}

/** In-dialog requests that belong to a call (RFC 3261 re-INVITE, RFC 3311 UPDATE, RFC 6086 INFO, RFC 3515 REFER, RFC 3262 PRACK). */
const CALL_DIALOG_METHODS: ReadonlySet<string> = new Set(['INVITE', 'UPDATE', 'INFO', 'REFER', 'PRACK']);

export class Router implements StackUser, DialogHangup {
  private readonly stack: Stack;
  private readonly proxy: ProxyCore;
  private readonly rr: RecordRoute;
  private readonly registrar: RegistrarApi;
  private readonly subscribers: CredentialSource;
  private readonly domains: ServedDomains;
  private readonly dialogs: DialogTracker;
  private readonly pstn: PstnRouting | undefined;
  private readonly mid: MidRegistrarRouting | undefined;
  private readonly push: PushRouting | undefined;
  private readonly messaging: MessagingRouting | undefined;
  private readonly presence: PresenceRouting | undefined;
  private readonly log: Logger;
  /** The INVITEs of calls not answered yet, by Call-ID: what an administrator's hang-up CANCELs. */
  private readonly ringing = new Map<string, { context: ProxyContext; byAdmin: boolean }>();

  constructor(deps: RouterDeps) {
    this.stack = deps.stack;
    this.proxy = deps.proxy;
    this.rr = deps.recordRoute;
    this.registrar = deps.registrar;
    this.subscribers = deps.subscribers;
    this.domains = new ServedDomains(deps.domains, (host) => deps.stack.isLocalHost(host));
    this.dialogs = deps.dialogs;
    this.pstn = deps.pstn;
    this.mid = deps.mid;
    this.push = deps.push;
    this.messaging = deps.messaging;
    this.presence = deps.presence;
    this.log = categoryLogger(deps.logger, 'proxy.route');
  }

  // ---- the policy -------------------------------------------------------------------------------

  private async route(req: SipRequest, tx: ServerTransaction, cancels?: InviteServerTransaction): Promise<void> {
    // 1. CANCEL ends the matching INVITE's branches (RFC 3261 §16.10); the INVITE then gets its 487.
    if (req.method === 'CANCEL') {
      if (cancels !== undefined && this.proxy.cancel(cancels)) this.stack.respond(tx, 200);
      else answerCancel(this.stack, tx, cancels);
      return;
    }

    // 2. Loops (§16.3 step 4).
    if (isLoop(req, this.stack)) return this.reply(tx, 482);

    // 3. In-dialog requests follow the Record-Route path that set the dialog up; those of a subscription
    //    the presence server holds (a refresh, an unsubscribe) are its own.
    if (req.to?.tag !== undefined) {
      if (this.presence?.owns(req) === true) return this.presence.inDialog(req, tx);
      return this.routeInDialog(req, tx);
    }

    // 4. Routes pre-loaded by the client (we as its outbound proxy) are consumed.
    if (req.route.length > 0) looseRoute(req, this.stack, this.rr);

    // 5. Requests for the server itself: keep-alive OPTIONS; REGISTER goes on to step 6; a method proxied
    //    for users gets 405, an unknown one 501.
    if (this.isForServer(req.ruri) && req.method !== 'REGISTER') return answerAtOwnAddress(this.stack, tx, req.method);

    // 6. REGISTER for our domains (or to our own address) goes to the registrar, or through the
    //    mid-registrar to a backend; we relay nobody's REGISTER elsewhere.
    if (req.method === 'REGISTER') {
      if (!this.isOurDomain(req.ruri) && !this.isForServer(req.ruri)) return this.reply(tx, 403, [], 'Forbidden (not a domain served here)');
      return this.mid !== undefined ? this.mid.handle(req, tx) : this.registrar.handle(req, tx);
    }

    // 7. Trusted sources (FreeSWITCH, trunks: `softswitch trusted add`, and every backend) need no
    //    credentials. Everyone else proves who they are, as the user in From (407), and may not assert
    //    an identity of their own choosing.
    const trusted = this.pstn?.data.isTrusted(tx.flow.remote.address) ?? false;
    let caller: string | undefined;
    if (!trusted) {
      req.remove('P-Asserted-Identity');
      caller = await this.authenticateCaller(req, tx);
      if (caller === undefined) return;
    }
    // A connection that proved itself (credentials, or a trusted source: a trunk's, a backend's TCP/TLS)
    // is shed last under connection pressure and its requests do not count as a flood.
    if (tx.flow.protocol !== 'udp') this.stack.markFlowAuthenticated(tx.flow);

    // 8. A backend calling a device at the Contact the mid-registrar registered there.
    const devices = trusted ? this.mid?.resolveIncoming(req.ruri) : undefined;
    if (devices !== undefined) return this.forkTo(req, tx, devices, callFacts(req, caller, 'pstn-user', calleeOf(req, devices[0]?.aor)));

    // 9. Our domain (or our address) with a user part: a user of ours, a DID, or a dialled number.
    if (this.isOurDomain(req.ruri) || this.isOurAddress(req.ruri) || req.ruri.scheme === 'tel') return this.routeToNumber(req, tx, caller);

    // 10. Never an open relay: other domains are not reached from here (trunks come with the dialplan).
    this.log.info({ from: caller, ruri: req.uri }, 'relaying denied');
    return this.reply(tx, 403, [], 'Forbidden (relaying denied)');
  }

  /**
   * The Request-URI's user, in this order: a subscriber of ours (its registered devices ring at once),
   * a DID (the user it belongs to rings), a dialplan route (a backend of the route's set, with serial
   * failover), else 404. `caller` is the authenticated user, undefined for a trusted source.
   */
  private async routeToNumber(req: SipRequest, tx: ServerTransaction, caller: string | undefined): Promise<void> {
    const uri = req.ruri;
    const user = uri instanceof SipUri ? uri.userUnescaped ?? '' : uri instanceof TelUri ? uri.number : '';
    const domain = uri instanceof SipUri ? this.domains.canonical(uri.hostname) : undefined;
    // Chat: a MESSAGE for a user or a group of ours is stored and delivered to every device (messaging/).
    const chat = req.method === 'MESSAGE' ? this.messaging : undefined;
    if (chat !== undefined && uri instanceof SipUri && domain !== undefined) {
      const name = uri.userUnescaped ?? '';
      const sender = caller ?? fromAddress(req);
      if (chat.isGroup(name)) return (await chat.take(req, tx, sender, `${name}@${domain}`)) ? undefined : this.reply(tx, 404);
      if ((await this.subscribers.getCredentials(name, domain)) !== undefined) return void (await chat.take(req, tx, sender, `${name}@${domain}`));
    }
    // Presence: SUBSCRIBE and PUBLISH for a user of ours are served here, never forked to the user's phones
    // (which would send a phone its own PUBLISH, or its own voicemail SUBSCRIBE).
    const events = req.method === 'SUBSCRIBE' || req.method === 'PUBLISH' ? this.presence : undefined;
    if (events !== undefined && uri instanceof SipUri && domain !== undefined) {
      const name = uri.userUnescaped ?? '';
      if ((await this.subscribers.getCredentials(name, domain)) !== undefined) {
        const presentity = `${name}@${domain}`;
        const set = events.voicemailSet;
        const voicemail = set !== undefined && this.pstn !== undefined
          ? () => this.routeToBackends(req, tx, set, name, caller, callFacts(req, caller, 'user-pstn', calleeOf(req, presentity)))
          : undefined;
        return events.take(req, tx, caller ?? fromAddress(req), presentity, caller === undefined, voicemail);
      }
    }
    if (uri instanceof SipUri && domain !== undefined) {
      const bindings = this.registrar.lookup(aorIn(uri, domain));
      if (bindings.length > 0) {
        const call = callFacts(req, caller, caller === undefined ? 'pstn-user' : 'user-user', calleeOf(req, `${uri.userUnescaped ?? ''}@${domain}`));
        const via = this.pstn?.userToUserSet;
        // user→user through FreeSWITCH when so configured; it calls the callee back as a trusted source.
        if (via !== undefined && caller !== undefined) return this.routeToBackends(req, tx, via, user, caller, call);
        return this.forkTo(req, tx, bindings, call);
      }
      if ((await this.subscribers.getCredentials(uri.userUnescaped ?? '', domain)) !== undefined) return this.reply(tx, 480);
    }
    const number = dialledNumber(user);
    const pstn = this.pstn;
    if (pstn === undefined || number === '') return this.reply(tx, 404);
    const did = pstn.data.did(number);
    // An SMS to a DID is a chat message for the user it belongs to.
    if (did !== undefined && chat !== undefined) return void (await chat.take(req, tx, caller ?? fromAddress(req), `${did.username}@${did.domain.toLowerCase()}`));
    if (did !== undefined) {
      const aor = aorIn(new SipUri({ scheme: 'sip', user: did.username, host: did.domain }), did.domain.toLowerCase());
      const bindings = this.registrar.lookup(aor);
      this.log.debug({ number, aor, branches: bindings.length }, 'DID');
      if (bindings.length === 0) return this.reply(tx, 480);
      const callee = { ...calleeOf(req, `${did.username}@${did.domain}`), number };
      return this.forkTo(req, tx, bindings, callFacts(req, caller, caller === undefined ? 'pstn-user' : 'user-user', callee));
    }
    const match = pstn.data.matchRoute(number);
    if (match === undefined) {
      this.log.info({ number, from: caller }, 'no dialplan route');
      return this.reply(tx, 404, [], 'Not Found (no route for this number)');
    }
    // A trusted source's call to a backend (transit) is recorded as coming from the PSTN.
    const call = callFacts(req, caller, caller === undefined ? 'pstn-user' : 'user-pstn', { ...calleeOf(req, undefined), number });
    return this.routeToBackends(req, tx, match.set, match.number, caller, call);
  }

  /**
   * To a backend of `set` (the balancer's pick first), the Request-URI rewritten to `number` at the
   * backend. A backend that times out or answers 503 is reported down-ward and the next one is tried
   * (serial failover): the caller only sees the backend that answers.
   */
  private routeToBackends(req: SipRequest, tx: ServerTransaction, set: string, number: string, caller: string | undefined, call: CallFacts): void {
    const pstn = this.pstn!;
    // Calls are spread (no sticky key): stickiness per AoR is for REGISTERs (the mid-registrar's).
    const choices = pstn.balancer.candidates(set);
    if (choices.length === 0) {
      this.log.warn({ set, number }, 'no backend available');
      return this.reply(tx, 503, [['Retry-After', '30']], 'Service Unavailable (no backend available)');
    }
    const headers: Array<[string, string]> = caller === undefined ? [] : [['P-Asserted-Identity', `<sip:${caller}>`]];
    const target = (i: number): ForwardTarget => {
      const backend = choices[i]!;
      if (req.method === 'INVITE') pstn.balancer.callStarted(backend);
      return { uri: backendUri(backend.uri, number), responseTimeoutMs: pstn.failoverTimeoutMs, headers };
    };
    this.log.debug({ set, number, backend: choices[0]!.uri, callId: req.callId }, 'to backend');
    const answerer = (i: number): { answeredBy: DialogAnswerer; backend: DialogBackend } => {
      const { id, set: backendSet, uri } = choices[i]!;
      return { answeredBy: { contact: uri }, backend: { id, set: backendSet, uri } };
    };
    const context = this.forwardCall(req, tx, [target(0)], call, answerer, {
      failover: (_best, attempt, status) => {
        const failed = choices[attempt - 1]!;
        if (!isNextHopFailure(status)) return undefined;
        pstn.balancer.markFailure(failed, String(status));
        if (attempt >= choices.length) return undefined;
        this.log.info({ failed: failed.uri, status, next: choices[attempt]!.uri, callId: req.callId }, 'backend failover');
        return [target(attempt)];
      },
    });
    context.on('done', () => {
      for (const branch of context.branches) {
        const backend = choices[branch.index]!;
        const status = branch.result?.status ?? 0;
        if (!isNextHopFailure(status)) pstn.balancer.markSuccess(backend);
        // An answered call counts at its backend until its dialog ends (the shell wires `ended` to callEnded).
        if (req.method === 'INVITE' && !(status >= 200 && status < 300)) pstn.balancer.callEnded(backend);
      }
    });
  }

  /**
   * Every device of the callee rings at once (parallel forking). Devices that only a push reaches now
   * (RFC 8599) are woken, and the INVITE waits for them: each one joins the fork as it registers again,
   * once, while the others already ring; none that wakes too late rings after an answer or a CANCEL.
   */
  private forkTo(req: SipRequest, tx: ServerTransaction, bindings: Binding[], call: CallFacts): void {
    if (bindings.length === 0) return this.reply(tx, 480);
    const push = this.push;
    const asleep = push === undefined || req.method !== 'INVITE' ? [] : bindings.filter((b) => push.isAsleep(b));
    const reached = bindings.filter((b) => !asleep.includes(b));
    this.log.debug({ ruri: req.uri, branches: reached.length, waking: asleep.length, callId: req.callId }, 'forking to bindings');
    // Branch i goes to reached[i]: woken devices are appended as they arrive.
    const context = this.forwardCall(req, tx, reached.map(targetOf), call, (i) => {
      const b = reached[i]!;
      return { answeredBy: { aor: b.aor.replace(/^sips?:/, ''), contact: b.contact.uri.toString(), instance: b.instanceId } };
    }, asleep.length > 0 ? { awaiting: asleep.length } : undefined);
    if (asleep.length > 0) this.wake(req, tx, context, asleep, reached);
  }

  /** RFC 8599 §5.6: a push to each sleeping device; the INVITE goes to each as it registers again. */
  private wake(req: SipRequest, tx: ServerTransaction, context: ProxyContext, devices: Binding[], reached: Binding[]): void {
    const push = this.push!;
    // The call is decided (answered, cancelled, failed): the devices still waking are not waited for.
    const decided = new AbortController();
    context.on('final', () => decided.abort());
    if (push.ringingWhileWaking && reached.length === 0) this.stack.respond(tx, 180);
    const from = req.from!;
    for (const device of devices) {
      const call = { callId: req.callId!, aor: device.aor.replace(/^sips?:/, ''), from: from.uri.toString(), fromName: from.displayName };
      void push.wake(device, call, decided.signal).then((woken) => {
        if (woken === undefined || !context.open) return context.giveUp();
        this.log.debug({ callId: req.callId, aor: device.aor }, 'woken device registered: the INVITE goes to it');
        reached.push(woken);
        context.arrive([targetOf(woken)]);
      });
    }
  }

  /**
   * Forwards, and for an initial INVITE follows the call as a dialog: created as it goes out, early on
   * the first ringing provisional, confirmed by the 2xx (`answerer` says who the answering branch's
   * target is), ended by the final failure (a CANCEL's 487 as cancelled by the caller).
   */
  private forwardCall(
    req: SipRequest, tx: ServerTransaction, targets: ForwardTarget[], call: CallFacts,
    answerer: (branch: number) => { answeredBy: DialogAnswerer; backend?: DialogBackend },
    options?: ForwardOptions,
  ): ProxyContext {
    if (req.method !== 'INVITE') return this.proxy.forward(req, tx, targets, options);
    const dialog = this.dialogs.create({ callId: req.callId!, fromTag: req.from?.tag ?? '', ...call });
    const context = this.proxy.forward(req, tx, targets, options);
    const ringing = { context, byAdmin: false };
    const final = (res: SipResponse, branch: ProxyBranch | undefined): void => {
      if (this.ringing.get(dialog.callId) === ringing) this.ringing.delete(dialog.callId);
      if (res.status < 300) {
        const legs = branch === undefined ? undefined : legsOf(req, tx, branch);
        this.dialogs.confirm(dialog, { toTag: res.to?.tag, code: res.status, reason: res.reason, legs, ...(branch && answerer(branch.index)) });
        // The callee answered as the administrator's CANCEL went out (§16.10 leaves the 2xx standing): hang it up now.
        if (ringing.byAdmin) this.dialogs.hangUp(dialog.id);
      } else {
        const cancelled = context.cancelled;
        const hangupBy = ringing.byAdmin ? 'system' : cancelled ? 'caller' : undefined;
        this.dialogs.end(dialog, { cause: cancelled ? 'cancel' : 'failure', hangupBy, code: res.status, reason: res.reason });
      }
    };
    // A context can end before forward() returns (every branch failed at once).
    if (context.final !== undefined) final(context.final, undefined);
    else {
      this.ringing.set(dialog.callId, ringing);
      // A context whose final response could not go upstream (its transaction ended) emits no `final`.
      context.on('done', () => {
        if (this.ringing.get(dialog.callId) === ringing) this.ringing.delete(dialog.callId);
      });
      context.on('provisional', (res) => {
        if (res.status >= 180 && res.to?.tag !== undefined) this.dialogs.early(dialog, res.to.tag);
      });
      context.on('final', final);
    }
    return context;
  }

  /** In-dialog: our Record-Route must be on top and carry our signature, or the request goes nowhere. */
  private async routeInDialog(req: SipRequest, tx: ServerTransaction): Promise<void> {
    const destination = await this.inDialogDestination(req);
    if (destination === undefined) return this.reply(tx, req.route.length === 0 ? 481 : 403);
    // Credentials for our realms are not checked in a dialog, and never passed on either.
    consumeCredentials(req, this.domains.list);
    // A BYE ends the call (its media, its count at the backend, its record), whatever the far end
    // answers; a dialog held by another worker is ended there.
    if (req.method === 'BYE') this.dialogs.endByRequest(req.callId!, req.from?.tag, { cause: 'bye' });
    // A BYE the proxy may send as this side later (an administrator's hang-up) must go above its CSeq. Only
    // the methods of a call's dialog: a subscription's NOTIFYs are no call's (and would cross workers for nothing).
    else if (req.cseq !== undefined && CALL_DIALOG_METHODS.has(req.method)) this.dialogs.requestSeen(req.callId!, req.from?.tag, req.cseq.seq);
    // RFC 6665 §4.3: a proxy that Record-Routed the SUBSCRIBE Record-Routes the NOTIFY that creates the
    // subscriber's dialog (and any later one: a route set is learned once), or the phone's refresh and
    // un-SUBSCRIBE go around it to the backend.
    this.proxy.forward(req, tx, [{ uri: req.ruri, destination }], { recordRoute: req.method === 'NOTIFY' });
  }

  // ---- an administrator's hang-up (DialogHangup) -----------------------------------------------

  /**
   * Ends a call from outside, as Kamailio's dlg_end_dlg does: an answered call gets a BYE to each side along
   * the route and over the connection that side uses, through client transactions (retransmitted over UDP);
   * a ringing call has its branches CANCELled as if the caller had (§16.10), and the caller gets the 487.
   * Undefined when neither can be done (an answered call without recorded legs, an INVITE already decided).
   */
  hangUp(dialog: Readonly<DialogSnapshot>): HangupResult | undefined {
    if (dialog.state === 'confirmed') {
      const legs = dialog.legs;
      if (legs === undefined) return undefined;
      // A phone whose connection went since (it reconnected) is reached on its registration's connection.
      sendByes(this.stack, dialog.callId, legs, this.log, (leg) => {
        const binding = this.registrar.lookupByContact(leg.target);
        return binding === undefined ? undefined : targetOf(binding).destination;
      });
      return 'bye';
    }
    const ringing = this.ringing.get(dialog.callId);
    if (ringing === undefined || !ringing.context.open) return undefined;
    ringing.byAdmin = true;
    ringing.context.cancel();
    return 'cancel';
  }

  // ---- ACK, responses, flows (StackUser) ---------------------------------------------------------

  onRequest(request: SipRequest, transaction: ServerTransaction, cancels?: InviteServerTransaction): void {
    this.route(request, transaction, cancels).catch((err: Error) => {
      this.log.error({ err: err.message, method: request.method, callId: request.callId }, 'routing failed');
      if (transaction.lastResponse === undefined || transaction.lastResponse.status < 200) this.reply(transaction, 500);
    });
  }

  /** OPTIONS pings to the server itself are answered without a transaction. */
  onStatelessRequest(request: SipRequest, flow: Flow): boolean {
    if (request.method !== 'OPTIONS' || request.to?.tag !== undefined || request.route.length > 0) return false;
    if (!this.isForServer(request.ruri)) return false;
    this.stack.respondStateless(request, flow, 200, { headers: OPTIONS_HEADERS });
    return true;
  }

  /** The ACK of a 2xx travels the dialog's route set like any in-dialog request, statelessly (§16.11). */
  onAck(request: SipRequest): void {
    this.inDialogDestination(request).then(
      (destination) => {
        if (destination === undefined) return void this.log.debug({ callId: request.callId }, 'ACK without a route of ours dropped');
        consumeCredentials(request, this.domains.list);
        forwardStateless(request, destination, this.stack);
      },
      (err: Error) => this.log.warn({ err: err.message }, 'ACK routing failed'),
    );
  }

  onStrayResponse(response: SipResponse, flow: Flow): void {
    this.proxy.onStrayResponse(response, flow);
  }

  onFlowClosed(flow: Flow): void {
    this.proxy.onFlowClosed(flow);
    const dropped = this.registrar.onFlowClosed(flow);
    // After the registrar dropped the bindings: the mid-registrar de-REGISTERs them at the backend.
    this.mid?.onFlowClosed?.(flow);
    if (dropped > 0) this.log.debug({ flow: flow.id, dropped }, 'bindings of a closed connection dropped');
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /**
   * Where an in-dialog request goes: after our Route values are removed (§16.4), the connection named
   * in our Record-Route (a WebSocket softphone is reachable only there), else a registered contact's
   * connection, else the next Route or the Request-URI resolved. Undefined when the route is not ours.
   */
  private async inDialogDestination(req: SipRequest): Promise<Destination | undefined> {
    const lr = looseRoute(req, this.stack, this.rr);
    if (!lr.ours || !lr.verified) return undefined;
    if (lr.next === 'route') return resolveUri(req.route[0]!.uri);
    const flow = lr.flow === undefined ? undefined : this.proxy.flowDestination(lr.flow);
    if (flow !== undefined) return flow;
    const binding = this.registrar.lookupByContact(req.ruri);
    if (binding !== undefined) return targetOf(binding).destination;
    return resolveUri(req.ruri);
  }

  /**
   * Returns the caller's identity when authenticated as the user in From (RFC 3261 §22.3, 407), or
   * undefined after answering the request.
   */
  private async authenticateCaller(req: SipRequest, tx: ServerTransaction): Promise<string | undefined> {
    const from = req.from!.uri;
    const domain = from instanceof SipUri ? this.domains.canonical(from.hostname) : undefined;
    if (domain === undefined) {
      this.reply(tx, 403, [], 'Forbidden (caller is not a user of this domain)');
      return undefined;
    }
    const result = await this.registrar.authenticator.authenticate(req, 'proxy', domain, tx.flow.remote.address);
    if (!result.ok) {
      this.reply(tx, result.status, result.headers, result.reason);
      return undefined;
    }
    if (result.username !== ((from as SipUri).userUnescaped ?? '') || result.domain !== domain) {
      this.log.info({ user: `${result.username}@${result.domain}`, from: from.toString() }, 'From does not match the credentials');
      this.reply(tx, 403, [], 'Forbidden (From does not match the credentials)');
      return undefined;
    }
    // The credentials for our realm were for us (Kamailio's consume_credentials): they never reach a
    // callee, a backend or a trunk, whatever the request and wherever it goes — a callee holding them
    // could replay them as the caller. Credentials for another realm (a 407 from a backend itself,
    // answered by the phone) go on.
    consumeCredentials(req, domain);
    return `${result.username}@${result.domain}`;
  }

  private isOurDomain(uri: Uri): boolean {
    return uri instanceof SipUri && this.domains.canonical(uri.hostname) !== undefined;
  }

  /** A SIP URI with a user part at one of our listeners' addresses (how backends and trunks call us). */
  private isOurAddress(uri: Uri): boolean {
    return uri instanceof SipUri && uri.user !== undefined && this.stack.isLocal(uri.host, uri.port);
  }

  /** A SIP URI without a user part that names one of our domains or listeners. */
  private isForServer(uri: Uri): boolean {
    if (!(uri instanceof SipUri) || uri.user !== undefined) return false;
    return this.domains.has(uri.hostname) || this.stack.isLocal(uri.host, uri.port);
  }

  private reply(tx: ServerTransaction, status: number, headers: Array<[string, string]> = [], reason?: string): void {
    this.stack.respond(tx, status, { headers, reason });
  }
}

/** A binding becomes a branch: its contact as Request-URI, sent over its own connection (RFC 5626). */
export function targetOf(b: Binding): ForwardTarget & { destination: Destination } {
  const destination: Destination = b.flow !== undefined
    ? { protocol: b.flow.protocol, address: b.flow.remote.address, port: b.flow.remote.port, flowId: b.flow.id }
    // No connection (UDP, or loaded from the store): where the REGISTER came from, which crosses NATs.
    : { protocol: b.received.protocol, address: b.received.address, port: b.received.port };
  const target: ForwardTarget & { destination: Destination } = { uri: b.contact.uri, destination };
  if (b.path !== undefined && b.path.length > 0) target.route = b.path;
  return target;
}

/** Both sides of an answered call as the branch that won saw them (proxy/dialog-bye.ts). */
function legsOf(req: SipRequest, tx: ServerTransaction, branch: ProxyBranch): DialogLegs | undefined {
  const answer = branch.result?.response;
  const sent = branch.destination;
  if (answer === undefined || sent === undefined) return undefined;
  const flow = tx.flow;
  const inbound: Destination = { protocol: flow.protocol, address: flow.remote.address, port: flow.remote.port, flowId: flow.id };
  // §9.1's rule for the CANCEL holds for the BYE too: the connection the INVITE went out on.
  const outbound: Destination = branch.transaction?.flow?.id !== undefined ? { ...sent, flowId: branch.transaction.flow.id } : sent;
  return dialogLegs(req, inbound, branch.request, outbound, answer);
}

/** A trusted source's identity: its From URI as `user@host` (the host lower-case). */
function fromAddress(req: SipRequest): string {
  const uri = req.from!.uri;
  if (uri instanceof SipUri) return `${uri.userUnescaped ?? ''}@${uri.hostname.toLowerCase()}`;
  return uri instanceof TelUri ? uri.number : uri.toString();
}

/** RFC 3966 visual separators removed; a number is `+` and digits (or digits, * and #). */
function dialledNumber(user: string): string {
  const n = user.replace(/[-.() ]/g, '');
  return /^\+?[0-9*#]+$/.test(n) ? n : '';
}

/** The backend's URI with the number as user part: `sip:+4930123456@10.0.0.5:5060;transport=udp`. */
function backendUri(backend: string, number: string): SipUri {
  const uri = parseSipUri(backend).clone();
  uri.user = escapeUriUser(number);
  return uri;
}

/** Removes the Proxy-Authorization values for `realm` (or any of `realm`); others stay, in order. */
function consumeCredentials(req: SipRequest, realm: string | readonly string[]): void {
  const values = req.getAll('proxy-authorization');
  if (values.length === 0) return;
  const ours = (r: string): boolean => (typeof realm === 'string' ? r === realm : realm.includes(r));
  const others = values.filter((v) => {
    try {
      const c = parseCredentials(v, 'proxy-authorization');
      return !('realm' in c && typeof c.realm === 'string' && ours(c.realm.toLowerCase()));
    } catch {
      return true;
    }
  });
  if (others.length === values.length) return;
  req.remove('Proxy-Authorization');
  for (const v of others) req.append('Proxy-Authorization', v);
}

/** The dialog's facts: the caller as From shows it (and the authenticated user), the callee as given. */
function callFacts(req: SipRequest, caller: string | undefined, direction: DialogDirection, callee: DialogParty): CallFacts {
  const from = req.from!;
  const fromUser = from.uri instanceof SipUri ? from.uri.userUnescaped : from.uri instanceof TelUri ? from.uri.number : undefined;
  const at = caller?.lastIndexOf('@') ?? -1;
  return {
    caller: {
      uri: from.uri.toString(),
      displayName: from.displayName,
      user: caller !== undefined ? caller.slice(0, at) : undefined,
      domain: caller !== undefined ? caller.slice(at + 1) : undefined,
      number: dialledNumber(fromUser ?? '') || undefined,
    },
    callee,
    direction,
  };
}

/** The callee: the Request-URI as received, To's display name, and the user of ours it reaches (`user@domain`). */
function calleeOf(req: SipRequest, aor: string | undefined): DialogParty {
  const bare = aor?.replace(/^sips?:/, '');
  const at = bare?.lastIndexOf('@') ?? -1;
  const uri = req.ruri;
  const user = uri instanceof SipUri ? uri.userUnescaped : uri instanceof TelUri ? uri.number : undefined;
  return {
    uri: req.uri,
    displayName: req.to?.displayName,
    user: bare !== undefined && at > 0 ? bare.slice(0, at) : undefined,
    domain: bare !== undefined && at > 0 ? bare.slice(at + 1) : undefined,
    number: dialledNumber(user ?? '') || undefined,
  };
}
