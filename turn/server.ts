/**
 * The embedded STUN/TURN server: what a quick start runs when no `turn.servers` are configured, so a phone
 * behind NAT gets a relay with nothing else installed. STUN Binding (RFC 5389) and TURN over UDP (RFC 5766,
 * RFC 6156 address families) with the same rules as the production coturn sample (turn/turnserver.conf):
 * the TURN REST credentials of turn/credentials.ts only, the same denied peer ranges, quotas and max-bps.
 *
 * Not the npm package `node-turn`: unmaintained since 2020 (0.0.6, old log4js/js-yaml), static passwords only
 * (no REST HMAC scheme), no peer deny rules, no quotas.
 *
 * Cost is bounded before authentication: a source that has no allocation costs no memory (the nonce is an HMAC
 * of its time under a per-process key, checked, never stored), datagrams over MAX_DATAGRAM are dropped, and
 * refusals are logged at debug level only. Credentials and keys are never logged.
 *
 * EVEN-PORT gets an even relay port, but its R bit reserves nothing: RESERVATION-TOKEN and DONT-FRAGMENT are
 * answered 420 Unknown Attribute, as RFC 5766 §6.2 allows. No TCP relays (RFC 6062), no TURN over TCP/TLS:
 * browsers relay UDP.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { categoryLogger, type Logger } from '../src/log/index.js';
import { restUser, type TurnCredentials } from './credentials.js';
import {
  Attr, CHANNEL_MAX, CHANNEL_MIN, Method, attr, checkIntegrity, decodeChannelData, decodeStun, decodeXorAddress, encodeChannelData,
  encodeStun, encodeXorAddress, errorCode, longTermKey, u32, type StunAttribute, type StunMessage, type TransportAddress,
} from './stun.js';

/** A CIDR block as the configuration gives it (platform/config parseCidr). */
export interface PeerRange {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

export interface EmbeddedTurnServerOptions {
  listen: TransportAddress;
  /** The address relay sockets bind to (their family is the relay family). */
  relayAddress: string;
  /** Written in XOR-RELAYED-ADDRESS instead of relayAddress: the public address behind 1:1 NAT. */
  externalAddress?: string | undefined;
  relayPorts: { min: number; max: number };
  realm: string;
  credentials: TurnCredentials;
  /** Peers allowed although a denied range holds them. */
  allowedPeers?: readonly PeerRange[];
  /** More denied ranges. */
  deniedPeers?: readonly PeerRange[];
  userQuota: number;
  totalQuota: number;
  /** Bytes per second per allocation and direction; 0: no limit. */
  maxBps: number;
  logger: Logger;
  /** ms since the epoch (tests move time). */
  now?: () => number;
}

export interface TurnServerStats {
  allocations: number;
  permissions: number;
  channels: number;
  /** Payload bytes relayed, both directions. */
  relayedBytes: number;
  /** Requests with an expired or wrong credential (401 after MESSAGE-INTEGRITY was checked). */
  unauthorized: number;
  /** Requests refused after authentication: quota, forbidden peer, no relay port, mismatch. */
  refused: number;
  /** Datagrams dropped: no permission, over max-bps, oversize, not STUN. */
  dropped: number;
}

/** RFC 5766 §6.2 default and our maximum allocation lifetime, seconds. */
const DEFAULT_LIFETIME_S = 600;
const MAX_LIFETIME_S = 3600;
/** RFC 5766 §8: permissions last 300 s; §11: channel bindings 600 s. */
const PERMISSION_S = 300;
const CHANNEL_S = 600;
/** RFC 5389 §10.2 / coturn's stale-nonce=600: nonces older than this get 438. */
const NONCE_LIFE_S = 600;
/** Bigger datagrams are dropped: no media packet is near this, and nothing bigger is parsed. */
const MAX_DATAGRAM = 4096;
/** Relay ports tried per Allocate when the kernel says one is taken by another program. */
const BIND_ATTEMPTS = 16;
const SWEEP_MS = 1000;
const UDP = 17;

/**
 * What turn/turnserver.conf denies: RFC 6890 special-purpose ranges, multicast and above (no-multicast-peers),
 * IPv4-mapped and NAT64 addresses that would reach them around the IPv4 rules. The documentation ranges stay
 * allowed, as in the coturn sample.
 */
const DENIED: ReadonlyArray<[string, number, 'ipv4' | 'ipv6']> = [
  ['0.0.0.0', 8, 'ipv4'], ['10.0.0.0', 8, 'ipv4'], ['100.64.0.0', 10, 'ipv4'], ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.0.0.0', 24, 'ipv4'], ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'], ['224.0.0.0', 3, 'ipv4'],
  ['::', 128, 'ipv6'], ['::1', 128, 'ipv6'], ['64:ff9b::', 96, 'ipv6'], ['64:ff9b:1::', 48, 'ipv6'],
  ['fc00::', 7, 'ipv6'], ['fe80::', 10, 'ipv6'], ['ff00::', 8, 'ipv6'],
];

