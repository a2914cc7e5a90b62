import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Balancer, type BackendChoice, type BackendRecord, type BalancerOptions } from '../../../balancer/index.js';
import { createLogger, silentLogger, type Logger } from '../../../src/log/index.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { createResponse } from '../../../src/sip/index.js';
import { FakeStack, MemoryRoutingRepository, type SentProbe, settle } from './helpers.js';

const OPTIONS: BalancerOptions = { probeIntervalMs: 10_000, failureThreshold: 3, recoveryThreshold: 2, probeTimeoutMs: 2000, reloadIntervalMs: 0 };

function captureLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level: 'trace', destination }), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function createOk(s: SentProbe) {
  return createResponse(s.request, 200);
}

function counts(picks: BackendChoice[], backends: BackendRecord[]): number[] {
  return backends.map((b) => picks.filter((p) => p.id === b.id).length);
}

describe('Balancer', () => {
  let repo: MemoryRoutingRepository;
  let stack: FakeStack;
  let clock: FakeClock;

  function balancer(options: Partial<BalancerOptions> = {}, logger: Logger = silentLogger()): Balancer {
    return new Balancer({ stack, repository: repo, logger, options: { ...OPTIONS, ...options }, timers: clock, clock: () => 1_700_000_000_000 + clock.now });
  }

  beforeEach(() => {
    repo = new MemoryRoutingRepository();
    stack = new FakeStack();
    clock = new FakeClock();
  });

  describe('algorithms', () => {
    it('round-robin spreads 300 sticky keys over 3 backends, 100 each', async () => {
      const backends = await repo.pool('fs', 'round-robin', [1, 1, 1]);
      const b = balancer();
      await b.reload();
      const picks = Array.from({ length: 300 }, (_, i) => b.candidates('fs', `sip:user${i}@example.com`)[0]!);
      assert.deepEqual(counts(picks, backends), [100, 100, 100]);
    });

    it('round-robin without a key takes the backends in turn', async () => {
      const backends = await repo.pool('fs', 'round-robin', [1, 1, 1]);
      const b = balancer();
      await b.reload();
      const ids = Array.from({ length: 6 }, () => b.candidates('fs')[0]!.id);
      const [x, y, z] = backends.map((r) => r.id);
      assert.deepEqual(ids, [x, y, z, x, y, z]);
    });

    it('weighted with weights 1:2:3 gives 600 requests as 100, 200, 300', async () => {
      const backends = await repo.pool('fs', 'weighted', [1, 2, 3]);
      const b = balancer();
      await b.reload();
      const picks = Array.from({ length: 600 }, () => b.candidates('fs')[0]!);
      assert.deepEqual(counts(picks, backends), [100, 200, 300]);
    });

    it('weighted is smooth (nginx): weights 5:1:1 give a a b a c a a', async () => {
      const backends = await repo.pool('fs', 'weighted', [5, 1, 1]);
      const b = balancer();
      await b.reload();
      const name = new Map(backends.map((r, i) => [r.id, 'abc'[i]]));
      assert.equal(Array.from({ length: 7 }, () => name.get(b.candidates('fs')[0]!.id)).join(' '), 'a a b a c a a');
    });

    it('least-calls picks the backend with the fewest calls in progress, ties by round-robin', async () => {
      const [x, y, z] = await repo.pool('fs', 'least-calls', [1, 1, 1]);
      const b = balancer();
      await b.reload();
      const choice = (r: BackendRecord): BackendChoice => ({ id: r.id, set: r.set, uri: r.uri });
      // All idle: round-robin.
      assert.deepEqual([b.candidates('fs')[0]!.id, b.candidates('fs')[0]!.id, b.candidates('fs')[0]!.id], [x!.id, y!.id, z!.id]);
      b.callStarted(choice(x!));
      b.callStarted(choice(x!));
      b.callStarted(choice(z!));
      assert.equal(b.candidates('fs')[0]!.id, y!.id);
      b.callStarted(choice(y!));
      b.callStarted(choice(y!));
      assert.equal(b.candidates('fs')[0]!.id, z!.id);
      // The failover order after the pick is by calls in progress too: z(1), then x(2) before y(2) by rotation.
      assert.deepEqual(b.candidates('fs').map((c) => c.id), [z!.id, x!.id, y!.id]);
      b.callEnded(choice(x!));
      b.callEnded(choice(x!));
      b.callEnded(choice(x!)); // never below zero
      assert.equal(b.candidates('fs')[0]!.id, x!.id);
      assert.equal(b.states().find((s) => s.id === x!.id)?.activeCalls, 0);
    });

    it('100 calls started on what least-calls picks end up spread 34/33/33', async () => {
      const backends = await repo.pool('fs', 'least-calls', [1, 1, 1]);
      const b = balancer();
      await b.reload();
      for (let i = 0; i < 100; i++) b.callStarted(b.candidates('fs')[0]!);
      assert.deepEqual(b.states().map((s) => s.activeCalls), [34, 33, 33]);
      assert.equal(backends.length, 3);
    });

    it('an unknown set has no candidates', async () => {
      const b = balancer();
      await b.reload();
      assert.deepEqual(b.candidates('nope'), []);
      assert.deepEqual(b.candidates('nope', 'sip:a@example.com'), []);
    });
  });

  describe('stickiness and failover order', () => {
    it('the same key keeps the same first backend while other keys rotate', async () => {
      await repo.pool('fs', 'round-robin', [1, 1, 1]);
      const b = balancer();
      await b.reload();
      const alice = b.candidates('fs', 'sip:alice@example.com')[0]!.id;
      for (let i = 0; i < 10; i++) {
        b.candidates('fs', `sip:other${i}@example.com`);
        b.candidates('fs');
        assert.equal(b.candidates('fs', 'sip:alice@example.com')[0]!.id, alice);
      }
    });

    it('a key whose backend went down or was disabled gets a new backend and keeps it after recovery', async () => {
      const backends = await repo.pool('fs', 'round-robin', [1, 1, 1]);
      const b = balancer();
      await b.reload();
      const first = b.candidates('fs', 'sip:alice@example.com')[0]!;
      for (let i = 0; i < OPTIONS.failureThreshold; i++) b.markFailure(first, 'timeout');
      const second = b.candidates('fs', 'sip:alice@example.com')[0]!;
      assert.notEqual(second.id, first.id);
      for (let i = 0; i < OPTIONS.recoveryThreshold; i++) b.markSuccess(first);
      assert.equal(b.states().find((s) => s.id === first.id)?.health, 'up');
      assert.equal(b.candidates('fs', 'sip:alice@example.com')[0]!.id, second.id);
      await repo.setBackendEnabled(second.id, false);
      await b.reload();
      const third = b.candidates('fs', 'sip:alice@example.com')[0]!;
      assert.ok(third.id !== second.id && backends.some((r) => r.id === third.id));
    });

    it('candidates: the pick first, then the other healthy ones in rotation, the down ones last, never a disabled one', async () => {
      const [a, b2, c, d, e] = await repo.pool('fs', 'round-robin', [1, 1, 1, 1, 1]);
      await repo.setBackendEnabled(e!.id, false);
      const b = balancer();
      await b.reload();
      for (let i = 0; i < OPTIONS.failureThreshold; i++) b.markFailure({ id: b2!.id, set: 'fs', uri: b2!.uri }, '503');
      const list = b.candidates('fs');
      assert.deepEqual(list.map((x) => x.id), [a!.id, c!.id, d!.id, b2!.id]);
      assert.deepEqual(list[0], { id: a!.id, set: 'fs', uri: a!.uri });
      assert.deepEqual(b.candidates('fs').map((x) => x.id), [c!.id, d!.id, a!.id, b2!.id]);
    });

    it('weighted failover order after the pick is by weight, heaviest first', async () => {
      const [a, b2, c] = await repo.pool('fs', 'weighted', [1, 5, 3]);
      const b = balancer();
      await b.reload();
      const list = b.candidates('fs').map((x) => x.id);
      assert.equal(list[0], b2!.id);
      assert.deepEqual(list.slice(1), [c!.id, a!.id]);
    });

    it('when every backend is down they are still returned, rather than nothing', async () => {
      const backends = await repo.pool('fs', 'round-robin', [1, 1]);
      const b = balancer();
      await b.reload();
      for (const r of backends) for (let i = 0; i < 3; i++) b.markFailure({ id: r.id, set: 'fs', uri: r.uri }, 'timeout');
      assert.deepEqual(b.candidates('fs', 'sip:alice@example.com').map((x) => x.id).sort(), backends.map((r) => r.id).sort());
    });
  });

  describe('passive health', () => {
    it('failureThreshold consecutive failures mark a backend down, with one warning; a success in between resets the count', async () => {
      const [x] = await repo.pool('fs', 'round-robin', [1, 1]);
      const { logger, lines } = captureLogger();
      const b = balancer({}, logger);
      await b.reload();
      const c: BackendChoice = { id: x!.id, set: 'fs', uri: x!.uri };
      b.markFailure(c, 'timeout');
      b.markFailure(c, 'timeout');
      b.markSuccess(c);
      assert.deepEqual(b.states()[0], { id: x!.id, set: 'fs', uri: x!.uri, weight: 1, enabled: true, health: 'up', activeCalls: 0, failures: 0, lastSeen: undefined, probeMs: undefined });
      b.markFailure(c, 'timeout');
      b.markFailure(c, 'timeout');
      assert.equal(b.states()[0]!.health, 'up');
      b.markFailure(c, '503 Service Unavailable');
      b.markFailure(c, 'timeout');
      b.markFailure(c, 'timeout');
      assert.equal(b.states()[0]!.health, 'down');
      assert.equal(b.states()[0]!.failures, 5);
      const warnings = lines().filter((l) => l.msg === 'backend down');
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.reason, '503 Service Unavailable');
      assert.equal(warnings[0]!.cat, 'proxy.balancer');
    });

    it('an unknown backend is offered as healthy, and a first answer makes it up', async () => {
      const [x] = await repo.pool('fs', 'round-robin', [1]);
      const b = balancer();
      await b.reload();
      assert.equal(b.states()[0]!.health, 'unknown');
      assert.equal(b.candidates('fs')[0]!.id, x!.id);
      b.markSuccess(b.candidates('fs')[0]!);
      assert.equal(b.states()[0]!.health, 'up');
    });
  });

  describe('OPTIONS probing', () => {
    it('start() probes every enabled backend with an OPTIONS to its URI, and again every probeIntervalMs', async () => {
      const [x, y] = await repo.pool('fs', 'round-robin', [1, 1, 1]);
      await repo.addBackend({ set: 'fs', uri: 'sip:10.9.9.9;transport=tcp', enabled: false });
      await repo.addBackend({ set: 'trunk', uri: 'sips:[2001:db8::5]:5061' });
      const b = balancer();
      await b.start();
      await settle();
      assert.equal(stack.sent.length, 4);
      const p = stack.sent[0]!;
      assert.equal(p.request.method, 'OPTIONS');
      assert.equal(p.request.uri, x!.uri);
      assert.deepEqual(p.destination, { protocol: 'udp', address: '10.0.1.1', port: 5060 });
      assert.equal(p.request.get('cseq'), `${p.request.get('cseq')!.split(' ')[0]} OPTIONS`);
      assert.equal(p.request.get('max-forwards'), '70');
      assert.match(p.request.get('from')!, /^<sip:balancer@192\.0\.2\.1>;tag=/);
      assert.equal(p.request.get('to'), `<${x!.uri}>`);
      assert.deepEqual(stack.sent[3]!.destination, { protocol: 'tls', address: '2001:db8::5', port: 5061 });
      assert.ok(!stack.sent.some((s) => s.destination.address === '10.9.9.9'));
      for (const s of stack.sent) s.user.onResponse(createOk(s), {} as never);
      stack.sent.length = 0;
      clock.tick(OPTIONS.probeIntervalMs - 1);
      await settle();
      assert.equal(stack.sent.length, 0);
      clock.tick(1);
      await settle();
      assert.equal(stack.sent.length, 4);
      assert.equal(stack.sent.filter((s) => s.destination.address === '10.0.1.2').length, 1);
      assert.ok(y !== undefined);
      b.stop();
    });

    it('a final answer other than 408, 500 and 503 (200, 404) counts as alive and sets lastSeen; 408, 500, 503 and a timeout count as failures (isNextHopFailure, as for calls)', async () => {
      const [x] = await repo.pool('fs', 'round-robin', [1]);
      const b = balancer({ failureThreshold: 10 });
      await b.start();
      const state = () => b.states().find((s) => s.id === x!.id)!;
      const round = async (act: () => void) => {
        await settle();
        act();
        clock.tick(OPTIONS.probeIntervalMs);
      };
      await round(() => stack.answer('10.0.1.1', 404));
      assert.deepEqual([state().health, state().failures, state().lastSeen], ['up', 0, 1_700_000_000_000]);
      await round(() => stack.answer('10.0.1.1', 503));
      await round(() => stack.answer('10.0.1.1', 408));
      await round(() => stack.drop('10.0.1.1')); // unanswered: the probe's own timeout fires
      await round(() => stack.answer('10.0.1.1', 500));
      assert.equal(state().failures, 4);
      await round(() => stack.answer('10.0.1.1', 200));
      assert.equal(state().failures, 0);
      assert.equal(state().lastSeen, 1_700_000_000_000 + 5 * OPTIONS.probeIntervalMs);
      b.stop();
    });

    it('keeps the round trip of the last answered probe (probeMs, for /metrics); an unanswered probe leaves it', async () => {
      const [x] = await repo.pool('fs', 'round-robin', [1]);
      const b = balancer({ failureThreshold: 10 });
      await b.start();
      const state = () => b.states().find((s) => s.id === x!.id)!;
      await settle();
      assert.equal(state().probeMs, undefined);
      clock.tick(37);
      stack.answer('10.0.1.1', 200);
      assert.equal(state().probeMs, 37);
      clock.tick(OPTIONS.probeIntervalMs - 37);
      await settle();
      stack.drop('10.0.1.1');
      clock.tick(OPTIONS.probeTimeoutMs);
      assert.equal(state().failures, 1);
      assert.equal(state().probeMs, 37);
      b.stop();
    });

    it('a silent backend goes down after failureThreshold probe timeouts and comes back after recoveryThreshold answers', async () => {
      const [x, y] = await repo.pool('fs', 'round-robin', [1, 1]);
      const b = balancer();
      await b.start();
      const health = () => b.states().map((s) => s.health);
      for (let i = 1; i <= OPTIONS.failureThreshold; i++) {
        await settle();
        stack.answer('10.0.1.2', 200);
        stack.drop('10.0.1.1');
        clock.tick(OPTIONS.probeTimeoutMs);
        assert.deepEqual(health(), [i < OPTIONS.failureThreshold ? 'unknown' : 'down', 'up'], `after ${i} timeouts`);
        clock.tick(OPTIONS.probeIntervalMs - OPTIONS.probeTimeoutMs);
      }
      assert.deepEqual(b.candidates('fs').map((c) => c.id), [y!.id, x!.id]);
      await settle();
      stack.answer('10.0.1.1', 200);
      assert.deepEqual(health(), ['down', 'up']);
      clock.tick(OPTIONS.probeIntervalMs);
      await settle();
      stack.answer('10.0.1.1', 200);
      assert.deepEqual(health(), ['up', 'up']);
      b.stop();
    });

    it('after stop() no probe is sent and late answers count for nothing', async () => {
      await repo.pool('fs', 'round-robin', [1]);
      const b = balancer();
      await b.start();
      await settle();
      b.stop();
      stack.answer('10.0.1.1', 200);
      assert.equal(b.states()[0]!.health, 'unknown');
      clock.tick(OPTIONS.probeIntervalMs * 3);
      await settle();
      assert.equal(stack.sent.length, 0);
      assert.equal(clock.pending, 0);
    });

    it('a backend URI that does not resolve is a failed probe', async () => {
      await repo.addBackend({ set: 'fs', uri: 'sip:fs.invalid' });
      const b = balancer({ failureThreshold: 1 });
      await b.start();
      await settle();
      assert.equal(b.states()[0]!.health, 'down');
      b.stop();
    });
  });

  describe('reload', () => {
    it('keeps health, calls in progress, failure counts and sticky keys of backends that still exist', async () => {
      const [x, y, z] = await repo.pool('fs', 'least-calls', [1, 1, 1]);
      const b = balancer();
      await b.reload();
      const alice = b.candidates('fs', 'sip:alice@example.com')[0]!;
      b.callStarted(alice);
      b.callStarted(alice);
      const cy: BackendChoice = { id: y!.id, set: 'fs', uri: y!.uri };
      for (let i = 0; i < 3; i++) b.markFailure(cy, 'timeout');
      b.markFailure({ id: z!.id, set: 'fs', uri: z!.uri }, 'timeout');
      await repo.addBackend({ set: 'fs', uri: 'sip:10.0.1.9' });
      const summary = await b.reload();
      assert.equal(summary.backends, 4);
      const byId = new Map(b.states().map((s) => [s.id, s]));
      assert.equal(byId.get(alice.id)!.activeCalls, 2);
      assert.equal(byId.get(y!.id)!.health, 'down');
      assert.equal(byId.get(z!.id)!.failures, 1);
      assert.equal(b.candidates('fs', 'sip:alice@example.com')[0]!.id, alice.id);
      assert.equal(b.states().length, 4);
      assert.ok(x !== undefined);
    });

    it('a disabled backend gets no new requests but its calls still end; a removed one disappears', async () => {
      const [x, y] = await repo.pool('fs', 'round-robin', [1, 1]);
      const b = balancer();
      await b.reload();
      const cx: BackendChoice = { id: x!.id, set: 'fs', uri: x!.uri };
      b.callStarted(cx);
      await repo.setBackendEnabled(x!.id, false);
      await b.reload();
      assert.deepEqual(b.candidates('fs').map((c) => c.id), [y!.id]);
      assert.equal(b.states().find((s) => s.id === x!.id)?.enabled, false);
      b.callEnded(cx);
      assert.equal(b.states().find((s) => s.id === x!.id)?.activeCalls, 0);
      await repo.removeBackend(x!.id);
      await b.reload();
      assert.deepEqual(b.states().map((s) => s.id), [y!.id]);
      b.callEnded(cx); // a call ending on a removed backend is harmless
    });

    it('an algorithm changed in the store applies at the next reload', async () => {
      const backends = await repo.pool('fs', 'round-robin', [1, 3]);
      const b = balancer();
      await b.reload();
      await repo.putSet({ name: 'fs', algorithm: 'weighted' });
      await b.reload();
      const picks = Array.from({ length: 40 }, () => b.candidates('fs')[0]!);
      assert.deepEqual(counts(picks, backends), [10, 30]);
    });

    it('a store failure keeps the old tables, rejects, warns once, and the next reload recovers', async () => {
      const [x] = await repo.pool('fs', 'round-robin', [1]);
      await repo.addRoute({ pattern: '0(\\d+)', replace: '+49$1', set: 'fs', priority: 0, description: '' });
      const { logger, lines } = captureLogger();
      const b = balancer({}, logger);
      await b.reload();
      repo.failWith = new Error('connect ECONNREFUSED 127.0.0.1:3306');
      await assert.rejects(b.reload(), /ECONNREFUSED/);
      await assert.rejects(b.reload(), /ECONNREFUSED/);
      assert.equal(b.candidates('fs')[0]!.id, x!.id);
      assert.equal(b.routing.matchRoute('030123')?.number, '+4930123');
      const warnings = lines().filter((l) => l.level === 40);
      assert.equal(warnings.length, 1);
      assert.match(String(warnings[0]!.msg), /keeping the tables loaded before/);
      repo.failWith = undefined;
      await repo.addBackend({ set: 'fs', uri: 'sip:10.0.1.7' });
      assert.equal((await b.reload()).backends, 2);
      assert.ok(lines().some((l) => l.msg === 'reloading routing data from the store works again'));
    });

    it('reloads by itself every reloadIntervalMs, also after a failed one', async () => {
      await repo.pool('fs', 'round-robin', [1]);
      const b = balancer({ reloadIntervalMs: 5000 });
      await b.start();
      await repo.addBackend({ set: 'fs', uri: 'sip:10.0.1.8' });
      repo.failWith = new Error('down');
      clock.tick(5000);
      await settle();
      assert.equal(b.states().length, 1);
      repo.failWith = undefined;
      clock.tick(5000);
      await settle();
      assert.equal(b.states().length, 2);
      b.stop();
    });

    it('balancer.routing is reloaded with it', async () => {
      await repo.pool('fs', 'round-robin', [1]);
      const b = balancer();
      await b.reload();
      assert.equal(b.routing.matchRoute('0301234567'), undefined);
      await repo.addRoute({ pattern: '0(\\d{9,10})', replace: '+49$1', set: 'fs', priority: 0, description: '' });
      await repo.addDid({ number: '+4930123456', username: 'alice', domain: 'example.com' });
      await b.reload();
      assert.equal(b.routing.matchRoute('0301234567')?.number, '+49301234567');
      assert.equal(b.routing.did('4930123456')?.username, 'alice');
      assert.equal(b.routing.isTrusted('10.0.1.1'), true);
    });
  });

  it('bad options are a TypeError', () => {
    assert.throws(() => balancer({ failureThreshold: 0 }), /failureThreshold/);
    assert.throws(() => balancer({ probeIntervalMs: Number.NaN }), TypeError);
  });
});
