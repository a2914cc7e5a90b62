import { SipParseError } from './errors.js';
import { type ParamValue, TOKEN, isWs, parseParams, quote, scanQuoted, serializeParams, skipWs, unquote, isToken } from './grammar.js';
import { type Uri, parseUri } from './uri.js';

/**
 * A name-addr or addr-spec with header parameters: the value type of From, To, Contact, Route,
 * Record-Route, Path, Refer-To, P-Asserted-Identity … (RFC 3261 §20.10, §25.1).
 */
export class NameAddr {
  /** Display name, unquoted (a wire string), or undefined. */
  displayName: string | undefined;
  uri: Uri;
  params: Map<string, ParamValue>;

  constructor(uri: Uri, params?: Map<string, ParamValue>, displayName?: string) {
    this.uri = uri;
    this.params = params ?? new Map();
    this.displayName = displayName;
  }

  get tag(): string | undefined {
    return this.params.get('tag') ?? undefined;
  }

  /** Contact `expires` parameter, already validated as delta-seconds by the parser. */
  get expires(): number | undefined {
    const v = this.params.get('expires');
    return v === undefined || v === null ? undefined : Number(v);
  }

  /** Contact `q` parameter (0 to 1), or undefined. */
  get q(): number | undefined {
    const v = this.params.get('q');
    return v === undefined || v === null ? undefined : Number(v);
  }

  clone(): NameAddr {
    return new NameAddr(this.uri.clone(), new Map(this.params), this.displayName);
  }

  /** Always the name-addr form with angle brackets, so URI parameters never turn into header parameters. */
  toString(): string {
    let out = '';
    if (this.displayName !== undefined && this.displayName.length > 0) {
      out = (isTokenList(this.displayName) ? this.displayName : quote(this.displayName)) + ' ';
    }
    return out + '<' + this.uri.toString() + '>' + serializeParams(this.params);
  }
}

function isTokenList(s: string): boolean {
  for (const word of s.split(' ')) if (!isToken(word)) return false;
  return true;
}

/**
 * Parses a header value holding one name-addr/addr-spec (From, To) or, when `list` is set, a
 * comma-separated list (Contact, Route, Record-Route, Path). Throws SipParseError on any grammar error.
 */
export function parseNameAddrs(value: string, header: string, list: boolean, out: NameAddr[] = []): NameAddr[] {
  const n = value.length;
  let i = skipWs(value, 0);
  for (;;) {
    let displayName: string | undefined;
    let uriText: string;
    if (i >= n) throw new SipParseError('SIP_ERR_HEADER', 'empty value', header, i);
    if (value.charCodeAt(i) === 0x22 /* " */) {
      const end = scanQuoted(value, i, header);
      displayName = unquote(value.slice(i, end));
      i = skipWs(value, end);
      if (value.charCodeAt(i) !== 0x3c) throw new SipParseError('SIP_ERR_HEADER', 'expected "<" after display name', header, i);
    } else {
      // Either *(token LWS) "<" (name-addr) or an addr-spec: read tokens and see what follows them.
      let j = i;
      while (j < n) {
        const c = value.charCodeAt(j);
        if (TOKEN[c] === 1 || isWs(c)) j++;
        else break;
      }
      if (value.charCodeAt(j) === 0x3c) {
        // RFC 4475 §3.1.1.6: no LWS between display name and "<" is accepted.
        const dn = value.slice(i, j).trim();
        displayName = dn.length > 0 ? dn.replace(/[ \t]+/g, ' ') : undefined;
        i = j;
      }
    }
    if (value.charCodeAt(i) === 0x3c /* < */) {
      const close = value.indexOf('>', i + 1);
      if (close === -1) throw new SipParseError('SIP_ERR_HEADER', 'missing ">"', header, i);
      uriText = value.slice(i + 1, close);
      i = close + 1;
    } else {
      // addr-spec: RFC 3261 §20.10 — without brackets, the URI ends at ";" (header params), "," or LWS,
      // and must not contain "?" (headers need brackets: RFC 4475 §3.1.2.13).
      const start = i;
      while (i < n) {
        const c = value.charCodeAt(i);
        if (c === 0x3b || c === 0x2c || c === 0x20 || c === 0x09) break;
        if (c === 0x3f) throw new SipParseError('SIP_ERR_HEADER', 'URI with "?" must be enclosed in "<>"', header, i);
        i++;
      }
      uriText = value.slice(start, i);
    }
    let uri: Uri;
    try {
      uri = parseUri(uriText);
    } catch (err) {
      if (err instanceof SipParseError) throw new SipParseError('SIP_ERR_HEADER', err.message, header, i);
      throw err;
    }
    const params = new Map<string, ParamValue>();
    i = parseParams(value, i, params, header);
    out.push(new NameAddr(uri, params, displayName));
    if (i >= n) return out;
    if (!list || value.charCodeAt(i) !== 0x2c) {
      throw new SipParseError('SIP_ERR_HEADER', `unexpected character ${JSON.stringify(value[i])}`, header, i);
    }
    i = skipWs(value, i + 1);
  }
}
