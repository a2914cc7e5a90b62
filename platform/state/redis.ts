/**
 * The shared state in Redis (`cluster.redis`): what every node sees. Two connections, as Redis wants: one for
 * commands, one in subscriber mode.
 *
 * An outage never reaches the callers as an error, and never holds them up past `commandTimeoutMs`: commands are not
 * queued while disconnected (enableOfflineQueue off), so each one fails at once and is answered by a local
 * fallback (an in-process MemoryState), per method:
 * - claimOnce, count: claimed / counted in this process only (a nonce count may then be used once per node, a rate
 *   window counts this node's share);
 * - put, get, delete: on this process's copy; what was put during the outage stays local (not written back later);
 * - publish: heard by this process's subscribers only, counted in stats().dropped;
 * - subscribe: registered here at once and (re)subscribed in Redis whenever the subscriber connection is ready.
 * The first failure of an outage logs one warning ("degraded"); the connection comes back by itself (retryStrategy),
 * and one info line says so with the outage's length.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../../src/log/index.js';
import { MemoryState } from './memory.js';
import { DEFAULT_PREFIX, type SharedState, type SharedStateStats, checkTtl } from './types.js';

/** INCR, and the window's expiry on its first count, in one step: two nodes counting at once see one window. */
const COUNT_SCRIPT = `local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

export interface RedisStateOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…`. */
  url: string;
  logger: Logger;
  prefix?: string;
  /** Longest a command may take before it is answered locally, ms. */
  commandTimeoutMs?: number;
  /** Longest pause between reconnection attempts, ms (they start at 100 ms and grow). */
  retryMaxMs?: number;
  /** How long open() waits for the first connection before it starts degraded, ms. */
  connectWaitMs?: number;
}

export class RedisState implements SharedState {
  private readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly local: MemoryState;
  /** Channel (prefixed) → its handlers in this process. */
  private readonly handlers = new Map<string, Set<(message: string) => void>>();
  private degradedSince: number | undefined;
  private operations = 0;
  private failures = 0;
  private dropped = 0;
  private closed = false;
  /** How long a subscribe waits for the subscriber connection while Redis is thought up (open()'s wait). */
  private connectWaitMs = 2000;

  /** Connects and waits (connectWaitMs) for the first connection; if none comes it starts degraded, not failed. */
  static async open(options: RedisStateOptions): Promise<RedisState> {
    const state = new RedisState(options);
    await state.firstConnection(options.connectWaitMs ?? 2000);
    return state;
  }

