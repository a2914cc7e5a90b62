/**
 * APNs (Apple Push Notification service) over HTTP/2 with token-based authentication: the app's PushKit
 * VoIP pushes for calls and cancels, a visible alert for messages.
 *
 * Apple's rules this follows: one long-lived HTTP/2 connection per environment (opening one per push gets
 * the provider throttled), kept alive with pings; the provider token (an ES256 JWT from the team's .p8
 * key) is reused across requests and replaced before it is an hour old (a token refreshed more often
 * than every 20 minutes gets `TooManyProviderTokenUpdates`); `apns-push-type: voip` goes with topic
 * `<bundle>.voip` and priority 10 (VoIP pushes must be delivered at once).
 */
import { type KeyObject, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, connect, constants } from 'node:http2';
import { categoryLogger, type Logger } from '../src/log/index.js';
import type { PushParams } from '../src/sip/index.js';
import { DEFAULT_RETRY_DELAYS_MS, parseJson, shortToken, signJwt, unreached, withRetries, type TrustedCa } from './delivery.js';
import type { PushPayload, PushProviderClient, PushResult } from './types.js';

export const APNS_PRODUCTION = 'https://api.push.apple.com';
export const APNS_SANDBOX = 'https://api.sandbox.push.apple.com';

/** A provider token is replaced after 50 min: Apple refuses one older than 60 min. */
const TOKEN_LIFETIME_MS = 50 * 60_000;
/** A ping a minute keeps NATs and Apple's idle timer from closing the connection between calls. */
const PING_INTERVAL_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** Apple's reasons that mean the device token is dead (410 Unregistered, or never valid for this topic). */
const DEAD_TOKEN_REASONS = new Set(['Unregistered', 'BadDeviceToken']);

export interface ApnsOptions {
  /** The .p8 key (PEM), or the file holding it. */
  key?: string | undefined;
  keyFile?: string | undefined;
  /** The key's id in the Apple developer account (the JWT's `kid`). */
  keyId: string;
  /** The team id (the JWT's `iss`). */
  teamId: string;
  /** The app's bundle id: VoIP pushes go to topic `<bundleId>.voip`, alerts to `<bundleId>`. */
  bundleId: string;
  /** APNS_PRODUCTION (default) or APNS_SANDBOX, or a test server. */
  endpoint?: string | undefined;
  /** Trusts a certificate the system does not (tests). */
  ca?: TrustedCa | undefined;
  logger: Logger;
  /** How long one provider token is used, ms (tests shorten it). */
  tokenLifetimeMs?: number | undefined;
  pingIntervalMs?: number | undefined;
  retryDelaysMs?: readonly number[] | undefined;
}

interface ProviderToken {
  readonly jwt: string;
  readonly madeAt: number;
}

