import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MeetingSignals } from '../../../conference/meeting-signals.js';
import { RedisState } from '../../../platform/state/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { REDIS_URL, deleteKeysUnder, requireRedis, testPrefix } from '../../helpers/redis.js';

/** Waits until `list` has `n` entries (3 s at most). */
async function length(list: readonly string[], n: number): Promise<void> {
  const end = Date.now() + 3000;
  while (list.length < n) {
    if (Date.now() > end) throw new Error(`${list.length} signals, not ${n}: ${JSON.stringify(list)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('meeting signals', () => {
  it('without a shared state tells this process\'s streams and the other workers, as before', async () => {
    const signals = new MeetingSignals();
    await signals.listening;
    const heard: string[] = [];
    const relayed: string[] = [];
    signals.on('changed', (m) => heard.push(m));
    signals.setRemote((m) => relayed.push(m));
    signals.changed('m1');
    signals.fromPeer('m2');
    assert.deepEqual(heard, ['m1', 'm2']);
    assert.deepEqual(relayed, ['m1']);
  });

  describe('over Redis', () => {
    const prefix = testPrefix();
    before(requireRedis);
    after(() => deleteKeysUnder(prefix));

    it('lets two nodes hear each other\'s meeting changes, each its own once', async () => {
      const stateA = await RedisState.open({ url: REDIS_URL, logger: silentLogger(), prefix });
      const stateB = await RedisState.open({ url: REDIS_URL, logger: silentLogger(), prefix });
      const a = new MeetingSignals({ state: stateA, processId: 'node-a' });
      const b = new MeetingSignals({ state: stateB, processId: 'node-b' });
      try {
        await Promise.all([a.listening, b.listening]);
        const heardA: string[] = [];
        const heardB: string[] = [];
        a.on('changed', (m) => heardA.push(m));
        b.on('changed', (m) => heardB.push(m));
        a.changed('meeting-1');
        await length(heardB, 1);
        b.changed('meeting-2');
        await length(heardA, 2);
        // Had a heard its own change back through Redis, it would have come before meeting-2.
        assert.deepEqual(heardA, ['meeting-1', 'meeting-2']);
        assert.deepEqual(heardB, ['meeting-1', 'meeting-2']);
        // A stranger's message on the channel is no change.
        await stateA.publish('meetings', 'not json');
        await stateA.publish('meetings', JSON.stringify({ from: 'node-c' }));
        a.changed('meeting-3');
        await length(heardB, 3);
        assert.deepEqual(heardB, ['meeting-1', 'meeting-2', 'meeting-3']);
      } finally {
        a.close();
        b.close();
        await stateA.close();
        await stateB.close();
      }
    });
  });
});
