/**
 * The registrar (RFC 3261 §10.3): authenticates REGISTER requests, keeps the bindings of each
 * address-of-record in the location service, and answers with the AoR's current bindings.
 */
import type { Stack } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import {
  type NameAddr, type PushParams, type PushProvider, SipParseError, type SipRequest, SipUri, type Uri, parseNameAddrs,
  unquote, uriEquals, wireToUtf8,
} from '../src/sip/index.js';
import type { ServerTransaction } from '../src/transaction/index.js';
import type { Flow } from '../src/transport/types.js';
import type { DigestAuthenticator } from './auth/digest-authenticator.js';
import { aorIn } from './location/aor.js';
import type { LocationService } from './location/location-service.js';
import { isSamePushDevice, pushParamsOf } from './location/push-binding.js';
import { ServedDomains } from './served-domains.js';
import type { Binding, BindingListener, OkHeaderSource, RegistrarApi, RegistrarOptions, RegistrarStats } from './types.js';

export interface RegistrarInit {
  /** Only `respond` is used. */
  /**
   * `isLocal` lets a REGISTER name this server's own address as its Request-URI; `isLocalHost` lets an
   * AoR name it as its domain when one domain is served (ServedDomains).
   */
  stack: Pick<Stack, 'respond'> & Partial<Pick<Stack, 'isLocal' | 'isLocalHost' | 'markFlowAuthenticated'>>;
  authenticator: DigestAuthenticator;
  locations: LocationService;
  logger: Logger;
  options: RegistrarOptions;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
  /** The served domains (built from options.domains and the stack when absent). */
  domains?: ServedDomains;
}

/** What §10.3 steps 1, 2 and 5 found in a REGISTER both registrars accept. */
export interface CheckedRegister {
  to: NameAddr & { uri: SipUri };
  callId: string;
  cseq: { seq: number };
  /** The served domain of the AoR (ServedDomains.canonical: our address stands for the one domain). */
  domain: string;
}

/**
 * RFC 3261 §10.3 steps 1, 2 and 5, checked before authentication so that a request naming no AoR of ours
 * is not challenged; the local registrar and the mid-registrar both start here. Step 1: the Request-URI
 * names a served domain, or this server's own address as many phones (and SIPp) send; step 2: Require as a
 * UAS would (§8.2.2.3); step 5: the AoR is a SIP or SIPS URI (RFC 4475 §3.3.4) in a served domain.
 */
export function checkRegister(request: SipRequest, domains: ServedDomains, isLocal: (host: string, port: number | undefined) => boolean): CheckedRegister | Reply {
  const ruri = request.ruri;
  if (!(ruri instanceof SipUri)) return { status: 416, reason: 'Unsupported URI Scheme' };
  if (!domains.has(ruri.hostname) && !isLocal(ruri.host, ruri.port)) return { status: 404, reason: 'Not Found: domain not served here' };
  const unsupported = request.require.filter((tag) => !SUPPORTED_OPTIONS.has(tag.toLowerCase()));
  if (unsupported.length > 0) return { status: 420, reason: 'Bad Extension', headers: [['Unsupported', unsupported.join(', ')]] };
  const to = request.to;
  const callId = request.callId;
  const cseq = request.cseq;
  if (to === undefined || callId === undefined || cseq === undefined || request.from === undefined) {
    return { status: 400, reason: 'Bad Request: To, From, Call-ID and CSeq are required' };
  }
  if (!(to.uri instanceof SipUri)) return { status: 400, reason: 'Bad Request: To must be a SIP or SIPS URI' };
  const domain = domains.canonical(to.uri.hostname);
  if (domain === undefined) return { status: 404, reason: domains.notServedReason(to.uri.hostname) };
  return { to: to as NameAddr & { uri: SipUri }, callId, cseq, domain };
}

/** A final answer to a REGISTER. */
export interface Reply {
  status: number;
  reason?: string | undefined;
  headers?: Array<[string, string]> | undefined;
  /** The AoR (`sip:user@domain`) a 200 answers for. */
  aor?: string | undefined;
}

/** Option tags a REGISTER may Require of us (RFC 3327 path, RFC 5626 outbound). */
const SUPPORTED_OPTIONS: ReadonlySet<string> = new Set(['path', 'outbound']);

const OUT_OF_ORDER: Reply = { status: 500, reason: 'Server Internal Error: REGISTER out of order' };

/** What step 6 decided for one Contact, before anything changes. */
interface PlannedContact {
  contact: NameAddr;
  /** Seconds; 0 removes. */
  expires: number;
  instanceId: string | undefined;
  regId: number | undefined;
  /** RFC 8599 push data, when the contact names a provider we serve. */
  push: PushParams | undefined;
}

