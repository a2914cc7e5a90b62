/**
 * Lexical building blocks of RFC 3261 §25.1 shared by the header parsers: character classes as lookup
 * tables, LWS skipping, tokens, quoted strings and generic parameters. Inputs are wire strings (one char
 * per octet) and positions are indexes into them; every function is allocation-light because it runs
 * for every header of every message.
 */
import { SipParseError } from './errors.js';

function table(chars: string, ranges: Array<[number, number]> = []): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [a, b] of ranges) for (let c = a; c <= b; c++) t[c] = 1;
  return t;
}

const ALPHANUM: Array<[number, number]> = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x61, 0x7a],
];

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~", ALPHANUM);

/**
 * Characters of a generic-param value that is not a quoted string: token, plus the characters of a host
 * (IPv6 references in received= and maddr=) — `gen-value = token / host / quoted-string`.
 */
export const PARAM_VALUE = table("-.!%*_+`'~:[]", ALPHANUM);

export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Skips SP / HTAB (folding was already replaced by SP when the header was read). */
export function skipWs(s: string, i: number): number {
  const n = s.length;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09) break;
    i++;
  }
  return i;
}

export function scanToken(s: string, i: number): number {
  const n = s.length;
  while (i < n && TOKEN[s.charCodeAt(i)] === 1) i++;
  return i;
}

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TOKEN[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/**
 * Reads the quoted-string starting at `i` (which must be a DQUOTE) and returns the index just past the
 * closing quote. quoted-pair escapes any octet but CR and LF (§25.1).
 */
export function scanQuoted(s: string, i: number, header: string): number {
  const n = s.length;
  let j = i + 1;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c === 0x5c) {
      const next = s.charCodeAt(j + 1);
      if (j + 1 >= n || next === 0x0d || next === 0x0a) break;
      j += 2;
      continue;
    }
    if (c === 0x0d || c === 0x0a) break;
    j++;
  }
  throw new SipParseError('SIP_ERR_HEADER', 'unterminated quoted string', header, i);
}

/** The content of a quoted string (quotes removed, quoted-pairs resolved). */
export function unquote(quoted: string): string {
  if (quoted.length < 2 || quoted.charCodeAt(0) !== 0x22) return quoted;
  const inner = quoted.slice(1, -1);
  return inner.indexOf('\\') === -1 ? inner : inner.replace(/\\(.)/gs, '$1');
}

/** Quotes a value as a quoted-string, escaping `"` and `\`. */
export function quote(value: string): string {
  return '"' + value.replace(/["\\]/g, '\\$&') + '"';
}

export type ParamValue = string | null;

/**
 * Parses `*( SEMI generic-param )` starting at `i` into `params` and returns the index of the first
 * character after them (a comma, or the end). `generic-param = token [ EQUAL gen-value ]`; names are
 * stored lower-cased, values as written (quoted strings keep their quotes so they serialise unchanged).
 */
export function parseParams(s: string, i: number, params: Map<string, ParamValue>, header: string): number {
  const n = s.length;
  i = skipWs(s, i);
  while (i < n && s.charCodeAt(i) === 0x3b /* ; */) {
    i = skipWs(s, i + 1);
    const nameStart = i;
    i = scanToken(s, i);
    if (i === nameStart) throw new SipParseError('SIP_ERR_HEADER', 'empty parameter name', header, i);
    const name = s.slice(nameStart, i).toLowerCase();
    i = skipWs(s, i);
    let value: ParamValue = null;
    if (i < n && s.charCodeAt(i) === 0x3d /* = */) {
      i = skipWs(s, i + 1);
      const valueStart = i;
      if (s.charCodeAt(i) === 0x22) {
        i = scanQuoted(s, i, header);
      } else {
        while (i < n && PARAM_VALUE[s.charCodeAt(i)] === 1) i++;
        if (i === valueStart) throw new SipParseError('SIP_ERR_HEADER', `empty value for parameter ${name}`, header, i);
      }
      value = s.slice(valueStart, i);
      i = skipWs(s, i);
    }
    params.set(name, value);
  }
  return i;
}

export function serializeParams(params: ReadonlyMap<string, ParamValue>): string {
  let out = '';
  for (const [name, value] of params) out += value === null ? ';' + name : ';' + name + '=' + value;
  return out;
}

/** delta-seconds and other unsigned 32-bit scalars: 1*DIGIT, at most 2**32-1 (RFC 4475 §3.1.2.4). */
export function parseUint32(s: string, header: string): number {
  const n = s.length;
  if (n === 0) throw new SipParseError('SIP_ERR_HEADER', 'expected a number', header, 0);
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) throw new SipParseError('SIP_ERR_HEADER', `not a number: ${JSON.stringify(s)}`, header, i);
    v = v * 10 + d;
    if (v > 0xffffffff) throw new SipParseError('SIP_ERR_HEADER', `value too large: ${s}`, header, i);
  }
  return v;
}

/** Splits a comma-separated list of tokens (Require, Supported, Allow …), ignoring empty elements. */
export function parseTokenList(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const t = part.trim();
    if (t.length > 0) out.push(t);
  }
  return out;
}
