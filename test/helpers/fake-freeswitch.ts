/**
 * A FreeSWITCH stand-in for the end-to-end tests of issue 6 (FreeSWITCH itself cannot be installed on
 * these machines): a small SIP UAS/UAC on the project's own Stack, over UDP on 127.0.0.1, that behaves
 * towards the softswitch in front of it the way a FreeSWITCH box does.
 *
 * - REGISTER: 401 with a Digest MD5 challenge (realm = the From domain, qop=auth), the retry checked
 *   against the passwords given, 403 on a wrong password, 200 with min(requested, registerExpires) and
 *   the AoR's bindings; Expires 0 (or `Contact: *`) removes. `challengeRegister: false` accepts without a
 *   challenge (FreeSWITCH trusting the softswitch's address).
 * - OPTIONS: 200 with Allow, or nothing at all after `setAnswerOptions(false)` (a box that still listens
 *   but is dead to its monitor). `setSilent(true)` drops every request (a hung box).
 * - INVITE: 100, 180, then after `answerDelayMs` a 200 with a PCMU SDP answer or the test's (`answerSdp`),
 *   retransmitted until the ACK (RFC 3261 §13.3.1.4), or another status by answer rules; BYE answered 200; `hangup(callId)` sends
 *   BYE along the Record-Route set; CANCEL answered per §9.2.
 * - Originate: `call(target, { via })` sends an INVITE to the softswitch, ACKs the 2xx, and gives a
 *   handle to hang up (or an AbortSignal to CANCEL before the answer).
 *
 * Everything it received is kept for assertions: the REGISTERs, the INVITEs, per-method counters and the
 * calls. No media is sent: the SDP answer names a port nobody listens on.
 *
 * `startFakeFreeswitchProcess()` runs one in a child process (fake-freeswitch-main.ts) so that a test can
 * SIGKILL it in the middle of a load run and start it again on the same port; stop() or kill() it in an
 * `after` hook (a live child keeps the test process alive).
 *
 *   const fs = await startFakeFreeswitch({ host: '127.0.0.2', passwords: { alice: 'secret' } });
 *   // … backend `fs.uri` in the softswitch's set; phones register and call through the softswitch …
 *   assert.equal(fs.registers.at(-1)?.authorization, true);
 *   assert.equal(fs.invites.at(-1)?.pAssertedIdentity, '<sip:+4930999@example.com>');
 *   const call = await fs.call('sip:+4930123456@example.com', { via: server.addr('udp') });
 *   await call.hangup();
 *   await fs.close();
 *
 * Tip: on 127.0.0.2 the stand-in's address is not the one SIPp and the phones send from (127.0.0.1), so
 * a softswitch that trusts its backends' addresses does not trust the test clients too.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isIP } from 'node:net';
import { parse as parseSdp, write as writeSdp, type MediaDescription, type SessionDescription } from 'sdp-transform';
import { Stack } from '../../src/core/index.js';
import { type Logger, categoryLogger, createLogger, silentLogger } from '../../src/log/index.js';
import {
  type DigestChallenge, type HeaderField, NameAddr, SipRequest, type SipResponse, SipUri, type Uri, buildCredentials,
  computeDigestResponse, computeHA1, digestEquals, headerKey, isDigestCredentials, makeField, newBranch, newCallId,
  newTag, parseChallenge, parseCredentials, parseDigestAlgorithm, parseUri, randomToken, serializeChallenge, uriEquals,
  utf8ToWire,
} from '../../src/sip/index.js';
import {
  type ClientTransaction, type ClientTransactionUser, type InviteServerTransaction, type ServerTransaction,
  type TimerConfig, createCancel,
} from '../../src/transaction/index.js';
import { type Destination, type Flow, TransportLayer } from '../../src/transport/index.js';
import type { StackUser } from '../../src/core/index.js';

// ---- public types -----------------------------------------------------------------------------------

/** How the stand-in answers INVITEs; the first rule that matches decides, the default is 200. */
export interface AnswerRule {
  /**
   * 200: 180 then, after `answerDelayMs`, 200 with SDP. 300–699: that final response at once. 101–199:
   * that provisional response and never a final one (until CANCEL or `hangup()`): a phone ringing out.
   */
  status: number;
  reason?: string;
  /** Only INVITEs whose Request-URI user part is this (the number dialled); every INVITE when absent. */
  user?: string;
  /** How many INVITEs the rule answers before it is dropped; every one when absent. */
  times?: number;
}

export interface FakeFreeswitchOptions {
  /** Address of the UDP listener; 127.0.0.1 by default. */
  host?: string;
  /** UDP port; 0 (kernel-chosen) by default. Pass the old port to restart "the same box". */
  port?: number;
  /** Digest passwords by username (or by `user@realm`, looked up first). */
  passwords?: Record<string, string>;
  /** Digest password of a username in a realm; consulted when `passwords` has none. */
  password?: (username: string, realm: string) => string | undefined;
  /** Challenge REGISTER with 401; true by default. false: every REGISTER is accepted as it comes. */
  challengeRegister?: boolean;
  /**
   * Challenge initial INVITEs with 407 (Proxy-Authenticate, realm = the From domain), as FreeSWITCH does
   * for a source outside its ACLs; false by default (the softswitch is trusted). Same passwords as REGISTER.
   */
  challengeInvite?: boolean;
  /** Longest registration granted, in seconds: min(requested, this); 120 by default. */
  registerExpires?: number;
  /** Answer OPTIONS; true by default (see setAnswerOptions). */
  answerOptions?: boolean;
  /** Time between the 180 and the 200 of an answered INVITE, ms; 0 by default. */
  answerDelayMs?: number;
  answerRules?: AnswerRule[];
  /**
   * The SDP answer to an INVITE's offer, made by the test (a media endpoint behind the stand-in); the PCMU
   * answer by default. Undefined (or a rejection) answers 488.
   */
  answerSdp?: (offer: string, callId: string) => Promise<string | undefined>;
  /** Server / User-Agent header value. */
  userAgent?: string;
  /** T1, T2, T4 of the transaction layer (ms). */
  timing?: Partial<TimerConfig>;
  /** The project logger; silent by default, or LOG=<level> on stderr. */
  logger?: Logger;
}

/** A REGISTER as it reached the stand-in, and what it answered. */
export interface RegisterRecord {
  /** ms since the epoch. */
  at: number;
  /** `user@domain` of the To header field (the AoR). */
  aor: string;
  requestUri: string;
  from: string;
  to: string;
  /** Contact values as sent (`*` included). */
  contact: string[];
  /** The Expires header field, when there was one. */
  expires: number | undefined;
  /** Whether it carried an Authorization header field. */
  authorization: boolean;
  /** The Authorization username, when it carried one. */
  username: string | undefined;
  callId: string;
  cseq: number;
  /** `address:port` the request came from. */
  source: string;
  /** The status the stand-in answered. */
  status: number;
  /** Header values by lower-case name. */
  headers: Record<string, string[]>;
}

/** One binding the stand-in keeps. */
export interface Registration {
  /** The Contact URI. */
  contact: string;
  /** The whole Contact value as sent (with its parameters). */
  value: string;
  /** Seconds left. */
  expires: number;
  callId: string;
  cseq: number;
  source: string;
}

/** An INVITE (initial, out of dialog) as it reached the stand-in. */
export interface InviteRecord {
  at: number;
  callId: string;
  requestUri: string;
  from: string;
  to: string;
  pAssertedIdentity: string | undefined;
  /** Whether it carried a Proxy-Authorization header field. */
  authorization: boolean;
  /** The SDP offer, '' when none. */
  sdp: string;
  source: string;
  /** The final status it was (or will be) answered with (407 when challenged); below 200 when it rings for ever. */
  status: number;
  headers: Record<string, string[]>;
}

export type CallDirection = 'inbound' | 'outbound';
export type CallState = 'answered' | 'confirmed' | 'ended';

