import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, getHashes } from 'node:crypto';
import { SipParseError } from '../../../src/sip/errors.js';
import {
  type DigestAlgorithm, type DigestChallenge, type DigestQop, buildCredentials, computeDigestResponse, computeHA1, digestEquals,
  isDigestCredentials, parseChallenge, parseCredentials, parseDigestAlgorithm, serializeChallenge,
} from '../../../src/sip/digest.js';

/** An independent H(): node's hash over the latin1 octets, spelled out here rather than imported. */
function H(alg: 'md5' | 'sha256' | 'sha512-256', data: string | Buffer): string {
  return createHash(alg).update(typeof data === 'string' ? Buffer.from(data, 'latin1') : data).digest('hex');
}

function assertParseError(fn: () => unknown, header: string): void {
  assert.throws(fn, (e: unknown) => e instanceof SipParseError && e.code === 'SIP_ERR_HEADER' && e.header === header);
}

// RFC 2617 §3.5
const RFC2617 = {
  username: 'Mufasa', password: 'Circle Of Life', realm: 'testrealm@host.com',
  nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', uri: '/dir/index.html', nc: '00000001', cnonce: '0a4f113b',
  opaque: '5ccc069c403ebaf9f0171e9517f40e41', response: '6629fae49393a05397450978507c4ef1',
};

// RFC 7616 §3.9.1
const RFC7616 = {
  username: 'Mufasa', password: 'Circle of Life', realm: 'http-auth@example.org',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v', uri: '/dir/index.html', nc: '00000001',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ', opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
  md5: '8ca523f5e9506fed4657c9700eebdbec',
  sha256: '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
};

describe('digest algorithms', () => {
  it('node provides the md5, sha256 and sha512-256 hashes the algorithms need', () => {
    for (const h of ['md5', 'sha256', 'sha512-256']) assert.ok(getHashes().includes(h), h);
  });

  it('if the algorithm directive is not present it is assumed to be MD5 (RFC 2617 §3.2.1)', () => {
    assert.equal(parseDigestAlgorithm(undefined), 'MD5');
  });

  it('algorithm tokens are matched case-insensitively and returned in canonical form', () => {
    assert.equal(parseDigestAlgorithm('md5'), 'MD5');
    assert.equal(parseDigestAlgorithm('MD5-SESS'), 'MD5-sess');
    assert.equal(parseDigestAlgorithm('sha-256'), 'SHA-256');
    assert.equal(parseDigestAlgorithm('Sha-512-256-Sess'), 'SHA-512-256-sess');
  });

  it('an unsupported algorithm token yields undefined', () => {
    assert.equal(parseDigestAlgorithm('SHA-1'), undefined);
    assert.equal(parseDigestAlgorithm(''), undefined);
  });
});

