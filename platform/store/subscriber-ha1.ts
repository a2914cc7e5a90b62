import { computeHA1, utf8ToWire, type DigestAlgorithm } from '../../src/sip/index.js';
import type { Subscriber } from './types.js';

export interface Ha1Set {
  ha1Md5: string;
  ha1Sha256: string;
  ha1Sha512_256: string;
}

/**
 * HA1 for every algorithm a client may pick (RFC 8760), realm = domain. Username, realm and password
 * are Unicode text here and hashed as their UTF-8 octets, as a UTF-8 client hashes them.
 */
export function computeHa1Set(username: string, domain: string, password: string): Ha1Set {
  const u = utf8ToWire(username);
  const r = utf8ToWire(domain);
  const p = utf8ToWire(password);
  return {
    ha1Md5: computeHA1('MD5', u, r, p),
    ha1Sha256: computeHA1('SHA-256', u, r, p),
    ha1Sha512_256: computeHA1('SHA-512-256', u, r, p),
  };
}

/** The stored HA1 a digest algorithm uses; the -sess variants start from the same base HA1 (RFC 7616 §3.4.2). */
export function subscriberHA1(subscriber: Subscriber, algorithm: DigestAlgorithm): string {
  switch (algorithm) {
    case 'MD5':
    case 'MD5-sess':
      return subscriber.ha1Md5;
    case 'SHA-256':
    case 'SHA-256-sess':
      return subscriber.ha1Sha256;
    case 'SHA-512-256':
    case 'SHA-512-256-sess':
      return subscriber.ha1Sha512_256;
  }
}
