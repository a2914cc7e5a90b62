/**
 * Web Push (RFC 8030) for browser softphones, through the `web-push` package: the payload is encrypted
 * for the subscription (RFC 8291, aes128gcm) and the request is signed with our VAPID key (RFC 8292), so
 * the browser vendor's push service can tell the pushes of this server from anyone else's.
 *
 * `pn-prid` of a webpush binding is the browser's PushSubscription as base64url(JSON), exactly
 * `base64url(JSON.stringify({ endpoint, keys: { p256dh, auth } }))` — what `subscription.toJSON()` gives,
 * without `expirationTime` (ignored if present). A SIP URI parameter cannot carry the JSON itself; base64url
 * needs no %-escaping. The app subscribes with `applicationServerKey` = our VAPID public key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import webpush, { type PushSubscription, type WebPushError } from 'web-push';
import { categoryLogger, type Logger } from '../src/log/index.js';
import type { PushParams } from '../src/sip/index.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, logTightened, tightenModes } from '../src/transport/file-modes.js';
import { DEFAULT_RETRY_DELAYS_MS, parseJson, shortToken, unreached, withRetries, type TrustedCa } from './delivery.js';
import type { PushPayload, PushProviderClient, PushResult } from './types.js';

/** Where generated VAPID keys are kept under dataDir. */
export const VAPID_FILE = join('push', 'vapid.json');
/** A call push undelivered after this long is useless: the caller has given up or the call is cancelled. */
const CALL_TTL_S = 30;
/** A message push may wait a day for a browser that is offline. */
const MESSAGE_TTL_S = 86_400;
const REQUEST_TIMEOUT_MS = 10_000;

export interface VapidKeys {
  /** The uncompressed P-256 public key, base64url: the app's `applicationServerKey`. */
  publicKey: string;
  privateKey: string;
  /** `mailto:` or `https:` contact the push services may use to reach the operator. */
  subject: string;
}

/**
 * The VAPID keys: the configured pair (push.webpush.publicKey/privateKey), else the pair in
 * dataDir/push/vapid.json, generated on the first start (folder 0700, file 0600). The workers of a node
 * start together and must share one pair (a browser subscribed with one public key refuses pushes signed
 * with another): each writes a candidate and links it to the final name; all but the first get EEXIST and
 * read the winner's, which a link makes complete or absent, never half-written.
 */
export function loadVapidKeys(options: { dataDir: string; publicKey?: string | undefined; privateKey?: string | undefined; subject: string; logger: Logger }): VapidKeys {
  const { publicKey, privateKey, subject } = options;
  if (publicKey !== undefined && privateKey !== undefined) return { publicKey, privateKey, subject };
  if (publicKey !== undefined || privateKey !== undefined) throw new Error('push.webpush.publicKey and push.webpush.privateKey go together');
  const log = categoryLogger(options.logger, 'push.webpush');
  const dir = join(options.dataDir, 'push');
  const path = join(options.dataDir, VAPID_FILE);
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const candidate = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const generated = webpush.generateVAPIDKeys();
  writeFileSync(candidate, JSON.stringify(generated) + '\n', { flag: 'wx', mode: PRIVATE_FILE_MODE });
  try {
    linkSync(candidate, path);
    log.info({ path, publicKey: generated.publicKey }, 'Web Push VAPID keys generated (apps subscribe with this public key)');
    return { ...generated, subject };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    logTightened(log, 'the VAPID keys', tightenModes([{ path: dir, mode: PRIVATE_DIR_MODE }, { path, mode: PRIVATE_FILE_MODE }]));
    return { ...readVapidFile(path), subject };
  } finally {
    unlinkSync(candidate);
  }
}

