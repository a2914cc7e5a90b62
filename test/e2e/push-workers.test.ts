/**
 * The push call server (RFC 8599) across `softswitch start --workers 2`, as an operator runs it: the
 * caller's INVITE is held on the worker that holds the caller's connection, while the woken app's new
 * connection lands on the other worker (the primary deals WSS connections to the workers in turn). That
 * worker's REGISTER reaches the held INVITE through the binding replication (RegistrarApi.onBinding fires for
 * a binding another worker made), and the INVITE goes out through the other worker's connection.
 *
 * Which worker holds what is read from the cluster's own debug log: the "accepted" line of each connection
 * names its flow (`wss:w<N>.…`), and the INVITE's top Via branch ends with the tag of the worker whose
 * transaction layer sent it (`~<N>`), the one that held it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { flowWorker } from '../../server/cluster/index.js';
import { type FakeApns, apnsPushConfig, startFakeApns } from '../../support/fake-apns.js';
import { freePort } from '../../support/tools.js';
import { type TestCluster, startTestCluster } from '../helpers/cluster.js';
import { IosApps } from '../helpers/push-apps.js';
import { type Softphone, createPhone, installTestWebSocket } from '../helpers/softphone.js';

const DOMAIN = 'example.com';
const WORKERS = 2;
const ALICE = 'alice-push-secret';
const BOB = 'bob-push-secret';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('push call server across two workers (softswitch start --workers 2)', { timeout: 120_000 }, () => {
  let apns: FakeApns;
  let cluster: TestCluster;
  let wssPort: number;
  let alice: Softphone;
  let apps: IosApps;

  /** The log lines (JSON) from `from` on whose message is `msg`. */
  const logLines = (msg: string, from = 0): Array<Record<string, unknown>> => cluster.out.slice(from).split('\n')
    .filter((l) => l.startsWith('{') && l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

  /** The worker holding the connection of the REGISTERs accepted for `aor` since `from` (its flow's tag). */
  const registeredOn = (aor: string, from: number): number[] => logLines('REGISTER accepted', from)
    .filter((l) => l.aor === aor)
    .map((l) => flowWorker(String(l.flow))!);

  /** The worker of the connection from local port `port` (its "accepted" line), waiting for the line. */
  const connectionWorker = async (port: number): Promise<number> => {
    const end = Date.now() + 5000;
    for (;;) {
      const line = logLines('accepted').find((l) => String(l.peer).endsWith(`:${port}`));
      if (line !== undefined) return flowWorker(String(line.flow))!;
      assert.ok(Date.now() < end, `no "accepted" line for local port ${port}`);
      await sleep(20);
    }
  };

  /** The worker that sent an INVITE: the tag ending its top Via branch (TransactionLayer.setBranchTag). */
  const sentBy = (invite: string): number => Number(/^Via:[^\r\n]*;branch=[^;,\r\n]*~(\d+)/im.exec(invite)![1]);

  /** The INVITEs a phone's sockets received (their text). */
  const invitesOf = (phone: Softphone): string[] => phone.sockets.flatMap((s) => s.messages).filter((m) => m.dir === 'in' && m.text.startsWith('INVITE ')).map((m) => m.text);

  /**
   * Makes the next WSS connection land on worker `worker`: the primary deals connections in turn, so throwaway
   * connections are opened (and closed) until the last one landed on the other worker.
   */
  const nextConnectionOn = async (worker: number): Promise<void> => {
    for (let attempt = 0; attempt < 4; attempt++) {
      const ws = new WebSocket(`wss://127.0.0.1:${wssPort}`, 'sip', { rejectUnauthorized: false });
      await once(ws, 'open');
      const landed = await connectionWorker((ws as unknown as { _socket: { localPort: number } })._socket.localPort);
      ws.terminate();
      if (landed !== worker) return;
    }
    assert.fail(`four connections in a row landed on worker ${worker}`);
  };

  before(async () => {
    installTestWebSocket();
    apns = await startFakeApns();
    wssPort = await freePort();
    apps = new IosApps({ apns, domain: DOMAIN, password: BOB, wsUrl: () => `wss://127.0.0.1:${wssPort}` });
    const httpPort = await freePort();
    // Debug logs: the "accepted" and "REGISTER accepted" lines say which worker holds which connection.
    cluster = await startTestCluster(WORKERS, (dir) => ({
      sip: { listen: [`wss:127.0.0.1:${wssPort}`], domain: [DOMAIN] }, log: { level: 'debug' },
      http: { listen: `127.0.0.1:${httpPort}` }, push: { wakeTimeout: 5, ...apnsPushConfig(apns, dir) },
    }), 'softswitch-push-workers-');
    await cluster.addUsers([
      { username: 'alice', domain: DOMAIN, password: ALICE },
      ...[1, 2, 3, 4].map((i) => ({ username: `bob${i}`, domain: DOMAIN, password: BOB })),
    ]);
    alice = await createPhone('jssip', { uri: `sip:alice@${DOMAIN}`, password: ALICE, wsUrl: `wss://127.0.0.1:${wssPort}` });
    await alice.register();
  });

  after(async () => {
    await apps?.stop();
    await alice?.stop();
    await cluster?.stop();
    await apns?.close();
  });

  it('call and wake spread over two workers: the INVITE held on one worker reaches the app woken on the other, once, with one push', async () => {
    const app = apps.next();
    await apps.asleep(app, 300);
    const heldOn = registeredOn(`sip:alice@${DOMAIN}`, 0).at(-1)!;
    const pushed = once(apns, 'push');
    const calling = alice.call(`sip:${app.user}@${DOMAIN}`, { timeoutMs: 15_000 });
    await pushed;
    // iOS starts the app; its new connection goes to the worker that does not hold the INVITE.
    await nextConnectionOn(1 - heldOn);
    const from = cluster.out.length;
    const woken = await apps.phone(app, false);
    const incoming = woken.waitForIncoming(8000);
    await woken.register();
    const answered = await (await incoming).accept();
    const call = await calling;
    await sleep(500);
    const invites = invitesOf(woken);
    assert.equal(invites.length, 1, 'the woken app got the INVITE once');
    assert.deepEqual(registeredOn(`sip:${app.user}@${DOMAIN}`, from), [1 - heldOn], 'the app registered on the other worker');
    assert.equal(sentBy(invites[0]!), heldOn, 'the INVITE came from the worker that held it');
    await call.hangup();
    await answered.waitForEnded(5000);
    assert.equal(apps.pushesTo(app.token, 'call').length, 1, 'one push for the call');
    assert.equal(apps.pushesTo(app.token, 'cancel').length, 0, 'no cancel push for a device that was reached');
  });

  it('the woken app registering twice, on both workers, gets one INVITE and the call is answered', async () => {
    const app = apps.next();
    await apps.asleep(app, 300);
    const pushed = once(apns, 'push');
    const calling = alice.call(`sip:${app.user}@${DOMAIN}`, { timeoutMs: 15_000 });
    await pushed;
    const from = cluster.out.length;
    // Two instances connected one after the other: the primary deals them to both workers.
    const first = await apps.phone(app, false);
    const second = await apps.phone(app, false);
    const ringing: Softphone[] = [];
    first.onIncoming(() => ringing.push(first));
    second.onIncoming(() => ringing.push(second));
    await Promise.all([first.register(), second.register()]);
    await sleep(1500);
    assert.deepEqual(new Set(registeredOn(`sip:${app.user}@${DOMAIN}`, from)), new Set([0, 1]), 'one REGISTER on each worker');
    assert.equal(ringing.length, 1, `one INVITE for the woken app, got ${ringing.length}`);
    assert.equal(invitesOf(first).length + invitesOf(second).length, 1, 'one INVITE on the wire');
    const answered = await (await ringing[0]!.waitForIncoming(1000)).accept();
    const call = await calling;
    await call.hangup();
    await answered.waitForEnded(5000);
    assert.equal(apps.pushesTo(app.token, 'call').length, 1, 'one push for the call');
  });
});
