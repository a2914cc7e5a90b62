/**
 * The machine's Redis (127.0.0.1:6379, here and in CI) for the shared-state tests, each run under its own key prefix
 * and cleaned after; and a redis-server of a test's own, for the outage tests (the machine's is never stopped).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type Daemon, supervise } from '../../support/daemon.js';
import { requireTool } from '../../support/tools.js';

export const REDIS_URL = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6379';

/** A client that fails at once rather than queueing or retrying: a test wants to know. */
export function rawClient(url = REDIS_URL): Redis {
  return new Redis(url, { enableOfflineQueue: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
}

/** Throws a clear error when the machine's Redis does not answer (there is no skipping: the tests need it). */
export async function requireRedis(): Promise<void> {
  const client = rawClient();
  client.on('error', () => undefined);
  try {
    const pong = await Promise.race([
      client.ping(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer in 3 s')), 3000)),
    ]);
    if (pong !== 'PONG') throw new Error(`PING answered ${pong}`);
  } catch (err) {
    throw new Error(`Redis is not reachable at ${REDIS_URL} (${(err as Error).message}): the shared-state tests need it (apt-get install redis-server)`);
  } finally {
    client.disconnect();
  }
}

/** A key prefix no other run uses. */
export function testPrefix(): string {
  return `softswitch:test-${randomUUID().slice(0, 8)}:`;
}

/** Every key under `prefix`, with its remaining life in ms (-1: none). */
export async function keysUnder(prefix: string, url = REDIS_URL): Promise<Map<string, number>> {
  const client = rawClient(url);
  try {
    const out = new Map<string, number>();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) out.set(key, await client.pttl(key));
    } while (cursor !== '0');
    return out;
  } finally {
    client.disconnect();
  }
}

export async function deleteKeysUnder(prefix: string): Promise<void> {
  const keys = [...(await keysUnder(prefix)).keys()];
  if (keys.length === 0) return;
  const client = rawClient();
  try {
    await client.del(...keys);
  } finally {
    client.disconnect();
  }
}

export interface OwnRedis {
  readonly url: string;
  readonly daemon: Daemon;
  stop(): Promise<void>;
}

/** A redis-server of the test's own on `port` (no persistence, a temporary folder), answering PING before it returns. */
export async function startOwnRedis(port: number): Promise<OwnRedis> {
  const binary = requireTool('redis-server', 'redis-server');
  const dir = mkdtempSync(join(tmpdir(), 'softswitch-redis-'));
  const daemon = supervise(spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] }), 50);
  const url = `redis://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await daemon.terminate();
    rmSync(dir, { recursive: true, force: true });
  };
  const end = Date.now() + 10_000;
  for (;;) {
    const client = rawClient(url);
    client.on('error', () => undefined);
    const up = await client.ping().then(() => true, () => false);
    client.disconnect();
    if (up) return { url, daemon, stop };
    if (daemon.exitCode() !== undefined || Date.now() > end) {
      await stop();
      throw new Error(`redis-server on port ${port} did not start: ${daemon.log.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
