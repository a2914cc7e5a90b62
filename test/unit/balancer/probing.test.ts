/**
 * OPTIONS probing over real UDP on 127.0.0.1: the softswitch's Stack sends the probes through its
 * transaction layer; one backend is a Stack that answers OPTIONS, the other a bare socket that stays
 * silent until the test lets it answer. The balancer's own timers run on a FakeClock.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { Balancer, type BalancerOptions } from '../../../balancer/index.js';
import { Stack, type StackUser } from '../../../src/core/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { type SipRequest, SipRequest as Request, createResponse, parseMessage, serializeMessage } from '../../../src/sip/index.js';
import type { ServerTransaction } from '../../../src/transaction/index.js';
import { TransportLayer } from '../../../src/transport/index.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { MemoryRoutingRepository } from './helpers.js';

const OPTIONS: BalancerOptions = { probeIntervalMs: 10_000, failureThreshold: 2, recoveryThreshold: 2, probeTimeoutMs: 2000, reloadIntervalMs: 0 };

async function udpStack(user: StackUser): Promise<Stack> {
  const logger = silentLogger();
  const stack = new Stack({
    logger,
    serverHeader: '',
    createTransport: (u) => new TransportLayer({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], user: u, logger }),
  });
  stack.setUser(user);
  await stack.start();
  return stack;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A FreeSWITCH stand-in that answers every OPTIONS with 200. */
class AnsweringBackend implements StackUser {
  stack!: Stack;
  readonly options: SipRequest[] = [];
  onRequest(request: SipRequest, transaction: ServerTransaction): void {
    if (request.method === 'OPTIONS') this.options.push(request);
    this.stack.respond(transaction, 200);
  }
}

/** A bare UDP socket: records the Call-IDs of the OPTIONS it gets, answers only while `answer` is set. */
class SilentBackend {
  readonly socket: Socket = createSocket('udp4');
  readonly callIds = new Set<string>();
  answer = false;

  async start(): Promise<this> {
    this.socket.on('message', (data, rinfo) => {
      const msg = parseMessage(data);
      if (!(msg instanceof Request)) return;
      this.callIds.add(msg.get('call-id')!);
      if (this.answer) this.socket.send(serializeMessage(createResponse(msg, 200)), rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    return this;
  }

  get port(): number {
    return this.socket.address().port;
  }
}

describe('Balancer OPTIONS probing over UDP', () => {
  let softswitch: Stack;
  let live: AnsweringBackend;
  let silent: SilentBackend;

  before(async () => {
    softswitch = await udpStack({ onRequest: () => {} });
    live = new AnsweringBackend();
    live.stack = await udpStack(live);
    silent = await new SilentBackend().start();
  });

  after(async () => {
    await softswitch?.stop();
    await live?.stack.stop();
    silent?.socket.close();
  });

  it('the answering backend is up after its first probe, the silent one down after failureThreshold timeouts and up again after recoveryThreshold answers', async () => {
    const repo = new MemoryRoutingRepository();
    const l = live.stack.listeners[0]!;
    const a = await repo.addBackend({ set: 'fs', uri: `sip:${l.address}:${l.port}` });
    const s = await repo.addBackend({ set: 'fs', uri: `sip:127.0.0.1:${silent.port};transport=udp` });
    const clock = new FakeClock();
    const balancer = new Balancer({ stack: softswitch, repository: repo, logger: silentLogger(), options: OPTIONS, timers: clock, clock: () => clock.now });
    const health = (id: number) => balancer.states().find((x) => x.id === id)!.health;
    try {
      await balancer.start();
      await until(() => health(a.id) === 'up' && silent.callIds.size === 1);
      // The probe is a well-formed OPTIONS through the stack: its Via, a fresh Call-ID, CSeq OPTIONS.
      const probe = live.options[0]!;
      assert.equal(probe.uri, a.uri);
      assert.match(probe.topVia?.host ?? '', /^127\.0\.0\.1$/);
      assert.match(probe.get('cseq')!, /^\d+ OPTIONS$/);
      assert.equal(health(s.id), 'unknown');

      clock.tick(OPTIONS.probeTimeoutMs);
      assert.equal(health(s.id), 'unknown');
      assert.equal(balancer.states().find((x) => x.id === s.id)!.failures, 1);
      clock.tick(OPTIONS.probeIntervalMs - OPTIONS.probeTimeoutMs);
      await until(() => live.options.length === 2 && silent.callIds.size === 2);
      clock.tick(OPTIONS.probeTimeoutMs);
      assert.equal(health(s.id), 'down');
      assert.equal(health(a.id), 'up');
      assert.deepEqual(balancer.candidates('fs', 'sip:alice@example.com').map((c) => c.id), [a.id, s.id]);

      silent.answer = true;
      for (let round = 3; round <= 4; round++) {
        clock.tick(OPTIONS.probeIntervalMs - OPTIONS.probeTimeoutMs);
        const sent = clock.now;
        // Answered (lastSeen is the fake time of this round) before the probe's timeout is let fire.
        await until(() => silent.callIds.size === round && balancer.states().find((x) => x.id === s.id)!.lastSeen === sent);
        assert.equal(health(s.id), round === 3 ? 'down' : 'up');
        clock.tick(OPTIONS.probeTimeoutMs);
      }
      assert.equal(health(s.id), 'up');
    } finally {
      balancer.stop();
    }
  });
});