export class Registrar implements RegistrarApi {
  readonly authenticator: DigestAuthenticator;
  readonly locations: LocationService;
  readonly stats: RegistrarStats = { accepted: 0, refused: 0, challenged: 0 };
  private readonly stack: Pick<Stack, 'respond'> & Partial<Pick<Stack, 'isLocal' | 'isLocalHost' | 'markFlowAuthenticated'>>;
  private readonly log: Logger;
  private readonly clock: () => number;
  /** The served domains, and this server's addresses as their alias when there is one domain. */
  readonly domains: ServedDomains;
  private readonly minExpires: number;
  private readonly maxExpires: number;
  private readonly defaultExpires: number;
  private readonly pushProviders: ReadonlySet<PushProvider>;
  private readonly vapidPublicKey: string | undefined;
  private readonly okHeaders: OkHeaderSource | undefined;

  constructor(init: RegistrarInit) {
    const o = init.options;
    if (!Array.isArray(o.domains) || o.domains.length === 0) throw new TypeError('the registrar needs at least one domain');
    this.minExpires = seconds('minExpires', o.minExpires ?? 60);
    this.maxExpires = seconds('maxExpires', o.maxExpires ?? 3600);
    this.defaultExpires = seconds('defaultExpires', o.defaultExpires ?? 600);
    if (this.minExpires > this.maxExpires) throw new TypeError(`minExpires ${this.minExpires} is above maxExpires ${this.maxExpires}`);
    this.pushProviders = new Set(o.push?.providers ?? []);
    this.vapidPublicKey = o.push?.vapidPublicKey;
    this.okHeaders = o.okHeaders;
    this.stack = init.stack;
    this.domains = init.domains ?? new ServedDomains(o.domains, (host) => this.stack.isLocalHost?.(host) === true);
    this.authenticator = init.authenticator;
    this.locations = init.locations;
    this.log = categoryLogger(init.logger, 'registrar');
    this.clock = init.clock ?? Date.now;
  }

  async start(): Promise<void> {
    await this.locations.start();
  }

  async stop(): Promise<void> {
    await this.locations.stop();
  }

  lookup(aor: string): Binding[] {
    return this.locations.lookup(aor);
  }

  lookupByContact(uri: string | Uri): Binding | undefined {
    return this.locations.lookupByContact(uri);
  }

  onFlowClosed(flow: Flow): number {
    return this.locations.removeFlow(flow.id);
  }

  onBinding(listener: BindingListener): () => void {
    return this.locations.onBinding(listener);
  }

  onChange(listener: (aor: string) => void): () => void {
    return this.locations.onChange(listener);
  }

  /**
   * Answers a REGISTER through its server transaction; a failure inside becomes a 400 or 500 answer.
   * The bindings it added or refreshed are announced to the onBinding listeners after the 200 is sent.
   */
  async handle(request: SipRequest, tx: ServerTransaction): Promise<void> {
    if (request.method !== 'REGISTER') throw new TypeError(`the registrar handles REGISTER, not ${request.method}`);
    const added: Binding[] = [];
    const reply = await answerRegister(this.stack, tx, request, this.log, () => this.process(request, tx, added), this.okHeaders);
    if (reply.status >= 200 && reply.status < 300) {
      this.stats.accepted++;
      this.locations.announce(added);
    } else if (reply.status === 401) this.stats.challenged++;
    else this.stats.refused++;
  }

  /** `added` receives the bindings the REGISTER added or refreshed. */
  private async process(request: SipRequest, tx: ServerTransaction, added: Binding[]): Promise<Reply> {
    const checked = checkRegister(request, this.domains, (host, port) => this.stack.isLocal?.(host, port) === true);
    if ('status' in checked) return checked;
    const { to, callId, cseq, domain } = checked;

    // Step 3: authenticate.
    const auth = await this.authenticator.authenticate(request, 'www', domain, tx.flow.remote.address);
    if (!auth.ok) return auth;

    // Step 4: authorise. The credentials must be the AoR's own, or anyone could register another
    // user's AoR with theirs and take their calls.
    const toUser = to.uri.userUnescaped;
    if (toUser === undefined || wireToUtf8(toUser) !== auth.username || auth.domain !== domain) {
      this.log.info({ user: auth.username, aor: to.uri.toString() }, 'REGISTER for another user\'s AoR refused');
      return { status: 403, reason: 'Forbidden: credentials do not match the AoR' };
    }

    // From here on nothing awaits: the bindings read are the bindings changed.
    return this.updateBindings(request, tx.flow, aorIn(to.uri, domain), callId, cseq.seq, added);
  }

