/**
 * Chat and the push server (RFC 8599) end to end, with a local FCM (test/helpers/fake-fcm.ts): a user whose
 * only device is an app asleep (registered with pn-provider/pn-prid/pn-param, its connection gone without
 * an un-REGISTER) is sent one data push of kind `message` naming the sender, without the text unless
 * push.includeContent says so; the app, woken, registers again with the same instance id and push
 * parameters and gets the message once. The sender's own sleeping app is not pushed for its carbon copy.
 * And an app whose connection died unnoticed (a network change) gets a message that went to the dead
 * connection on the new connection it registered on meanwhile.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FakeFcm, type FcmPush, startFakeFcm } from '../helpers/fake-fcm.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, type SoftphoneOptions, createPhone } from '../helpers/softphone.js';

const DOMAIN = 'example.com';
/** After the expected pushes or messages arrived: long enough for a duplicate to show up. */
const SETTLE_MS = 500;

interface User {
  name: string;
  address: string;
  aor: string;
  password: string;
}

/** The FCM pushes to one device token so far. */
function pushesTo(fcm: FakeFcm, token: string): FcmPush[] {
  return fcm.pushes.filter((p) => p.token === token);
}

async function waitForPushes(fcm: FakeFcm, token: string, count: number, timeoutMs = 5_000): Promise<FcmPush[]> {
  const deadline = Date.now() + timeoutMs;
  while (pushesTo(fcm, token).length < count && Date.now() < deadline) await sleep(20);
  const got = pushesTo(fcm, token);
  assert.ok(got.length >= count, `${count} push(es) to ${token}, got ${got.length}`);
  return got;
}

