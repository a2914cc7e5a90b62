import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log/index.js';
import { AuthGuard, BanList, FloodDetector, createSecurity } from '../../../security/index.js';
import { LogCapture, TestClock } from '../registrar/helpers.js';

describe('BanList', () => {
  it('a ban holds for its seconds, then the source is heard again', () => {
    const clock = new TestClock();
    const bans = new BanList({ logger: silentLogger(), clock: clock.fn });
    bans.ban('203.0.113.5', 120, 'flood');
    assert.equal(bans.isBanned('203.0.113.5'), true);
    assert.equal(bans.isBanned('203.0.113.6'), false);
    clock.advance(119_000);
    assert.equal(bans.isBanned('203.0.113.5'), true);
    clock.advance(2_000);
    assert.equal(bans.isBanned('203.0.113.5'), false);
    assert.equal(bans.size, 0, 'an expired ban is forgotten when met');
  });

  it('logs one line per ban (not per packet) and one per lift, and replicates both', () => {
    const log = new LogCapture();
    const changes: string[] = [];
    const bans = new BanList({ logger: log.logger });
    bans.setReplication({ changed: (c) => changes.push(c.kind === 'ban' ? `ban ${c.ban.address}` : `lift ${c.address}`) });
    bans.ban('203.0.113.5', 60, 'auth');
    for (let i = 0; i < 1000; i++) bans.isBanned('203.0.113.5');
    assert.equal(bans.lift('203.0.113.5'), true);
    assert.deepEqual(changes, ['ban 203.0.113.5', 'lift 203.0.113.5']);
    assert.deepEqual(log.lines.map((e) => e.msg), ['source banned', 'ban lifted']);
  });

  it('applies a ban decided by another process without replicating it again', () => {
    const changes: unknown[] = [];
    const bans = new BanList({ logger: silentLogger() });
    bans.setReplication({ changed: (c) => changes.push(c) });
    bans.applyRemote({ kind: 'ban', ban: { address: '198.51.100.1', reason: 'flood', since: Date.now(), until: Date.now() + 60_000 } });
    assert.equal(bans.isBanned('198.51.100.1'), true);
    bans.applyRemote({ kind: 'lift', address: '198.51.100.1' });
    assert.equal(bans.isBanned('198.51.100.1'), false);
    assert.deepEqual(changes, []);
  });

  it('holds at most maxBans bans, dropping the oldest (spoofed sources cannot grow memory)', () => {
    const bans = new BanList({ logger: silentLogger(), maxBans: 3 });
    for (let i = 1; i <= 5; i++) bans.ban(`192.0.2.${i}`, 60, 'flood');
    assert.equal(bans.size, 3);
    assert.deepEqual(bans.list().map((b) => b.address), ['192.0.2.3', '192.0.2.4', '192.0.2.5']);
  });
});

describe('FloodDetector (pike)', () => {
  it('bans a source that sends more than `limit` requests within one window, and drops from then on', () => {
    const clock = new TestClock();
    const bans = new BanList({ logger: silentLogger(), clock: clock.fn });
    const pike = new FloodDetector({ bans, limit: 30, windowMs: 2000, banSeconds: 120, clock: clock.fn });
    for (let i = 0; i < 30; i++) assert.equal(pike.hit('203.0.113.5'), true, `request ${i + 1} is within the limit`);
    assert.equal(pike.hit('203.0.113.5'), false);
    assert.equal(bans.isBanned('203.0.113.5'), true);
    assert.equal(pike.hit('203.0.113.6'), true, 'another source is not affected');
  });

  it('counts per window: a steady source under the rate is never banned', () => {
    const clock = new TestClock();
    const bans = new BanList({ logger: silentLogger(), clock: clock.fn });
    const pike = new FloodDetector({ bans, limit: 30, windowMs: 2000, banSeconds: 120, clock: clock.fn });
    for (let i = 0; i < 1000; i++) {
      assert.equal(pike.hit('203.0.113.5'), true);
      clock.advance(100); // 10 requests/s: 20 per window
    }
    assert.equal(bans.size, 0);
  });

  it('never bans an exempt source (trusted, backend, allow-list), and asks once per window, not per request', () => {
    const clock = new TestClock();
    const bans = new BanList({ logger: silentLogger(), clock: clock.fn });
    let asked = 0;
    const pike = new FloodDetector({ bans, limit: 5, windowMs: 2000, banSeconds: 120, clock: clock.fn, exempt: (a) => (asked++, a === '10.0.0.11') });
    for (let i = 0; i < 500; i++) assert.equal(pike.hit('10.0.0.11'), true);
    assert.equal(asked, 1);
    assert.equal(bans.size, 0);
  });
});

