import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  type SipRequest, buildCredentials, computeDigestResponse, makeField, parseChallenge, utf8ToWire,
} from '../../../src/sip/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { DigestAuthenticator, NonceLedger } from '../../../registrar/index.js';
import type { AuthAlgorithm, AuthResult } from '../../../registrar/types.js';
import { ALICE, CAROL, LogCapture, MemoryCredentials, TestClock, type User, register } from './helpers.js';

function setup(o: { algorithms?: AuthAlgorithm[]; nonceTtlMs?: number; log?: LogCapture; realmFor?: (d: string) => string } = {}) {
  const clock = new TestClock();
  const credentials = new MemoryCredentials([ALICE, CAROL, { username: 'zoë', password: 'pässword', domain: 'example.com' }]);
  const auth = new DigestAuthenticator({
    credentials, clock: clock.fn, logger: o.log?.logger ?? silentLogger(),
    ...(o.algorithms ? { algorithms: o.algorithms } : {}),
    ...(o.nonceTtlMs ? { nonceTtlMs: o.nonceTtlMs } : {}),
    ...(o.realmFor ? { realmFor: o.realmFor } : {}),
  });
  return { clock, credentials, auth };
}

function failure(r: AuthResult): Extract<AuthResult, { ok: false }> {
  assert.equal(r.ok, false, 'expected a refusal');
  return r as Extract<AuthResult, { ok: false }>;
}

/** The challenge of a refusal's n-th header. */
function challengeOf(r: AuthResult, index = 0) {
  const f = failure(r);
  const h = f.headers[index];
  assert.ok(h, `no header ${index}`);
  return parseChallenge(h[1]);
}

function credentialsFor(r: AuthResult, user: User, o: { index?: number; nc?: number; uri?: string; password?: string; method?: string } = {}): string {
  return buildCredentials(challengeOf(r, o.index), {
    username: utf8ToWire(user.username), password: utf8ToWire(o.password ?? user.password),
    method: o.method ?? 'REGISTER', uri: o.uri ?? 'sip:example.com', nc: o.nc ?? 1, cnonce: 'c0ffee',
  });
}

function withHeader(request: SipRequest, name: string, value: string): SipRequest {
  request.append(name, value);
  return request;
}

describe('DigestAuthenticator challenges (RFC 3261 §22.1, RFC 8760)', () => {
  it('offers one WWW-Authenticate per algorithm, SHA-256 first and MD5 last, with qop="auth" and realm = the domain', async () => {
    const { auth } = setup();
    const r = failure(await auth.authenticate(register(), 'www', 'example.com'));
    assert.equal(r.status, 401);
    assert.deepEqual(r.headers.map(([n]) => n), ['WWW-Authenticate', 'WWW-Authenticate']);
    const [sha, md5] = [challengeOf(r, 0), challengeOf(r, 1)];
    assert.equal(md5.algorithm, 'MD5');
    assert.equal(sha.algorithm, 'SHA-256');
    assert.equal(md5.realm, 'example.com');
    assert.deepEqual(md5.qop, ['auth']);
    assert.equal(md5.nonce, sha.nonce, 'one nonce for both challenges');
  });

  it('in proxy mode challenges with 407 and Proxy-Authenticate, and reads Proxy-Authorization', async () => {
    const { auth } = setup();
    const r = failure(await auth.authenticate(register(), 'proxy', 'example.com'));
    assert.equal(r.status, 407);
    assert.deepEqual(r.headers.map(([n]) => n), ['Proxy-Authenticate', 'Proxy-Authenticate']);
    const creds = credentialsFor(r, ALICE);
    const wrongHeader = await auth.authenticate(register({ authorization: [creds] }), 'proxy', 'example.com');
    assert.equal(failure(wrongHeader).status, 407, 'Authorization does not answer a proxy challenge');
    const ok = await auth.authenticate(withHeader(register(), 'Proxy-Authorization', creds), 'proxy', 'example.com');
    assert.deepEqual(ok, { ok: true, username: 'alice', domain: 'example.com' });
  });

  it('offers the configured algorithms in the configured order', async () => {
    const { auth } = setup({ algorithms: ['SHA-256'] });
    const r = failure(await auth.authenticate(register(), 'www', 'example.com'));
    assert.deepEqual(r.headers.map(([, v]) => parseChallenge(v).algorithm), ['SHA-256']);
  });

  it('uses realmFor(domain) as the realm', async () => {
    const { auth } = setup({ realmFor: (d) => `realm.${d}` });
    assert.equal(challengeOf(await auth.authenticate(register(), 'www', 'example.com')).realm, 'realm.example.com');
  });

  it('refuses bad options with TypeError', () => {
    const credentials = new MemoryCredentials([]);
    assert.throws(() => new DigestAuthenticator({ credentials, logger: silentLogger(), algorithms: [] }), TypeError);
    assert.throws(() => new DigestAuthenticator({ credentials, logger: silentLogger(), nonceTtlMs: 0 }), TypeError);
    assert.throws(() => new DigestAuthenticator({ credentials, logger: silentLogger(), secret: Buffer.alloc(4) }), TypeError);
  });
});

