/**
 * Digest access authentication (RFC 3261 §22.4, RFC 2617, RFC 7616 as adopted for SIP by RFC 8760):
 * the hash computations and the codecs of Authorization / WWW-Authenticate and their Proxy- twins.
 *
 * Every string here is a wire string (one char per octet) and is hashed as exactly those octets, so
 * values taken off the wire hash as the peer hashed them. Text held as Unicode (a password from the
 * configuration) must be converted with `utf8ToWire` first; a char above U+00FF is refused.
 */
import { digestOf, equalText } from './fast-hash.js';
import { SipParseError } from './errors.js';

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess' | 'SHA-512-256' | 'SHA-512-256-sess';
export type DigestQop = 'auth' | 'auth-int';

const ALGORITHMS: ReadonlyMap<string, DigestAlgorithm> = new Map(
  (['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess', 'SHA-512-256', 'SHA-512-256-sess'] as const).map((a) => [a.toLowerCase(), a]),
);

const NODE_HASH: Readonly<Record<DigestAlgorithm, string>> = {
  'MD5': 'md5',
  'MD5-sess': 'md5',
  'SHA-256': 'sha256',
  'SHA-256-sess': 'sha256',
  'SHA-512-256': 'sha512-256',
  'SHA-512-256-sess': 'sha512-256',
};

/** Canonical algorithm from a header token, case-insensitive; undefined when unsupported. Absent algorithm means MD5 (RFC 2617). */
export function parseDigestAlgorithm(token: string | undefined): DigestAlgorithm | undefined {
  if (token === undefined) return 'MD5';
  return ALGORITHMS.get(token.toLowerCase());
}

function isSess(algorithm: DigestAlgorithm): boolean {
  return algorithm.endsWith('-sess');
}

function hash(algorithm: DigestAlgorithm, data: string | Buffer): string {
  if (typeof data === 'string') {
    // A char above U+00FF cannot be an octet: the caller passed Unicode text, not a wire string.
    let ascii = true;
    for (let i = 0; i < data.length; i++) {
      const c = data.charCodeAt(i);
      if (c > 0x7f) {
        if (c > 0xff) throw new TypeError('digest input is not a wire string (convert with utf8ToWire)');
        ascii = false;
      }
    }
    // ASCII hashes the same as UTF-8 (what digestOf uses for text); other octets go as a latin1 Buffer.
    return digestOf(NODE_HASH[algorithm], ascii ? data : Buffer.from(data, 'latin1'), 'hex');
  }
  return digestOf(NODE_HASH[algorithm], data, 'hex');
}

/** H(username ":" realm ":" password) with the algorithm's hash (hex, lower case). The -sess variants hash the same base HA1. */
export function computeHA1(algorithm: DigestAlgorithm, username: string, realm: string, password: string): string {
  return hash(algorithm, `${username}:${realm}:${password}`);
}

export interface DigestResponseInput {
  algorithm: DigestAlgorithm;
  /** Stored base HA1 (hex). */
  ha1: string;
  nonce: string;
  method: string;
  /** digest-uri as sent. */
  uri: string;
  qop?: DigestQop;
  /** 8 hex digits as sent. */
  nc?: string;
  cnonce?: string;
  /** Message body for auth-int; empty when absent. */
  body?: Buffer;
}

/** request-digest of RFC 2617 §3.2.2.1 / RFC 7616 §3.4.1 (sess: HA1' = H(HA1 ":" nonce ":" cnonce)); no qop → RFC 2069 form. */
export function computeDigestResponse(input: DigestResponseInput): string {
  const { algorithm, nonce, method, uri, qop, nc, cnonce } = input;
  if (input.qop !== undefined && (nc === undefined || cnonce === undefined)) {
    throw new TypeError('qop requires nc and cnonce');
  }
  // RFC 2617 §3.2.2.2: HA1 is lower-case hex wherever it is hashed again.
  let ha1 = input.ha1.toLowerCase();
  if (isSess(algorithm)) {
    if (cnonce === undefined) throw new TypeError(`${algorithm} requires a cnonce`);
    ha1 = hash(algorithm, `${ha1}:${nonce}:${cnonce}`);
  }
  // RFC 2617 §3.2.2.3: auth-int appends H(entity-body) to A2.
  const a2 = qop === 'auth-int'
    ? `${method}:${uri}:${hash(algorithm, input.body ?? Buffer.alloc(0))}`
    : `${method}:${uri}`;
  const ha2 = hash(algorithm, a2);
  return qop === undefined
    ? hash(algorithm, `${ha1}:${nonce}:${ha2}`)
    : hash(algorithm, `${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`);
}

