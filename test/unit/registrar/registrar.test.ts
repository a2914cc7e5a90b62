import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type NameAddr, parseChallenge, parseNameAddrs, parseSipUri } from '../../../src/sip/index.js';
import { aorOf } from '../../../registrar/index.js';
import { ALICE, BOB, CAROL, Harness, MemoryPersistence, answer, contactsOf, flow, register } from './helpers.js';

const AOR = 'sip:alice@example.com';

function contactNamed(values: string[], uriPrefix: string): NameAddr {
  for (const v of values) {
    const na = parseNameAddrs(v, 'contact', true)[0]!;
    if (na.uri.toString().startsWith(uriPrefix)) return na;
  }
  throw new Error(`no contact ${uriPrefix} in ${values.join(' | ')}`);
}

describe('REGISTER authentication (RFC 3261 §10.3 steps 3-4, §22)', () => {
  it('a REGISTER without credentials is answered 401 with a SHA-256 then an MD5 challenge, qop="auth", realm = domain', async () => {
    const h = new Harness();
    const res = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'] }));
    assert.equal(res.status, 401);
    const challenges = res.getAll('www-authenticate').map((v) => parseChallenge(v));
    assert.deepEqual(challenges.map((c) => c.algorithm), ['SHA-256', 'MD5']);
    for (const c of challenges) {
      assert.equal(c.realm, 'example.com');
      assert.deepEqual(c.qop, ['auth']);
      assert.equal(c.stale, undefined);
    }
    assert.equal(h.registrar.lookup(AOR).length, 0);
    assert.equal(h.registrar.stats.challenged, 1);
  });

  it('answered with MD5 credentials the REGISTER gets 200 listing the new binding', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ contacts: ['<sip:alice@198.51.100.7:5060>'] });
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res), ['<sip:alice@198.51.100.7:5060>;expires=600']);
    assert.ok(res.to?.tag, 'a To tag is added');
    assert.match(res.get('date') ?? '', /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    const bindings = h.registrar.lookup(AOR);
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0]!.contactUri, 'sip:alice@198.51.100.7:5060');
    assert.equal(h.registrar.stats.accepted, 1);
  });

  it('answered with SHA-256 credentials (the second challenge) the REGISTER gets 200 too', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ contacts: ['<sip:alice@198.51.100.7>'], challengeIndex: 1 });
    assert.equal(res.status, 200);
    assert.equal(h.registrar.lookup(AOR).length, 1);
  });

  it('with a wrong password the REGISTER is challenged again and no binding is made', async () => {
    const h = new Harness();
    const first = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'] }));
    const auth = answer(first, ALICE, { password: 'not-the-password' });
    const res = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'], cseq: 2, authorization: [auth] }));
    assert.equal(res.status, 401);
    assert.equal(res.getAll('www-authenticate').length, 2);
    assert.equal(h.registrar.lookup(AOR).length, 0);
  });

  it('a user registering another user\'s AoR with valid credentials of its own gets 403', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ user: 'alice', as: BOB, contacts: ['<sip:bob@203.0.113.5>'] });
    assert.equal(res.status, 403);
    assert.equal(res.reason, 'Forbidden: credentials do not match the AoR');
    assert.equal(h.registrar.lookup(AOR).length, 0);
    assert.equal(h.registrar.stats.refused, 1);
  });

  it('a disabled subscriber with the right password gets 403', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ user: 'carol', as: CAROL, contacts: ['<sip:carol@203.0.113.5>'] });
    assert.equal(res.status, 403);
  });

  it('the same nonce and nonce-count sent twice is refused the second time (replay)', async () => {
    const h = new Harness();
    const first = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'] }));
    const auth = answer(first, ALICE, { nc: 1 });
    const ok = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'], cseq: 2, authorization: [auth] }));
    assert.equal(ok.status, 200);
    const replay = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'], cseq: 3, authorization: [auth] }));
    assert.equal(replay.status, 401);
    const next = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'], cseq: 4, authorization: [answer(first, ALICE, { nc: 2 })] }));
    assert.equal(next.status, 200, 'a higher nonce-count with the same nonce is accepted');
  });

  it('a genuine nonce past its lifetime with a correct response is answered with stale=true', async () => {
    const h = new Harness({ options: { nonceTtlMs: 30_000 } });
    const first = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'] }));
    h.clock.advance(31_000);
    const res = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'], cseq: 2, authorization: [answer(first, ALICE)] }));
    assert.equal(res.status, 401);
    for (const v of res.getAll('www-authenticate')) assert.equal(parseChallenge(v).stale, true);
    const retry = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'], cseq: 3, authorization: [answer(res, ALICE)] }));
    assert.equal(retry.status, 200);
  });

  it('a forged nonce is answered with a fresh challenge', async () => {
    const h = new Harness();
    const first = await h.send(register({ contacts: ['<sip:alice@198.51.100.7>'] }));
    const ch = parseChallenge(first.getAll('www-authenticate')[0]!);
    // Same length and shape, one character of the issue time changed: the HMAC no longer matches.
    const forged = (ch.nonce[0] === 'A' ? 'B' : 'A') + ch.nonce.slice(1);
    const res = await h.send(register({
      contacts: ['<sip:alice@198.51.100.7>'], cseq: 2, authorization: [answer(first, ALICE, { nonce: forged })],
    }));
    assert.equal(res.status, 401);
    for (const v of res.getAll('www-authenticate')) assert.notEqual(parseChallenge(v).stale, true);
    assert.equal(h.registrar.lookup(AOR).length, 0);
  });
});