describe('DigestAuthenticator verification (RFC 2617 §3.2.2)', () => {
  it('accepts MD5 and SHA-256 responses computed from the stored HA1', async () => {
    const { auth } = setup();
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    for (const index of [0, 1]) {
      const r = await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { index, nc: index + 1 })] }), 'www', 'example.com');
      assert.deepEqual(r, { ok: true, username: 'alice', domain: 'example.com' });
    }
  });

  it('hashes a non-ASCII username and password as UTF-8 and reports the username as text', async () => {
    const { auth, credentials } = setup();
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    const user = { username: 'zoë', password: 'pässword', domain: 'example.com' };
    const r = await auth.authenticate(register({ authorization: [credentialsFor(ch, user)] }), 'www', 'example.com');
    assert.deepEqual(r, { ok: true, username: 'zoë', domain: 'example.com' });
    assert.deepEqual(credentials.lookups.at(-1), ['zoë', 'example.com']);
  });

  it('refuses a response without qop (RFC 2069) with 403 by default: without a nonce-count it could be replayed', async () => {
    const { auth } = setup();
    const ch = challengeOf(await auth.authenticate(register(), 'www', 'example.com'));
    delete ch.qop;
    const creds = buildCredentials(ch, { username: 'alice', password: 'wonderland', method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'x' });
    assert.doesNotMatch(creds, /qop=/);
    const r = failure(await auth.authenticate(register({ authorization: [creds] }), 'www', 'example.com'));
    assert.equal(r.status, 403);
    assert.match(r.reason ?? '', /qop/);
  });

  it('with allowNoQop accepts a response without qop once per nonce, and its replay gets stale=true', async () => {
    const clock = new TestClock();
    const auth = new DigestAuthenticator({ credentials: new MemoryCredentials([ALICE]), clock: clock.fn, logger: silentLogger(), allowNoQop: true });
    const ch = challengeOf(await auth.authenticate(register(), 'www', 'example.com'));
    delete ch.qop;
    const creds = buildCredentials(ch, { username: 'alice', password: 'wonderland', method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'x' });
    assert.equal((await auth.authenticate(register({ authorization: [creds] }), 'www', 'example.com')).ok, true);
    const replay = await auth.authenticate(register({ authorization: [creds] }), 'www', 'example.com');
    assert.equal(failure(replay).status, 401);
    assert.equal(challengeOf(replay).stale, true);
  });

  it('a wrong password and an unknown user get the same fresh challenge, logged at info with the username and source but no secret', async () => {
    const log = new LogCapture();
    const { auth } = setup({ log });
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    const wrong = failure(await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { password: 'guess-1' })] }), 'www', 'example.com'));
    const unknown = failure(await auth.authenticate(
      register({ authorization: [credentialsFor(ch, { username: 'mallory', password: 'guess-2', domain: 'example.com' }, { nc: 2 })] }),
      'www', 'example.com',
    ));
    for (const r of [wrong, unknown]) {
      assert.equal(r.status, 401);
      assert.equal(r.reason, 'Unauthorized');
      assert.equal(r.headers.length, 2);
      assert.notEqual(parseChallenge(r.headers[0]![1]).stale, true);
    }
    const failures = log.lines.filter((l) => l['msg'] === 'authentication failed');
    assert.equal(failures.length, 2);
    for (const l of failures) {
      assert.equal(l['level'], 30, 'info');
      assert.equal(l['cat'], 'registrar.auth');
      assert.match(String(l['source']), /198\.51\.100\.7/);
    }
    assert.deepEqual(failures.map((l) => l['user']), ['alice', 'mallory']);
    const all = log.text.join('\n');
    for (const secret of ['guess-1', 'guess-2', 'wonderland']) assert.ok(!all.includes(secret), `log holds ${secret}`);
    const stored = await new MemoryCredentials([ALICE]).getCredentials('alice', 'example.com');
    assert.ok(!all.includes(stored!.ha1Md5) && !all.includes(stored!.ha1Sha256), 'log holds an HA1');
  });

  it('a disabled subscriber with the right password gets 403', async () => {
    const { auth } = setup();
    const ch = await auth.authenticate(register({ user: 'carol' }), 'www', 'example.com');
    const r = failure(await auth.authenticate(register({ user: 'carol', authorization: [credentialsFor(ch, CAROL)] }), 'www', 'example.com'));
    assert.equal(r.status, 403);
    assert.deepEqual(r.headers, []);
  });

  it('a digest uri that does not match the Request-URI is answered 400 (RFC 2617 §3.2.2.5)', async () => {
    const { auth } = setup();
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    const r = failure(await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { uri: 'sip:other.example.com' })] }), 'www', 'example.com'));
    assert.equal(r.status, 400);
  });

  it('a digest uri equal to the Request-URI under §19.1.4 but written differently is accepted', async () => {
    const { auth } = setup();
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    const r = await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { uri: 'sip:EXAMPLE.com' })] }), 'www', 'example.com');
    assert.equal(r.ok, true);
  });

  it('finds the credentials for its realm among several Authorization headers and ignores unknown schemes', async () => {
    const { auth } = setup();
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    const foreign = 'Digest username="alice", realm="other.net", nonce="abc", uri="sip:example.com", response="00000000000000000000000000000000"';
    const r = await auth.authenticate(register({
      authorization: ['NoOneKnowsThisScheme opaque-data=here', foreign, credentialsFor(ch, ALICE)],
    }), 'www', 'example.com');
    assert.equal(r.ok, true);
  });

  it('credentials of an unknown scheme alone get a Digest challenge (RFC 4475 §3.3.7)', async () => {
    const { auth } = setup();
    const r = failure(await auth.authenticate(register({ authorization: ['NoOneKnowsThisScheme opaque-data=here'] }), 'www', 'example.com'));
    assert.equal(r.status, 401);
  });

  it('malformed Digest credentials are answered 400', async () => {
    const { auth } = setup();
    const r = failure(await auth.authenticate(register({ authorization: ['Digest username="alice", realm="example.com"'] }), 'www', 'example.com'));
    assert.equal(r.status, 400);
  });

  it('a response with an algorithm that was not offered is answered 400', async () => {
    const { auth } = setup({ algorithms: ['SHA-256'] });
    const ch = challengeOf(await auth.authenticate(register(), 'www', 'example.com'));
    ch.algorithm = 'MD5';
    const creds = buildCredentials(ch, { username: 'alice', password: 'wonderland', method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'x' });
    assert.equal(failure(await auth.authenticate(register({ authorization: [creds] }), 'www', 'example.com')).status, 400);
  });
});

