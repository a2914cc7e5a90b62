import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { silentLogger } from '../../../src/log/index.js';
import { RtpengineError, RtpenginePool, bdecode, bencode, parseRtpengineNode, type BencodeInput } from '../../../media/index.js';
import { startRtpengine, type RtpengineHandle } from '../../../support/rtpengine.js';
import { plainAnswer, plainOffer } from './sdp-fixtures.js';
import { seeded } from '../../helpers/seeded-random.js';


interface FakeNode {
  ng: string;
  /** [command, call-id] of every command received (retransmissions once). */
  seen: Array<[string, string | undefined]>;
  close(): Promise<void>;
}

/** A fake rtpengine: answers offers/answers with an SDP, or with what `behave` says. */
async function fakeNode(behave?: (cmd: Record<string, unknown>) => BencodeInput | null | undefined): Promise<FakeNode> {
  const socket = createSocket('udp4');
  const seen: Array<[string, string | undefined]> = [];
  const cookies = new Set<string>();
  socket.on('message', (msg, rinfo) => {
    const space = msg.indexOf(0x20);
    const cookie = msg.toString('latin1', 0, space);
    const cmd = bdecode(msg.subarray(space + 1)) as Record<string, unknown>;
    if (!cookies.has(cookie)) seen.push([cmd.command as string, cmd['call-id'] as string | undefined]);
    cookies.add(cookie);
    let reply = behave?.(cmd);
    if (reply === null) return; // silence
    reply ??= cmd.command === 'ping' ? { result: 'pong' } : cmd.command === 'offer' || cmd.command === 'answer' ? { result: 'ok', sdp: 'v=0\r\n' } : { result: 'ok' };
    socket.send(Buffer.concat([Buffer.from(`${cookie} `), bencode(reply)]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { ng: `udp:127.0.0.1:${socket.address().port}`, seen, close: () => new Promise((r) => socket.close(() => r())) };
}

const offer = (callId: string, port = 40000) => ({ 'call-id': callId, 'from-tag': 'ft', sdp: plainOffer(port), 'transport-protocol': 'RTP/AVP' });

describe('rtpengine node addresses', () => {
  it('parses udp:host:port, weights, bare host:port, IPv6 and host names', () => {
    assert.deepEqual(parseRtpengineNode('udp:127.0.0.1:2223'), { host: '127.0.0.1', port: 2223, weight: 1 });
    assert.deepEqual(parseRtpengineNode('udp:10.0.0.5:2223;weight=3'), { host: '10.0.0.5', port: 2223, weight: 3 });
    assert.deepEqual(parseRtpengineNode('udp:10.0.0.5:2223=5'), { host: '10.0.0.5', port: 2223, weight: 5 });
    assert.deepEqual(parseRtpengineNode('10.0.0.5:2223'), { host: '10.0.0.5', port: 2223, weight: 1 });
    assert.deepEqual(parseRtpengineNode('udp6:[2001:db8::5]:2223'), { host: '2001:db8::5', port: 2223, weight: 1 });
    assert.deepEqual(parseRtpengineNode('rtp1.example.net:2223;weight=0'), { host: 'rtp1.example.net', port: 2223, weight: 0 });
  });

  it('refuses malformed addresses with a TypeError naming them', () => {
    for (const bad of ['', 'udp:', 'udp:host', 'udp:host:0', 'udp:host:99999', 'tcp:host:2223', 'udp:2001:db8::5:2223', 'udp:host:2223;weight=-1', 'udp:host:2223;foo=1', 'udp:bad host:1']) {
      assert.throws(() => parseRtpengineNode(bad), (err: unknown) => err instanceof TypeError && err.message.includes(`"${bad}"`), bad);
    }
    assert.throws(() => new RtpenginePool({ nodes: ['udp:127.0.0.1:2223', '127.0.0.1:2223'], logger: silentLogger() }), /listed twice/);
  });
});

describe('RtpenginePool with fake nodes', () => {
  it('spreads new calls by weight (1:3 within ±3 points over 2000 calls), never to a weight-0 node', async () => {
    const a = await fakeNode();
    const b = await fakeNode();
    const drained = await fakeNode();
    const pool = new RtpenginePool({ nodes: [`${a.ng};weight=1`, `${b.ng};weight=3`, `${drained.ng};weight=0`], logger: silentLogger(), random: seeded(42) });
    try {
      const n = 2000;
      for (let i = 0; i < n; i++) await pool.offer(offer(`w${i}`));
      const share = b.seen.length / n;
      assert.ok(Math.abs(share - 0.75) <= 0.03, `weight-3 node got ${(share * 100).toFixed(1)} %`);
      assert.equal(a.seen.length + b.seen.length, n);
      assert.equal(drained.seen.length, 0);
      const stats = pool.stats();
      assert.equal(stats[0]!.calls + stats[1]!.calls, n);
    } finally {
      pool.stop();
      await Promise.all([a.close(), b.close(), drained.close()]);
    }
  });

  it('the same with Math.random: within ±5 points', async () => {
    const a = await fakeNode();
    const b = await fakeNode();
    const pool = new RtpenginePool({ nodes: [`${a.ng};weight=1`, `${b.ng};weight=1`], logger: silentLogger() });
    try {
      for (let i = 0; i < 1000; i++) await pool.offer(offer(`r${i}`));
      assert.ok(Math.abs(a.seen.length / 1000 - 0.5) <= 0.05, `node a got ${a.seen.length} of 1000`);
    } finally {
      pool.stop();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a call sticks to the node that got its offer: answer, query, re-offer, recording and delete go there', async () => {
    const a = await fakeNode();
    const b = await fakeNode();
    const pool = new RtpenginePool({ nodes: [a.ng, b.ng], logger: silentLogger(), random: seeded(7) });
    try {
      const calls = Array.from({ length: 20 }, (_, i) => `sticky-${i}`);
      for (const id of calls) await pool.offer(offer(id));
      assert.ok(a.seen.length > 0 && b.seen.length > 0, 'both nodes got calls');
      for (const id of calls) {
        await pool.answer({ 'call-id': id, 'from-tag': 'ft', 'to-tag': 'tt', sdp: plainAnswer() });
        await pool.query({ 'call-id': id });
        await pool.offer(offer(id, 40100)); // re-INVITE
        await pool.startRecording({ 'call-id': id });
        await pool.stopRecording({ 'call-id': id });
        await pool.delete({ 'call-id': id, 'from-tag': 'ft', 'to-tag': 'tt' });
        assert.equal(pool.nodeOf(id), undefined, 'forgotten after delete');
      }
      for (const node of [a, b]) {
        const byCall = new Map<string, string[]>();
        for (const [cmd, id] of node.seen) byCall.set(id!, [...(byCall.get(id!) ?? []), cmd]);
        for (const [id, cmds] of byCall) {
          assert.deepEqual(cmds, ['offer', 'answer', 'query', 'offer', 'start recording', 'stop recording', 'delete'], id);
        }
      }
      assert.deepEqual(pool.stats().map((s) => s.calls), [0, 0]);
    } finally {
      pool.stop();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('parallel offers of two fork branches of a new call go to the same node', async () => {
    const a = await fakeNode();
    const b = await fakeNode();
    let draw = 0;
    // the first draw picks a, the second would pick b
    const pool = new RtpenginePool({ nodes: [a.ng, b.ng], logger: silentLogger(), random: () => (draw++ % 2 === 0 ? 0 : 0.99) });
    try {
      await Promise.all([
        pool.offer({ ...offer('parallel-fork'), 'via-branch': 'z9hG4bK-p1' }),
        pool.offer({ ...offer('parallel-fork'), 'via-branch': 'z9hG4bK-p2' }),
      ]);
      assert.equal(a.seen.length, 2);
      assert.equal(b.seen.length, 0);
      assert.equal(pool.nodeOf('parallel-fork'), a.ng);
      assert.deepEqual(pool.stats().map((s) => s.calls), [1, 0]);
    } finally {
      pool.stop();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a failed offer of a new call leaves no trace of it', async () => {
    const picky = await fakeNode((cmd) => (cmd.command === 'offer' ? { result: 'error', 'error-reason': 'Failed to parse SDP' } : undefined));
    const pool = new RtpenginePool({ nodes: [picky.ng], logger: silentLogger() });
    try {
      await assert.rejects(pool.offer(offer('rejected')), RtpengineError);
      assert.equal(pool.nodeOf('rejected'), undefined);
      assert.equal(pool.stats()[0]!.calls, 0);
    } finally {
      pool.stop();
      await picky.close();
    }
  });

  it('deleting a losing fork branch keeps the call on its node', async () => {
    const a = await fakeNode();
    const pool = new RtpenginePool({ nodes: [a.ng], logger: silentLogger() });
    try {
      await pool.offer({ ...offer('fork'), 'via-branch': 'z9hG4bK-1' });
      await pool.offer({ ...offer('fork'), 'via-branch': 'z9hG4bK-2' });
      await pool.delete({ 'call-id': 'fork', 'from-tag': 'ft', 'via-branch': 'z9hG4bK-2' });
      assert.equal(pool.nodeOf('fork'), a.ng);
      await pool.delete({ 'call-id': 'fork' });
      assert.equal(pool.nodeOf('fork'), undefined);
    } finally {
      pool.stop();
      await a.close();
    }
  });

  it('a node answering "Ran out of ports" is taken out and the same offer goes to the next node', async () => {
    const full = await fakeNode((cmd) => (cmd.command === 'offer' ? { result: 'error', 'error-reason': 'Ran out of ports' } : undefined));
    const spare = await fakeNode();
    const pool = new RtpenginePool({ nodes: [full.ng, spare.ng], logger: silentLogger(), random: () => 0 });
    try {
      const reply = await pool.offer(offer('full-1'));
      assert.equal(reply.sdp, 'v=0\r\n');
      assert.equal(pool.nodeOf('full-1'), spare.ng);
      const [fullStats, spareStats] = pool.stats();
      assert.equal(fullStats!.up, false);
      assert.equal(fullStats!.failures, 1);
      assert.equal(fullStats!.lastError, 'Ran out of ports');
      assert.equal(spareStats!.up, true);
      await pool.offer(offer('full-2'));
      assert.equal(full.seen.filter(([c]) => c === 'offer').length, 1, 'not tried again while down');
    } finally {
      pool.stop();
      await Promise.all([full.close(), spare.close()]);
    }
  });

  it('other rtpengine errors (a bad SDP) are not failed over: the caller gets them', async () => {
    const picky = await fakeNode((cmd) => (cmd.command === 'offer' ? { result: 'error', 'error-reason': 'Failed to parse SDP' } : undefined));
    const other = await fakeNode();
    const pool = new RtpenginePool({ nodes: [picky.ng, other.ng], logger: silentLogger(), random: () => 0 });
    try {
      await assert.rejects(pool.offer(offer('bad')), (err: unknown) => err instanceof RtpengineError && err.code === 'RTPENGINE_ERR_COMMAND');
      assert.equal(other.seen.length, 0);
      assert.equal(pool.stats()[0]!.up, true);
    } finally {
      pool.stop();
      await Promise.all([picky.close(), other.close()]);
    }
  });

  it('a down node is tried again once its downtime has passed, and comes back up when it answers', async () => {
    let silent = true;
    const flaky = await fakeNode(() => (silent ? null : undefined));
    const steady = await fakeNode();
    let now = 1_000_000;
    const pool = new RtpenginePool({ nodes: [flaky.ng, steady.ng], logger: silentLogger(), random: () => 0, timeoutMs: 200, retransmitMs: 50, downtimeMs: 30_000, clock: () => now });
    try {
      await pool.offer(offer('d1'));
      assert.equal(pool.nodeOf('d1'), steady.ng);
      assert.equal(pool.stats()[0]!.up, false);
      assert.equal(pool.stats()[0]!.downUntil, 1_030_000);
      silent = false;
      now += 29_000;
      await pool.offer(offer('d2'));
      assert.equal(pool.nodeOf('d2'), steady.ng, 'still left out');
      now += 1_000;
      await pool.offer(offer('d3'));
      assert.equal(pool.nodeOf('d3'), flaky.ng, 'tried again after 30 s');
      assert.equal(pool.stats()[0]!.up, true);
    } finally {
      pool.stop();
      await Promise.all([flaky.close(), steady.close()]);
    }
  });

  it('with every node down the offer fails with RTPENGINE_ERR_NO_NODE; with none configured too', async () => {
    const dead = await fakeNode(() => null);
    const pool = new RtpenginePool({ nodes: [dead.ng], logger: silentLogger(), timeoutMs: 150, retransmitMs: 50 });
    const empty = new RtpenginePool({ nodes: [], logger: silentLogger() });
    try {
      await assert.rejects(pool.offer(offer('x')), (err: unknown) => {
        assert.ok(err instanceof RtpengineError);
        assert.equal(err.code, 'RTPENGINE_ERR_NO_NODE');
        assert.match(err.message, /down/);
        assert.ok(err.cause instanceof RtpengineError && err.cause.code === 'RTPENGINE_ERR_TIMEOUT');
        return true;
      });
      await assert.rejects(empty.offer(offer('x')), /no rtpengine node configured/);
      assert.equal(empty.size, 0);
    } finally {
      pool.stop();
      empty.stop();
      await dead.close();
    }
  });

  it('a call whose node we do not know is looked for on every node (after our restart)', async () => {
    const a = await fakeNode((cmd) => (cmd.command === 'answer' ? { result: 'error', 'error-reason': 'Unknown call-id' } : undefined));
    const b = await fakeNode();
    const pool = new RtpenginePool({ nodes: [a.ng, b.ng], logger: silentLogger() });
    try {
      await pool.answer({ 'call-id': 'orphan', 'from-tag': 'ft', 'to-tag': 'tt', sdp: plainAnswer() });
      assert.equal(pool.nodeOf('orphan'), b.ng);
    } finally {
      pool.stop();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('methods of a stopped pool throw RTPENGINE_ERR_CLOSED', async () => {
    const pool = new RtpenginePool({ nodes: ['udp:127.0.0.1:9'], logger: silentLogger() });
    pool.stop();
    await assert.rejects(pool.offer(offer('x')), (err: unknown) => err instanceof RtpengineError && err.code === 'RTPENGINE_ERR_CLOSED');
  });
});

describe('RtpenginePool with two real rtpengines', () => {
  let one: RtpengineHandle;
  let two: RtpengineHandle;
  before(async () => {
    [one, two] = await Promise.all([startRtpengine(), startRtpengine()]);
  });
  after(async () => {
    await Promise.all([one?.stop(), two?.stop()]);
  });

  it('kill -9 one node: the offer goes to the other, the dead node is marked down, and back up after it restarts', async () => {
    // random 0: the first eligible node is always chosen, so the dead one would be first
    const pool = new RtpenginePool({ nodes: [one.ng, two.ng], logger: silentLogger(), random: () => 0, timeoutMs: 600, retransmitMs: 100, pingIntervalMs: 0 });
    try {
      await pool.offer(offer('before-kill'));
      assert.equal(pool.nodeOf('before-kill'), one.ng);
      await pool.delete({ 'call-id': 'before-kill' });

      one.kill();
      const started = Date.now();
      const reply = await pool.offer(offer('after-kill'));
      assert.match(reply.sdp, /^m=audio \d+ RTP\/AVP/m);
      assert.equal(pool.nodeOf('after-kill'), two.ng);
      assert.ok(Date.now() - started >= 550, 'waited for the dead node to time out');
      const [dead] = pool.stats();
      assert.equal(dead!.up, false);
      assert.equal(dead!.failures, 1);
      assert.match(dead!.lastError!, /did not answer/);

      const quick = Date.now();
      await pool.offer(offer('while-down'));
      assert.equal(pool.nodeOf('while-down'), two.ng);
      assert.ok(Date.now() - quick < 550, 'the dead node is not tried while it is down (its timeout is 600 ms)');
      assert.deepEqual((await two.listSessions()).sort(), ['after-kill', 'while-down']);

      // the answer of a call goes to its node, not to the first one
      await pool.answer({ 'call-id': 'after-kill', 'from-tag': 'ft', 'to-tag': 'tt', sdp: plainAnswer() });

      await one.restart();
      const stats = await pool.ping();
      assert.equal(stats[0]!.up, true);
      assert.ok(stats[0]!.lastLatencyMs !== undefined && stats[0]!.lastLatencyMs < 500);
      await pool.offer(offer('after-restart'));
      assert.equal(pool.nodeOf('after-restart'), one.ng);

      for (const id of ['after-kill', 'while-down', 'after-restart']) await pool.delete({ 'call-id': id, 'from-tag': 'ft' });
      assert.deepEqual(await one.listSessions(), []);
      assert.deepEqual(await two.listSessions(), []);
    } finally {
      pool.stop();
    }
  });

  it('the health-check timer brings a restarted node back without any call', async () => {
    const pool = new RtpenginePool({ nodes: [one.ng, two.ng], logger: silentLogger(), timeoutMs: 300, retransmitMs: 100, pingIntervalMs: 150 });
    try {
      pool.start();
      one.kill();
      await waitFor(() => pool.stats()[0]!.up === false, 3000, 'node marked down by the pings');
      assert.equal(pool.stats()[1]!.up, true);
      await one.restart();
      await waitFor(() => pool.stats()[0]!.up === true, 3000, 'node back up by the pings');
    } finally {
      pool.stop();
    }
  });

  it('"Parallel session limit reached" (max-sessions) sends the call to the next node', async () => {
    const limited = await startRtpengine({ args: ['--max-sessions=1'] });
    const pool = new RtpenginePool({ nodes: [limited.ng, two.ng], logger: silentLogger(), random: () => 0 });
    try {
      await pool.offer(offer('limit-1'));
      assert.equal(pool.nodeOf('limit-1'), limited.ng);
      await pool.offer(offer('limit-2'));
      assert.equal(pool.nodeOf('limit-2'), two.ng);
      assert.equal(pool.stats()[0]!.lastError, 'Parallel session limit reached');
      await pool.delete({ 'call-id': 'limit-1' });
      await pool.delete({ 'call-id': 'limit-2' });
      assert.deepEqual(await limited.listSessions(), []);
    } finally {
      pool.stop();
      await limited.stop();
    }
  });

  it('list shows the calls of each node', async () => {
    const pool = new RtpenginePool({ nodes: [one.ng, two.ng], logger: silentLogger(), random: () => 0.99 });
    try {
      await pool.offer(offer('listed'));
      const lists = await pool.list();
      assert.deepEqual(lists, [{ node: one.ng, calls: [] }, { node: two.ng, calls: ['listed'] }]);
      await pool.delete({ 'call-id': 'listed' });
      assert.deepEqual((await pool.list()).flatMap((l) => l.calls), []);
    } finally {
      pool.stop();
    }
  });
});

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
