/**
 * A store outage during calls loses no call record (issue 13): the softswitch keeps its records on MariaDB
 * through a TCP port the test can take away (test/helpers/tcp-forwarder.ts), calls go on while the database
 * is unreachable (phones that registered before keep authenticating), the records wait in the writer's queue
 * and its spill file, and all of them are in the database once the port is back, each once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer } from '../helpers/server.js';
import { type Softphone, SoftphoneError, createPhone } from '../helpers/softphone.js';
import { TcpForwarder } from '../helpers/tcp-forwarder.js';
import { mariadbTarget } from '../unit/platform/store/targets.js';
import { freePort } from '../../support/tools.js';

const DOMAIN = 'example.com';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('call history through a store outage', { timeout: 120_000 }, () => {
  it('calls made while MariaDB is unreachable are all recorded, once each, when it is back (queue and spill file)', async () => {
    const rootUrl = process.env.STORE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
    const root = new URL(rootUrl);
    const db = await mariadbTarget(rootUrl).create();
    const forwarder = new TcpForwarder(await freePort(), { host: root.hostname, port: Number(root.port || 3306) });
    await forwarder.open();
    const url = new URL(db.url);
    url.port = String(forwarder.port);
    // queueLimit 2: the third record of the outage goes to the spill file.
    const t = await startTestServer({ store: { url: url.toString() }, history: { queueLimit: 2 } });
    const phones: Softphone[] = [];
    try {
      await t.addUser(`alice@${DOMAIN}`, 'alice-outage-secret');
      await t.addUser(`bob@${DOMAIN}`, 'bob-outage-secret');
      const wsUrl = `wss://${t.addr('wss')}`;
      const alice = await createPhone('sip.js', { uri: `sip:alice@${DOMAIN}`, password: 'alice-outage-secret', wsUrl });
      const bob = await createPhone('jssip', { uri: `sip:bob@${DOMAIN}`, password: 'bob-outage-secret', wsUrl });
      phones.push(alice, bob);
      for (const p of phones) await p.register();

      const answeredCall = async (): Promise<void> => {
        const incoming = bob.waitForIncoming(5000);
        const calling = alice.call(`sip:bob@${DOMAIN}`);
        const answered = await (await incoming).accept();
        const call = await calling;
        await call.hangup();
        await answered.waitForEnded(5000);
      };
      const busyCall = async (): Promise<void> => {
        const incoming = bob.waitForIncoming(5000);
        const calling = alice.call(`sip:bob@${DOMAIN}`);
        await (await incoming).reject(486);
        await assert.rejects(calling, (e: SoftphoneError) => e.status === 486);
      };

      await answeredCall();
      await t.server.history!.flush(5000);
      assert.equal((await t.server.store.calls.list({ limit: 50 })).calls.length, 1);

      await forwarder.close();
      await answeredCall();
      await busyCall();
      await answeredCall();
      await busyCall();
      await sleep(500);
      const stats = t.server.history!.stats;
      assert.equal(stats.storeUp, false, 'the writer noticed the outage');
      assert.ok(stats.spilled >= 1, `records beyond queueLimit went to the spill file: ${JSON.stringify(stats)}`);
      assert.ok(existsSync(join(t.dataDir, 'history')), 'the spill file is under dataDir');

      await forwarder.open();
      const end = Date.now() + 30_000;
      let calls = (await t.server.store.calls.list({ limit: 50 })).calls;
      while (calls.length < 5 && Date.now() < end) {
        await sleep(250);
        try {
          calls = (await t.server.store.calls.list({ limit: 50 })).calls;
        } catch {
          // the pool may still be reconnecting
        }
      }
      await t.server.history!.flush(10_000);
      calls = (await t.server.store.calls.list({ limit: 50 })).calls;
      assert.equal(calls.length, 5, `every record, once: ${JSON.stringify(calls.map((c) => [c.disposition, c.startedAt]))}`);
      assert.deepEqual(calls.map((c) => c.disposition).reverse(), ['answered', 'answered', 'busy', 'answered', 'busy']);
      assert.equal(t.server.history!.stats.storeUp, true);
    } finally {
      for (const p of phones) await p.stop();
      await t.stop();
      await forwarder.close();
      await db.drop();
    }
  });
});