describe('DigestAuthenticator nonces', () => {
  it('a genuine nonce past its lifetime with a correct response gets stale=true (RFC 2617 §3.2.1)', async () => {
    const { auth, clock } = setup({ nonceTtlMs: 10_000 });
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    clock.advance(10_001);
    const r = failure(await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE)] }), 'www', 'example.com'));
    assert.equal(r.status, 401);
    assert.ok(r.headers.every(([, v]) => parseChallenge(v).stale === true));
    assert.notEqual(challengeOf(r).nonce, challengeOf(ch).nonce);
  });

  it('an expired nonce with a wrong password gets a plain challenge, not stale=true', async () => {
    const { auth, clock } = setup({ nonceTtlMs: 10_000 });
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    clock.advance(10_001);
    const r = await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { password: 'nope' })] }), 'www', 'example.com');
    assert.notEqual(challengeOf(r).stale, true);
  });

  it('a nonce it did not issue is answered with a fresh challenge, even with a correct response', async () => {
    const { auth } = setup();
    const ch = challengeOf(await auth.authenticate(register(), 'www', 'example.com'));
    const other = setup().auth;
    const foreign = challengeOf(await other.authenticate(register(), 'www', 'example.com'));
    for (const nonce of [foreign.nonce, 'dcd98b7102dd2f0e8b11d0f600bfb0c093', ch.nonce.slice(0, -1) + (ch.nonce.endsWith('A') ? 'B' : 'A')]) {
      const creds = buildCredentials({ ...ch, nonce }, { username: 'alice', password: 'wonderland', method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'x' });
      const r = failure(await auth.authenticate(register({ authorization: [creds] }), 'www', 'example.com'));
      assert.equal(r.status, 401);
      assert.notEqual(challengeOf(r).stale, true);
    }
  });

  it('a nonce issued for one realm is not accepted for another', async () => {
    const { auth } = setup();
    const ch = challengeOf(await auth.authenticate(register(), 'www', 'example.com'));
    const creds = buildCredentials({ ...ch, realm: 'example.org' }, { username: 'alice', password: 'wonderland', method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'x' });
    const r = failure(await auth.authenticate(register({ authorization: [creds] }), 'www', 'example.org'));
    assert.equal(r.status, 401);
  });

  it('a nonce-count not greater than the last one seen for the nonce is refused (replay)', async () => {
    const { auth } = setup();
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    const first = credentialsFor(ch, ALICE, { nc: 5 });
    assert.equal((await auth.authenticate(register({ authorization: [first] }), 'www', 'example.com')).ok, true);
    assert.equal(failure(await auth.authenticate(register({ authorization: [first] }), 'www', 'example.com')).status, 401);
    assert.equal(failure(await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { nc: 4 })] }), 'www', 'example.com')).status, 401);
    assert.equal((await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { nc: 6 })] }), 'www', 'example.com')).ok, true);
  });

  it('forgets the nonce-counts of expired nonces', async () => {
    const { auth, clock } = setup({ nonceTtlMs: 10_000 });
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    assert.equal((await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE)] }), 'www', 'example.com')).ok, true);
    assert.equal(auth.trackedNonces, 1);
    clock.advance(20_000);
    const ch2 = await auth.authenticate(register(), 'www', 'example.com');
    assert.equal((await auth.authenticate(register({ authorization: [credentialsFor(ch2, ALICE)] }), 'www', 'example.com')).ok, true);
    assert.equal(auth.trackedNonces, 1, 'the expired nonce was swept when the new one was recorded');
  });

  it('verifies the response over the request method, so a REGISTER answer does not authorise an INVITE', async () => {
    const { auth } = setup();
    const ch = challengeOf(await auth.authenticate(register(), 'proxy', 'example.com'));
    const response = computeDigestResponse({
      algorithm: 'MD5', ha1: (await new MemoryCredentials([ALICE]).getCredentials('alice', 'example.com'))!.ha1Md5,
      nonce: ch.nonce, method: 'REGISTER', uri: 'sip:example.com', qop: 'auth', nc: '00000001', cnonce: 'x',
    });
    const invite = register();
    invite.method = 'INVITE';
    invite.headers = invite.headers.map((h) => (h.key === 'cseq' ? makeField('cseq', 'CSeq', '1 INVITE') : h));
    invite.append('Proxy-Authorization', `Digest username="alice", realm="example.com", nonce="${ch.nonce}", uri="sip:example.com", response="${response}", algorithm=MD5, cnonce="x", qop=auth, nc=00000001`);
    assert.equal(failure(await auth.authenticate(invite, 'proxy', 'example.com')).status, 407);
  });
});