/**
 * IPv4-mapped IPv6 (::ffff:0:0/96), denied whole as in the coturn sample. Apart: net.BlockList matches an IPv6 rule
 * for this range against every IPv4 address, and its IPv4 rules against the mapped forms.
 */
const MAPPED = new BlockList();
MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** A token bucket of one second's worth of bytes (RFC 5766 §17 leaves the rate limit to the server). */
class Bucket {
  private tokens: number;
  private at: number;

  constructor(private readonly rate: number, now: number) {
    this.tokens = rate;
    this.at = now;
  }

  take(bytes: number, now: number): boolean {
    if (this.rate === 0) return true;
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }
}

interface Allocation {
  client: TransportAddress;
  username: string;
  user: string;
  key: Buffer;
  relayPort: number;
  socket: Socket | undefined;
  expiresAt: number;
  /** The Allocate transaction and its answer, for a retransmission (RFC 5766 §6.2). */
  allocateTid: string;
  allocateAnswer?: Buffer;
  /** Peer IP → expiry (RFC 5766 §8: the port is not part of a permission). */
  permissions: Map<string, number>;
  channels: Map<number, { peer: TransportAddress; expiresAt: number }>;
  /** `ip|port` → channel number. */
  channelOf: Map<string, number>;
  toPeer: Bucket;
  toClient: Bucket;
}

class Refusal {
  constructor(readonly code: number, readonly reason: string, readonly attributes: StunAttribute[] = []) {}
}

const tupleKey = (a: TransportAddress): string => `${a.address}|${a.port}`;

/** The canonical text of an address, so `::ffff:7f00:1` and `0:0:…:ffff:7f00:1` are one permission. */
function canonical(address: string): string {
  return isIP(address) === 6 ? new URL(`http://[${address}]`).hostname.slice(1, -1) : address;
}

/** An IPv4 client seen on a dual-stack IPv6 socket (::ffff:a.b.c.d) is told its IPv4 address. */
function unmapped(client: TransportAddress): TransportAddress {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(client.address);
  return m === null ? client : { address: m[1]!, port: client.port };
}

export class EmbeddedTurnServer {
  private readonly opts: EmbeddedTurnServerOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly nonceKey = randomBytes(32);
  private readonly denied = new BlockList();
  private readonly allowed = new BlockList();
  private readonly family: 'ipv4' | 'ipv6';
  private socket: Socket | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private bound: TransportAddress | undefined;
  /** The server's own addresses: relaying to its listen port there would loop into itself. */
  private ownAddresses = new Set<string>();
  private readonly allocations = new Map<string, Allocation>();
  private readonly perUser = new Map<string, number>();
  private readonly usedPorts = new Set<number>();
  private readonly counters = { relayedBytes: 0, unauthorized: 0, refused: 0, dropped: 0 };
  /** When the last warning about a datagram that made the code throw was logged, and how many were not since. */
  private lastWarn = { at: 0, suppressed: 0 };

