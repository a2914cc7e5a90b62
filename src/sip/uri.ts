/**
 * URIs as they appear in SIP: the SIP/SIPS URI of RFC 3261 §19.1, the tel URI of RFC 3966 and, for
 * every other scheme, an opaque absoluteURI (RFC 3261 §25.1, RFC 4475 §3.3.2-3.3.4).
 *
 * Inputs are wire strings: one char per octet, as the message layer decodes headers (latin1). Nothing
 * here decodes or encodes UTF-8, and components are kept exactly as written so a proxy forwards what
 * it received; only comparison (uriEquals) and `hostname`/`userUnescaped` normalise.
 *
 * The parser runs for every Request-URI and several header URIs of every message, so it scans with
 * charCodeAt against 256-entry tables and slices each component once.
 */
import { SipParseError } from './errors.js';

/** A URI parameter value as written; null for a flag parameter such as `;lr`. */
export type UriParamValue = string | null;

export interface SipUriInit {
  scheme: 'sip' | 'sips';
  host: string;
  user?: string;
  password?: string;
  port?: number;
  /** A Map is adopted as is (keys must be lower-case: any that are not are lower-cased). */
  params?: Map<string, UriParamValue> | Record<string, UriParamValue>;
  headers?: Array<[string, string]>;
}

// ---------------------------------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1)
// ---------------------------------------------------------------------------------------------------

function table(chars: string, high: boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  // Octets >= 0x80 are not in the grammar, but UTF-8 text does show up in users and parameters:
  // accepting it is the liberal reading the message layer relies on.
  if (high) for (let c = 0x80; c <= 0xff; c++) t[c] = 1;
  return t;
}

/** mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")" */
const MARK = "-_.!~*'()";
/** unreserved = alphanum / mark */
const UNRESERVED = table(MARK, false);
/**
 * user = 1*( unreserved / escaped / user-unreserved ), user-unreserved = "&" / "=" / "+" / "$" / "," /
 * ";" / "?" / "/". "#" is accepted too: phones send dial strings such as `*21#` unescaped.
 */
const USER = table(MARK + '&=+$,;?/#', true);
/** What escapeUriUser leaves alone: the user grammar without the liberal extras. */
const USER_STRICT = table(MARK + '&=+$,;?/', false);
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
const PASSWORD = table(MARK + '&=+$,', true);
/** hostname characters; "_" is not in the grammar but appears in real host names. */
const HOST = table('-._', false);
/** paramchar = param-unreserved / unreserved / escaped, param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$" */
const PARAM = table(MARK + '[]/:&+$', true);
/** hname / hvalue = *( hnv-unreserved / unreserved / escaped ), hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$" */
const HNV = table(MARK + '[]/?:+$', true);
/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
const SCHEME = table('+-.', false);
/** uric = reserved / unreserved / escaped, plus "#" and "[" "]" that real absolute URIs carry. */
const URIC = table(MARK + ';/?:@&=+$,#[]', true);
/** reserved = ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / "," (RFC 2396 §2.2) */
const RESERVED = new Uint8Array(256);
for (const ch of ';/?:@&=+$,') RESERVED[ch.charCodeAt(0)] = 1;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

function isHexAt(s: string, i: number): boolean {
  return hexValue(s.charCodeAt(i)) >= 0;
}

const HEX = '0123456789ABCDEF';

function uriError(message: string, position: number): SipParseError {
  return new SipParseError('SIP_ERR_URI', message, undefined, position);
}

function describeChar(s: string, i: number): string {
  const c = s.charCodeAt(i);
  if (c === 0x20 || c === 0x09) return 'whitespace';
  if (c < 0x20 || c >= 0x7f) return `octet 0x${c.toString(16).padStart(2, '0')}`;
  return JSON.stringify(s[i]);
}

/** Scans chars of `cls` and %HH escapes from `i`; returns the index of the first other char. */
function scanClass(s: string, i: number, n: number, cls: Uint8Array, what: string): number {
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x25 /* % */) {
      if (i + 2 >= n || !isHexAt(s, i + 1) || !isHexAt(s, i + 2)) throw uriError(`bad escape "%" in the ${what}`, i);
      i += 3;
    } else if (c < 256 && cls[c] === 1) {
      i++;
    } else {
      break;
    }
  }
  return i;
}

