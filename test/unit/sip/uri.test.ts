import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SipParseError } from '../../../src/sip/errors.js';
import {
  AbsoluteUri, SipUri, TelUri, type Uri, type UriParamValue,
  escapeUriUser, isIpv4, isIpv6Reference, parseSipUri, parseUri, unescapeUriPart, uriEquals,
} from '../../../src/sip/uri.js';

interface SipExpect {
  scheme?: 'sip' | 'sips';
  user?: string | undefined;
  password?: string | undefined;
  host: string;
  port?: number | undefined;
  params?: Array<[string, UriParamValue]>;
  headers?: Array<[string, string]>;
}

function sip(text: string): SipUri {
  const uri = parseUri(text);
  assert.ok(uri instanceof SipUri, `${text} is a SipUri`);
  return uri;
}

function expectSip(text: string, e: SipExpect): SipUri {
  const u = sip(text);
  assert.equal(u.scheme, e.scheme ?? 'sip');
  assert.equal(u.user, e.user);
  assert.equal(u.password, e.password);
  assert.equal(u.host, e.host);
  assert.equal(u.port, e.port);
  assert.deepEqual([...u.params], e.params ?? []);
  assert.deepEqual(u.headers, e.headers ?? []);
  return u;
}

function throwsUri(text: string): void {
  assert.throws(() => parseUri(text), (err: unknown) => {
    assert.ok(err instanceof SipParseError, `${JSON.stringify(text)}: expected SipParseError, got ${String(err)}`);
    assert.equal(err.code, 'SIP_ERR_URI');
    return true;
  }, `${JSON.stringify(text)} must be refused`);
}

function eq(a: string, b: string): boolean {
  const ua = parseUri(a);
  const ub = parseUri(b);
  const r = uriEquals(ua, ub);
  assert.equal(uriEquals(ub, ua), r, `uriEquals is symmetric for ${a} / ${b}`);
  return r;
}

const LONG_NAME = 'amazinglylongcallername'.repeat(5);

/**
 * Every SIP URI in the RFC 4475 messages (Request-URIs, To, From, Contact, Route, Record-Route),
 * with the files that carry it and what it must parse into.
 */
