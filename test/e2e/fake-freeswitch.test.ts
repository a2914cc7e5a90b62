/**
 * The FreeSWITCH stand-in of issue 6 checked on its own, against a plain UAC built on a second Stack
 * (and raw UDP where silence must be seen), before the end-to-end tests lean on it.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseSdp } from 'sdp-transform';
import { Stack, type StackUser } from '../../src/core/index.js';
import { silentLogger } from '../../src/log/index.js';
import {
  type HeaderField, type SipRequest, SipRequest as Request, type SipResponse, buildCredentials, headerKey, makeField,
  newCallId, newTag, parseChallenge,
} from '../../src/sip/index.js';
import type { ClientTransaction, ServerTransaction } from '../../src/transaction/index.js';
import { type Destination, TransportLayer } from '../../src/transport/index.js';
import {
  FakeFreeswitch, type FakeFreeswitchProcess, startFakeFreeswitch, startFakeFreeswitchProcess,
} from '../helpers/fake-freeswitch.js';
import { runSipp } from '../helpers/sipp.js';

const PCMU_OFFER = [
  'v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
  'm=audio 40000 RTP/AVP 8 0 101', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16', 'a=sendrecv', '',
].join('\r\n');

/** A bare UAC/UAS on its own Stack: sends requests, collects their responses, answers whatever arrives 200. */
class TestUa implements StackUser {
  readonly stack: Stack;
  readonly received: SipRequest[] = [];
  private waiters: Array<{ match: (r: SipRequest) => boolean; resolve: (r: SipRequest) => void }> = [];

  constructor() {
    const logger = silentLogger();
    this.stack = new Stack({
      logger,
      createTransport: (user) => new TransportLayer({ listen: [{ protocol: 'udp', address: '127.0.0.1', port: 0 }], user, logger }),
    });
    this.stack.setUser(this);
  }

  get port(): number {
    return this.stack.listeners[0]!.port;
  }

  onRequest(request: SipRequest, tx: ServerTransaction): void {
    this.received.push(request);
    this.stack.respond(tx, 200);
    for (const w of this.waiters.filter((x) => x.match(request))) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(request);
    }
  }

  /** The first request of a method in a call received so far or next. */
  waitForRequest(method: string, callId: string, timeoutMs = 3_000): Promise<SipRequest> {
    const match = (r: SipRequest): boolean => r.method === method && r.callId === callId;
    const seen = this.received.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${method} in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (r) => { clearTimeout(timer); resolve(r); } });
    });
  }

  /** Sends a request in a client transaction; resolves with every response up to the final one. */
  send(request: SipRequest, to: Destination): Promise<SipResponse[]> {
    return new Promise((resolve, reject) => {
      const responses: SipResponse[] = [];
      this.stack.sendRequest(request, to, {
        onResponse(r: SipResponse, _tx: ClientTransaction) {
          responses.push(r);
          if (r.status >= 200) resolve(responses);
        },
        onTimeout: () => reject(new Error(`${request.method} timed out`)),
        onTransportError: (_tx, err) => reject(err),
      });
    });
  }

  /** The ACK of a 2xx (RFC 3261 §13.2.2.4), to the Contact of the response (no route set here). */
  ack(invite: SipRequest, ok: SipResponse, to: Destination): void {
    const ack = new Request({
      method: 'ACK', uri: ok.contact[0]!.uri.toString(), headers: [
        field('Max-Forwards', '70'), field('From', invite.get('from')!), field('To', ok.get('to')!),
        field('Call-ID', invite.callId!), field('CSeq', `${invite.cseq!.seq} ACK`),
      ],
    });
    ack.prepend('Via', this.stack.viaFor('udp'));
    this.stack.sendStateless(ack, to);
  }
}

function field(name: string, value: string): HeaderField {
  return makeField(headerKey(name), name, value);
}

function request(method: string, uri: string, o: { from: string; to?: string; cseq?: number; callId?: string; headers?: Array<[string, string]>; body?: string }): SipRequest {
  const headers = [
    field('Max-Forwards', '70'), field('From', `<${o.from}>;tag=${newTag()}`), field('To', o.to ?? `<${o.from}>`),
    field('Call-ID', o.callId ?? newCallId()), field('CSeq', `${o.cseq ?? 1} ${method}`),
    ...(o.headers ?? []).map(([n, v]) => field(n, v)),
  ];
  const req = new Request({ method, uri, headers });
  if (o.body !== undefined) req.setBody(o.body, 'application/sdp');
  return req;
}