/** Lower-cases A-Z only: String#toLowerCase would also fold latin1 letters and change octets. */
function asciiLower(s: string): string {
  let i = 0;
  const n = s.length;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) break;
  }
  if (i === n) return s;
  let ascii = true;
  for (let j = 0; j < n; j++) {
    if (s.charCodeAt(j) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return s.toLowerCase();
  const codes = new Array<number>(n);
  for (let j = 0; j < n; j++) {
    const c = s.charCodeAt(j);
    codes[j] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
  }
  return fromCodes(codes);
}

function fromCodes(codes: number[]): string {
  if (codes.length <= 8192) return String.fromCharCode(...codes);
  const parts: string[] = [];
  for (let i = 0; i < codes.length; i += 8192) parts.push(String.fromCharCode(...codes.slice(i, i + 8192)));
  return parts.join('');
}

function toParamMap(params: Map<string, UriParamValue> | Record<string, UriParamValue> | undefined): Map<string, UriParamValue> {
  if (params === undefined) return new Map();
  if (params instanceof Map) {
    for (const k of params.keys()) {
      if (asciiLower(k) !== k) {
        const m = new Map<string, UriParamValue>();
        for (const [key, v] of params) m.set(asciiLower(key), v);
        return m;
      }
    }
    return params;
  }
  const m = new Map<string, UriParamValue>();
  for (const key of Object.keys(params)) m.set(asciiLower(key), params[key] ?? null);
  return m;
}

function serializeParams(params: Map<string, UriParamValue>): string {
  let out = '';
  for (const [k, v] of params) out += v === null ? ';' + k : ';' + k + '=' + v;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------------

/** A SIP or SIPS URI (RFC 3261 §19.1.1), every component as written. */
export class SipUri {
  scheme: 'sip' | 'sips';
  /** Exactly as written, escapes kept (e.g. `user;par=u%40example.net`). */
  user: string | undefined;
  password: string | undefined;
  /** As written; an IPv6 reference keeps its brackets. */
  host: string;
  port: number | undefined;
  /** Keyed by the lower-cased name; values as written; insertion order kept. */
  params: Map<string, UriParamValue>;
  /** `?a=b&c=d` as [['a','b'],['c','d']], as written. */
  headers: Array<[string, string]>;

  constructor(init: SipUriInit) {
    if (init.scheme !== 'sip' && init.scheme !== 'sips') throw new TypeError(`not a SIP URI scheme: ${String(init.scheme)}`);
    if (typeof init.host !== 'string' || init.host.length === 0) throw new TypeError('a SIP URI needs a host');
    if (init.port !== undefined && !(Number.isInteger(init.port) && init.port >= 0 && init.port <= 65535)) {
      throw new TypeError(`bad port ${String(init.port)}`);
    }
    this.scheme = init.scheme;
    this.user = init.user;
    this.password = init.password;
    this.host = init.host;
    this.port = init.port;
    this.params = toParamMap(init.params);
    this.headers = init.headers ?? [];
  }

  /** Host lower-cased, IPv6 brackets removed: the form for comparisons and DNS. */
  get hostname(): string {
    const h = this.host;
    if (h.charCodeAt(0) === 0x5b && h.charCodeAt(h.length - 1) === 0x5d) return asciiLower(h.slice(1, -1));
    return asciiLower(h);
  }

  /** The `transport` parameter lower-cased ('udp', 'tcp', 'tls', 'sctp', 'ws', 'wss' …), or undefined. */
  get transport(): string | undefined {
    const v = this.params.get('transport');
    return v === undefined || v === null ? undefined : asciiLower(v);
  }

  /** RFC 3261 §16.4: the URI carries `lr`, so its owner is a loose router. */
  get lr(): boolean {
    return this.params.has('lr');
  }

  /**
   * The user part with every %HH decoded. Octets stay octets: `%00` becomes "\x00" and the user is not
   * shortened there (RFC 4475 §3.1.1.4).
   */
  get userUnescaped(): string | undefined {
    return this.user === undefined ? undefined : unescapeUriPart(this.user);
  }

  getParam(name: string): UriParamValue | undefined {
    return this.params.get(asciiLower(name));
  }

  setParam(name: string, value: UriParamValue): this {
    this.params.set(asciiLower(name), value);
    return this;
  }

  deleteParam(name: string): this {
    this.params.delete(asciiLower(name));
    return this;
  }

  clone(): SipUri {
    const headers: Array<[string, string]> = new Array(this.headers.length);
    for (let i = 0; i < this.headers.length; i++) {
      const h = this.headers[i]!;
      headers[i] = [h[0], h[1]];
    }
    return new SipUri({
      scheme: this.scheme, user: this.user, password: this.password, host: this.host, port: this.port,
      params: new Map(this.params), headers,
    });
  }

  /** scheme ":" [ user [ ":" password ] "@" ] host [ ":" port ] *( ";" param ) [ "?" headers ] */
  toString(): string {
    let out = this.scheme + ':';
    if (this.user !== undefined) {
      out += this.user;
      if (this.password !== undefined) out += ':' + this.password;
      out += '@';
    }
    out += this.host;
    if (this.port !== undefined) out += ':' + this.port;
    if (this.params.size > 0) out += serializeParams(this.params);
    const n = this.headers.length;
    for (let i = 0; i < n; i++) {
      const h = this.headers[i]!;
      out += (i === 0 ? '?' : '&') + h[0] + '=' + h[1];
    }
    return out;
  }
}

/** A tel URI (RFC 3966): a global (`+…`) or local number, visual separators kept as written. */
export class TelUri {
  readonly scheme = 'tel' as const;
  /** telephone-subscriber digits as written, e.g. '+1-201-555-0123'. */
  number: string;
  /** Keyed by the lower-cased name; values as written. */
  params: Map<string, UriParamValue>;

  constructor(number: string, params?: Map<string, UriParamValue> | Record<string, UriParamValue>) {
    if (typeof number !== 'string' || number.length === 0) throw new TypeError('a tel URI needs a number');
    this.number = number;
    this.params = toParamMap(params);
  }

  clone(): TelUri {
    return new TelUri(this.number, new Map(this.params));
  }

  toString(): string {
    return 'tel:' + this.number + serializeParams(this.params);
  }
}

/** Any other absoluteURI (RFC 3261 §25.1): kept opaque, so a proxy can still route on or reject it. */
export class AbsoluteUri {
  /** Lower-cased. */
  scheme: string;
  /** Everything after "scheme:", as written. */
  opaque: string;

  constructor(scheme: string, opaque: string) {
    if (typeof scheme !== 'string' || scheme.length === 0) throw new TypeError('a URI needs a scheme');
    if (typeof opaque !== 'string' || opaque.length === 0) throw new TypeError('an absolute URI needs content after the scheme');
    this.scheme = asciiLower(scheme);
    this.opaque = opaque;
  }

  clone(): AbsoluteUri {
    return new AbsoluteUri(this.scheme, this.opaque);
  }

  toString(): string {
    return this.scheme + ':' + this.opaque;
  }
}

export type Uri = SipUri | TelUri | AbsoluteUri;

// ---------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------

/**
 * Parses a SIP, SIPS, tel or other absolute URI (RFC 3261 §19.1.1, §25.1; RFC 3966). The caller has
 * already removed the name-addr brackets; whitespace, "<" and ">" are errors here (RFC 4475 §3.1.2.7,
 * §3.1.2.8). Throws SipParseError('SIP_ERR_URI') on any grammar error.
 */
export function parseUri(text: string): Uri {
  const n = text.length;
  if (n === 0) throw uriError('empty URI', 0);
  const c0 = text.charCodeAt(0) | 0x20;
  if (c0 < 0x61 || c0 > 0x7a) throw uriError(`URI scheme must start with a letter, not ${describeChar(text, 0)}`, 0);
  let i = 1;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c >= 256 || SCHEME[c] !== 1) break;
    i++;
  }
  if (i >= n || text.charCodeAt(i) !== 0x3a /* : */) {
    throw uriError(i >= n ? 'missing ":" after the URI scheme' : `invalid character ${describeChar(text, i)} in the URI scheme`, i);
  }
  // The scheme is case-insensitive (RFC 3261 §19.1.1): compare with the letters folded.
  if (c0 === 0x73 && (text.charCodeAt(1) | 0x20) === 0x69 && (text.charCodeAt(2) | 0x20) === 0x70) {
    if (i === 3) return parseSipRest(text, 'sip', 4);
    if (i === 4 && (text.charCodeAt(3) | 0x20) === 0x73) return parseSipRest(text, 'sips', 5);
  }
  if (i === 3 && c0 === 0x74 && (text.charCodeAt(1) | 0x20) === 0x65 && (text.charCodeAt(2) | 0x20) === 0x6c) {
    return parseTelRest(text, 4);
  }
  return parseAbsoluteRest(text, i);
}

