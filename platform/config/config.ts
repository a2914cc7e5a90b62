/**
 * The one typed configuration: a YAML file plus SOFTSWITCH_* environment variables, validated at start.
 * A wrong value stops the start with the key, the value and the reason (ConfigError).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { ListenSpec, TransportProtocol } from '../../src/transport/types.js';

const PROTOCOLS: readonly TransportProtocol[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export class ConfigError extends Error {
  readonly code = 'CONFIG_ERR_INVALID';
  readonly key: string;
  readonly value: unknown;
  constructor(key: string, value: unknown, reason: string) {
    super(`configuration key ${key}: ${JSON.stringify(value)} is not valid: ${reason}`);
    this.name = 'ConfigError';
    this.key = key;
    this.value = value;
  }
}

/** `proto:address:port`, IPv6 in brackets: `udp:127.0.0.1:5060`, `wss:[::1]:8443`. */
export function parseListen(text: string): ListenSpec {
  const m = /^([a-z]+):(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new Error('expected proto:address:port, e.g. udp:127.0.0.1:5060 or wss:[::1]:8443');
  const protocol = m[1] as TransportProtocol;
  if (!PROTOCOLS.includes(protocol)) throw new Error(`unknown transport "${m[1]}" (expected ${PROTOCOLS.join(', ')})`);
  const address = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  if (isIP(address) === 0) throw new Error(`"${address}" is not an IP address`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is over 65535`);
  return { protocol, address, port };
}

/** `192.0.2.0/24`, `2001:db8::/32` or one address. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', bits, extra] = text.trim().split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) throw new Error('expected an IP address or a CIDR block such as 192.0.2.0/24');
  const max = version === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
    throw new Error(`prefix length must be 0–${max}`);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** A string read by `parse`; what it throws is the key's error message. */
function parsedString<T>(parse: (text: string) => T) {
  return z.string().transform((s, ctx) => {
    try {
      return parse(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
}

/** True for a web origin as a browser sends it in Origin (RFC 6454 §6.1): `http(s)://host[:port]`, nothing more. */
function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === text;
  } catch {
    return false;
  }
}

/** True for `redis://host…` or `rediss://host…` (what ioredis connects to). */
function isRedisUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const cidrSchema = parsedString(parseCidr);
const listenSchema = parsedString(parseListen);

const hostname = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)$/, 'must be a host name or IP address');

