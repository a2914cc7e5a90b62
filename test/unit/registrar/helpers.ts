/**
 * Fixtures for the registrar tests: subscribers with HA1s from computeHA1, REGISTER messages built as
 * text and parsed, a Stack over an in-memory transport, and a client that answers challenges.
 */
import { Writable } from 'node:stream';
import { Stack, type StackTransport, type StackUser } from '../../../src/core/index.js';
import { type Logger, createLogger, silentLogger } from '../../../src/log/index.js';
import {
  type SipRequest, type SipResponse, buildCredentials, computeHA1, parseChallenge, parseMessage, randomToken,
  serializeMessage, utf8ToWire,
} from '../../../src/sip/index.js';
import type { ServerTransaction, TimerHandle, Timers } from '../../../src/transaction/index.js';
import type { Destination, Flow, ListenSpec, TransportProtocol } from '../../../src/transport/types.js';
import { type Registrar, createRegistrar } from '../../../registrar/index.js';
import type {
  CredentialSource, LocationPersistence, LocationRow, RegistrarOptions, SubscriberCredentials,
} from '../../../registrar/types.js';

export const T0 = 1_700_000_000_000;

/** A clock the tests move by hand. */
export class TestClock {
  now = T0;
  readonly fn = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

export interface User {
  username: string;
  password: string;
  domain: string;
  enabled?: boolean;
}

/** An in-memory CredentialSource with realm = domain, as the store hashes them. */
export class MemoryCredentials implements CredentialSource {
  readonly lookups: Array<[string, string]> = [];
  private readonly users = new Map<string, SubscriberCredentials>();

  constructor(users: User[]) {
    for (const u of users) this.add(u);
  }

  add(u: User): void {
    const user = utf8ToWire(u.username);
    const password = utf8ToWire(u.password);
    this.users.set(`${u.username}@${u.domain}`, {
      ha1Md5: computeHA1('MD5', user, u.domain, password),
      ha1Sha256: computeHA1('SHA-256', user, u.domain, password),
      enabled: u.enabled ?? true,
    });
  }

  async getCredentials(username: string, domain: string): Promise<SubscriberCredentials | undefined> {
    this.lookups.push([username, domain]);
    return this.users.get(`${username}@${domain}`);
  }
}

export const ALICE: User = { username: 'alice', password: 'wonderland', domain: 'example.com' };
export const BOB: User = { username: 'bob', password: 'builder', domain: 'example.com' };
export const CAROL: User = { username: 'carol', password: 'disabled!', domain: 'example.com', enabled: false };

export interface RegisterOptions {
  /** The AoR's user (To); default alice. */
  user?: string;
  domain?: string;
  ruri?: string;
  /** Whole To value; default `<sip:${user}@${domain}>`. */
  to?: string;
  callId?: string;
  cseq?: number;
  /** Contact values, one header each; default none. */
  contacts?: string[];
  expires?: number;
  /** Authorization values. */
  authorization?: string[];
  /** Extra header lines. */
  extra?: string[];
  transport?: string;
  /** For a request a stack will send: it adds the Via itself. */
  noVia?: boolean;
  userAgent?: string;
}

/** A REGISTER as it would arrive: text with a fresh branch, parsed. */
export function register(o: RegisterOptions = {}): SipRequest {
  const user = o.user ?? 'alice';
  const domain = o.domain ?? 'example.com';
  const lines = [
    `REGISTER ${o.ruri ?? `sip:${domain}`} SIP/2.0`,
    ...(o.noVia === true ? [] : [`Via: SIP/2.0/${o.transport ?? 'UDP'} 198.51.100.7:5060;branch=z9hG4bK${randomToken(12)};rport`]),
    'Max-Forwards: 70',
    `To: ${o.to ?? `<sip:${user}@${domain}>`}`,
    `From: <sip:${user}@${domain}>;tag=${randomToken(8)}`,
    `Call-ID: ${o.callId ?? 'reg-1@198.51.100.7'}`,
    `CSeq: ${o.cseq ?? 1} REGISTER`,
    ...(o.contacts ?? []).map((c) => `Contact: ${c}`),
    ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
    ...(o.authorization ?? []).map((a) => `Authorization: ${a}`),
    ...(o.extra ?? []),
    ...(o.userAgent === undefined ? [] : [`User-Agent: ${o.userAgent}`]),
    'Content-Length: 0',
    '',
    '',
  ];
  return parseMessage(Buffer.from(lines.join('\r\n'), 'latin1')) as SipRequest;
}

export function flow(protocol: TransportProtocol = 'udp', port = 5060, address = '198.51.100.7', id?: string): Flow {
  return {
    id: id ?? `${protocol}:${address}:${port}#${randomToken(6)}`,
    protocol,
    local: { address: '192.0.2.1', port: protocol === 'wss' ? 8443 : protocol === 'ws' ? 8080 : 5060 },
    remote: { address, port },
  };
}

/** Answers the n-th challenge (default the first) of a 401 for `user`. */
export function answer(
  response: SipResponse,
  user: User,
  o: { index?: number; nc?: number; uri?: string; password?: string; cnonce?: string; nonce?: string } = {},
): string {
  const value = response.getAll('www-authenticate')[o.index ?? 0];
  if (value === undefined) throw new Error(`no challenge in a ${response.status}`);
  const challenge = parseChallenge(value);
  if (o.nonce !== undefined) challenge.nonce = o.nonce;
  return buildCredentials(challenge, {
    username: utf8ToWire(user.username),
    password: utf8ToWire(o.password ?? user.password),
    method: 'REGISTER',
    uri: o.uri ?? `sip:${user.domain}`,
    nc: o.nc ?? 1,
    cnonce: o.cnonce ?? randomToken(8),
  });
}

/** A StackTransport that keeps what it is given to send, parsed. */
class RecordingTransport implements StackTransport {
  readonly listeners: ListenSpec[] = [{ protocol: 'udp', address: '192.0.2.1', port: 5060 }];
  readonly sent: Array<{ message: SipRequest | SipResponse; destination: Destination }> = [];

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  send(data: Buffer, destination: Destination): Promise<Flow> {
    this.sent.push({ message: parseMessage(data), destination });
    return Promise.resolve({
      id: destination.flowId ?? `${destination.protocol}:${destination.address}:${destination.port}`,
      protocol: destination.protocol,
      local: { address: '192.0.2.1', port: 5060 },
      remote: { address: destination.address, port: destination.port },
    });
  }