/** Constant-time comparison of hex digests (false on a length mismatch). */
export function digestEquals(a: string, b: string): boolean {
  // Hex case carries no secret; folding it keeps a client that sends upper-case LHEX working.
  return equalText(a.toLowerCase(), b.toLowerCase());
}

// ---------------------------------------------------------------------------------------------------
// Header codecs

/** Authorization / Proxy-Authorization with scheme Digest (RFC 3261 §25.1 `digest-response`). */
export interface DigestCredentials {
  scheme: 'Digest';
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  /** Token as sent. */
  algorithm?: string;
  cnonce?: string;
  opaque?: string;
  qop?: string;
  nc?: string;
  userhash?: boolean;
  /** Every auth-param, lower-cased name → unquoted value (`\"` and `\\` resolved). */
  params: Map<string, string>;
}

/** Credentials of any other scheme, e.g. RFC 4475 §3.3.7 regaut01 `NoOneKnowsThisScheme opaque-data=here`. */
export interface OtherCredentials {
  scheme: string;
  params: Map<string, string>;
  raw: string;
  /** RFC 7235 §2.1 token68 form (e.g. RFC 8898 `Bearer <token>`); params is then empty. */
  token68?: string;
}

/** WWW-Authenticate / Proxy-Authenticate with scheme Digest (RFC 3261 §25.1 `digest-cln`). */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  algorithm?: DigestAlgorithm;
  qop?: DigestQop[];
  opaque?: string;
  stale?: boolean;
  domain?: string;
  userhash?: boolean;
}

const TOKEN_CHARS = "-.!%*_+`'~";

function isTokenChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    || (c < 0x80 && TOKEN_CHARS.includes(String.fromCharCode(c)));
}

function scanToken(s: string, i: number): number {
  while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
  return i;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  return i;
}

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The scheme and, when the rest is auth-params, their map; both schemes share this. */
function parseAuthValue(value: string, header: string): { scheme: string; params: Map<string, string>; token68?: string } {
  const n = value.length;
  let i = skipWs(value, 0);
  const sStart = i;
  i = scanToken(value, i);
  if (i === sStart) throw new SipParseError('SIP_ERR_HEADER', 'missing auth-scheme', header, i);
  const scheme = value.slice(sStart, i);
  const params = new Map<string, string>();
  const afterScheme = i;
  i = skipWs(value, i);
  if (i === n) return { scheme, params };
  if (i === afterScheme) throw new SipParseError('SIP_ERR_HEADER', 'expected whitespace after auth-scheme', header, i);

  if (scheme.toLowerCase() !== 'digest') {
    const rest = value.slice(i).trimEnd();
    if (TOKEN68.test(rest)) return { scheme, params, token68: rest };
  }

  for (;;) {
    const nStart = i;
    i = scanToken(value, i);
    if (i === nStart) throw new SipParseError('SIP_ERR_HEADER', 'expected auth-param name', header, i);
    const name = value.slice(nStart, i).toLowerCase();
    i = skipWs(value, i);
    if (value.charCodeAt(i) !== 0x3d) throw new SipParseError('SIP_ERR_HEADER', `expected "=" after ${name}`, header, i);
    i = skipWs(value, i + 1);
    let v: string;
    if (value.charCodeAt(i) === 0x22) {
      [v, i] = readQuoted(value, i, header);
    } else {
      const vStart = i;
      i = scanToken(value, i);
      if (i === vStart) throw new SipParseError('SIP_ERR_HEADER', `expected a value for ${name}`, header, i);
      v = value.slice(vStart, i);
    }
    if (params.has(name)) throw new SipParseError('SIP_ERR_HEADER', `duplicate parameter ${name}`, header, nStart);
    params.set(name, v);
    i = skipWs(value, i);
    if (i === n) return { scheme, params };
    if (value.charCodeAt(i) !== 0x2c) throw new SipParseError('SIP_ERR_HEADER', 'expected "," between auth-params', header, i);
    i = skipWs(value, i + 1);
  }
}