/** A dialog the stand-in is in. */
export interface CallInfo {
  callId: string;
  direction: CallDirection;
  state: CallState;
  requestUri: string;
  from: string;
  to: string;
  answeredAt: number;
  endedAt?: number;
  /** Who ended it: the stand-in (`hangup()`), the peer (BYE), or no ACK came (RFC 3261 §13.3.1.4). */
  endedBy?: 'local' | 'remote' | 'no-ack';
}

export interface FakeFreeswitchStats {
  /** New requests received, by method (every OPTIONS received, retransmissions too). */
  requests: Record<string, number>;
  /** Inbound INVITEs answered 200. */
  callsAnswered: number;
  /** Outbound INVITEs answered 2xx. */
  callsOriginated: number;
  /** Dialogs up now, both directions (what `show channels` would count). */
  activeCalls: number;
  /** Bindings not yet expired, every AoR. */
  registrations: number;
}

export interface OriginateOptions {
  /** The softswitch: `host:port` or an address, where the INVITE is sent (UDP). */
  via: string | { address: string; port: number };
  /** From URI; `sip:freeswitch@<host>:<port>` by default. */
  from?: string;
  /** To URI; the target by default. */
  to?: string;
  /** SDP offer; a PCMU offer by default. */
  sdp?: string;
  /** Extra header fields, e.g. ['P-Asserted-Identity', '<sip:+4930999@pstn.example>']. */
  headers?: Array<[string, string]>;
  /** Answers one 401/407 with these. */
  credentials?: { username: string; password: string };
  /** Aborting before the final response sends CANCEL (after the first provisional response, §9.1). */
  signal?: AbortSignal;
}

/** What came of a call the stand-in originated. */
export interface OriginatedCall {
  readonly callId: string;
  /** The final status: the response's, 408 when Timer B fired, 503 when it could not be sent. */
  readonly status: number;
  readonly reason: string;
  /** Provisional statuses in the order received. */
  readonly provisional: readonly number[];
  /** The final response, when one arrived. */
  readonly response: SipResponse | undefined;
  /** The SDP of the 2xx. */
  readonly answerSdp: string | undefined;
  /** A 2xx came and the call has not ended. */
  readonly established: boolean;
  /** BYE in the dialog; resolves with the status of its final response (408 on timeout). */
  hangup(): Promise<number>;
  /** Resolves when the dialog ends (BYE either way). */
  waitForEnd(timeoutMs?: number): Promise<CallInfo>;
}

/** Events of a FakeFreeswitch; listeners that throw are logged. */
export type FakeFreeswitchEvents = {
  register: [record: RegisterRecord];
  invite: [record: InviteRecord];
  /** A dialog was established: our 200 went out (inbound) or a 2xx came (outbound). */
  answered: [call: CallInfo];
  /** The ACK of our 200 arrived. */
  confirmed: [call: CallInfo];
  ended: [call: CallInfo];
};

export type FakeFreeswitchErrorCode = 'FAKE_FS_ERR_CLOSED' | 'FAKE_FS_ERR_NO_CALL' | 'FAKE_FS_ERR_TIMEOUT' | 'FAKE_FS_ERR_PROCESS';

export class FakeFreeswitchError extends Error {
  constructor(readonly code: FakeFreeswitchErrorCode, message: string) {
    super(message);
    this.name = 'FakeFreeswitchError';
  }
}

/** What FreeSWITCH's sofia profile advertises (less the methods this stand-in does not implement). */
export const FAKE_FREESWITCH_ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REGISTER, NOTIFY';
const DEFAULT_USER_AGENT = 'FreeSWITCH-mod_sofia/1.10.12-release (softswitch test stand-in)';
/** RFC 3261 §10.2.1.1 leaves the default to the registrar; FreeSWITCH takes 3600 when none is asked. */
const DEFAULT_REQUESTED_EXPIRES = 3600;
/** How long a nonce is good for (FreeSWITCH's nonce-ttl is 60 s by default; longer keeps tests calm). */
const NONCE_TTL_MS = 300_000;

// ---- internals --------------------------------------------------------------------------------------

interface Binding {
  uri: Uri;
  value: string;
  expiresAt: number;
  callId: string;
  cseq: number;
  source: string;
}

/** An INVITE waiting for its final response (ringing, or waiting out answerDelayMs). */
interface PendingInvite {
  tx: InviteServerTransaction;
  record: InviteRecord;
  toTag: string;
  timer: NodeJS.Timeout | undefined;
}

/** @internal RFC 3261 §12: the state of one dialog, either side. */
export interface Dialog {
  info: CallInfo;
  callId: string;
  localTag: string;
  /** Our From/To value, tag included. */
  local: string;
  /** The peer's From/To value, tag included. */
  remote: string;
  remoteTarget: string;
  /** Route set in the order Route header fields are written (§12.1.1 / §12.1.2). */
  routeSet: string[];
  localSeq: number;
  /** Where requests go when no URI of the route set or target names an IP address. */
  fallback: Destination;
  /** Our SDP (answer or offer), re-sent in the 2xx of a re-INVITE. */
  localSdp: string;
  /** Inbound: our 200 and its retransmission timer until the ACK. */
  ok?: { response: SipResponse; destination: Destination; timer: NodeJS.Timeout | undefined; started: number; interval: number };
  /** The peer's tag (To of the 2xx for outbound, From tag for inbound). */
  remoteTagValue: string | undefined;
  /** Outbound: the ACK of the 2xx, re-sent on every retransmitted 2xx. */
  ack?: { request: SipRequest; destination: Destination };
  confirmedWaiters: Array<() => void>;
  endWaiters: Array<(info: CallInfo) => void>;
}

function field(name: string, value: string): HeaderField {
  return makeField(headerKey(name), name, value);
}

function headersOf(message: SipRequest | SipResponse): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const h of message.headers) (out[h.key] ??= []).push(h.value);
  return out;
}

function sourceOf(flow: Flow): string {
  return `${flow.remote.address}:${flow.remote.port}`;
}

/** `user@host` of a SIP URI (host lower-cased); the URI text for anything else. */
function aorOf(uri: Uri | undefined): string {
  if (uri instanceof SipUri) return `${uri.user ?? ''}@${uri.hostname}`;
  return uri === undefined ? '' : uri.toString();
}

/** `sip:alice@example.com`, `alice@example.com` → `alice@example.com`. */
function normalizeAor(aor: string): string {
  const bare = aor.replace(/^sips?:/i, '');
  const at = bare.lastIndexOf('@');
  return at < 0 ? bare.toLowerCase() : `${bare.slice(0, at)}@${bare.slice(at + 1).toLowerCase()}`;
}

function parseHostPort(via: OriginateOptions['via']): Destination {
  if (typeof via !== 'string') return { protocol: 'udp', address: via.address, port: via.port };
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(via);
  if (m === null) throw new TypeError(`via must be host:port, not ${via}`);
  return { protocol: 'udp', address: m[1]!, port: Number(m[2]) };
}

/** Where a request to `uri` goes: its host when it is an IP address, else the fallback (no DNS here). */
function destinationOf(uri: string, fallback: Destination): Destination {
  let parsed: Uri;
  try {
    parsed = parseUri(uri);
  } catch {
    return fallback;
  }
  if (!(parsed instanceof SipUri)) return fallback;
  const maddr = parsed.params.get('maddr');
  const host = typeof maddr === 'string' ? maddr : parsed.hostname;
  if (isIP(host) === 0) return fallback;
  return { protocol: 'udp', address: host, port: parsed.port ?? 5060 };
}

/** The URI of a name-addr value (`<sip:…;lr>;param` → `sip:…;lr`). */
function uriOfValue(value: string): Uri | undefined {
  const m = /<([^>]*)>/.exec(value);
  try {
    return parseUri(m === null ? value.trim() : m[1]!);
  } catch {
    return undefined;
  }
}

function isLooseRoute(value: string): boolean {
  const uri = uriOfValue(value);
  return uri instanceof SipUri && uri.params.has('lr');
}