describe('REGISTER validation (RFC 3261 §10.3 steps 1, 2, 5)', () => {
  it('a Request-URI for a domain not served here is answered 404', async () => {
    const h = new Harness();
    const res = await h.send(register({ ruri: 'sip:elsewhere.net', contacts: ['<sip:alice@198.51.100.7>'] }));
    assert.equal(res.status, 404);
  });

  it('domains compare case-insensitively', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({
      ruri: 'sip:EXAMPLE.com', to: '<sip:alice@Example.COM>', contacts: ['<sip:alice@198.51.100.7>'],
    });
    assert.equal(res.status, 200);
    assert.equal(h.registrar.lookup(AOR).length, 1);
  });

  it('an AoR in a domain not served here is answered 404', async () => {
    const h = new Harness();
    const res = await h.send(register({ to: '<sip:alice@elsewhere.net>', contacts: ['<sip:alice@198.51.100.7>'] }));
    assert.equal(res.status, 404);
  });

  it('an AoR that is not a SIP or SIPS URI is answered 400 (RFC 4475 §3.3.4)', async () => {
    const h = new Harness();
    const res = await h.send(register({ to: '<tel:+15551234567>', contacts: ['<sip:alice@198.51.100.7>'] }));
    assert.equal(res.status, 400);
  });

  it('a Require option the registrar does not support is answered 420 with Unsupported', async () => {
    const h = new Harness();
    const res = await h.send(register({ extra: ['Require: gruu, path'] }));
    assert.equal(res.status, 420);
    assert.equal(res.get('unsupported'), 'gruu');
  });
});

