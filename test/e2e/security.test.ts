/**
 * The hardened edge against real traffic on loopback: credentials are consumed, captured answers cannot
 * be replayed, stock SIPp digest works, a desk phone may use the server's IP as its domain, and floods
 * and password guessing get their source banned while a phone on another address goes on. Attackers
 * send from 127.0.0.2 (and 127.0.0.10 up), honest phones from 127.0.0.3: loopback addresses other than
 * 127.0.0.1, which the default `security.exempt` spares.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { buildCredentials, parseChallenge, parseMessage, SipRequest, type SipResponse } from '../../src/sip/index.js';
import type { ListenSpec } from '../../src/transport/types.js';
import { SIPP_SCENARIOS, runSipp } from '../helpers/sipp.js';
import type { RunResult } from '../../support/tools.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const DOMAIN = 'example.com';
type Msg = SipRequest | SipResponse;

/** A bare UDP user agent on one loopback address: sends what it is told, keeps what it receives. */
class UdpUa {
  readonly received: Msg[] = [];
  private waiters: Array<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  private constructor(private readonly socket: Socket, readonly address: string, readonly port: number, private readonly server: ListenSpec) {
    socket.on('message', (data) => {
      let m: Msg;
      try {
        m = parseMessage(data);
      } catch {
        return;
      }
      this.received.push(m);
      if (m instanceof SipRequest) this.autoAnswer(m);
      this.waiters = this.waiters.filter((w) => (w.pred(m) ? (w.resolve(m), false) : true));
    });
  }

