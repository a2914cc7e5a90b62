import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SipParseError, SipRequest, SipResponse, SipUri, parseMessage, serializeMessage } from '../../../src/sip/index.js';
import { loadTortureCases } from '../../helpers/rfc4475.js';

const cases = loadTortureCases();
const byName = new Map(cases.map((c) => [c.name, c]));

/** Syntactically invalid messages (RFC 4475 §3.1.2) the parser refuses, rather than accepting liberally. */
const REJECTED = new Set([
  'badinv01', 'clerr', 'ncl', 'scalar02', 'scalarlg', 'quotbal', 'ltgtruri', 'lwsruri', 'lwsstart', 'trws',
  'escruri', 'baddate', 'regbadct', 'badaspec', 'baddn', 'bigcode',
]);

function parse(name: string): SipRequest | SipResponse {
  const c = byName.get(name);
  assert.ok(c, `${name}.dat is in the conformance set`);
  return parseMessage(c.data);
}

describe('RFC 4475 torture messages: the parser', () => {
  it('has all 49 messages, each matching SHA256SUMS', () => {
    assert.equal(cases.length, 49);
  });

  for (const c of cases) {
    if (REJECTED.has(c.name)) {
      it(`rejects ${c.file} (§${c.section} ${c.title}) with a SipParseError`, () => {
        assert.throws(() => parseMessage(c.data), (err: unknown) => {
          assert.ok(err instanceof SipParseError, `expected SipParseError, got ${String(err)}`);
          assert.ok(!err.message.startsWith('internal'), err.message);
          return true;
        });
      });
    } else {
      it(`accepts ${c.file} (§${c.section} ${c.title}, ${c.category}) and serialises it byte for byte`, () => {
        const msg = parseMessage(c.data);
        assert.equal(msg instanceof SipRequest, c.data.subarray(0, 4).toString('latin1') !== 'SIP/');
        const out = serializeMessage(msg);
        // dblreq and mcl01 carry octets after (the first) Content-Length that are not part of the message (§18.3)
        const expected = c.name === 'dblreq' || c.name === 'mcl01' ? c.data.subarray(0, out.length) : c.data;
        assert.ok(out.equals(expected), `${c.file} round-trips`);
      });
    }
  }

  it('counts 13 valid, 16 rejected, 3 parsed-then-refused and 17 application-layer messages', () => {
    const accepted = cases.filter((c) => !REJECTED.has(c.name));
    assert.equal(REJECTED.size, 16);
    assert.equal(accepted.length, 33);
  });
});

