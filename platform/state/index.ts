/**
 * Shared state (issue 20): in-process by default, Redis when `cluster.redis` is set. The Redis side of the SIP state
 * (bindings, nonces, bans, …) comes in the next steps; the first consumer is the meetings' change signal.
 */
import type { Logger } from '../../src/log/index.js';
import { MemoryState } from './memory.js';
import { RedisState } from './redis.js';
import type { SharedState } from './types.js';

export { DEFAULT_PREFIX, type SharedState, type SharedStateStats } from './types.js';
export { MemorySpace, MemoryState, type MemoryStateOptions } from './memory.js';
export { RedisState, type RedisStateOptions } from './redis.js';

/** Redis at `redisUrl`, or the in-process state when it is unset. */
export async function openSharedState(redisUrl: string | undefined, logger: Logger): Promise<SharedState> {
  return redisUrl === undefined ? new MemoryState() : RedisState.open({ url: redisUrl, logger });
}
