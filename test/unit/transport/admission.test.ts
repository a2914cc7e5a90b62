/** The bookkeeping behind the connection caps, without sockets. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log/index.js';
import { ConnectionAdmission, addressKey, fileReserve } from '../../../src/transport/admission.js';
import { raiseFileLimit, readFileLimit } from '../../../src/transport/file-limit.js';
import { spawn } from 'node:child_process';
import { capturingLogger } from './helpers.js';

describe('connection admission', () => {
  it('counts an IPv6 client by its /64, since one host may use any address of its /64 (RFC 8981)', () => {
    assert.equal(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:2:ffff:1:2:3'));
    assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
    assert.equal(addressKey('[2001:DB8:1:2::9]'), '2001:db8:1:2::/64');
    assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
  });

  it('caps addresses of one /64 together', () => {
    const a = new ConnectionAdmission({ maxConnections: 100, maxPerAddress: 2, fileLimit: undefined, log: silentLogger() });
    const close = (): void => undefined;
    assert.ok(a.admitInbound({ address: '2001:db8::1', port: 1 }, 'tcp', close));
    assert.ok(a.admitInbound({ address: '2001:db8::2', port: 1 }, 'tcp', close));
    assert.equal(a.admitInbound({ address: '2001:db8::3', port: 1 }, 'tcp', close), undefined);
    assert.ok(a.admitInbound({ address: '2001:db8:0:1::3', port: 1 }, 'tcp', close));
  });

  it('releases a shed connection at once and only once', () => {
    const closed: string[] = [];
    const a = new ConnectionAdmission({ maxConnections: 1, maxPerAddress: 10, fileLimit: undefined, log: silentLogger() });
    const first = a.admitInbound({ address: '192.0.2.1', port: 1 }, 'tcp', (r) => closed.push(r))!;
    const second = a.admitInbound({ address: '192.0.2.2', port: 1 }, 'tcp', () => undefined)!;
    assert.deepEqual(closed, ['shed: connection limit reached']);
    assert.equal(a.size, 1);
    a.release(first); // the shed socket's close event, later
    assert.equal(a.size, 1);
    a.release(second);
    assert.equal(a.size, 0);
  });

  it('keeps 5 % of the file limit (at least 128) for the rest of the process', () => {
    assert.equal(fileReserve(1024), 128);
    assert.equal(fileReserve(20_000), 1000);
    assert.equal(new ConnectionAdmission({ maxConnections: 20_000, maxPerAddress: 1000, fileLimit: 1024, log: silentLogger() }).limit, 896);
    assert.equal(new ConnectionAdmission({ maxConnections: 500, maxPerAddress: 1000, fileLimit: 20_000, log: silentLogger() }).limit, 500);
  });

  it('reads the open-file limit of this process from /proc', () => {
    const limit = readFileLimit();
    assert.ok(limit !== undefined && limit.soft > 0 && (limit.hard === undefined || limit.hard >= limit.soft));
  });

  it('raises a soft open-file limit of 1,024 to the hard limit with prlimit and logs both values', async () => {
    // `sleep` does not raise its own limit the way Node does at start.
    const child = spawn('prlimit', ['--nofile=1024:4096', 'sleep', '30'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(readFileLimit(child.pid!), { soft: 1024, hard: 4096 });
      const { logger, lines } = capturingLogger('info');
      assert.deepEqual(raiseFileLimit(logger, child.pid!), { soft: 4096, hard: 4096 });
      assert.deepEqual(readFileLimit(child.pid!), { soft: 4096, hard: 4096 });
      const line = lines().find((l) => l.msg === 'open-file limit raised');
      assert.ok(line !== undefined);
      assert.equal(line.before, 1024);
      assert.equal(line.soft, 4096);
      assert.equal(line.hard, 4096);
      // Already at the hard limit: one line with both values, nothing changed.
      raiseFileLimit(logger, child.pid!);
      assert.deepEqual(lines().at(-1), { ...lines().at(-1), msg: 'open-file limit', soft: 4096, hard: 4096 });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