  /** §10.3 steps 6 to 8; the bindings added or refreshed are pushed onto `added`. */
  private updateBindings(request: SipRequest, flow: Flow, aor: string, callId: string, cseq: number, added: Binding[]): Reply {
    const now = this.clock();
    const current = this.locations.lookup(aor);

    if (request.contactStar) {
      // Step 6: "*" only with Expires 0 and alone.
      if (request.contact.length > 0 || request.count('contact') > 1) {
        return { status: 400, reason: 'Bad Request: Contact "*" must be the only Contact' };
      }
      if (request.expires !== 0) return { status: 400, reason: 'Bad Request: Contact "*" requires Expires: 0' };
      // A binding from the same Call-ID goes only if this CSeq is higher; otherwise nothing changes.
      if (current.some((b) => b.callId === callId && cseq <= b.cseq)) return OUT_OF_ORDER;
      this.locations.update(aor, { remove: current });
      if (current.length > 0) this.log.info({ aor, removed: current.length }, 'all bindings removed');
      return this.ok(request, aor, now);
    }

    // Step 6: each Contact's expiry: its expires parameter, else the Expires header, else our default.
    const planned: PlannedContact[] = [];
    const headerExpires = request.expires;
    for (const contact of request.contact) {
      let expires = contact.expires ?? headerExpires ?? this.defaultExpires;
      if (expires !== 0 && expires < this.minExpires) {
        return { status: 423, reason: 'Interval Too Brief', headers: [['Min-Expires', String(this.minExpires)]] };
      }
      expires = Math.min(expires, this.maxExpires);
      const regIdText = contact.params.get('reg-id');
      let regId: number | undefined;
      if (regIdText !== undefined) {
        // RFC 5626 §4.2: reg-id = 1*DIGIT, 1 to 2**31-1.
        if (regIdText === null || !/^[0-9]{1,10}$/.test(regIdText) || Number(regIdText) < 1 || Number(regIdText) > 0x7fffffff) {
          return { status: 400, reason: 'Bad Request: invalid reg-id' };
        }
        regId = Number(regIdText);
      }
      const instance = contact.params.get('+sip.instance');
      const instanceId = instance === undefined || instance === null ? undefined : unquote(instance);
      planned.push({ contact, expires, instanceId, regId, push: pushParamsOf(contact.uri, this.pushProviders) });
    }

    // Step 7: add, update or remove each binding; any out-of-order one aborts the whole request.
    const working = [...current];
    const before = new Set(current);
    const received = { protocol: flow.protocol, address: flow.remote.address, port: flow.remote.port };
    const paths = request.path.map(String);
    const userAgent = request.get('user-agent');
    for (const p of planned) {
      // RFC 5626 §6: a Contact with +sip.instance and reg-id names its binding by (AoR, instance, reg-id),
      // whatever its URI; any other by its URI (§10.3 step 7, compared per §19.1.4); failing that, a push
      // device by its token at its provider (RFC 8599 §5.6: woken, it may register a new contact URI).
      const outbound = p.instanceId !== undefined && p.regId !== undefined;
      const existing = working.find((b) => (outbound
        ? b.instanceId === p.instanceId && b.regId === p.regId
        : uriEquals(b.contact.uri, p.contact.uri))) ?? working.find((b) => isSamePushDevice(b.push, p.push));
      // (A binding added by an earlier Contact of this same request is simply replaced.)
      if (existing !== undefined && before.has(existing) && existing.callId === callId && cseq <= existing.cseq) return OUT_OF_ORDER;
      for (let i = working.length - 1; i >= 0; i--) {
        const b = working[i]!;
        // The binding it updates, and one with the same URI or of the same push device that it supersedes.
        if (b === existing || uriEquals(b.contact.uri, p.contact.uri) || isSamePushDevice(b.push, p.push)) working.splice(i, 1);
      }
      if (p.expires === 0) continue;
      if (existing?.flow !== undefined && existing.flow.id !== flow.id) {
        // A softphone whose WebSocket reconnected (SIP.js and JsSIP re-register, often with a new Call-ID):
        // requests for it must now take the new connection.
        this.log.info({ aor, contact: existing.contactUri, from: existing.flow.id, to: flow.id }, 'binding moved to a new flow');
      }
      // A binding outlives its REGISTER: it keeps copies of the strings it needs, not slices of the
      // whole message (V8 keeps a sliced string's parent alive: ~600 bytes per binding otherwise).
      const stored = parseNameAddrs(detached(String(p.contact)), 'contact', true)[0]!;
      stored.params.delete('expires');
      working.push({
        aor,
        contact: stored,
        contactUri: detached(p.contact.uri.toString()),
        expiresAt: now + p.expires * 1000,
        q: p.contact.q,
        callId: detached(callId),
        cseq,
        flow,
        received,
        path: paths.length > 0 ? paths.map(detached) : undefined,
        instanceId: p.instanceId === undefined ? undefined : detached(p.instanceId),
        regId: p.regId,
        userAgent: userAgent === undefined ? undefined : detached(userAgent),
        updatedAt: now,
        // Read again from the copy, for the same reason.
        push: p.push === undefined ? undefined : pushParamsOf(stored.uri, this.pushProviders),
      });
    }
    const kept = new Set(working);
    const remove = current.filter((b) => !kept.has(b));
    const add = working.filter((b) => !before.has(b));
    if (remove.length > 0 || add.length > 0) this.locations.update(aor, { remove, add });
    added.push(...add);
    this.stack.markFlowAuthenticated?.(flow); // a registered phone's connection is shed last under a connection flood
    if (this.log.isLevelEnabled('debug')) this.log.debug({ aor, added: add.length, removed: remove.length, flow: flow.id }, 'REGISTER accepted');
    const push = planned.find((p) => p.expires > 0 && p.push !== undefined)?.push;
    return this.ok(request, aor, now, push === undefined ? [] : [['Feature-Caps', this.featureCaps(push)]]);
  }