let mediaPort = 20_000;
function nextMediaPort(): number {
  mediaPort = mediaPort >= 59_998 ? 20_000 : mediaPort + 2;
  return mediaPort;
}

function pcmuOffer(host: string): string {
  const session: SessionDescription = {
    version: 0,
    origin: { username: 'FreeSWITCH', sessionId: Date.now(), sessionVersion: 1, netType: 'IN', ipVer: 4, address: host },
    name: 'FreeSWITCH',
    connection: { version: 4, ip: host },
    timing: { start: 0, stop: 0 },
    media: [{
      type: 'audio', port: nextMediaPort(), protocol: 'RTP/AVP', payloads: '0 101',
      rtp: [{ payload: 0, codec: 'PCMU', rate: 8000 }, { payload: 101, codec: 'telephone-event', rate: 8000 }],
      fmtp: [{ payload: 101, config: '0-16' }], ptime: 20, direction: 'sendrecv',
    }],
  };
  return writeSdp(session);
}

const ANSWER_DIRECTION: Record<string, MediaDescription['direction']> = {
  sendrecv: 'sendrecv', sendonly: 'recvonly', recvonly: 'sendonly', inactive: 'inactive',
};

/**
 * RFC 3264 §6: the answer has one m-line per offered one; the first audio stream offering PCMU is
 * accepted with PCMU (and telephone-event when offered), every other stream is refused with port 0.
 * Undefined when no stream can be accepted (→ 488).
 */
function pcmuAnswer(offer: string, host: string): string | undefined {
  let parsed: SessionDescription;
  try {
    parsed = parseSdp(offer);
  } catch {
    return undefined;
  }
  let accepted = false;
  const media: MediaDescription[] = (parsed.media ?? []).map((m) => {
    const payloads = String(m.payloads ?? '').split(/\s+/).filter((p) => p !== '');
    if (accepted || m.type !== 'audio' || m.port === 0 || !payloads.includes('0')) {
      return { type: m.type, port: 0, protocol: m.protocol, payloads: String(m.payloads ?? ''), rtp: [], fmtp: [] };
    }
    accepted = true;
    const te = m.rtp.find((r) => r.codec.toLowerCase() === 'telephone-event' && r.rate === 8000);
    return {
      type: 'audio', port: nextMediaPort(), protocol: m.protocol, payloads: te === undefined ? '0' : `0 ${te.payload}`,
      rtp: [{ payload: 0, codec: 'PCMU', rate: 8000 }, ...(te === undefined ? [] : [{ payload: te.payload, codec: 'telephone-event', rate: 8000 }])],
      fmtp: te === undefined ? [] : [{ payload: te.payload, config: '0-16' }],
      ptime: 20,
      direction: ANSWER_DIRECTION[m.direction ?? parsed.direction ?? 'sendrecv'] ?? 'sendrecv',
    };
  });
  if (!accepted) return undefined;
  return writeSdp({
    version: 0,
    origin: { username: 'FreeSWITCH', sessionId: Date.now(), sessionVersion: 1, netType: 'IN', ipVer: 4, address: host },
    name: 'FreeSWITCH',
    connection: { version: 4, ip: host },
    timing: { start: 0, stop: 0 },
    media,
  });
}

// ---- the stand-in -----------------------------------------------------------------------------------

export class FakeFreeswitch extends EventEmitter<FakeFreeswitchEvents> implements StackUser {
  /** Every REGISTER received, oldest first. */
  readonly registers: RegisterRecord[] = [];
  /** Every initial INVITE received, oldest first. */
  readonly invites: InviteRecord[] = [];
  /** Every dialog so far, ended ones included. */
  readonly calls: CallInfo[] = [];
  private readonly options: FakeFreeswitchOptions;
  private readonly log: Logger;
  private readonly stack: Stack;
  private readonly host: string;
  private readonly userAgent: string;
  private readonly requests: Record<string, number> = {};
  private readonly bindings = new Map<string, Binding[]>();
  private readonly nonces = new Map<string, { realm: string; issued: number }>();
  private readonly pending = new Map<InviteServerTransaction, PendingInvite>();
  private readonly dialogs = new Map<string, Dialog>();
  private readonly originating = new Set<{ abandon(): void }>();
  private rules: AnswerRule[];
  private answerDelayMs: number;
  private answerOptions: boolean;
  private silent = false;
  private state: 'new' | 'running' | 'closed' = 'new';
  private answered = 0;
  private originated = 0;

  constructor(options: FakeFreeswitchOptions = {}) {
    super({ captureRejections: false });
    this.options = options;
    this.host = options.host ?? '127.0.0.1';
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.rules = [...(options.answerRules ?? [])];
    this.answerDelayMs = options.answerDelayMs ?? 0;
    this.answerOptions = options.answerOptions ?? true;
    const logger = options.logger ?? (process.env.LOG ? createLogger({ level: process.env.LOG as 'debug', destination: process.stderr }) : silentLogger());
    this.log = categoryLogger(logger, 'test.fake-freeswitch');
    this.stack = new Stack({
      logger,
      serverHeader: this.userAgent,
      timing: options.timing,
      // FreeSWITCH sends 100 Trying for every INVITE at once, before its dialplan answers.
      sendTrying: true,
      createTransport: (user) => new TransportLayer({
        listen: [{ protocol: 'udp', address: this.host, port: options.port ?? 0 }],
        user,
        logger,
      }),
    });
    this.stack.setUser(this);
  }

  async start(): Promise<this> {
    if (this.state !== 'new') throw new FakeFreeswitchError('FAKE_FS_ERR_CLOSED', `cannot start a stand-in that is ${this.state}`);
    await this.stack.start();
    this.state = 'running';
    return this;
  }

  /** Stops listening at once: no BYE for the calls up (see hangupAll), every timer cleared. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasRunning = this.state === 'running';
    this.state = 'closed';
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    for (const o of [...this.originating]) o.abandon();
    for (const d of this.dialogs.values()) {
      clearTimeout(d.ok?.timer);
      // Whoever waits on a dialog (hangup(), waitForEnd()) is let go; the calls just stop, as in a crash.
      for (const w of d.confirmedWaiters.splice(0)) w();
      for (const w of d.endWaiters.splice(0)) w(d.info);
    }
    if (wasRunning) await this.stack.stop();
  }

  /** The UDP port it listens on. */
  get port(): number {
    const l = this.stack.listeners[0];
    if (l === undefined || this.state === 'new') throw new FakeFreeswitchError('FAKE_FS_ERR_CLOSED', 'not started');
    return l.port;
  }

  /** `sip:<host>:<port>;transport=udp`: the box, as a backend URI. */
  get uri(): string {
    return `sip:${this.host}:${this.port};transport=udp`;
  }

  /** `host:port`, e.g. for a backend list. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get callsAnswered(): number {
    return this.answered;
  }

  get activeCalls(): number {
    return this.dialogs.size;
  }

  /** New requests of a method received so far. */
  requestCount(method: string): number {
    return this.requests[method.toUpperCase()] ?? 0;
  }

  stats(): FakeFreeswitchStats {
    let registrations = 0;
    for (const aor of this.bindings.keys()) registrations += this.registrations(aor).length;
    return {
      requests: { ...this.requests },
      callsAnswered: this.answered,
      callsOriginated: this.originated,
      activeCalls: this.activeCalls,
      registrations,
    };
  }

  /** The live bindings of an AoR (`sip:alice@example.com` or `alice@example.com`). */
  registrations(aor: string): Registration[] {
    const list = this.liveBindings(normalizeAor(aor));
    const now = Date.now();
    return list.map((b) => ({
      contact: b.uri.toString(), value: b.value, expires: Math.max(0, Math.round((b.expiresAt - now) / 1000)),
      callId: b.callId, cseq: b.cseq, source: b.source,
    }));
  }

  /** Every AoR with a live binding. */
  registeredAors(): string[] {
    return [...this.bindings.keys()].filter((aor) => this.liveBindings(aor).length > 0);
  }

