/**
 * Chat through the running server with real SIP.js and JsSIP softphones (RFC 3428 MESSAGE over WS/WSS):
 * every device of the recipient and the sender's other devices get each message once; a recipient that
 * was offline gets its messages in order when it registers again, also after a server restart; IMDN
 * receipts (RFC 5438) round-trip and are recorded; groups fan out and refuse non-members; the history API
 * pages and counts unread messages.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, type SoftphoneLibrary, SoftphoneError } from '../helpers/softphone.js';
import { type ApiAnswer, type TestUser, TestUsers } from '../helpers/test-users.js';

const DOMAIN = 'example.com';
/** After the expected messages arrived: long enough for a duplicate to show up. */
const SETTLE_MS = 300;

function cpimWithImdn(from: string, to: string, imdnId: string, text: string): string {
  // RFC 5438 §6.3 / RFC 3862 §6: message headers, a blank line, the MIME headers of the inner part, the body.
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `DateTime: ${new Date().toISOString()}`,
    'NS: imdn <urn:ietf:params:imdn>',
    `imdn.Message-ID: ${imdnId}`,
    'imdn.Disposition-Notification: positive-delivery, display',
    '',
    'Content-Type: text/plain; charset=utf-8',
    '',
    text,
  ].join('\r\n');
}

function imdnFor(from: string, to: string, imdnId: string, status: 'delivered' | 'displayed'): string {
  const kind = status === 'delivered' ? 'delivery-notification' : 'display-notification';
  const xml = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<imdn xmlns="urn:ietf:params:xml:ns:imdn">',
    `<message-id>${imdnId}</message-id>`,
    `<datetime>${new Date().toISOString()}</datetime>`,
    `<${kind}><status><${status}/></status></${kind}>`,
    '</imdn>',
  ].join('\r\n');
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    'NS: imdn <urn:ietf:params:imdn>',
    `imdn.Message-ID: r-${imdnId}-${status}`,
    `DateTime: ${new Date().toISOString()}`,
    '',
    'Content-Type: message/imdn+xml',
    'Content-Disposition: notification',
    '',
    xml,
  ].join('\r\n');
}