/** Reads the quoted-string at `i` (a DQUOTE); returns its unescaped content and the index past it. */
function readQuoted(s: string, i: number, header: string): [string, number] {
  let out = '';
  let j = i + 1;
  let from = j;
  while (j < s.length) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return [out + s.slice(from, j), j + 1];
    if (c === 0x0d || c === 0x0a) break;
    if (c === 0x5c) {
      // quoted-pair escapes any octet but CR and LF (RFC 3261 §25.1).
      const next = s.charCodeAt(j + 1);
      if (j + 1 >= s.length || next === 0x0d || next === 0x0a) break;
      out += s.slice(from, j) + s[j + 1];
      j += 2;
      from = j;
      continue;
    }
    j++;
  }
  throw new SipParseError('SIP_ERR_HEADER', 'unterminated quoted string', header, i);
}

function required(params: Map<string, string>, name: string, header: string): string {
  const v = params.get(name);
  if (v === undefined) throw new SipParseError('SIP_ERR_HEADER', `missing ${name}`, header);
  return v;
}

/** RFC 2617 §3.2.1: stale is true only when its value is "true" (any case); anything else means false. */
function isTrue(v: string): boolean {
  return v.toLowerCase() === 'true';
}

/** Parses an Authorization / Proxy-Authorization value. Schemes other than Digest come back as OtherCredentials. */
export function parseCredentials(value: string, headerName = 'authorization'): DigestCredentials | OtherCredentials {
  const { scheme, params, token68 } = parseAuthValue(value, headerName);
  if (scheme.toLowerCase() !== 'digest') {
    return token68 === undefined ? { scheme, params, raw: value } : { scheme, params, raw: value, token68 };
  }
  const creds: DigestCredentials = {
    scheme: 'Digest',
    username: required(params, 'username', headerName),
    realm: required(params, 'realm', headerName),
    nonce: required(params, 'nonce', headerName),
    uri: required(params, 'uri', headerName),
    response: required(params, 'response', headerName),
    params,
  };
  const algorithm = params.get('algorithm');
  if (algorithm !== undefined) creds.algorithm = algorithm;
  const cnonce = params.get('cnonce');
  if (cnonce !== undefined) creds.cnonce = cnonce;
  const opaque = params.get('opaque');
  if (opaque !== undefined) creds.opaque = opaque;
  const nc = params.get('nc');
  if (nc !== undefined) {
    // RFC 3261 §25.1: nonce-count = "nc" EQUAL 8LHEX
    if (!/^[0-9a-fA-F]{8}$/.test(nc)) throw new SipParseError('SIP_ERR_HEADER', 'nc must be 8 hex digits', headerName);
    creds.nc = nc;
  }
  const qop = params.get('qop');
  if (qop !== undefined) {
    // RFC 2617 §3.2.2: cnonce and nc MUST be present when qop is.
    if (cnonce === undefined || nc === undefined) throw new SipParseError('SIP_ERR_HEADER', 'qop without cnonce and nc', headerName);
    creds.qop = qop;
  }
  const userhash = params.get('userhash');
  if (userhash !== undefined) creds.userhash = isTrue(userhash);
  return creds;
}

export function isDigestCredentials(c: DigestCredentials | OtherCredentials): c is DigestCredentials {
  return c.scheme === 'Digest' && 'response' in c;
}

/**
 * Parses a WWW-Authenticate / Proxy-Authenticate value of scheme Digest. Another scheme, an unsupported
 * algorithm or a qop list with no supported option throws: the client cannot answer such a challenge.
 */
export function parseChallenge(value: string, headerName = 'www-authenticate'): DigestChallenge & { params: Map<string, string> } {
  const { scheme, params } = parseAuthValue(value, headerName);
  if (scheme.toLowerCase() !== 'digest') throw new SipParseError('SIP_ERR_HEADER', `unsupported scheme ${scheme}`, headerName);
  const ch: DigestChallenge & { params: Map<string, string> } = {
    realm: required(params, 'realm', headerName),
    nonce: required(params, 'nonce', headerName),
    params,
  };
  const algorithmToken = params.get('algorithm');
  if (algorithmToken !== undefined) {
    const algorithm = parseDigestAlgorithm(algorithmToken);
    if (algorithm === undefined) throw new SipParseError('SIP_ERR_HEADER', `unsupported algorithm ${algorithmToken}`, headerName);
    ch.algorithm = algorithm;
  }
  const qopList = params.get('qop');
  if (qopList !== undefined) {
    // qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT; unknown qop-values are extensions to skip.
    const qop: DigestQop[] = [];
    for (const item of qopList.split(',')) {
      const q = item.trim().toLowerCase();
      if ((q === 'auth' || q === 'auth-int') && !qop.includes(q)) qop.push(q);
    }
    if (qop.length === 0) throw new SipParseError('SIP_ERR_HEADER', `no supported qop in "${qopList}"`, headerName);
    ch.qop = qop;
  }
  const opaque = params.get('opaque');
  if (opaque !== undefined) ch.opaque = opaque;
  const stale = params.get('stale');
  if (stale !== undefined) ch.stale = isTrue(stale);
  const domain = params.get('domain');
  if (domain !== undefined) ch.domain = domain;
  const userhash = params.get('userhash');
  if (userhash !== undefined) ch.userhash = isTrue(userhash);
  return ch;
}