function udp(port: number): Destination {
  return { protocol: 'udp', address: '127.0.0.1', port };
}

/** REGISTER, and on a 401 the same again with credentials (CSeq + 1, same Call-ID and From tag). */
async function register(ua: TestUa, fsPort: number, o: { user: string; password?: string; expires: number; contact?: string }): Promise<SipResponse> {
  const aor = `sip:${o.user}@example.com`;
  const callId = newCallId();
  const contact = o.contact ?? `<sip:${o.user}@127.0.0.1:${ua.port}>`;
  const first = request('REGISTER', 'sip:example.com', { from: aor, callId, headers: [['Contact', contact], ['Expires', String(o.expires)]] });
  const [final] = (await ua.send(first, udp(fsPort))).slice(-1);
  if (final!.status !== 401 || o.password === undefined) return final!;
  const ch = parseChallenge(final!.get('www-authenticate')!);
  const auth = buildCredentials(ch, { username: o.user, password: o.password, method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'c0ffee' });
  const second = request('REGISTER', 'sip:example.com', {
    from: aor, callId, cseq: 2, headers: [['Contact', contact], ['Expires', String(o.expires)], ['Authorization', auth]],
  });
  return (await ua.send(second, udp(fsPort))).at(-1)!;
}

/** Sends OPTIONS over a bare UDP socket; resolves with the first datagram back, or undefined after `waitMs`. */
function rawOptions(socket: Socket, port: number, waitMs = 300): Promise<string | undefined> {
  const { port: local } = socket.address();
  const msg = [
    'OPTIONS sip:127.0.0.1 SIP/2.0', `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${newTag()};rport`, 'Max-Forwards: 70',
    `From: <sip:monitor@127.0.0.1>;tag=${newTag()}`, 'To: <sip:127.0.0.1>', `Call-ID: ${newCallId()}`, 'CSeq: 1 OPTIONS',
    'Content-Length: 0', '', '',
  ].join('\r\n');
  return new Promise((resolve) => {
    const onMessage = (data: Buffer): void => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      resolve(data.toString('latin1'));
    };
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      resolve(undefined);
    }, waitMs);
    socket.on('message', onMessage);
    socket.send(msg, port, '127.0.0.1');
  });
}