  /** false: OPTIONS get no answer at all (the box still listens, its monitor sees it dead). */
  setAnswerOptions(answer: boolean): void {
    this.answerOptions = answer;
  }

  /** true: every request is dropped unanswered (a hung box); false answers again. */
  setSilent(silent: boolean): void {
    this.silent = silent;
  }

  setAnswerDelay(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError(`bad answer delay ${ms}`);
    this.answerDelayMs = ms;
  }

  /** Adds an answer rule after the existing ones (see AnswerRule). */
  answerWith(rule: AnswerRule): void {
    if (!(Number.isInteger(rule.status) && rule.status > 100 && rule.status <= 699)) throw new TypeError(`bad status ${rule.status}`);
    this.rules.push({ ...rule });
  }

  /** Back to answering every INVITE 200. */
  clearAnswerRules(): void {
    this.rules = [];
  }

  /** Resolves with the next event of a kind that passes the predicate. */
  waitFor<K extends keyof FakeFreeswitchEvents>(
    event: K, predicate: (...args: FakeFreeswitchEvents[K]) => boolean = () => true, timeoutMs = 5_000,
  ): Promise<FakeFreeswitchEvents[K]> {
    return new Promise((resolve, reject) => {
      const listener = (...args: FakeFreeswitchEvents[K]): void => {
        if (!predicate(...args)) return;
        clearTimeout(timer);
        this.off(event, listener as never);
        resolve(args);
      };
      const timer = setTimeout(() => {
        this.off(event, listener as never);
        reject(new FakeFreeswitchError('FAKE_FS_ERR_TIMEOUT', `no ${String(event)} event in ${timeoutMs} ms`));
      }, timeoutMs);
      this.on(event, listener as never);
    });
  }

  /**
   * Ends a call: BYE in an established dialog (once its ACK came, §15), 480 to an INVITE not yet
   * answered. Resolves with the BYE's final status (0 for an unanswered INVITE).
   */
  async hangup(callId: string): Promise<number> {
    this.assertRunning('hangup');
    for (const p of this.pending.values()) {
      if (p.record.callId !== callId) continue;
      this.finishPending(p, 480);
      return 0;
    }
    const dialog = [...this.dialogs.values()].find((d) => d.callId === callId && d.info.state !== 'ended');
    if (dialog === undefined) throw new FakeFreeswitchError('FAKE_FS_ERR_NO_CALL', `no call ${callId}`);
    return this.sendBye(dialog);
  }

  /** Hangs up every call; resolves when every BYE has its answer (or timed out). */
  async hangupAll(): Promise<void> {
    const ids = new Set<string>();
    for (const p of this.pending.values()) ids.add(p.record.callId);
    for (const d of this.dialogs.values()) if (d.info.state !== 'ended') ids.add(d.callId);
    await Promise.all([...ids].map((id) => this.hangup(id).catch(() => 0)));
  }

  /**
   * Originates a call through the softswitch: INVITE to `target` sent to `options.via`; resolves on the
   * final response, after the ACK of a 2xx has gone out.
   */
  call(target: string, options: OriginateOptions): Promise<OriginatedCall> {
    this.assertRunning('call');
    const destination = parseHostPort(options.via);
    const originate = new Originate(this, target, options, destination);
    this.originating.add(originate);
    return originate.start().finally(() => this.originating.delete(originate));
  }

  // ---- StackUser -------------------------------------------------------------------------------

  onStatelessRequest(request: SipRequest, flow: Flow): boolean {
    if (this.silent) return true;
    if (request.method !== 'OPTIONS') return false;
    this.count('OPTIONS');
    if (this.answerOptions) {
      this.stack.respondStateless(request, flow, 200, {
        headers: [['Allow', FAKE_FREESWITCH_ALLOW], ['Accept', 'application/sdp'], ['Contact', `<sip:${this.host}:${flow.local.port}>`]],
      });
    }
    return true;
  }

  onRequest(request: SipRequest, tx: ServerTransaction, cancels?: InviteServerTransaction): void {
    if (this.silent || this.state !== 'running') return;
    this.count(request.method);
    if (request.to?.tag !== undefined && request.method !== 'CANCEL') {
      this.inDialog(request, tx);
      return;
    }
    switch (request.method) {
      case 'REGISTER':
        this.onRegister(request, tx);
        return;
      case 'INVITE':
        this.onInvite(request, tx as InviteServerTransaction);
        return;
      case 'CANCEL':
        this.onCancel(tx, cancels);
        return;
      default:
        this.stack.respond(tx, 405, { headers: [['Allow', FAKE_FREESWITCH_ALLOW]] });
    }
  }

  onAck(request: SipRequest): void {
    if (this.silent || this.state !== 'running') return;
    this.count('ACK');
    const dialog = this.dialogs.get(dialogKey(request.callId, request.to?.tag));
    if (dialog?.ok === undefined) return;
    clearTimeout(dialog.ok.timer);
    dialog.ok = undefined;
    if (dialog.info.state === 'answered') {
      dialog.info.state = 'confirmed';
      for (const w of dialog.confirmedWaiters.splice(0)) w();
      this.emitSafe('confirmed', dialog.info);
    }
  }

  /** A 2xx retransmitted after our INVITE client transaction ended (Timer M): ACK it again (§13.2.2.4). */
  onStrayResponse(response: SipResponse): void {
    if (response.cseq?.method !== 'INVITE' || response.status < 200 || response.status >= 300) return;
    const dialog = this.dialogs.get(dialogKey(response.callId, response.from?.tag));
    if (dialog?.ack !== undefined) this.stack.sendStateless(dialog.ack.request, dialog.ack.destination);
  }

  // ---- REGISTER --------------------------------------------------------------------------------

  private onRegister(req: SipRequest, tx: ServerTransaction): void {
    const fromUri = req.from?.uri;
    const toUri = req.to?.uri;
    const authorization = req.get('authorization');
    const record: RegisterRecord = {
      at: Date.now(), aor: aorOf(toUri), requestUri: req.uri, from: req.get('from') ?? '', to: req.get('to') ?? '',
      contact: req.getAll('contact'), expires: req.has('expires') ? req.expires : undefined,
      authorization: authorization !== undefined, username: undefined, callId: req.callId ?? '', cseq: req.cseq?.seq ?? 0,
      source: sourceOf(tx.flow), status: 0, headers: headersOf(req),
    };
    const answer = (status: number, headers: Array<[string, string]> = []): void => {
      record.status = status;
      this.stack.respond(tx, status, { headers });
      this.registers.push(record);
      this.emitSafe('register', record);
    };
    if (!(fromUri instanceof SipUri) || !(toUri instanceof SipUri)) return answer(400);
    const realm = fromUri.hostname;
    if (this.options.challengeRegister ?? true) {
      const verdict = this.checkDigest(req, realm, 'authorization', (username) => (record.username = username));
      if (verdict === 'forbidden') return answer(403);
      if (verdict !== 'ok') return answer(401, [['WWW-Authenticate', this.challenge(realm, verdict === 'stale')]]);
    }
    const contacts = this.updateBindings(req, record);
    if (contacts === undefined) return answer(400);
    answer(200, contacts);
  }