  listenerFor(protocol: TransportProtocol): ListenSpec | undefined {
    return { protocol, address: '192.0.2.1', port: 5060 };
  }
}

/** Timers that never fire: transactions stay put for the length of a test. */
const frozenTimers: Timers = {
  setTimeout: (): TimerHandle => ({}),
  clearTimeout: (): void => {},
};

/** Collects log lines (pino JSON) so tests can check what was and was not logged. */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly text: string[] = [];
  readonly logger: Logger;

  constructor() {
    const stream = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.length === 0) continue;
          this.text.push(line);
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        cb();
      },
    });
    this.logger = createLogger({ level: 'debug', destination: stream });
  }
}

export interface HarnessOptions {
  options?: Partial<RegistrarOptions>;
  users?: User[];
  persistence?: LocationPersistence;
  logger?: Logger;
}

/**
 * A Stack over an in-memory transport whose user hands every request to the registrar: messages go in
 * as bytes through `Stack.onMessage`, so they pass the parser and the §8.2 checks as they would live.
 */
export class Harness {
  readonly clock = new TestClock();
  readonly transport = new RecordingTransport();
  readonly stack: Stack;
  readonly registrar: Registrar;
  readonly credentials: MemoryCredentials;
  private pending: Promise<void> | undefined;

  constructor(o: HarnessOptions = {}) {
    const logger = o.logger ?? silentLogger();
    this.stack = new Stack({ logger, createTransport: () => this.transport, timers: frozenTimers, serverHeader: '' });
    this.credentials = new MemoryCredentials(o.users ?? [ALICE, BOB, CAROL]);
    this.registrar = createRegistrar({
      stack: this.stack,
      credentials: this.credentials,
      persistence: o.persistence,
      logger,
      clock: this.clock.fn,
      options: { domains: ['example.com', 'Example.ORG'], ...o.options },
    });
    const user: StackUser = {
      onRequest: (request: SipRequest, tx: ServerTransaction) => {
        this.pending = this.registrar.handle(request, tx);
      },
      onFlowClosed: (f: Flow) => {
        this.registrar.onFlowClosed(f);
      },
    };
    this.stack.setUser(user);
  }

  /** Sends a request in as bytes from `via` and returns the response the stack sent back. */
  async send(request: SipRequest, via: Flow = flow()): Promise<SipResponse> {
    const before = this.transport.sent.length;
    this.pending = undefined;
    this.stack.onMessage(serializeMessage(request), via);
    if (this.pending !== undefined) await this.pending;
    const out = this.transport.sent.slice(before).map((s) => s.message).filter((m): m is SipResponse => !m.isRequest);
    const last = out.at(-1);
    if (last === undefined) throw new Error('no response was sent');
    return last;
  }

  /** REGISTER, answer the 401's first (MD5) challenge, REGISTER again with CSeq + 1: the final response. */
  async registerAuthenticated(o: RegisterOptions & { as?: User; via?: Flow; challengeIndex?: number } = {}): Promise<SipResponse> {
    const as = o.as ?? ALICE;
    const via = o.via ?? flow();
    const cseq = o.cseq ?? 1;
    const challenge = await this.send(register({ ...o, cseq }), via);
    if (challenge.status !== 401) return challenge;
    const authorization = answer(challenge, as, { index: o.challengeIndex ?? 0, uri: o.ruri });
    return this.send(register({ ...o, cseq: cseq + 1, authorization: [authorization] }), via);
  }
}

/** LocationPersistence in memory, recording every call in order. */
export class MemoryPersistence implements LocationPersistence {
  readonly rows = new Map<string, LocationRow>();
  readonly calls: string[] = [];
  failNext = false;

  constructor(rows: LocationRow[] = []) {
    for (const r of rows) this.rows.set(`${r.aor} ${r.contact}`, r);
  }

  private check(): void {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('database is down');
    }
  }

  async upsert(row: LocationRow): Promise<void> {
    this.calls.push(`upsert ${row.aor} ${row.contact}`);
    this.check();
    this.rows.set(`${row.aor} ${row.contact}`, row);
  }

  async remove(aor: string, contact: string): Promise<boolean> {
    this.calls.push(`remove ${aor} ${contact}`);
    this.check();
    return this.rows.delete(`${aor} ${contact}`);
  }

  async removeAor(aor: string): Promise<number> {
    this.calls.push(`removeAor ${aor}`);
    this.check();
    let n = 0;
    for (const [k, r] of this.rows) {
      if (r.aor === aor) {
        this.rows.delete(k);
        n++;
      }
    }
    return n;
  }

  async listAll(): Promise<LocationRow[]> {
    return [...this.rows.values()];
  }
}

/** The Contact values of a response, as written. */
export function contactsOf(response: SipResponse): string[] {
  return response.getAll('contact');
}