describe('Contact processing (RFC 3261 §10.3 steps 6-8)', () => {
  it('Contact "*" with Expires: 0 removes every binding of the AoR', async () => {
    const h = new Harness();
    await h.registerAuthenticated({ callId: 'a', contacts: ['<sip:alice@198.51.100.7>', '<sip:alice@198.51.100.8>'] });
    assert.equal(h.registrar.lookup(AOR).length, 2);
    const res = await h.registerAuthenticated({ callId: 'b', contacts: ['*'], expires: 0 });
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res), []);
    assert.equal(h.registrar.lookup(AOR).length, 0);
  });

  it('Contact "*" with a non-zero Expires is answered 400', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ contacts: ['*'], expires: 60 });
    assert.equal(res.status, 400);
  });

  it('Contact "*" without Expires is answered 400', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ contacts: ['*'] });
    assert.equal(res.status, 400);
  });

  it('Contact "*" with another Contact is answered 400', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ contacts: ['*', '<sip:alice@198.51.100.7>'], expires: 0 });
    assert.equal(res.status, 400);
  });

  it('Contact "*" with the same Call-ID and a CSeq not higher than a binding\'s changes nothing', async () => {
    const h = new Harness();
    await h.registerAuthenticated({ callId: 'same', cseq: 10, contacts: ['<sip:alice@198.51.100.7>'] });
    const res = await h.registerAuthenticated({ callId: 'same', cseq: 5, contacts: ['*'], expires: 0 });
    assert.equal(res.status, 500);
    assert.equal(h.registrar.lookup(AOR).length, 1);
  });

  it('a non-zero expiry below Min-Expires is answered 423 with Min-Expires', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ contacts: ['<sip:alice@198.51.100.7>'], expires: 30 });
    assert.equal(res.status, 423);
    assert.equal(res.reason, 'Interval Too Brief');
    assert.equal(res.get('min-expires'), '60');
    assert.equal(h.registrar.lookup(AOR).length, 0);
  });

  it('the Contact expires parameter wins over the Expires header', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ contacts: ['<sip:alice@198.51.100.7>;expires=120'], expires: 30 });
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res), ['<sip:alice@198.51.100.7>;expires=120']);
  });

  it('an expiry above maxExpires is shortened to it', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({ contacts: ['<sip:alice@198.51.100.7>'], expires: 86_400 });
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res), ['<sip:alice@198.51.100.7>;expires=3600']);
    assert.equal(h.registrar.lookup(AOR)[0]!.expiresAt, h.clock.now + 3_600_000);
  });

  it('an expiry of 0 removes that binding only', async () => {
    const h = new Harness();
    await h.registerAuthenticated({ callId: 'x', contacts: ['<sip:alice@198.51.100.7>', '<sip:alice@198.51.100.8>'] });
    const res = await h.registerAuthenticated({ callId: 'x', cseq: 3, contacts: ['<sip:alice@198.51.100.7>;expires=0'] });
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res), ['<sip:alice@198.51.100.8>;expires=600']);
  });

  it('with the same Call-ID, a CSeq not higher than the binding\'s aborts the request (500) and changes nothing', async () => {
    const h = new Harness();
    await h.registerAuthenticated({ callId: 'c', cseq: 20, contacts: ['<sip:alice@198.51.100.7>'] });
    const res = await h.registerAuthenticated({ callId: 'c', cseq: 10, contacts: ['<sip:alice@198.51.100.7>;expires=0', '<sip:alice@198.51.100.9>'] });
    assert.equal(res.status, 500);
    const bindings = h.registrar.lookup(AOR);
    assert.deepEqual(bindings.map((b) => b.contactUri), ['sip:alice@198.51.100.7']);
    assert.equal(bindings[0]!.cseq, 21);
  });

  it('a different Call-ID updates the binding whatever its CSeq', async () => {
    const h = new Harness();
    await h.registerAuthenticated({ callId: 'c1', cseq: 20, contacts: ['<sip:alice@198.51.100.7>'] });
    const res = await h.registerAuthenticated({ callId: 'c2', cseq: 1, contacts: ['<sip:alice@198.51.100.7>'], expires: 300 });
    assert.equal(res.status, 200);
    const bindings = h.registrar.lookup(AOR);
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0]!.callId, 'c2');
  });

  it('contact URIs equal under §19.1.4 are one binding', async () => {
    const h = new Harness();
    await h.registerAuthenticated({ callId: 'e', contacts: ['<sip:alice@HOST.example.net;transport=tcp>'] });
    await h.registerAuthenticated({ callId: 'e', cseq: 5, contacts: ['<sip:%61lice@host.example.net;transport=TCP>'] });
    assert.equal(h.registrar.lookup(AOR).length, 1);
  });

  it('several contacts of one AoR are returned highest q first, then most recent', async () => {
    const h = new Harness();
    await h.registerAuthenticated({ callId: 'q', contacts: ['<sip:alice@198.51.100.1>;q=0.1'] });
    h.clock.advance(1000);
    await h.registerAuthenticated({ callId: 'q', cseq: 3, contacts: ['<sip:alice@198.51.100.2>;q=0.9'] });
    h.clock.advance(1000);
    await h.registerAuthenticated({ callId: 'q', cseq: 5, contacts: ['<sip:alice@198.51.100.3>;q=0.5'] });
    h.clock.advance(1000);
    const res = await h.registerAuthenticated({ callId: 'q', cseq: 7, contacts: ['<sip:alice@198.51.100.4>;q=0.5'] });
    assert.deepEqual(h.registrar.lookup(AOR).map((b) => b.contactUri), [
      'sip:alice@198.51.100.2', 'sip:alice@198.51.100.4', 'sip:alice@198.51.100.3', 'sip:alice@198.51.100.1',
    ]);
    const listed = contactsOf(res);
    assert.equal(listed.length, 4);
    assert.equal(contactNamed(listed, 'sip:alice@198.51.100.1').expires, 597);
    assert.equal(contactNamed(listed, 'sip:alice@198.51.100.4').expires, 600);
  });

  it('a REGISTER without Contact lists the current bindings and changes nothing', async () => {
    const h = new Harness();
    await h.registerAuthenticated({ contacts: ['<sip:alice@198.51.100.7>'] });
    h.clock.advance(100_000);
    const res = await h.registerAuthenticated({ callId: 'query' });
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res), ['<sip:alice@198.51.100.7>;expires=500']);
  });

  it('the Path values are stored with the binding and copied into the 200 (RFC 3327 §5.3)', async () => {
    const h = new Harness();
    const res = await h.registerAuthenticated({
      contacts: ['<sip:alice@198.51.100.7>'],
      extra: ['Path: <sip:edge1.example.com;lr>', 'Path: <sip:edge2.example.com;lr>', 'Supported: path'],
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('path'), ['<sip:edge1.example.com;lr>', '<sip:edge2.example.com;lr>']);
    assert.deepEqual(h.registrar.lookup(AOR)[0]!.path, ['<sip:edge1.example.com;lr>', '<sip:edge2.example.com;lr>']);
  });

  it('the binding keeps the flow, the source address and the User-Agent of the REGISTER', async () => {
    const h = new Harness();
    const via = flow('wss', 50312, '203.0.113.40');
    await h.registerAuthenticated({ via, transport: 'WSS', contacts: ['<sip:k3l2@df7jal23ls0d.invalid;transport=ws>'], extra: ['User-Agent: SIP.js/0.21.2'] });
    const b = h.registrar.lookup(AOR)[0]!;
    assert.equal(b.flow?.id, via.id);
    assert.deepEqual(b.received, { protocol: 'wss', address: '203.0.113.40', port: 50312 });
    assert.equal(b.userAgent, 'SIP.js/0.21.2');
    assert.equal(h.registrar.lookupByContact('sip:k3l2@df7jal23ls0d.invalid;transport=ws'), b);
  });
});

