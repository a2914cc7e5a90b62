/**
 * What the three push provider clients share: how a device token is shown in logs, the bounded retry of
 * answers the providers mean as "try again" (429, 5xx, a dropped connection), signed JWTs (APNs provider
 * tokens, the FCM OAuth2 grant) and a small HTTPS request that can trust a test provider's certificate.
 */
import { type KeyObject, sign } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PushResult } from './types.js';

/**
 * A device token as logs may show it: its first 6 characters. A full token lets anyone who reads the log
 * push to the device through our credentials' provider account (and identifies the device).
 */
export function shortToken(token: string): string {
  return token.length <= 6 ? '…' : `${token.slice(0, 6)}…`;
}

/**
 * Waits before the 2nd and 3rd try: 3 tries within about 1 s, so a push for a call is either through or
 * given up while the caller still waits (push.wakeTimeout is 20 s by default).
 */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [250, 750];

/** Provider answers that say "not now" rather than "no": throttled, the provider's fault, or not reached. */
export function isRetryable(result: PushResult): boolean {
  return !result.ok && (result.status === 0 || result.status === 429 || result.status >= 500);
}

/**
 * Runs `attempt` until it answers something final or the delays are used up; the last answer is returned
 * as it is (a failure keeps its status and reason for the caller's counters).
 */
export async function withRetries(delaysMs: readonly number[], attempt: () => Promise<PushResult>): Promise<PushResult> {
  let result = await attempt();
  for (const delay of delaysMs) {
    if (!isRetryable(result)) break;
    await new Promise((resolve) => setTimeout(resolve, delay));
    result = await attempt();
  }
  return result;
}

/** The local error of a push that never got an HTTP answer. */
export function unreached(err: unknown): PushResult {
  return { ok: false, status: 0, reason: err instanceof Error ? err.message : String(err) };
}

/**
 * A compact JWS (RFC 7515) over JSON header and claims. ECDSA keys sign in the JOSE form (r ‖ s, RFC 7518
 * §3.4), not DER: APNs refuses a DER signature.
 */
export function signJwt(header: object, claims: object, key: KeyObject): string {
  const input = `${b64json(header)}.${b64json(claims)}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

function b64json(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Certificates to trust besides the system's (tests: the local fake providers' self-signed ones). */
export type TrustedCa = string | Buffer | Array<string | Buffer>;

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * One HTTP(S) request with a body, answered with status and text. `ca` trusts a certificate the system
 * does not (a test provider's self-signed one); fetch() cannot take one without undici's Agent.
 */
export function postText(
  url: URL,
  options: { headers: Record<string, string>; body: string; ca?: TrustedCa | undefined; timeoutMs: number },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const req = send(url, { method: 'POST', headers: { ...options.headers, 'content-length': Buffer.byteLength(options.body) }, ca: options.ca, timeout: options.timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.host} within ${options.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** A JSON body, or undefined when it is not JSON (a proxy's HTML error page). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