/** parseUri restricted to sip: and sips: (a registrar's To, a Route entry …). */
export function parseSipUri(text: string): SipUri {
  const uri = parseUri(text);
  if (!(uri instanceof SipUri)) throw uriError(`expected a SIP or SIPS URI, got scheme "${uri.scheme}"`, 0);
  return uri;
}

function parseSipRest(text: string, scheme: 'sip' | 'sips', start: number): SipUri {
  const n = text.length;
  if (start >= n) throw uriError('missing host', start);
  let user: string | undefined;
  let password: string | undefined;
  let i = start;

  // userinfo: "@" may appear unescaped nowhere else (RFC 3261 §25.1), so the first one ends it. The
  // user may hold ";" "?" "/" (RFC 4475 §3.1.1.2, §3.1.1.9); the first ":" starts the password.
  const at = text.indexOf('@', start);
  if (at !== -1) {
    let j = scanClass(text, start, at, USER, 'user part');
    if (j === start) throw uriError('empty user part', start);
    user = text.slice(start, j);
    if (j < at) {
      if (text.charCodeAt(j) !== 0x3a) throw uriError(`invalid character ${describeChar(text, j)} in the user part`, j);
      const ps = j + 1;
      j = scanClass(text, ps, at, PASSWORD, 'password');
      if (j < at) throw uriError(`invalid character ${describeChar(text, j)} in the password`, j);
      password = text.slice(ps, at);
    }
    i = at + 1;
    if (i >= n) throw uriError('missing host', i);
  }

  // host = hostname / IPv4address / IPv6reference
  let host: string;
  const hs = i;
  if (text.charCodeAt(i) === 0x5b /* [ */) {
    const close = text.indexOf(']', i + 1);
    if (close === -1) throw uriError('unterminated IPv6 reference', i);
    if (!isIpv6Address(text, i + 1, close)) throw uriError('invalid IPv6 reference', i);
    i = close + 1;
  } else {
    let prevDot = true; // no leading "." and no empty label
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x2e) {
        if (prevDot) throw uriError('empty label in host', i);
        prevDot = true;
      } else if (c < 256 && HOST[c] === 1) {
        prevDot = false;
      } else {
        break;
      }
      i++;
    }
    if (i === hs) {
      const c = text.charCodeAt(i);
      const delimiter = i >= n || c === 0x3a || c === 0x3b || c === 0x3f;
      throw uriError(delimiter ? 'empty host' : `invalid character ${describeChar(text, i)} in host`, i);
    }
  }
  host = text.slice(hs, i);

  let port: number | undefined;
  if (i < n && text.charCodeAt(i) === 0x3a) {
    const ps = ++i;
    let p = 0;
    while (i < n) {
      const d = text.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      p = p * 10 + d;
      if (p > 65535) throw uriError('port out of range', ps);
      i++;
    }
    if (i === ps) throw uriError('empty port', ps);
    port = p;
  }

  const params = new Map<string, UriParamValue>();
  if (i < n && text.charCodeAt(i) === 0x3b) i = parseParams(text, i, params);

  const headers: Array<[string, string]> = [];
  if (i < n && text.charCodeAt(i) === 0x3f /* ? */) {
    do {
      const ns = ++i;
      i = scanClass(text, i, n, HNV, 'URI header name');
      if (i === ns) throw uriError('empty URI header name', ns);
      if (i >= n || text.charCodeAt(i) !== 0x3d) {
        throw uriError(i >= n ? 'expected "=" after the URI header name' : `invalid character ${describeChar(text, i)} in a URI header name`, i);
      }
      const name = text.slice(ns, i);
      const vs = ++i;
      i = scanClass(text, i, n, HNV, 'URI header value');
      headers.push([name, text.slice(vs, i)]);
    } while (i < n && text.charCodeAt(i) === 0x26 /* & */);
  }

  if (i < n) throw uriError(`invalid character ${describeChar(text, i)} in URI`, i);
  return new SipUri({ scheme, host, user, password, port, params, headers });
}

