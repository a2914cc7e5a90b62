/**
 * Presence through the running server with real SIP.js and JsSIP softphones over WSS (RFC 3856 presence,
 * RFC 3903 PUBLISH, RFC 4235 dialog package, RFC 6665 subscriptions): a watcher sees its contact go online
 * when it registers, on the phone during a call, away when it publishes so, and offline when it
 * un-registers; a busy lamp follows the calls; a blocked watcher learns nothing; a watcher that reconnects
 * keeps receiving NOTIFYs; a PUBLISH to the user's own address is not sent back to the phone.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type ReceivedNotify, type Softphone, type SoftphoneLibrary, createPhone } from '../helpers/softphone.js';
import { type TestUser, TestUsers } from '../helpers/test-users.js';

const DOMAIN = 'example.com';

const basic = (n: ReceivedNotify): string | undefined => /<basic>(open|closed)<\/basic>/.exec(n.body)?.[1];
const activity = (name: string) => (n: ReceivedNotify): boolean => new RegExp(`<rpid:${name}\\s*/>`).test(n.body);
const dialogState = (state: string) => (n: ReceivedNotify): boolean => new RegExp(`<state[^>]*>${state}</state>`).test(n.body);

function pidf(entity: string, basicStatus: 'open' | 'closed', activityName: string | undefined, note: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${entity}">`,
    `<tuple id="t1"><status><basic>${basicStatus}</basic></status></tuple>`,
    `<dm:person id="p1">${activityName === undefined ? '' : `<rpid:activities><rpid:${activityName}/></rpid:activities>`}<dm:note>${note}</dm:note></dm:person>`,
    '</presence>',
  ].join('\r\n');
}

