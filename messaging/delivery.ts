/**
 * Chat delivery: every row of a user's stream (platform/store/message-types.ts) reaches each of the user's
 * devices once and in order, as a SIP MESSAGE (RFC 3428) from the server.
 *
 * One pump per device sends the rows after the device's cursor one at a time and moves the cursor on
 * each answer: like msilo's dump on REGISTER, but per device and for live devices too, so a phone and a
 * desktop of the same user each get every message and the sender's other devices their carbon copy.
 * A pump starts when a row is added for the user (a device with a connection), when a device registers
 * or refreshes (a phone back online, a woken phone), and stops at the first device that does not answer:
 * the rest waits for its next REGISTER. A sleeping push device (RFC 8599) is pushed instead.
 *
 * Answers: a 2xx delivers (the cursor moves, the receipt says delivered at that device). 408, 480, 503, a
 * timeout or a transport error mean "not now": the pump stops and the row waits. Any other failure (415,
 * 488, 400…) is final for that device: the row is skipped, so one message a device cannot take never
 * blocks the ones after it.
 */
import type { Stack } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import { SipRequest, headerKey, makeField, newCallId, newTag, type SipResponse } from '../src/sip/index.js';
import type { Binding } from '../registrar/index.js';
import type { InboxEntry, MessageRepository } from '../platform/store/index.js';
import { type DeviceDirectory, aorOfUser, deviceKey, userOfAor } from './devices.js';

/** Rows read per query of a device's stream. */
const BATCH = 50;
/** Statuses after which the device is tried again later rather than skipped. */
const RETRY_LATER = new Set([408, 480, 503]);

/** A stream row as it goes out: who it is from and to (SIP URIs), and the body in clear. */
export interface OutgoingMessage {
  from: string;
  fromName?: string | undefined;
  to: string;
  contentType: string;
  body: Buffer;
}

export interface DeliveryOptions {
  stack: Pick<Stack, 'sendRequest'>;
  repo: MessageRepository;
  devices: DeviceDirectory;
  /** The row as it goes out; undefined: nothing to send (the row is passed over). */
  render(entry: InboxEntry): Promise<OutgoingMessage | undefined>;
  /** ms a device has to answer before the row waits for its next REGISTER. */
  timeoutMs: number;
  logger: Logger;
  clock?: () => number;
}

/**
 * A cluster's workers share the devices (server/cluster): each device is delivered to by one worker only,
 * the one that holds its connection (UDP devices: one chosen by the device key), so that no two pumps
 * race on one device; rows stored on one worker are announced to the others.
 */
export interface DeliveryCluster {
  /** Whether this worker delivers to the device. */
  owns(binding: Binding, device: string): boolean;
  /** Rows were added here to these users' streams: the other workers deliver to the devices they own. */
  announce(users: string[]): void;
}

export interface DeliveryStats {
  delivered: number;
  /** Rows a device refused for good (skipped). */
  refused: number;
  /** Sends that found the device unreachable (the row waits). */
  deferred: number;
  pushes: number;
  /** Devices being delivered to now. */
  pumping: number;
}

interface Pump {
  binding: Binding;
  /** Rows were added while the pump was reading: read again before stopping. */
  again: boolean;
}

type SendOutcome = 'delivered' | 'refused' | 'deferred';

export class Delivery {
  private readonly opts: DeliveryOptions;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly pumps = new Map<string, Pump>();
  private readonly counters = { delivered: 0, refused: 0, deferred: 0, pushes: 0 };
  private readonly inflight = new Set<() => void>();
  private unsubscribe: (() => void) | undefined;
  private cluster: DeliveryCluster | undefined;
  private stopped = false;
  /** Resolves when no pump runs (tests, stop). */
  private idleWaiters: Array<() => void> = [];

  constructor(options: DeliveryOptions) {
    this.opts = options;
    this.log = categoryLogger(options.logger, 'messaging');
    this.clock = options.clock ?? Date.now;
  }

  start(): void {
    // A device registered or refreshed: whatever its user's stream holds after its cursor goes to it.
    this.unsubscribe = this.opts.devices.onBinding((b) => this.pump(userOfAor(b.aor), b));
  }

  /** Set by a cluster worker before start (server/cluster). */
  setCluster(cluster: DeliveryCluster | undefined): void {
    this.cluster = cluster;
  }

  /** Rows were added on another worker (its DeliveryCluster.announce): the devices owned here get them. */
  kickFromPeer(users: readonly string[]): void {
    for (const user of users) this.kick(user);
  }

  /** Rows were added here for these users: the other workers of a cluster deliver to the devices they own. */
  announce(users: string[]): void {
    this.cluster?.announce(users);
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    for (const end of [...this.inflight]) end();
  }

  /**
   * Rows were added to `user`'s stream: each live device gets them; each sleeping one a push, for a
   * message from someone else (`push`), never for the user's own carbon copy or a receipt. `except`: the
   * device the rows came from, which is not kicked.
   */
  kick(user: string, push?: { id: string; from: string; body?: string | undefined }, except?: string): void {
    if (this.stopped) return;
    for (const binding of this.opts.devices.lookup(aorOfUser(user))) {
      // The device a message came from has it: its cursor moves past it with the next row it gets.
      if (except !== undefined && deviceKey(binding) === except) continue;
      if (!this.opts.devices.isAsleep(binding)) this.pump(user, binding);
      else if (push !== undefined && this.opts.devices.push !== undefined) {
        this.counters.pushes++;
        void this.opts.devices.push(binding, { ...push, aor: user }).catch((err: Error) => this.log.warn({ err: err.message, user }, 'message push failed'));
      }
    }
  }