describe('DigestAuthenticator nonce-counts across processes (one use per nonce-count, on any worker)', () => {
  const secret = Buffer.alloc(32, 7);
  /** Two workers of one node: same secret, their own ledgers, each claiming the other's nonces through `remote`. */
  function twoWorkers() {
    const clock = new TestClock();
    const credentials = new MemoryCredentials([ALICE]);
    const ledgers = [new NonceLedger({ index: 0, clock: clock.fn }), new NonceLedger({ index: 1, clock: clock.fn })];
    const remoteClaims: number[] = [];
    for (const [i, l] of ledgers.entries()) {
      l.setRemote(async (issuer, nonce, nc, expiresAt) => {
        remoteClaims.push(i);
        const owner = ledgers[issuer.index];
        return owner !== undefined && owner.self.incarnation === issuer.incarnation && owner.claimHere(nonce, nc, expiresAt);
      });
    }
    const auths = ledgers.map((ledger) => new DigestAuthenticator({ credentials, clock: clock.fn, logger: silentLogger(), secret, ledger }));
    return { clock, ledgers, auths, remoteClaims };
  }

  it('an answer replayed on another worker is refused with stale=true: the issuer alone keeps the counts', async () => {
    const { auths: [w0, w1], remoteClaims } = twoWorkers();
    const ch = await w0!.authenticate(register(), 'www', 'example.com');
    const creds = credentialsFor(ch, ALICE);
    assert.equal((await w0!.authenticate(register({ authorization: [creds] }), 'www', 'example.com')).ok, true);
    const replay = await w1!.authenticate(register({ authorization: [creds], callId: 'other@203.0.113.9' }), 'www', 'example.com');
    assert.equal(failure(replay).status, 401);
    assert.equal(challengeOf(replay).stale, true);
    assert.deepEqual(remoteClaims, [1], 'the second worker asked the issuer');
  });

  it('the first use of a nonce-count is accepted on a worker that did not issue the nonce, and only once', async () => {
    const { auths: [w0, w1] } = twoWorkers();
    const ch = await w0!.authenticate(register(), 'www', 'example.com');
    const creds = credentialsFor(ch, ALICE, { nc: 1 });
    assert.equal((await w1!.authenticate(register({ authorization: [creds] }), 'www', 'example.com')).ok, true);
    assert.equal(failure(await w0!.authenticate(register({ authorization: [creds] }), 'www', 'example.com')).status, 401);
  });

  it('a nonce of a process that restarted (another incarnation) gets stale=true even with a correct response', async () => {
    const clock = new TestClock();
    const credentials = new MemoryCredentials([ALICE]);
    const before = new DigestAuthenticator({ credentials, clock: clock.fn, logger: silentLogger(), secret, ledger: new NonceLedger({ clock: clock.fn, incarnation: 1 }) });
    const after = new DigestAuthenticator({ credentials, clock: clock.fn, logger: silentLogger(), secret, ledger: new NonceLedger({ clock: clock.fn, incarnation: 2 }) });
    const ch = await before.authenticate(register(), 'www', 'example.com');
    const r = await after.authenticate(register({ authorization: [credentialsFor(ch, ALICE)] }), 'www', 'example.com');
    assert.equal(failure(r).status, 401);
    assert.equal(challengeOf(r).stale, true);
  });
});

