/**
 * The one typed configuration: a YAML file plus SOFTSWITCH_* environment variables, validated at start.
 * A wrong value stops the start with the key, the value and the reason (ConfigError).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { ListenSpec, TransportProtocol } from '../transport/types.js';

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

const listenSchema = z.string().transform((s, ctx) => {
  try {
    return parseListen(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

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
    /** Largest SIP message accepted, bytes. */
    maxMessageSize: z.number().int().min(1500).max(1_048_576).default(65535),
    /** Cap on simultaneous TCP/TLS/WS/WSS connections per process. */
    maxConnections: z.number().int().min(1).max(1_000_000).default(20000),
    /** Close a stream connection after this long without any traffic, seconds. */
    idleTimeout: z.number().int().min(10).default(600),
    /** Server / User-Agent header value; empty to send none. */
    serverHeader: z.string().default('softswitch'),
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
  store: z.strictObject({
    /** `sqlite:data/softswitch.db` (embedded default) or `mysql://user:pass@host:3306/db`. */
    url: z.string().min(1).default('sqlite:data/softswitch.db'),
  }).prefault({}),
  http: z.strictObject({
    /** REST/health listener, `address:port`. */
    listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected address:port').default('127.0.0.1:8088'),
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
  if ((cfg.tls.cert === undefined) !== (cfg.tls.key === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['tls', cfg.tls.cert === undefined ? 'cert' : 'key'], message: 'tls.cert and tls.key go together' });
  }
});

export type Config = z.output<typeof schema>;

/** Environment variables: SOFTSWITCH_SIP_LISTEN="udp:…,tcp:…" etc.; lists are comma-separated. */
const ENV: Array<[string, string[], 'string' | 'list' | 'number']> = [
  ['SOFTSWITCH_SIP_LISTEN', ['sip', 'listen'], 'list'],
  ['SOFTSWITCH_SIP_ADVERTISE', ['sip', 'advertise'], 'string'],
  ['SOFTSWITCH_SIP_DOMAIN', ['sip', 'domain'], 'list'],
  ['SOFTSWITCH_SIP_MAX_MESSAGE_SIZE', ['sip', 'maxMessageSize'], 'number'],
  ['SOFTSWITCH_TLS_CERT', ['tls', 'cert'], 'string'],
  ['SOFTSWITCH_TLS_KEY', ['tls', 'key'], 'string'],
  ['SOFTSWITCH_STORE_URL', ['store', 'url'], 'string'],
  ['SOFTSWITCH_MEDIA_RTPENGINE', ['media', 'rtpengine'], 'list'],
  ['SOFTSWITCH_HTTP_LISTEN', ['http', 'listen'], 'string'],
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
  throw new ConfigError(key || '(root)', value, reason);
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