describe('presence', { timeout: 300_000 }, () => {
  let t: TestServer;
  const users = new TestUsers(() => t, DOMAIN);
  const newUser = (prefix: string): Promise<TestUser> => users.add(prefix);
  const phone = (user: TestUser, library: SoftphoneLibrary): Promise<Softphone> => users.phone(user, library);
  const phones: Softphone[] = [];

  before(async () => {
    t = await startTestServer({ sip: { domain: [DOMAIN] }, presence: { notifyInterval: 0 } });
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await users.stop();
    await t?.stop();
  });

  it('a watcher sees offline, online on REGISTER, on the phone in a call, away on PUBLISH, and offline after un-REGISTER', async () => {
    const ann = await newUser('ann');
    const ben = await newUser('ben');
    const cal = await newUser('cal');
    const watcher = await phone(ann, 'jssip');
    const watch = await watcher.subscribe(ben.aor, 'presence');
    const first = await watch.waitFor(() => true);
    assert.equal(basic(first), 'closed', 'no device registered: offline');
    assert.match(first.subscriptionState, /^active;expires=\d+/);
    assert.equal(first.contentType.split(';')[0], 'application/pidf+xml');

    const benPhone = await phone(ben, 'sip.js');
    await watch.waitFor((x) => basic(x) === 'open');

    const calPhone = await phone(cal, 'sip.js');
    const incoming = calPhone.waitForIncoming();
    const call = await Promise.all([benPhone.call(cal.aor), incoming.then((c) => c.accept())]);
    await watch.waitFor(activity('on-the-phone'));
    await call[0].hangup();
    await watch.waitFor((x) => basic(x) === 'open' && !activity('on-the-phone')(x) && watch.notifies.indexOf(x) > watch.notifies.findIndex(activity('on-the-phone')));

    const publication = await benPhone.publish(pidf(ben.aor, 'open', 'away', 'Back at 3'));
    const away = await watch.waitFor(activity('away'));
    assert.match(away.body, /Back at 3/);
    await publication.unpublish();
    await watch.waitFor((x) => basic(x) === 'open' && !/Back at 3/.test(x.body) && watch.notifies.indexOf(x) > watch.notifies.indexOf(away));

    await benPhone.unregister();
    await watch.waitFor((x) => basic(x) === 'closed' && watch.notifies.indexOf(x) > watch.notifies.indexOf(away));
    await watch.unsubscribe();
    assert.match(watch.notifies.at(-1)!.subscriptionState, /^terminated/);
  });

  it('a busy lamp (Event: dialog) shows the watched user\'s call early, confirmed and terminated, without the phones publishing anything', async () => {
    const dee = await newUser('dee');
    const eli = await newUser('eli');
    const fay = await newUser('fay');
    const lamp = await (await phone(dee, 'sip.js')).subscribe(eli.aor, 'dialog');
    const none = await lamp.waitFor(() => true);
    assert.equal(none.contentType.split(';')[0], 'application/dialog-info+xml');
    assert.doesNotMatch(none.body, /<dialog /);

    const eliPhone = await phone(eli, 'jssip');
    const fayPhone = await phone(fay, 'sip.js');
    const ringing = eliPhone.waitForIncoming();
    const calling = fayPhone.call(eli.aor);
    const incoming = await ringing;
    await lamp.waitFor(dialogState('early'));
    const answered = await incoming.accept();
    const call = await calling;
    const confirmed = await lamp.waitFor(dialogState('confirmed'));
    assert.match(confirmed.body, /direction="recipient"/);
    await call.hangup();
    await answered.waitForEnded();
    await lamp.waitFor(dialogState('terminated'));
    const versions = lamp.notifies.map((x) => Number(/version="(\d+)"/.exec(x.body)?.[1]));
    assert.deepEqual(versions, versions.map((_v, i) => versions[0]! + i), 'dialog-info version goes up by one per NOTIFY (RFC 4235 §4.1.2)');
  });

  it('with presence.policy contacts, a watcher not on the allow list is told only what an offline user looks like; on the list, the state', async () => {
    const t2 = await startTestServer({ sip: { domain: [DOMAIN] }, presence: { notifyInterval: 0, policy: 'contacts' } });
    try {
      await t2.addUser(`gus@${DOMAIN}`, 'gus-secret');
      await t2.addUser(`hal@${DOMAIN}`, 'hal-secret');
      const phoneOf = async (name: string): Promise<Softphone> => {
        const p = await createPhone('sip.js', { uri: `sip:${name}@${DOMAIN}`, password: `${name}-secret`, wsUrl: `wss://${t2.addr('wss')}` });
        phones.push(p);
        await p.register();
        return p;
      };
      const hal = await phoneOf('hal');
      await hal.publish(pidf(`sip:hal@${DOMAIN}`, 'open', 'busy', 'In a meeting'));
      const gus = await phoneOf('gus');
      const watch = await gus.subscribe(`sip:hal@${DOMAIN}`, 'presence');
      const blocked = await watch.waitFor(() => true);
      assert.equal(basic(blocked), 'closed');
      assert.doesNotMatch(blocked.body, /busy|In a meeting/);

      const res = await fetch(`http://127.0.0.1:${t2.server.http.boundTo}/v1/auth/token`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'password', username: `hal@${DOMAIN}`, password: 'hal-secret' }),
      });
      const { access_token: token } = (await res.json()) as { access_token: string };
      const put = await fetch(`http://127.0.0.1:${t2.server.http.boundTo}/v1/presence/allow/gus@${DOMAIN}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` } });
      assert.equal(put.status, 204);
      const told = await watch.waitFor((x) => basic(x) === 'open');
      assert.match(told.body, /In a meeting/);
    } finally {
      await t2.stop();
    }
  });

  it('a watcher whose WebSocket dropped and came back keeps receiving NOTIFYs on its new connection', async () => {
    const ida = await newUser('ida');
    const jon = await newUser('jon');
    const watcher = await phone(ida, 'sip.js');
    const watch = await watcher.subscribe(jon.aor, 'presence');
    await watch.waitFor((x) => basic(x) === 'closed');
    await watcher.reconnect();
    const before = watch.notifies.length;
    await phone(jon, 'jssip');
    await watch.waitFor((x) => basic(x) === 'open' && watch.notifies.indexOf(x) >= before);
    const sockets = watcher.sockets;
    const last = sockets.at(-1)!;
    assert.ok(last.messages.some((m) => m.dir === 'in' && m.text.startsWith('NOTIFY ') && /<basic>open<\/basic>/.test(m.text)), 'the NOTIFY came on the new connection');
  });

  it('a PUBLISH for the phone\'s own address is answered by the server (200 with SIP-ETag), never sent back to the phone', async () => {
    const kim = await newUser('kim');
    const kimPhone = await phone(kim, 'sip.js');
    await kimPhone.publish(pidf(kim.aor, 'open', undefined, 'Here'));
    const requests = kimPhone.sockets.flatMap((s) => s.messages).filter((m) => m.dir === 'in' && m.text.startsWith('PUBLISH '));
    assert.deepEqual(requests, []);
    const ok = kimPhone.sockets.flatMap((s) => s.messages).find((m) => m.dir === 'in' && /^SIP\/2\.0 200/.test(m.text) && /^CSeq:\s*\d+\s+PUBLISH/im.test(m.text));
    assert.match(ok?.text ?? '', /^SIP-ETag:\s*\S+/im);
  });

  it('message-summary without a voicemail backend: answered here, no messages waiting, never looped back to the subscriber', async () => {
    const lou = await newUser('lou');
    const louPhone = await phone(lou, 'jssip');
    const watch = await louPhone.subscribe(lou.aor, 'message-summary');
    const first = await watch.waitFor(() => true);
    assert.match(first.body, /^Messages-Waiting: no/m);
    assert.deepEqual(louPhone.sockets.flatMap((s) => s.messages).filter((m) => m.dir === 'in' && m.text.startsWith('SUBSCRIBE ')), []);
  });
});
