/**
 * Topology hiding end to end (proxy.topologyHiding): a SIPp phone on 127.0.0.1 (untrusted) calls a PSTN
 * number that the dialplan sends to the FreeSWITCH stand-in on 127.0.0.2 (a backend, so trusted). Every
 * message the phone receives, the 200 OK and the BYE of the backend included, names no 127.0.0.2, and the
 * dialog still works both ways: the phone's BYE reaches the backend, the backend's BYE reaches the phone.
 * rtpengine relays the media (media.alwaysRelay), so the SDP names no backend address either.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FakeFreeswitch, startFakeFreeswitch } from '../helpers/fake-freeswitch.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';
import { SIPP_SCENARIOS, runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const DOMAIN = 'example.com';
const ALICE = { user: 'alice', password: 'alice-th-secret' };
const BACKEND = '127.0.0.2';
const BOB = { user: 'bob', password: 'bob-th-secret' };
const DID = '+4930555666';

/** The messages SIPp logged as received (-trace_msg), each as its text. */
function receivedMessages(file: string): string[] {
  const blocks = readFileSync(file, 'latin1').split(/^-{20,}.*$/m);
  return blocks.filter((b) => /message received/.test(b)).map((b) => b.replace(/^[\s\S]*?message received \[\d+\] bytes :\s*/, ''));
}

