/**
 * Calls through the running server (RFC 3261 §16 stateful proxy with Record-Route, forking and CANCEL):
 * SIP.js and JsSIP softphones over WS and WSS calling each other, a softphone that reconnects, and SIPp
 * over UDP and TCP calling a softphone and being called by one.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { SIPP_SCENARIOS, runSipp } from '../helpers/sipp.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  type CallHandle, type Softphone, type SoftphoneLibrary, type SoftphoneOptions, SoftphoneError, createPhone,
} from '../helpers/softphone.js';

const DOMAIN = 'example.com';

type WsProtocol = 'ws' | 'wss';

interface Leg {
  library: SoftphoneLibrary;
  protocol: WsProtocol;
}

/** Every library calls every library, each pair over a mix of WS and WSS. */
const PAIRS: Array<{ caller: Leg; callee: Leg }> = [
  { caller: { library: 'sip.js', protocol: 'wss' }, callee: { library: 'jssip', protocol: 'ws' } },
  { caller: { library: 'jssip', protocol: 'wss' }, callee: { library: 'sip.js', protocol: 'ws' } },
  { caller: { library: 'sip.js', protocol: 'ws' }, callee: { library: 'sip.js', protocol: 'wss' } },
  { caller: { library: 'jssip', protocol: 'ws' }, callee: { library: 'jssip', protocol: 'wss' } },
];

function legName(leg: Leg): string {
  return `${leg.library} (${leg.protocol.toUpperCase()})`;
}

/** Whole messages of a method (requests) or the responses to it, as one phone saw them arrive. */
function received(phone: Softphone, what: { request: string } | { responseTo: string }): string[] {
  const all = phone.sockets.flatMap((s) => s.messages).filter((m) => m.dir === 'in').map((m) => m.text);
  if ('request' in what) return all.filter((t) => t.startsWith(`${what.request} `));
  const cseq = new RegExp(`^CSeq:\\s*\\d+\\s+${what.responseTo}\\s*$`, 'im');
  return all.filter((t) => t.startsWith('SIP/2.0 ') && cseq.test(t));
}

function statusOf(response: string): number {
  return Number(response.slice(8, 11));
}

function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected a failure'),
    (err: unknown) => err,
  );
}

