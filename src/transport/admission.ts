/**
 * Which TCP/TLS/WS/WSS connections this process keeps: a cap per client address, a cap for the process
 * (the lower of maxConnections and what the file limit leaves room for), and, at the process cap, shedding
 * of unauthenticated connections so that registered phones keep their flows under a connection flood.
 */
import { isIP } from 'node:net';
import { readdirSync } from 'node:fs';
import type { Logger } from '../log/index.js';
import { formatHostPort, normalizeAddress } from './address.js';
import type { HostPort, TransportProtocol } from './types.js';

/** One admitted connection, from TCP accept (or outbound connect) until its socket is gone. */
export interface AdmissionTicket {
  /** The per-address key: the IPv4 address, or the /64 prefix of an IPv6 one; '' for outbound connections. */
  readonly key: string;
  readonly inbound: boolean;
  /** Set by markAuthenticated: a registered phone's flow, never shed. */
  readonly authenticated: boolean;
  /** Ends the connection (the raw socket until it is a flow, then the flow's close). */
  close: (reason: string) => void;
}

interface Ticket extends AdmissionTicket {
  authenticated: boolean;
  released: boolean;
}

export interface AdmissionOptions {
  /** Cap on simultaneous connections of the process, inbound and outbound. */
  maxConnections: number;
  /** Cap on simultaneous inbound connections from one address (IPv6: one /64). */
  maxPerAddress: number;
  /** The soft RLIMIT_NOFILE of the process, when known: the cap leaves room below it (fileReserve). */
  fileLimit: number | undefined;
  log: Logger;
}

/**
 * File descriptors kept out of reach of SIP connections: the UDP and listening sockets, the HTTP server
 * (/health, REST), the store, rtpengine control sockets, log output and cluster channels. 5 % of the limit,
 * at least 128: 896 connections with the common 1,024 soft limit, 19,000 with a 20,000 one.
 */
export function fileReserve(fileLimit: number): number {
  return Math.max(128, Math.ceil(fileLimit * 0.05));
}