  /** RFC 3261 §10.3 steps 6–8, with FreeSWITCH's cap on the expiry; the 200's header fields, or undefined for a bad request. */
  private updateBindings(req: SipRequest, record: RegisterRecord): Array<[string, string]> | undefined {
    const aor = normalizeAor(record.aor);
    const now = Date.now();
    let list = this.liveBindings(aor);
    const cap = this.options.registerExpires ?? 120;
    const headerExpires = record.expires;
    let granted: number | undefined;
    if (req.contactStar) {
      // §10.3 step 6: "*" is only allowed with Expires 0, and as the only Contact.
      if (headerExpires !== 0 || req.contact.length > 0) return undefined;
      list = [];
      granted = 0;
    } else {
      for (const c of req.contact) {
        const requested = c.expires ?? headerExpires ?? DEFAULT_REQUESTED_EXPIRES;
        const expires = requested === 0 ? 0 : Math.min(requested, cap);
        granted ??= expires;
        const i = list.findIndex((b) => uriEquals(b.uri, c.uri));
        if (i >= 0) list.splice(i, 1);
        if (expires > 0) {
          list.push({ uri: c.uri, value: c.toString(), expiresAt: now + expires * 1000, callId: record.callId, cseq: record.cseq, source: record.source });
        }
      }
    }
    if (list.length > 0) this.bindings.set(aor, list);
    else this.bindings.delete(aor);
    const headers: Array<[string, string]> = list.map((b) => {
      const contact = new NameAddr(b.uri, new Map([['expires', String(Math.round((b.expiresAt - now) / 1000))]]));
      return ['Contact', contact.toString()];
    });
    if (granted !== undefined) headers.push(['Expires', String(granted)]);
    headers.push(['Date', new Date(now).toUTCString()]);
    return headers;
  }

  private liveBindings(aor: string): Binding[] {
    const list = this.bindings.get(aor);
    if (list === undefined) return [];
    const now = Date.now();
    const live = list.filter((b) => b.expiresAt > now);
    if (live.length === 0) this.bindings.delete(aor);
    else if (live.length !== list.length) this.bindings.set(aor, live);
    return live;
  }

  private challenge(realm: string, stale: boolean): string {
    const now = Date.now();
    if (this.nonces.size > 10_000) {
      for (const [n, v] of this.nonces) if (now - v.issued > NONCE_TTL_MS) this.nonces.delete(n);
    }
    const nonce = randomToken(24);
    this.nonces.set(nonce, { realm, issued: now });
    const ch: DigestChallenge = { realm, nonce, algorithm: 'MD5', qop: ['auth'], ...(stale ? { stale: true } : {}) };
    return serializeChallenge(ch);
  }

  /** RFC 2617 §3.2.2 with the password of the credentials' username; a right digest on an old nonce is stale (§3.2.1). */
  private checkDigest(
    req: SipRequest, realm: string, header: 'authorization' | 'proxy-authorization', onUsername?: (username: string) => void,
  ): 'ok' | 'challenge' | 'stale' | 'forbidden' {
    const value = req.get(header);
    if (value === undefined) return 'challenge';
    let creds;
    try {
      creds = parseCredentials(value, header);
    } catch {
      return 'challenge';
    }
    if (!isDigestCredentials(creds) || creds.realm !== realm) return 'challenge';
    onUsername?.(creds.username);
    if (parseDigestAlgorithm(creds.algorithm) !== 'MD5') return 'challenge';
    if (creds.qop !== undefined && creds.qop !== 'auth') return 'forbidden';
    const password = this.options.passwords?.[`${creds.username}@${realm}`]
      ?? this.options.passwords?.[creds.username]
      ?? this.options.password?.(creds.username, realm);
    if (password === undefined) return 'forbidden';
    const ha1 = computeHA1('MD5', creds.username, realm, utf8ToWire(password));
    const expected = computeDigestResponse({
      algorithm: 'MD5', ha1, nonce: creds.nonce, method: req.method, uri: creds.uri,
      ...(creds.qop === 'auth' ? { qop: 'auth' as const, nc: creds.nc, cnonce: creds.cnonce } : {}),
    });
    if (!digestEquals(expected, creds.response)) return 'forbidden';
    const issued = this.nonces.get(creds.nonce);
    if (issued === undefined || issued.realm !== realm || Date.now() - issued.issued > NONCE_TTL_MS) return 'stale';
    return 'ok';
  }

  // ---- INVITE (inbound) ------------------------------------------------------------------------

  private onInvite(req: SipRequest, tx: InviteServerTransaction): void {
    const record: InviteRecord = {
      at: Date.now(), callId: req.callId ?? '', requestUri: req.uri, from: req.get('from') ?? '', to: req.get('to') ?? '',
      pAssertedIdentity: req.get('p-asserted-identity'), authorization: req.has('proxy-authorization'),
      sdp: req.body.toString('utf8'), source: sourceOf(tx.flow), status: 200, headers: headersOf(req),
    };
    const toTag = newTag();
    if (this.options.challengeInvite === true) {
      const fromUri = req.from?.uri;
      const realm = fromUri instanceof SipUri ? fromUri.hostname : '';
      const verdict = this.checkDigest(req, realm, 'proxy-authorization');
      if (verdict !== 'ok') {
        record.status = verdict === 'forbidden' ? 403 : 407;
        this.invites.push(record);
        this.emitSafe('invite', record);
        const headers: Array<[string, string]> = verdict === 'forbidden' ? [] : [['Proxy-Authenticate', this.challenge(realm, verdict === 'stale')]];
        this.stack.respond(tx, record.status, { toTag, headers });
        return;
      }
    }
    const rule = this.pickRule(req);
    record.status = rule?.status ?? 200;
    this.invites.push(record);
    this.emitSafe('invite', record);
    if (record.status >= 300) {
      this.stack.respond(tx, record.status, { toTag, reason: rule?.reason });
      return;
    }
    const pending: PendingInvite = { tx, record, toTag, timer: undefined };
    this.pending.set(tx, pending);
    tx.on('terminated', () => this.forgetPending(pending));
    const contact: Array<[string, string]> = [['Contact', this.contactFor(tx.flow)]];
    if (record.status < 200) {
      this.stack.respond(tx, record.status, { toTag, reason: rule?.reason, headers: contact });
      return;
    }
    this.stack.respond(tx, 180, { toTag, headers: contact });
    pending.timer = setTimeout(() => void this.answer(pending), this.answerDelayMs);
  }

  private pickRule(req: SipRequest): AnswerRule | undefined {
    const ruri = req.ruri;
    const user = ruri instanceof SipUri ? ruri.user : undefined;
    const i = this.rules.findIndex((r) => r.user === undefined || r.user === user);
    if (i < 0) return undefined;
    const rule = this.rules[i]!;
    if (rule.times !== undefined) {
      rule.times--;
      if (rule.times <= 0) this.rules.splice(i, 1);
    }
    return rule;
  }

  /** The 200 with the SDP answer; a dialog from the INVITE (§12.1.1); its retransmission until the ACK (§13.3.1.4). */
  private async answer(p: PendingInvite): Promise<void> {
    p.timer = undefined;
    if (this.state !== 'running' || p.tx.isTerminated || p.tx.cancelled) return;
    const req = p.tx.request;
    const offer = req.body.length > 0 ? req.body.toString('utf8') : undefined;
    const answerSdp = this.options.answerSdp;
    const localSdp = offer === undefined
      ? pcmuOffer(this.host)
      : answerSdp === undefined ? pcmuAnswer(offer, this.host) : await answerSdp(offer, p.record.callId).catch((err: Error) => {
        this.log.warn({ err: err.message }, 'the test\'s SDP answer failed');
        return undefined;
      });
    if (this.state !== 'running' || p.tx.isTerminated || p.tx.cancelled) return;
    if (localSdp === undefined) {
      this.finishPending(p, 488);
      return;
    }
    this.pending.delete(p.tx);
    const contactHeader = req.contact[0];
    const fallback: Destination = { protocol: 'udp', address: p.tx.flow.remote.address, port: p.tx.flow.remote.port };
    const info: CallInfo = {
      callId: p.record.callId, direction: 'inbound', state: 'answered', requestUri: req.uri, from: p.record.from,
      to: p.record.to, answeredAt: Date.now(),
    };
    const dialog: Dialog = {
      info, callId: p.record.callId, localTag: p.toTag, local: `${p.record.to};tag=${p.toTag}`, remote: p.record.from,
      remoteTarget: contactHeader?.uri.toString() ?? fallback.address,
      routeSet: req.recordRoute.map((r) => r.toString()),
      localSeq: Math.floor(Math.random() * 10_000) + 1, fallback, localSdp,
      confirmedWaiters: [], endWaiters: [], remoteTagValue: req.from?.tag,
    };
    const headers: Array<[string, string]> = [['Contact', this.contactFor(p.tx.flow)], ['Allow', FAKE_FREESWITCH_ALLOW]];
    // §12.1.1: the UAS copies Record-Route into its 2xx.
    for (const rr of req.getAll('record-route')) headers.push(['Record-Route', rr]);
    const response = this.stack.respond(p.tx, 200, { toTag: p.toTag, headers, body: localSdp, contentType: 'application/sdp' });
    const t1 = this.stack.transactions.timing.T1;
    dialog.ok = { response, destination: p.tx.responseDestination, timer: undefined, started: Date.now(), interval: t1 };
    this.dialogs.set(dialogKey(dialog.callId, dialog.localTag), dialog);
    this.calls.push(info);
    this.answered++;
    this.scheduleOkRetransmission(dialog);
    this.emitSafe('answered', info);
  }