export class ApnsClient implements PushProviderClient {
  readonly provider = 'apns' as const;
  private readonly key: KeyObject;
  private readonly endpoint: string;
  private readonly log: Logger;
  private readonly tokenLifetimeMs: number;
  private readonly pingIntervalMs: number;
  private readonly retryDelaysMs: readonly number[];
  private token: ProviderToken | undefined;
  private session: ClientHttp2Session | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: ApnsOptions) {
    const pem = options.key ?? (options.keyFile !== undefined ? readFileSync(options.keyFile, 'utf8') : undefined);
    if (pem === undefined) throw new Error('APNs: no key (give key or keyFile, the .p8 file from the Apple developer account)');
    this.key = createPrivateKey(pem);
    if (this.key.asymmetricKeyType !== 'ec') throw new Error('APNs: the key is not an EC (ES256) key; use the .p8 file Apple issued');
    this.endpoint = options.endpoint ?? APNS_PRODUCTION;
    this.log = categoryLogger(options.logger, 'push.apns');
    this.tokenLifetimeMs = options.tokenLifetimeMs ?? TOKEN_LIFETIME_MS;
    this.pingIntervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS;
    this.retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  }

  async send(device: PushParams, payload: PushPayload): Promise<PushResult> {
    if (this.closed) return { ok: false, status: 0, reason: 'client closed' };
    const body = JSON.stringify(apnsBody(payload));
    let result = await withRetries(this.retryDelaysMs, () => this.post(device, payload, body));
    if (result.status === 403 && result.reason === 'ExpiredProviderToken') {
      // Our clock and Apple's disagree, or the process slept: a fresh token, and one more try.
      this.token = undefined;
      result = await withRetries(this.retryDelaysMs, () => this.post(device, payload, body));
    }
    const fields = { token: shortToken(device.prid), kind: payload.kind, status: result.status, reason: result.reason, apnsId: result.id };
    if (result.ok) this.log.debug(fields, 'APNs push accepted');
    else this.log.info(fields, 'APNs push refused');
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.dropSession();
  }

  private post(device: PushParams, payload: PushPayload, body: string): Promise<PushResult> {
    const voip = payload.kind !== 'message';
    let session: ClientHttp2Session;
    try {
      session = this.connected();
    } catch (err) {
      return Promise.resolve(unreached(err));
    }
    return new Promise((resolve) => {
      const req = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: `/3/device/${encodeURIComponent(device.prid)}`,
        authorization: `bearer ${this.providerToken()}`,
        'apns-push-type': voip ? 'voip' : 'alert',
        'apns-topic': apnsTopic(device, this.options, voip),
        'apns-priority': '10',
        'apns-expiration': '0',
        'content-type': 'application/json',
      });
      let status = 0;
      let apnsId: string | undefined;
      let text = '';
      req.setEncoding('utf8');
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.close(constants.NGHTTP2_CANCEL));
      req.on('response', (headers) => {
        status = Number(headers[constants.HTTP2_HEADER_STATUS] ?? 0);
        const id = headers['apns-id'];
        apnsId = typeof id === 'string' ? id : undefined;
      });
      req.on('data', (chunk: string) => (text += chunk));
      req.on('end', () => resolve(apnsResult(status, apnsId, text)));
      req.on('error', (err) => resolve(unreached(err)));
      req.on('close', () => {
        if (status === 0) resolve(unreached(new Error('APNs stream closed without an answer')));
      });
      req.end(body);
    });
  }

  /** The provider token, made anew when it is `tokenLifetimeMs` old. */
  private providerToken(): string {
    const now = Date.now();
    if (this.token === undefined || now - this.token.madeAt >= this.tokenLifetimeMs) {
      const jwt = signJwt({ alg: 'ES256', kid: this.options.keyId }, { iss: this.options.teamId, iat: Math.floor(now / 1000) }, this.key);
      this.token = { jwt, madeAt: now };
    }
    return this.token.jwt;
  }

  /** The open HTTP/2 session, or a new one when there is none or it was closed (goaway, error, idle drop). */
  private connected(): ClientHttp2Session {
    if (this.session !== undefined && !this.session.closed && !this.session.destroyed) return this.session;
    const session = connect(this.endpoint, { ca: this.options.ca });
    const forget = (): void => {
      if (this.session === session) this.dropSession();
    };
    session.on('error', (err) => {
      this.log.warn({ endpoint: this.endpoint, err: err.message }, 'APNs connection failed');
      forget();
    });
    session.on('goaway', forget);
    session.on('close', forget);
    this.session = session;
    this.pinger = setInterval(() => {
      session.ping((err) => {
        if (err) forget();
      });
    }, this.pingIntervalMs);
    this.pinger.unref();
    return session;
  }

  private dropSession(): void {
    clearInterval(this.pinger);
    this.pinger = undefined;
    const session = this.session;
    this.session = undefined;
    if (session !== undefined && !session.destroyed) session.close();
  }
}

/**
 * The topic of a push: RFC 8599 §9.1 has an iOS app send `pn-param=<team id>.<bundle id>.voip`; a
 * provider token is good for every app of its team, so the bundle the device names is used when its team
 * is ours (one server can wake several apps), else the configured bundle. VoIP pushes go to `<bundle>.voip`,
 * alerts to the bundle itself.
 */
export function apnsTopic(device: PushParams, options: Pick<ApnsOptions, 'teamId' | 'bundleId'>, voip: boolean): string {
  const prefix = `${options.teamId}.`;
  const named = device.param?.startsWith(prefix) === true ? device.param.slice(prefix.length).replace(/\.voip$/, '') : '';
  const bundle = named !== '' ? named : options.bundleId;
  return voip ? `${bundle}.voip` : bundle;
}

/**
 * The JSON Apple delivers to the app. VoIP pushes carry an empty `aps` (PushKit hands the whole payload to
 * the app, which reports the call to CallKit); messages show an alert with the sender.
 */
function apnsBody(payload: PushPayload): Record<string, unknown> {
  const aps =
    payload.kind === 'message'
      ? { alert: { title: payload.fromName ?? payload.from, body: payload.body ?? 'New message' }, sound: 'default' }
      : {};
  return { aps, ...payload };
}

function apnsResult(status: number, id: string | undefined, text: string): PushResult {
  if (status === 200) return { ok: true, status, id };
  const json = parseJson(text) as { reason?: unknown } | undefined;
  const reason = typeof json?.reason === 'string' ? json.reason : undefined;
  return { ok: false, status, reason, id, unregistered: status === 410 || (reason !== undefined && DEAD_TOKEN_REASONS.has(reason)) };
}