describe('fake FreeSWITCH', () => {
  let ua: TestUa;
  let fs: FakeFreeswitch;
  let socket: Socket;

  before(async () => {
    ua = new TestUa();
    await ua.stack.start();
    fs = await startFakeFreeswitch({ passwords: { alice: 'secret', 'bob@example.com': 'hunter2' }, registerExpires: 120 });
    socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  });

  after(async () => {
    socket.close();
    await fs.close();
    await ua.stack.stop();
  });

  describe('REGISTER', () => {
    it('challenges with 401 Digest MD5, realm = the From domain, qop=auth', async () => {
      const res = await register(ua, fs.port, { user: 'alice', expires: 3600 });
      assert.equal(res.status, 401);
      const ch = parseChallenge(res.get('www-authenticate')!);
      assert.equal(ch.realm, 'example.com');
      assert.equal(ch.algorithm, 'MD5');
      assert.deepEqual(ch.qop, ['auth']);
    });

    it('accepts the authenticated retry with min(requested, registerExpires) and keeps the binding', async () => {
      const res = await register(ua, fs.port, { user: 'alice', password: 'secret', expires: 3600 });
      assert.equal(res.status, 200);
      assert.equal(res.get('expires'), '120');
      assert.match(res.get('contact')!, /;expires=120$/);
      const regs = fs.registrations('sip:alice@example.com');
      assert.equal(regs.length, 1);
      assert.equal(regs[0]!.contact, `sip:alice@127.0.0.1:${ua.port}`);
      assert.ok(regs[0]!.expires > 115 && regs[0]!.expires <= 120);
      const last = fs.registers.at(-1)!;
      assert.equal(last.authorization, true);
      assert.equal(last.username, 'alice');
      assert.equal(last.expires, 3600);
      assert.deepEqual(last.contact, [`<sip:alice@127.0.0.1:${ua.port}>`]);
    });

    it('grants less than the cap as asked; a user@realm password works too', async () => {
      const res = await register(ua, fs.port, { user: 'bob', password: 'hunter2', expires: 60 });
      assert.equal(res.status, 200);
      assert.equal(res.get('expires'), '60');
    });

    it('answers 403 to a wrong password', async () => {
      const res = await register(ua, fs.port, { user: 'alice', password: 'wrong', expires: 60 });
      assert.equal(res.status, 403);
    });

    it('removes the binding on Expires 0', async () => {
      const res = await register(ua, fs.port, { user: 'alice', password: 'secret', expires: 0 });
      assert.equal(res.status, 200);
      assert.deepEqual(fs.registrations('alice@example.com'), []);
    });

    it('with challengeRegister false accepts without a challenge', async () => {
      const trusting = await startFakeFreeswitch({ challengeRegister: false, registerExpires: 90 });
      try {
        const res = await register(ua, trusting.port, { user: 'carol', expires: 300 });
        assert.equal(res.status, 200);
        assert.equal(res.get('expires'), '90');
        assert.equal(trusting.registers[0]!.authorization, false);
        assert.equal(trusting.registrations('carol@example.com').length, 1);
        assert.equal(trusting.requestCount('REGISTER'), 1);
      } finally {
        await trusting.close();
      }
    });
  });

  describe('OPTIONS', () => {
    it('answers 200 with Allow, and nothing at all once silenced', async () => {
      const answer = await rawOptions(socket, fs.port);
      assert.match(answer ?? '', /^SIP\/2\.0 200 /);
      assert.match(answer ?? '', /^Allow: .*INVITE.*BYE/m);
      fs.setAnswerOptions(false);
      assert.equal(await rawOptions(socket, fs.port), undefined);
      fs.setAnswerOptions(true);
      assert.match((await rawOptions(socket, fs.port)) ?? '', /^SIP\/2\.0 200 /);
      assert.equal(fs.requestCount('OPTIONS'), 3);
    });
  });

  describe('INVITE', () => {
    it('answers 100, 180, 200 with PCMU; the ACK confirms; BYE is answered 200', async () => {
      const invite = request('INVITE', 'sip:+4930123456@example.com', {
        from: 'sip:alice@example.com', to: '<sip:+4930123456@example.com>', body: PCMU_OFFER,
        headers: [['Contact', `<sip:alice@127.0.0.1:${ua.port}>`], ['P-Asserted-Identity', '<sip:+4930999@example.com>']],
      });
      const confirmed = fs.waitFor('confirmed');
      const responses = await ua.send(invite, udp(fs.port));
      assert.deepEqual(responses.map((r) => r.status), [100, 180, 200]);
      const ok = responses.at(-1)!;
      const audio = parseSdp(ok.body.toString()).media[0]!;
      assert.equal(audio.payloads, '0 101');
      assert.equal(audio.rtp[0]!.codec, 'PCMU');
      assert.equal(fs.invites.at(-1)!.pAssertedIdentity, '<sip:+4930999@example.com>');
      assert.equal(fs.invites.at(-1)!.requestUri, 'sip:+4930123456@example.com');
      ua.ack(invite, ok, udp(fs.port));
      await confirmed;
      assert.equal(fs.activeCalls, 1);
      const bye = request('BYE', ok.contact[0]!.uri.toString(), {
        from: 'sip:alice@example.com', to: ok.get('to')!, callId: invite.callId!, cseq: 2,
      });
      bye.set('from', invite.get('from')!);
      const [byeOk] = await ua.send(bye, udp(fs.port));
      assert.equal(byeOk!.status, 200);
      assert.equal(fs.activeCalls, 0);
      assert.equal(fs.callsAnswered, 1);
      assert.equal(fs.calls.at(-1)!.endedBy, 'remote');
    });

    it('answers by rule: 486 for a number once, then 200 again', async () => {
      fs.answerWith({ status: 486, user: '+4930555', times: 1 });
      const call = (): SipRequest => request('INVITE', 'sip:+4930555@example.com', {
        from: 'sip:alice@example.com', body: PCMU_OFFER, headers: [['Contact', `<sip:alice@127.0.0.1:${ua.port}>`]],
      });
      assert.equal((await ua.send(call(), udp(fs.port))).at(-1)!.status, 486);
      const second = call();
      const ok = (await ua.send(second, udp(fs.port))).at(-1)!;
      assert.equal(ok.status, 200);
      ua.ack(second, ok, udp(fs.port));
      await fs.hangup(second.callId!);
    });

    it('hangup() sends BYE along the Record-Route set to the remote target', async () => {
      // The Contact names a port nobody listens on: the BYE must follow the Route (ua) to arrive.
      const invite = request('INVITE', 'sip:+4930777@example.com', {
        from: 'sip:alice@example.com', body: PCMU_OFFER,
        headers: [['Contact', '<sip:alice@127.0.0.1:9>'], ['Record-Route', `<sip:127.0.0.1:${ua.port};lr;ftag=x>`]],
      });
      const ok = (await ua.send(invite, udp(fs.port))).at(-1)!;
      assert.equal(ok.get('record-route'), `<sip:127.0.0.1:${ua.port};lr;ftag=x>`);
      ua.ack(invite, ok, udp(fs.port));
      await fs.waitFor('confirmed', (c) => c.callId === invite.callId);
      assert.equal(await fs.hangup(invite.callId!), 200);
      const bye = await ua.waitForRequest('BYE', invite.callId!);
      assert.equal(bye.uri, 'sip:alice@127.0.0.1:9');
      assert.equal(bye.get('route'), `<sip:127.0.0.1:${ua.port};lr;ftag=x>`);
      assert.equal(bye.callId, invite.callId);
      assert.equal(fs.activeCalls, 0);
    });

    it('without an ACK it retransmits the 200 for 64*T1, then ends the call with BYE (§13.3.1.4)', async () => {
      const quick = await startFakeFreeswitch({ timing: { T1: 10, T2: 40 } });
      try {
        const invite = request('INVITE', 'sip:+4930888@example.com', {
          from: 'sip:alice@example.com', body: PCMU_OFFER, headers: [['Contact', `<sip:alice@127.0.0.1:${ua.port}>`]],
        });
        assert.equal((await ua.send(invite, udp(quick.port))).at(-1)!.status, 200);
        const bye = await ua.waitForRequest('BYE', invite.callId!, 3_000);
        assert.equal(bye.uri, `sip:alice@127.0.0.1:${ua.port}`);
        assert.equal(quick.calls[0]!.endedBy, 'no-ack');
        assert.equal(quick.activeCalls, 0);
      } finally {
        await quick.close();
      }
    });

    it('hangup() of a call still ringing answers the INVITE 480', async () => {
      fs.answerWith({ status: 180, user: '+4930444', times: 1 });
      const invite = request('INVITE', 'sip:+4930444@example.com', {
        from: 'sip:alice@example.com', body: PCMU_OFFER, headers: [['Contact', `<sip:alice@127.0.0.1:${ua.port}>`]],
      });
      const responses = ua.send(invite, udp(fs.port));
      await fs.waitFor('invite', (r) => r.callId === invite.callId);
      await sleep(20);
      assert.equal(await fs.hangup(invite.callId!), 0);
      assert.deepEqual((await responses).map((r) => r.status), [100, 180, 480]);
    });
  });

  describe('originate', () => {
    let callee: FakeFreeswitch;
    before(async () => {
      callee = await startFakeFreeswitch({ answerDelayMs: 50 });
    });
    after(async () => {
      await callee.close();
    });

    it('calls through a peer: 180, 200, ACK, then hangup() ends it on both sides', async () => {
      const call = await fs.call('sip:+4930123456@example.com', {
        via: callee.address, from: 'sip:+4930999@pstn.example', headers: [['P-Asserted-Identity', '<sip:+4930999@pstn.example>']],
      });
      assert.equal(call.status, 200);
      assert.deepEqual(call.provisional, [100, 180]);
      assert.match(call.answerSdp ?? '', /^m=audio \d+ RTP\/AVP 0 101/m);
      await callee.waitFor('confirmed', (c) => c.callId === call.callId);
      assert.equal(callee.invites.at(-1)!.requestUri, 'sip:+4930123456@example.com');
      assert.equal(callee.invites.at(-1)!.pAssertedIdentity, '<sip:+4930999@pstn.example>');
      assert.equal(fs.activeCalls, 1);
      assert.equal(await call.hangup(), 200);
      assert.equal(callee.activeCalls, 0);
      assert.equal(fs.activeCalls, 0);
    });

    it('a call the peer rings out is CANCELled on abort (487)', async () => {
      callee.answerWith({ status: 180, times: 1 });
      const abort = new AbortController();
      void callee.waitFor('invite').then(() => sleep(50)).then(() => abort.abort());
      const call = await fs.call('sip:+4930666@example.com', { via: callee.address, signal: abort.signal });
      assert.equal(call.status, 487);
      assert.equal(call.established, false);
      assert.equal(callee.requestCount('CANCEL'), 1);
    });

    it('answers a 407 of the peer once with the credentials given (peer on 127.0.0.2)', async () => {
      const guarded = await startFakeFreeswitch({ host: '127.0.0.2', challengeInvite: true, passwords: { fs1: 'pw' } });
      try {
        assert.match(guarded.uri, /^sip:127\.0\.0\.2:\d+;transport=udp$/);
        const call = await fs.call('sip:+4930125@example.com', {
          via: guarded.address, from: 'sip:fs1@example.com', credentials: { username: 'fs1', password: 'pw' },
        });
        assert.equal(call.status, 200);
        assert.deepEqual(guarded.invites.map((i) => [i.status, i.authorization]), [[407, false], [200, true]]);
        assert.equal(guarded.invites[1]!.source.split(':')[0], '127.0.0.1');
        assert.equal(await call.hangup(), 200);
      } finally {
        await guarded.close();
      }
    });

    it('the peer hanging up ends the call here', async () => {
      const call = await fs.call('sip:+4930124@example.com', { via: callee.address });
      await callee.waitFor('confirmed', (c) => c.callId === call.callId);
      const ended = call.waitForEnd(2_000);
      assert.equal(await callee.hangup(call.callId), 200);
      assert.equal((await ended).endedBy, 'remote');
    });
  });

  describe('SIPp scenarios of test/e2e/sipp/fs-*.xml against the stand-in', () => {
    it('fs-uac-trusted-call.xml: a DID call without credentials is answered and hung up', async () => {
      const before = fs.callsAnswered;
      const r = await runSipp({
        scenario: 'fs-uac-trusted-call.xml', target: fs.address, timeoutSeconds: 5,
        extra: ['-key', 'did', '+4930123456', '-key', 'did_domain', 'example.com', '-key', 'caller', '+4930999', '-d', '100'],
      });
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
      assert.equal(fs.callsAnswered, before + 1);
      const call = fs.calls.at(-1)!;
      assert.equal(call.requestUri, 'sip:+4930123456@example.com');
      assert.equal(call.endedBy, 'remote');
    });

    it('fs-uac-pstn-call.xml: the caller authenticates on 407 and the call is answered and hung up', async () => {
      const challenging = await startFakeFreeswitch({ challengeInvite: true, passwords: { alice: 'secret' } });
      try {
        const r = await runSipp({
          scenario: 'fs-uac-pstn-call.xml', target: challenging.address, timeoutSeconds: 5,
          extra: [
            '-key', 'aor_user', 'alice', '-key', 'aor_domain', 'example.com', '-key', 'callee', '+4930123456', '-d', '100',
            '-au', 'alice', '-ap', 'secret', '-auth_uri', '+4930123456@example.com',
          ],
        });
        assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
        assert.deepEqual(challenging.invites.map((i) => [i.status, i.authorization]), [[407, false], [200, true]]);
        assert.equal(challenging.calls[0]!.endedBy, 'remote');
      } finally {
        await challenging.close();
      }
    });
  });

  describe('in a child process', () => {
    let child: FakeFreeswitchProcess | undefined;
    after(async () => {
      await child?.stop();
    });

    it('starts, answers, dies on SIGKILL and comes back on the same port', async () => {
      child = await startFakeFreeswitchProcess({ challengeRegister: false, registerExpires: 60 });
      const port = child.port;
      assert.match((await rawOptions(socket, port)) ?? '', /^SIP\/2\.0 200 /);
      const res = await register(ua, port, { user: 'dave', expires: 3600 });
      assert.equal(res.status, 200);
      assert.equal(res.get('expires'), '60');
      const ev = await child.waitForEvent((e) => e.event === 'register', 2_000, true);
      assert.equal(ev.event === 'register' && ev.aor, 'dave@example.com');
      await child.command({ cmd: 'setAnswerOptions', value: false });
      assert.equal(await rawOptions(socket, port), undefined);
      assert.equal((await child.stats()).requests.OPTIONS, 2);

      await child.kill();
      assert.equal(child.exited, true);
      assert.equal(await rawOptions(socket, port), undefined);

      child = await startFakeFreeswitchProcess({ port, challengeRegister: false });
      assert.equal(child.port, port);
      assert.match((await rawOptions(socket, port)) ?? '', /^SIP\/2\.0 200 /);
      assert.deepEqual(await child.command({ cmd: 'registrations', aor: 'dave@example.com' }), []);
    });
  });
});
