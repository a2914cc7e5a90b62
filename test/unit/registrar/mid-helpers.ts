/**
 * Fixtures for the mid-registrar tests, all over real UDP on 127.0.0.1: the softswitch (a Stack whose
 * transactions and mid-registrar timers run on a FakeClock), backends standing in for FreeSWITCH (a
 * Stack each, challenging with their own digest authenticator and granting their own expiry), and
 * phones sending REGISTERs.
 */
import { Stack, type StackUser } from '../../../src/core/index.js';
import { type Logger, silentLogger } from '../../../src/log/index.js';
import {
  type SipRequest, type SipResponse, SipUri, parseUri, randomToken,
} from '../../../src/sip/index.js';
import type { ServerTransaction, Timers } from '../../../src/transaction/index.js';
import { TransportLayer } from '../../../src/transport/index.js';
import type { Destination } from '../../../src/transport/types.js';
import { DigestAuthenticator, LocationService, type MidRegistrar, createMidRegistrar } from '../../../registrar/index.js';
import type { BackendPicker, BackendTarget, MidRegistrarOptions } from '../../../registrar/index.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { ALICE, BOB, MemoryCredentials, type RegisterOptions, T0, type User, answer, register } from './helpers.js';

export const AOR = 'sip:alice@example.com';

async function udpStack(user: StackUser, timers?: Timers): Promise<Stack> {
  const logger = silentLogger();
  const stack = new Stack({
    logger,
    serverHeader: '',
    timers,
    createTransport: (u) => new TransportLayer({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], user: u, logger }),
  });
  stack.setUser(user);
  await stack.start();
  return stack;
}

function destinationOf(stack: Stack): Destination {
  const l = stack.listeners[0]!;
  return { protocol: 'udp', address: l.address, port: l.port };
}

/** Polls until `cond` holds (real time, a few ms at a time); throws after `ms`. */
export async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

export type BackendBehaviour = 'registrar' | 'silent' | 'unavailable' | 'forbidden';

/**
 * A FreeSWITCH stand-in: challenges REGISTERs without credentials (when `challenge`), checks the
 * digest with its own authenticator, grants at most `maxExpires` and lists the AoR's contacts in its 200.
 */
export class FakeBackend implements StackUser {
  stack!: Stack;
  readonly requests: SipRequest[] = [];
  behaviour: BackendBehaviour = 'registrar';
  challenge: boolean;
  maxExpires: number;
  readonly bindings = new Map<string, Map<string, number>>();
  private readonly auth = new DigestAuthenticator({ credentials: new MemoryCredentials([ALICE, BOB]), logger: silentLogger() });

  constructor(o: { challenge?: boolean; maxExpires?: number } = {}) {
    this.challenge = o.challenge ?? true;
    this.maxExpires = o.maxExpires ?? 120;
  }

  async start(): Promise<this> {
    this.stack = await udpStack(this);
    return this;
  }

  get uri(): string {
    const l = this.stack.listeners[0]!;
    return `sip:${l.address}:${l.port}`;
  }

  get registers(): SipRequest[] {
    return this.requests.filter((r) => r.method === 'REGISTER');
  }

  onRequest(request: SipRequest, tx: ServerTransaction): void {
    this.requests.push(request);
    if (this.behaviour === 'silent') return;
    if (this.behaviour === 'unavailable') {
      this.stack.respond(tx, 503);
      return;
    }
    if (this.behaviour === 'forbidden') {
      this.stack.respond(tx, 403, { reason: 'Forbidden (backend says no)' });
      return;
    }
    void this.register(request, tx);
  }

  private async register(request: SipRequest, tx: ServerTransaction): Promise<void> {
    if (this.challenge) {
      const auth = await this.auth.authenticate(request, 'www', 'example.com');
      if (!auth.ok) {
        this.stack.respond(tx, auth.status, { reason: auth.reason, headers: auth.headers });
        return;
      }
    }
    const to = request.to!.uri as SipUri;
    const aor = `sip:${to.user}@${to.host}`;
    let list = this.bindings.get(aor);
    if (list === undefined) this.bindings.set(aor, (list = new Map()));
    const now = Date.now();
    if (request.contactStar) list.clear();
    for (const c of request.contact) {
      const granted = Math.min(c.expires ?? request.expires ?? 3600, this.maxExpires);
      if (granted === 0) list.delete(c.uri.toString());
      else list.set(c.uri.toString(), now + granted * 1000);
    }
    const headers: Array<[string, string]> = [...list].map(([uri, at]) => ['Contact', `<${uri}>;expires=${Math.round((at - now) / 1000)}`]);
    this.stack.respond(tx, 200, { headers });
  }

  async stop(): Promise<void> {
    await this.stack.stop();
  }
}

export type RegisterText = Pick<RegisterOptions, 'user' | 'callId' | 'cseq' | 'contacts' | 'expires' | 'authorization' | 'extra'>;

/** A phone: sends REGISTERs (no Via yet: its stack adds it) to the softswitch and returns the final answer. */
export class Phone implements StackUser {
  stack!: Stack;
  readonly callId = `${randomToken(10)}@phone`;
  cseq = 0;

  constructor(private readonly softswitch: Destination, readonly user: User = ALICE) {}

