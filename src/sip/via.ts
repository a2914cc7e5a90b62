import { SipParseError } from './errors.js';
import { type ParamValue, TOKEN, parseParams, scanToken, serializeParams, skipWs } from './grammar.js';

/** RFC 3261 §8.1.1.7: a branch that starts with the magic cookie was made by an RFC 3261 element. */
export const MAGIC_COOKIE = 'z9hG4bK';

/** One Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=…;received=…;rport=…`. */
export class Via {
  protocol: string;
  version: string;
  /** Upper-cased transport token as sent (`UDP`, `TCP`, `TLS`, `WS`, `WSS`, `SCTP`, or any extension). */
  transport: string;
  host: string;
  port: number | undefined;
  params: Map<string, ParamValue>;

  constructor(init: { transport: string; host: string; port?: number; params?: Map<string, ParamValue>; protocol?: string; version?: string }) {
    this.protocol = init.protocol ?? 'SIP';
    this.version = init.version ?? '2.0';
    this.transport = init.transport.toUpperCase();
    this.host = init.host;
    this.port = init.port;
    this.params = init.params ?? new Map();
  }

  get branch(): string | undefined {
    return this.params.get('branch') ?? undefined;
  }

  /** True when the branch carries the RFC 3261 magic cookie, so §17.2.3 matching applies. */
  get isRfc3261Branch(): boolean {
    const b = this.branch;
    return b !== undefined && b.length > MAGIC_COOKIE.length && b.startsWith(MAGIC_COOKIE);
  }

  get received(): string | undefined {
    return this.params.get('received') ?? undefined;
  }

  /** RFC 3581: `null` when the client asked for rport (empty), a number once filled in, undefined if absent. */
  get rport(): number | null | undefined {
    if (!this.params.has('rport')) return undefined;
    const v = this.params.get('rport');
    return v === null || v === undefined ? null : Number(v);
  }

  /** sent-by as `host[:port]`, the key of §17.2.3 matching. */
  get sentBy(): string {
    return this.port === undefined ? this.host.toLowerCase() : `${this.host.toLowerCase()}:${this.port}`;
  }

  toString(): string {
    const hostport = this.port === undefined ? this.host : `${this.host}:${this.port}`;
    return `${this.protocol}/${this.version}/${this.transport} ${hostport}${serializeParams(this.params)}`;
  }
}

/**
 * Parses a Via header field value, which may carry several comma-separated via-parm values:
 * `sent-protocol LWS sent-by *( SEMI via-params )` with SWS around the slashes (RFC 4475 §3.1.1.1).
 */
export function parseVia(value: string, out: Via[] = []): Via[] {
  const n = value.length;
  let i = skipWs(value, 0);
  for (;;) {
    const pStart = i;
    i = scanToken(value, i);
    if (i === pStart) throw new SipParseError('SIP_ERR_HEADER', 'missing sent-protocol', 'via', i);
    const protocol = value.slice(pStart, i);
    i = expectSlash(value, i);
    const vStart = i;
    i = scanToken(value, i);
    if (i === vStart) throw new SipParseError('SIP_ERR_HEADER', 'missing protocol version', 'via', i);
    const version = value.slice(vStart, i);
    i = expectSlash(value, i);
    const tStart = i;
    i = scanToken(value, i);
    if (i === tStart) throw new SipParseError('SIP_ERR_HEADER', 'missing transport', 'via', i);
    const transport = value.slice(tStart, i);
    const afterTransport = i;
    i = skipWs(value, i);
    if (i === afterTransport) throw new SipParseError('SIP_ERR_HEADER', 'expected whitespace before sent-by', 'via', i);

    // sent-by = host [ COLON port ]; an IPv6 reference is bracketed.
    const hStart = i;
    if (value.charCodeAt(i) === 0x5b /* [ */) {
      const close = value.indexOf(']', i);
      if (close === -1) throw new SipParseError('SIP_ERR_HEADER', 'unterminated IPv6 reference', 'via', i);
      i = close + 1;
    } else {
      while (i < n) {
        const c = value.charCodeAt(i);
        // host characters: alphanumerics, '-', '.', and '_' tolerated as many stacks emit it
        if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f) i++;
        else break;
      }
    }
    if (i === hStart) throw new SipParseError('SIP_ERR_HEADER', 'missing sent-by host', 'via', i);
    const host = value.slice(hStart, i);
    i = skipWs(value, i);
    let port: number | undefined;
    if (value.charCodeAt(i) === 0x3a /* : */) {
      i = skipWs(value, i + 1);
      const portStart = i;
      let p = 0;
      while (i < n) {
        const d = value.charCodeAt(i) - 0x30;
        if (d < 0 || d > 9) break;
        p = p * 10 + d;
        i++;
      }
      if (i === portStart || i - portStart > 5 || p > 65535) throw new SipParseError('SIP_ERR_HEADER', 'bad sent-by port', 'via', portStart);
      port = p;
    }
    const params = new Map<string, ParamValue>();
    i = parseParams(value, i, params, 'via');
    out.push(new Via({ protocol, version, transport, host, port, params }));
    if (i >= n) return out;
    if (value.charCodeAt(i) !== 0x2c /* , */) throw new SipParseError('SIP_ERR_HEADER', `unexpected character ${JSON.stringify(value[i])}`, 'via', i);
    i = skipWs(value, i + 1);
    if (i >= n || TOKEN[value.charCodeAt(i)] !== 1) throw new SipParseError('SIP_ERR_HEADER', 'empty Via value in list', 'via', i);
  }
}

function expectSlash(s: string, i: number): number {
  i = skipWs(s, i);
  if (s.charCodeAt(i) !== 0x2f) throw new SipParseError('SIP_ERR_HEADER', 'expected "/" in sent-protocol', 'via', i);
  return skipWs(s, i + 1);
}
