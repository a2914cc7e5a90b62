import { isIP } from 'node:net';
import type { HostPort } from './types.js';

/**
 * One spelling per address, so that a connection opened by a peer and a destination the core computed
 * for the same peer meet in the connection table: brackets stripped, IPv6 lower-cased, and IPv4-mapped
 * IPv6 (`::ffff:192.0.2.1`, what a dual-stack `::` socket reports) turned back into IPv4.
 */
export function normalizeAddress(address: string): string {
  let a = unbracket(address);
  if (a.includes(':')) {
    a = a.toLowerCase();
    if (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4) a = a.slice(7);
  }
  return a;
}

/** `[::1]` → `::1`; anything else as it is. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** 6 for an IPv6 literal, else 4 (host names are left to the resolver, which prefers IPv4 here). */
export function addressFamily(address: string): 4 | 6 {
  return isIP(normalizeAddress(address)) === 6 ? 6 : 4;
}

/** `127.0.0.1:5060`, `[::1]:5060`. */
export function formatHostPort(hp: HostPort): string {
  return hp.address.includes(':') ? `[${hp.address}]:${hp.port}` : `${hp.address}:${hp.port}`;
}

/** True for the any-address of either family, which cannot be used as a source address. */
export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '';
}