/**
 * Reads `*( ";" pname [ "=" pvalue ] )` from `i` (at a ";") into `params`, returning the index after.
 * RFC 3261 §19.1.1: "any given parameter-name MUST NOT appear more than once."
 */
function parseParams(text: string, i: number, params: Map<string, UriParamValue>): number {
  const n = text.length;
  while (i < n && text.charCodeAt(i) === 0x3b) {
    const ns = ++i;
    i = scanClass(text, i, n, PARAM, 'URI parameter name');
    if (i === ns) throw uriError(i < n && text.charCodeAt(i) !== 0x3b && text.charCodeAt(i) !== 0x3d
      ? `invalid character ${describeChar(text, i)} in URI parameters`
      : 'empty URI parameter name', ns);
    const name = asciiLower(text.slice(ns, i));
    let value: UriParamValue = null;
    if (i < n && text.charCodeAt(i) === 0x3d /* = */) {
      const vs = ++i;
      i = scanClass(text, i, n, PARAM, 'URI parameter value');
      // pvalue is 1*paramchar; ";name=" is kept as an empty value rather than refused.
      value = text.slice(vs, i);
    }
    if (params.has(name)) throw uriError(`URI parameter "${name}" appears twice`, ns);
    params.set(name, value);
  }
  return i;
}