  /**
   * §13.3.1.4: "the 2xx response is passed to the transport with an interval that starts at T1 seconds
   * and doubles for each retransmission until it reaches T2 seconds ... If the server retransmits the
   * 2xx response for 64*T1 seconds without receiving an ACK, the dialog is confirmed, but the session
   * SHOULD be terminated. This is accomplished with a BYE".
   */
  private scheduleOkRetransmission(d: Dialog): void {
    const ok = d.ok;
    if (ok === undefined) return;
    const { T1, T2 } = this.stack.transactions.timing;
    ok.timer = setTimeout(() => {
      if (d.ok !== ok || this.state !== 'running') return;
      if (Date.now() - ok.started >= 64 * T1) {
        d.ok = undefined;
        d.info.state = 'confirmed';
        for (const w of d.confirmedWaiters.splice(0)) w();
        void this.sendBye(d, 'no-ack');
        return;
      }
      if (!this.silent) this.stack.sendStateless(ok.response, ok.destination);
      ok.interval = Math.min(ok.interval * 2, T2);
      this.scheduleOkRetransmission(d);
    }, ok.interval);
    ok.timer.unref();
  }

  private finishPending(p: PendingInvite, status: number): void {
    clearTimeout(p.timer);
    this.pending.delete(p.tx);
    if (!p.tx.isTerminated && (p.tx.lastResponse === undefined || p.tx.lastResponse.status < 200)) {
      this.stack.respond(p.tx, status, { toTag: p.toTag });
    }
  }

  private forgetPending(p: PendingInvite): void {
    clearTimeout(p.timer);
    this.pending.delete(p.tx);
  }

  /** §9.2: 481 when it matches nothing; else 200, and 487 to the INVITE still without a final response. */
  private onCancel(tx: ServerTransaction, invite: InviteServerTransaction | undefined): void {
    if (invite === undefined) {
      this.stack.respond(tx, 481);
      return;
    }
    this.stack.respond(tx, 200);
    const p = this.pending.get(invite);
    if (p !== undefined) this.finishPending(p, 487);
    else if (invite.lastResponse === undefined || invite.lastResponse.status < 200) this.stack.respond(invite, 487);
  }

  // ---- in-dialog requests ----------------------------------------------------------------------

  private inDialog(req: SipRequest, tx: ServerTransaction): void {
    const dialog = this.dialogs.get(dialogKey(req.callId, req.to?.tag));
    if (dialog === undefined || dialog.info.state === 'ended') {
      this.stack.respond(tx, 481);
      return;
    }
    switch (req.method) {
      case 'BYE':
        this.stack.respond(tx, 200);
        this.endDialog(dialog, 'remote');
        return;
      case 'INVITE': {
        // A re-INVITE (session refresh, hold): the same media again; its ACK finds the dialog as the first did.
        const contact = req.contact[0];
        if (contact !== undefined) dialog.remoteTarget = contact.uri.toString();
        this.stack.respond(tx, 200, { headers: [['Contact', this.contactFor(tx.flow)]], body: dialog.localSdp, contentType: 'application/sdp' });
        return;
      }
      case 'INFO':
      case 'UPDATE':
      case 'NOTIFY':
      case 'OPTIONS':
        this.stack.respond(tx, 200);
        return;
      default:
        this.stack.respond(tx, 405, { headers: [['Allow', FAKE_FREESWITCH_ALLOW]] });
    }
  }

  /** @internal BYE in a dialog (waiting for the ACK of our 200 first, §15); resolves with its final status. */
  async sendBye(dialog: Dialog, endedBy: 'local' | 'no-ack' = 'local'): Promise<number> {
    if (dialog.info.state === 'answered') {
      await new Promise<void>((resolve) => dialog.confirmedWaiters.push(resolve));
    }
    if (dialog.info.state === 'ended' || this.state !== 'running') return 0;
    this.endDialog(dialog, endedBy);
    const { request, destination } = this.dialogRequest(dialog, 'BYE', ++dialog.localSeq);
    return new Promise<number>((resolve) => {
      this.stack.sendRequest(request, destination, {
        onResponse: (r) => {
          if (r.status >= 200) resolve(r.status);
        },
        onTimeout: () => resolve(408),
        onTransportError: () => resolve(503),
      });
    });
  }

  /**
   * §12.2.1.1: a request within a dialog. Its Request-URI is the remote target and the route set goes in
   * Route when the first route is a loose router; a strict router gets the Request-URI and the remote
   * target goes last in Route. The request goes to the first Route's address, else the remote target's.
   */
  dialogRequest(d: Dialog, method: string, seq: number): { request: SipRequest; destination: Destination } {
    let uri = d.remoteTarget;
    let routes = d.routeSet;
    if (routes.length > 0 && !isLooseRoute(routes[0]!)) {
      uri = uriOfValue(routes[0]!)?.toString() ?? d.remoteTarget;
      routes = [...routes.slice(1), `<${d.remoteTarget}>`];
    }
    const headers: HeaderField[] = routes.map((r) => field('Route', r));
    headers.push(
      field('Max-Forwards', '70'), field('From', d.local), field('To', d.remote), field('Call-ID', d.callId),
      field('CSeq', `${seq} ${method}`), field('User-Agent', this.userAgent), field('Content-Length', '0'),
    );
    const next = routes.length > 0 ? (uriOfValue(routes[0]!)?.toString() ?? uri) : uri;
    return { request: new SipRequest({ method, uri, headers }), destination: destinationOf(next, d.fallback) };
  }

  /** @internal */
  endDialog(d: Dialog, endedBy: 'local' | 'remote' | 'no-ack'): void {
    if (d.info.state === 'ended') return;
    clearTimeout(d.ok?.timer);
    d.ok = undefined;
    d.info.state = 'ended';
    d.info.endedAt = Date.now();
    d.info.endedBy = endedBy;
    // Gone from the table: a request in it from now on gets 481 (§12.2.2), as from a box that hung up.
    this.dialogs.delete(dialogKey(d.callId, d.localTag));
    for (const w of d.confirmedWaiters.splice(0)) w();
    for (const w of d.endWaiters.splice(0)) w(d.info);
    this.emitSafe('ended', d.info);
  }

  // ---- for Originate ---------------------------------------------------------------------------

  /** @internal */
  get sipStack(): Stack {
    return this.stack;
  }

  /** @internal */
  get listenHost(): string {
    return this.host;
  }

  /** @internal */
  get agent(): string {
    return this.userAgent;
  }

  /** @internal */
  addDialog(d: Dialog): void {
    this.dialogs.set(dialogKey(d.callId, d.localTag), d);
    this.calls.push(d.info);
    this.originated++;
    this.emitSafe('answered', d.info);
  }

  /** @internal */
  contactFor(flow?: Flow): string {
    return `<sip:mod_sofia@${this.host}:${flow?.local.port ?? this.port};transport=udp>`;
  }

  private count(method: string): void {
    this.requests[method] = (this.requests[method] ?? 0) + 1;
  }