describe('request-digest (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1)', () => {
  it('reproduces the RFC 2617 §3.5 example response for Mufasa / "Circle Of Life"', () => {
    const ha1 = computeHA1('MD5', RFC2617.username, RFC2617.realm, RFC2617.password);
    const response = computeDigestResponse({
      algorithm: 'MD5', ha1, nonce: RFC2617.nonce, method: 'GET', uri: RFC2617.uri,
      qop: 'auth', nc: RFC2617.nc, cnonce: RFC2617.cnonce,
    });
    assert.equal(response, RFC2617.response);
  });

  for (const [algorithm, expected] of [['MD5', RFC7616.md5], ['SHA-256', RFC7616.sha256]] as const) {
    it(`reproduces the RFC 7616 §3.9.1 example response for ${algorithm}`, () => {
      const ha1 = computeHA1(algorithm, RFC7616.username, RFC7616.realm, RFC7616.password);
      const response = computeDigestResponse({
        algorithm, ha1, nonce: RFC7616.nonce, method: 'GET', uri: RFC7616.uri,
        qop: 'auth', nc: RFC7616.nc, cnonce: RFC7616.cnonce,
      });
      assert.equal(response, expected);
    });
  }

  it('HA1 is H(username ":" realm ":" password) in lower-case hex, the same base for -sess', () => {
    const expected = H('sha512-256', 'alice:example.com:secret');
    assert.equal(computeHA1('SHA-512-256', 'alice', 'example.com', 'secret'), expected);
    assert.equal(computeHA1('SHA-512-256-sess', 'alice', 'example.com', 'secret'), expected);
  });

  it('if qop is "auth-int", A2 is Method ":" digest-uri ":" H(entity-body)', () => {
    const body = Buffer.from('v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n', 'latin1');
    const ha1 = H('sha256', 'bob:biloxi.com:zanzibar');
    const ha2 = H('sha256', `INVITE:sip:bob@biloxi.com:${H('sha256', body)}`);
    const expected = H('sha256', `${ha1}:abc123:00000002:xyz:auth-int:${ha2}`);
    const response = computeDigestResponse({
      algorithm: 'SHA-256', ha1, nonce: 'abc123', method: 'INVITE', uri: 'sip:bob@biloxi.com',
      qop: 'auth-int', nc: '00000002', cnonce: 'xyz', body,
    });
    assert.equal(response, expected);
  });

  it('with auth-int and no body, H(entity-body) is the hash of the empty string', () => {
    const ha1 = H('md5', 'bob:biloxi.com:zanzibar');
    const ha2 = H('md5', `REGISTER:sip:biloxi.com:${H('md5', '')}`);
    const expected = H('md5', `${ha1}:n:00000001:c:auth-int:${ha2}`);
    const response = computeDigestResponse({
      algorithm: 'MD5', ha1, nonce: 'n', method: 'REGISTER', uri: 'sip:biloxi.com', qop: 'auth-int', nc: '00000001', cnonce: 'c',
    });
    assert.equal(response, expected);
  });

  it('for a -sess algorithm, HA1 is H(H(username ":" realm ":" passwd) ":" nonce ":" cnonce)', () => {
    const base = H('md5', 'bob:biloxi.com:zanzibar');
    const sessHa1 = H('md5', `${base}:n1:c1`);
    const expected = H('md5', `${sessHa1}:n1:00000001:c1:auth:${H('md5', 'REGISTER:sip:biloxi.com')}`);
    const response = computeDigestResponse({
      algorithm: 'MD5-sess', ha1: base, nonce: 'n1', method: 'REGISTER', uri: 'sip:biloxi.com', qop: 'auth', nc: '00000001', cnonce: 'c1',
    });
    assert.equal(response, expected);
  });

  it('if qop is not present, request-digest is H(HA1 ":" nonce ":" H(A2)) as in RFC 2069', () => {
    const ha1 = H('md5', 'bob:biloxi.com:zanzibar');
    const expected = H('md5', `${ha1}:n:${H('md5', 'REGISTER:sip:biloxi.com')}`);
    assert.equal(computeDigestResponse({ algorithm: 'MD5', ha1, nonce: 'n', method: 'REGISTER', uri: 'sip:biloxi.com' }), expected);
  });

  it('SHA-512-256 is FIPS 180-4 SHA-512/256, not truncated SHA-512 as in the erroneous RFC 7616 §3.9.2 example (errata)', () => {
    // FIPS 180-4 example: SHA-512/256("abc").
    assert.equal(H('sha512-256', 'abc'), '53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23');
    const username = Buffer.from('J\u00e4s\u00f8n Doe', 'utf8').toString('latin1');
    const input = {
      nonce: '5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK', method: 'GET', uri: '/doe.json',
      qop: 'auth', nc: '00000001', cnonce: 'NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v',
    } as const;
    const ha1 = computeHA1('SHA-512-256', username, 'api@example.org', 'Secret, or not?');
    const ha2 = H('sha512-256', 'GET:/doe.json');
    const expected = H('sha512-256', `${ha1}:${input.nonce}:00000001:${input.cnonce}:auth:${ha2}`);
    const response = computeDigestResponse({ algorithm: 'SHA-512-256', ha1, ...input });
    assert.equal(response, expected);
    // The RFC printed the value obtained with SHA-512 cut to 256 bits.
    assert.notEqual(response, 'ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd');
  });

  it('refuses Unicode text that is not a wire string instead of hashing the wrong octets', () => {
    assert.throws(() => computeHA1('MD5', '\u6e2c\u8a66', 'r', 'p'), TypeError);
  });

  it('a qop without nc and cnonce is a caller error', () => {
    assert.throws(() => computeDigestResponse({ algorithm: 'MD5', ha1: 'aa', nonce: 'n', method: 'M', uri: 'u', qop: 'auth' }), TypeError);
  });
});