const TORTURE_SIP_URIS: Array<[string, string, SipExpect]> = [
  ['sip:vivekg@chair-dnrc.example.com;unknownparam', 'wsinv', { user: 'vivekg', host: 'chair-dnrc.example.com', params: [['unknownparam', null]] }],
  ['sip:vivekg@chair-dnrc.example.com', 'wsinv', { user: 'vivekg', host: 'chair-dnrc.example.com' }],
  ['sip:jdrosen@example.com', 'wsinv', { user: 'jdrosen', host: 'example.com' }],
  ['sip:services.example.com;lr;unknownwith=value;unknown-no-value', 'wsinv', {
    host: 'services.example.com', params: [['lr', null], ['unknownwith', 'value'], ['unknown-no-value', null]],
  }],
  ["sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com", 'intmeth', {
    user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*", password: "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)", host: 'example.com',
  }],
  ["sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com", 'intmeth', {
    user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*", host: 'example.com',
  }],
  ['sip:mundane@example.com', 'intmeth', { user: 'mundane', host: 'example.com' }],
  ['sip:sips%3Auser%40example.com@example.net', 'esc01', { user: 'sips%3Auser%40example.com', host: 'example.net' }],
  ['sip:%75se%72@example.com', 'esc01', { user: '%75se%72', host: 'example.com' }],
  ['sip:I%20have%20spaces@example.net', 'esc01', { user: 'I%20have%20spaces', host: 'example.net' }],
  ['sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31', 'esc01', {
    user: 'cal%6Cer', host: 'host5.example.net', params: [['%6c%72', null], ['n%61me', 'v%61lue%25%34%31']],
  }],
  ['sip:null-%00-null@example.com', 'escnull', { user: 'null-%00-null', host: 'example.com' }],
  ['sip:%00@host5.example.com', 'escnull', { user: '%00', host: 'host5.example.com' }],
  ['sip:%00%00@host5.example.com', 'escnull', { user: '%00%00', host: 'host5.example.com' }],
  ['sip:registrar.example.com', 'esc02', { host: 'registrar.example.com' }],
  ['sip:resource@example.com', 'esc02', { user: 'resource', host: 'example.com' }],
  ['sip:alias1@host1.example.com', 'esc02', { user: 'alias1', host: 'host1.example.com' }],
  ['sip:alias2@host2.example.com', 'esc02', { user: 'alias2', host: 'host2.example.com' }],
  ['sip:alias3@host3.example.com', 'esc02', { user: 'alias3', host: 'host3.example.com' }],
  ['sip:caller@example.com', 'lwsdisp, multi01, transports', { user: 'caller', host: 'example.com' }],
  ['sip:user@example.com:6000;unknownparam1=very' + 'long'.repeat(20) + 'value;longparam' + 'name'.repeat(25) + '=shortvalue;very' + 'long'.repeat(25) + 'ParameterNameWithNoValue', 'longreq', {
    user: 'user', host: 'example.com', port: 6000, params: [
      ['unknownparam1', 'very' + 'long'.repeat(20) + 'value'],
      ['longparam' + 'name'.repeat(25), 'shortvalue'],
      ['very' + 'long'.repeat(25) + 'parameternamewithnovalue', null],
    ],
  }],
  [`sip:${LONG_NAME}@example.net`, 'longreq', { user: LONG_NAME, host: 'example.net' }],
  [`sip:${LONG_NAME}@host5.example.net`, 'longreq', { user: LONG_NAME, host: 'host5.example.net' }],
  ['sip:example.com', 'dblreq, cparam01, cparam02, escnull, regaut01, regbadct, regescrt, scalar02, unksm2', { host: 'example.com' }],
  ['sip:j.user@example.com', 'dblreq, badinv01, clerr, invut, mismatch01, mismatch02, ncl, quotbal, regaut01', { user: 'j.user', host: 'example.com' }],
  ['sip:j.user@host.example.com', 'dblreq', { user: 'j.user', host: 'host.example.com' }],
  ['sip:joe@example.com', 'dblreq (trailing INVITE)', { user: 'joe', host: 'example.com' }],
  ['sip:user;par=u%40example.net@example.com', 'semiuri', { user: 'user;par=u%40example.net', host: 'example.com' }],
  ['sip:j_user@example.com', 'semiuri, bext01, sdp01', { user: 'j_user', host: 'example.com' }],
  ['sip:caller@example.org', 'semiuri, badbranch', { user: 'caller', host: 'example.org' }],
  ['sip:user@example.com', 'transports and most others', { user: 'user', host: 'example.com' }],
  ['sip:kumiko@example.org', 'mpart01', { user: 'kumiko', host: 'example.org' }],
  ['sip:127.0.0.1:5080', 'mpart01', { host: '127.0.0.1', port: 5080 }],
  ['sip:fluffy@127.0.0.1:5070', 'mpart01', { user: 'fluffy', host: '127.0.0.1', port: 5070 }],
  ['sip:fluffy@example.com', 'mpart01', { user: 'fluffy', host: 'example.com' }],
  ['sip:user@example.edu', 'unreason, noreason, bcast, bigcode', { user: 'user', host: 'example.edu' }],
  ['sip:user@host198.example.com', 'unreason', { user: 'user', host: 'host198.example.com' }],
  ['sip:user@host105.example.com', 'noreason, bigcode', { user: 'user', host: 'host105.example.com' }],
  ['sip:caller@example.net', 'badinv01, clerr, ncl and others', { user: 'caller', host: 'example.net' }],
  ['sip:joe@example.org', 'badinv01', { user: 'joe', host: 'example.org' }],
  ['sip:caller@hungry.example.net', 'clerr', { user: 'caller', host: 'hungry.example.net' }],
  ['sip:caller@example53.example.net', 'ncl', { user: 'caller', host: 'example53.example.net' }],
  ['sip:caller@host59.example.net', 'quotbal', { user: 'caller', host: 'host59.example.net' }],
  ['sip:caller@host5.example.net', 'ltgtruri, baddate, invut', { user: 'caller', host: 'host5.example.net' }],
  ['sip:caller@host1.example.net', 'lwsruri, lwsstart', { user: 'caller', host: 'host1.example.net' }],
  ['sip:remote-target@example.com', 'trws', { user: 'remote-target', host: 'example.com' }],
  ['sip:local-resource@example.com', 'trws', { user: 'local-resource', host: 'example.com' }],
  ['sip:user@example.com?Route=%3Csip:example.com%3E', 'escruri', { user: 'user', host: 'example.com', headers: [['Route', '%3Csip:example.com%3E']] }],
  ['sip:caller@host39923.example.net', 'escruri', { user: 'caller', host: 'host39923.example.net' }],
  ['sip:user@example.com?Route=%3Csip:sip.example.com%3E', 'regbadct, regescrt', { user: 'user', host: 'example.com', headers: [['Route', '%3Csip:sip.example.com%3E']] }],
  ['sip:user@example.org', 'badaspec', { user: 'user', host: 'example.org' }],
  ['sip:a.g.bell@example.com', 'badaspec, baddn, badvers', { user: 'a.g.bell', host: 'example.com' }],
  ['sip:t.watson@example.org', 'badaspec, baddn, badvers', { user: 't.watson', host: 'example.org' }],
  ['sip:other@example.net', 'mcl01, multi01, scalarlg', { user: 'other', host: 'example.net' }],
  ['sip:caller@host.example.net', 'mismatch02', { user: 'caller', host: 'host.example.net' }],
  ['sip:user@host129.example.com', 'scalar02', { user: 'user', host: 'host129.example.com' }],
  ['sip:user@company.com', 'multi01', { user: 'user', host: 'company.com' }],
  ['sip:caller@host25.example.net', 'multi01', { user: 'caller', host: 'host25.example.net' }],
  ['sip:caller@host36.example.net', 'multi01', { user: 'caller', host: 'host36.example.net' }],
  ['sip:user@host28.example.com', 'bcast', { user: 'user', host: 'host28.example.com' }],
  ['sip:watson@example.com', 'cparam01, cparam02', { user: 'watson', host: 'example.com' }],
  ['sip:+19725552222@gw1.example.net', 'cparam01', { user: '+19725552222', host: 'gw1.example.net' }],
  ['sip:+19725552222@gw1.example.net;unknownparam', 'cparam02', { user: '+19725552222', host: 'gw1.example.net', params: [['unknownparam', null]] }],
  ['sip:caller@host15.example.net', 'sdp01', { user: 'caller', host: 'host15.example.net' }],
  ['sip:UserB@example.com', 'inv2543', { user: 'UserB', host: 'example.com' }],
  ['sip:+13035551111@ift.client.example.net;user=phone', 'inv2543', { user: '+13035551111', host: 'ift.client.example.net', params: [['user', 'phone']] }],
  ['sip:UserB@example.com;maddr=ss1.example.com', 'inv2543', { user: 'UserB', host: 'example.com', params: [['maddr', 'ss1.example.com']] }],
  ['sip:+16505552222@ss1.example.net;user=phone', 'inv2543', { user: '+16505552222', host: 'ss1.example.net', params: [['user', 'phone']] }],
];

