/**
 * Chat with SIPp over UDP (RFC 3428 MESSAGE) through the running server: a SIPp UAC authenticates on 407
 * and sends a MESSAGE a SIP.js user receives; a SIPp device registered over UDP receives a softphone's
 * messages in order; messages for a SIPp user who was not registered, or whose device answered 480, wait
 * in the store and arrive in order at its next REGISTER. A SIPp device is its Contact: a second SIPp run
 * from the same local port (-p) is the same device coming back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SIPP_SCENARIOS, runSipp } from '../helpers/sipp.js';
import { freePort, waitUdpBound } from '../../support/tools.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, createPhone } from '../helpers/softphone.js';
import { type SippRun, type Traced, parseTrace } from '../helpers/sipp-trace.js';

const DOMAIN = 'example.com';

interface User {
  name: string;
  aor: string;
  password: string;
}

/** The MESSAGE requests a SIPp device received, in the order they came (retransmissions counted once). */
function messagesIn(run: SippRun): Traced[] {
  const seen = new Set<string>();
  return run.traced.filter((m) => {
    if (m.direction !== 'received' || !m.startLine.startsWith('MESSAGE ')) return false;
    const key = `${m.header('call-id')}\n${m.header('cseq')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

describe('chat with SIPp over UDP (RFC 3428 MESSAGE)', { timeout: 180_000 }, () => {
  let t: TestServer;
  let logs: string;
  let n = 0;
  const phones: Softphone[] = [];

  before(async () => {
    // A device that does not answer is given up on after 2 s, not the default 32.
    t = await startTestServer({ sip: { domain: [DOMAIN] }, messaging: { deliveryTimeout: 2 } });
    logs = mkdtempSync(join(tmpdir(), 'chat-sipp-'));
  });
  after(async () => {
    await Promise.all(phones.map((p) => p.stop()));
    await t?.stop();
    if (logs !== undefined) rmSync(logs, { recursive: true, force: true });
  });

  async function newUser(prefix: string): Promise<User> {
    const name = `${prefix}${++n}`;
    const password = `${name}-secret`;
    await t.addUser(`${name}@${DOMAIN}`, password);
    return { name, aor: `sip:${name}@${DOMAIN}`, password };
  }

  async function phone(user: User): Promise<Softphone> {
    const p = await createPhone('sip.js', { uri: user.aor, password: user.password, wsUrl: `wss://${t.addr('wss')}` });
    phones.push(p);
    await p.register();
    return p;
  }

  /** Runs a scenario as `user` over UDP from local port `port`, with SIPp's message log kept for the test. */
  async function sipp(scenario: string, user: User, port: number, extra: string[] = [], calls = 1): Promise<SippRun> {
    const file = join(logs, `${scenario}-${port}-${randomUUID()}.log`);
    const r = await runSipp({
      scenario,
      target: t.addr('udp'),
      transport: 'u1',
      calls,
      timeoutSeconds: 10,
      extra: [
        // runSipp picks a port of its own: the later -p wins, so a device can come back on its port.
        '-p', String(port),
        '-key', 'aor_user', user.name, '-key', 'aor_domain', DOMAIN, '-au', user.name, '-ap', user.password,
        '-trace_msg', '-message_file', file, ...extra,
      ],
    });
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // No log: SIPp did not start; its output says why.
    }
    return { code: r.code, detail: `${r.stderr}${r.stdout.slice(-3000)}\n${text.slice(-4000)}`, traced: parseTrace(text) };
  }

  /** Registers `user` from `port` and takes `count` MESSAGEs there, each answered by `answerScenario`. */
  function registerAndTake(user: User, port: number, count: number, answerScenario = 'message-uas.xml'): Promise<SippRun> {
    return sipp('message-reg-recv.xml', user, port, ['-oocsf', join(SIPP_SCENARIOS, answerScenario), '-key', 'count', String(count), '-auth_uri', DOMAIN]);
  }

  async function waitForBinding(user: User, running: Promise<SippRun>): Promise<void> {
    let ended: SippRun | undefined;
    void running.then((r) => (ended = r));
    const deadline = Date.now() + 5_000;
    while (t.server.registrar.lookup(user.aor).length === 0 && ended === undefined && Date.now() < deadline) await sleep(50);
    if (ended !== undefined) assert.fail(`SIPp ended before registering: ${ended.detail}`);
    assert.equal(t.server.registrar.lookup(user.aor).length, 1, 'SIPp registered');
  }

  it('a SIPp UAC is challenged (407), sends the MESSAGE again with Proxy-Authorization, gets 202, and the SIP.js user receives it from the SIPp user\'s AoR', async () => {
    const sender = await newUser('sippuac');
    const bob = await newUser('bob');
    const bobPhone = await phone(bob);
    const text = `hello from SIPp ${randomUUID()}`;

    const run = await sipp('message-uac-auth.xml', sender, await freePort(), [
      '-key', 'callee', bob.name, '-key', 'text', text, '-auth_uri', `${bob.name}@${DOMAIN}`,
    ]);
    assert.equal(run.code, 0, run.detail);
    const finals = run.traced.filter((m) => m.direction === 'received' && m.startLine.startsWith('SIP/2.0 ')).map((m) => m.startLine.slice(8, 11));
    assert.deepEqual(finals.filter((s) => s !== '100'), ['407', '202']);
    const secondTry = run.traced.filter((m) => m.direction === 'sent' && m.startLine.startsWith('MESSAGE '))[1];
    assert.match(secondTry?.header('proxy-authorization') ?? '', /^Digest /, 'the second MESSAGE carries Proxy-Authorization');
    const accepted = run.traced.find((m) => m.startLine.startsWith('SIP/2.0 202'))!;

    const [m] = await bobPhone.waitForMessages(1);
    // SIPp ends its body with CRLF (the line of the scenario): the text is what precedes it.
    assert.equal(m!.body.trim(), text);
    assert.equal(m!.from, sender.aor);
    assert.equal(m!.to, bob.aor);
    assert.equal(m!.messageId, accepted.header('x-message-id'), 'the delivered copy carries the id the 202 named');
  });

  it('a SIPp device registered over UDP receives a softphone\'s messages in order, each once, from the sender\'s AoR with Date and X-Message-Id', async () => {
    const device = await newUser('sippuas');
    const carol = await newUser('carol');
    const carolPhone = await phone(carol);
    const port = await freePort();

    const reg = await sipp('reg-auth.xml', device, port, ['-auth_uri', DOMAIN]);
    assert.equal(reg.code, 0, reg.detail);
    assert.equal(t.server.registrar.lookup(device.aor).length, 1, 'SIPp registered');

    // The same port, now a UAS taking three MESSAGEs (each its own Call-ID: a "call" of its own).
    const taking = sipp('message-uas.xml', device, port, [], 3);
    // Read from /proc, not probed by binding the port: a probe could take it from SIPp while it starts.
    await waitUdpBound(port);

    const texts = [1, 2, 3].map((i) => `live ${i} ${randomUUID()}`);
    const ids: string[] = [];
    for (const text of texts) {
      const sent = await carolPhone.sendMessage(device.aor, text);
      assert.equal(sent.status, 202);
      ids.push(sent.messageId!);
    }
    const run = await taking;
    assert.equal(run.code, 0, run.detail);
    const got = messagesIn(run);
    assert.deepEqual(got.map((m) => m.body), texts);
    assert.deepEqual(got.map((m) => m.header('x-message-id')), ids);
    for (const m of got) {
      assert.match(m.header('from') ?? '', new RegExp(`^<${carol.aor}>;tag=`));
      assert.match(m.header('to') ?? '', new RegExp(`^<${device.aor}>`));
      assert.ok(!Number.isNaN(Date.parse(m.header('date') ?? '')), 'Date (RFC 3261 §20.17)');
      assert.match(m.startLine, new RegExp(`^MESSAGE sip:${device.name}@127\\.0\\.0\\.1:${port}`), 'sent to the registered Contact');
    }
  });

  it('messages sent while the SIPp user was not registered arrive in order, each once, when it registers', async () => {
    const device = await newUser('sippoff');
    const dave = await newUser('dave');
    const davePhone = await phone(dave);
    const texts = [1, 2, 3, 4].map((i) => `offline ${i} ${randomUUID()}`);
    for (const text of texts) assert.equal((await davePhone.sendMessage(device.aor, text)).status, 202);

    const run = await registerAndTake(device, await freePort(), texts.length);
    assert.equal(run.code, 0, run.detail);
    assert.deepEqual(messagesIn(run).map((m) => m.body), texts);
    await t.server.messaging!.delivery.idle();
  });

  it('a SIPp device that answers 480 loses nothing: the message is tried again, not skipped, and arrives with the one after it at the next REGISTER from the same port', async () => {
    const device = await newUser('sipp480');
    const erin = await newUser('erin');
    const erinPhone = await phone(erin);
    const port = await freePort();

    // Registered and answering 480 to every MESSAGE; it ends after two.
    const refusing = registerAndTake(device, port, 2, 'message-uas-480.xml');
    await waitForBinding(device, refusing);
    const first = `kept 1 ${randomUUID()}`;
    const second = `kept 2 ${randomUUID()}`;
    assert.equal((await erinPhone.sendMessage(device.aor, first)).status, 202);
    await t.server.messaging!.delivery.idle();
    // A new message starts delivery again from the first one the device has not taken.
    assert.equal((await erinPhone.sendMessage(device.aor, second)).status, 202);
    const refused = await refusing;
    assert.equal(refused.code, 0, refused.detail);
    assert.deepEqual(messagesIn(refused).map((m) => m.body), [first, first], 'the refused message is offered again, the next one waits behind it');
    await t.server.messaging!.delivery.idle();

    // The same device (same Contact) registers again and answers 200.
    const back = await registerAndTake(device, port, 2);
    assert.equal(back.code, 0, back.detail);
    assert.deepEqual(messagesIn(back).map((m) => m.body), [first, second]);
  });
});