describe('chat over SIP MESSAGE', { timeout: 300_000 }, () => {
  let t: TestServer;
  const users = new TestUsers(() => t, DOMAIN);
  const newUser = (prefix: string): Promise<TestUser> => users.add(prefix);
  const phone = (user: TestUser, library: SoftphoneLibrary, protocol: 'ws' | 'wss' = 'wss'): Promise<Softphone> => users.phone(user, library, protocol);
  const tokenOf = (user: TestUser): Promise<string> => users.token(user);
  const api = (token: string, method: string, path: string, body?: unknown): Promise<ApiAnswer> => users.api(token, method, path, body);

  before(async () => {
    t = await startTestServer({ sip: { domain: [DOMAIN] }, messaging: { floodPer10s: 50 } });
  });
  after(async () => {
    await users.stop();
    await t?.stop();
  });

  it('a MESSAGE is answered 202 and reaches every device of the recipient and the sender\'s other devices, once each', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const aliceDesk = await phone(alice, 'sip.js', 'wss');
    const aliceMobile = await phone(alice, 'jssip', 'ws');
    const bobDesk = await phone(bob, 'jssip', 'wss');
    const bobMobile = await phone(bob, 'sip.js', 'ws');

    const sent = await aliceDesk.sendMessage(bob.aor, 'hello from the desk');
    assert.equal(sent.status, 202);
    assert.match(sent.messageId ?? '', /^[A-Za-z0-9_-]{22}$/);

    for (const p of [bobDesk, bobMobile]) {
      const [m] = await p.waitForMessages(1);
      assert.equal(m!.body, 'hello from the desk');
      assert.equal(m!.from, alice.aor);
      assert.equal(m!.to, bob.aor);
      assert.equal(m!.messageId, sent.messageId);
    }
    // The carbon copy: the sender's other device sees what was sent, to whom.
    const [copy] = await aliceMobile.waitForMessages(1);
    assert.equal(copy!.body, 'hello from the desk');
    assert.equal(copy!.to, bob.aor);

    // And back, from JsSIP.
    assert.equal((await bobDesk.sendMessage(alice.aor, 'hi from JsSIP')).status, 202);
    await aliceDesk.waitForMessages(1);
    await aliceMobile.waitForMessages(2);
    await bobMobile.waitForMessages(2);
    await sleep(SETTLE_MS);
    assert.equal(aliceDesk.received.length, 1, 'the sending device gets no copy of its own message');
    assert.equal(aliceMobile.received.length, 2);
    assert.equal(bobDesk.received.length, 1, 'the sending device gets no copy of its own message');
    assert.equal(bobMobile.received.length, 2);
  });

  it('a recipient with no device online gets the messages in order, once each, when a device registers', async () => {
    const carol = await newUser('carol');
    const dave = await newUser('dave');
    const carolPhone = await phone(carol, 'sip.js');
    for (let i = 1; i <= 5; i++) assert.equal((await carolPhone.sendMessage(dave.aor, `offline ${i}`)).status, 202);

    const davePhone = await phone(dave, 'jssip');
    const got = await davePhone.waitForMessages(5);
    assert.deepEqual(got.map((m) => m.body), ['offline 1', 'offline 2', 'offline 3', 'offline 4', 'offline 5']);
    assert.ok(got.every((m) => m.date !== undefined), 'each carries the time it was sent (Date)');
    // A re-REGISTER on a new connection sends nothing again.
    await davePhone.reconnect();
    await sleep(SETTLE_MS);
    assert.equal(davePhone.received.length, 5);
  });

  it('a device that answers 480 gets the message at its next REGISTER, and the ones after it in order', async () => {
    const erin = await newUser('erin');
    const frank = await newUser('frank');
    const erinPhone = await phone(erin, 'jssip');
    const frankPhone = await phone(frank, 'sip.js');
    frankPhone.messageAnswer = 480;
    await erinPhone.sendMessage(frank.aor, 'first');
    await erinPhone.sendMessage(frank.aor, 'second');
    await sleep(SETTLE_MS);
    frankPhone.messageAnswer = 200;
    await frankPhone.register();
    const got = await frankPhone.waitForMessages(2);
    assert.deepEqual(got.map((m) => m.body), ['first', 'second']);
  });

  it('IMDN (RFC 5438): the delivery and display notifications reach the sender and the history records them per device', async () => {
    const gina = await newUser('gina');
    const hank = await newUser('hank');
    const ginaPhone = await phone(gina, 'sip.js');
    const hankPhone = await phone(hank, 'jssip');
    const imdnId = `m${Date.now()}`;
    const sent = await ginaPhone.sendMessage(hank.aor, cpimWithImdn(gina.aor, hank.aor, imdnId, 'read me'), { contentType: 'message/cpim' });
    assert.equal(sent.status, 202);
    const [m] = await hankPhone.waitForMessages(1);
    assert.equal(m!.contentType.split(';')[0], 'message/cpim');
    assert.match(m!.body, new RegExp(`imdn.Message-ID: ${imdnId}`));

    for (const status of ['delivered', 'displayed'] as const) {
      const r = await hankPhone.sendMessage(gina.aor, imdnFor(hank.aor, gina.aor, imdnId, status), { contentType: 'message/cpim' });
      assert.equal(r.status, 202);
    }
    const receipts = await ginaPhone.waitForMessages(2);
    assert.match(receipts[0]!.body, /<delivered\/>/);
    assert.match(receipts[1]!.body, /<displayed\/>/);

    const token = await tokenOf(gina);
    const res = await api(token, 'GET', `/messages/${sent.messageId}/receipts`);
    assert.equal(res.status, 200);
    const mine = res.body.receipts.filter((r: { user: string }) => r.user === hank.address);
    assert.ok(mine.length >= 1);
    assert.ok(mine.some((r: { deliveredAt?: unknown; displayedAt?: unknown }) => r.deliveredAt !== undefined && r.displayedAt !== undefined), JSON.stringify(mine));
    // Read on hank's phone is read: no unread message left for him.
    const list = await api(await tokenOf(hank), 'GET', '/conversations');
    assert.equal(list.body.conversations.find((c: { uri: string }) => c.uri === gina.aor)?.unread, 0);
  });

  it('a group of 5 with one member offline: one MESSAGE to the group reaches every member\'s devices, the offline one on REGISTER', async () => {
    const members = await Promise.all([1, 2, 3, 4, 5].map(() => newUser('member')));
    const [owner, ...rest] = members as [TestUser, ...TestUser[]];
    const group = await api(await tokenOf(owner), 'POST', '/groups', { name: 'Team', members: rest.map((u) => u.address) });
    assert.equal(group.status, 201, JSON.stringify(group.body));
    const uri: string = group.body.uri;
    assert.match(uri, new RegExp(`^sip:group-[0-9a-f]{12}@${DOMAIN}$`));

    const online = await Promise.all(members.slice(0, 4).map((u, i) => phone(u, i % 2 === 0 ? 'sip.js' : 'jssip')));
    // Each member first gets the note that the group was made.
    await Promise.all(online.map((p) => p.waitForMessages(1)));
    assert.equal((await online[1]!.sendMessage(uri, 'hello team')).status, 202);
    for (const [i, p] of online.entries()) {
      if (i === 1) continue;
      const got = await p.waitForMessages(2);
      assert.equal(got[1]!.body, 'hello team');
      assert.equal(got[1]!.from, members[1]!.aor);
      assert.equal(got[1]!.to, uri);
    }
    const late = await phone(members[4]!, 'jssip');
    const got = await late.waitForMessages(2);
    assert.match(got[0]!.body, /created the group/);
    assert.equal(got[1]!.body, 'hello team');

    const outsider = await phone(await newUser('outsider'), 'sip.js');
    await assert.rejects(outsider.sendMessage(uri, 'let me in'), (err: unknown) => err instanceof SoftphoneError && err.status === 403);
    const history = await api(await tokenOf(members[2]!), 'GET', `/conversations/${group.body.id}/messages`);
    assert.deepEqual(history.body.messages.map((m: { body: string }) => m.body).slice(-1), ['hello team']);
  });

  it('history: pages with before/after ids, unread counts, mark read, delete for me and search', async () => {
    const ivy = await newUser('ivy');
    const jack = await newUser('jack');
    const ivyPhone = await phone(ivy, 'sip.js');
    for (let i = 1; i <= 12; i++) await ivyPhone.sendMessage(jack.aor, `note ${i}${i === 7 ? ' needle' : ''}`);
    const token = await tokenOf(jack);
    const list = await api(token, 'GET', '/conversations');
    const conv = list.body.conversations.find((c: { uri: string }) => c.uri === ivy.aor);
    assert.equal(conv.unread, 12);
    assert.equal(conv.last.body, 'note 12');

    const newest = await api(token, 'GET', `/conversations/${conv.id}/messages?limit=5`);
    assert.deepEqual(newest.body.messages.map((m: { body: string }) => m.body), ['note 8', 'note 9', 'note 10', 'note 11', 'note 12']);
    assert.equal(newest.body.after, undefined);
    const older = await api(token, 'GET', `/conversations/${conv.id}/messages?limit=5&before=${newest.body.before}`);
    assert.deepEqual(older.body.messages.map((m: { body: string }) => m.body), ['note 3', 'note 4', 'note 5', 'note 6', 'note 7 needle']);
    const newer = await api(token, 'GET', `/conversations/${conv.id}/messages?limit=3&after=${older.body.messages[4].id}`);
    assert.deepEqual(newer.body.messages.map((m: { body: string }) => m.body), ['note 8', 'note 9', 'note 10']);

    const read = await api(token, 'POST', `/conversations/${conv.id}/read`, { messageId: older.body.messages[2].id });
    assert.equal(read.status, 200);
    assert.equal(read.body.unread, 7);

    const found = await api(token, 'GET', `/conversations/${conv.id}/search?q=NEEDLE`);
    assert.deepEqual(found.body.messages.map((m: { body: string }) => m.body), ['note 7 needle']);
    assert.equal((await api(token, 'DELETE', `/messages/${found.body.messages[0].id}`)).status, 204);
    assert.deepEqual((await api(token, 'GET', `/conversations/${conv.id}/search?q=needle`)).body.messages, []);
    // Deleted for jack only.
    const ivyView = await api(await tokenOf(ivy), 'GET', `/conversations/${conv.id}/search?q=needle`);
    assert.equal(ivyView.body.messages.length, 1);
    // A user who is not in the conversation sees nothing of it.
    assert.equal((await api(await tokenOf(await newUser('kim')), 'GET', `/conversations/${conv.id}/messages`)).status, 404);
  });

  it('a message sent with the API is delivered over SIP like a MESSAGE', async () => {
    const lea = await newUser('lea');
    const max = await newUser('max');
    const maxPhone = await phone(max, 'jssip');
    const token = await tokenOf(lea);
    const conv = await api(token, 'POST', '/conversations', { peer: max.address });
    assert.equal(conv.status, 201);
    const posted = await api(token, 'POST', `/conversations/${conv.body.id}/messages`, { body: 'from the web app' });
    assert.equal(posted.status, 201);
    const [m] = await maxPhone.waitForMessages(1);
    assert.equal(m!.body, 'from the web app');
    assert.equal(m!.from, lea.aor);
  });

  it('a body over messaging.maxBodySize is refused with 413, an unknown content type with 415', async () => {
    const ned = await newUser('ned');
    const ola = await newUser('ola');
    const nedPhone = await phone(ned, 'sip.js');
    await assert.rejects(nedPhone.sendMessage(ola.aor, 'x'.repeat(65_537)), (err: unknown) => err instanceof SoftphoneError && err.status === 413);
    await assert.rejects(nedPhone.sendMessage(ola.aor, 'GIF89a', { contentType: 'image/gif' }), (err: unknown) => err instanceof SoftphoneError && err.status === 415);
  });

  it('a restart loses nothing: messages stored for an offline user are delivered after the server restarted', async () => {
    const pia = await newUser('pia');
    const quinn = await newUser('quinn');
    const piaPhone = await phone(pia, 'jssip');
    for (const text of ['before restart 1', 'before restart 2']) assert.equal((await piaPhone.sendMessage(quinn.aor, text)).status, 202);
    await piaPhone.stop();
    await t.restart();
    const quinnPhone = await phone(quinn, 'sip.js');
    const got = await quinnPhone.waitForMessages(2);
    assert.deepEqual(got.map((m) => m.body), ['before restart 1', 'before restart 2']);
  });
});