const schema = z.strictObject({
  sip: z.strictObject({
    /** Sockets to listen on. */
    listen: z.array(listenSchema).min(1).default([
      'udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060', 'tls:0.0.0.0:5061', 'ws:0.0.0.0:8080', 'wss:0.0.0.0:8443',
    ].map((s) => parseListen(s))),
    /** Host (name or IP) written in Via and Record-Route when a listener is bound to 0.0.0.0 / ::. Default: the machine's first non-loopback IPv4. */
    advertise: hostname.optional(),
    /** The domains this softswitch serves (registrar and proxy for them; everything else is foreign). */
    domain: z.array(hostname).min(1).default(['localhost']),
    /** Largest SIP message accepted, bytes (80 KiB: a 64 KiB chat MESSAGE body and its headers fit). */
    maxMessageSize: z.number().int().min(1500).max(1_048_576).default(81920),
    /** Cap on simultaneous TCP/TLS/WS/WSS connections per process. */
    maxConnections: z.number().int().min(1).max(1_000_000).default(20000),
    /** Close a stream connection after this long without any traffic, seconds. */
    idleTimeout: z.number().int().min(10).default(600),
    /**
     * Cap on simultaneous TCP/TLS/WS/WSS connections from one client address (an IPv6 client: its /64), per
     * process (each worker counts its own). 1000: an office NAT puts every desk phone and browser tab of a
     * site behind one address, and a site of a thousand seats still fits; one address can then take at
     * most a twentieth of a 20,000-connection process. Raise it for bigger sites behind one NAT.
     */
    maxConnectionsPerIp: z.number().int().min(1).max(1_000_000).default(1000),
    /**
     * A SIP message on a TCP/TLS connection must be complete this many seconds after its first byte, and
     * a new TCP/TLS/WS/WSS connection must bring its first message within this many seconds (OpenSIPS
     * tcp_max_msg_time is 4). 10: a 64 KB message takes 8 s at 64 kbit/s, the slowest link a phone
     * registers over; a client that dribbles bytes or says nothing holds a connection 10 s at most.
     */
    messageTimeout: z.number().min(1).max(120).default(10),
    /**
     * From TCP accept to a completed TLS handshake (TLS, WSS) or WebSocket upgrade (WS, WSS), seconds.
     * 10: a handshake is two or three round trips, under a second even on a poor mobile link with a
     * retransmission or two (Node's own default of 120 s lets a silent client hold a socket for minutes).
     */
    handshakeTimeout: z.number().min(1).max(120).default(10),
    /** Server / User-Agent header value; empty to send none. */
    serverHeader: z.string().default('softswitch'),
  }).prefault({}),
  /**
   * What one request may cost before anyone knows who sent it (hardening: memory from one source). Each is
   * checked while the message is parsed or in the checks every request passes; a request over a limit is
   * answered statelessly (513, 413 or 400 with the reason) and never reaches a transaction.
   */
  limits: z.strictObject({
    /**
     * Largest message per transport, bytes (sip.maxMessageSize stays the ceiling over all of them).
     * UDP 16 KiB: desk phones send 1.5–4 KB INVITEs, 6–8 KB with video SDP; a datagram of 12+ IP fragments
     * rarely survives the path anyway (RFC 3261 §18.1.1 moves large requests to TCP). Streams and
     * WebSockets 80 KiB: WebRTC INVITEs over WSS carry 5–15 KB of SDP, up to ~30 KB with many ICE
     * candidates and simulcast, and a chat MESSAGE up to messaging.maxBodySize (64 KiB) plus its headers
     * (RFC 3428 §8: large MESSAGEs go over congestion-controlled transports, so UDP keeps 16 KiB).
     */
    maxMessageSize: z.strictObject({
      udp: z.number().int().min(1500).max(1_048_576).default(16384),
      tcp: z.number().int().min(1500).max(1_048_576).default(81920),
      tls: z.number().int().min(1500).max(1_048_576).default(81920),
      ws: z.number().int().min(1500).max(1_048_576).default(81920),
      wss: z.number().int().min(1500).max(1_048_576).default(81920),
    }).prefault({}),
    /** Header fields (lines) per message: a phone's INVITE has 15–30, a few proxies add a Via and a Record-Route each. */
    maxHeaders: z.number().int().min(20).max(10000).default(128),
    /** Contact values per request: an INVITE has one, a REGISTER of a multi-line phone a handful. */
    maxContacts: z.number().int().min(1).max(10000).default(16),
    /**
     * Via values per request: one per hop, and a request cannot have made more hops than the Max-Forwards
     * of 70 a UA starts with (RFC 3261 §8.1.1.6); RFC 4475's longreq carries 34.
     */
    maxVias: z.number().int().min(2).max(10000).default(70),
    /** Route and Record-Route values per request (each counted on its own): one per proxy on the path. */
    maxRoutes: z.number().int().min(2).max(10000).default(32),
    /**
     * Body octets of a request whose method carries no body in practice (REGISTER, OPTIONS, BYE, CANCEL,
     * SUBSCRIBE, REFER): 413 above this. 4 KiB leaves room for the odd vendor XML.
     */
    maxBodyWithoutNeed: z.number().int().min(0).max(1_048_576).default(4096),
    /**
     * Bytes of requests and responses held by server transactions (per process/worker). Over it, a new
     * request outside a dialog gets a stateless 503 with Retry-After before any transaction is created.
     * 128 MiB: 1,000 calls/s with their transactions held 32 s (Timer H/L) need about a third of it, since a
     * transaction keeps only the routing headers of its request once it has answered.
     */
    transactionMemory: z.number().int().min(1_048_576).max(17_179_869_184).default(134_217_728),
    /**
     * User-Agent substrings (case-insensitive) of SIP scanners: their requests are dropped without an
     * answer and before a transaction, counted in the stats, and logged once per source per minute. [] turns it off.
     */
    scannerUserAgents: z.array(z.string().min(2)).default([
      'friendly-scanner', 'sipvicious', 'sipcli', 'VaxSIPUserAgent', 'sip-scan', 'iWar', 'SIVuS', 'sundayddr', 'smap', 'pplsip',
    ]),
  }).prefault({}),
  tls: z.strictObject({
    /** PEM certificate chain file for TLS and WSS; a self-signed one is generated under dataDir when unset. */
    cert: z.string().optional(),
    key: z.string().optional(),
  }).prefault({}),
  auth: z.strictObject({
    /**
     * Digest challenges offered, in this order. MD5 alone by default: it is the one order every client
     * handles — SIP.js 0.21 and JsSIP 3.x keep only the LAST challenge of a response and support only MD5,
     * while SIPp 3.6 (and many desk phones) answer only the FIRST and abort on anything but MD5. With
     * [SHA-256, MD5], RFC 8760 clients use SHA-256 and SIP.js/JsSIP still find MD5 last.
     */
    algorithms: z.array(z.enum(['MD5', 'SHA-256'])).min(1).default(['MD5']),
    /**
     * Accept RFC 2069 digest answers without qop. Off: without a nonce-count nothing but the nonce's age
     * stops a replay. On: every nonce answered without qop is accepted once.
     */
    allowNoQop: z.boolean().default(false),
    /** Seconds a nonce is accepted (then stale=true) for requests other than REGISTER. */
    nonceTtl: z.number().int().min(5).max(3600).default(300),
    /** Seconds a nonce is accepted for REGISTER, which answers its challenge at once. */
    registerNonceTtl: z.number().int().min(5).max(3600).default(30),
  }).prefault({}),
  security: z.strictObject({
    /**
     * Kamailio/OpenSIPS pike: more than `requests` requests from one source address within `window`
     * seconds ban it for `banSeconds`; its packets are then dropped before they are parsed. Trusted
     * sources, backends and `security.exempt` are never banned. Counted per worker process.
     */
    pike: z.strictObject({
      enabled: z.boolean().default(true),
      requests: z.number().int().min(1).max(1_000_000).default(30),
      window: z.number().min(0.1).max(3600).default(2),
      banSeconds: z.number().int().min(1).max(31_536_000).default(120),
    }).prefault({}),
    /**
     * Password guessing: `perSource` failed authentications from one address within `window` seconds ban
     * it for `banSeconds`; a user with `perUser` failures within `userWindow` seconds gives every source
     * that already failed for it no further try until the window ends (other sources, the real user's
     * phones, go on).
     */
    authFailures: z.strictObject({
      perSource: z.number().int().min(1).max(100_000).default(10),
      window: z.number().int().min(1).max(86_400).default(60),
      banSeconds: z.number().int().min(1).max(31_536_000).default(600),
      perUser: z.number().int().min(1).max(100_000).default(20),
      userWindow: z.number().int().min(1).max(86_400).default(300),
    }).prefault({}),
    /**
     * Addresses or CIDR blocks never banned (an office NAT, a monitoring host); trusted sources and
     * backends already are. Loopback by default: a process on this machine (a local FreeSWITCH, a
     * monitor, the benchmarks) is no remote flood, and the kernel never accepts 127.0.0.0/8 or ::1 from
     * a network interface. Setting the key replaces the default.
     */
    exempt: z.array(cidrSchema).default([parseCidr('127.0.0.1'), parseCidr('::1')]),
  }).prefault({}),
  registrar: z.strictObject({
    /**
     * local: the softswitch is the registrar (embedded default). mirror / contact-throttle / aor-throttle:
     * the mid-registrar forwards REGISTERs to a backend of `backendSet` (OpenSIPS mid_registrar modes).
     */
    mode: z.enum(['local', 'mirror', 'contact-throttle', 'aor-throttle']).default('local'),
    /** The load balancer's backend set REGISTERs go to (mid-registrar modes). */
    backendSet: z.string().min(1).default('freeswitch'),
    /** Expiry sent to the backend in the throttle modes, seconds (OpenSIPS outgoing_expires). */
    outgoingExpires: z.number().int().min(60).max(86400).default(3600),
    /** true: digest-authenticate REGISTERs at the softswitch; false: let the backend challenge them. */
    localAuth: z.boolean().default(true),
  }).prefault({}),
  balancer: z.strictObject({
    /** OPTIONS probe of every enabled backend this often, seconds. */
    probeInterval: z.number().min(0.2).max(3600).default(10),
    /** How long a probe waits for its answer, seconds. */
    probeTimeout: z.number().min(0.1).max(30).default(2),
    /** Consecutive failures (probes, or timeouts/503 of real requests) that take a backend out. */
    failureThreshold: z.number().int().min(1).max(100).default(3),
    /** Consecutive probe answers that bring it back. */
    recoveryThreshold: z.number().int().min(1).max(100).default(2),
    /**
     * A request sent to a backend that has answered nothing at all (not even 100 Trying) after this many
     * seconds goes to the next backend of its set (Kamailio's fr_timer). 100 Trying comes back within
     * milliseconds from a live FreeSWITCH, so a few seconds only ever catch a dead one.
     */
    failoverTimeout: z.number().min(0.2).max(32).default(3),
    /** Re-read backends, routes, DIDs and trusted sources from the store this often, seconds; 0: only on `softswitch reload`. */
    reloadInterval: z.number().min(0).max(86400).default(10),
  }).prefault({}),
  proxy: z.strictObject({
    /**
     * Topology hiding towards every peer that is not a trusted source or backend: the Contact, the
     * Record-Route and the Via values of the backend pool never reach a phone (its Contact becomes a URI of
     * ours carrying the original sealed with the Record-Route secret). Off by default: it changes what
     * phones see and costs an AES-GCM seal per dialog; turn it on where backends have internal addresses.
     */
    topologyHiding: z.boolean().default(false),
  }).prefault({}),
  routing: z.strictObject({
    /**
     * Unset (default): calls between users of ours stay on the softswitch. A backend set name: they go
     * through that set (FreeSWITCH features such as voicemail), which calls the callee back.
     */
    userToUserVia: z.string().min(1).optional(),
  }).prefault({}),
  media: z.strictObject({
    /**
     * rtpengine control sockets (ng protocol), `udp:host:port` with an optional `;weight=N`. Empty: no
     * relay — WebRTC ⇄ WebRTC calls keep their media end to end, calls that need bridging get 488.
     */
    rtpengine: z.array(z.string().regex(/^(udp6?:)?(\[[0-9a-fA-F:.]+\]|[^:;\s]+):\d{1,5}(;weight=\d+)?$/, 'expected udp:host:port or udp:host:port;weight=N')).default([]),
    /** Relay every call's media through rtpengine, even between two WebRTC (or two plain) legs. */
    alwaysRelay: z.boolean().default(false),
  }).prefault({}),
  dialog: z.strictObject({
    /**
     * A call still up this many seconds after its INVITE is ended by the server (no BYE came: a phone that
     * lost its network, a backend that crashed): its media is released, its backend count goes down and
     * its record is written with end cause `timeout`. 4 h by default; Kamailio's dialog module uses 12 h.
     */
    maxDuration: z.number().int().min(1).max(7 * 86400).default(4 * 3600),
  }).prefault({}),
  history: z.strictObject({
    /** Write one call record (CDR) per ended call to the store: GET /v1/calls, `softswitch calls list`. */
    enabled: z.boolean().default(true),
    /**
     * Records waiting for the store, at most; beyond it (a long store outage) they go to a spill file in
     * dataDir that is replayed when the store is back: none is lost.
     */
    queueLimit: z.number().int().min(1).max(1_000_000).default(10_000),
  }).prefault({}),
  /**
   * Push call server (RFC 8599): wakes sleeping mobile and browser softphones for calls and messages.
   * APNs and FCM are used once their credentials are set; Web Push always (its VAPID keys are generated).
   */
  push: z.strictObject({
    enabled: z.boolean().default(true),
    /** Seconds a held INVITE waits for a woken device to register before the caller gets 480. */
    wakeTimeout: z.number().int().min(1).max(120).default(20),
    /** Send 180 Ringing while devices are being woken (the caller hears ringback instead of silence). */
    ringingWhileWaking: z.boolean().default(true),
    /** Put a message's text in its push; off, a push names only the sender (push services see what they carry). */
    includeContent: z.boolean().default(false),
    /**
     * A PEM file of certificate authorities to trust for the push endpoints besides the system's: a staging
     * APNs/FCM behind a private CA, or the local ones of the tests. Unset: the system's only.
     */
    caFile: z.string().min(1).optional(),
    /** APNs token authentication: all four of keyFile, keyId, teamId, bundleId, or none. */
    apns: z.strictObject({
      /** The .p8 key file from the Apple developer account. */
      keyFile: z.string().min(1).optional(),
      keyId: z.string().regex(/^[A-Z0-9]{10}$/, 'must be the 10-character key id Apple shows').optional(),
      teamId: z.string().regex(/^[A-Z0-9]{10}$/, 'must be the 10-character team id Apple shows').optional(),
      /** The iOS app's bundle id; VoIP pushes go to topic `<bundleId>.voip`. */
      bundleId: z.string().regex(/^[A-Za-z0-9.-]+$/, 'must be a bundle id such as com.example.phone').optional(),
      /** https://api.push.apple.com, or https://api.sandbox.push.apple.com for development builds. */
      endpoint: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }).default('https://api.push.apple.com'),
    }).prefault({}),
    fcm: z.strictObject({
      /** The Firebase service account key JSON (its token_uri is where access tokens come from). */
      serviceAccountFile: z.string().min(1).optional(),
      endpoint: z.url({ protocol: /^https$/, error: 'must be an https:// URL' }).default('https://fcm.googleapis.com'),
    }).prefault({}),
    webpush: z.strictObject({
      /** VAPID key pair (base64url, as `web-push generate-vapid-keys` prints); unset: generated into dataDir/push/vapid.json. */
      publicKey: z.string().regex(/^[A-Za-z0-9_-]{87}$/, 'must be a base64url P-256 public key (87 characters)').optional(),
      privateKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url P-256 private key (43 characters)').optional(),
      /** Contact the push services may use (mailto: or https:); unset: mailto:admin@<first sip.domain>. */
      subject: z.string().regex(/^(mailto:|https:\/\/)\S+$/, 'must be a mailto: or https:// URL').optional(),
    }).prefault({}),
  }).prefault({}),
  /** Chat (SIP MESSAGE, RFC 3428, and /v1/conversations): one-to-one and groups, offline delivery, receipts. */
  messaging: z.strictObject({
    enabled: z.boolean().default(true),
    /** Largest message body in bytes (413 above it); RFC 3428 §7 asks for no more than what fits a UDP datagram only for UDP. */
    maxBodySize: z.number().int().min(256).max(1_048_576).default(65_536),
    /** Messages one user may send per minute, all conversations together (beyond it: 503 with Retry-After, HTTP 429). */
    ratePerMinute: z.number().int().min(1).max(100_000).default(120),
    /** Messages one user may send to one recipient (or group) per 10 seconds: flood control. */
    floodPer10s: z.number().int().min(1).max(10_000).default(20),
    /** Members of a group at most, its owner included. */
    maxGroupMembers: z.number().int().min(2).max(10_000).default(256),
    /** Messages and files older than this many days are deleted; 0 keeps them forever. */
    retentionDays: z.number().int().min(0).max(36_500).default(0),
    /**
     * Seconds a device has to answer a delivered MESSAGE before it is tried again at its next REGISTER. 32 s
     * is Timer F: below it a UDP device may still get the retransmissions of the first try (apps drop
     * duplicates by X-Message-Id).
     */
    deliveryTimeout: z.number().int().min(1).max(64).default(32),
    /** Largest uploaded file in bytes (POST /v1/files: 413 above it). */
    maxFileSize: z.number().int().min(1024).max(2 ** 32).default(25 * 1024 * 1024),
    /** Content types POST /v1/files takes (`type/*` allows a whole type); others get 415. */
    fileTypes: z.array(z.string().regex(/^[a-z0-9.+-]+\/([a-z0-9.+-]+|\*)$/, 'must be a MIME type such as image/png or image/*')).min(1)
      .default(['image/*', 'audio/*', 'video/*', 'application/pdf', 'text/plain', 'application/zip', 'application/octet-stream']),
  }).prefault({}),
  /** Presence (RFC 3856, PIDF), busy lamps (RFC 4235 dialog package) and message waiting (RFC 3842). */
  presence: z.strictObject({
    enabled: z.boolean().default(true),
    /**
     * Who may watch whom: `same-domain` (any user of the presentity's domain), or `contacts` (only the
     * watchers on the presentity's allow list, /v1/presence/allow). Others get a polite block: NOTIFYs that
     * say nothing (closed, no activity), never the state.
     */
    policy: z.enum(['same-domain', 'contacts']).default('same-domain'),
    /** Subscription expiry bounds and default, seconds (RFC 6665 §4.2.1.1: 423 below min). */
    minExpires: z.number().int().min(1).max(3600).default(60),
    maxExpires: z.number().int().min(60).max(86_400).default(3600),
    defaultExpires: z.number().int().min(1).max(86_400).default(600),
    /** Longest a PUBLISH is kept without a refresh, seconds (RFC 3903 §6: shortened above it). */
    maxPublishExpires: z.number().int().min(60).max(86_400).default(3600),
    /**
     * Shortest time between two NOTIFYs of one subscription, ms: changes within it are folded into one
     * (a phone flapping its presence does not flood its watchers). RFC 3265's throttle, RFC 6446 idea.
     */
    notifyInterval: z.number().int().min(0).max(60_000).default(1000),
    /** Subscriptions one watcher (user) may hold at most: what one account can make the server keep. */
    maxSubscriptionsPerWatcher: z.number().int().min(1).max(100_000).default(1000),
  }).prefault({}),
  /**
   * NAT traversal: STUN/TURN servers the apps get with short-lived credentials (the TURN REST scheme coturn
   * implements with `use-auth-secret`): GET /v1/ice-servers.
   */
  turn: z.strictObject({
    /**
     * The shared secret (coturn's `static-auth-secret`), at least 32 characters. Unset: 32 random bytes generated
     * into dataDir/turn/secret (0600) — give coturn the same value.
     */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** Earlier secrets still accepted during a rotation: credentials are made with `secret`, these are listed for coturn. */
    previousSecrets: z.array(z.string().min(32, 'must be at least 32 characters')).default([]),
    /** Life of a credential, seconds (1 h; at most 24 h). */
    ttl: z.number().int().min(60).max(86_400).default(3600),
    /** The realm coturn is configured with; default the first sip.domain. */
    realm: z.string().min(1).optional(),
    /**
     * The STUN/TURN servers, each a list of URLs (`stun:turn1.example.com:3478`, `turn:…?transport=udp`,
     * `turn:…?transport=tcp`, `turns:…:5349?transport=tcp`) and an optional weight (higher: listed first more often)
     * and region. Empty: the embedded server (turn.listen).
     */
    servers: z.array(z.strictObject({
      urls: z.array(z.string().regex(/^(stun|stuns|turn|turns):[^\s]+$/, 'must be a stun:, stuns:, turn: or turns: URL')).min(1),
      weight: z.number().int().min(1).max(1000).default(1),
      region: z.string().min(1).optional(),
    })).default([]),
    /** The embedded STUN/TURN server's UDP socket when turn.servers is empty, `address:port` (an IP address; port 0 only in a single process). */
    listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected address:port').default('0.0.0.0:3478')
      .refine((s) => isIP(s.slice(0, s.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1')) !== 0 && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'expected an IP address and a port up to 65535'),
    /**
     * The RTCIceServer list also in the 200 to a REGISTER over WS, WSS or TLS, as header `X-Ice-Servers` (JSON, the
     * answer of GET /v1/ice-servers), so an app that only speaks SIP needs no HTTP call. Never over UDP/TCP in clear.
     */
    registerHeader: z.boolean().default(true),
    /**
     * Run the embedded STUN/TURN server (turn/server.ts) when turn.servers is empty. false: no embedded server, and
     * GET /v1/ice-servers answers 503 until turn.servers lists one.
     */
    embedded: z.boolean().default(true),
    /**
     * The address peers reach the embedded server's relays on and the apps' turn:/stun: URLs name: the host's public
     * address behind 1:1 NAT (coturn's external-ip). Unset: the turn.listen address, or the host's first
     * non-internal IPv4 address when that is 0.0.0.0.
     */
    externalAddress: z.string().refine((s) => isIP(s) !== 0, 'must be an IP address').optional(),
    /** The UDP ports the embedded server relays from, `min-max` (one per allocation; open them in the firewall). */
    relayPorts: z.string().regex(/^\d{1,5}-\d{1,5}$/, 'expected min-max, e.g. 49152-65535').default('49152-65535')
      .transform((s, ctx) => {
        const [min, max] = s.split('-').map(Number) as [number, number];
        if (min < 1024 || max > 65535 || min > max) {
          ctx.addIssue({ code: 'custom', message: 'expected 1024 <= min <= max <= 65535' });
          return z.NEVER;
        }
        return { min, max };
      }),
    /**
     * Peers the embedded relay may reach although a denied range holds them: the operator's own media servers on a
     * private address (rtpengine on 10.0.0.5). Everything in RFC 6890's special ranges (loopback, RFC 1918,
     * link-local, CGNAT, unique local, IPv4-mapped, multicast) is denied otherwise, so the relay cannot be used to
     * reach the operator's internal network.
     */
    allowedPeers: z.array(cidrSchema).default([]),
    /** More denied peer ranges for the embedded relay (the operator's own public hosts). */
    deniedPeers: z.array(cidrSchema).default([]),
    /** Concurrent allocations one user may hold on the embedded server (coturn's user-quota). */
    userQuota: z.number().int().min(1).max(10_000).default(12),
    /** Concurrent allocations on the embedded server in all (coturn's total-quota). */
    totalQuota: z.number().int().min(1).max(100_000).default(1200),
    /** Bytes per second one allocation may relay each way; more is dropped (coturn's max-bps). 0: no limit. */
    maxBps: z.number().int().min(0).default(375_000),
  }).prefault({}),
  /** Meetings (conference/): the Janus nodes whose videoroom carries their media; the softswitch is the focus. */
  meetings: z.strictObject({
    /**
     * The Janus nodes (Janus 1.1 with the videoroom plugin, the websockets transport with its admin listener, and
     * token_auth on). A meeting's room goes to the node with the least load for its capacity; a node that stops
     * answering is marked down and its meetings move to another. Empty: meetings as data work, joining one answers 503.
     */
    janus: z.array(z.strictObject({
      /** The Janus API over WebSocket (`ws://…` or `wss://…`): the focus's requests, and what admitted apps are told to use. */
      url: z.string().regex(/^wss?:\/\/[^\s/]+/, 'must be a ws:// or wss:// URL'),
      /** The Admin API over WebSocket (the websockets transport's admin_ws): stored tokens for token_auth. */
      adminUrl: z.string().regex(/^wss?:\/\/[^\s/]+/, 'must be a ws:// or wss:// URL'),
      /** Janus's admin_secret. */
      adminSecret: z.string().min(1, 'must not be empty'),
      /** Janus's api_secret, when it has one (only the focus sends it; apps get a token). */
      apiSecret: z.string().min(1, 'must not be empty').optional(),
      /**
       * Where this node's videoroom writes recordings (its rooms' rec_dir) and where the softswitch reads them to convert
       * and seal them: the same folder seen by both (one machine, or a shared volume mounted at this path on both).
       * Unset: meetings on this node cannot be recorded (503).
       */
      recordingDir: z.string().min(1, 'must not be empty').optional(),
      /**
       * Forwarded streams (one publisher's audio or video to one subscriber) this node carries at most: a node at its
       * capacity takes no new meeting. Janus's videoroom costs about 4.2 ms of CPU per stream-second (bench/README.md,
       * "Meetings"), so a core forwards about 200 streams with headroom; the default suits a 2-core node.
       */
      capacity: z.number().int().min(1).max(1_000_000).default(400),
    })).default([]).refine((nodes) => new Set(nodes.map((n) => n.url)).size === nodes.length, 'two nodes have the same url'),
    /** How often each Janus node is checked (its Admin API `info`), in milliseconds. */
    healthIntervalMs: z.number().int().min(100).max(60_000).default(2000),
    /** Checks in a row without an answer before a node is down and its meetings move to another. */
    downAfter: z.number().int().min(1).max(100).default(2),
  }).prefault({}),
  /** Chat files and message bodies at rest: AES-256-GCM, a fresh key per object wrapped by the master key. */
  storage: z.strictObject({
    /**
     * The master key: 32 bytes as 64 hex characters or base64. Unset: generated into dataDir/storage/master.key
     * (0600). Losing it loses every message and file: back it up apart from the database.
     */
    masterKey: z.string().regex(/^([0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/, 'must be 32 bytes as 64 hex characters or base64 (44 characters)').optional(),
    /** Where chat files are kept (ciphertext only); default dataDir/files. */
    path: z.string().min(1).optional(),
  }).prefault({}),
  store: z.strictObject({
    /** `sqlite:data/softswitch.db` (embedded default) or `mysql://user:pass@host:3306/db`. */
    url: z.string().min(1).default('sqlite:data/softswitch.db'),
  }).prefault({}),
  cluster: z.strictObject({
    /**
     * `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS): the state several nodes share (issue 20;
     * today the meetings' change signal). Unset: in-process state, one node. The URL may hold a password: never shown.
     */
    redis: z.string().refine(isRedisUrl, 'must be a redis:// or rediss:// URL with a host').optional(),
  }).prefault({}),
  http: z.strictObject({
    /** REST/health listener, `address:port`. */
    listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected address:port').default('127.0.0.1:8088'),
    /**
     * Serve HTTPS with the SIP TLS certificate (tls.cert/tls.key or the generated one). Apps sign in with
     * their SIP password at POST /v1/auth/token; over plain HTTP that is refused from anywhere but loopback.
     */
    tls: z.boolean().default(false),
    /** Life of a user access token, seconds: how long a stolen one is good for (password changes end it at once). */
    userTokenTtl: z.number().int().min(60).max(86_400).default(900),
    /** Life of a meeting guest's token, seconds (no refresh): long enough to wait in a lobby and leave; a new one joins anew. */
    guestTokenTtl: z.number().int().min(60).max(86_400).default(3600),
    /** Life of a user refresh token, seconds (30 days): how long an app stays signed in without using it. */
    refreshTokenTtl: z.number().int().min(300).max(31_536_000).default(2_592_000),
    /**
     * HMAC key of the user access tokens, at least 32 characters; unset: 32 random bytes kept in
     * dataDir/user-token.key (0600). Set it to share tokens between nodes; changing it ends every access token.
     */
    tokenSecret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** Largest request body the API reads, bytes (1 MiB); more is 413. File uploads keep messaging.maxFileSize. */
    bodyLimit: z.number().int().min(1024).max(67_108_864).default(1_048_576),
    /**
     * Origins whose web pages may call the API from a browser (CORS), each exactly as the browser sends it
     * (`https://app.example.com`, a port when not the default, no path). None: no page but the server's own.
     */
    corsOrigins: z.array(z.string().refine(isOrigin, 'expected an origin: http(s)://host[:port], no path or trailing slash')).default([]),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(LOG_LEVELS).default('info'),
  }).prefault({}),
  /** Folder for the SQLite file, generated certificates and other local state. */
  dataDir: z.string().min(1).default('data'),
  /**
   * Longest a stopping process (SIGTERM, or a worker replaced by a rolling restart) stays up draining:
   * new requests get 503 + Retry-After, transactions under way finish, in-dialog requests (the BYE of a
   * call in progress) still route. It leaves earlier once nothing is pending and nothing has arrived for
   * 2 s. 30 s: a load balancer probing every 10 s that takes 3 failures (this project's balancer
   * defaults) has noticed by then, and a Timer B/F transaction (32 s) sent just before is as good as done.
   * 0: stop at once.
   */
  shutdownGraceSeconds: z.number().min(0).max(3600).default(30),
}).superRefine((cfg, ctx) => {
  if (cfg.presence.minExpires > cfg.presence.maxExpires) {
    ctx.addIssue({ code: 'custom', path: ['presence', 'minExpires'], message: 'must not be above presence.maxExpires' });
  }
  if (cfg.presence.minExpires > cfg.presence.maxPublishExpires) {
    ctx.addIssue({ code: 'custom', path: ['presence', 'minExpires'], message: 'must not be above presence.maxPublishExpires' });
  }
  if ((cfg.tls.cert === undefined) !== (cfg.tls.key === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['tls', cfg.tls.cert === undefined ? 'cert' : 'key'], message: 'tls.cert and tls.key go together' });
  }
  const apnsKeys = ['keyFile', 'keyId', 'teamId', 'bundleId'] as const;
  const apnsMissing = apnsKeys.filter((k) => cfg.push.apns[k] === undefined);
  if (apnsMissing.length > 0 && apnsMissing.length < apnsKeys.length) {
    ctx.addIssue({ code: 'custom', path: ['push', 'apns', apnsMissing[0]!], message: `missing: push.apns.${apnsKeys.join(', ')} go together` });
  }
  if ((cfg.push.webpush.publicKey === undefined) !== (cfg.push.webpush.privateKey === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['push', 'webpush', cfg.push.webpush.publicKey === undefined ? 'publicKey' : 'privateKey'], message: 'missing: push.webpush.publicKey and privateKey go together' });
  }
}).transform((cfg) => ({
  ...cfg,
  push: { ...cfg.push, webpush: { ...cfg.push.webpush, subject: cfg.push.webpush.subject ?? `mailto:admin@${cfg.sip.domain[0]!}` } },
}));

export type Config = z.output<typeof schema>;

/** Keys whose value a ConfigError never shows. */
const SECRET_KEYS = new Set(['cluster.redis', 'http.tokenSecret', 'push.webpush.privateKey', 'storage.masterKey', 'turn.secret']);

/** Environment variables: SOFTSWITCH_SIP_LISTEN="udp:…,tcp:…" etc.; lists are comma-separated. */
const ENV: Array<[string, string[], 'string' | 'list' | 'number']> = [
  ['SOFTSWITCH_SIP_LISTEN', ['sip', 'listen'], 'list'],
  ['SOFTSWITCH_SIP_ADVERTISE', ['sip', 'advertise'], 'string'],
  ['SOFTSWITCH_SIP_DOMAIN', ['sip', 'domain'], 'list'],
  ['SOFTSWITCH_SIP_MAX_MESSAGE_SIZE', ['sip', 'maxMessageSize'], 'number'],
  ['SOFTSWITCH_TLS_CERT', ['tls', 'cert'], 'string'],
  ['SOFTSWITCH_TLS_KEY', ['tls', 'key'], 'string'],
  ['SOFTSWITCH_STORE_URL', ['store', 'url'], 'string'],
  ['SOFTSWITCH_CLUSTER_REDIS', ['cluster', 'redis'], 'string'],
  ['SOFTSWITCH_MEDIA_RTPENGINE', ['media', 'rtpengine'], 'list'],
  ['SOFTSWITCH_HTTP_LISTEN', ['http', 'listen'], 'string'],
  ['SOFTSWITCH_HTTP_TOKEN_SECRET', ['http', 'tokenSecret'], 'string'],
  ['SOFTSWITCH_HTTP_CORS_ORIGINS', ['http', 'corsOrigins'], 'list'],
  ['SOFTSWITCH_STORAGE_MASTER_KEY', ['storage', 'masterKey'], 'string'],
  ['SOFTSWITCH_TURN_SECRET', ['turn', 'secret'], 'string'],
  ['SOFTSWITCH_LOG_LEVEL', ['log', 'level'], 'string'],
  ['SOFTSWITCH_DATA_DIR', ['dataDir'], 'string'],
];

export interface LoadConfigOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values that win over file and environment (tests). */
  overrides?: Record<string, unknown>;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  let raw: Record<string, unknown> = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError('--config', options.file, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      throw new ConfigError('--config', options.file, `not valid YAML: ${(err as Error).message}`);
    }
    if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
      throw new ConfigError('--config', options.file, 'the file must hold a mapping of keys');
    }
    raw = (doc as Record<string, unknown> | null) ?? {};
  }
  const env = options.env ?? process.env;
  for (const [name, path, kind] of ENV) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    let value: unknown = v;
    if (kind === 'list') value = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (kind === 'number') value = Number(v);
    setPath(raw, path, value);
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) setPath(raw, key.split('.'), value);
  return validate(raw);
}