describe('AuthGuard (password guessing)', () => {
  function guard(clock: TestClock, log = new LogCapture()) {
    const bans = new BanList({ logger: silentLogger(), clock: clock.fn });
    const g = new AuthGuard({ bans, sourceFailures: 10, windowMs: 60_000, banSeconds: 600, userFailures: 20, userWindowMs: 300_000, logger: log.logger, clock: clock.fn });
    return { bans, g, log };
  }

  it('bans a source after `sourceFailures` failed authentications within the window, whatever users it tried', () => {
    const clock = new TestClock();
    const { bans, g } = guard(clock);
    for (let i = 0; i < 9; i++) g.failed('203.0.113.5', `user${i}@example.com`);
    assert.equal(bans.isBanned('203.0.113.5'), false);
    g.failed('203.0.113.5', 'user9@example.com');
    assert.equal(bans.isBanned('203.0.113.5'), true);
  });

  it('a user under attack from many addresses: a source that failed gets no further try, the real user from another address does', () => {
    const clock = new TestClock();
    const { g, bans, log } = guard(clock);
    for (let i = 1; i <= 20; i++) g.failed(`198.51.100.${i}`, 'alice@example.com');
    assert.equal(bans.size, 0, 'one failure per address bans nobody');
    assert.equal(g.mayTry('198.51.100.7', 'alice@example.com'), false);
    assert.equal(g.mayTry('203.0.113.80', 'alice@example.com'), true, 'a new address (the real user) is checked as usual');
    assert.equal(g.mayTry('198.51.100.7', 'bob@example.com'), true, 'other users are not affected');
    assert.equal(log.lines.filter((e) => String(e.msg).startsWith('user under password guessing')).length, 1, 'announced once');
    clock.advance(300_001);
    assert.equal(g.mayTry('198.51.100.7', 'alice@example.com'), true, 'the window ends');
  });

  it('says to log at most logPerSource failures per source per window (fail2ban sees the first ones, a run cannot flood the log)', () => {
    const clock = new TestClock();
    const { g } = guard(clock);
    const logged = Array.from({ length: 8 }, (_, i) => g.failed('203.0.113.5', `u${i}@example.com`));
    assert.deepEqual(logged, [true, true, true, true, true, false, false, false]);
  });
});

describe('createSecurity', () => {
  it('the gate drops a banned source and counts requests against pike; exempt CIDRs and trusted sources are never banned', () => {
    const s = createSecurity({
      logger: silentLogger(),
      isTrusted: (a) => a === '10.0.0.11',
      options: {
        pike: { enabled: true, requests: 3, window: 2, banSeconds: 60 },
        authFailures: { perSource: 10, window: 60, perUser: 20, userWindow: 300, banSeconds: 600 },
        exempt: [{ address: '192.0.2.0', prefix: 24, family: 'ipv4' }],
      },
    });
    for (const source of ['10.0.0.11', '192.0.2.77']) for (let i = 0; i < 10; i++) assert.equal(s.gate.request(source), true);
    const verdicts = Array.from({ length: 5 }, () => s.gate.request('203.0.113.5'));
    assert.deepEqual(verdicts, [true, true, true, false, false]);
    assert.equal(s.gate.admit('203.0.113.5'), false);
    assert.equal(s.gate.admit('192.0.2.77'), true);
    assert.deepEqual(s.bans.list().map((b) => [b.address, b.reason]), [['203.0.113.5', 'flood']]);
  });

  it('an IPv6 exempt block exempts IPv6 sources only: "::/0" does not spare an IPv4 flood (net.BlockList would match IPv4 against it)', () => {
    const s = createSecurity({
      logger: silentLogger(),
      options: {
        pike: { enabled: true, requests: 3, window: 2, banSeconds: 60 },
        authFailures: { perSource: 10, window: 60, perUser: 20, userWindow: 300, banSeconds: 600 },
        exempt: [{ address: '::', prefix: 0, family: 'ipv6' }],
      },
    });
    for (let i = 0; i < 10; i++) assert.equal(s.gate.request('2001:db8::5'), true);
    const verdicts = Array.from({ length: 5 }, () => s.gate.request('203.0.113.5'));
    assert.deepEqual(verdicts, [true, true, true, false, false]);
  });
});