/** Warn when connections reach this share of the cap; say so again once they fall below REARM_LEVEL. */
const WARN_LEVEL = 0.8;
const REARM_LEVEL = 0.7;
/** Refusals and evictions come in floods: one line, then at most one more every this many ms (with a count). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

type RefusalKind = 'per-address' | 'limit' | 'shed';

export class ConnectionAdmission {
  /** The cap actually enforced (maxConnections, or less when the file limit is lower). */
  readonly limit: number;
  private readonly maxConnections: number;
  private readonly maxPerAddress: number;
  private readonly fileLimit: number | undefined;
  private readonly log: Logger;
  private total = 0;
  private readonly perKey = new Map<string, number>();
  /** Inbound connections not (yet) authenticated, per key, oldest first: the ones shed under pressure. */
  private readonly sheddable = new Map<string, Set<Ticket>>();
  private warned = false;
  private readonly refusals = new Map<RefusalKind, { last: number; suppressed: number }>();

  constructor(options: AdmissionOptions) {
    this.maxConnections = options.maxConnections;
    this.maxPerAddress = options.maxPerAddress;
    this.fileLimit = options.fileLimit;
    this.log = options.log;
    const byFiles = this.fileLimit === undefined ? Infinity : Math.max(1, this.fileLimit - fileReserve(this.fileLimit));
    this.limit = Math.min(this.maxConnections, byFiles);
  }

  /** Connections counted now (inbound from accept, outbound from connect). */
  get size(): number {
    return this.total;
  }

  /** One start-up line: the limits in force, and which one binds (maxConnections or the file limit). */
  logLimits(): void {
    this.log.info({
      maxConnections: this.maxConnections, maxConnectionsPerIp: this.maxPerAddress, fileLimit: this.fileLimit ?? 'unknown', limit: this.limit,
      limitedBy: this.limit < this.maxConnections ? 'file limit' : 'maxConnections',
    }, 'connection limits');
  }

  /**
   * A new inbound connection from `remote`, before any byte is read: a ticket, or undefined when it must be
   * closed at once. At the process cap it takes the place of the newest unauthenticated connection of the
   * address that holds the most of them; with none to shed, it is refused.
   */
  admitInbound(remote: HostPort, protocol: TransportProtocol, close: (reason: string) => void): AdmissionTicket | undefined {
    const key = addressKey(remote.address);
    const n = this.perKey.get(key) ?? 0;
    if (n >= this.maxPerAddress) {
      this.refused('per-address', { peer: formatHostPort(remote), transport: protocol, connections: n, max: this.maxPerAddress },
        'per-address connection limit reached, refusing connection');
      return undefined;
    }
    if (this.total >= this.limit && !this.shedOne(remote, protocol)) return undefined;
    const ticket: Ticket = { key, inbound: true, authenticated: false, released: false, close };
    this.perKey.set(key, n + 1);
    let set = this.sheddable.get(key);
    if (set === undefined) this.sheddable.set(key, (set = new Set()));
    set.add(ticket);
    this.counted(1);
    return ticket;
  }

  /** An outbound connection we open: counted, never shed; undefined when the cap is reached and nothing can be shed. */
  admitOutbound(remote: HostPort, protocol: TransportProtocol, close: (reason: string) => void): AdmissionTicket | undefined {
    if (this.total >= this.limit && !this.shedOne(remote, protocol)) return undefined;
    const ticket: Ticket = { key: '', inbound: false, authenticated: true, released: false, close };
    this.counted(1);
    return ticket;
  }

  /** The connection has proved it belongs to a registered user: it is shed last (never). */
  markAuthenticated(ticket: AdmissionTicket): void {
    const t = ticket as Ticket;
    if (t.authenticated || t.released) return;
    t.authenticated = true;
    this.dropSheddable(t);
  }

  /** The socket is gone. Idempotent. */
  release(ticket: AdmissionTicket): void {
    const t = ticket as Ticket;
    if (t.released) return;
    t.released = true;
    if (t.inbound) {
      const n = (this.perKey.get(t.key) ?? 1) - 1;
      if (n <= 0) this.perKey.delete(t.key);
      else this.perKey.set(t.key, n);
      this.dropSheddable(t);
    }
    this.counted(-1);
  }

  private dropSheddable(t: Ticket): void {
    const set = this.sheddable.get(t.key);
    if (set === undefined) return;
    set.delete(t);
    if (set.size === 0) this.sheddable.delete(t.key);
  }

  /**
   * Closes the newest unauthenticated connection of the address holding the most of them (a flood from
   * one address sheds itself before anyone else's); false when every connection is authenticated.
   */
  private shedOne(remote: HostPort, protocol: TransportProtocol): boolean {
    let victims: Set<Ticket> | undefined;
    for (const set of this.sheddable.values()) if (victims === undefined || set.size > victims.size) victims = set;
    let victim: Ticket | undefined;
    if (victims !== undefined) for (const t of victims) victim = t; // the newest is the last one added
    if (victim === undefined) {
      this.refused('limit', { peer: formatHostPort(remote), transport: protocol, connections: this.total, limit: this.limit },
        'connection limit reached and every connection is authenticated, refusing connection');
      return false;
    }
    this.refused('shed', { peer: formatHostPort(remote), transport: protocol, connections: this.total, limit: this.limit, shedFrom: victim.key },
      'connection limit reached, closing the newest unauthenticated connection');
    // Counted out now: its socket's close event comes later, and this slot is taken at once.
    this.release(victim);
    victim.close('shed: connection limit reached');
    return true;
  }

  private counted(delta: number): void {
    this.total += delta;
    if (!this.warned && this.total >= Math.ceil(this.limit * WARN_LEVEL)) {
      this.warned = true;
      this.log.warn({
        connections: this.total, limit: this.limit, maxConnections: this.maxConnections, fileLimit: this.fileLimit ?? 'unknown',
        openFiles: openFiles() ?? 'unknown', addresses: this.perKey.size,
      }, this.limit < this.maxConnections ? 'connections near the limit the file limit allows' : 'connections near maxConnections');
    } else if (this.warned && this.total < Math.floor(this.limit * REARM_LEVEL)) {
      this.warned = false;
      this.log.info({ connections: this.total, limit: this.limit }, 'connections back below the warning level');
    }
  }

  private refused(kind: RefusalKind, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const r = this.refusals.get(kind);
    if (r !== undefined && now - r.last < REFUSAL_LOG_INTERVAL_MS) {
      r.suppressed++;
      return;
    }
    this.log.warn({ ...fields, ...(r !== undefined && r.suppressed > 0 ? { sinceLastLine: r.suppressed } : {}) }, msg);
    this.refusals.set(kind, { last: now, suppressed: 0 });
  }
}

/**
 * The address a cap counts by. IPv6: the /64 prefix, since one host can take any address of its /64
 * (RFC 4291 §2.5.1 interface identifiers, RFC 8981 temporary addresses).
 */
export function addressKey(address: string): string {
  const a = normalizeAddress(address);
  if (isIP(a) !== 6) return a;
  const groups = expandIPv6(a);
  return groups === undefined ? a : `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 literal, lower-case hex without leading zeros. */
function expandIPv6(a: string): string[] | undefined {
  let text = a;
  const pct = text.indexOf('%');
  if (pct !== -1) text = text.slice(0, pct);
  // An embedded IPv4 tail (::ffff:1.2.3.4 not mapped, 64:ff9b::1.2.3.4) only touches the last 32 bits.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) text = `${text.slice(0, lastColon + 1)}0:0`;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1]!.split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<string>(Math.max(0, fill)).fill('0'), ...tail];
  if (groups.length !== 8) return undefined;
  return groups.map((g) => (parseInt(g, 16) || 0).toString(16));
}

/** Open file descriptors of this process (Linux), read only when the warning is logged. */
function openFiles(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}
