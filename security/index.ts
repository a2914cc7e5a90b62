/**
 * The edge's defences that are policy rather than protocol: banned sources, request-rate flood
 * detection (pike) and password-guessing protection. The stack asks `gate` about every packet before
 * parsing it; the authenticator tells `guard` about every failure. The shell wires them (server/app.ts).
 */
import { BlockList } from 'node:net';
import type { Logger } from '../src/log/index.js';
import { AuthGuard } from './auth-guard.js';
import { BanList } from './ban-list.js';
import { FloodDetector } from './flood-detector.js';

export { AuthGuard, type AuthGuardOptions } from './auth-guard.js';
export { BanList, type Ban, type BanChange, type BanListOptions, type BanReplication } from './ban-list.js';
export { FloodDetector, type FloodDetectorOptions } from './flood-detector.js';

export interface SecurityOptions {
  pike: { enabled: boolean; requests: number; window: number; banSeconds: number };
  authFailures: { perSource: number; window: number; banSeconds: number; perUser: number; userWindow: number };
  /** Never banned: CIDR blocks (config `security.exempt`). */
  exempt: ReadonlyArray<{ address: string; prefix: number; family: 'ipv4' | 'ipv6' }>;
}

export interface SecurityDeps {
  options: SecurityOptions;
  logger: Logger;
  /** Trusted sources and backends (the routing data), asked only when a source crosses a limit. */
  isTrusted?: (address: string) => boolean;
  clock?: () => number;
}

/** What the stack asks before parsing (src/core SourceGate). */
export interface Gate {
  admit(address: string): boolean;
  request(address: string): boolean;
}

export interface Security {
  readonly bans: BanList;
  readonly guard: AuthGuard;
  readonly pike: FloodDetector | undefined;
  readonly gate: Gate;
  stats(): { bans: number; banned: number; refusedTries: number };
}

export function createSecurity(deps: SecurityDeps): Security {
  const { options, logger, clock } = deps;
  // net.BlockList matches an IPv4 address against IPv6 rules too (as ::ffff:a.b.c.d): "::/0" would exempt every
  // IPv4 source. IPv4 sources are checked against the IPv4 blocks only; IPv6 ones against all (a mapped
  // ::ffff:192.0.2.7 is in an exempt 192.0.2.0/24).
  const allow4 = new BlockList();
  const allow = new BlockList();
  for (const c of options.exempt) {
    allow.addSubnet(c.address, c.prefix, c.family);
    if (c.family === 'ipv4') allow4.addSubnet(c.address, c.prefix, 'ipv4');
  }
  const exempt = (address: string): boolean =>
    (deps.isTrusted?.(address) ?? false) || (address.includes(':') ? allow.check(address, 'ipv6') : allow4.check(address, 'ipv4'));
  const bans = new BanList({ logger, clock });
  const pike = options.pike.enabled
    ? new FloodDetector({
      bans, limit: options.pike.requests, windowMs: options.pike.window * 1000, banSeconds: options.pike.banSeconds, exempt, clock,
    })
    : undefined;
  const a = options.authFailures;
  const guard = new AuthGuard({
    bans, sourceFailures: a.perSource, windowMs: a.window * 1000, banSeconds: a.banSeconds, userFailures: a.perUser,
    userWindowMs: a.userWindow * 1000, exempt, logger, clock,
  });
  const gate: Gate = {
    admit: (address) => !bans.isBanned(address),
    request: pike === undefined ? () => true : (address) => pike.hit(address),
  };
  return {
    bans, guard, pike, gate,
    stats: () => ({ bans: bans.size, banned: bans.banned, refusedTries: guard.refused }),
  };
}
export { banRoutes } from './routes.js';
