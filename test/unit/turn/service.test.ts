/**
 * TurnService: which ICE servers the apps are given (turn.servers, else the embedded server's URLs on the advertised
 * address, else none) and on which transports a REGISTER's 200 carries them (X-Ice-Servers).
 */
import { describe, it, after } from 'node:test';
import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validate } from '../../../platform/config/index.js';
import { silentLogger } from '../../../src/log/index.js';
import type { Flow } from '../../../src/transport/types.js';
import { ICE_SERVERS_HEADER, TurnService } from '../../../turn/index.js';

const dir = mkdtempSync(join(tmpdir(), 'turn-service-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function service(turn: Record<string, unknown>, runsEmbedded = true, waitForPort = false): TurnService {
  const config = validate({ sip: { domain: ['example.com'] }, dataDir: dir, turn: { secret: 'turn-service-test-secret-0123456789abcdef', ...turn } });
  return new TurnService({ settings: config.turn, domain: 'example.com', dataDir: dir, logger: silentLogger(), runsEmbedded, waitForPort });
}
const flow = (protocol: string): Flow => ({ protocol }) as unknown as Flow;

describe('TurnService', () => {
  it('with no turn.servers names the embedded server on turn.externalAddress and the turn.listen port, STUN without and TURN with a credential', () => {
    const turn = service({ listen: '0.0.0.0:3478', externalAddress: '198.51.100.7' });
    const answer = turn.iceServers('ana@example.com');
    assert.deepEqual(answer?.iceServers.map((s) => s.urls), [['stun:198.51.100.7:3478'], ['turn:198.51.100.7:3478?transport=udp']]);
    assert.equal(answer?.iceServers[0]!.username, undefined);
    assert.match(answer?.iceServers[1]!.username ?? '', /^\d+:ana@example\.com$/);
  });

  it('a worker that does not run the embedded server still names it (credentials need no shared state)', () => {
    const turn = service({ listen: '192.0.2.5:3478' }, false);
    assert.equal(turn.embedded, undefined);
    assert.deepEqual(turn.iceServers('ana@example.com')?.iceServers.map((s) => s.urls), [['stun:192.0.2.5:3478'], ['turn:192.0.2.5:3478?transport=udp']]);
  });

  it('with turn.embedded false and no turn.servers there is nothing to give', () => {
    const turn = service({ embedded: false });
    assert.equal(turn.embedded, undefined);
    assert.equal(turn.iceServers('ana@example.com'), undefined);
    assert.deepEqual(turn.registerHeaders('ana@example.com', flow('wss')), []);
  });

  it('configured turn.servers replace the embedded server', () => {
    const turn = service({ servers: [{ urls: ['turns:turn.example.com:5349?transport=tcp'] }] });
    assert.equal(turn.embedded, undefined);
    assert.deepEqual(turn.iceServers('ana@example.com')?.iceServers.map((s) => s.urls), [['turns:turn.example.com:5349?transport=tcp']]);
  });

  it('puts X-Ice-Servers in the 200 to a REGISTER over WS, WSS and TLS, never over UDP or TCP in clear, and not when turn.registerHeader is false', () => {
    const turn = service({ listen: '192.0.2.5:3478' });
    for (const protocol of ['ws', 'wss', 'tls']) {
      const headers = turn.registerHeaders('ana@example.com', flow(protocol));
      assert.equal(headers.length, 1, protocol);
      assert.equal(headers[0]![0], ICE_SERVERS_HEADER);
      assert.match((JSON.parse(headers[0]![1]) as { iceServers: Array<{ username?: string }> }).iceServers[1]!.username ?? '', /:ana@example\.com$/);
    }
    for (const protocol of ['udp', 'tcp']) assert.deepEqual(turn.registerHeaders('ana@example.com', flow(protocol)), [], protocol);
    assert.deepEqual(service({ listen: '192.0.2.5:3478', registerHeader: false }).registerHeaders('ana@example.com', flow('wss')), []);
  });

  it('refuses a turn.listen that is not an IP address and port, naming the key', () => {
    assert.throws(() => service({ listen: 'turn.example.com:3478' }), /turn\.listen/);
    assert.throws(() => service({ listen: '0.0.0.0:70000' }), /turn\.listen/);
  });

  it('a single process whose turn.listen port is taken fails its start naming the address', async () => {
    const holder = createSocket('udp4');
    await new Promise<void>((resolve) => holder.bind(0, '127.0.0.1', resolve));
    try {
      await assert.rejects(service({ listen: `127.0.0.1:${holder.address().port}` }).start(), new RegExp(`127\\.0\\.0\\.1:${holder.address().port}.*EADDRINUSE`));
    } finally {
      holder.close();
    }
  });

  it('a cluster worker whose predecessor still holds the port binds as soon as it is free (a rolling restart)', async () => {
    const holder = createSocket('udp4');
    await new Promise<void>((resolve) => holder.bind(0, '127.0.0.1', resolve));
    const port = holder.address().port;
    const turn = service({ listen: `127.0.0.1:${port}` }, true, true);
    try {
      await turn.start();
      await sleep(300);
      assert.throws(() => turn.embedded!.address(), /not started/, 'not bound while the port is held');
      holder.close();
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        try {
          if (turn.embedded!.address().port === port) break;
        } catch {
          // not bound yet
        }
        await sleep(100);
      }
      assert.equal(turn.embedded!.address().port, port, 'bound once the port was free');
    } finally {
      await turn.stop();
    }
  });
});
