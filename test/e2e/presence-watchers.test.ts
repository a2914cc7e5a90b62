/**
 * Many watchers of one user (issue 16): 200 watchers, each a user of its own on a UDP socket of its own
 * (test/helpers/presence-watcher.ts), subscribe to one presentity's presence (RFC 3856). The presentity, a
 * SIP.js phone over WSS, then registers, publishes "away" (RFC 3903 PUBLISH, RPID activity) and
 * un-registers: every watcher is told each state exactly once, in order: offline, online, away, offline.
 * NOTIFYs are not throttled here (`presence.notifyInterval: 0`) and the changes are spaced (each waits for
 * every watcher to hear the one before), so that each is its own NOTIFY: none folded, none missing, none twice.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, createPhone } from '../helpers/softphone.js';
import { UdpWatcher, type WatcherNotify } from '../helpers/presence-watcher.js';

const DOMAIN = 'example.com';
const WATCHERS = 200;
/** SUBSCRIBEs in flight at once. */
const CONCURRENCY = 25;

const AWAY = (aor: string): string => [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"',
  `    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${aor}">`,
  '  <tuple id="t1"><status><basic>open</basic></status></tuple>',
  '  <dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities><dm:note>Back at three</dm:note></dm:person>',
  '</presence>',
].join('\r\n');

/** What a watcher learns from one PIDF: its status and activities. */
function stateOf(n: WatcherNotify): string {
  const basic = /<basic>(open|closed)<\/basic>/.exec(n.body)?.[1] ?? '?';
  const activities = [...n.body.matchAll(/<rpid:([a-z-]+)\/>/g)].map((m) => m[1]!).sort();
  return activities.length === 0 ? basic : `${basic}+${activities.join('+')}`;
}

async function inBatches<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

describe('200 watchers of one user', { timeout: 60_000 }, () => {
  let t: TestServer;
  const watchers: UdpWatcher[] = [];
  let phone: Softphone | undefined;

  before(async () => {
    t = await startTestServer({ sip: { domain: [DOMAIN] }, presence: { notifyInterval: 0 } });
  });
  after(async () => {
    for (const w of watchers) w.close();
    await phone?.stop();
    await t?.stop();
  });

  it('each of 200 watchers gets every change of the presentity once, in order: offline, online, away, offline', async () => {
    const started = Date.now();
    const presentity = 'star@example.com';
    await t.addUser(presentity, 'star-secret');
    const aor = `sip:${presentity}`;
    const udp = t.listener('udp');
    for (let i = 0; i < WATCHERS; i++) {
      const account = { username: `fan${i}`, domain: DOMAIN, password: `fan${i}-secret` };
      await t.addUser(`${account.username}@${DOMAIN}`, account.password);
      watchers.push(await UdpWatcher.open(account, { address: udp.address, port: udp.port }));
    }

    const statuses = new Map<number, number>();
    await inBatches(watchers, CONCURRENCY, async (w) => {
      const status = await w.subscribe(aor, 'presence');
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    });
    assert.deepEqual([...statuses], [[200, WATCHERS]], 'every SUBSCRIBE answered 200 after its 407');
    assert.equal(t.server.presence!.notifier.stats().subscriptions, WATCHERS);

    /** Waits until every watcher holds `count` NOTIFYs. */
    const heard = async (count: number, what: string): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (watchers.some((w) => w.notifies.length < count)) {
        if (Date.now() > deadline) {
          const behind = watchers.filter((w) => w.notifies.length < count);
          assert.fail(`${behind.length} watchers did not hear ${what} (e.g. ${behind[0]!.aor}: ${behind[0]!.notifies.map(stateOf).join(' → ')})`);
        }
        await sleep(20);
      }
    };

    await heard(1, 'the state at subscription');
    phone = await createPhone('sip.js', { uri: aor, password: 'star-secret', wsUrl: `wss://${t.addr('wss')}` });
    await phone.register();
    await heard(2, 'the registration');
    await phone.publish(AWAY(aor));
    await heard(3, 'the publication');
    await phone.unregister();
    await heard(4, 'the un-registration');
    // Anything more would be a duplicate: give it the time to arrive.
    await sleep(500);

    const expected = ['closed', 'open', 'open+away', 'closed'];
    for (const w of watchers) {
      assert.deepEqual(w.notifies.map(stateOf), expected, `${w.aor} heard each state once`);
      assert.ok(w.notifies.every((n) => n.contentType === 'application/pidf+xml' && /^active;expires=\d+$/.test(n.subscriptionState)));
      assert.deepEqual(w.notifies.map((n) => n.cseq), [1, 2, 3, 4], `${w.aor}: one NOTIFY per change, CSeq one higher each`);
    }
    assert.match(watchers[0]!.notifies[2]!.body, /Back at three/, 'the published note reaches the watchers');
    const { notifies, notifyFailures } = t.server.presence!.notifier.stats();
    assert.equal(notifies, WATCHERS * expected.length, 'the server sent no NOTIFY beyond these');
    assert.equal(notifyFailures, 0);

    // Everyone leaves: a final NOTIFY each, and the server keeps nothing.
    await inBatches(watchers, CONCURRENCY, async (w) => assert.equal(await w.unsubscribe(), 200));
    await heard(5, 'the final NOTIFY');
    for (const w of watchers) assert.equal(w.notifies[4]!.subscriptionState, 'terminated;reason=timeout');
    assert.equal(t.server.presence!.notifier.stats().subscriptions, 0);
    assert.ok(Date.now() - started < 30_000, `bounded: ${Date.now() - started} ms`);
  });
});