export function validate(raw: unknown): Config {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
  let value: unknown = raw;
  for (const p of issue.path) value = value !== null && typeof value === 'object' ? (value as Record<string | number, unknown>)[p as string | number] : undefined;
  const reason = issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : issue.message;
  // A secret that was refused may still be most of the real one: the message never repeats it.
  throw new ConfigError(key || '(root)', shown(key, value), reason);
}

/** A Janus node's secrets (meetings.janus[i].adminSecret, .apiSecret): whole or inside the entry refused. */
const JANUS_SECRET = /^meetings\.janus\[\d+\]\.(adminSecret|apiSecret)$/;

/** The value a ConfigError shows: a secret, even a refused one, may be most of the real one and is never repeated. */
function shown(key: string, value: unknown): unknown {
  const secret = SECRET_KEYS.has(key) || key.startsWith('turn.previousSecrets') || JANUS_SECRET.test(key);
  if (secret) return typeof value === 'string' ? `(${value.length} characters, not shown)` : value;
  if (key.startsWith('meetings.janus') && value !== null && typeof value === 'object') {
    const hide = (entry: unknown): unknown => {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return entry;
      const out: Record<string, unknown> = { ...(entry as Record<string, unknown>) };
      for (const k of ['adminSecret', 'apiSecret']) if (k in out) out[k] = '(not shown)';
      return out;
    };
    return Array.isArray(value) ? value.map(hide) : hide(value);
  }
  return value;
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    if (cur[k] === null || typeof cur[k] !== 'object') cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}
