/**
 * Registration against the running server (RFC 3261 §10, digest auth §22): the softphones our users build
 * on (SIP.js and JsSIP over WS and WSS, RFC 7118) and SIPp over UDP and TCP.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Softphone, type SoftphoneLibrary, SoftphoneError, createPhone } from '../helpers/softphone.js';

const LIBRARIES: SoftphoneLibrary[] = ['sip.js', 'jssip'];
const DOMAIN = 'example.com';

interface User {
  user: string;
  aor: string;
  password: string;
}

/** Status lines of the responses to `method` a phone received, in order. */
function responsesTo(phone: Softphone, method: string): string[] {
  const cseq = new RegExp(`^CSeq:\\s*\\d+\\s+${method}\\s*$`, 'im');
  return phone.sockets
    .flatMap((s) => s.messages)
    .filter((m) => m.dir === 'in' && m.text.startsWith('SIP/2.0 ') && cseq.test(m.text))
    .map((m) => m.text.slice(0, m.text.indexOf('\r\n')));
}

function headerOf(message: string, name: string): string[] {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'gim');
  return [...message.matchAll(re)].map((m) => m[1]!.trim());
}

describe('registration', { timeout: 120_000 }, () => {
  let t: TestServer;
  let n = 0;

  before(async () => {
    t = await startTestServer({ sip: { domain: [DOMAIN] } });
  });
  after(async () => t?.stop());

  async function newUser(prefix = 'reg'): Promise<User> {
    const user = `${prefix}${++n}`;
    const password = `${user}-secret`;
    await t.addUser(`${user}@${DOMAIN}`, password);
    return { user, aor: `sip:${user}@${DOMAIN}`, password };
  }

  function wsUrl(protocol: 'ws' | 'wss'): string {
    return `${protocol}://${t.addr(protocol)}`;
  }

  for (const library of LIBRARIES) {
    for (const protocol of ['ws', 'wss'] as const) {
      it(`a ${library} softphone registers over ${protocol.toUpperCase()} with digest auth, bound to its WebSocket, and un-registers`, { timeout: 15_000 }, async (tc) => {
        const u = await newUser();
        const phone = await createPhone(library, { uri: u.aor, password: u.password, wsUrl: wsUrl(protocol) });
        tc.after(() => phone.stop());

        await phone.register();

        // §22.2: challenged first (401), then 200. The libraries only do MD5 (and read only the last
        // WWW-Authenticate): an MD5 challenge must be among those offered, and it is the one they answered.
        assert.deepEqual(responsesTo(phone, 'REGISTER').map((l) => l.split(' ')[1]), ['401', '200']);
        const challenge = phone.sockets[0]!.messages.find((m) => m.dir === 'in' && m.text.startsWith('SIP/2.0 401'))!.text;
        const offered = headerOf(challenge, 'WWW-Authenticate');
        assert.ok(offered.some((c) => /^Digest /i.test(c) && /algorithm=MD5(,|$|\s)/i.test(c) && c.includes(`realm="${DOMAIN}"`)), offered.join(' | '));
        const authorized = phone.sockets[0]!.messages.filter((m) => m.dir === 'out' && m.text.startsWith('REGISTER '))[1]!.text;
        assert.match(headerOf(authorized, 'Authorization')[0] ?? '', /algorithm=MD5/i);

        const bindings = t.server.registrar.lookup(u.aor);
        assert.equal(bindings.length, 1, 'one binding');
        assert.equal(bindings[0]!.flow?.protocol, protocol, 'the binding is kept with the WebSocket it came on');

        await phone.unregister();
        assert.equal(t.server.registrar.lookup(u.aor).length, 0, 'no binding after Expires: 0');
      });
    }
  }

  for (const library of LIBRARIES) {
    it(`a ${library} softphone with a wrong password gets 401 again and no binding; a call to it gets 480`, { timeout: 15_000 }, async (tc) => {
      const u = await newUser('wrong');
      const phone = await createPhone(library, { uri: u.aor, password: 'not-the-password', wsUrl: wsUrl('wss') });
      tc.after(() => phone.stop());

      const err = await phone.register().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof SoftphoneError, `REGISTER must fail, got ${String(err)}`);
      assert.equal(err.status, 401, err.message);
      assert.deepEqual(responsesTo(phone, 'REGISTER').map((l) => l.split(' ')[1]), ['401', '401']);
      assert.equal(t.server.registrar.lookup(u.aor).length, 0, 'no binding');

      // A known user without a binding: 480 Temporarily Unavailable (§21.4.18), not 404.
      const caller = await newUser('caller');
      const callerPhone = await createPhone('sip.js', { uri: caller.aor, password: caller.password, wsUrl: wsUrl('ws') });
      tc.after(() => callerPhone.stop());
      await callerPhone.register();
      const callErr = await callerPhone.call(u.aor).then(() => undefined, (e: unknown) => e);
      assert.ok(callErr instanceof SoftphoneError, `the call must fail, got ${String(callErr)}`);
      assert.equal(callErr.status, 480, callErr.message);
    });
  }

  for (const library of LIBRARIES) {
    it(`a ${library} softphone registering another user's AoR with its own credentials gets 403`, { timeout: 15_000 }, async (tc) => {
      const alice = await newUser('alice');
      const bob = await newUser('bob');
      const phone = await createPhone(library, {
        uri: bob.aor, authorizationUser: alice.user, password: alice.password, wsUrl: wsUrl('wss'),
      });
      tc.after(() => phone.stop());

      const err = await phone.register().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof SoftphoneError, `REGISTER must fail, got ${String(err)}`);
      assert.equal(err.status, 403, err.message);
      assert.equal(t.server.registrar.lookup(bob.aor).length, 0, 'no binding for bob');
      assert.equal(t.server.registrar.lookup(alice.aor).length, 0, 'nor for alice');
    });
  }

  for (const transport of ['u1', 't1'] as const) {
    const name = transport === 'u1' ? 'UDP' : 'TCP';
    it(`SIPp registers over ${name}: REGISTER → 401 → REGISTER with [authentication] → 200 listing the binding (reg-auth.xml)`, { timeout: 15_000 }, async () => {
      const u = await newUser('sipp');
      const r = await runSipp({
        scenario: 'reg-auth.xml',
        target: t.addr(transport === 'u1' ? 'udp' : 'tcp'),
        transport,
        timeoutSeconds: 10,
        extra: ['-key', 'aor_user', u.user, '-key', 'aor_domain', DOMAIN, '-au', u.user, '-ap', u.password, '-auth_uri', DOMAIN],
      });
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
      const bindings = t.server.registrar.lookup(u.aor);
      assert.equal(bindings.length, 1, 'one binding');
      assert.match(bindings[0]!.contactUri, new RegExp(`@127\\.0\\.0\\.1:${r.localPort}\\b`));
      assert.equal(bindings[0]!.received.protocol, transport === 'u1' ? 'udp' : 'tcp');
    });
  }

  it('SIPp with a wrong password is not registered (reg-auth.xml ends on a second 401)', { timeout: 15_000 }, async () => {
    const u = await newUser('sippwrong');
    const r = await runSipp({
      scenario: 'reg-auth.xml',
      target: t.addr('udp'),
      transport: 'u1',
      timeoutSeconds: 5,
      extra: ['-key', 'aor_user', u.user, '-key', 'aor_domain', DOMAIN, '-au', u.user, '-ap', 'wrong', '-auth_uri', DOMAIN],
    });
    assert.notEqual(r.code, 0, 'the scenario expects 200 and must fail');
    assert.match(r.stderr + r.stdout, /received 'SIP\/2\.0 401 [^']*CSeq: 2 REGISTER/, 'it failed on a second 401');
    assert.equal(t.server.registrar.lookup(u.aor).length, 0, 'no binding');
  });
});