  private assertRunning(what: string): void {
    if (this.state !== 'running') throw new FakeFreeswitchError('FAKE_FS_ERR_CLOSED', `${what}(): the stand-in is ${this.state}`);
  }

  /** @internal */
  emitSafe<K extends keyof FakeFreeswitchEvents>(event: K, ...args: FakeFreeswitchEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: FakeFreeswitchEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, event }, 'listener failed');
    }
  }
}

function dialogKey(callId: string | undefined, localTag: string | undefined): string {
  return `${callId ?? ''}\n${localTag ?? ''}`;
}

/**
 * One call the stand-in originates (RFC 3261 §13.2): the INVITE and, after one 401/407, its
 * authenticated copy; the ACK of every 2xx (§13.2.2.4); CANCEL on abort (§9.1).
 */
class Originate implements ClientTransactionUser {
  private readonly stack: Stack;
  private readonly callId = newCallId();
  private readonly fromTag = newTag();
  private readonly fromValue: string;
  private readonly toValue: string;
  private readonly offer: string;
  private readonly provisional: number[] = [];
  private invite!: SipRequest;
  private tx: ClientTransaction | undefined;
  private seq = 1;
  private authTried = false;
  private authHeader: [string, string] | undefined;
  private cancelWanted = false;
  private cancelSent = false;
  private dialog: Dialog | undefined;
  private settle!: (call: OriginatedCall) => void;
  private done = false;

  constructor(
    private readonly fs: FakeFreeswitch,
    private readonly target: string,
    private readonly options: OriginateOptions,
    private readonly destination: Destination,
  ) {
    this.stack = fs.sipStack;
    this.fromValue = `<${options.from ?? `sip:freeswitch@${fs.address}`}>;tag=${this.fromTag}`;
    this.toValue = `<${options.to ?? target}>`;
    this.offer = options.sdp ?? pcmuOffer(fs.listenHost);
  }

  start(): Promise<OriginatedCall> {
    const result = new Promise<OriginatedCall>((resolve) => (this.settle = resolve));
    const signal = this.options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.cancelWanted = true;
      else signal.addEventListener('abort', () => this.abort(), { once: true });
    }
    this.send();
    return result;
  }

  private send(): void {
    const headers: HeaderField[] = [
      field('Max-Forwards', '70'), field('From', this.fromValue), field('To', this.toValue), field('Call-ID', this.callId),
      field('CSeq', `${this.seq} INVITE`), field('Contact', this.fs.contactFor()), field('User-Agent', this.fs.agent),
      field('Allow', FAKE_FREESWITCH_ALLOW),
    ];
    if (this.authHeader !== undefined) headers.push(field(...this.authHeader));
    for (const [n, v] of this.options.headers ?? []) headers.push(field(n, v));
    this.invite = new SipRequest({ method: 'INVITE', uri: this.target, headers });
    this.invite.setBody(this.offer, 'application/sdp');
    this.tx = this.stack.sendRequest(this.invite, this.destination, this);
  }

  private abort(): void {
    if (this.done) return;
    this.cancelWanted = true;
    if (this.provisional.length > 0) this.sendCancel();
  }

  /** §9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via as the INVITE, to the same place. */
  private sendCancel(): void {
    if (this.cancelSent || this.tx === undefined) return;
    this.cancelSent = true;
    // The CANCEL carries the INVITE's own Via: through the layer directly, not Stack.sendRequest (which adds one).
    this.stack.transactions.sendRequest(createCancel(this.tx.request), this.destination, { onResponse: () => undefined });
  }

  onResponse(response: SipResponse, tx: ClientTransaction): void {
    if (tx !== this.tx) return;
    const status = response.status;
    if (status < 200) {
      this.provisional.push(status);
      if (this.cancelWanted) this.sendCancel();
      return;
    }
    if (status < 300) {
      this.on2xx(response);
      return;
    }
    if ((status === 401 || status === 407) && !this.authTried && this.options.credentials !== undefined && !this.cancelWanted) {
      if (this.retryWithCredentials(response)) return;
    }
    this.finish(status, response.reason, response);
  }

  onTimeout(tx: ClientTransaction): void {
    if (tx === this.tx) this.finish(408, 'Request Timeout', undefined);
  }

  /** The stand-in closed under the call: it ends unanswered, as far as the caller of call() is told. */
  abandon(): void {
    this.finish(503, 'Stand-in Closed', undefined);
  }

  onTransportError(tx: ClientTransaction): void {
    if (tx === this.tx) this.finish(503, 'Service Unavailable', undefined);
  }

  private retryWithCredentials(response: SipResponse): boolean {
    const header = response.status === 401 ? 'www-authenticate' : 'proxy-authenticate';
    const value = response.get(header);
    if (value === undefined) return false;
    let ch;
    try {
      ch = parseChallenge(value, header);
    } catch {
      return false;
    }
    const creds = this.options.credentials!;
    this.authTried = true;
    this.authHeader = [
      response.status === 401 ? 'Authorization' : 'Proxy-Authorization',
      buildCredentials(ch, { username: creds.username, password: utf8ToWire(creds.password), method: 'INVITE', uri: this.target, nc: 1, cnonce: randomToken(12) }),
    ];
    this.seq++;
    this.send();
    return true;
  }

  /** §12.1.2: the dialog from the 2xx (route set = Record-Route reversed, remote target = Contact); then the ACK. */
  private on2xx(response: SipResponse): void {
    if (this.dialog !== undefined && response.to?.tag !== this.dialog.remoteTagValue) {
      this.releaseFork(response);
      return;
    }
    if (this.dialog === undefined) {
      const info: CallInfo = {
        callId: this.callId, direction: 'outbound', state: 'confirmed', requestUri: this.target, from: this.fromValue,
        to: response.get('to') ?? this.toValue, answeredAt: Date.now(),
      };
      this.dialog = {
        info, callId: this.callId, localTag: this.fromTag, local: this.fromValue, remote: response.get('to') ?? this.toValue,
        remoteTarget: response.contact[0]?.uri.toString() ?? this.target,
        routeSet: response.recordRoute.map((r) => r.toString()).reverse(),
        localSeq: this.seq, fallback: this.destination, localSdp: this.offer, confirmedWaiters: [], endWaiters: [],
        remoteTagValue: response.to?.tag,
      };
      this.dialog.ack = this.buildAck(this.dialog);
      this.fs.addDialog(this.dialog);
    }
    const ack = this.dialog.ack!;
    this.stack.sendStateless(ack.request, ack.destination);
    this.finish(response.status, response.reason, response);
  }

  /** §13.2.2.4: the ACK of a 2xx is built as a request within the dialog, with the INVITE's CSeq number. */
  private buildAck(dialog: Dialog): { request: SipRequest; destination: Destination } {
    const ack = this.fs.dialogRequest(dialog, 'ACK', this.seq);
    // "The ACK MUST contain the same credentials as the INVITE."
    if (this.authHeader !== undefined) ack.request.append(...this.authHeader);
    ack.request.prepend('Via', this.stack.viaFor('udp', newBranch()));
    return ack;
  }

  /**
   * A 2xx of another fork (another To tag). §13.2.2.4: "the UAC core MUST generate an ACK request for
   * each 2xx received"; the stand-in keeps the first dialog and ends this one at once with BYE.
   */
  private releaseFork(response: SipResponse): void {
    const fork: Dialog = {
      info: { callId: this.callId, direction: 'outbound', state: 'confirmed', requestUri: this.target, from: this.fromValue, to: response.get('to') ?? '', answeredAt: Date.now() },
      callId: this.callId, localTag: this.fromTag, local: this.fromValue, remote: response.get('to') ?? this.toValue,
      remoteTarget: response.contact[0]?.uri.toString() ?? this.target,
      routeSet: response.recordRoute.map((r) => r.toString()).reverse(),
      localSeq: this.seq, fallback: this.destination, localSdp: this.offer, confirmedWaiters: [], endWaiters: [],
      remoteTagValue: response.to?.tag,
    };
    const ack = this.buildAck(fork);
    this.stack.sendStateless(ack.request, ack.destination);
    const bye = this.fs.dialogRequest(fork, 'BYE', this.seq + 1);
    this.stack.sendRequest(bye.request, bye.destination, { onResponse: () => undefined });
  }

  private finish(status: number, reason: string, response: SipResponse | undefined): void {
    if (this.done) return;
    this.done = true;
    const dialog = this.dialog;
    const fs = this.fs;
    const provisional = this.provisional;
    const answerSdp = dialog !== undefined && response !== undefined && response.body.length > 0 ? response.body.toString('utf8') : undefined;
    this.settle({
      callId: this.callId,
      status,
      reason,
      provisional,
      response,
      answerSdp,
      get established() {
        return dialog !== undefined && dialog.info.state !== 'ended';
      },
      hangup: () => {
        if (dialog === undefined) return Promise.reject(new FakeFreeswitchError('FAKE_FS_ERR_NO_CALL', `call ${this.callId} was not answered (${status})`));
        return fs.sendBye(dialog);
      },
      waitForEnd: (timeoutMs = 10_000) => {
        if (dialog === undefined) return Promise.reject(new FakeFreeswitchError('FAKE_FS_ERR_NO_CALL', `call ${this.callId} was not answered (${status})`));
        if (dialog.info.state === 'ended') return Promise.resolve(dialog.info);
        return new Promise<CallInfo>((resolve, reject) => {
          const timer = setTimeout(() => reject(new FakeFreeswitchError('FAKE_FS_ERR_TIMEOUT', `call ${this.callId} still up after ${timeoutMs} ms`)), timeoutMs);
          dialog.endWaiters.push((info) => {
            clearTimeout(timer);
            resolve(info);
          });
        });
      },
    });
  }
}