  async start(): Promise<this> {
    this.stack = await udpStack(this);
    return this;
  }

  get contact(): string {
    const l = this.stack.listeners[0]!;
    return `<sip:${this.user.username}@${l.address}:${l.port}>`;
  }

  onRequest(_request: SipRequest, tx: ServerTransaction): void {
    this.stack.respond(tx, 200);
  }

  request(o: RegisterText = {}): SipRequest {
    return register({
      ...o, user: o.user ?? this.user.username, callId: o.callId ?? this.callId, cseq: o.cseq ?? ++this.cseq,
      contacts: o.contacts ?? [this.contact], noVia: true, userAgent: 'test-phone',
    });
  }

  /** Sends one REGISTER; resolves with its final response. */
  send(o: RegisterText = {}): Promise<SipResponse> {
    const request = this.request(o);
    return new Promise((resolve, reject) => {
      this.stack.sendRequest(request, this.softswitch, {
        onResponse: (r) => {
          if (r.status >= 200) resolve(r);
        },
        onTimeout: () => reject(new Error('REGISTER timed out')),
        onTransportError: (_t, err) => reject(err),
      });
    });
  }

  /** REGISTER; when challenged (by whoever), answer the first challenge as `as` and send it again. */
  async register(o: RegisterText & { as?: User } = {}): Promise<SipResponse> {
    const first = await this.send(o);
    if (first.status !== 401) return first;
    return this.send({ ...o, authorization: [answer(first, o.as ?? this.user, { uri: 'sip:example.com' })] });
  }

  async stop(): Promise<void> {
    await this.stack.stop();
  }
}

/** A picker over fixed backends, recording what the mid-registrar reported. */
export class ListPicker implements BackendPicker {
  readonly failures: Array<[string, string]> = [];
  readonly successes: string[] = [];
  constructor(public backends: BackendTarget[]) {}
  candidates(): readonly BackendTarget[] {
    return this.backends;
  }
  markFailure(b: BackendTarget, reason: string): void {
    this.failures.push([String(b.id), reason]);
  }
  markSuccess(b: BackendTarget): void {
    this.successes.push(String(b.id));
  }
}

export interface SoftswitchOptions extends Partial<MidRegistrarOptions> {
  backends: FakeBackend[];
  logger?: Logger;
  /** Use this picker instead of one over `backends`. */
  picker?: BackendPicker;
}

/** The softswitch side: a Stack on the FakeClock whose REGISTERs go to the mid-registrar. */
export class Softswitch implements StackUser {
  readonly clock = new FakeClock();
  readonly now = (): number => T0 + this.clock.now;
  stack!: Stack;
  mid!: MidRegistrar;
  locations!: LocationService;
  picker!: BackendPicker;
  readonly phones: Phone[] = [];

  onRequest(request: SipRequest, tx: ServerTransaction): void {
    if (request.method === 'REGISTER') void this.mid.handle(request, tx);
    else this.stack.respond(tx, 405);
  }

  static async start(o: SoftswitchOptions): Promise<Softswitch> {
    const s = new Softswitch();
    const logger = o.logger ?? silentLogger();
    s.stack = await udpStack(s, s.clock);
    try {
      s.mid = s.build(o, logger);
    } catch (err) {
      await s.stack.stop();
      throw err;
    }
    await s.mid.start();
    return s;
  }

  /**
   * A second mid-registrar over the same bindings, as another cluster worker (whose location service has
   * the replicated bindings) or this process after a restart has it: it never saw the REGISTERs.
   */
  sibling(o: SoftswitchOptions): MidRegistrar {
    const { locations, picker } = this;
    const mid = this.build(o, o.logger ?? silentLogger());
    this.locations = locations;
    this.picker = picker;
    return mid;
  }

  private build(o: SoftswitchOptions, logger: Logger): MidRegistrar {

    const authenticator = new DigestAuthenticator({ credentials: new MemoryCredentials([ALICE, BOB]), logger, clock: this.now });
    this.locations ??= new LocationService({ logger, clock: this.now });
    this.picker = o.picker ?? new ListPicker(o.backends.map((b, i) => ({ id: `fs${i + 1}`, uri: b.uri })));
    const { backends: _b, logger: _l, picker: _p, ...options } = o;
    return createMidRegistrar({
      stack: this.stack,
      registrar: { authenticator, locations: this.locations },
      picker: this.picker,
      logger,
      domains: ['example.com'],
      clock: this.now,
      timers: this.clock,
      options: { mode: 'mirror', outgoingExpires: 3600, localAuth: false, ...options },
    });
  }

  get destination(): Destination {
    return destinationOf(this.stack);
  }

  async phone(user: User = ALICE): Promise<Phone> {
    const p = await new Phone(this.destination, user).start();
    this.phones.push(p);
    return p;
  }

  async stop(): Promise<void> {
    await this.mid.stop();
    for (const p of this.phones) await p.stop();
    await this.stack.stop();
  }
}

/** Our Contact URIs in a REGISTER the backend received. */
export function contactUris(request: SipRequest): SipUri[] {
  return request.contact.map((c) => c.uri as SipUri);
}

/** Parses a URI as a backend would put it in an INVITE's Request-URI. */
export function ruri(text: string): SipUri {
  return parseUri(text) as SipUri;
}