  static async open(address: string, server: ListenSpec): Promise<UdpUa> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, address, resolve));
    return new UdpUa(socket, address, socket.address().port, server);
  }

  /** A request from this UA; `lines` are extra header lines. */
  request(method: string, ruri: string, o: { from: string; to?: string; callId?: string; cseq?: number; contact?: boolean; lines?: string[]; body?: string }): string {
    const body = o.body ?? '';
    return [
      `${method} ${ruri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.address}:${this.port};rport;branch=z9hG4bK${randomBytes(8).toString('hex')}`,
      'Max-Forwards: 70',
      `From: <sip:${o.from}>;tag=${randomBytes(4).toString('hex')}`,
      `To: <sip:${o.to ?? o.from}>`,
      `Call-ID: ${o.callId ?? randomBytes(8).toString('hex')}`,
      `CSeq: ${o.cseq ?? 1} ${method}`,
      ...(o.contact === false ? [] : [`Contact: <sip:${o.from.slice(0, o.from.indexOf('@'))}@${this.address}:${this.port}>`]),
      ...(o.lines ?? []),
      ...(body === '' ? [] : ['Content-Type: text/plain']),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
  }

  send(text: string): void {
    this.socket.send(text, this.server.port, this.server.address);
  }

  /** Sends and waits for the final response to it (matched by CSeq and Call-ID). */
  async ask(text: string, timeoutMs = 3000): Promise<SipResponse> {
    const callId = /^Call-ID: (.*)$/m.exec(text)![1]!;
    const cseq = /^CSeq: (.*)$/m.exec(text)![1]!;
    const p = this.next((m) => !(m instanceof SipRequest) && m.status >= 200 && m.callId === callId && m.get('cseq') === cseq, timeoutMs);
    this.send(text);
    return (await p) as SipResponse;
  }

  next(pred: (m: Msg) => boolean, timeoutMs = 3000): Promise<Msg> {
    const found = this.received.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing matching within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  /** REGISTER with digest; the final response. */
  async register(user: string, password: string, o: { domain?: string; ruri?: string; lines?: string[] } = {}): Promise<SipResponse> {
    const aor = `${user}@${o.domain ?? DOMAIN}`;
    const callId = randomBytes(8).toString('hex');
    const ruri = o.ruri ?? `sip:${o.domain ?? DOMAIN}`;
    const first = await this.ask(this.request('REGISTER', ruri, { from: aor, callId, cseq: 1, lines: ['Expires: 300', ...(o.lines ?? [])] }));
    if (first.status !== 401) return first;
    const ch = parseChallenge(first.get('www-authenticate')!);
    const creds = buildCredentials(ch, { username: user, password, method: 'REGISTER', uri: ruri, nc: 1, cnonce: randomBytes(4).toString('hex') });
    return this.ask(this.request('REGISTER', ruri, { from: aor, callId, cseq: 2, lines: ['Expires: 300', `Authorization: ${creds}`, ...(o.lines ?? [])] }));
  }

  close(): void {
    this.socket.close();
  }

  /** A callee that declines INVITEs (486) and accepts MESSAGEs (200), so that transactions end. */
  private autoAnswer(req: SipRequest): void {
    if (req.method === 'ACK') return;
    const status = req.method === 'INVITE' ? '486 Busy Here' : '200 OK';
    const copy = (name: string) => req.getAll(name).map((v) => `${name}: ${v}`);
    this.send([
      `SIP/2.0 ${status}`, ...copy('Via'), ...copy('From'), `To: ${req.get('to')!};tag=callee`, `Call-ID: ${req.callId!}`, `CSeq: ${req.get('cseq')!}`,
      'Content-Length: 0', '', '',
    ].join('\r\n'));
  }
}

/** A request answered 407 once, then again with credentials; the final response and the credentials sent. */
async function authenticated(ua: UdpUa, method: string, ruri: string, user: string, password: string, body?: string): Promise<{ res: SipResponse; creds: string }> {
  const callId = randomBytes(8).toString('hex');
  const from = `${user}@${DOMAIN}`;
  const first = await ua.ask(ua.request(method, ruri, { from, to: ruri.slice(4), callId, cseq: 1, body }));
  assert.equal(first.status, 407, `${method} is challenged`);
  if (method === 'INVITE') ua.send(ua.request('ACK', ruri, { from, to: ruri.slice(4), callId, cseq: 1, contact: false }));
  const creds = buildCredentials(parseChallenge(first.get('proxy-authenticate')!), { username: user, password, method, uri: ruri, nc: 1, cnonce: 'c1' });
  const res = await ua.ask(ua.request(method, ruri, { from, to: ruri.slice(4), callId, cseq: 2, body, lines: [`Proxy-Authorization: ${creds}`] }), 5000);
  return { res, creds };
}

/**
 * Stock SIPp digest (-au/-ap, no -auth_uri): bob registers from `calleeAt` and answers one call, alice
 * calls him from `callerAt`. Resolves with both SIPp results once bob's call is done.
 */
async function sippCall(t: TestServer, calleeAt: string, callerAt: string): Promise<{ registered: boolean; uac: RunResult; uas: RunResult }> {
  const target = t.addr('udp');
  const uas = runSipp({
    scenario: 'reg-then-answer.xml', target, local: calleeAt, timeoutSeconds: 15,
    extra: ['-oocsf', join(SIPP_SCENARIOS, 'call-uas.xml'), '-key', 'aor_user', 'bob', '-key', 'aor_domain', DOMAIN, '-au', 'bob', '-ap', 'bob-pw'],
  });
  const deadline = Date.now() + 10_000;
  while (t.server.registrar.lookup(`sip:bob@${DOMAIN}`).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const registered = t.server.registrar.lookup(`sip:bob@${DOMAIN}`).length > 0;
  const uac = await runSipp({
    scenario: 'call-uac-auth.xml', target, local: callerAt, timeoutSeconds: 10,
    extra: ['-key', 'aor_user', 'alice', '-key', 'aor_domain', DOMAIN, '-key', 'callee', 'bob', '-au', 'alice', '-ap', 'alice-pw'],
  });
  return { registered, uac, uas: await uas };
}

async function adminFetch(t: TestServer, method: string, path: string): Promise<Response> {
  const { token } = await t.server.store.tokens.create({ name: `sec-${randomBytes(3).toString('hex')}`, expiresAt: Date.now() + 60_000 });
  return fetch(`http://127.0.0.1:${t.server.http.boundTo}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
}

describe('credentials and replays', () => {
  let t: TestServer;
  const uas: UdpUa[] = [];
  const ua = async (address: string) => {
    const u = await UdpUa.open(address, t.listener('udp'));
    uas.push(u);
    return u;
  };
  before(async () => {
    t = await startTestServer();
    await t.addUser(`alice@${DOMAIN}`, 'alice-pw');
    await t.addUser(`bob@${DOMAIN}`, 'bob-pw');
  });
  after(async () => {
    for (const u of uas) u.close();
    await t.stop();
  });

  it('a user→user INVITE and MESSAGE reach the callee without the caller\'s Proxy-Authorization (consume_credentials on every request)', { timeout: 15_000 }, async () => {
    const bob = await ua('127.0.0.3');
    assert.equal((await bob.register('bob', 'bob-pw')).status, 200);
    const alice = await ua('127.0.0.4');
    const call = await authenticated(alice, 'INVITE', `sip:bob@${DOMAIN}`, 'alice', 'alice-pw');
    assert.equal(call.res.status, 486, 'the INVITE reached bob, who declined');
    const msg = await authenticated(alice, 'MESSAGE', `sip:bob@${DOMAIN}`, 'alice', 'alice-pw', 'hello');
    assert.equal(msg.res.status, 202, 'the server stored the message (chat); it delivers it to bob itself');
    const arrived = (): SipRequest[] => bob.received.filter((m): m is SipRequest => m instanceof SipRequest && (m.method === 'INVITE' || m.method === 'MESSAGE'));
    for (let i = 0; i < 100 && !arrived().some((m) => m.method === 'MESSAGE'); i++) await new Promise((r) => setTimeout(r, 20));
    const atBob = arrived();
    assert.deepEqual(atBob.map((m) => m.method).sort(), ['INVITE', 'MESSAGE']);
    for (const m of atBob) assert.equal(m.get('proxy-authorization'), undefined, `${m.method} arrived with the caller's credentials`);
  });

  it('captured INVITE credentials replayed in a new call from another address get a stale challenge and reach nobody', { timeout: 15_000 }, async () => {
    const bob = await ua('127.0.0.3');
    assert.equal((await bob.register('bob', 'bob-pw')).status, 200);
    const alice = await ua('127.0.0.4');
    const { creds } = await authenticated(alice, 'INVITE', `sip:bob@${DOMAIN}`, 'alice', 'alice-pw');
    const invitesBefore = bob.received.filter((m) => m instanceof SipRequest && m.method === 'INVITE').length;
    const eve = await ua('127.0.0.5');
    const replay = await eve.ask(eve.request('INVITE', `sip:bob@${DOMAIN}`, { from: `alice@${DOMAIN}`, to: `bob@${DOMAIN}`, lines: [`Proxy-Authorization: ${creds}`] }));
    assert.equal(replay.status, 407);
    assert.equal(parseChallenge(replay.get('proxy-authenticate')!).stale, true);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bob.received.filter((m) => m instanceof SipRequest && m.method === 'INVITE').length, invitesBefore, 'the replay rang nobody');
  });

  it('a captured REGISTER Authorization replayed from another address with another Contact is challenged again and binds nothing', { timeout: 15_000 }, async () => {
    const phone = await ua('127.0.0.3');
    const callId = randomBytes(8).toString('hex');
    const first = await phone.ask(phone.request('REGISTER', `sip:${DOMAIN}`, { from: `alice@${DOMAIN}`, callId, lines: ['Expires: 300'] }));
    const creds = buildCredentials(parseChallenge(first.get('www-authenticate')!), { username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: `sip:${DOMAIN}`, nc: 1, cnonce: 'c' });
    assert.equal((await phone.ask(phone.request('REGISTER', `sip:${DOMAIN}`, { from: `alice@${DOMAIN}`, callId, cseq: 2, lines: ['Expires: 300', `Authorization: ${creds}`] }))).status, 200);
    const eve = await ua('127.0.0.5');
    for (let i = 0; i < 5; i++) {
      const r = await eve.ask(eve.request('REGISTER', `sip:${DOMAIN}`, { from: `alice@${DOMAIN}`, cseq: 10 + i, lines: ['Expires: 3600', `Authorization: ${creds}`] }));
      assert.equal(r.status, 401, `replay ${i + 1}`);
    }
    const contacts = t.server.registrar.lookup(`sip:alice@${DOMAIN}`).map((b) => b.contactUri);
    assert.ok(contacts.every((c) => !c.includes('127.0.0.5')), `the attacker's Contact was bound: ${contacts.join(', ')}`);
  });

  it('a REGISTER answered without qop (RFC 2069 style) is refused with 403: nothing but its age would stop a replay', { timeout: 10_000 }, async () => {
    const phone = await ua('127.0.0.3');
    const callId = randomBytes(8).toString('hex');
    const first = await phone.ask(phone.request('REGISTER', `sip:${DOMAIN}`, { from: `alice@${DOMAIN}`, callId, lines: ['Expires: 300'] }));
    const ch = parseChallenge(first.get('www-authenticate')!);
    delete ch.qop;
    const creds = buildCredentials(ch, { username: 'alice', password: 'alice-pw', method: 'REGISTER', uri: `sip:${DOMAIN}`, nc: 1, cnonce: 'c' });
    const r = await phone.ask(phone.request('REGISTER', `sip:${DOMAIN}`, { from: `alice@${DOMAIN}`, callId, cseq: 2, lines: ['Expires: 300', `Authorization: ${creds}`] }));
    assert.equal(r.status, 403);
  });
});

