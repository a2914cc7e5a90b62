/**
 * Presence with desk phones over UDP (issue 16), SIPp as the phone: a busy lamp (RFC 4235 dialog package)
 * that follows a SIP.js user's call from ringing to hang-up, a presence watcher (RFC 3856) that sees a user
 * come online, a message-waiting lamp (RFC 3842) answered by the server without a voicemail backend and by
 * the voicemail backend behind a mid-registrar, and 489 for an event package the server does not serve.
 * NOTIFYs are not throttled here (`presence.notifyInterval: 0`): every change is its own NOTIFY.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runSipp } from '../helpers/sipp.js';
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

/** The requests of `method` SIPp received, in order, each once (a retransmission has the same CSeq). */
function received(run: SippRun, method: string): Traced[] {
  const seen = new Set<string>();
  return run.traced.filter((m) => {
    if (m.direction !== 'received' || !m.startLine.startsWith(`${method} `)) return false;
    const key = `${m.header('call-id')}\n${m.header('cseq')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The status codes of the final responses SIPp received, in order. */
function finals(run: SippRun): string[] {
  return run.traced.filter((m) => m.direction === 'received' && /^SIP\/2\.0 [2-6]/.test(m.startLine)).map((m) => m.startLine.slice(8, 11));
}

/** The `<state>` of each dialog a dialog-info document lists, in document order. */
function dialogStates(body: string): string[] {
  return [...body.matchAll(/<state[^>]*>([a-z]+)<\/state>/g)].map((m) => m[1]!);
}

async function until(what: string, check: () => boolean, running?: Promise<SippRun>, timeoutMs = 5_000): Promise<void> {
  let ended: SippRun | undefined;
  void running?.then((r) => (ended = r));
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (ended !== undefined) assert.fail(`SIPp ended before ${what}: ${ended.detail}`);
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A server, its users and phones, and SIPp runs with their message logs. */
class Bench {
  private n = 0;
  private readonly phones: Softphone[] = [];
  private readonly logs = mkdtempSync(join(tmpdir(), 'presence-udp-'));

  private constructor(readonly t: TestServer) {}

  static async start(config: Record<string, unknown>): Promise<Bench> {
    return new Bench(await startTestServer({ sip: { domain: [DOMAIN] }, presence: { notifyInterval: 0 }, ...config }));
  }

  async stop(): Promise<void> {
    await Promise.all(this.phones.map((p) => p.stop()));
    await this.t.stop();
    rmSync(this.logs, { recursive: true, force: true });
  }

  async user(prefix: string): Promise<User> {
    const name = `${prefix}${++this.n}`;
    const password = `${name}-secret`;
    await this.t.addUser(`${name}@${DOMAIN}`, password);
    return { name, aor: `sip:${name}@${DOMAIN}`, password };
  }

  async phone(user: User, register = true): Promise<Softphone> {
    const p = await createPhone('sip.js', { uri: user.aor, password: user.password, wsUrl: `wss://${this.t.addr('wss')}` });
    this.phones.push(p);
    if (register) await p.register();
    return p;
  }

  /** Subscriptions the notifier holds now. */
  subscriptions(): number {
    return this.t.server.presence!.notifier.stats().subscriptions;
  }

  /** Runs a scenario as `user` (its keys and credentials) over UDP, with SIPp's message log kept. */
  async sipp(scenario: string, user: User | undefined, options: { port?: number; local?: string; extra?: string[]; timeoutSeconds?: number } = {}): Promise<SippRun> {
    const file = join(this.logs, `${scenario}-${randomUUID()}.log`);
    const r = await runSipp({
      scenario,
      target: this.t.addr('udp'),
      transport: 'u1',
      timeoutSeconds: options.timeoutSeconds ?? 15,
      ...(options.local === undefined ? {} : { local: options.local }),
      extra: [
        // runSipp picks a port of its own: the later -p wins.
        ...(options.port === undefined ? [] : ['-p', String(options.port)]),
        ...(user === undefined ? [] : ['-key', 'aor_user', user.name, '-key', 'aor_domain', DOMAIN, '-au', user.name, '-ap', user.password]),
        '-trace_msg', '-message_file', file, ...(options.extra ?? []),
      ],
    });
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // No log: SIPp did not start; its output says why.
    }
    return { code: r.code, detail: `${r.stderr}${r.stdout.slice(-3000)}\n${text.slice(-6000)}`, traced: parseTrace(text) };
  }
}