describe('calls', { timeout: 300_000 }, () => {
  let t: TestServer;
  let n = 0;

  before(async () => {
    t = await startTestServer({ sip: { domain: [DOMAIN] } });
  });
  after(async () => t?.stop());

  async function newUser(prefix: string): Promise<{ user: string; aor: string; password: string }> {
    const user = `${prefix}${++n}`;
    const password = `${user}-secret`;
    await t.addUser(`${user}@${DOMAIN}`, password);
    return { user, aor: `sip:${user}@${DOMAIN}`, password };
  }

  /** A new user with a registered phone, stopped when the test ends. */
  async function registeredPhone(
    tc: { after(fn: () => Promise<void>): void },
    leg: Leg,
    prefix: string,
    extra: Partial<SoftphoneOptions> = {},
  ): Promise<Softphone> {
    const u = await newUser(prefix);
    const phone = await createPhone(leg.library, { uri: u.aor, password: u.password, wsUrl: `${leg.protocol}://${t.addr(leg.protocol)}`, ...extra });
    tc.after(() => phone.stop());
    await phone.register();
    return phone;
  }

  /** Caller calls callee, callee answers: both handles once the ACK has reached the callee. */
  async function establish(caller: Softphone, callee: Softphone): Promise<{ out: CallHandle; in: CallHandle }> {
    const calling = caller.call(callee.aor);
    const incoming = await callee.waitForIncoming();
    const [inHandle, outHandle] = await Promise.all([incoming.accept(), calling]);
    return { out: outHandle, in: inHandle };
  }

  for (const { caller: callerLeg, callee: calleeLeg } of PAIRS) {
    const pair = `${legName(callerLeg)} → ${legName(calleeLeg)}`;

    describe(pair, () => {
      it('the INVITE is challenged (407), reaches the callee Record-Routed, is answered, and the caller hangs up', { timeout: 15_000 }, async (tc) => {
        const caller = await registeredPhone(tc, callerLeg, 'caller');
        const callee = await registeredPhone(tc, calleeLeg, 'callee');

        const calling = caller.call(callee.aor);
        const incoming = await callee.waitForIncoming();
        assert.equal(incoming.from, caller.aor);
        assert.match(incoming.invite, /^Record-Route:/im, 'the proxy Record-Routes (§16.6 step 4)');
        const [answered, established] = await Promise.all([incoming.accept(), calling]);

        // §22.3: a local user's INVITE is challenged by the proxy with 407 first.
        assert.deepEqual(received(caller, { responseTo: 'INVITE' }).map(statusOf).filter((s) => s >= 200), [407, 200]);

        await established.hangup();
        const end = await answered.waitForEnded();
        assert.deepEqual({ originator: end.originator, cause: end.cause }, { originator: 'remote', cause: 'bye' });
        assert.equal(received(callee, { request: 'BYE' }).length, 1, 'the BYE crossed the proxy once');
      });

      it('the callee hangs up an answered call and the BYE reaches the caller along the Record-Route', { timeout: 15_000 }, async (tc) => {
        const caller = await registeredPhone(tc, callerLeg, 'caller');
        const callee = await registeredPhone(tc, calleeLeg, 'callee');
        const call = await establish(caller, callee);

        await call.in.hangup();
        const end = await call.out.waitForEnded();
        assert.deepEqual({ originator: end.originator, cause: end.cause }, { originator: 'remote', cause: 'bye' });
        // The callee's BYE carries the route set it learned from the INVITE's Record-Route (§12.1.1).
        const bye = callee.sockets.flatMap((s) => s.messages).find((m) => m.dir === 'out' && m.text.startsWith('BYE '));
        assert.ok(bye, 'the callee sent a BYE');
        assert.match(bye.text, /^Route:/im, 'the BYE follows the Record-Route');
      });

      it('the caller cancels before the answer: the callee sees the CANCEL and the caller gets 487', { timeout: 15_000 }, async (tc) => {
        const caller = await registeredPhone(tc, callerLeg, 'caller');
        const callee = await registeredPhone(tc, calleeLeg, 'callee');

        const abort = new AbortController();
        let ringing!: () => void;
        const rang = new Promise<void>((resolve) => (ringing = resolve));
        const calling = caller.call(callee.aor, { signal: abort.signal, onProgress: (s) => s === 180 && ringing() });
        const incoming = await callee.waitForIncoming();
        await rang; // the 180 came back through the proxy: the branch is in Proceeding
        abort.abort();

        const err = await rejection(calling);
        assert.ok(err instanceof SoftphoneError && err.code === 'SOFTPHONE_ERR_CANCELED', String(err));
        const end = await incoming.waitForEnded();
        assert.deepEqual({ originator: end.originator, cause: end.cause }, { originator: 'remote', cause: 'canceled' });
        assert.equal(received(callee, { request: 'CANCEL' }).length, 1, 'the proxy forwarded the CANCEL (§16.10)');
        // §16.10 / §9.1: the INVITE ends with 487 Request Terminated at the caller.
        await sleep(200);
        assert.deepEqual(received(caller, { responseTo: 'INVITE' }).map(statusOf).filter((s) => s >= 200), [407, 487]);
      });

      it('the callee rejects with 486 Busy Here and the caller gets 486', { timeout: 15_000 }, async (tc) => {
        const caller = await registeredPhone(tc, callerLeg, 'caller');
        const callee = await registeredPhone(tc, calleeLeg, 'callee');

        const calling = caller.call(callee.aor);
        const incoming = await callee.waitForIncoming();
        await incoming.reject(486);

        const err = await rejection(calling);
        assert.ok(err instanceof SoftphoneError, String(err));
        assert.equal(err.status, 486, err.message);
        const end = await incoming.waitForEnded();
        assert.deepEqual({ originator: end.originator, cause: end.cause }, { originator: 'local', cause: 'rejected' });
      });

      it('holds and resumes with re-INVITEs (a=sendonly, then a=sendrecv), from either side', { timeout: 15_000 }, async (tc) => {
        const caller = await registeredPhone(tc, callerLeg, 'caller');
        const callee = await registeredPhone(tc, calleeLeg, 'callee');
        const call = await establish(caller, callee);
        assert.equal(call.in.remoteDirection, 'sendrecv');

        await call.out.hold();
        assert.equal(call.in.remoteDirection, 'sendonly', 'the callee got the hold offer');
        assert.equal(call.out.remoteDirection, 'recvonly', 'and answered recvonly (RFC 3264 §6.1)');
        await call.out.unhold();
        assert.equal(call.in.remoteDirection, 'sendrecv');
        assert.equal(call.out.remoteDirection, 'sendrecv');

        await call.in.hold();
        assert.equal(call.out.remoteDirection, 'sendonly', 'the caller got the callee\'s hold offer');
        await call.in.unhold();
        assert.equal(call.out.remoteDirection, 'sendrecv');

        // Both re-INVITEs of each side crossed the proxy as in-dialog requests.
        assert.equal(received(callee, { request: 'INVITE' }).length, 3, 'initial INVITE + 2 re-INVITEs at the callee');
        assert.equal(call.in.ended || call.out.ended, false, 'the call survived');
        await call.out.hangup();
        await call.in.waitForEnded();
      });
    });
  }

  it('a call to a user with two registered softphones rings both; the one that answers wins, the other is CANCELed', { timeout: 15_000 }, async (tc) => {
    const caller = await registeredPhone(tc, { library: 'jssip', protocol: 'wss' }, 'caller');
    const u = await newUser('forked');
    const wsUrl = `wss://${t.addr('wss')}`;
    const desk = await createPhone('sip.js', { uri: u.aor, password: u.password, wsUrl });
    tc.after(() => desk.stop());
    const mobile = await createPhone('jssip', { uri: u.aor, password: u.password, wsUrl });
    tc.after(() => mobile.stop());
    await desk.register();
    await mobile.register();
    assert.equal(t.server.registrar.lookup(u.aor).length, 2, 'two bindings');

    const calling = caller.call(u.aor);
    const [atDesk, atMobile] = await Promise.all([desk.waitForIncoming(), mobile.waitForIncoming()]);
    const [answered, established] = await Promise.all([atMobile.accept(), calling]);
    const loser = await atDesk.waitForEnded();
    assert.deepEqual({ originator: loser.originator, cause: loser.cause }, { originator: 'remote', cause: 'canceled' });

    await established.hangup();
    await answered.waitForEnded();
  });

  it('an unknown user gets 404, a known user without a binding 480, another domain 403', { timeout: 15_000 }, async (tc) => {
    const caller = await registeredPhone(tc, { library: 'sip.js', protocol: 'wss' }, 'caller');
    const offline = await newUser('offline');
    for (const [target, status] of [[`sip:nobody@${DOMAIN}`, 404], [offline.aor, 480], ['sip:someone@elsewhere.example.org', 403]] as const) {
      const err = await rejection(caller.call(target));
      assert.ok(err instanceof SoftphoneError, `${target}: ${String(err)}`);
      assert.equal(err.status, status, `${target}: ${err.message}`);
    }
  });

  for (const library of ['sip.js', 'jssip'] as const) {
    for (const stale of [false, true]) {
      const how = stale
        ? 'loses its WebSocket without the server noticing'
        : 'drops its WebSocket';
      it(`a ${library} softphone that ${how} re-registers on a new one and gets the next call there`, { timeout: 15_000 }, async (tc) => {
        const caller = await registeredPhone(tc, { library: 'sip.js', protocol: 'wss' }, 'caller');
        const callee = await registeredPhone(tc, { library, protocol: 'wss' }, 'roamer');
        assert.equal(callee.sockets.length, 1);
        const before = t.server.registrar.lookup(callee.aor);
        assert.equal(before.length, 1);

        await callee.reconnect({ stale });
        assert.equal(callee.sockets.length, 2, 'a second WebSocket');
        const after = t.server.registrar.lookup(callee.aor);
        assert.equal(after.length, 1, 'still one binding');
        assert.notEqual(after[0]!.flow?.id, before[0]!.flow?.id, 'the binding moved to the new connection');

        const calling = caller.call(callee.aor);
        const incoming = await callee.waitForIncoming();
        const [answered, established] = await Promise.all([incoming.accept(), calling]);
        const [oldSocket, newSocket] = callee.sockets;
        assert.ok(newSocket!.messages.some((m) => m.dir === 'in' && m.text.startsWith('INVITE ')), 'the INVITE came on the new WebSocket');
        assert.deepEqual(oldSocket!.staleMessages.map((m) => m.slice(0, m.indexOf('\r\n'))), [], 'nothing was sent to the old one');

        await established.hangup();
        await answered.waitForEnded();
      });
    }
  }

  // SIPp is a plain-RTP endpoint on UDP/TCP and the softphones are WebRTC legs: the server bridges them
  // through rtpengine (ARCHITECTURE "User → user"), so this part runs its own server with a real one.
  describe('SIPp and softphones, media bridged by rtpengine', () => {
    let ts: TestServer;
    let rtpengine: RtpengineHandle;
    let m = 0;

    before(async () => {
      rtpengine = await startRtpengine();
      ts = await startTestServer({ sip: { domain: [DOMAIN] }, media: { rtpengine: [rtpengine.ng] } });
    });
    after(async () => {
      await ts?.stop();
      await rtpengine?.stop();
    });

    async function user(prefix: string): Promise<{ user: string; aor: string; password: string }> {
      const name = `${prefix}${++m}`;
      await ts.addUser(`${name}@${DOMAIN}`, `${name}-secret`);
      return { user: name, aor: `sip:${name}@${DOMAIN}`, password: `${name}-secret` };
    }

    async function jssipPhone(tc: { after(fn: () => Promise<void>): void }, prefix: string): Promise<Softphone> {
      const u = await user(prefix);
      const phone = await createPhone('jssip', { uri: u.aor, password: u.password, wsUrl: `wss://${ts.addr('wss')}` });
      tc.after(() => phone.stop());
      await phone.register();
      return phone;
    }

    for (const transport of ['u1', 't1'] as const) {
      const name = transport === 'u1' ? 'UDP' : 'TCP';

      it(`a SIPp UAC over ${name} authenticates on 407, calls a JsSIP user, and its ACK and BYE follow the Record-Route (call-uac-auth.xml)`, { timeout: 15_000 }, async (tc) => {
        const sipp = await user('sippuac');
        const callee = await jssipPhone(tc, 'jsuser');
        const calleeUser = callee.aor.slice(4, callee.aor.indexOf('@'));
        const answering = callee.waitForIncoming().then(async (incoming) => ({ invite: incoming.invite, call: await incoming.accept() }));
        answering.catch(() => undefined);

        const r = await runSipp({
          scenario: 'call-uac-auth.xml',
          target: ts.addr(transport === 'u1' ? 'udp' : 'tcp'),
          transport,
          timeoutSeconds: 10,
          extra: [
            '-key', 'aor_user', sipp.user, '-key', 'aor_domain', DOMAIN, '-key', 'callee', calleeUser,
            // SIPp's digest uri is sip:remote_ip:remote_port unless told: the Request-URI it sends.
            '-au', sipp.user, '-ap', sipp.password, '-auth_uri', `${calleeUser}@${DOMAIN}`,
          ],
        });
        assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000) + rtpengine.logTail());
        const { invite, call } = await answering;
        assert.match(invite, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, 'the WebRTC leg got a WebRTC offer (rtpengine rewrote the RTP/AVP one)');
        const end = await call.waitForEnded();
        assert.deepEqual({ originator: end.originator, cause: end.cause }, { originator: 'remote', cause: 'bye' });
        assert.equal(received(callee, { request: 'ACK' }).length, 1, 'the ACK of the 2xx reached the callee');
      });

      it(`a JsSIP user calls a SIPp UAS registered over ${name}; the call is answered and the BYE is answered 200 (reg-then-answer.xml + call-uas.xml)`, { timeout: 15_000 }, async (tc) => {
        const uas = await user('sippuas');
        const caller = await jssipPhone(tc, 'jscaller');
        const sippDone = runSipp({
          scenario: 'reg-then-answer.xml',
          target: ts.addr(transport === 'u1' ? 'udp' : 'tcp'),
          transport,
          timeoutSeconds: 10,
          extra: [
            '-oocsf', join(SIPP_SCENARIOS, 'call-uas.xml'), // on the same socket as the REGISTER: the binding's connection
            '-key', 'aor_user', uas.user, '-key', 'aor_domain', DOMAIN, '-au', uas.user, '-ap', uas.password, '-auth_uri', DOMAIN,
          ],
        });
        let sippResult: Awaited<typeof sippDone> | undefined;
        void sippDone.then((r) => (sippResult = r));

        // Wait for SIPp's binding (or for SIPp to have given up).
        const deadline = Date.now() + 5_000;
        while (ts.server.registrar.lookup(uas.aor).length === 0 && sippResult === undefined && Date.now() < deadline) await sleep(50);
        if (sippResult !== undefined) assert.fail(`SIPp ended before registering: ${sippResult.stderr}${sippResult.stdout.slice(-3000)}`);
        assert.equal(ts.server.registrar.lookup(uas.aor).length, 1, 'SIPp registered');

        const call = await caller.call(uas.aor).catch(async (err: unknown) => {
          const r = await sippDone;
          throw new Error(`${String(err)}\nSIPp: ${r.stderr}${r.stdout.slice(-3000)}`);
        });
        assert.equal(call.remoteDirection, 'sendrecv');
        await sleep(300);
        await call.hangup();

        const r = await sippDone;
        assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000) + rtpengine.logTail());
      });
    }
  });
});