/** Creates and starts a stand-in. */
export function startFakeFreeswitch(options: FakeFreeswitchOptions = {}): Promise<FakeFreeswitch> {
  return new FakeFreeswitch(options).start();
}

// ---- in a child process -----------------------------------------------------------------------------

/** The options a child process takes: FakeFreeswitchOptions that survive JSON. */
export type FakeFreeswitchProcessOptions = Omit<FakeFreeswitchOptions, 'password' | 'logger'>;

/** One line the child writes on stdout. */
export type FakeFreeswitchProcessEvent =
  | { event: 'ready'; port: number; uri: string; pid: number }
  | { event: 'register'; aor: string; contact: string[]; expires: number | undefined; authorization: boolean; status: number; source: string }
  | {
    event: 'invite'; callId: string; requestUri: string; from: string; to: string; pAssertedIdentity: string | undefined;
    authorization: boolean; status: number; source: string;
  }
  | { event: 'answered' | 'confirmed' | 'ended'; call: CallInfo }
  | { event: 'result'; id: number; result?: unknown; error?: string };

/** Commands the child reads on stdin, one JSON object a line; each is answered by a `result` line. */
export type FakeFreeswitchCommand =
  | { cmd: 'setAnswerOptions'; value: boolean }
  | { cmd: 'setSilent'; value: boolean }
  | { cmd: 'setAnswerDelay'; ms: number }
  | { cmd: 'answerWith'; rule: AnswerRule }
  | { cmd: 'clearAnswerRules' }
  | { cmd: 'hangupAll' }
  | { cmd: 'stats' }
  | { cmd: 'registrations'; aor: string };

export interface FakeFreeswitchProcess {
  readonly pid: number;
  readonly port: number;
  readonly uri: string;
  /** `host:port`. */
  readonly address: string;
  /** Every event line so far. */
  readonly events: readonly FakeFreeswitchProcessEvent[];
  readonly exited: boolean;
  /** Runs a command in the child; resolves with its result. */
  command(command: FakeFreeswitchCommand, timeoutMs?: number): Promise<unknown>;
  stats(): Promise<FakeFreeswitchStats>;
  /** The next (or an earlier, when `includePast`) event line passing the predicate. */
  waitForEvent(predicate: (e: FakeFreeswitchProcessEvent) => boolean, timeoutMs?: number, includePast?: boolean): Promise<FakeFreeswitchProcessEvent>;
  /** SIGKILL: the box is gone at once, mid-call; resolves when the process has exited. */
  kill(): Promise<void>;
  /** SIGTERM: the child hangs its calls up (bounded) and exits; SIGKILL after 3 s. */
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('./fake-freeswitch-main.js', import.meta.url));

/** Runs a stand-in in a child process (dist/test/helpers/fake-freeswitch-main.js); resolves once it listens. */
export function startFakeFreeswitchProcess(options: FakeFreeswitchProcessOptions = {}, startTimeoutMs = 10_000): Promise<FakeFreeswitchProcess> {
  const child = spawn(process.execPath, ['--enable-source-maps', MAIN, JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const events: FakeFreeswitchProcessEvent[] = [];
  const listeners = new Set<(e: FakeFreeswitchProcessEvent) => void>();
  let exited = false;
  let nextId = 1;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  child.stdin.on('error', () => undefined); // writes to a child that just died
  createInterface({ input: child.stdout }).on('line', (line) => {
    let e: FakeFreeswitchProcessEvent;
    try {
      e = JSON.parse(line) as FakeFreeswitchProcessEvent;
    } catch {
      return;
    }
    events.push(e);
    for (const l of [...listeners]) l(e);
  });
  const waitForEvent = (predicate: (e: FakeFreeswitchProcessEvent) => boolean, timeoutMs = 5_000, includePast = false): Promise<FakeFreeswitchProcessEvent> => {
    if (includePast) {
      const past = events.find(predicate);
      if (past !== undefined) return Promise.resolve(past);
    }
    return new Promise((resolve, reject) => {
      const done = (err: Error | undefined, e?: FakeFreeswitchProcessEvent): void => {
        clearTimeout(timer);
        listeners.delete(listener);
        if (err !== undefined) reject(err);
        else resolve(e!);
      };
      const listener = (e: FakeFreeswitchProcessEvent): void => {
        if (predicate(e)) done(undefined, e);
      };
      const timer = setTimeout(() => done(new FakeFreeswitchError('FAKE_FS_ERR_TIMEOUT', `no matching event from the fake FreeSWITCH in ${timeoutMs} ms`)), timeoutMs);
      listeners.add(listener);
      void exit.then(() => {
        if (listeners.has(listener)) done(new FakeFreeswitchError('FAKE_FS_ERR_PROCESS', 'the fake FreeSWITCH process exited'));
      });
    });
  };
  const ready = waitForEvent((e) => e.event === 'ready', startTimeoutMs);
  return ready.then(
    (e) => {
      const r = e as Extract<FakeFreeswitchProcessEvent, { event: 'ready' }>;
      const host = options.host ?? '127.0.0.1';
      const command = async (cmd: FakeFreeswitchCommand, timeoutMs = 5_000): Promise<unknown> => {
        if (exited) throw new FakeFreeswitchError('FAKE_FS_ERR_PROCESS', 'the fake FreeSWITCH process has exited');
        const id = nextId++;
        const answer = waitForEvent((x) => x.event === 'result' && x.id === id, timeoutMs);
        child.stdin.write(`${JSON.stringify({ ...cmd, id })}\n`);
        const res = (await answer) as Extract<FakeFreeswitchProcessEvent, { event: 'result' }>;
        if (res.error !== undefined) throw new FakeFreeswitchError('FAKE_FS_ERR_PROCESS', res.error);
        return res.result;
      };
      return {
        pid: r.pid,
        port: r.port,
        uri: r.uri,
        address: `${host}:${r.port}`,
        events,
        get exited() {
          return exited;
        },
        command,
        stats: async () => (await command({ cmd: 'stats' })) as FakeFreeswitchStats,
        waitForEvent,
        async kill() {
          if (!exited) child.kill('SIGKILL');
          await exit;
        },
        async stop() {
          if (exited) return;
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
          await exit;
          clearTimeout(timer);
        },
      };
    },
    (err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    },
  );
}