describe('topology hiding: a phone calling through a backend of the pool', () => {
  let t: TestServer;
  let fs: FakeFreeswitch;
  let rtpengine: RtpengineHandle;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'th-'));
    fs = await startFakeFreeswitch({ host: BACKEND, challengeRegister: false });
    rtpengine = await startRtpengine();
    t = await startTestServer({
      proxy: { topologyHiding: true },
      balancer: { probeInterval: 1, reloadInterval: 0 },
      media: { rtpengine: [rtpengine.ng], alwaysRelay: true },
    });
    await t.addUser(`${ALICE.user}@${DOMAIN}`, ALICE.password);
    await t.addUser(`${BOB.user}@${DOMAIN}`, BOB.password);
    await t.server.store.routing.addDid({ number: DID, username: BOB.user, domain: DOMAIN });
    await t.server.store.routing.addBackend({ set: 'pstn', uri: fs.uri });
    await t.server.store.routing.addRoute({ pattern: '\\+[1-9][0-9]{6,14}', replace: '', set: 'pstn', priority: 10, description: 'E.164' });
    await t.server.reload();
  });

  after(async () => {
    await t?.stop();
    await fs?.close();
    await rtpengine?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  function call(scenario: string, log: string, callee: string) {
    return runSipp({
      scenario, target: t.addr('udp'), timeoutSeconds: 10,
      extra: ['-key', 'aor_user', ALICE.user, '-key', 'aor_domain', DOMAIN, '-key', 'callee', callee,
        '-au', ALICE.user, '-ap', ALICE.password, '-auth_uri', `${callee}@${DOMAIN}`,
        '-trace_msg', '-message_file', log, '-d', '300'],
    });
  }

  it('the 200 OK the phone gets names no backend address, and the phone\'s BYE still reaches the backend', { timeout: 20_000 }, async () => {
    const log = join(dir, 'local-bye.log');
    const ended = new Promise<string | undefined>((resolve) => fs.on('ended', (c) => resolve(c.endedBy)));
    const r = await call('fs-uac-pstn-call.xml', log, '+4930111222');
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    assert.equal(await ended, 'remote', 'the backend got the phone\'s BYE');
    const messages = receivedMessages(log);
    const ok = messages.find((m) => /^SIP\/2\.0 200 /.test(m) && /^CSeq:\s*2 INVITE/m.test(m));
    assert.ok(ok !== undefined, 'the phone got the 200 OK');
    assert.match(ok, /^Contact:\s*<sip:th\.[A-Za-z0-9_-]+@127\.0\.0\.1:\d+;transport=udp>/m);
    for (const m of messages) assert.ok(!m.includes(BACKEND), `a message to the phone names the backend:\n${m}`);
  });

  it('the backend\'s BYE reaches the phone without the backend\'s Via, Contact or address', { timeout: 20_000 }, async () => {
    const log = join(dir, 'remote-bye.log');
    const before = fs.invites.length;
    const running = call('pstn-call-remote-bye.xml', log, '+4930333444');
    const deadline = Date.now() + 8_000;
    while ((fs.invites.length === before || fs.activeCalls === 0) && Date.now() < deadline) await sleep(50);
    assert.ok(fs.activeCalls > 0, 'the call reached the backend');
    await sleep(300); // the ACK
    const callId = fs.invites.at(-1)!.callId;
    assert.equal(await fs.hangup(callId), 200, 'the phone answered the backend\'s BYE');
    const r = await running;
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    const messages = receivedMessages(log);
    const bye = messages.find((m) => m.startsWith('BYE '));
    assert.ok(bye !== undefined, 'the phone got the BYE');
    assert.equal(bye.match(/^Via:/gm)?.length, 1, 'one Via: ours');
    for (const m of messages) assert.ok(!m.includes(BACKEND), `a message to the phone names the backend:\n${m}`);
  });

  it('an administrator\'s hang-up (DELETE /v1/active-calls/:id) sends the backend and the phone a BYE each; the phone\'s names no backend address', { timeout: 20_000 }, async () => {
    const log = join(dir, 'admin-bye.log');
    const admin = (await t.server.store.tokens.create({ name: 'th-admin', expiresAt: Date.now() + 600_000 })).token;
    const before = fs.invites.length;
    const ended = new Promise<string | undefined>((resolve) => fs.on('ended', (c) => resolve(c.endedBy)));
    const running = call('pstn-call-remote-bye.xml', log, '+4930777888');
    const deadline = Date.now() + 8_000;
    while ((fs.invites.length === before || fs.activeCalls === 0) && Date.now() < deadline) await sleep(50);
    assert.ok(fs.activeCalls > 0, 'the call reached the backend');
    await sleep(300); // the ACK
    const [dialog] = t.server.dialogs.list();
    const r = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/v1/active-calls/${dialog!.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
    assert.equal(r.status, 202, await r.text());
    assert.equal(await ended, 'remote', 'the backend got a BYE');
    const sipp = await running;
    assert.equal(sipp.code, 0, sipp.stderr + sipp.stdout.slice(-3000));
    const messages = receivedMessages(log);
    const bye = messages.find((m) => m.startsWith('BYE '));
    assert.ok(bye !== undefined, 'the phone got the BYE');
    for (const m of messages) assert.ok(!m.includes(BACKEND), `a message to the phone names the backend:\n${m}`);
  });

  it('a backend\'s call to a DID reaches the phone with our Via, Record-Route and Contact only, and the dialog works both ways', { timeout: 20_000 }, async () => {
    const log = join(dir, 'did.log');
    const uas = runSipp({
      scenario: 'reg-then-answer.xml', target: t.addr('udp'), timeoutSeconds: 10,
      extra: ['-oocsf', join(SIPP_SCENARIOS, 'call-uas.xml'), '-key', 'aor_user', BOB.user, '-key', 'aor_domain', DOMAIN,
        '-au', BOB.user, '-ap', BOB.password, '-auth_uri', DOMAIN, '-trace_msg', '-message_file', log],
    });
    let uasResult: Awaited<typeof uas> | undefined;
    void uas.then((r) => (uasResult = r));
    const deadline = Date.now() + 5_000;
    while (t.server.registrar.lookup(`sip:${BOB.user}@${DOMAIN}`).length === 0 && uasResult === undefined && Date.now() < deadline) await sleep(50);
    assert.equal(t.server.registrar.lookup(`sip:${BOB.user}@${DOMAIN}`).length, 1, `SIPp registered ${uasResult?.stderr ?? ''}`);

    const result = await fs.call(`sip:${DID}@${t.addr('udp')}`, { via: t.addr('udp'), from: 'sip:+4915112345678@pstn.invalid' });
    assert.equal(result.status, 200, 'the phone answered');
    await sleep(300); // the ACK reaches the phone
    assert.equal(await result.hangup(), 200, 'the phone answered the backend\'s BYE');
    const r = await uas;
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    const messages = receivedMessages(log);
    const invite = messages.find((m) => m.startsWith('INVITE '));
    assert.ok(invite !== undefined, 'the phone got the INVITE');
    assert.equal(invite.match(/^Via:/gm)?.length, 1, 'one Via: ours');
    assert.match(invite, /^Contact:\s*<sip:th\./m);
    assert.ok(messages.some((m) => m.startsWith('ACK ')) && messages.some((m) => m.startsWith('BYE ')), 'ACK and BYE reached the phone');
    for (const m of messages) assert.ok(!m.includes(BACKEND), `a message to the phone names the backend:\n${m}`);
  });
});