/** The torture URIs whose serialisation differs from the input: only in the case of parameter names. */
const SERIALISED_AS = new Map([
  ['sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31', 'sip:cal%6Cer@host5.example.net;%6c%72;n%61me=v%61lue%25%34%31'],
  [TORTURE_SIP_URIS.find(([, f]) => f === 'longreq')![0], TORTURE_SIP_URIS.find(([, f]) => f === 'longreq')![0].replace('ParameterNameWithNoValue', 'parameternamewithnovalue')],
]);

describe('parseUri: every URI of the RFC 4475 torture messages', () => {
  for (const [text, files, e] of TORTURE_SIP_URIS) {
    it(`parses ${text.length > 70 ? text.slice(0, 67) + '...' : text} (${files})`, () => {
      const u = expectSip(text, e);
      // Parameter names are keyed lower-case, so mixed-case names (longreq, esc01) come out lower-case.
      assert.equal(u.toString(), SERIALISED_AS.get(text) ?? text);
    });
  }

  it('reads a user with every unusual legal character, and a password after the first ":" (RFC 4475 §3.1.1.2)', () => {
    const u = sip("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
    assert.equal(u.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert.equal(u.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert.equal(u.params.size, 0);
    assert.equal(u.headers.length, 0);
  });

  it('keeps escapes as written and names an escaped parameter as written, so ;%6C%72 is not lr (RFC 4475 §3.1.1.3)', () => {
    const u = sip('sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31');
    assert.equal(u.user, 'cal%6Cer');
    assert.equal(u.userUnescaped, 'caller');
    assert.equal(u.lr, false);
    assert.equal(u.getParam('%6C%72'), null);
    assert.equal(u.getParam('n%61me'), 'v%61lue%25%34%31');
    assert.equal(sip('sip:sips%3Auser%40example.com@example.net').userUnescaped, 'sips:user@example.com');
    assert.equal(sip('sip:I%20have%20spaces@example.net').userUnescaped, 'I have spaces');
  });

  it('unescapes %00 to a NUL octet without shortening the user (RFC 4475 §3.1.1.4)', () => {
    assert.equal(sip('sip:null-%00-null@example.com').userUnescaped, 'null-\x00-null');
    assert.equal(sip('sip:%00@host5.example.com').userUnescaped, '\x00');
    assert.equal(sip('sip:%00%00@host5.example.com').userUnescaped, '\x00\x00');
  });

  it('gives parameters before "@" to the user part (RFC 4475 §3.1.1.9)', () => {
    const u = sip('sip:user;par=u%40example.net@example.com');
    assert.equal(u.user, 'user;par=u%40example.net');
    assert.equal(u.host, 'example.com');
    assert.equal(u.params.size, 0);
  });

  it('parses a URI of an unknown scheme as an opaque absolute URI (RFC 4475 §3.3.2)', () => {
    const u = parseUri('nobodyKnowsThisScheme:totallyopaquecontent');
    assert.ok(u instanceof AbsoluteUri);
    assert.equal(u.scheme, 'nobodyknowsthisscheme');
    assert.equal(u.opaque, 'totallyopaquecontent');
  });

  it('parses a known but atypical scheme with "//" as an absolute URI (RFC 4475 §3.3.3)', () => {
    const u = parseUri('soap.beep://192.0.2.103:3002');
    assert.ok(u instanceof AbsoluteUri);
    assert.equal(u.scheme, 'soap.beep');
    assert.equal(u.opaque, '//192.0.2.103:3002');
    assert.equal(u.toString(), 'soap.beep://192.0.2.103:3002');
  });

  it('parses unknown schemes in To, From and Contact (RFC 4475 §3.3.4)', () => {
    for (const [text, scheme, opaque] of [
      ['isbn:2983792873', 'isbn', '2983792873'],
      ['http://www.example.com', 'http', '//www.example.com'],
      ['name:John_Smith', 'name', 'John_Smith'],
    ] as const) {
      const u = parseUri(text);
      assert.ok(u instanceof AbsoluteUri, text);
      assert.equal(u.scheme, scheme);
      assert.equal(u.opaque, opaque);
      assert.equal(u.toString(), text);
    }
  });

  it('refuses a Request-URI with embedded LWS: "sip:user@example.com; lr" (RFC 4475 §3.1.2.8)', () => {
    throwsUri('sip:user@example.com; lr');
  });

  it('refuses a URI still enclosed in "<>" (RFC 4475 §3.1.2.7)', () => {
    throwsUri('<sip:user@example.com>');
  });

  it('refuses spaces around an addr-spec, which the caller did not strip (RFC 4475 §3.1.2.14)', () => {
    throwsUri(' sip:t.watson@example.org ');
    throwsUri(' sip:user@example.com ');
    throwsUri('sip:remote-target@example.com ');
  });
});

describe('parseUri: SIP and SIPS URIs (RFC 3261 §19.1.1)', () => {
  it('reads the RFC 3261 §19.1.3 examples', () => {
    expectSip('sip:alice@atlanta.com', { user: 'alice', host: 'atlanta.com' });
    expectSip('sip:alice:secretword@atlanta.com;transport=tcp', { user: 'alice', password: 'secretword', host: 'atlanta.com', params: [['transport', 'tcp']] });
    expectSip('sips:alice@atlanta.com?subject=project%20x&priority=urgent', {
      scheme: 'sips', user: 'alice', host: 'atlanta.com', headers: [['subject', 'project%20x'], ['priority', 'urgent']],
    });
    expectSip('sip:+1-212-555-1212:1234@gateway.com;user=phone', { user: '+1-212-555-1212', password: '1234', host: 'gateway.com', params: [['user', 'phone']] });
    expectSip('sips:1212@gateway.com', { scheme: 'sips', user: '1212', host: 'gateway.com' });
    expectSip('sip:alice@192.0.2.4', { user: 'alice', host: '192.0.2.4' });
    expectSip('sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com', { host: 'atlanta.com', params: [['method', 'REGISTER']], headers: [['to', 'alice%40atlanta.com']] });
    expectSip('sip:alice;day=tuesday@atlanta.com', { user: 'alice;day=tuesday', host: 'atlanta.com' });
  });

  it('treats the scheme as case-insensitive: "SIP:" and "SiPs:" parse', () => {
    assert.equal(sip('SIP:alice@atlanta.com').scheme, 'sip');
    assert.equal(sip('SiPs:alice@atlanta.com').scheme, 'sips');
    assert.equal(sip('SIP:alice@atlanta.com').toString(), 'sip:alice@atlanta.com');
  });

  it('reads an IPv6 reference with a port, keeping the brackets in host and dropping them in hostname', () => {
    const u = expectSip('sip:bob@[2001:db8::1]:5070;transport=tcp', { user: 'bob', host: '[2001:db8::1]', port: 5070, params: [['transport', 'tcp']] });
    assert.equal(u.hostname, '2001:db8::1');
    expectSip('sips:[::1]', { scheme: 'sips', host: '[::1]' });
    expectSip('sip:[::ffff:192.0.2.1]:5060', { host: '[::ffff:192.0.2.1]', port: 5060 });
    assert.equal(sip('sip:[2001:DB8::A]').hostname, '2001:db8::a');
  });

  it('lower-cases the host in hostname only', () => {
    const u = sip('sip:alice@AtLanTa.CoM');
    assert.equal(u.host, 'AtLanTa.CoM');
    assert.equal(u.hostname, 'atlanta.com');
  });

  it('accepts ports 0 to 65535', () => {
    assert.equal(sip('sip:h:0').port, 0);
    assert.equal(sip('sip:h:65535').port, 65535);
    assert.equal(sip('sip:h:05060').port, 5060);
  });

  it('reads parameters with and without values, keyed by lower-cased name, values as written, in order', () => {
    const u = sip('sip:proxy.example.com;LR;Transport=TCP;maddr=[2001:db8::9];x=a:b/c&d+e$;empty=');
    assert.deepEqual([...u.params], [['lr', null], ['transport', 'TCP'], ['maddr', '[2001:db8::9]'], ['x', 'a:b/c&d+e$'], ['empty', '']]);
    assert.equal(u.lr, true);
    assert.equal(u.transport, 'tcp');
    assert.equal(u.getParam('TRANSPORT'), 'TCP');
    assert.equal(u.getParam('nope'), undefined);
    assert.equal(u.toString(), 'sip:proxy.example.com;lr;transport=TCP;maddr=[2001:db8::9];x=a:b/c&d+e$;empty=');
  });

  it('reports every transport lower-cased and none for a flag ;transport', () => {
    for (const t of ['udp', 'TCP', 'Tls', 'ws', 'WSS', 'sctp']) assert.equal(sip(`sip:h;transport=${t}`).transport, t.toLowerCase());
    assert.equal(sip('sip:h').transport, undefined);
    assert.equal(sip('sip:h;transport').transport, undefined);
  });

  it('reads headers after "?" as name=value pairs separated by "&", as written', () => {
    const u = sip('sip:alice@atlanta.com?Subject=hi%20there&Call-Info=%3Chttp://x/y%3E&Empty=');
    assert.deepEqual(u.headers, [['Subject', 'hi%20there'], ['Call-Info', '%3Chttp://x/y%3E'], ['Empty', '']]);
  });

  it('accepts octets >= 0x80 in the user, parameters and header values (UTF-8 text as a wire string)', () => {
    const utf8 = Buffer.from('работающий', 'utf8').toString('latin1');
    const u = sip(`sip:${utf8}@example.com;p=${utf8}?h=${utf8}`);
    assert.equal(u.user, utf8);
    assert.equal(u.getParam('p'), utf8);
    assert.deepEqual(u.headers, [['h', utf8]]);
    assert.equal(u.toString(), `sip:${utf8}@example.com;p=${utf8}?h=${utf8}`);
  });

  it('lower-cases parameter names as ASCII only, leaving octets >= 0x80 untouched', () => {
    const u = sip('sip:h;N\xc0me=1');
    assert.deepEqual([...u.params.keys()], ['n\xc0me']);
  });

  it('accepts an unescaped "#" in the user part, as phones send dial strings (liberal: the grammar wants %23)', () => {
    const u = sip('sip:*21#@pbx.example.com');
    assert.equal(u.user, '*21#');
    assert.equal(u.toString(), 'sip:*21#@pbx.example.com');
    assert.equal(eq('sip:*21#@pbx.example.com', 'sip:*21%23@pbx.example.com'), true, '"#" is not reserved, so it equals %23');
  });

  it('accepts "_" in host names and a trailing "." (liberal, RFC 3261 §25.1 hostname)', () => {
    assert.equal(sip('sip:a@my_host.example.com.').host, 'my_host.example.com.');
  });

  it('parses with parseSipUri and refuses other schemes there', () => {
    assert.equal(parseSipUri('sips:a@b').scheme, 'sips');
    assert.throws(() => parseSipUri('tel:+12015550123'), SipParseError);
    assert.throws(() => parseSipUri('http://example.com'), SipParseError);
  });
});

describe('parseUri: tel URIs (RFC 3966)', () => {
  it('reads a global number with visual separators: tel:+1-201-555-0123', () => {
    const u = parseUri('tel:+1-201-555-0123');
    assert.ok(u instanceof TelUri);
    assert.equal(u.scheme, 'tel');
    assert.equal(u.number, '+1-201-555-0123');
    assert.equal(u.params.size, 0);
    assert.equal(u.toString(), 'tel:+1-201-555-0123');
  });

  it('reads a local number with phone-context and an extension', () => {
    const u = parseUri('TEL:7042;phone-context=example.com;ext=22');
    assert.ok(u instanceof TelUri);
    assert.equal(u.number, '7042');
    assert.deepEqual([...u.params], [['phone-context', 'example.com'], ['ext', '22']]);
    assert.equal(u.toString(), 'tel:7042;phone-context=example.com;ext=22');
  });

  it('accepts "(", ")", "." as visual separators and "*", "#", hex digits in a local number', () => {
    assert.equal((parseUri('tel:+1.(201).555.0123') as TelUri).number, '+1.(201).555.0123');
    assert.equal((parseUri('tel:*21#;phone-context=+1') as TelUri).number, '*21#');
    assert.equal((parseUri('tel:0a1B;phone-context=x') as TelUri).number, '0a1B');
  });

  it('refuses a tel URI without digits or with characters outside the grammar', () => {
    throwsUri('tel:');
    throwsUri('tel:+');
    throwsUri('tel:+--');
    throwsUri('tel:+1 201');
    throwsUri('tel:+1@example.com');
    throwsUri('tel:+12*3');
    throwsUri('tel:+123;;x');
  });
});

describe('parseUri: refusing what the grammar forbids', () => {
  const bad: Array<[string, string]> = [
    ['', 'the empty string'],
    ['sip:', 'no host'],
    ['sip:@host', 'an empty user before "@"'],
    ['sip::pw@host', 'an empty user before the password'],
    ['sip:user@', 'no host after "@"'],
    ['sip:user@host:99999', 'a port above 65535'],
    ['sip:user@host:65536', 'port 65536'],
    ['sip:user@host:', 'an empty port'],
    ['sip:user@host:5a', 'a port that is not 1*DIGIT'],
    ['sip:user@host;;x', 'an empty parameter name (";;")'],
    ['sip:user@host;', 'a trailing ";"'],
    ['sip:user@host;=x', 'a parameter with a value but no name'],
    ['sip:user@host;lr;LR', 'the same parameter twice (RFC 3261 §19.1.1)'],
    ['sip:user@ho st', 'a space in the host'],
    ['sip:us er@host', 'a space in the user'],
    ['sip:user@host\t', 'a trailing tab'],
    ['sip:user@host\r\n', 'CRLF'],
    ['sip:user@[::1', 'an unterminated IPv6 reference'],
    ['sip:user@[::1]x', 'text after an IPv6 reference'],
    ['sip:user@[fe80::1%25eth0]', 'a zone index in an IPv6 reference'],
    ['sip:user@[1:2:3:4:5:6:7:8:9]', 'nine IPv6 groups'],
    ['sip:user@[1::2::3]', 'two "::" in an IPv6 reference'],
    ['sip:user@[12345::1]', 'an IPv6 group of five digits'],
    ['sip:user@[::1.2.3.256]', 'a bad embedded IPv4 address'],
    ['sip:user@[]', 'an empty IPv6 reference'],
    ['<sip:a@b>', 'name-addr brackets'],
    ['sip:a@b>', 'a stray ">"'],
    [' sip:x@y', 'leading whitespace'],
    ['sip:a@b@c', 'a second "@"'],
    ['sip:a%zz@b', 'a "%" that is not an escape'],
    ['sip:a%4@b', 'a truncated escape'],
    ['sip:a@b;p=%', 'a truncated escape in a parameter'],
    ['sip:a:p:q@b', 'a ":" in the password'],
    ['sip:a"b@c', 'a DQUOTE in the user'],
    ['sip:a@b?', 'an empty header list'],
    ['sip:a@b?x', 'a header without "="'],
    ['sip:a@b?x=1&', 'an empty header after "&"'],
    ['sip:a@b?=1', 'an empty header name'],
    ['sip:a@b.%41', 'an escape in the host'],
    ['sip:a@.example.com', 'a host starting with "."'],
    ['sip:a@example..com', 'an empty host label'],
    ['sip:a@exa!mple.com', 'a "!" in the host'],
    ['sip:;x', 'no host before the parameters'],
    ['sip', 'no ":" after the scheme'],
    ['1sip:a@b', 'a scheme starting with a digit'],
    ['si_p:a@b', 'a "_" in the scheme'],
    [':a@b', 'an empty scheme'],
    ['isbn:', 'nothing after an unknown scheme'],
    ['http://exa mple.com', 'a space in an absolute URI'],
    ['http://example.com/<x>', '"<" in an absolute URI'],
    ['urn:%zz', 'a bad escape in an absolute URI'],
  ];
  for (const [text, why] of bad) {
    it(`throws SipParseError SIP_ERR_URI for ${why}: ${JSON.stringify(text)}`, () => throwsUri(text));
  }

  it('never throws anything but SipParseError, whatever the input', () => {
    // mulberry32, fixed seed: random strings over the characters the grammar cares about
    let seed = 0x5eed;
    const rnd = (): number => {
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const alphabet = 'sipSIPtel:+-.;=?&@%[]<>"/ \t09afAF\x00\xff_~!*()#,$\'';
    const seeds = ['sip:a@b:5060;lr?x=y', 'tel:+1-2;ext=3', 'sips:[::1]:1', 'x:y', 'sip:u:p@h;a=b;c'];
    for (let k = 0; k < 20000; k++) {
      let s: string;
      if (k % 2 === 0) {
        const len = Math.floor(rnd() * 24);
        const chars: string[] = [];
        for (let j = 0; j < len; j++) chars.push(alphabet[Math.floor(rnd() * alphabet.length)]!);
        s = (k % 4 === 0 ? 'sip:' : '') + chars.join('');
      } else {
        const base = seeds[k % seeds.length]!;
        const at = Math.floor(rnd() * (base.length + 1));
        const ch = alphabet[Math.floor(rnd() * alphabet.length)]!;
        s = rnd() < 0.5 ? base.slice(0, at) + ch + base.slice(at) : base.slice(0, at) + base.slice(at + 1);
      }
      let uri: Uri;
      try {
        uri = parseUri(s);
      } catch (err) {
        assert.ok(err instanceof SipParseError, `${JSON.stringify(s)} threw ${String(err)}`);
        continue;
      }
      // whatever parses serialises to something that parses to the same serialisation
      const once = uri.toString();
      assert.equal(parseUri(once).toString(), once, JSON.stringify(s));
      assert.ok(uriEquals(uri, parseUri(once)), JSON.stringify(s));
    }
  });
});

describe('SipUri: serialisation, construction and copies', () => {
  const canonical = [
    'sip:alice@atlanta.com',
    'sips:alice:secretword@atlanta.com:5061;transport=tls',
    'sip:[2001:db8::1]:5070;transport=tcp;lr',
    'sip:alice@192.0.2.4;maddr=239.255.255.1;ttl=15',
    'sip:+1-212-555-1212:1234@gateway.com;user=phone',
    'sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com',
    'sips:alice@atlanta.com?subject=project%20x&priority=urgent',
    'sip:alice;day=tuesday@atlanta.com',
    'sip:user:@host',
    'sip:a@b;p=',
    'tel:+1-201-555-0123',
    'tel:7042;phone-context=example.com',
    'urn:service:sos',
    'mailto:alice@example.com',
  ];
  for (const text of canonical) {
    it(`serialises canonical ${text} exactly as written`, () => {
      assert.equal(parseUri(text).toString(), text);
    });
  }

  it('builds a URI from parts, with a params record lower-cased', () => {
    const u = new SipUri({ scheme: 'sip', user: 'bob', host: 'biloxi.com', port: 5080, params: { Transport: 'tcp', lr: null }, headers: [['Subject', 'x']] });
    assert.equal(u.toString(), 'sip:bob@biloxi.com:5080;transport=tcp;lr?Subject=x');
    assert.equal(new SipUri({ scheme: 'sips', host: 'h' }).toString(), 'sips:h');
  });

  it('refuses bad constructor arguments with a TypeError', () => {
    assert.throws(() => new SipUri({ scheme: 'sip', host: '' }), TypeError);
    assert.throws(() => new SipUri({ scheme: 'sip', host: 'h', port: 70000 }), TypeError);
    assert.throws(() => new SipUri({ scheme: 'sip', host: 'h', port: 1.5 }), TypeError);
  });

  it('sets, reads and deletes parameters by case-insensitive name', () => {
    const u = sip('sip:h');
    u.setParam('LR', null).setParam('Transport', 'udp');
    assert.equal(u.toString(), 'sip:h;lr;transport=udp');
    u.deleteParam('TRANSPORT');
    assert.equal(u.toString(), 'sip:h;lr');
    assert.equal(u.lr, true);
  });

  it('clones deeply: changing the copy leaves the original alone', () => {
    const a = sip('sip:a@b;lr?x=1');
    const b = a.clone();
    b.setParam('transport', 'tcp');
    b.headers[0]![1] = '2';
    b.user = 'z';
    assert.equal(a.toString(), 'sip:a@b;lr?x=1');
    assert.equal(b.toString(), 'sip:z@b;lr;transport=tcp?x=2');
    const t = parseUri('tel:+1;ext=2') as TelUri;
    const tc = t.clone();
    tc.params.set('isub', '3');
    assert.equal(t.toString(), 'tel:+1;ext=2');
    const x = parseUri('urn:a') as AbsoluteUri;
    assert.equal(x.clone().toString(), 'urn:a');
    assert.notEqual(x.clone(), x);
  });
});

describe('uriEquals: RFC 3261 §19.1.4', () => {
  const equal: Array<[string, string]> = [
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;security=on'],
    ['sip:carol@chicago.com;newparam=5', 'sip:carol@chicago.com;security=on'],
    ['sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com', 'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com'],
    ['sip:alice@atlanta.com?subject=project%20x&priority=urgent', 'sip:alice@atlanta.com?priority=urgent&subject=project%20x'],
  ];
  for (const [a, b] of equal) {
    it(`finds the URIs in the RFC's "equivalent" set equal: ${a} = ${b}`, () => assert.equal(eq(a, b), true));
  }

  const different: Array<[string, string, string]> = [
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP', 'different usernames'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060', 'can resolve to different ports'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp', 'can resolve to different transports'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp', 'can resolve to different port and transports'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting', 'different header component'],
    ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4', "even though that's what phone21.boxesbybob.com resolves to"],
  ];
  for (const [a, b, why] of different) {
    it(`finds the URIs in the RFC's "not equivalent" set different (${why}): ${a} ≠ ${b}`, () => assert.equal(eq(a, b), false));
  }

  it('is not transitive: security=on and security=off differ though each equals the bare URI', () => {
    assert.equal(eq('sip:carol@chicago.com', 'sip:carol@chicago.com;security=on'), true);
    assert.equal(eq('sip:carol@chicago.com', 'sip:carol@chicago.com;security=off'), true);
    assert.equal(eq('sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off'), false);
  });

  it('compares the user part case-sensitively and the host case-insensitively', () => {
    assert.equal(eq('sip:alice@atlanta.com', 'sip:ALICE@atlanta.com'), false);
    assert.equal(eq('sip:alice@atlanta.com', 'sip:alice@ATLANTA.COM'), true);
  });

  it('compares the password case-sensitively, and a URI without a password differs from one with', () => {
    assert.equal(eq('sip:a:pw@h', 'sip:a:PW@h'), false);
    assert.equal(eq('sip:a:pw@h', 'sip:a@h'), false);
    assert.equal(eq('sip:a:p%77@h', 'sip:a:pw@h'), true);
  });

  it('never matches a URI without userinfo with one that has it', () => {
    assert.equal(eq('sip:atlanta.com', 'sip:alice@atlanta.com'), false);
  });

  it('treats an escaped unreserved character as equal to the character, but not an escaped reserved one', () => {
    assert.equal(eq('sip:%75se%72@example.com', 'sip:user@example.com'), true);
    assert.equal(eq('sip:user@example.com', 'sip:User@example.com'), false);
    assert.equal(eq('sip:a%3bb@h', 'sip:a%3Bb@h'), true);
    assert.equal(eq('sip:a%3Bb@h', 'sip:a;b@h'), false);
    assert.equal(eq('sip:a%2541@h', 'sip:aA@h'), false);
    assert.equal(eq('sip:h;%6C%72', 'sip:h;lr'), true);
  });

  it('keeps %00 significant when comparing users (RFC 4475 §3.1.1.4)', () => {
    assert.equal(eq('sip:null-%00-null@example.com', 'sip:null-@example.com'), false);
    assert.equal(eq('sip:%00@h', 'sip:%00%00@h'), false);
    assert.equal(eq('sip:%00@h', 'sip:%00@h'), true);
  });

  it('tells sip from sips', () => {
    assert.equal(eq('sip:alice@atlanta.com', 'sips:alice@atlanta.com'), false);
  });

  it('requires user, ttl, method and maddr in both or neither, even with their default value', () => {
    assert.equal(eq('sip:a@h', 'sip:a@h;user=ip'), false);
    assert.equal(eq('sip:a@h', 'sip:a@h;ttl=1'), false);
    assert.equal(eq('sip:a@h', 'sip:a@h;method=INVITE'), false);
    assert.equal(eq('sip:a@h', 'sip:a@h;maddr=h'), false);
    assert.equal(eq('sip:a@h;method=invite', 'sip:a@h;METHOD=INVITE'), true);
  });

  it('compares other parameters only when present in both, and a flag differs from a value', () => {
    assert.equal(eq('sip:h;lr', 'sip:h'), true);
    assert.equal(eq('sip:h;x=1', 'sip:h;x=2'), false);
    assert.equal(eq('sip:h;x', 'sip:h;x=1'), false);
    assert.equal(eq('sip:h;x', 'sip:h;X'), true);
  });

  it('compares headers as a set: same names (any case) and values, any order, none missing', () => {
    assert.equal(eq('sip:h?a=1&b=2', 'sip:h?B=2&A=1'), true);
    assert.equal(eq('sip:h?a=1&b=2', 'sip:h?a=1'), false);
    assert.equal(eq('sip:h?a=1&a=1', 'sip:h?a=1&b=1'), false);
    assert.equal(eq('sip:h?subject=Hi', 'sip:h?subject=hi'), false);
    assert.equal(eq('sip:h?subject=%48i', 'sip:h?subject=Hi'), true);
  });

  it('compares ports numerically and port 5060 differs from no port', () => {
    assert.equal(eq('sip:h:5060', 'sip:h:05060'), true);
    assert.equal(eq('sip:h:5060', 'sip:h'), false);
  });

  it('compares IPv6 references by address, not by spelling', () => {
    assert.equal(eq('sip:[::1]', 'sip:[0:0:0:0:0:0:0:1]'), true);
    assert.equal(eq('sip:[2001:DB8::1]:5060', 'sip:[2001:db8:0::0:1]:5060'), true);
    assert.equal(eq('sip:[::ffff:192.0.2.1]', 'sip:[::ffff:c000:201]'), true);
    assert.equal(eq('sip:[::1]', 'sip:[::2]'), false);
  });

  it('never finds URIs of different schemes equal', () => {
    assert.equal(eq('sip:+12015550123@h;user=phone', 'tel:+12015550123'), false);
    assert.equal(eq('tel:+12015550123', 'urn:+12015550123'), false);
  });

  it('compares tel URIs without visual separators, parameters in any order (RFC 3966 §4)', () => {
    assert.equal(eq('tel:+1-201-555-0123', 'tel:+1(201)5550123'), true);
    assert.equal(eq('tel:+1-201-555-0123', 'tel:1-201-555-0123;phone-context=+1'), false);
    assert.equal(eq('tel:7042;phone-context=Example.COM;ext=1', 'tel:7042;ext=1;phone-context=example.com'), true);
    assert.equal(eq('tel:7042;phone-context=example.com', 'tel:7042;phone-context=example.org'), false);
    assert.equal(eq('tel:+1234;ext=5', 'tel:+1234'), false);
    assert.equal(eq('tel:0A1;phone-context=x', 'tel:0a1;phone-context=x'), true);
  });

  it('compares other URIs by lower-cased scheme and escape-normalised text', () => {
    assert.equal(eq('URN:service:sos', 'urn:service:sos'), true);
    assert.equal(eq('urn:service:%73os', 'urn:service:sos'), true);
    assert.equal(eq('urn:service:SOS', 'urn:service:sos'), false);
  });
});

describe('escaping helpers and host predicates', () => {
  it('unescapes %HH to one octet each and leaves invalid escapes as written', () => {
    assert.equal(unescapeUriPart('%41'), 'A');
    assert.equal(unescapeUriPart('a%2fb%2Fc'), 'a/b/c');
    assert.equal(unescapeUriPart('%E2%82%AC'), '\xe2\x82\xac');
    assert.equal(unescapeUriPart('%00'), '\x00');
    assert.equal(unescapeUriPart('100%'), '100%');
    assert.equal(unescapeUriPart('%zz%4'), '%zz%4');
    assert.equal(unescapeUriPart('%%41'), '%A');
    assert.equal(unescapeUriPart('plain'), 'plain');
  });

  it('escapes what the user part may not carry, and unescaping gives the text back', () => {
    assert.equal(escapeUriUser('alice'), 'alice');
    assert.equal(escapeUriUser("a;b?c/d&e=f+g$h,i-_.!~*'()"), "a;b?c/d&e=f+g$h,i-_.!~*'()");
    assert.equal(escapeUriUser('sips:user@example.com'), 'sips%3Auser%40example.com');
    assert.equal(escapeUriUser('I have spaces'), 'I%20have%20spaces');
    assert.equal(escapeUriUser('100%'), '100%25');
    assert.equal(escapeUriUser('*21#'), '*21%23');
    assert.equal(escapeUriUser('\x00\xff'), '%00%FF');
    for (const s of ['a b@c:d%e#f<g>h"i', '\x00\x7f\x80\xff', '']) assert.equal(unescapeUriPart(escapeUriUser(s)), s);
    assert.equal(sip(`sip:${escapeUriUser('a b@c')}@h`).userUnescaped, 'a b@c');
  });

  it('refuses a non-wire string in escapeUriUser with a TypeError', () => {
    assert.throws(() => escapeUriUser('€'), TypeError);
  });

  it('recognises dotted-quad IPv4 addresses with every part 0-255', () => {
    for (const h of ['192.0.2.4', '0.0.0.0', '255.255.255.255', '10.0.0.01']) assert.equal(isIpv4(h), true, h);
    for (const h of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '1.2.3.', 'a.b.c.d', '1234.1.1.1', '', 'example.com', '[::1]']) assert.equal(isIpv4(h), false, h);
  });

  it('recognises bracketed IPv6 references, with an optional trailing IPv4 address and no zone', () => {
    for (const h of ['[::1]', '[::]', '[2001:db8::1]', '[2001:DB8:0:0:0:0:0:1]', '[::ffff:192.0.2.1]', '[1:2:3:4:5:6:7::]', '[1:2:3:4:5:6:1.2.3.4]']) {
      assert.equal(isIpv6Reference(h), true, h);
    }
    for (const h of ['::1', '[::1', '[]', '[:]', '[:1]', '[1:]', '[1::2::3]', '[1:2:3:4:5:6:7:8:9]', '[1:2:3:4:5:6:7]', '[fe80::1%eth0]', '[g::1]', '[1:2:3:4:5:6:7:1.2.3.4]', '[::1.2.3]']) {
      assert.equal(isIpv6Reference(h), false, h);
    }
  });
});
