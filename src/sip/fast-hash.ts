/**
 * Hashing for the per-message paths (digest responses, loop-detection branches, Record-Route flow tokens,
 * nonces). Node's `createHash` / `createHmac` build a native object per call, which the garbage collector
 * must then finalise; under call load that was about 5 % of the proxy's time. `crypto.hash` (Node ≥ 20.12)
 * hashes in one call with no object; on older Node the object API is used, with the same results.
 */
import * as crypto from 'node:crypto';

type Encoding = 'hex' | 'base64url';
type OneShot = (algorithm: string, data: string | Buffer, outputEncoding: Encoding) => string;

const oneShot: OneShot | undefined = typeof (crypto as { hash?: unknown }).hash === 'function'
  ? (crypto as unknown as { hash: OneShot }).hash
  : undefined;

/**
 * The digest of `data` (a string is hashed as UTF-8) with a Node hash algorithm name ('md5', 'sha256',
 * 'sha512-256'…), hex or base64url.
 */
export function digestOf(algorithm: string, data: string | Buffer, encoding: Encoding): string {
  if (oneShot !== undefined) return oneShot(algorithm, data, encoding);
  return crypto.createHash(algorithm).update(data).digest(encoding);
}

/**
 * A keyed MAC over SHA-256 without a native object per call: NMAC (Bellare, Canetti, Krawczyk 1996, the
 * construction HMAC is proven secure through) with two keys derived from the secret by HMAC. Each key is
 * 64 hex characters, exactly one SHA-256 block, so `sha256(key ‖ m)` is SHA-256 started from a secret
 * chaining value, and the outer hash over the inner one stops length extension.
 */
export class KeyedMac {
  private readonly inner: string;
  private readonly outer: string;

  constructor(secret: Buffer) {
    if (!Buffer.isBuffer(secret) || secret.length === 0) throw new TypeError('KeyedMac needs a non-empty secret Buffer');
    this.inner = crypto.createHmac('sha256', secret).update('keyed-mac inner').digest('hex');
    this.outer = crypto.createHmac('sha256', secret).update('keyed-mac outer').digest('hex');
  }

  /** The MAC of `data` (hashed as UTF-8), base64url, 43 characters; callers may keep a prefix. */
  mac(data: string): string {
    return digestOf('sha256', this.outer + digestOf('sha256', this.inner + data, 'hex'), 'base64url');
  }
}

/** Compares two ASCII strings in time that depends only on their length. */
export function equalText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