  private constructor(options: RedisStateOptions) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.logger = options.logger;
    this.local = new MemoryState({ prefix: this.prefix });
    const retryMaxMs = options.retryMaxMs ?? 2000;
    const common: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 500,
      connectTimeout: 2000,
      autoResubscribe: false,
      retryStrategy: (times) => Math.min(100 * times, retryMaxMs),
    };
    this.commands = new Redis(options.url, { ...common, connectionName: 'softswitch' });
    this.subscriber = new Redis(options.url, { ...common, connectionName: 'softswitch-sub' });
    this.commands.on('error', (err: Error) => this.failed(err));
    this.commands.on('close', () => { if (!this.closed) this.failed(new Error('connection to Redis closed')); });
    this.commands.on('ready', () => this.recovered());
    // Its errors are the same outage the command connection reports.
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('ready', () => void this.resubscribe());
    this.subscriber.on('message', (channel: string, message: string) => this.deliver(channel, message));
  }

  private async firstConnection(waitMs: number): Promise<void> {
    this.connectWaitMs = waitMs;
    await Promise.all([readyWithin(this.commands, waitMs), readyWithin(this.subscriber, waitMs)]);
    if (!this.ready()) this.failed(new Error(`no connection to Redis after ${waitMs} ms`));
  }

  private ready(): boolean {
    return this.commands.status === 'ready';
  }

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs);
    return this.attempt(
      async () => (await this.commands.set(this.prefix + key, '1', 'PX', ttlMs, 'NX')) === 'OK',
      () => this.local.claimOnceNow(key, ttlMs),
    );
  }

  async count(key: string, windowMs: number): Promise<number> {
    checkTtl(windowMs);
    return this.attempt(
      async () => Number(await this.commands.eval(COUNT_SCRIPT, 1, this.prefix + key, windowMs)),
      () => this.local.countNow(key, windowMs),
    );
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    checkTtl(ttlMs);
    return this.attempt(
      async () => { await this.commands.set(this.prefix + key, value, 'PX', ttlMs); },
      () => this.local.putNow(key, value, ttlMs),
    );
  }

  async get(key: string): Promise<string | undefined> {
    return this.attempt(
      async () => (await this.commands.get(this.prefix + key)) ?? undefined,
      () => this.local.getNow(key),
    );
  }

  async delete(key: string): Promise<void> {
    return this.attempt(
      async () => { await this.commands.del(this.prefix + key); },
      () => this.local.deleteNow(key),
    );
  }

  async publish(channel: string, message: string): Promise<void> {
    const name = this.prefix + channel;
    return this.attempt(
      async () => { await this.commands.publish(name, message); },
      () => {
        this.dropped++;
        setImmediate(() => this.deliver(name, message));
      },
    );
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => void> {
    const name = this.prefix + channel;
    let set = this.handlers.get(name);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(name, set);
      await this.subscribeInRedis(name);
    }
    set.add(handler);
    return () => {
      const current = this.handlers.get(name);
      if (current === undefined || !current.delete(handler) || current.size > 0) return;
      this.handlers.delete(name);
      if (this.subscriber.status === 'ready') void this.subscriber.unsubscribe(name).catch(() => undefined);
    };
  }

  /**
   * Subscribes `name` now, so that a message published after subscribe() resolves is heard. The subscriber connection
   * may still be connecting while Redis is up: waited for then; during an outage not (the 'ready' handler does it).
   */
  private async subscribeInRedis(name: string): Promise<void> {
    if (this.subscriber.status !== 'ready' && this.degradedSince === undefined) await readyWithin(this.subscriber, this.connectWaitMs);
    if (this.subscriber.status !== 'ready') return;
    await this.subscriber.subscribe(name).catch((err: Error) => this.logger.debug({ err, channel: name }, 'subscribe deferred'));
  }

  stats(): SharedStateStats {
    return {
      backend: 'redis',
      connected: this.ready(),
      degradedSince: this.degradedSince,
      operations: this.operations,
      failures: this.failures,
      dropped: this.dropped,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    await this.local.close();
    this.commands.disconnect();
    this.subscriber.disconnect();
  }

  /** Runs `shared` against Redis; if Redis fails, counts the failure and answers with `fallback` instead. */
  private async attempt<T>(shared: () => Promise<T>, fallback: () => T): Promise<T> {
    this.operations++;
    if (this.closed || !this.ready()) return this.fellBack(fallback, new Error(`Redis connection ${this.commands.status}`));
    try {
      const result = await shared();
      if (this.degradedSince !== undefined) this.recovered();
      return result;
    } catch (err) {
      return this.fellBack(fallback, err as Error);
    }
  }

  private fellBack<T>(fallback: () => T, err: Error): T {
    this.failures++;
    this.failed(err);
    return fallback();
  }

  /** The start of an outage logs once; the rest of it only counts. */
  private failed(err: Error): void {
    if (this.closed || this.degradedSince !== undefined) return;
    this.degradedSince = Date.now();
    this.logger.warn({ err: err.message }, 'shared state degraded: Redis unreachable, answering from this process alone');
  }

  private recovered(): void {
    if (this.closed || this.degradedSince === undefined || !this.ready()) return;
    const outageMs = Date.now() - this.degradedSince;
    this.degradedSince = undefined;
    this.logger.info({ outageMs }, 'shared state recovered: Redis reachable again');
  }

  private async resubscribe(): Promise<void> {
    const channels = [...this.handlers.keys()];
    if (channels.length === 0) return;
    await this.subscriber.subscribe(...channels).catch((err: Error) => this.logger.debug({ err }, 'resubscribe failed'));
  }

  private deliver(channel: string, message: string): void {
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(message);
      } catch (err) {
        this.logger.error({ err, channel }, 'a shared-state subscriber threw');
      }
    }
  }
}

/** Resolves when `client` is ready or after `waitMs`, whichever comes first. */
function readyWithin(client: Redis, waitMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, waitMs);
    client.once('ready', done);
  });
}