describe('DigestAuthenticator digest-uri and nonce lifetimes', () => {
  it('accepts a digest uri that names this server instead of the Request-URI (what SIPp -au/-ap writes), and refuses another one', async () => {
    const clock = new TestClock();
    const auth = new DigestAuthenticator({
      credentials: new MemoryCredentials([ALICE]), clock: clock.fn, logger: silentLogger(),
      namesServer: (uri) => uri === 'sip:192.0.2.10:5060',
    });
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    assert.equal((await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { uri: 'sip:192.0.2.10:5060' })] }), 'www', 'example.com')).ok, true);
    const other = failure(await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { uri: 'sip:bob@example.com', nc: 2 })] }), 'www', 'example.com'));
    assert.equal(other.status, 400);
  });

  it('a REGISTER nonce is stale after registerNonceTtlMs while an INVITE may still use a nonce of that age', async () => {
    const clock = new TestClock();
    const auth = new DigestAuthenticator({ credentials: new MemoryCredentials([ALICE]), clock: clock.fn, logger: silentLogger(), registerNonceTtlMs: 30_000 });
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    clock.advance(31_000);
    const r = await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE)] }), 'www', 'example.com');
    assert.equal(challengeOf(r).stale, true);
    const response = computeDigestResponse({
      algorithm: 'MD5', ha1: (await new MemoryCredentials([ALICE]).getCredentials('alice', 'example.com'))!.ha1Md5,
      nonce: challengeOf(ch).nonce, method: 'INVITE', uri: 'sip:example.com', qop: 'auth', nc: '00000002', cnonce: 'x',
    });
    const invite = register();
    invite.method = 'INVITE';
    invite.headers = invite.headers.map((h) => (h.key === 'cseq' ? makeField('cseq', 'CSeq', '1 INVITE') : h));
    invite.append('Proxy-Authorization', `Digest username="alice", realm="example.com", nonce="${challengeOf(ch).nonce}", uri="sip:example.com", response="${response}", algorithm=MD5, cnonce="x", qop=auth, nc=00000002`);
    assert.equal((await auth.authenticate(invite, 'proxy', 'example.com')).ok, true);
  });
});