  stats(): DeliveryStats {
    return { ...this.counters, pumping: this.pumps.size };
  }

  /** Resolves once no device is being delivered to. */
  idle(): Promise<void> {
    if (this.pumps.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(user: string, binding: Binding): void {
    if (this.stopped) return;
    const device = deviceKey(binding);
    if (this.cluster !== undefined && !this.cluster.owns(binding, device)) return;
    const key = `${user}\n${device}`;
    const running = this.pumps.get(key);
    if (running !== undefined) {
      // The newest binding of the device is where the rest goes (a new connection after a wake-up).
      running.binding = binding;
      running.again = true;
      return;
    }
    const pump: Pump = { binding, again: false };
    this.pumps.set(key, pump);
    this.run(user, device, pump)
      .catch((err: Error) => this.log.warn({ err: err.message, user, device }, 'chat delivery stopped by a store failure; it resumes at the next message or REGISTER'))
      .finally(() => {
        this.pumps.delete(key);
        if (this.pumps.size === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  private async run(user: string, device: string, pump: Pump): Promise<void> {
    const { repo } = this.opts;
    let cursor = await repo.cursor(user, device);
    do {
      pump.again = false;
      /** The binding a send found unreachable, if one did. */
      let deferredOn: Binding | undefined;
      /** The device's own messages passed over since the last write: the cursor moves past them lazily. */
      let skipped: number | undefined;
      read: for (;;) {
        const rows = await repo.inbox(user, cursor, BATCH);
        for (const row of rows) {
          if (this.stopped) return;
          const message = row.message;
          const own = message.sender === user;
          // The sender's own device already has its message: only its other devices get the copy.
          if (own && message.originDevice === device) {
            skipped = cursor = row.seq;
            continue;
          }
          const binding = pump.binding;
          const outcome = await this.deliver(row, binding);
          if (outcome === 'deferred') {
            deferredOn = binding;
            break read;
          }
          // One transaction: the cursor, and the receipt of a message from someone else.
          await repo.advance(user, device, row.seq, this.clock(), outcome === 'delivered' && !own && message.kind === 'text' ? message.seq : undefined);
          cursor = row.seq;
          skipped = undefined;
        }
        if (rows.length < BATCH) break;
      }
      if (skipped !== undefined) await repo.advance(user, device, skipped, this.clock());
      // Unreachable where it was sent: the rest waits for the device's next REGISTER, unless that came while
      // the send waited (a new connection after a network change or a wake-up): then it goes there now.
      if (deferredOn !== undefined && pump.binding === deferredOn) return;
    } while (pump.again && !this.stopped);
  }

  private async deliver(row: InboxEntry, binding: Binding): Promise<SendOutcome> {
    const out = await this.opts.render(row);
    if (out === undefined) return 'refused';
    const outcome = await this.send(this.request(row, out, binding), binding);
    this.counters[outcome]++;
    if (outcome !== 'delivered' && this.log.isLevelEnabled('debug')) this.log.debug({ id: row.message.id, aor: binding.aor, outcome }, 'chat message not delivered to a device');
    return outcome;
  }

  private request(row: InboxEntry, out: OutgoingMessage, binding: Binding): SipRequest {
    const target = this.opts.devices.target(binding);
    const from = out.fromName === undefined ? `<${out.from}>` : `"${out.fromName.replace(/["\\]/g, '')}" <${out.from}>`;
    const fields: Array<[string, string]> = [['Max-Forwards', '70']];
    for (const r of target.route ?? []) fields.push(['Route', r]);
    fields.push(
      ['From', `${from};tag=${newTag()}`],
      ['To', `<${out.to}>`],
      ['Call-ID', newCallId()],
      ['CSeq', '1 MESSAGE'],
      // When it was sent, for a message that waited for the device (RFC 3261 §20.17).
      ['Date', new Date(row.message.createdAt).toUTCString()],
      ['X-Message-Id', row.message.id],
      ['Content-Type', out.contentType],
    );
    const request = new SipRequest({ method: 'MESSAGE', uri: target.uri, headers: fields.map(([name, value]) => makeField(headerKey(name), name, value)) });
    request.setBody(out.body);
    return request;
  }

  private send(request: SipRequest, binding: Binding): Promise<SendOutcome> {
    return new Promise<SendOutcome>((resolve) => {
      let done = false;
      const finish = (outcome: SendOutcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inflight.delete(end);
        resolve(outcome);
      };
      const end = (): void => finish('deferred');
      const timer = setTimeout(end, this.opts.timeoutMs);
      this.inflight.add(end);
      try {
        this.opts.stack.sendRequest(request, this.opts.devices.target(binding).destination, {
          onResponse: (res: SipResponse) => {
            if (res.status < 200) return;
            finish(res.status < 300 ? 'delivered' : RETRY_LATER.has(res.status) ? 'deferred' : 'refused');
          },
          onTimeout: end,
          onTransportError: end,
        });
      } catch (err) {
        this.log.debug({ err: (err as Error).message, aor: binding.aor }, 'chat message could not be sent to a device');
        end();
      }
    });
  }
}
