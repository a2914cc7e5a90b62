import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_TIMER_CONFIG as C, T1, T2, T4, nextTimerA, nextTimerE, nextTimerG, realTimers, timerA, timerB, timerD, timerE, timerF,
  timerG, timerH, timerI, timerJ, timerK, timerL, timerM,
} from '../../../src/transaction/index.js';
import { FakeClock } from '../../helpers/fake-clock.js';

describe('timer values (RFC 3261 Table 4, RFC 6026)', () => {
  it('T1 is 500 ms, T2 4 s, T4 5 s', () => {
    assert.deepEqual([T1, T2, T4], [500, 4000, 5000]);
    assert.deepEqual({ ...C }, { T1: 500, T2: 4000, T4: 5000 });
  });

  it('A, E and G start at T1; A doubles without limit, E and G double up to T2, E is T2 in Proceeding', () => {
    assert.deepEqual([timerA(C), timerE(C), timerG(C)], [500, 500, 500]);
    assert.equal(nextTimerA(4000), 8000);
    assert.equal(nextTimerE(2000, C, false), 4000);
    assert.equal(nextTimerE(4000, C, false), 4000);
    assert.equal(nextTimerE(500, C, true), 4000);
    assert.equal(nextTimerG(4000, C), 4000);
  });

  it('B, F, H, J (unreliable), L and M are 64*T1', () => {
    assert.deepEqual([timerB(C), timerF(C), timerH(C), timerJ(C, false), timerL(C), timerM(C)], Array(6).fill(32_000));
  });

  it('D is at least 32 s on unreliable transports; D, I, J and K are zero on reliable ones', () => {
    assert.equal(timerD(C, false), 32_000);
    assert.equal(timerD({ ...C, T1: 1000 }, false), 64_000);
    assert.deepEqual([timerD(C, true), timerI(C, true), timerJ(C, true), timerK(C, true)], [0, 0, 0, 0]);
    assert.deepEqual([timerI(C, false), timerK(C, false)], [5000, 5000]);
  });

  it('realTimers are unref\'d Node timers', async () => {
    let fired = false;
    const h = realTimers.setTimeout(() => (fired = true), 1);
    assert.equal((h as NodeJS.Timeout).hasRef(), false);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(fired, true);
    const h2 = realTimers.setTimeout(() => assert.fail('cleared timer fired'), 1);
    realTimers.clearTimeout(h2);
    await new Promise((r) => setTimeout(r, 10));
  });

  it('FakeClock fires due timers in order, including ones set while ticking', () => {
    const clock = new FakeClock();
    const order: string[] = [];
    clock.setTimeout(() => order.push('b@200'), 200);
    clock.setTimeout(() => {
      order.push('a@100');
      clock.setTimeout(() => order.push('c@150'), 50);
    }, 100);
    const d = clock.setTimeout(() => order.push('d'), 150);
    clock.clearTimeout(d);
    assert.equal(clock.pending, 2);
    clock.tick(199);
    assert.deepEqual(order, ['a@100', 'c@150']);
    clock.tick(1);
    assert.deepEqual(order, ['a@100', 'c@150', 'b@200']);
    assert.equal(clock.pending, 0);
    assert.equal(clock.now, 200);
  });
});