describe('digestEquals', () => {
  it('is true for equal digests and ignores hex case', () => {
    assert.equal(digestEquals(RFC2617.response, RFC2617.response), true);
    assert.equal(digestEquals(RFC2617.response, RFC2617.response.toUpperCase()), true);
  });

  it('is false for a different digest or a different length', () => {
    assert.equal(digestEquals(RFC2617.response, RFC2617.response.replace(/.$/, '0')), false);
    assert.equal(digestEquals(RFC2617.response, RFC2617.response.slice(0, 31)), false);
    assert.equal(digestEquals('', RFC2617.response), false);
  });
});

describe('Authorization (RFC 3261 §22.4, §25.1 digest-response)', () => {
  const rfc2617Header = 'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    + 'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", '
    + 'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"';

  it('parses the RFC 2617 §3.5 Authorization header and its response verifies', () => {
    const c = parseCredentials(rfc2617Header);
    assert.ok(isDigestCredentials(c));
    assert.equal(c.username, 'Mufasa');
    assert.equal(c.realm, RFC2617.realm);
    assert.equal(c.qop, 'auth');
    assert.equal(c.nc, '00000001');
    assert.equal(c.opaque, RFC2617.opaque);
    assert.equal(c.algorithm, undefined);
    const expected = computeDigestResponse({
      algorithm: parseDigestAlgorithm(c.algorithm) ?? assert.fail('algorithm'),
      ha1: computeHA1('MD5', c.username, c.realm, RFC2617.password),
      nonce: c.nonce, method: 'GET', uri: c.uri, qop: 'auth', nc: c.nc, cnonce: c.cnonce,
    });
    assert.ok(digestEquals(c.response, expected));
  });

  it('the scheme and auth-param names are case-insensitive, with LWS allowed around "=" and ","', () => {
    const c = parseCredentials('  dIgEsT  USERNAME = "a" ,Realm=  "r",NONCE="n" ,  uri="sip:r"  ,  Response ="00"  ');
    assert.ok(isDigestCredentials(c));
    assert.equal(c.scheme, 'Digest');
    assert.deepEqual([c.username, c.realm, c.nonce, c.uri, c.response], ['a', 'r', 'n', 'sip:r', '00']);
    assert.deepEqual([...c.params.keys()], ['username', 'realm', 'nonce', 'uri', 'response']);
  });

  it('a quoted-string may contain commas, "=" and quoted-pairs, which are unescaped', () => {
    const c = parseCredentials('Digest username="a\\"b\\\\c", realm="x, y=z", nonce="n", uri="sip:r", response="00", x-ext=tok');
    assert.ok(isDigestCredentials(c));
    assert.equal(c.username, 'a"b\\c');
    assert.equal(c.realm, 'x, y=z');
    assert.equal(c.params.get('x-ext'), 'tok');
  });

  it('an unknown scheme is returned with its auth-params (RFC 4475 §3.3.7 regaut01)', () => {
    const c = parseCredentials('NoOneKnowsThisScheme opaque-data=here', 'proxy-authorization');
    assert.equal(isDigestCredentials(c), false);
    assert.equal(c.scheme, 'NoOneKnowsThisScheme');
    assert.equal(c.params.get('opaque-data'), 'here');
    assert.equal((c as { raw: string }).raw, 'NoOneKnowsThisScheme opaque-data=here');
  });

  it('an unknown scheme may carry a token68 instead of auth-params (RFC 8898 Bearer)', () => {
    const c = parseCredentials('Bearer eyJhbGciOi.JIUzI1NiJ9/abc+def==');
    assert.equal(isDigestCredentials(c), false);
    assert.equal(c.params.size, 0);
    assert.equal((c as { token68?: string }).token68, 'eyJhbGciOi.JIUzI1NiJ9/abc+def==');
  });

  it('userhash=true is reported as a boolean', () => {
    const c = parseCredentials('Digest username="h", realm="r", nonce="n", uri="u", response="00", userhash=true');
    assert.ok(isDigestCredentials(c));
    assert.equal(c.userhash, true);
  });

  const malformed: [string, string][] = [
    ['an unterminated quoted string', 'Digest username="Mufasa, realm="r"'],
    ['an empty list element (Digest ,,)', 'Digest ,,'],
    ['a trailing comma', 'Digest username="a", realm="r", nonce="n", uri="u", response="00",'],
    ['a missing nonce', 'Digest username="a", realm="r", uri="u", response="00"'],
    ['a missing response', 'Digest username="a", realm="r", nonce="n", uri="u"'],
    ['a duplicate realm, whatever its case', 'Digest username="a", realm="r", REALM="s", nonce="n", uri="u", response="00"'],
    ['a parameter without "="', 'Digest username "a", realm="r", nonce="n", uri="u", response="00"'],
    ['a parameter without a value', 'Digest username=, realm="r", nonce="n", uri="u", response="00"'],
    ['no whitespace after the scheme', 'Digest,username="a"'],
    ['a missing scheme', '  ="a"'],
    ['an empty value', ''],
    ['nc that is not 8 hex digits', 'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth, cnonce="c", nc=1'],
    ['qop without cnonce', 'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth, nc=00000001'],
    ['a backslash at the end of a quoted string', 'Digest username="a\\'],
  ];
  for (const [what, value] of malformed) {
    it(`rejects ${what} with a SipParseError`, () => {
      assertParseError(() => parseCredentials(value), 'authorization');
    });
  }

  it('never throws anything but SipParseError on arbitrary input', () => {
    const alphabet = 'Digest usernamerlcqop=",\\ \t\r\nxyz0';
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let k = 0; k < 5000; k++) {
      let s = '';
      const len = rand(60);
      for (let j = 0; j < len; j++) s += alphabet[rand(alphabet.length)];
      for (const parse of [parseCredentials, parseChallenge]) {
        try {
          parse(s);
        } catch (e) {
          assert.ok(e instanceof SipParseError, `${JSON.stringify(s)} threw ${String(e)}`);
        }
      }
    }
  });
});