describe('stock SIPp digest and the server\'s IP as the domain', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    await t.addUser(`alice@${DOMAIN}`, 'alice-pw');
    await t.addUser(`bob@${DOMAIN}`, 'bob-pw');
    await t.addUser(`carol@${DOMAIN}`, 'carol-pw');
  });
  after(() => t.stop());

  it('SIPp with -au/-ap and no -auth_uri (digest uri = the server\'s address) registers, and its authenticated INVITE reaches a registered SIPp UAS', { timeout: 30_000 }, async () => {
    const { registered, uac, uas } = await sippCall(t, '127.0.0.3', '127.0.0.4');
    assert.ok(registered, 'SIPp registered with its own digest uri');
    assert.equal(uac.code, 0, uac.stderr + uac.stdout.slice(-2000));
    assert.equal(uas.code, 0, uas.stderr + uas.stdout.slice(-2000));
  });

  it('a desk phone set up with the server\'s IP as its domain registers as the user of the one served domain and is called there', { timeout: 15_000 }, async () => {
    const phone = await UdpUa.open('127.0.0.3', t.listener('udp'));
    const caller = await UdpUa.open('127.0.0.4', t.listener('udp'));
    try {
      const server = t.listener('udp');
      const r = await phone.register('carol', 'carol-pw', { domain: server.address, ruri: `sip:${server.address}:${server.port}` });
      assert.equal(r.status, 200, `${r.status} ${r.reason}`);
      assert.ok(t.server.registrar.lookup(`sip:carol@${DOMAIN}`).some((b) => b.contactUri.includes(`127.0.0.3:${phone.port}`)));
      const call = await authenticated(caller, 'INVITE', `sip:carol@${DOMAIN}`, 'alice', 'alice-pw');
      assert.equal(call.res.status, 486, 'the INVITE to carol@example.com reached the phone registered at the IP');
    } finally {
      phone.close();
      caller.close();
    }
  });
});