/**
 * RFC 3966 §3: telephone-subscriber = global-number / local-number, then parameters. Visual separators
 * are accepted anywhere in the digits; a local number without phone-context is accepted too.
 */
function parseTelRest(text: string, start: number): TelUri {
  const n = text.length;
  let i = start;
  const global = i < n && text.charCodeAt(i) === 0x2b /* + */;
  if (global) i++;
  // global-number-digits = "+" *phonedigit DIGIT *phonedigit; local-number-digits =
  // *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex; visual-separator = "-" / "." / "(" / ")"
  let digits = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if ((c >= 0x30 && c <= 0x39) || (!global && (hexValue(c) >= 0 || c === 0x2a || c === 0x23))) digits++;
    else if (c !== 0x2d && c !== 0x2e && c !== 0x28 && c !== 0x29) break;
    i++;
  }
  if (digits === 0) throw uriError('tel URI without digits', start);
  const number = text.slice(start, i);
  const params = new Map<string, UriParamValue>();
  if (i < n && text.charCodeAt(i) === 0x3b) i = parseParams(text, i, params);
  if (i < n) throw uriError(`invalid character ${describeChar(text, i)} in tel URI`, i);
  return new TelUri(number, params);
}

/** absoluteURI = scheme ":" ( hier-part / opaque-part ): kept whole, checked against uric only. */
function parseAbsoluteRest(text: string, colon: number): AbsoluteUri {
  const n = text.length;
  const start = colon + 1;
  if (start >= n) throw uriError('nothing after the URI scheme', start);
  const i = scanClass(text, start, n, URIC, 'URI');
  if (i < n) throw uriError(`invalid character ${describeChar(text, i)} in URI`, i);
  return new AbsoluteUri(text.slice(0, colon), text.slice(start));
}

// ---------------------------------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------------------------------

/** IPv4address: four dotted decimal numbers of at most three digits, each 0-255. */
export function isIpv4(host: string): boolean {
  return isIpv4Address(host, 0, host.length);
}

/** IPv6reference = "[" IPv6address "]" (RFC 3261 §25.1, as corrected by RFC 5954). No zone index. */
export function isIpv6Reference(host: string): boolean {
  const n = host.length;
  return n > 2 && host.charCodeAt(0) === 0x5b && host.charCodeAt(n - 1) === 0x5d && isIpv6Address(host, 1, n - 1);
}

function isIpv4Address(s: string, a: number, b: number): boolean {
  let parts = 0;
  let i = a;
  for (;;) {
    let v = 0;
    const ds = i;
    while (i < b) {
      const d = s.charCodeAt(i) - 0x30;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
      i++;
    }
    if (i === ds || i - ds > 3 || v > 255) return false;
    parts++;
    if (i === b) return parts === 4;
    if (parts === 4 || s.charCodeAt(i) !== 0x2e) return false;
    i++;
  }
}