  constructor(options: EmbeddedTurnServerOptions) {
    this.opts = options;
    this.log = categoryLogger(options.logger, 'turn.server');
    this.now = options.now ?? Date.now;
    this.family = isIP(options.relayAddress) === 6 ? 'ipv6' : 'ipv4';
    const advertised = options.externalAddress ?? options.relayAddress;
    if (advertised === '0.0.0.0' || advertised === '::') throw new Error('the embedded TURN server needs a relay address peers can reach: set externalAddress when relaying from a wildcard address');
    for (const [address, prefix, family] of DENIED) this.denied.addSubnet(address, prefix, family);
    for (const r of options.deniedPeers ?? []) this.denied.addSubnet(r.address, r.prefix, r.family);
    for (const r of options.allowedPeers ?? []) this.allowed.addSubnet(r.address, r.prefix, r.family);
  }

  /** Binds the listening socket; a taken port or an address not on this host is an error naming it. */
  async start(): Promise<void> {
    if (this.socket !== undefined) throw new Error('the embedded TURN server is already started');
    const { address, port } = this.opts.listen;
    const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => {
        socket.close();
        reject(new Error(`the embedded TURN server cannot listen on udp ${address}:${port}: ${err.message}`));
      });
      // exclusive: in a cluster worker a shared bind is made by the primary and handed to any worker that binds the
      // same address, a rolling restart's successor included; the allocations live in this one process.
      socket.bind({ port, address, exclusive: true }, () => resolve());
    });
    socket.removeAllListeners('error');
    socket.on('error', (err) => this.log.warn({ err: err.message }, 'TURN socket error'));
    socket.on('message', (buf, rinfo) => this.guarded(() => this.onClientDatagram(buf, rinfo), rinfo));
    this.socket = socket;
    this.bound = { address: canonical(socket.address().address), port: socket.address().port };
    const own = [address, this.opts.relayAddress, this.opts.externalAddress ?? address];
    // a wildcard listener is reached on every address of the host
    if (address === '0.0.0.0' || address === '::') for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) own.push(i.address);
    this.ownAddresses = new Set(own.map(canonical));
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
    this.log.info({ listen: `${this.bound.address}:${this.bound.port}`, relay: this.opts.relayAddress, relayPorts: `${this.opts.relayPorts.min}-${this.opts.relayPorts.max}`, realm: this.opts.realm }, 'embedded TURN server listening');
  }

  /** Closes the listener and every relay socket, and stops the timer. */
  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const a of [...this.allocations.values()]) this.free(a);
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  address(): TransportAddress {
    if (this.bound === undefined) throw new Error('the embedded TURN server is not started');
    return { ...this.bound };
  }

  stats(): TurnServerStats {
    let permissions = 0;
    let channels = 0;
    for (const a of this.allocations.values()) {
      permissions += a.permissions.size;
      channels += a.channels.size;
    }
    return { allocations: this.allocations.size, permissions, channels, ...this.counters };
  }

  /** A datagram that makes the code throw costs one log line, never the process. */
  private guarded(handle: () => void, rinfo: RemoteInfo): void {
    try {
      handle();
    } catch (err) {
      this.counters.dropped++;
      // at most one line a minute, however many datagrams do it
      const now = Date.now();
      if (now - this.lastWarn.at < 60_000) {
        this.lastWarn.suppressed++;
        return;
      }
      this.log.warn({ from: `${rinfo.address}:${rinfo.port}`, err: (err as Error).message, suppressed: this.lastWarn.suppressed }, 'TURN datagram dropped');
      this.lastWarn = { at: now, suppressed: 0 };
    }
  }

  // ---- from clients --------------------------------------------------------------------------------

  private onClientDatagram(buf: Buffer, rinfo: RemoteInfo): void {
    // the kernel's text of the address, the same for every datagram of a client: only a key here
    const client = { address: rinfo.address, port: rinfo.port };
    if (buf.length > MAX_DATAGRAM) {
      this.counters.dropped++;
      return;
    }
    // RFC 5766 §11: the first two bits tell STUN (00) from ChannelData (01)
    if ((buf[0]! & 0xc0) === 0x40) {
      this.fromChannel(buf, client);
      return;
    }
    const message = decodeStun(buf);
    if (message === undefined) {
      this.counters.dropped++;
      return;
    }
    if (message.cls === 'indication') {
      if (message.method === Method.Send) this.onSend(message, client);
      return;
    }
    if (message.cls !== 'request') return;
    if (message.method === Method.Binding) {
      this.reply(client, message, 'success', [{ type: Attr.XorMappedAddress, value: encodeXorAddress(unmapped(client), message.transactionId) }]);
      return;
    }
    if (!(Object.values(Method) as number[]).includes(message.method)) {
      this.reply(client, message, 'error', [{ type: Attr.ErrorCode, value: errorCode(400, 'Bad Request') }]);
      return;
    }
    const key = this.authenticate(buf, message, client);
    if (key === undefined) return;
    void this.handle(message, client, key.username, key.key).catch((err: Error) => {
      this.log.warn({ client: `${client.address}:${client.port}`, err: err.message }, 'TURN request failed');
      this.reply(client, message, 'error', [{ type: Attr.ErrorCode, value: errorCode(500, 'Server Error') }], key.key);
    });
  }

  /**
   * Long-term credentials (RFC 5389 §10.2.2) with TURN REST passwords: no MESSAGE-INTEGRITY → 401 with REALM and
   * a fresh NONCE; missing USERNAME/REALM/NONCE → 400; a nonce this process did not make or older than
   * NONCE_LIFE_S → 438 with a new one; an expired or unknown username or a wrong HMAC → 401. undefined: answered.
   */
  private authenticate(buf: Buffer, message: StunMessage, client: TransportAddress): { username: string; key: Buffer } | undefined {
    const challenge = (code: number, reason: string): undefined => {
      this.reply(client, message, 'error', [
        { type: Attr.ErrorCode, value: errorCode(code, reason) },
        { type: Attr.Realm, value: Buffer.from(this.opts.realm, 'utf8') },
        { type: Attr.Nonce, value: Buffer.from(this.nonce(), 'ascii') },
      ]);
      return undefined;
    };
    if (message.integrityAt === undefined) return challenge(401, 'Unauthorized');
    const username = attr(message, Attr.Username)?.toString('utf8');
    const nonce = attr(message, Attr.Nonce)?.toString('ascii');
    if (username === undefined || nonce === undefined || attr(message, Attr.Realm) === undefined) {
      this.reply(client, message, 'error', [{ type: Attr.ErrorCode, value: errorCode(400, 'Bad Request') }]);
      return undefined;
    }
    if (!this.nonceValid(nonce)) return challenge(438, 'Stale Nonce');
    // every secret of a rotation is tried; the key that verifies signs the answer
    let found: Buffer | undefined;
    for (const password of this.opts.credentials.passwords(username, this.now())) {
      const key = longTermKey(username, this.opts.realm, password);
      if (checkIntegrity(buf, message, key)) found = key;
    }
    if (found === undefined) {
      this.counters.unauthorized++;
      this.log.debug({ client: `${client.address}:${client.port}` }, 'TURN request with an expired or wrong credential refused (401)');
      return challenge(401, 'Unauthorized');
    }
    return { username, key: found };
  }

  /** `<seconds hex>.<HMAC-SHA256 of it, 96 bits>`: checked by recomputing, never stored. */
  private nonce(): string {
    const ts = Math.floor(this.now() / 1000).toString(16);
    return `${ts}.${createHmac('sha256', this.nonceKey).update(ts).digest().subarray(0, 12).toString('base64url')}`;
  }

  private nonceValid(nonce: string): boolean {
    const m = /^([0-9a-f]{1,12})\.([A-Za-z0-9_-]{16})$/.exec(nonce);
    if (m === null) return false;
    const expected = createHmac('sha256', this.nonceKey).update(m[1]!).digest().subarray(0, 12);
    if (!timingSafeEqual(expected, Buffer.from(m[2]!, 'base64url'))) return false;
    const age = Math.floor(this.now() / 1000) - parseInt(m[1]!, 16);
    return age >= 0 && age <= NONCE_LIFE_S;
  }

  private async handle(message: StunMessage, client: TransportAddress, username: string, key: Buffer): Promise<void> {
    const existing = this.allocations.get(tupleKey(client));
    try {
      // RFC 5389 §7.3.1: comprehension-required attributes we do not know (EVEN-PORT, RESERVATION-TOKEN, DONT-FRAGMENT …)
      const unknown = message.attributes.map((a) => a.type).filter((t) => t < 0x8000 && !(Object.values(Attr) as number[]).includes(t));
      if (unknown.length > 0) {
        const list = Buffer.alloc(unknown.length * 2);
        unknown.forEach((t, i) => list.writeUInt16BE(t, i * 2));
        throw new Refusal(420, `Unknown Attribute ${unknown.map((t) => `0x${t.toString(16)}`).join(' ')}`, [{ type: Attr.UnknownAttributes, value: list }]);
      }
      if (message.method === Method.Allocate) {
        await this.allocate(message, client, username, key, existing);
        return;
      }
      if (existing === undefined) throw new Refusal(437, 'Allocation Mismatch');
      // RFC 5766 §6.2: later requests on an allocation must use the credential that made it
      if (existing.username !== username) throw new Refusal(441, 'Wrong Credentials');
      const answer = message.method === Method.Refresh ? this.refresh(message, existing)
        : message.method === Method.CreatePermission ? this.createPermission(message, existing)
          : message.method === Method.ChannelBind ? this.channelBind(message, existing)
            : undefined;
      if (answer === undefined) throw new Refusal(400, 'Bad Request');
      this.reply(client, message, 'success', answer, key);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.counters.refused++;
      this.log.debug({ client: `${client.address}:${client.port}`, method: message.method, code: err.code }, `TURN request refused: ${err.reason}`);
      this.reply(client, message, 'error', [{ type: Attr.ErrorCode, value: errorCode(err.code, err.reason) }, ...err.attributes], key);
    }
  }

  /** RFC 5766 §6.2. */
  private async allocate(message: StunMessage, client: TransportAddress, username: string, key: Buffer, existing: Allocation | undefined): Promise<void> {
    const tid = message.transactionId.toString('hex');
    if (existing !== undefined) {
      if (existing.allocateTid !== tid) throw new Refusal(437, 'Allocation Mismatch');
      // a retransmission: the same answer, or nothing while the relay socket is being bound
      if (existing.allocateAnswer !== undefined) this.socket?.send(existing.allocateAnswer, client.port, client.address);
      return;
    }
    const transport = attr(message, Attr.RequestedTransport);
    if (transport === undefined || transport.length !== 4) throw new Refusal(400, 'Bad Request');
    if (transport[0] !== UDP) throw new Refusal(442, 'Unsupported Transport Protocol');
    const family = attr(message, Attr.RequestedAddressFamily);
    if (family !== undefined && family[0] !== (this.family === 'ipv4' ? 0x01 : 0x02)) throw new Refusal(440, 'Address Family not Supported');
    const user = restUser(username) ?? username;
    if ((this.perUser.get(user) ?? 0) >= this.opts.userQuota || this.allocations.size >= this.opts.totalQuota) throw new Refusal(486, 'Allocation Quota Reached');
    const now = this.now();
    const allocation: Allocation = {
      client, username, user, key, relayPort: 0, socket: undefined, expiresAt: now + lifetime(message) * 1000, allocateTid: tid,
      permissions: new Map(), channels: new Map(), channelOf: new Map(),
      toPeer: new Bucket(this.opts.maxBps, now), toClient: new Bucket(this.opts.maxBps, now),
    };
    // counted at once: retransmissions and the quota see it while its socket is bound
    this.allocations.set(tupleKey(client), allocation);
    this.perUser.set(user, (this.perUser.get(user) ?? 0) + 1);
    const socket = await this.bindRelay(allocation, attr(message, Attr.EvenPort) !== undefined);
    if (socket === undefined) {
      this.free(allocation);
      throw new Refusal(508, 'Insufficient Capacity');
    }
    if (this.allocations.get(tupleKey(client)) !== allocation) {
      socket.close(); // stopped meanwhile
      this.usedPorts.delete(allocation.relayPort);
      return;
    }
    allocation.socket = socket;
    socket.on('message', (buf, rinfo) => this.guarded(() => this.fromPeer(allocation, buf, rinfo), rinfo));
    const relayed = { address: this.opts.externalAddress ?? this.opts.relayAddress, port: allocation.relayPort };
    allocation.allocateAnswer = this.reply(client, message, 'success', [
      { type: Attr.XorRelayedAddress, value: encodeXorAddress(relayed, message.transactionId) },
      { type: Attr.XorMappedAddress, value: encodeXorAddress(unmapped(client), message.transactionId) },
      { type: Attr.Lifetime, value: u32((allocation.expiresAt - now) / 1000) },
    ], key);
    this.log.debug({ client: `${client.address}:${client.port}`, relayPort: allocation.relayPort, allocations: this.allocations.size }, 'TURN allocation created');
  }

  /** A free port of the range (an even one for EVEN-PORT), from a random start so allocations do not predictably reuse a port. */
  private async bindRelay(allocation: Allocation, even: boolean): Promise<Socket | undefined> {
    const { min, max } = this.opts.relayPorts;
    const size = max - min + 1;
    const start = Math.floor(Math.random() * size);
    let attempts = 0;
    for (let i = 0; i < size && attempts < BIND_ATTEMPTS; i++) {
      const port = min + ((start + i) % size);
      if (this.usedPorts.has(port) || (even && port % 2 === 1)) continue;
      attempts++;
      this.usedPorts.add(port);
      const socket = createSocket(this.family === 'ipv6' ? 'udp6' : 'udp4');
      const ok = await new Promise<boolean>((resolve) => {
        socket.once('error', () => resolve(false));
        socket.bind({ port, address: this.opts.relayAddress, exclusive: true }, () => resolve(true));
      });
      if (ok) {
        socket.removeAllListeners('error');
        socket.on('error', (err) => this.log.debug({ relayPort: port, err: err.message }, 'TURN relay socket error'));
        allocation.relayPort = port;
        return socket;
      }
      this.usedPorts.delete(port);
      socket.close();
    }
    return undefined;
  }

  /** RFC 5766 §7.2: LIFETIME 0 deletes the allocation. */
  private refresh(message: StunMessage, allocation: Allocation): StunAttribute[] {
    const requested = attr(message, Attr.Lifetime);
    if (requested !== undefined && requested.length === 4 && requested.readUInt32BE(0) === 0) {
      this.free(allocation);
      return [{ type: Attr.Lifetime, value: u32(0) }];
    }
    const seconds = lifetime(message);
    allocation.expiresAt = this.now() + seconds * 1000;
    return [{ type: Attr.Lifetime, value: u32(seconds) }];
  }

  /** RFC 5766 §9.2: every XOR-PEER-ADDRESS must be allowed, else none is installed. */
  private createPermission(message: StunMessage, allocation: Allocation): StunAttribute[] {
    const peers = message.attributes.filter((a) => a.type === Attr.XorPeerAddress).map((a) => this.peerOf(a.value, message));
    if (peers.length === 0) throw new Refusal(400, 'Bad Request');
    const until = this.now() + PERMISSION_S * 1000;
    for (const peer of peers) allocation.permissions.set(peer.address, until);
    return [];
  }

  /** RFC 5766 §11.2: a channel binds one peer transport address; rebinding either to another is a 400. */
  private channelBind(message: StunMessage, allocation: Allocation): StunAttribute[] {
    const number = attr(message, Attr.ChannelNumber);
    const peerValue = attr(message, Attr.XorPeerAddress);
    if (number === undefined || number.length !== 4 || peerValue === undefined) throw new Refusal(400, 'Bad Request');
    const channel = number.readUInt16BE(0);
    if (channel < CHANNEL_MIN || channel > CHANNEL_MAX) throw new Refusal(400, 'Bad Request');
    const peer = this.peerOf(peerValue, message);
    if (peer.port === 0) throw new Refusal(400, 'Bad Request');
    if (this.ownAddresses.has(peer.address) && peer.port === this.bound?.port) throw new Refusal(403, 'Forbidden');
    const bound = allocation.channels.get(channel);
    const boundChannel = allocation.channelOf.get(tupleKey(peer));
    if ((bound !== undefined && tupleKey(bound.peer) !== tupleKey(peer)) || (boundChannel !== undefined && boundChannel !== channel)) throw new Refusal(400, 'Bad Request');
    const now = this.now();
    allocation.channels.set(channel, { peer, expiresAt: now + CHANNEL_S * 1000 });
    allocation.channelOf.set(tupleKey(peer), channel);
    allocation.permissions.set(peer.address, now + PERMISSION_S * 1000);
    return [];
  }

  /**
   * A peer address the relay may reach: 400 when unreadable, 403 in a denied range (whatever the relay's family:
   * ::ffff:127.0.0.1 is forbidden, not merely of the other family), 443 in the other family (RFC 6156 §6.1).
   */
  private peerOf(value: Buffer, message: StunMessage): TransportAddress {
    const peer = decodeXorAddress(value, message.transactionId);
    if (peer === undefined) throw new Refusal(400, 'Bad Request');
    const family = isIP(peer.address) === 4 ? 'ipv4' : 'ipv6';
    const denied = this.denied.check(peer.address, family) || (family === 'ipv6' && MAPPED.check(peer.address, 'ipv6'));
    if (denied && !this.allowed.check(peer.address, family)) throw new Refusal(403, 'Forbidden');
    if (family !== this.family) throw new Refusal(443, 'Peer Address Family Mismatch');
    return { address: canonical(peer.address), port: peer.port };
  }

  // ---- data ------------------------------------------------------------------------------------------

  /** RFC 5766 §10.2: a Send indication without a permission for the peer is dropped silently. */
  private onSend(message: StunMessage, client: TransportAddress): void {
    const allocation = this.allocations.get(tupleKey(client));
    const peerValue = attr(message, Attr.XorPeerAddress);
    const data = attr(message, Attr.Data);
    const peer = peerValue === undefined ? undefined : decodeXorAddress(peerValue, message.transactionId);
    if (allocation === undefined || peer === undefined || data === undefined) {
      this.counters.dropped++;
      return;
    }
    this.toPeer(allocation, { address: canonical(peer.address), port: peer.port }, data);
  }

  /** RFC 5766 §11.6: ChannelData on an unbound channel is dropped. */
  private fromChannel(buf: Buffer, client: TransportAddress): void {
    const allocation = this.allocations.get(tupleKey(client));
    const frame = decodeChannelData(buf);
    const binding = frame === undefined ? undefined : allocation?.channels.get(frame.channel);
    if (allocation === undefined || binding === undefined) {
      this.counters.dropped++;
      return;
    }
    this.toPeer(allocation, binding.peer, frame!.data);
  }

  private toPeer(allocation: Allocation, peer: TransportAddress, data: Buffer): void {
    const now = this.now();
    const permitted = (allocation.permissions.get(peer.address) ?? 0) > now;
    // the listen port on our own address would loop a relayed packet back in as a client request
    const loop = this.ownAddresses.has(peer.address) && peer.port === this.bound?.port;
    if (!permitted || loop || peer.port === 0 || allocation.socket === undefined || !allocation.toPeer.take(data.length, now)) {
      this.counters.dropped++;
      return;
    }
    this.counters.relayedBytes += data.length;
    allocation.socket.send(data, peer.port, peer.address);
  }

  /** RFC 5766 §10.3, §11.5: ChannelData when the peer has a channel, else a Data indication; no permission: dropped. */
  private fromPeer(allocation: Allocation, data: Buffer, rinfo: RemoteInfo): void {
    const now = this.now();
    const peer = { address: canonical(rinfo.address), port: rinfo.port };
    if (data.length > MAX_DATAGRAM || (allocation.permissions.get(peer.address) ?? 0) <= now || !allocation.toClient.take(data.length, now)) {
      this.counters.dropped++;
      return;
    }
    const channel = allocation.channelOf.get(tupleKey(peer));
    let packet: Buffer;
    if (channel !== undefined) {
      packet = encodeChannelData(channel, data);
    } else {
      const transactionId = randomBytes(12);
      packet = encodeStun({ method: Method.Data, cls: 'indication', transactionId, attributes: [
        { type: Attr.XorPeerAddress, value: encodeXorAddress(peer, transactionId) },
        { type: Attr.Data, value: data },
      ] });
    }
    this.counters.relayedBytes += data.length;
    this.socket?.send(packet, allocation.client.port, allocation.client.address);
  }

  // ---- upkeep ----------------------------------------------------------------------------------------

  /** Responses carry FINGERPRINT, and MESSAGE-INTEGRITY with the request's key once it verified (RFC 5389 §10.2.2). */
  private reply(client: TransportAddress, request: StunMessage, cls: 'success' | 'error', attributes: StunAttribute[], key?: Buffer): Buffer {
    const packet = encodeStun({ method: request.method, cls, transactionId: request.transactionId, attributes }, key);
    this.socket?.send(packet, client.port, client.address);
    return packet;
  }

  /** Expired allocations, permissions and channels (RFC 5766 §5, §8, §11). */
  private sweep(): void {
    const now = this.now();
    for (const a of [...this.allocations.values()]) {
      if (a.expiresAt <= now) {
        this.log.debug({ client: `${a.client.address}:${a.client.port}`, relayPort: a.relayPort }, 'TURN allocation expired');
        this.free(a);
        continue;
      }
      for (const [ip, until] of a.permissions) if (until <= now) a.permissions.delete(ip);
      for (const [channel, binding] of a.channels) {
        if (binding.expiresAt > now) continue;
        a.channels.delete(channel);
        a.channelOf.delete(tupleKey(binding.peer));
      }
    }
  }

  private free(allocation: Allocation): void {
    const key = tupleKey(allocation.client);
    if (this.allocations.get(key) !== allocation) return;
    this.allocations.delete(key);
    const left = (this.perUser.get(allocation.user) ?? 1) - 1;
    if (left === 0) this.perUser.delete(allocation.user);
    else this.perUser.set(allocation.user, left);
    if (allocation.socket !== undefined) {
      allocation.socket.close();
      allocation.socket = undefined;
    }
    if (allocation.relayPort !== 0) this.usedPorts.delete(allocation.relayPort);
  }
}

/** RFC 5766 §6.2, §7.2: the requested LIFETIME capped at the maximum, never below the default. */
function lifetime(message: StunMessage): number {
  const value = attr(message, Attr.Lifetime);
  const requested = value !== undefined && value.length === 4 ? value.readUInt32BE(0) : DEFAULT_LIFETIME_S;
  return Math.max(DEFAULT_LIFETIME_S, Math.min(requested, MAX_LIFETIME_S));
}