describe('reconnecting softphones (RFC 5626, call flow 6)', () => {
  const WS_CONTACT = '<sip:k3l2@df7jal23ls0d.invalid;transport=ws>';

  it('a re-REGISTER for an existing binding from a new flow moves the binding to that flow', async () => {
    const h = new Harness();
    const old = flow('wss', 50000, '203.0.113.40');
    const fresh = flow('wss', 50001, '203.0.113.40');
    await h.registerAuthenticated({ via: old, callId: 'before', contacts: [WS_CONTACT] });
    // SIP.js registers again with a new Call-ID after its WebSocket reconnects.
    await h.registerAuthenticated({ via: fresh, callId: 'after', contacts: [WS_CONTACT] });
    const bindings = h.registrar.lookup(AOR);
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0]!.flow?.id, fresh.id);
    // The old connection's close, noticed late, must not take the moved binding with it.
    assert.equal(h.registrar.onFlowClosed(old), 0);
    assert.equal(h.registrar.lookup(AOR).length, 1);
  });

  it('a binding with +sip.instance and reg-id is found by them, even under a new contact URI', async () => {
    const h = new Harness();
    const inst = ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1';
    const a = flow('wss', 50000, '203.0.113.40');
    const b = flow('wss', 50001, '203.0.113.40');
    await h.registerAuthenticated({ via: a, callId: 'i1', contacts: [`<sip:one@a.invalid;transport=ws>${inst}`] });
    await h.registerAuthenticated({ via: b, callId: 'i2', contacts: [`<sip:two@b.invalid;transport=ws>${inst}`] });
    const bindings = h.registrar.lookup(AOR);
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0]!.contactUri, 'sip:two@b.invalid;transport=ws');
    assert.equal(bindings[0]!.instanceId, '<urn:uuid:00000000-0000-1000-8000-000A95A0E128>');
    assert.equal(bindings[0]!.regId, 1);
    assert.equal(bindings[0]!.flow?.id, b.id);
  });

  it('when a WebSocket flow closes, the bindings registered over it are dropped', async () => {
    const h = new Harness();
    const ws = flow('wss', 50000, '203.0.113.40');
    await h.registerAuthenticated({ via: ws, contacts: [WS_CONTACT] });
    await h.registerAuthenticated({ via: flow('udp', 5060, '198.51.100.7'), callId: 'udp', contacts: ['<sip:alice@198.51.100.7>'] });
    h.stack.onFlowClosed(ws, 'closed');
    assert.deepEqual(h.registrar.lookup(AOR).map((b) => b.contactUri), ['sip:alice@198.51.100.7']);
  });
});

describe('registrar lifecycle and persistence', () => {
  it('bindings are written through to the persistence and removed from it', async () => {
    const persistence = new MemoryPersistence();
    const h = new Harness({ persistence });
    await h.registrar.start();
    await h.registerAuthenticated({ callId: 'p', contacts: ['<sip:alice@198.51.100.7>;q=0.5'], extra: ['Path: <sip:edge.example.com;lr>'] });
    await h.registrar.locations.flush();
    const row = persistence.rows.get(`${AOR} sip:alice@198.51.100.7`);
    assert.ok(row);
    assert.equal(row.q, 0.5);
    assert.equal(row.path, '<sip:edge.example.com;lr>');
    assert.match(row.received, /^udp:198\.51\.100\.7:5060$/);
    await h.registerAuthenticated({ callId: 'p', cseq: 5, contacts: ['*'], expires: 0 });
    await h.registrar.stop();
    assert.equal(persistence.rows.size, 0);
  });

  it('aorOf gives sip:user@domain with the domain lower-cased and escapes made canonical', () => {
    assert.equal(aorOf(parseSipUri('sips:alice@Example.COM:5061;transport=tls')), 'sip:alice@example.com');
    assert.equal(aorOf(parseSipUri('sip:%61lice@example.com')), 'sip:alice@example.com');
    assert.equal(aorOf(parseSipUri('sip:a%20b@example.com')), 'sip:a%20b@example.com');
    assert.equal(aorOf(parseSipUri('sip:+1555;phone-context=x@example.com;user=phone')), 'sip:+1555;phone-context=x@example.com');
  });
});