describe('WWW-Authenticate (RFC 3261 §22.4, §25.1 digest-cln)', () => {
  it('parses the RFC 7616 §3.9.1 SHA-256 challenge', () => {
    const ch = parseChallenge('Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
      + `nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`);
    assert.equal(ch.realm, RFC7616.realm);
    assert.equal(ch.algorithm, 'SHA-256');
    assert.deepEqual(ch.qop, ['auth', 'auth-int']);
    assert.equal(ch.nonce, RFC7616.nonce);
    assert.equal(ch.opaque, RFC7616.opaque);
    assert.equal(ch.stale, undefined);
  });

  it('stale is true only for the value "true", any case; anything else means false (RFC 2617 §3.2.1)', () => {
    assert.equal(parseChallenge('Digest realm="r", nonce="n", stale=TRUE').stale, true);
    assert.equal(parseChallenge('Digest realm="r", nonce="n", stale=false').stale, false);
    assert.equal(parseChallenge('Digest realm="r", nonce="n", stale=maybe').stale, false);
  });

  it('unknown qop-values are skipped as extensions', () => {
    assert.deepEqual(parseChallenge('Digest realm="r", nonce="n", qop="x-future,auth-int"').qop, ['auth-int']);
  });

  const malformed: [string, string][] = [
    ['a missing nonce', 'Digest realm="r", qop="auth"'],
    ['a missing realm', 'Digest nonce="n"'],
    ['a duplicate realm', 'Digest realm="r", nonce="n", realm="r"'],
    ['an unterminated quoted string', 'Digest realm="r, nonce="n'],
    ['Digest ,,', 'Digest ,,'],
    ['an unsupported algorithm', 'Digest realm="r", nonce="n", algorithm=SHA-1'],
    ['a qop list with no supported option', 'Digest realm="r", nonce="n", qop="x-future"'],
    ['a scheme other than Digest', 'Basic realm="r"'],
  ];
  for (const [what, value] of malformed) {
    it(`rejects ${what} with a SipParseError`, () => {
      assertParseError(() => parseChallenge(value, 'proxy-authenticate'), 'proxy-authenticate');
    });
  }

  it('serializes realm, nonce, opaque, domain and qop quoted, algorithm and stale as tokens', () => {
    const s = serializeChallenge({ realm: 'r', nonce: 'n', algorithm: 'SHA-256', qop: ['auth'], stale: true });
    assert.equal(s, 'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth", stale=true');
    assert.equal(
      serializeChallenge({ realm: 'r', nonce: 'n', opaque: 'o', domain: 'sip:a sip:b', userhash: false }),
      'Digest realm="r", domain="sip:a sip:b", nonce="n", opaque="o", userhash=false',
    );
  });

  it('a serialized challenge parses back to the same challenge', () => {
    const cases: DigestChallenge[] = [
      { realm: 'biloxi.com', nonce: 'abc' },
      { realm: 'a "quoted", realm\\x', nonce: 'n/+=', algorithm: 'SHA-512-256-sess', qop: ['auth', 'auth-int'], opaque: 'o', stale: false, domain: 'sip:biloxi.com', userhash: true },
      { realm: 'r', nonce: 'n', algorithm: 'MD5', qop: ['auth-int'], stale: true },
    ];
    for (const ch of cases) {
      const { params, ...parsed } = parseChallenge(serializeChallenge(ch));
      assert.deepEqual(parsed, ch);
      assert.equal(params.get('realm'), ch.realm);
    }
  });

  it('refuses to serialize a value that would break the header field', () => {
    assert.throws(() => serializeChallenge({ realm: 'r\r\nVia: x', nonce: 'n' }), TypeError);
  });
});