describe('DigestAuthenticator and the password-guessing guard', () => {
  it('tells the guard of each failure and success by source and user, and refuses with 403 before checking when the guard says no', async () => {
    const calls: string[] = [];
    let allow = true;
    const clock = new TestClock();
    const auth = new DigestAuthenticator({
      credentials: new MemoryCredentials([ALICE]), clock: clock.fn, logger: silentLogger(),
      guard: {
        mayTry: (s, u) => (calls.push(`try ${s} ${u}`), allow),
        failed: (s, u) => (calls.push(`failed ${s} ${u}`), true),
        succeeded: (s, u) => void calls.push(`ok ${s} ${u}`),
      },
    });
    const ch = await auth.authenticate(register(), 'www', 'example.com');
    await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { password: 'nope' })] }), 'www', 'example.com', '203.0.113.5');
    await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { nc: 2 })] }), 'www', 'example.com', '203.0.113.6');
    assert.deepEqual(calls, ['try 203.0.113.5 alice@example.com', 'failed 203.0.113.5 alice@example.com', 'try 203.0.113.6 alice@example.com', 'ok 203.0.113.6 alice@example.com']);
    allow = false;
    const r = failure(await auth.authenticate(register({ authorization: [credentialsFor(ch, ALICE, { nc: 3 })] }), 'www', 'example.com', '203.0.113.5'));
    assert.equal(r.status, 403);
    assert.equal(r.headers.length, 0, 'no new challenge');
  });
});