for (const includeContent of [false, true]) {
  describe(`chat to a sleeping app: one push, then the message once it wakes (push.includeContent ${includeContent})`, { timeout: 120_000 }, () => {
    let fcm: FakeFcm;
    let t: TestServer;
    let dir: string;
    let n = 0;
    const phones: Softphone[] = [];

    before(async () => {
      fcm = await startFakeFcm();
      dir = mkdtempSync(join(tmpdir(), 'chat-push-'));
      const caFile = join(dir, 'ca.pem');
      writeFileSync(caFile, fcm.ca);
      t = await startTestServer({
        sip: { domain: [DOMAIN] },
        push: { wakeTimeout: 5, caFile, includeContent, fcm: { serviceAccountFile: fcm.writeServiceAccount(dir), endpoint: fcm.url } },
      });
    });
    after(async () => {
      await Promise.all(phones.map((p) => p.stop()));
      await t?.stop();
      await fcm?.close();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    async function newUser(prefix: string): Promise<User> {
      const name = `${prefix}${++n}`;
      const password = `${name}-secret`;
      await t.addUser(`${name}@${DOMAIN}`, password);
      return { name, address: `${name}@${DOMAIN}`, aor: `sip:${name}@${DOMAIN}`, password };
    }

    async function phone(user: User, extra: Partial<SoftphoneOptions> = {}): Promise<Softphone> {
      const p = await createPhone('sip.js', { uri: user.aor, password: user.password, wsUrl: `wss://${t.addr('wss')}`, ...extra });
      phones.push(p);
      return p;
    }

    /** An Android app of `user` registered with its FCM token, then put to sleep; what wakes it again. */
    async function sleepingApp(user: User): Promise<{ token: string; wake(): Promise<Softphone> }> {
      const token = `fcm-${randomUUID()}`;
      const options: Partial<SoftphoneOptions> = {
        instanceId: randomUUID(),
        contactParams: { 'pn-provider': 'fcm', 'pn-prid': token, 'pn-param': fcm.projectId },
      };
      const app = await phone(user, options);
      await app.register();
      await app.sleep();
      // The server sees the connection close: the binding stays, asleep (RFC 8599 §5.6).
      const deadline = Date.now() + 5_000;
      while (t.server.registrar.lookup(user.aor).some((b) => b.flow !== undefined) && Date.now() < deadline) await sleep(20);
      assert.ok(t.server.registrar.lookup(user.aor).every((b) => b.flow === undefined), 'the app\'s binding is asleep');
      assert.equal(t.server.registrar.lookup(user.aor).length, 1, 'the push binding stays');
      return {
        token,
        // The push started the app: a new instance, the same instance id and push parameters.
        wake: () => phone(user, options),
      };
    }

    it('a message to a user whose only device sleeps sends one push of kind message naming the sender; the woken app gets the message once', async () => {
      const alice = await newUser('alice');
      const bob = await newUser('bob');
      const app = await sleepingApp(bob);
      const alicePhone = await phone(alice);
      await alicePhone.register();

      const text = `wake up ${randomUUID()}`;
      const sent = await alicePhone.sendMessage(bob.aor, text);
      assert.equal(sent.status, 202);
      const [push] = await waitForPushes(fcm, app.token, 1);
      assert.equal(push!.data.kind, 'message');
      assert.equal(push!.data.from, alice.aor);
      assert.equal(push!.data.id, sent.messageId, 'the push names the message');
      assert.equal(push!.data.aor, bob.address);
      if (includeContent) assert.equal(push!.data.body, text, 'push.includeContent: the text rides along');
      else assert.ok(!JSON.stringify(push).includes(text), 'without push.includeContent no text leaves for the push service');

      const woken = await app.wake();
      await woken.register();
      const [m] = await woken.waitForMessages(1);
      assert.equal(m!.body, text);
      assert.equal(m!.from, alice.aor);
      assert.equal(m!.messageId, sent.messageId);
      // Registered and awake: a refresh sends nothing again, and nothing more is pushed.
      await woken.register();
      await sleep(SETTLE_MS);
      assert.equal(woken.received.length, 1, 'the message came once');
      assert.equal(pushesTo(fcm, app.token).length, 1, 'one push for one message');
    });

    it('messages that wait for a sleeping app arrive in order, once each, when it wakes; each is pushed once', async () => {
      const carol = await newUser('carol');
      const dave = await newUser('dave');
      const app = await sleepingApp(dave);
      const carolPhone = await phone(carol);
      await carolPhone.register();

      const texts = [1, 2, 3].map((i) => `queued ${i} ${randomUUID()}`);
      const ids: string[] = [];
      for (const text of texts) {
        const sent = await carolPhone.sendMessage(dave.aor, text);
        assert.equal(sent.status, 202);
        ids.push(sent.messageId!);
      }
      const pushes = await waitForPushes(fcm, app.token, 3);
      assert.deepEqual(pushes.map((p) => p.data.id).sort(), [...ids].sort());
      assert.ok(pushes.every((p) => p.data.kind === 'message'));

      const woken = await app.wake();
      await woken.register();
      const got = await woken.waitForMessages(3);
      assert.deepEqual(got.map((m) => m.body), texts);
      await sleep(SETTLE_MS);
      assert.equal(woken.received.length, 3);
      assert.equal(pushesTo(fcm, app.token).length, 3);
    });

    it('the sender\'s own sleeping app is not pushed for its carbon copy, and gets the copy when it wakes', async () => {
      const erin = await newUser('erin');
      const frank = await newUser('frank');
      const erinApp = await sleepingApp(erin);
      const erinDesk = await phone(erin);
      await erinDesk.register();
      const frankPhone = await phone(frank);
      await frankPhone.register();

      const text = `from the desk ${randomUUID()}`;
      assert.equal((await erinDesk.sendMessage(frank.aor, text)).status, 202);
      const [m] = await frankPhone.waitForMessages(1);
      assert.equal(m!.body, text);
      await t.server.messaging!.delivery.idle();
      await sleep(SETTLE_MS);
      assert.equal(pushesTo(fcm, erinApp.token).length, 0, 'no push for the sender\'s own message');

      const woken = await erinApp.wake();
      await woken.register();
      const [copy] = await woken.waitForMessages(1);
      assert.equal(copy!.body, text);
      assert.equal(copy!.from, erin.aor);
      assert.equal(copy!.to, frank.aor, 'the copy says whom it was written to');
      await sleep(SETTLE_MS);
      assert.equal(woken.received.length, 1);
      assert.equal(erinDesk.received.length, 0, 'the sending device gets no copy of its own message');
    });
  });
}

describe('chat to a mobile app that moved to another network (its old connection died unnoticed)', { timeout: 60_000 }, () => {
  let t: TestServer;
  const phones: Softphone[] = [];

  before(async () => {
    // A device has 3 s to answer a MESSAGE before the row waits.
    t = await startTestServer({ sip: { domain: [DOMAIN] }, messaging: { deliveryTimeout: 3 } });
    await t.addUser(`gina@${DOMAIN}`, 'gina-secret');
    await t.addUser(`hank@${DOMAIN}`, 'hank-secret');
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await t?.stop();
  });

  it('a message sent to the dead connection reaches the app on the connection it registered on meanwhile, without waiting for its next REGISTER', async () => {
    const gina = await createPhone('sip.js', { uri: `sip:gina@${DOMAIN}`, password: 'gina-secret', wsUrl: `wss://${t.addr('wss')}` });
    phones.push(gina);
    await gina.register();
    const app = await createPhone('sip.js', { uri: `sip:hank@${DOMAIN}`, password: 'hank-secret', wsUrl: `wss://${t.addr('wss')}`, instanceId: randomUUID() });
    phones.push(app);
    await app.register();

    // The network changes: the old connection is dead to the app (the server has not noticed), and the
    // app re-registers on a new one about half a second later. The message goes out in between.
    const moving = app.reconnect({ stale: true });
    const text = `while moving ${randomUUID()}`;
    assert.equal((await gina.sendMessage(`sip:hank@${DOMAIN}`, text)).status, 202);
    await moving;
    assert.ok(app.sockets[0]!.staleMessages.some((m) => m.startsWith('MESSAGE ') && m.includes(text)), 'precondition: the MESSAGE went to the dead connection first');
    assert.equal(t.server.registrar.lookup(`sip:hank@${DOMAIN}`).length, 1, 'one binding, on the new connection');

    // Within the delivery timeout plus a margin: the app is registered and online, on its new connection.
    const [m] = await app.waitForMessages(1, 6_000);
    assert.equal(m!.body, text);
    await sleep(SETTLE_MS);
    assert.equal(app.received.length, 1);
  });
});