describe('presence with SIPp over UDP, no voicemail backend', { timeout: 180_000 }, () => {
  let b: Bench;

  before(async () => {
    b = await Bench.start({});
  });
  after(async () => {
    await b?.stop();
  });

  it('a desk phone\'s busy lamp (Event: dialog) is challenged, subscribed, told the user is idle, then follows the user\'s call: early, confirmed, terminated; Expires 0 ends it with a final NOTIFY', async () => {
    const desk = await b.user('desk');
    const bob = await b.user('bob');
    const carol = await b.user('carol');
    const bobPhone = await b.phone(bob);
    const carolPhone = await b.phone(carol);

    const before = b.subscriptions();
    const watching = b.sipp('presence-watch-dialog.xml', desk, {
      timeoutSeconds: 20,
      extra: ['-key', 'target', bob.name, '-key', 'event', 'dialog', '-key', 'accept', 'application/dialog-info+xml', '-auth_uri', `${bob.name}@${DOMAIN}`],
    });
    await until('the busy-lamp subscription', () => b.subscriptions() > before, watching);

    // Carol calls Bob; Bob's phone rings (180), a moment later he answers; then Carol hangs up.
    const calling = carolPhone.call(bob.aor);
    const incoming = await bobPhone.waitForIncoming();
    await sleep(300);
    await incoming.accept();
    const call = await calling;
    await sleep(300);
    await call.hangup();

    const run = await watching;
    assert.equal(run.code, 0, run.detail);
    assert.deepEqual(finals(run).filter((s) => s !== '100'), ['407', '200', '200'], 'challenged, subscribed, unsubscribed');
    const subscribed = run.traced.find((m) => m.direction === 'received' && m.startLine.startsWith('SIP/2.0 200') && /SUBSCRIBE/.test(m.header('cseq') ?? ''))!;
    assert.match(subscribed.header('expires') ?? '', /^\d+$/, 'the 200 grants an Expires (RFC 6665 §4.2.1.1)');
    assert.match(subscribed.header('contact') ?? '', /^<sip:/, 'the 200 names the notifier\'s Contact');

    const notifies = received(run, 'NOTIFY');
    assert.ok(notifies.length >= 4, `the initial NOTIFY, the call's changes and the final one: ${notifies.length}`);
    for (const n of notifies) {
      assert.equal(n.header('content-type'), 'application/dialog-info+xml');
      assert.equal(n.header('event'), 'dialog');
    }
    const [first] = notifies;
    assert.match(first!.header('subscription-state') ?? '', /^active;expires=\d+/);
    assert.deepEqual(dialogStates(first!.body), [], 'idle at first: a full document without dialogs (RFC 4235 §4.1)');
    assert.match(first!.body, /state="full"/);

    // Bob's dialog as the lamp saw it, one state per NOTIFY, each NOTIFY a newer version.
    const states = notifies.slice(1, -1).map((n) => dialogStates(n.body));
    for (const s of states) assert.ok(s.length <= 1, `one call, one dialog: ${s.join(',')}`);
    const seen = states.flat();
    const firstOf = (s: string): number => seen.indexOf(s);
    assert.ok(firstOf('early') >= 0, `the ringing phone is early: ${seen.join(' → ')}`);
    assert.ok(firstOf('confirmed') > firstOf('early'), `then confirmed: ${seen.join(' → ')}`);
    assert.ok(seen.lastIndexOf('terminated') > firstOf('confirmed'), `then terminated: ${seen.join(' → ')}`);
    assert.equal(seen.at(-1), 'terminated');
    const versions = notifies.map((n) => Number(/version="(\d+)"/.exec(n.body)?.[1]));
    for (let i = 1; i < versions.length; i++) assert.ok(versions[i]! > versions[i - 1]!, `versions grow (RFC 4235 §4.1.2): ${versions.join(',')}`);
    const ended = notifies.at(-2)!;
    assert.match(ended.body, /direction="recipient"/, 'Bob received the call');
    assert.match(ended.body, /<state event="remote-bye">terminated<\/state>/, 'Carol hung up: a remote BYE for Bob');

    const last = notifies.at(-1)!;
    assert.equal(last.header('subscription-state'), 'terminated;reason=timeout', 'the final NOTIFY after Expires 0 (RFC 6665 §4.2.1.4)');
    await until('the subscription to be gone', () => b.subscriptions() === before);
  });

  it('a desk phone watching presence (Event: presence) sees an offline user closed, then open the moment the user registers', async () => {
    const desk = await b.user('desk');
    const dave = await b.user('dave');
    const davePhone = await b.phone(dave, false);

    const before = b.subscriptions();
    const watching = b.sipp('presence-watch.xml', desk, {
      extra: ['-key', 'target', dave.name, '-key', 'event', 'presence', '-key', 'accept', 'application/pidf+xml', '-auth_uri', `${dave.name}@${DOMAIN}`],
    });
    await until('the presence subscription', () => b.subscriptions() > before, watching);
    await sleep(200);
    await davePhone.register();

    const run = await watching;
    assert.equal(run.code, 0, run.detail);
    const notifies = received(run, 'NOTIFY');
    for (const n of notifies) {
      assert.equal(n.header('content-type'), 'application/pidf+xml');
      assert.equal(n.header('event'), 'presence');
      assert.match(n.body, new RegExp(`entity="${dave.aor}"`));
    }
    const basics = notifies.slice(0, -1).map((n) => /<basic>(open|closed)<\/basic>/.exec(n.body)?.[1]);
    assert.deepEqual(basics, ['closed', 'open'], 'offline (closed), then online (open): one NOTIFY each');
    assert.equal(notifies.at(-1)!.header('subscription-state'), 'terminated;reason=timeout');
  });

  it('a desk phone\'s message-waiting lamp (Event: message-summary) for its own mailbox, without a voicemail backend, is answered by the server: Messages-Waiting: no, and the phone never receives its own SUBSCRIBE', async () => {
    const desk = await b.user('desk');
    const port = await freePort();
    const reg = await b.sipp('reg-auth.xml', desk, { port, extra: ['-auth_uri', DOMAIN] });
    assert.equal(reg.code, 0, reg.detail);
    assert.equal(b.t.server.registrar.lookup(desk.aor).length, 1, 'the desk phone is registered at the port it subscribes from');

    const run = await b.sipp('presence-mwi-self.xml', desk, { port, extra: ['-auth_uri', `${desk.name}@${DOMAIN}`] });
    assert.equal(run.code, 0, run.detail);
    assert.deepEqual(received(run, 'SUBSCRIBE'), [], 'its own SUBSCRIBE was not forked to its registered Contact');
    const [first, last] = received(run, 'NOTIFY');
    assert.equal(first?.header('content-type'), 'application/simple-message-summary');
    assert.match(first!.body, /^Messages-Waiting: no$/m);
    assert.match(first!.body, new RegExp(`^Message-Account: ${desk.aor}$`, 'm'));
    assert.equal(last?.header('subscription-state'), 'terminated;reason=timeout');
  });

  it('an event package the server does not serve (Event: reg) is refused 489 Bad Event with Allow-Events: presence, dialog, message-summary', async () => {
    const desk = await b.user('desk');
    const erin = await b.user('erin');
    const run = await b.sipp('presence-bad-event.xml', desk, { extra: ['-key', 'target', erin.name, '-auth_uri', `${erin.name}@${DOMAIN}`] });
    assert.equal(run.code, 0, run.detail);
    const refused = run.traced.find((m) => m.direction === 'received' && m.startLine.startsWith('SIP/2.0 489'))!;
    assert.deepEqual((refused.header('allow-events') ?? '').split(/\s*,\s*/).sort(), ['dialog', 'message-summary', 'presence']);
    assert.deepEqual(received(run, 'NOTIFY'), [], 'no subscription, no NOTIFY');
  });
});