describe('the server\'s IP as the domain with several domains', () => {
  it('is refused with a 404 whose reason says to use one of the domains', { timeout: 15_000 }, async () => {
    const t = await startTestServer({ sip: { domain: [DOMAIN, 'example.org'] } });
    const phone = await UdpUa.open('127.0.0.3', t.listener('udp'));
    try {
      await t.addUser(`bob@${DOMAIN}`, 'bob-pw');
      const r = await phone.register('bob', 'bob-pw', { domain: t.listener('udp').address });
      assert.equal(r.status, 404);
      assert.match(r.reason, /several.*example\.com, example\.org/);
    } finally {
      phone.close();
      await t.stop();
    }
  });
});

describe('flood and password-guessing bans', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
    await t.addUser(`alice@${DOMAIN}`, 'alice-pw');
    await t.addUser(`bob@${DOMAIN}`, 'bob-pw');
  });
  after(() => t.stop());

  it('a source flooding unauthenticated INVITEs is banned and dropped before parsing, while a phone on another address registers and calls; the ban is listed and lifted through /v1/bans', { timeout: 30_000 }, async () => {
    const attacker = createSocket('udp4');
    await new Promise<void>((resolve) => attacker.bind(0, '127.0.0.2', resolve));
    const server = t.listener('udp');
    const invite = (i: number) => Buffer.from([
      `INVITE sip:bob@${DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKflood${i}`, 'Max-Forwards: 70',
      `From: <sip:alice@${DOMAIN}>;tag=f${i}`, `To: <sip:bob@${DOMAIN}>`, `Call-ID: flood-${i}`, 'CSeq: 1 INVITE', 'Content-Length: 0', '', '',
    ].join('\r\n'));
    // 3 s at up to ~10,000 datagrams/s (bounded to 30,000), while the honest phones work.
    let sent = 0;
    const stopAt = Date.now() + 3000;
    const flood = (async () => {
      while (Date.now() < stopAt && sent < 30_000) {
        for (let k = 0; k < 100; k++) attacker.send(invite(sent++), server.port, server.address);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const { uac, uas } = await sippCall(t, '127.0.0.3', '127.0.0.3');
    await flood;
    attacker.close();
    assert.equal(uac.code, 0, `the honest call failed during the flood: ${uac.stderr}${uac.stdout.slice(-1500)}`);
    assert.equal(uas.code, 0, 'the honest callee registered and answered');

    const bans = t.server.security.bans.list();
    assert.deepEqual(bans.map((b) => [b.address, b.reason]), [['127.0.0.2', 'flood']], 'the attacker, and only it, is banned');
    assert.ok(t.server.stack.stats.dropped > sent / 2, `most of the ${sent} datagrams were dropped unparsed (${t.server.stack.stats.dropped})`);

    const listed = (await (await adminFetch(t, 'GET', '/v1/bans')).json()) as { bans: Array<{ address: string }> };
    assert.deepEqual(listed.bans.map((b) => b.address), ['127.0.0.2']);
    assert.equal((await adminFetch(t, 'DELETE', '/v1/bans/127.0.0.2')).status, 200);
    const again = await UdpUa.open('127.0.0.2', server);
    try {
      const r = await again.ask(again.request('OPTIONS', `sip:${DOMAIN}`, { from: `alice@${DOMAIN}`, contact: false }));
      assert.equal(r.status, 200, 'heard again once the ban is lifted');
    } finally {
      again.close();
    }
  });

  it('a source that fails to authenticate 10 times within a minute is banned; the real user on another address registers', { timeout: 20_000 }, async () => {
    const guesser = await UdpUa.open('127.0.0.6', t.listener('udp'));
    const real = await UdpUa.open('127.0.0.7', t.listener('udp'));
    try {
      const answers: number[] = [];
      for (let i = 0; i < 10; i++) answers.push((await guesser.register('alice', `guess-${i}`)).status);
      assert.deepEqual(answers, Array(10).fill(401));
      await assert.rejects(guesser.register('alice', 'guess-10'), /nothing matching/, 'the banned source gets no answer at all');
      assert.ok(t.server.security.bans.list().some((b) => b.address === '127.0.0.6' && b.reason === 'auth'));
      assert.equal((await real.register('alice', 'alice-pw')).status, 200);
    } finally {
      guesser.close();
      real.close();
    }
  });

  it('a user guessed at from 20 addresses: those addresses get 403 without a challenge, the real user from a new address registers', { timeout: 20_000 }, async () => {
    const guessers: UdpUa[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const g = await UdpUa.open(`127.0.0.${20 + i}`, t.listener('udp'));
        guessers.push(g);
        assert.equal((await g.register('bob', `wrong-${i}`)).status, 401);
      }
      const again = await guessers[3]!.register('bob', 'bob-pw');
      assert.equal(again.status, 403, 'an address that already failed for bob gets no further try, even with the right password');
      assert.equal(again.get('www-authenticate'), undefined);
      const real = await UdpUa.open('127.0.0.60', t.listener('udp'));
      guessers.push(real);
      assert.equal((await real.register('bob', 'bob-pw')).status, 200, 'the real user is not locked out');
    } finally {
      for (const g of guessers) g.close();
    }
  });
});