describe('buildCredentials', () => {
  const algorithms: DigestAlgorithm[] = ['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess', 'SHA-512-256', 'SHA-512-256-sess'];
  for (const algorithm of algorithms) {
    const offers: (DigestQop[] | undefined)[] = [undefined, ['auth'], ['auth-int'], ['auth-int', 'auth']];
    for (const qop of offers) {
      it(`the server recomputes the client's response (${algorithm}, qop ${qop?.join('/') ?? 'absent'})`, () => {
        const ch: DigestChallenge = { realm: 'biloxi.com', nonce: 'ea9c8e88df84f1cec4341ae6cbe5a359', algorithm, opaque: 'op' };
        if (qop !== undefined) ch.qop = [...qop];
        const body = Buffer.from('hello body');
        const value = buildCredentials(ch, {
          username: 'bob', password: 'zanzibar', method: 'INVITE', uri: 'sip:bob@biloxi.com', nc: 26, cnonce: '0a4f113b', body,
        });
        const c = parseCredentials(value);
        assert.ok(isDigestCredentials(c));
        assert.equal(c.opaque, 'op');
        assert.equal(c.algorithm, algorithm);
        if (qop === undefined) {
          assert.equal(c.qop, undefined);
          assert.equal(c.nc, undefined);
        } else {
          assert.equal(c.qop, qop.includes('auth') ? 'auth' : 'auth-int');
          assert.equal(c.nc, '0000001a');
        }
        const expected = computeDigestResponse({
          algorithm: parseDigestAlgorithm(c.algorithm) ?? assert.fail('algorithm'),
          ha1: computeHA1(algorithm, c.username, c.realm, 'zanzibar'),
          nonce: c.nonce, method: 'INVITE', uri: c.uri, body,
          ...(c.qop === undefined ? {} : { qop: c.qop as DigestQop, nc: c.nc ?? assert.fail('nc') }),
          ...(c.cnonce === undefined ? {} : { cnonce: c.cnonce }),
        });
        assert.ok(digestEquals(c.response, expected));
      });
    }
  }

  it('reproduces the RFC 2617 §3.5 Authorization response from a stored HA1', () => {
    const ch = parseChallenge(`Digest realm="${RFC2617.realm}", qop="auth,auth-int", nonce="${RFC2617.nonce}", opaque="${RFC2617.opaque}"`);
    const value = buildCredentials(ch, {
      username: 'Mufasa', ha1: computeHA1('MD5', 'Mufasa', RFC2617.realm, RFC2617.password),
      method: 'GET', uri: RFC2617.uri, nc: 1, cnonce: RFC2617.cnonce,
    });
    const c = parseCredentials(value);
    assert.ok(isDigestCredentials(c));
    assert.equal(c.response, RFC2617.response);
    assert.equal(c.nc, '00000001');
  });

  it('with userhash=true the username is H(username ":" realm) (RFC 7616 §3.4.4)', () => {
    const ch: DigestChallenge = { realm: 'r', nonce: 'n', algorithm: 'SHA-256', qop: ['auth'], userhash: true };
    const c = parseCredentials(buildCredentials(ch, { username: 'bob', password: 'p', method: 'REGISTER', uri: 'sip:r', nc: 1, cnonce: 'c' }));
    assert.ok(isDigestCredentials(c));
    assert.equal(c.userhash, true);
    assert.equal(c.username, H('sha256', 'bob:r'));
  });

  it('needs a password or an HA1 and a positive nc', () => {
    const ch: DigestChallenge = { realm: 'r', nonce: 'n', qop: ['auth'] };
    assert.throws(() => buildCredentials(ch, { username: 'u', method: 'M', uri: 'u', nc: 1, cnonce: 'c' }), TypeError);
    assert.throws(() => buildCredentials(ch, { username: 'u', password: 'p', method: 'M', uri: 'u', nc: 0, cnonce: 'c' }), TypeError);
  });
});
