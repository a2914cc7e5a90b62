/**
 * What the fake push providers (fake-apns, fake-fcm, fake-webpush) share: a certificate for 127.0.0.1
 * that only the test trusts, and the JWT check the real providers make (signature with the expected key,
 * then the claims, which each fake checks itself).
 */
import { type KeyObject, verify } from 'node:crypto';
import { generate } from 'selfsigned';

export interface TestCertificate {
  /** The PEM certificate: pass it to a client as `ca`. */
  cert: string;
  key: string;
}

/**
 * A self-signed P-256 certificate for 127.0.0.1, made fresh for one fake server. Each fake names itself
 * (`name` is the subject): a client trusting several fakes picks the certificate to check a chain with by
 * subject, and three certificates all named 127.0.0.1 would hide each other.
 */
export async function loopbackCertificate(name: string): Promise<TestCertificate> {
  const pems = await generate([{ name: 'commonName', value: name }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7 as const, ip: '127.0.0.1' }] }],
  });
  return { cert: pems.cert, key: pems.private };
}

export interface CheckedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/**
 * A compact JWS whose signature `key` verifies with the algorithm its header names (ES256 in the JOSE
 * r ‖ s form, RS256), or the reason it is refused.
 */
export function checkJwt(jwt: string, alg: 'ES256' | 'RS256', key: KeyObject): CheckedJwt | { refused: string } {
  const parts = jwt.split('.');
  if (parts.length !== 3) return { refused: 'not a compact JWS' };
  const [h, c, s] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>;
    claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return { refused: 'header or claims are not JSON' };
  }
  if (header.alg !== alg) return { refused: `alg ${String(header.alg)}, expected ${alg}` };
  const signed = verify('sha256', Buffer.from(`${h}.${c}`), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, Buffer.from(s, 'base64url'));
  return signed ? { header, claims } : { refused: 'bad signature' };
}

/** An answer rule for one device token: the status (and reason) to answer, `times` times (default always). */
export interface FakeRule {
  status: number;
  reason?: string;
  times?: number;
}

/** A push answered by a rule instead of being delivered (the device token it was for, and the answer). */
export interface RuledPush {
  token: string;
  status: number;
  reason: string;
}

/** The rule to apply to this push of `token`, if any; a rule used `times` times is dropped. */
export function takeRule(rules: Map<string, FakeRule>, token: string): FakeRule | undefined {
  const rule = rules.get(token);
  if (rule === undefined) return undefined;
  if (rule.times !== undefined) {
    if (rule.times <= 1) rules.delete(token);
    else rules.set(token, { ...rule, times: rule.times - 1 });
  }
  return rule;
}