  /**
   * Step 8: 200 with every current binding and its remaining expiry, the Path values copied (RFC 3327
   * §5.3), and Date (§10.3: "The response SHOULD contain a Date header field"); then `extra`.
   */
  private ok(request: SipRequest, aor: string, now: number, extra: Array<[string, string]> = []): Reply {
    return { status: 200, headers: [...okHeaders(request, this.locations.lookup(aor), now), ...extra], aor };
  }

  /**
   * The Feature-Caps (RFC 6809) of a 200 that bound a push contact (RFC 8599 §5.4): the provider we will
   * push through, and the VAPID key a Web Push subscription must be made with. No `+sip.pnsreg`: that
   * would promise a push before the binding expires to make the device refresh it, which this server does
   * not send (yet); without it the app refreshes its binding on its own (RFC 8599 §5.6.1).
   */
  private featureCaps(push: PushParams): string {
    const caps = `*;+sip.pns="${push.provider}"`;
    return push.provider === 'webpush' && this.vapidPublicKey !== undefined ? `${caps};+sip.vapid="${this.vapidPublicKey}"` : caps;
  }
}

/**
 * Decides a REGISTER's answer with `decide` and sends it through the transaction; a SipParseError on the
 * way is a 400 naming it, any other failure a 500 and one log line. Returns what was decided. Shared
 * by the registrar and the mid-registrar.
 */
export async function answerRegister(
  stack: Pick<Stack, 'respond'>, tx: ServerTransaction, request: SipRequest, log: Logger, decide: () => Promise<Reply>,
  okHeaders?: OkHeaderSource,
): Promise<Reply> {
  let reply: Reply;
  try {
    reply = await decide();
  } catch (err) {
    if (err instanceof SipParseError) {
      reply = { status: 400, reason: `Bad Request (${err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 100)})` };
    } else {
      log.error({ err: (err as Error).message, callId: request.callId }, 'REGISTER handling failed');
      reply = { status: 500 };
    }
  }
  if (okHeaders !== undefined && reply.status === 200 && reply.aor !== undefined && keepsBinding(request)) {
    reply = { ...reply, headers: [...(reply.headers ?? []), ...okHeaders(reply.aor.replace(/^sips?:/, ''), tx.flow)] };
  }
  try {
    stack.respond(tx, reply.status, { reason: reply.reason, headers: reply.headers });
  } catch (err) {
    // The transaction ended meanwhile (the stack stopped): nothing left to answer.
    log.info({ err: (err as Error).message, callId: request.callId }, 'REGISTER answer not sent');
  }
  return reply;
}

/** Whether a REGISTER asks to keep a binding: a Contact other than "*" whose expiry is not 0 (not a removal, not a query). */
function keepsBinding(request: SipRequest): boolean {
  return !request.contactStar && request.contact.some((c) => (c.expires ?? request.expires ?? 1) > 0);
}

/**
 * The header fields of a REGISTER's 200 (§10.3 step 8): every binding with its remaining expiry, the
 * request's Path values, Supported and Date. Shared with the mid-registrar, which answers the same way.
 */
export function okHeaders(request: SipRequest, bindings: readonly Binding[], now: number): Array<[string, string]> {
  const headers: Array<[string, string]> = [];
  for (const b of bindings) {
    const contact = b.contact.clone();
    contact.params.set('expires', String(Math.max(1, Math.ceil((b.expiresAt - now) / 1000))));
    headers.push(['Contact', contact.toString()]);
  }
  for (const value of request.getAll('path')) headers.push(['Path', value]);
  headers.push(['Supported', 'path, outbound']);
  headers.push(['Date', new Date(now).toUTCString()]);
  return headers;
}

function seconds(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name} must be a whole number of seconds, got ${value}`);
  return value;
}

/** A copy of a string that shares no memory with the message it was cut from. */
function detached(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}