function readVapidFile(path: string): { publicKey: string; privateKey: string } {
  const json = parseJson(readFileSync(path, 'utf8')) as { publicKey?: unknown; privateKey?: unknown } | undefined;
  if (typeof json?.publicKey !== 'string' || typeof json.privateKey !== 'string') {
    throw new Error(`${path} does not hold VAPID keys (delete it to have new ones made; every browser must then subscribe again)`);
  }
  return { publicKey: json.publicKey, privateKey: json.privateKey };
}

/** The subscription a webpush `pn-prid` carries, or undefined when it is not one (see the file comment). */
export function decodeSubscription(prid: string): PushSubscription | undefined {
  const json = parseJson(Buffer.from(prid, 'base64url').toString('utf8')) as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } } | undefined;
  if (typeof json?.endpoint !== 'string' || typeof json.keys?.p256dh !== 'string' || typeof json.keys.auth !== 'string') return undefined;
  if (!URL.canParse(json.endpoint) || new URL(json.endpoint).protocol !== 'https:') return undefined;
  return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
}

/** The pn-prid of a subscription: what a browser app puts in its Contact. */
export function encodeSubscription(subscription: PushSubscription): string {
  return Buffer.from(JSON.stringify({ endpoint: subscription.endpoint, keys: subscription.keys })).toString('base64url');
}

export interface WebPushOptions {
  vapid: VapidKeys;
  logger: Logger;
  /** Trusts a certificate the system does not (tests). */
  ca?: TrustedCa | undefined;
  retryDelaysMs?: readonly number[] | undefined;
}

export class WebPushClient implements PushProviderClient {
  readonly provider = 'webpush' as const;
  private readonly log: Logger;
  /** Keeps the TLS connections to each push service open between pushes. */
  private readonly agent: Agent;
  private readonly retryDelaysMs: readonly number[];

  constructor(private readonly options: WebPushOptions) {
    this.log = categoryLogger(options.logger, 'push.webpush');
    this.agent = new Agent({ keepAlive: true, ca: options.ca });
    this.retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  }

  /** The public key browsers subscribe with. */
  get publicKey(): string {
    return this.options.vapid.publicKey;
  }

  async send(device: PushParams, payload: PushPayload): Promise<PushResult> {
    const subscription = decodeSubscription(device.prid);
    let result: PushResult;
    if (subscription === undefined) {
      // The binding can never be pushed to: the app sent something else than the documented pn-prid.
      result = { ok: false, status: 0, reason: 'pn-prid is not a base64url Web Push subscription', unregistered: true };
    } else {
      const body = JSON.stringify(payload);
      result = await withRetries(this.retryDelaysMs, () => this.post(subscription, payload, body));
    }
    const fields = { token: shortToken(device.prid), kind: payload.kind, status: result.status, reason: result.reason };
    if (result.ok) this.log.debug(fields, 'Web Push accepted');
    else this.log.info(fields, 'Web Push refused');
    return result;
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  private async post(subscription: PushSubscription, payload: PushPayload, body: string): Promise<PushResult> {
    const message = payload.kind === 'message';
    try {
      const answer = await webpush.sendNotification(subscription, body, {
        vapidDetails: this.options.vapid,
        TTL: message ? MESSAGE_TTL_S : CALL_TTL_S,
        urgency: message ? 'normal' : 'high',
        // A call's cancel replaces its call push if the browser has not had it yet.
        topic: createHash('sha256').update(payload.id).digest('base64url').slice(0, 32),
        agent: this.agent,
        timeout: REQUEST_TIMEOUT_MS,
      });
      const location = answer.headers.location;
      return { ok: true, status: answer.statusCode, id: typeof location === 'string' ? location : undefined };
    } catch (err) {
      if (!isWebPushError(err)) return unreached(err);
      return { ok: false, status: err.statusCode, reason: err.body.trim().slice(0, 200) || undefined, unregistered: err.statusCode === 404 || err.statusCode === 410 };
    }
  }
}

function isWebPushError(err: unknown): err is WebPushError {
  return err instanceof webpush.WebPushError;
}
