import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemorySpace, MemoryState, RedisState } from '../../../../platform/state/index.js';
import { silentLogger } from '../../../../src/log/index.js';
import { captureLogger } from '../../../helpers/log-capture.js';
import { REDIS_URL, deleteKeysUnder, keysUnder, rawClient, requireRedis, startOwnRedis, testPrefix, type OwnRedis } from '../../../helpers/redis.js';
import { freePort } from '../../../../support/tools.js';
import { sharedStateContract } from './contract-suite.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(25);
  }
}

describe('shared state in process', () => {
  sharedStateContract(async () => {
    const space = new MemorySpace();
    const a = new MemoryState({ space });
    const b = new MemoryState({ space });
    return { a, b, cleanup: async () => { await a.close(); await b.close(); } };
  });

  it('removes expired keys from memory on its sweep, not only when they are read', async () => {
    const space = new MemorySpace();
    const state = new MemoryState({ space, sweepMs: 50 });
    try {
      await state.put('a', '1', 60);
      await state.claimOnce('b', 60);
      await state.put('c', '1', 60_000);
      assert.equal(space.entries.size, 3);
      await sleep(200);
      assert.deepEqual([...space.entries.keys()], ['softswitch:c']);
    } finally {
      await state.close();
    }
  });
});

describe('shared state in Redis', () => {
  before(requireRedis);
  const prefixes: string[] = [];
  after(async () => {
    for (const prefix of prefixes) await deleteKeysUnder(prefix);
  });

  const openPair = async (prefix: string) => {
    const a = await RedisState.open({ url: REDIS_URL, logger: silentLogger(), prefix });
    const b = await RedisState.open({ url: REDIS_URL, logger: silentLogger(), prefix });
    return { a, b };
  };

  sharedStateContract(async () => {
    const prefix = testPrefix();
    prefixes.push(prefix);
    const { a, b } = await openPair(prefix);
    return {
      a, b, cleanup: async () => {
        await a.close();
        await b.close();
        await deleteKeysUnder(prefix);
      },
    };
  });

  it('writes every key under its prefix with a TTL', async () => {
    const prefix = testPrefix();
    prefixes.push(prefix);
    const { a, b } = await openPair(prefix);
    try {
      await a.claimOnce('nonce:x:1', 60_000);
      await a.count('rate:10.0.0.1', 60_000);
      await b.count('rate:10.0.0.1', 60_000);
      await b.put('ban:10.0.0.1', 'flood', 60_000);
      const keys = await keysUnder(prefix);
      assert.deepEqual([...keys.keys()].sort(), [`${prefix}ban:10.0.0.1`, `${prefix}nonce:x:1`, `${prefix}rate:10.0.0.1`]);
      for (const [key, ttl] of keys) assert.ok(ttl > 0 && ttl <= 60_000, `${key} has TTL ${ttl}`);
      assert.deepEqual({ ...a.stats(), operations: 0 }, { backend: 'redis', connected: true, degradedSince: undefined, operations: 0, failures: 0, dropped: 0 });
      assert.equal(a.stats().operations, 2);
    } finally {
      await a.close();
      await b.close();
      await deleteKeysUnder(prefix);
    }
  });

  it('answers from this process without throwing while Redis is away, logs the outage and the recovery once each', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const { logger, lines } = captureLogger();
    const logged = (msg: RegExp): Array<{ level: number }> => lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => msg.test(l.msg));
    const state = await RedisState.open({ url, logger, connectWaitMs: 200, retryMaxMs: 200 });
    let own: OwnRedis | undefined;
    try {
      // Nothing listens on the port: the claim is this process's alone, single use all the same.
      assert.equal(await state.claimOnce('nonce:n:1', 60_000), true);
      assert.equal(await state.claimOnce('nonce:n:1', 60_000), false);
      assert.equal(await state.count('rate:r', 60_000), 1);
      assert.equal(await state.count('rate:r', 60_000), 2);
      await state.put('ban:b', 'flood', 60_000);
      assert.equal(await state.get('ban:b'), 'flood');
      const heard: string[] = [];
      await state.subscribe('meetings', (m) => heard.push(m));
      await state.publish('meetings', 'local-only');
      await until('the local subscriber hears the dropped message', () => heard.length === 1);
      const down = state.stats();
      assert.equal(down.connected, false);
      assert.ok(down.degradedSince !== undefined);
      assert.ok(down.failures >= 7, `failures ${down.failures}`);
      assert.equal(down.dropped, 1);
      assert.equal(logged(/degraded/).length, 1);
      assert.equal(logged(/degraded/)[0]!.level, 40);

      own = await startOwnRedis(port);
      await until('reconnected', () => state.stats().connected);
      assert.equal(state.stats().degradedSince, undefined);
      assert.equal(logged(/recovered/).length, 1);
      assert.equal(await state.claimOnce('nonce:n:2', 60_000), true);
      const check = rawClient(own.url);
      try {
        assert.equal(await check.exists('softswitch:nonce:n:2'), 1);
        // The subscription made during the outage is in Redis now: another node's message reaches it.
        const end = Date.now() + 5000;
        while (heard.length < 2 && Date.now() < end) {
          await check.publish('softswitch:meetings', 'from-another-node');
          await sleep(100);
        }
        assert.equal(heard[1], 'from-another-node');
      } finally {
        check.disconnect();
      }

      await own.stop();
      own = undefined;
      assert.equal(await state.claimOnce('nonce:n:3', 60_000), true);
      await until('degraded again', () => state.stats().degradedSince !== undefined);
      assert.equal(logged(/degraded/).length, 2);
    } finally {
      await state.close();
      await own?.stop();
    }
  });
});
