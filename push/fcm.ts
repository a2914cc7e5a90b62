/**
 * FCM HTTP v1 (Firebase Cloud Messaging): data-only, high-priority messages that wake an Android app
 * (its FirebaseMessagingService starts the ConnectionService call UI itself).
 *
 * Authentication is OAuth2 with the project's service account: a JWT grant (RFC 7523) signed RS256 with
 * the account's private key is exchanged at its `token_uri` for an access token, which is reused until
 * shortly before it expires (an hour at Google). `android.ttl: "0s"` means "now or never": a call push
 * delivered a minute late would ring for a call that is over.
 */
import { type KeyObject, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { categoryLogger, type Logger } from '../src/log/index.js';
import type { PushParams } from '../src/sip/index.js';
import { DEFAULT_RETRY_DELAYS_MS, parseJson, postText, shortToken, signJwt, unreached, withRetries, type TrustedCa } from './delivery.js';
import type { PushPayload, PushProviderClient, PushResult } from './types.js';

export const FCM_ENDPOINT = 'https://fcm.googleapis.com';
const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** Life asked for in the grant (Google's maximum). */
const GRANT_LIFETIME_S = 3600;
/** An access token is replaced this long before the provider says it expires: no push goes out with a dying one. */
const EXPIRY_MARGIN_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** The fields of a Google service-account JSON file that FCM needs. */
export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
  private_key_id?: string | undefined;
  token_uri: string;
}

export interface FcmOptions {
  /** The service account, or the JSON file holding it. */
  serviceAccount?: ServiceAccount | undefined;
  serviceAccountFile?: string | undefined;
  /** FCM_ENDPOINT (default) or a test server. */
  endpoint?: string | undefined;
  /** Trusts a certificate the system does not (tests). */
  ca?: TrustedCa | undefined;
  logger: Logger;
  retryDelaysMs?: readonly number[] | undefined;
}

interface AccessToken {
  readonly value: string;
  readonly refreshAt: number;
}

/** The service account in `text`, or an error naming the field that is missing. */
export function parseServiceAccount(text: string, source: string): ServiceAccount {
  const json = parseJson(text) as Record<string, unknown> | undefined;
  if (json === undefined || typeof json !== 'object') throw new Error(`${source} is not a JSON service account file`);
  for (const field of ['project_id', 'client_email', 'private_key', 'token_uri'] as const) {
    if (typeof json[field] !== 'string' || json[field] === '') throw new Error(`${source} has no ${field} (download the service account key JSON from the Firebase console)`);
  }
  return json as unknown as ServiceAccount;
}

export class FcmClient implements PushProviderClient {
  readonly provider = 'fcm' as const;
  private readonly account: ServiceAccount;
  private readonly key: KeyObject;
  private readonly sendUrl: URL;
  private readonly log: Logger;
  private readonly retryDelaysMs: readonly number[];
  private accessToken: AccessToken | undefined;
  /** The grant under way: concurrent pushes wait for the same one instead of each asking Google. */
  private granting: Promise<string> | undefined;

  constructor(private readonly options: FcmOptions) {
    const account =
      options.serviceAccount ??
      (options.serviceAccountFile !== undefined ? parseServiceAccount(readFileSync(options.serviceAccountFile, 'utf8'), options.serviceAccountFile) : undefined);
    if (account === undefined) throw new Error('FCM: no service account (give serviceAccount or serviceAccountFile)');
    this.account = account;
    this.key = createPrivateKey(account.private_key);
    this.sendUrl = new URL(`/v1/projects/${encodeURIComponent(account.project_id)}/messages:send`, options.endpoint ?? FCM_ENDPOINT);
    this.log = categoryLogger(options.logger, 'push.fcm');
    this.retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  }

  async send(device: PushParams, payload: PushPayload): Promise<PushResult> {
    const body = JSON.stringify({ message: { token: device.prid, data: fcmData(payload), android: { priority: 'HIGH', ttl: '0s' } } });
    let result = await withRetries(this.retryDelaysMs, () => this.post(body));
    if (result.status === 401) {
      // Revoked or expired early (a key rotation): one fresh access token, one more try.
      this.accessToken = undefined;
      result = await withRetries(this.retryDelaysMs, () => this.post(body));
    }
    const fields = { token: shortToken(device.prid), kind: payload.kind, status: result.status, reason: result.reason };
    if (result.ok) this.log.debug(fields, 'FCM push accepted');
    else this.log.info(fields, 'FCM push refused');
    return result;
  }

  async close(): Promise<void> {
    this.accessToken = undefined;
  }

  private async post(body: string): Promise<PushResult> {
    try {
      const bearer = await this.validAccessToken();
      const answer = await postText(this.sendUrl, {
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json; charset=utf-8' },
        body,
        ca: this.options.ca,
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      return fcmResult(answer.status, answer.body);
    } catch (err) {
      return unreached(err);
    }
  }

  private validAccessToken(): Promise<string> {
    if (this.accessToken !== undefined && Date.now() < this.accessToken.refreshAt) return Promise.resolve(this.accessToken.value);
    this.granting ??= this.grant().finally(() => (this.granting = undefined));
    return this.granting;
  }

  /** RFC 7523 §2.1: the signed assertion for an access token. */
  private async grant(): Promise<string> {
    const iat = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', ...(this.account.private_key_id !== undefined ? { kid: this.account.private_key_id } : {}) };
    const assertion = signJwt(header, { iss: this.account.client_email, scope: SCOPE, aud: this.account.token_uri, iat, exp: iat + GRANT_LIFETIME_S }, this.key);
    const answer = await postText(new URL(this.account.token_uri), {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
      ca: this.options.ca,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    const json = parseJson(answer.body) as { access_token?: unknown; expires_in?: unknown; error?: unknown } | undefined;
    if (answer.status !== 200 || typeof json?.access_token !== 'string') {
      throw new Error(`FCM access token refused by ${this.account.token_uri}: ${answer.status} ${typeof json?.error === 'string' ? json.error : ''}`.trim());
    }
    const lifetimeMs = (typeof json.expires_in === 'number' ? json.expires_in : GRANT_LIFETIME_S) * 1000;
    this.accessToken = { value: json.access_token, refreshAt: Date.now() + Math.max(0, lifetimeMs - EXPIRY_MARGIN_MS) };
    return json.access_token;
  }
}

/** FCM data values must be strings; absent fields are left out rather than sent as "undefined". */
function fcmData(payload: PushPayload): Record<string, string> {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload)) if (typeof v === 'string') data[k] = v;
  return data;
}

interface FcmError {
  error?: { status?: unknown; details?: Array<{ errorCode?: unknown }> };
}

function fcmResult(status: number, text: string): PushResult {
  const json = parseJson(text) as ({ name?: unknown } & FcmError) | undefined;
  if (status === 200) return { ok: true, status, id: typeof json?.name === 'string' ? json.name : undefined };
  const errorCode = json?.error?.details?.find((d) => typeof d.errorCode === 'string')?.errorCode as string | undefined;
  const reason = errorCode ?? (typeof json?.error?.status === 'string' ? json.error.status : undefined);
  return { ok: false, status, reason, unregistered: status === 404 || errorCode === 'UNREGISTERED' };
}
