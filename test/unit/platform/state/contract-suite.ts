/**
 * What every SharedState does, whichever holds it: run against the in-process state and against Redis. Each test
 * opens two instances over the same state, as two nodes would (for Redis: two pairs of connections).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { SharedState } from '../../../../platform/state/index.js';

export interface StatePair {
  a: SharedState;
  b: SharedState;
  /** Closes both and removes what they left. */
  cleanup(): Promise<void>;
}

/** A TTL short enough to wait out, long enough that a loaded machine does the steps inside it. */
const SHORT_MS = 500;
const AFTER_SHORT_MS = 700;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Subscribes and keeps what arrives; next() waits (3 s at most) for the next message. */
function collect(state: SharedState, channel: string): Promise<{ messages: string[]; next: () => Promise<string>; stop: () => void }> {
  const messages: string[] = [];
  const waiters: Array<(m: string) => void> = [];
  return state.subscribe(channel, (m) => {
    messages.push(m);
    waiters.shift()?.(m);
  }).then((stop) => ({
    messages,
    stop,
    next: () => new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message on ${channel} within 3 s`)), 3000);
      waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    }),
  }));
}

export function sharedStateContract(open: () => Promise<StatePair>): void {
  const withPair = (fn: (pair: StatePair) => Promise<void>) => async () => {
    const pair = await open();
    try {
      await fn(pair);
    } finally {
      await pair.cleanup();
    }
  };

  it('lets a key be claimed once, by one node only', withPair(async ({ a, b }) => {
    assert.equal(await a.claimOnce('nonce:abc:1', 30_000), true);
    assert.equal(await a.claimOnce('nonce:abc:1', 30_000), false);
    assert.equal(await b.claimOnce('nonce:abc:1', 30_000), false);
    assert.equal(await b.claimOnce('nonce:abc:2', 30_000), true);
  }));

  it('lets a claim be made again once its TTL is over', withPair(async ({ a, b }) => {
    assert.equal(await a.claimOnce('nonce:short', SHORT_MS), true);
    assert.equal(await b.claimOnce('nonce:short', SHORT_MS), false);
    await sleep(AFTER_SHORT_MS);
    assert.equal(await b.claimOnce('nonce:short', SHORT_MS), true);
  }));

  it('counts one window across nodes and starts a new one when it has passed', withPair(async ({ a, b }) => {
    assert.equal(await a.count('rate:10.0.0.1', SHORT_MS), 1);
    assert.equal(await b.count('rate:10.0.0.1', SHORT_MS), 2);
    assert.equal(await a.count('rate:10.0.0.1', SHORT_MS), 3);
    assert.equal(await a.count('rate:10.0.0.2', SHORT_MS), 1);
    await sleep(AFTER_SHORT_MS);
    assert.equal(await b.count('rate:10.0.0.1', SHORT_MS), 1);
  }));

  it('keeps a value for its TTL, seen by the other node, until it is deleted or expires', withPair(async ({ a, b }) => {
    assert.equal(await b.get('ban:10.0.0.9'), undefined);
    await a.put('ban:10.0.0.9', 'flood', 30_000);
    assert.equal(await b.get('ban:10.0.0.9'), 'flood');
    await b.put('ban:10.0.0.9', 'auth', 30_000);
    assert.equal(await a.get('ban:10.0.0.9'), 'auth');
    await b.delete('ban:10.0.0.9');
    assert.equal(await a.get('ban:10.0.0.9'), undefined);
    await a.put('ban:10.0.0.8', 'flood', SHORT_MS);
    assert.equal(await b.get('ban:10.0.0.8'), 'flood');
    await sleep(AFTER_SHORT_MS);
    assert.equal(await b.get('ban:10.0.0.8'), undefined);
  }));

  it('delivers a message published on one node to the other node\'s subscriber, and none after it unsubscribes', withPair(async ({ a, b }) => {
    const heard = await collect(b, 'meetings');
    const barrier = await collect(b, 'barrier');
    const first = heard.next();
    await a.publish('meetings', 'm1');
    assert.equal(await first, 'm1');
    heard.stop();
    await a.publish('meetings', 'after-unsubscribe');
    const marker = barrier.next();
    await a.publish('barrier', 'done');
    assert.equal(await marker, 'done');
    assert.deepEqual(heard.messages, ['m1']);
    barrier.stop();
  }));

  it('refuses a key without a positive TTL, so that nothing is kept for ever', withPair(async ({ a }) => {
    await assert.rejects(a.claimOnce('k', 0), RangeError);
    await assert.rejects(a.count('k', -5), RangeError);
    await assert.rejects(a.put('k', 'v', 1.5), RangeError);
  }));
}