/** Quotes a value, refusing octets that would end the header field (CR, LF) or are not text. */
function quoted(name: string, v: string): string {
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(v)) throw new TypeError(`${name} contains control characters`);
  return '"' + v.replace(/["\\]/g, '\\$&') + '"';
}

/** 'Digest realm="…", nonce="…", algorithm=SHA-256, qop="auth", stale=true' — quoted where the RFC says quoted (realm, nonce, opaque, domain, qop in challenges), token otherwise. */
export function serializeChallenge(ch: DigestChallenge): string {
  const parts = [`realm=${quoted('realm', ch.realm)}`];
  if (ch.domain !== undefined) parts.push(`domain=${quoted('domain', ch.domain)}`);
  parts.push(`nonce=${quoted('nonce', ch.nonce)}`);
  if (ch.opaque !== undefined) parts.push(`opaque=${quoted('opaque', ch.opaque)}`);
  if (ch.algorithm !== undefined) parts.push(`algorithm=${ch.algorithm}`);
  if (ch.qop !== undefined && ch.qop.length > 0) parts.push(`qop="${ch.qop.join(',')}"`);
  if (ch.stale !== undefined) parts.push(`stale=${ch.stale ? 'true' : 'false'}`);
  if (ch.userhash !== undefined) parts.push(`userhash=${ch.userhash ? 'true' : 'false'}`);
  return `Digest ${parts.join(', ')}`;
}

/**
 * Client side: builds an Authorization value answering `ch` (used by tests and the mid-registrar).
 * qop is 'auth' when offered, else 'auth-int' when offered, else absent (RFC 2069 form); nc is
 * formatted as 8 hex digits. With userhash=true the username is sent as H(username ":" realm) (RFC 7616 §3.4.4).
 */
export function buildCredentials(
  ch: DigestChallenge,
  input: { username: string; password?: string; ha1?: string; method: string; uri: string; nc: number; cnonce: string; body?: Buffer },
): string {
  const algorithm = ch.algorithm ?? 'MD5';
  let ha1 = input.ha1;
  if (ha1 === undefined) {
    if (input.password === undefined) throw new TypeError('buildCredentials needs a password or an ha1');
    ha1 = computeHA1(algorithm, input.username, ch.realm, input.password);
  }
  const qop: DigestQop | undefined = ch.qop?.includes('auth') ? 'auth' : ch.qop?.includes('auth-int') ? 'auth-int' : undefined;
  if (!Number.isInteger(input.nc) || input.nc < 1 || input.nc > 0xffffffff) throw new TypeError('nc must be an integer in 1..0xffffffff');
  const nc = input.nc.toString(16).padStart(8, '0');
  const useCnonce = qop !== undefined || isSess(algorithm);
  const response = computeDigestResponse({
    algorithm, ha1, nonce: ch.nonce, method: input.method, uri: input.uri,
    ...(qop === undefined ? {} : { qop, nc }),
    ...(useCnonce ? { cnonce: input.cnonce } : {}),
    ...(input.body === undefined ? {} : { body: input.body }),
  });
  const username = ch.userhash === true ? hash(algorithm, `${input.username}:${ch.realm}`) : input.username;
  const parts = [
    `username=${quoted('username', username)}`,
    `realm=${quoted('realm', ch.realm)}`,
    `nonce=${quoted('nonce', ch.nonce)}`,
    `uri=${quoted('uri', input.uri)}`,
    `response="${response}"`,
  ];
  if (ch.algorithm !== undefined) parts.push(`algorithm=${ch.algorithm}`);
  if (useCnonce) parts.push(`cnonce=${quoted('cnonce', input.cnonce)}`);
  if (ch.opaque !== undefined) parts.push(`opaque=${quoted('opaque', ch.opaque)}`);
  if (qop !== undefined) parts.push(`qop=${qop}`, `nc=${nc}`);
  if (ch.userhash === true) parts.push('userhash=true');
  return `Digest ${parts.join(', ')}`;
}