describe('message-summary with a mid-registrar: the voicemail backend answers', { timeout: 120_000 }, () => {
  const BACKEND = '127.0.0.2';
  const SET = 'freeswitch';
  let b: Bench;

  before(async () => {
    // No OPTIONS probes during the test: the SIPp stand-in answers only what its scenario says.
    b = await Bench.start({ registrar: { mode: 'mirror', backendSet: SET, localAuth: true }, balancer: { reloadInterval: 0, probeInterval: 3600 } });
  });
  after(async () => {
    await b?.stop();
  });

  /** A SIPp voicemail stand-in on BACKEND, the only backend of the set, listening once this resolves. */
  async function voicemail(scenario: string, mailbox: User, timeoutSeconds: number): Promise<{ port: number; run: Promise<SippRun> }> {
    const port = await freePort(BACKEND);
    for (const old of await b.t.server.store.routing.listBackends()) await b.t.server.store.routing.removeBackend(old.id);
    await b.t.server.store.routing.addBackend({ set: SET, uri: `sip:${BACKEND}:${port};transport=udp` });
    await b.t.server.reload();
    const run = b.sipp(scenario, undefined, { local: BACKEND, port, timeoutSeconds, extra: ['-key', 'mailbox', `${mailbox.name}@${DOMAIN}`] });
    // Read from /proc, not probed by binding the port: a probe could take it from SIPp while it starts.
    await waitUdpBound(port);
    return { port, run };
  }

  it('a phone\'s SUBSCRIBE for its own message-summary goes, Record-Routed and with the user asserted, to the backend of the set, whose NOTIFY Messages-Waiting: yes reaches the phone through the server', async () => {
    const frank = await b.user('frank');
    const vm = await voicemail('presence-mwi-backend.xml', frank, 15);
    const phone = await b.phone(frank, false);
    const watch = await phone.subscribe(frank.aor, 'message-summary');
    const waiting = await watch.waitFor((n) => /Messages-Waiting: yes/.test(n.body), 10_000);
    assert.equal(waiting.contentType, 'application/simple-message-summary');
    assert.match(waiting.body, /^Voice-Message: 2\/8 \(0\/2\)$/m);
    assert.match(waiting.subscriptionState, /^active/);

    const run = await vm.run;
    assert.equal(run.code, 0, run.detail);
    const [subscribe] = received(run, 'SUBSCRIBE');
    assert.equal(subscribe?.header('event'), 'message-summary');
    assert.match(subscribe!.startLine, new RegExp(`^SUBSCRIBE sip:${frank.name}@${BACKEND.replace(/\./g, '\\.')}:${vm.port}`), 'to the backend, the mailbox\'s user');
    assert.match(subscribe!.header('record-route') ?? '', new RegExp(`^<sip:[^>]*@127\\.0\\.0\\.1:${b.t.listener('udp').port};`), 'the server stays in the path (Record-Route)');
    assert.equal(subscribe!.header('p-asserted-identity'), `<${frank.aor}>`, 'the backend is told who subscribes');
    assert.equal(b.subscriptions(), 0, 'the server itself holds no message-summary subscription');
  });

  it('the phone\'s unsubscribe (Expires 0) reaches the voicemail backend through the server: the server Record-Routes the NOTIFY that set up the phone\'s dialog (RFC 6665 §4.3)', async () => {
    const gina = await b.user('gina');
    const vm = await voicemail('presence-mwi-backend-unsubscribe.xml', gina, 8);
    const phone = await b.phone(gina, false);
    const watch = await phone.subscribe(gina.aor, 'message-summary');
    await watch.waitFor((n) => /Messages-Waiting: yes/.test(n.body), 10_000);
    await watch.unsubscribe().catch(() => undefined);
    const run = await vm.run;

    // The phone's dialog comes from the NOTIFY (RFC 6665 §4.1.2.4; RFC 3261 §12.1.1: its route set is the
    // NOTIFY's Record-Route): without one of ours the phone's in-dialog SUBSCRIBE has no way back.
    const notify = phone.sockets.flatMap((k) => k.messages).find((m) => m.dir === 'in' && m.text.startsWith('NOTIFY '))!;
    assert.match(notify.text, /^Record-Route: .*127\.0\.0\.1/im, `the relayed NOTIFY carries the server's Record-Route:\n${notify.text}`);
    assert.equal(run.code, 0, run.detail);
    const [, unsubscribe] = received(run, 'SUBSCRIBE');
    assert.equal(unsubscribe?.header('expires'), '0');
    // SIP.js tells its delegate nothing once it unsubscribed: the final NOTIFY is looked for on the wire.
    const final = (): boolean => phone.sockets.flatMap((k) => k.messages)
      .some((m) => m.dir === 'in' && m.text.startsWith('NOTIFY ') && /^Subscription-State:\s*terminated/im.test(m.text));
    await until('the final NOTIFY at the phone', final);
  });
});
