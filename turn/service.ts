/**
 * NAT traversal as the application runs it: the credentials (turn/credentials.ts), the embedded STUN/TURN server
 * when no turn.servers are configured (turn/server.ts), the RTCIceServer list of GET /v1/ice-servers, and the same
 * list in the 200 to a REGISTER (`X-Ice-Servers`), so a SIP-only app needs no HTTP call.
 *
 * Which process runs the embedded server: the single process, or worker 0 of a cluster (one UDP socket, one set of
 * allocations; credentials are stateless HMACs, so every worker issues them). Its URLs name `turn.externalAddress`,
 * else the turn.listen address, else (listening on every address) the host's first non-internal IPv4 address.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { categoryLogger, type Logger } from '../src/log/index.js';
import type { Flow } from '../src/transport/types.js';
import { TurnCredentials } from './credentials.js';
import type { IceServerConfig } from './ice-servers.js';
import { type IceServerAnswer, type IceServerRoutesDeps, iceServerAnswer } from './routes.js';
import { EmbeddedTurnServer, type PeerRange, type TurnServerStats } from './server.js';

/** The turn section of the configuration, as platform/config validates it. */
export interface TurnSettings {
  secret?: string | undefined;
  previousSecrets: string[];
  ttl: number;
  realm?: string | undefined;
  servers: IceServerConfig[];
  listen: string;
  embedded: boolean;
  externalAddress?: string | undefined;
  relayPorts: { min: number; max: number };
  allowedPeers: PeerRange[];
  deniedPeers: PeerRange[];
  userQuota: number;
  totalQuota: number;
  maxBps: number;
  registerHeader: boolean;
}

export interface TurnServiceOptions {
  settings: TurnSettings;
  /** The first sip.domain: the default realm. */
  domain: string;
  dataDir: string;
  logger: Logger;
  /** Whether this process runs the embedded server (the single process, or worker 0). */
  runsEmbedded: boolean;
  /**
   * In a cluster, a rolling restart's new worker 0 starts while the old one still holds the port: it binds again
   * every second until the port is free instead of failing its start. A single process fails at once.
   */
  waitForPort?: boolean;
}

/**
 * The header of a REGISTER's 200 that carries the RTCIceServer list, as JSON (the `iceServers` of GET
 * /v1/ice-servers, with `ttl` and `expiresAt`). An extension header (RFC 3261 §20: unknown headers are passed on
 * and ignored by other UAs).
 */
export const ICE_SERVERS_HEADER = 'X-Ice-Servers';

/**
 * Transports whose 200 carries X-Ice-Servers: the ones apps that do WebRTC or ICE use, and encrypted (WSS, TLS)
 * or, for WS, a browser in development or behind a TLS-terminating proxy. Not over UDP/TCP in clear: a desk phone
 * has no use for it and the credential would cross the network readable.
 */
const HEADER_TRANSPORTS: ReadonlySet<string> = new Set(['ws', 'wss', 'tls']);

export class TurnService {
  readonly credentials: TurnCredentials;
  /** The embedded server when this process runs it. */
  readonly embedded: EmbeddedTurnServer | undefined;
  private readonly settings: TurnSettings;
  private readonly listen: { address: string; port: number };
  private readonly host: string;
  private readonly deps: IceServerRoutesDeps;
  private readonly waitForPort: boolean;
  private readonly log: Logger;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: TurnServiceOptions) {
    const s = options.settings;
    this.settings = s;
    const log = categoryLogger(options.logger, 'turn');
    this.log = log;
    this.waitForPort = options.waitForPort ?? false;
    this.credentials = TurnCredentials.load({ secret: s.secret, previousSecrets: s.previousSecrets, dataDir: options.dataDir, logger: options.logger });
    this.listen = parseHostPort(s.listen);
    this.host = s.externalAddress ?? advertisedAddress(this.listen.address);
    const embedded = s.servers.length === 0 && s.embedded;
    this.embedded = embedded && options.runsEmbedded
      ? new EmbeddedTurnServer({
        listen: this.listen,
        relayAddress: this.listen.address,
        externalAddress: this.host,
        relayPorts: s.relayPorts,
        realm: s.realm ?? options.domain,
        credentials: this.credentials,
        allowedPeers: s.allowedPeers,
        deniedPeers: s.deniedPeers,
        userQuota: s.userQuota,
        totalQuota: s.totalQuota,
        maxBps: s.maxBps,
        logger: options.logger,
      })
      : undefined;
    if (s.servers.length === 0 && !s.embedded) log.warn('no STUN/TURN server: turn.servers is empty and turn.embedded is false; GET /v1/ice-servers answers 503');
    this.deps = {
      credentials: this.credentials,
      servers: s.servers,
      ttlS: s.ttl,
      embeddedUrls: () => (embedded ? this.embeddedUrls() : undefined),
    };
  }

  /** What GET /v1/ice-servers mounts with. */
  get routeDeps(): IceServerRoutesDeps {
    return this.deps;
  }

  async start(): Promise<void> {
    const server = this.embedded;
    if (server === undefined) return;
    if (!this.waitForPort) return server.start();
    const attempt = (): void => {
      server.start().then(() => this.log.info('embedded TURN server bound'), (err: Error) => {
        if (this.stopped) return;
        this.log.warn({ err: err.message }, 'embedded TURN server not bound yet (the worker it replaces may still hold the port): retrying in 1 s');
        this.retry = setTimeout(attempt, 1000);
        this.retry.unref();
      });
    };
    attempt();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    await this.embedded?.stop();
  }

  stats(): TurnServerStats | undefined {
    return this.embedded?.stats();
  }

  /** The RTCIceServer list for `user` (`user@domain`), undefined without any server. */
  iceServers(user: string, region?: string): IceServerAnswer | undefined {
    return iceServerAnswer(this.deps, user, region);
  }

  /** The registrar's okHeaders: X-Ice-Servers on a 200 that keeps a WS/WSS/TLS device registered (turn.registerHeader). */
  readonly registerHeaders = (aor: string, flow: Flow): Array<[string, string]> => {
    if (!this.settings.registerHeader || !HEADER_TRANSPORTS.has(flow.protocol)) return [];
    const answer = this.iceServers(aor);
    return answer === undefined ? [] : [[ICE_SERVERS_HEADER, JSON.stringify(answer)]];
  };

  /**
   * `stun:` and `turn:…?transport=udp` on the advertised host and the embedded server's port (the bound one when
   * turn.listen asks for port 0, which only a single process can know).
   */
  private embeddedUrls(): string[] {
    const port = this.listen.port !== 0 ? this.listen.port : this.embedded?.address().port;
    if (port === undefined || port === 0) return [];
    const host = isIP(this.host) === 6 ? `[${this.host}]` : this.host;
    return [`stun:${host}:${port}`, `turn:${host}:${port}?transport=udp`];
  }
}

function parseHostPort(text: string): { address: string; port: number } {
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i);
  return { address: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(text.slice(i + 1)) };
}

/** The address apps reach the embedded server on: the listen address, or for a wildcard the first non-internal IPv4. */
function advertisedAddress(listen: string): string {
  if (listen !== '0.0.0.0' && listen !== '::') return listen;
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) return i.address;
  }
  return '127.0.0.1';
}