/** IPv6address between [a, b): hex groups, at most one "::", an optional trailing IPv4address. */
function isIpv6Address(s: string, a: number, b: number): boolean {
  if (b - a < 2) return false;
  let groups = 0;
  let compressed = false;
  let i = a;
  if (s.charCodeAt(i) === 0x3a) {
    if (s.charCodeAt(i + 1) !== 0x3a) return false;
    compressed = true;
    i += 2;
    if (i === b) return true;
  }
  for (;;) {
    const gs = i;
    while (i < b && isHexAt(s, i)) i++;
    if (i < b && s.charCodeAt(i) === 0x2e) {
      // Trailing dotted quad: counts as two groups and must end the address.
      if (!isIpv4Address(s, gs, b)) return false;
      groups += 2;
      break;
    }
    if (i === gs || i - gs > 4) return false;
    groups++;
    if (i === b) break;
    if (s.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (i < b && s.charCodeAt(i) === 0x3a) {
      if (compressed) return false;
      compressed = true;
      i++;
      if (i === b) break;
    } else if (i === b) {
      return false;
    }
  }
  return compressed ? groups <= 7 : groups === 8;
}

/** The 8 groups of an IPv6 address already validated, for comparing differently written forms. */
function ipv6Groups(s: string): number[] {
  const gap = s.indexOf('::');
  const head = groupsOf(gap === -1 ? s : s.slice(0, gap));
  const tail = gap === -1 ? [] : groupsOf(s.slice(gap + 2));
  while (head.length + tail.length < 8) head.push(0);
  for (const g of tail) head.push(g);
  return head;
}

function groupsOf(part: string): number[] {
  const out: number[] = [];
  if (part.length === 0) return out;
  for (const piece of part.split(':')) {
    if (piece.indexOf('.') === -1) {
      out.push(parseInt(piece, 16));
    } else {
      const q = piece.split('.').map(Number);
      out.push((q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------------------------------

/** Decodes every valid %HH to its octet; an invalid escape stays as written. */
export function unescapeUriPart(s: string): string {
  let p = s.indexOf('%');
  if (p === -1) return s;
  const parts: string[] = [];
  let from = 0;
  const n = s.length;
  while (p !== -1) {
    if (p + 2 < n) {
      const h = hexValue(s.charCodeAt(p + 1));
      const l = hexValue(s.charCodeAt(p + 2));
      if (h >= 0 && l >= 0) {
        if (p > from) parts.push(s.slice(from, p));
        parts.push(String.fromCharCode((h << 4) | l));
        from = p + 3;
        p = s.indexOf('%', from);
        continue;
      }
    }
    p = s.indexOf('%', p + 1);
  }
  if (from < n) parts.push(s.slice(from));
  return parts.join('');
}

/**
 * Escapes, as %HH, every octet the user part may not carry literally (RFC 3261 §25.1 `user`), "%"
 * included: the input is raw text, not an already escaped user. Chars above 0xFF are not octets.
 */
export function escapeUriUser(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n && USER_STRICT[s.charCodeAt(i)] === 1) i++;
  if (i === n) return s;
  const parts: string[] = [];
  let from = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 256 && USER_STRICT[c] === 1) continue;
    if (c > 0xff) throw new TypeError('escapeUriUser takes a wire string (one octet per char)');
    if (i > from) parts.push(s.slice(from, i));
    parts.push('%' + HEX[c >> 4]! + HEX[c & 15]!);
    from = i + 1;
  }
  if (from < n) parts.push(s.slice(from));
  return parts.join('');
}

/**
 * The comparison form of a component (RFC 3261 §19.1.4): "characters other than those in the
 * 'reserved' set are equivalent to their '%' HEX HEX encoding", so those escapes are decoded; escapes
 * of reserved chars and of "%" itself stay, with upper-case hex. `fold` lower-cases A-Z too.
 */
function comparable(s: string, fold: boolean): string {
  if (s.indexOf('%') === -1) return fold ? asciiLower(s) : s;
  const n = s.length;
  const codes: number[] = [];
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < n) {
      const h = hexValue(s.charCodeAt(i + 1));
      const l = hexValue(s.charCodeAt(i + 2));
      if (h >= 0 && l >= 0) {
        const v = (h << 4) | l;
        i += 2;
        if (RESERVED[v] === 1 || v === 0x25) {
          codes.push(0x25, HEX.charCodeAt(h), HEX.charCodeAt(l));
          continue;
        }
        c = v;
      }
    }
    if (fold && c >= 0x41 && c <= 0x5a) c |= 0x20;
    codes.push(c);
  }
  return fromCodes(codes);
}

// ---------------------------------------------------------------------------------------------------
// Equality
// ---------------------------------------------------------------------------------------------------

/** §19.1.4: these parameters must be present in both URIs or in neither. */
const MUST_MATCH = ['transport', 'user', 'ttl', 'method', 'maddr'] as const;

/**
 * URI equality. SIP/SIPS: RFC 3261 §19.1.4 — userinfo case-sensitive, every other component
 * case-insensitive, escapes of unreserved chars equal to the chars; transport/user/ttl/method/maddr
 * compared if present in either URI, other parameters only if present in both; headers must match as
 * a set; sip ≠ sips; no port ≠ port 5060. tel: RFC 3966 §4 — same kind of number, equal digits once
 * visual separators are removed, same parameter set, case-insensitive. Other schemes: same scheme and
 * same text after escape normalisation.
 */
export function uriEquals(a: Uri, b: Uri): boolean {
  if (a === b) return true;
  if (a instanceof SipUri) return b instanceof SipUri && sipUriEquals(a, b);
  if (a instanceof TelUri) return b instanceof TelUri && telUriEquals(a, b);
  if (b instanceof SipUri || b instanceof TelUri) return false;
  return a.scheme === b.scheme && (a.opaque === b.opaque || comparable(a.opaque, false) === comparable(b.opaque, false));
}

function sipUriEquals(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme || a.port !== b.port) return false;
  if (!userinfoEquals(a.user, b.user) || !userinfoEquals(a.password, b.password)) return false;
  if (!hostEquals(a.host, b.host)) return false;

  const pa = comparableParams(a.params);
  const pb = comparableParams(b.params);
  for (const [k, va] of pa) {
    const vb = pb.get(k);
    if (vb === undefined) {
      if ((MUST_MATCH as readonly string[]).includes(k)) return false;
    } else if (!paramValueEquals(va, vb)) {
      return false;
    }
  }
  for (const k of MUST_MATCH) if (pb.has(k) && !pa.has(k)) return false;

  // "URI header components are never ignored": every header of one must be in the other.
  const n = a.headers.length;
  if (n !== b.headers.length) return false;
  if (n === 0) return true;
  const used = new Array<boolean>(n).fill(false);
  for (const [ha, va] of a.headers) {
    const name = comparable(ha, true);
    const value = comparable(va, false);
    let found = false;
    for (let j = 0; j < n; j++) {
      if (used[j]) continue;
      const hb = b.headers[j]!;
      if (comparable(hb[0], true) === name && comparable(hb[1], false) === value) {
        used[j] = true;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

function userinfoEquals(a: string | undefined, b: string | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return comparable(a, false) === comparable(b, false);
}

function hostEquals(a: string, b: string): boolean {
  if (a === b) return true;
  if (a.length === 0 || b.length === 0) return false;
  const a6 = a.charCodeAt(0) === 0x5b;
  if (a6 !== (b.charCodeAt(0) === 0x5b)) return false;
  if (asciiLower(a) === asciiLower(b)) return true;
  // [::1] and [0:0:0:0:0:0:0:1] are the same address.
  if (!a6 || !isIpv6Reference(a) || !isIpv6Reference(b)) return false;
  const ga = ipv6Groups(a.slice(1, -1));
  const gb = ipv6Groups(b.slice(1, -1));
  for (let i = 0; i < 8; i++) if (ga[i] !== gb[i]) return false;
  return true;
}

function comparableParams(params: Map<string, UriParamValue>): Map<string, UriParamValue> {
  let escaped = false;
  for (const k of params.keys()) {
    if (k.indexOf('%') !== -1) {
      escaped = true;
      break;
    }
  }
  if (!escaped) return params;
  const m = new Map<string, UriParamValue>();
  for (const [k, v] of params) m.set(comparable(k, true), v);
  return m;
}

function paramValueEquals(a: UriParamValue, b: UriParamValue): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return comparable(a, true) === comparable(b, true);
}

function telUriEquals(a: TelUri, b: TelUri): boolean {
  if ((a.number.charCodeAt(0) === 0x2b) !== (b.number.charCodeAt(0) === 0x2b)) return false;
  if (telDigits(a.number) !== telDigits(b.number)) return false;
  if (a.params.size !== b.params.size) return false;
  const pa = comparableParams(a.params);
  const pb = comparableParams(b.params);
  for (const [k, va] of pa) {
    const vb = pb.get(k);
    if (vb === undefined || !paramValueEquals(va, vb)) return false;
  }
  return true;
}

/** The number without visual separators, lower-cased (local numbers may hold hex digits). */
function telDigits(number: string): string {
  const codes: number[] = [];
  for (let i = 0; i < number.length; i++) {
    const c = number.charCodeAt(i);
    if (c === 0x2d || c === 0x2e || c === 0x28 || c === 0x29) continue;
    codes.push(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
  }
  return fromCodes(codes);
}