describe('RFC 4475 §3.1.1 valid messages: what the parser makes of them', () => {
  it('wsinv: reads folded, oddly spaced and compact headers with leading zeros (§3.1.1.1)', () => {
    const m = parse('wsinv') as SipRequest;
    assert.equal(m.method, 'INVITE');
    assert.equal(m.maxForwards, 68);
    assert.deepEqual(m.cseq, { seq: 9, method: 'INVITE' });
    assert.equal(m.to?.tag, '1918181833n');
    assert.equal(m.from?.tag, '98asjd8');
    assert.equal(m.from?.displayName, 'J Rosenberg \\"');
    assert.equal(m.via.length, 3);
    assert.equal(m.via[0]!.transport, 'UDP');
    assert.equal(m.via[0]!.host, '192.0.2.2');
    assert.equal(m.via[0]!.branch, '390skdjuw');
    assert.equal(m.via[1]!.transport, 'TCP');
    assert.equal(m.via[1]!.host, 'spindle.example.com');
    assert.equal(m.via[1]!.branch, 'z9hG4bK9ikj8');
    assert.equal(m.via[2]!.branch, 'z9hG4bK30239');
    assert.equal(m.get('NewFangledHeader'), 'newfangled value  continued newfangled value');
    assert.equal(m.get('UnknownHeaderWithUnusualValue'), ';;,,;;,;');
    assert.equal(m.get('subject'), '');
    assert.equal(m.contact.length, 1);
    assert.equal(m.contact[0]!.displayName, 'Quoted string ""');
    assert.equal(m.contact[0]!.q, 0.33);
    assert.equal(m.contact[0]!.params.get('newparam'), 'newvalue');
    assert.equal(m.route.length, 1);
    assert.ok((m.route[0]!.uri as SipUri).lr);
    assert.equal(m.body.length, 150);
  });

  it('intmeth: accepts an extension method and the widest legal character ranges (§3.1.1.2)', () => {
    const m = parse('intmeth') as SipRequest;
    assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
    assert.equal(m.cseq?.method, m.method);
    const ruri = m.ruri as SipUri;
    assert.equal(ruri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert.equal(ruri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert.equal(m.from?.tag, "_token~1'+`*%!-.");
    assert.equal(m.callId, 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
  });

  it('escnull: keeps %00 in the user part without shortening it (§3.1.1.4)', () => {
    const m = parse('escnull') as SipRequest;
    assert.equal(m.contact.length, 2);
    assert.equal((m.contact[1]!.uri as SipUri).userUnescaped, '\x00\x00');
    assert.equal((m.to!.uri as SipUri).userUnescaped, 'null-\x00-null');
  });

  it('esc02: an escaped method name is an unknown method, not REGISTER (§3.1.1.5)', () => {
    const m = parse('esc02') as SipRequest;
    assert.equal(m.method, 'RE%47IST%45R');
    assert.equal(m.count('contact'), 2, 'C%6Fntact is another header, not Contact');
    assert.equal(m.get('C%6Fntact'), '<sip:alias2@host2.example.com>');
  });

  it('lwsdisp: accepts no LWS between display name and "<" (§3.1.1.6)', () => {
    assert.equal(parse('lwsdisp').from?.displayName, 'caller');
  });

  it('longreq: keeps every long header value untruncated (§3.1.1.7)', () => {
    const m = parse('longreq');
    assert.ok(m.via.length >= 28, `${m.via.length} Via values`);
    assert.ok(m.contact.length >= 1);
    assert.ok(m.headers.some((h) => h.name.length > 90));
  });

  it('dblreq: ignores the octets after Content-Length in a datagram (§3.1.1.8)', () => {
    const m = parse('dblreq') as SipRequest;
    assert.equal(m.method, 'REGISTER');
    assert.equal(m.body.length, 0);
  });

  it('semiuri: parameters before "@" belong to the user part (§3.1.1.9)', () => {
    const ruri = (parse('semiuri') as SipRequest).ruri as SipUri;
    assert.equal(ruri.user, 'user;par=u%40example.net');
    assert.equal(ruri.host, 'example.com');
    assert.equal(ruri.params.size, 0);
  });

  it('transports: accepts UDP, SCTP, TLS, UNKNOWN and TCP transports in Via (§3.1.1.10)', () => {
    assert.deepEqual(parse('transports').via.map((v) => v.transport), ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
  });

  it('mpart01: frames a binary multipart body by Content-Length (§3.1.1.11)', () => {
    const m = parse('mpart01');
    assert.equal(m.body.length, m.contentLength);
    assert.ok(m.body.includes(0x0d));
  });

  it('unreason: keeps a UTF-8 reason phrase (§3.1.1.12)', () => {
    const m = parse('unreason') as SipResponse;
    assert.equal(m.status, 200);
    assert.ok(Buffer.from(m.reason, 'latin1').toString('utf8').startsWith('= 2**3 * 5**2 но'));
  });

  it('noreason: accepts an empty reason phrase (§3.1.1.13)', () => {
    const m = parse('noreason') as SipResponse;
    assert.equal(m.status, 100);
    assert.equal(m.reason, '');
  });
});

describe('RFC 4475 §3.1.2-3.4: messages the layers above must judge', () => {
  it('badvers parses with its SIP/7.0 version so the element can answer 505 (§3.1.2.16)', () => {
    assert.equal((parse('badvers') as SipRequest).version, 'SIP/7.0');
  });

  it('mismatch01 parses with a CSeq method unlike the request method (§3.1.2.17)', () => {
    const m = parse('mismatch01') as SipRequest;
    assert.notEqual(m.method, m.cseq?.method);
  });

  it('insuf parses without Call-ID, From and To (§3.3.1)', () => {
    const m = parse('insuf');
    assert.equal(m.callId, undefined);
    assert.equal(m.from, undefined);
    assert.equal(m.to, undefined);
  });

  it('multi01 parses and exposes how many single-value fields it repeats (§3.3.8)', () => {
    const m = parse('multi01');
    assert.equal(m.count('call-id'), 2);
    assert.equal(m.count('cseq'), 2);
    assert.equal(m.count('to'), 2);
  });

  it('mcl01 parses and exposes its two Content-Length fields (§3.3.9)', () => {
    assert.equal(parse('mcl01').count('content-length'), 2);
  });

  it('unksm2 parses URIs of unknown schemes in To, From and Contact (§3.3.4)', () => {
    const m = parse('unksm2');
    assert.equal(m.to?.uri.scheme, 'isbn');
    assert.equal(m.contact[0]!.uri.scheme, 'name');
  });

  it('cparam01: a parameter after an addr-spec Contact is a header parameter, not a URI parameter (§3.3.12)', () => {
    const c = parse('cparam01').contact[0]!;
    assert.ok(c.params.has('unknownparam'));
    assert.equal((c.uri as SipUri).params.has('unknownparam'), false);
  });

  it('cparam02: a parameter inside "<>" is a URI parameter (§3.3.13)', () => {
    const c = parse('cparam02').contact[0]!;
    assert.ok((c.uri as SipUri).params.has('unknownparam'));
  });

  it('regescrt: keeps the escaped Route header in the Contact URI (§3.3.14)', () => {
    const c = parse('regescrt').contact[0]!;
    assert.deepEqual((c.uri as SipUri).headers, [['Route', '%3Csip:sip.example.com%3E']]);
  });

  it('zeromf parses Max-Forwards: 0 (§3.3.11)', () => {
    assert.equal(parse('zeromf').maxForwards, 0);
  });

  it('bcast parses a response whose second Via names a broadcast address (§3.3.10)', () => {
    assert.equal(parse('bcast').via[1]?.host, '255.255.255.255');
  });

  it('inv2543: without Content-Length the body is the rest of the datagram (§3.4.1)', () => {
    const m = parse('inv2543');
    assert.ok(m.body.length > 0);
    assert.equal(m.topVia?.branch, undefined);
    assert.equal(m.maxForwards, undefined);
  });
});
