import { SipParseError } from './errors.js';
import { parseTokenList, parseUint32, skipWs, scanToken, type ParamValue, parseParams } from './grammar.js';
import { headerDisplayName, headerKey } from './header-names.js';
import { NameAddr, parseNameAddrs } from './name-addr.js';
import { Via, parseVia } from './via.js';

/** One header field line as it stands in the message. */
export interface HeaderField {
  /** Canonical lower-case long name: `via`, `call-id`, or the lower-cased name of an unknown header. */
  readonly key: string;
  /** The name as it appeared on the wire, or as the stack spells it for headers it added. */
  readonly name: string;
  /** The value with folding replaced by one SP and surrounding whitespace removed (a wire string). */
  readonly value: string;
  /** The exact wire text of the field, CRLF included, while it is unchanged since parsing. */
  readonly raw: string | undefined;
}

export interface CSeq {
  seq: number;
  method: string;
}

export interface EventHeader {
  /** event-type, lower-cased (`presence`, `dialog`, `message-summary`, `reg` …). */
  type: string;
  id: string | undefined;
  params: Map<string, ParamValue>;
}

/** Headers whose comma-separated values are separate header values (RFC 3261 §7.3.1). */
const LIST_HEADERS = new Set(['via', 'contact', 'route', 'record-route', 'path', 'service-route']);

/**
 * What SIP requests and responses share: an ordered list of header fields, a body, and typed, cached
 * access to the headers the stack needs. Unknown headers are kept byte for byte; a message whose
 * headers were not modified serialises to exactly the bytes it was parsed from.
 */
export abstract class SipMessage {
  headers: HeaderField[];
  /** The body octets; an empty buffer when there is none. */
  body: Buffer;
  /**
   * The exact bytes this message was parsed from (start line to the end of the body), while nothing
   * has been changed; set back to undefined by every modification.
   */
  pristine: Buffer | undefined;

  private cVia: Via[] | undefined;
  private cFrom: NameAddr | null | undefined;
  private cTo: NameAddr | null | undefined;
  private cCSeq: CSeq | null | undefined;
  private cContact: NameAddr[] | undefined;
  private cRoute: NameAddr[] | undefined;
  private cRecordRoute: NameAddr[] | undefined;
  private cPath: NameAddr[] | undefined;

  constructor(headers: HeaderField[], body: Buffer) {
    this.headers = headers;
    this.body = body;
    this.pristine = undefined;
  }

  abstract get isRequest(): boolean;
  /** The start line without CRLF. */
  abstract startLine(): string;

  // ---- generic header access -------------------------------------------------------------------

  /** The value of the first field with this name (any case, compact or long form). */
  get(name: string): string | undefined {
    const key = headerKey(name);
    const hs = this.headers;
    for (let i = 0; i < hs.length; i++) if (hs[i]!.key === key) return hs[i]!.value;
    return undefined;
  }

  /** The values of every field with this name, in order (a field's value is not split at commas). */
  getAll(name: string): string[] {
    const key = headerKey(name);
    const out: string[] = [];
    for (const h of this.headers) if (h.key === key) out.push(h.value);
    return out;
  }

  has(name: string): boolean {
    const key = headerKey(name);
    for (const h of this.headers) if (h.key === key) return true;
    return false;
  }

  /** How many fields carry this name (RFC 4475 §3.3.8: several Call-ID or CSeq fields are an error). */
  count(name: string): number {
    const key = headerKey(name);
    let n = 0;
    for (const h of this.headers) if (h.key === key) n++;
    return n;
  }

  /** Replaces the first field of this name in place and removes the others; appends when there is none. */
  set(name: string, value: string): void {
    const key = headerKey(name);
    const field = makeField(key, name, value);
    let done = false;
    const out: HeaderField[] = [];
    for (const h of this.headers) {
      if (h.key !== key) out.push(h);
      else if (!done) {
        out.push(field);
        done = true;
      }
    }
    if (!done) out.push(field);
    this.headers = out;
    this.touched(key);
  }

  /** Adds a field after every other field. */
  append(name: string, value: string): void {
    const key = headerKey(name);
    this.headers.push(makeField(key, name, value));
    this.touched(key);
  }

  /** Adds a field before the first field of the same name, or at the top when there is none (Via, Record-Route). */
  prepend(name: string, value: string): void {
    const key = headerKey(name);
    const field = makeField(key, name, value);
    const idx = this.headers.findIndex((h) => h.key === key);
    if (idx === -1) this.headers.unshift(field);
    else this.headers.splice(idx, 0, field);
    this.touched(key);
  }

  /** Removes every field of this name; returns how many were removed. */
  remove(name: string): number {
    const key = headerKey(name);
    const before = this.headers.length;
    this.headers = this.headers.filter((h) => h.key !== key);
    const removed = before - this.headers.length;
    if (removed > 0) this.touched(key);
    return removed;
  }

  /**
   * Removes the first value of a list header (the top Via of a response, the top Route of a request):
   * the first field goes when it holds one value, otherwise it is rewritten without its first value.
   */
  removeFirstValue(name: string): boolean {
    const key = headerKey(name);
    const idx = this.headers.findIndex((h) => h.key === key);
    if (idx === -1) return false;
    const field = this.headers[idx]!;
    const values = key === 'via' ? parseVia(field.value) : parseNameAddrs(field.value, key, true);
    if (values.length <= 1) this.headers.splice(idx, 1);
    else this.headers[idx] = makeField(key, field.name, values.slice(1).map(String).join(', '));
    this.touched(key);
    return true;
  }

  /**
   * Replaces the first value of a list header in place (the top Via once `received`/`rport` are
   * filled in), keeping the other values of that field.
   */
  replaceFirstValue(name: string, value: string): boolean {
    const key = headerKey(name);
    const idx = this.headers.findIndex((h) => h.key === key);
    if (idx === -1) return false;
    const field = this.headers[idx]!;
    const rest = field.value.indexOf(',') === -1
      ? []
      : (key === 'via' ? parseVia(field.value) : parseNameAddrs(field.value, key, true)).slice(1).map(String);
    this.headers[idx] = makeField(key, field.name, rest.length === 0 ? value : [value, ...rest].join(', '));
    this.touched(key);
    return true;
  }

  /** Replaces the body and its Content-Type; Content-Length follows the body. */
  setBody(body: Buffer | string, contentType?: string): void {
    this.body = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (contentType !== undefined) this.set('content-type', contentType);
    else if (this.body.length === 0) this.remove('content-type');
    this.set('content-length', String(this.body.length));
  }

  // ---- typed access ----------------------------------------------------------------------------

  /** Every Via value of the message, top first. */
  get via(): Via[] {
    if (this.cVia === undefined) {
      const out: Via[] = [];
      for (const h of this.headers) if (h.key === 'via') parseVia(h.value, out);
      this.cVia = out;
    }
    return this.cVia;
  }

  get topVia(): Via | undefined {
    return this.via[0];
  }

  get from(): NameAddr | undefined {
    if (this.cFrom === undefined) this.cFrom = this.parseSingleNameAddr('from');
    return this.cFrom ?? undefined;
  }

  get to(): NameAddr | undefined {
    if (this.cTo === undefined) this.cTo = this.parseSingleNameAddr('to');
    return this.cTo ?? undefined;
  }

  get callId(): string | undefined {
    return this.get('call-id');
  }

  get cseq(): CSeq | undefined {
    if (this.cCSeq === undefined) {
      const v = this.get('cseq');
      this.cCSeq = v === undefined ? null : parseCSeq(v);
    }
    return this.cCSeq ?? undefined;
  }

  get maxForwards(): number | undefined {
    const v = this.get('max-forwards');
    if (v === undefined) return undefined;
    const n = parseUint32(v, 'max-forwards');
    if (n > 255) throw new SipParseError('SIP_ERR_HEADER', `value over 255: ${v}`, 'max-forwards');
    return n;
  }

  /** Content-Length as written in the first such header (framing already enforced it). */
  get contentLength(): number | undefined {
    const v = this.get('content-length');
    return v === undefined ? undefined : parseUint32(v, 'content-length');
  }

  /** Media type of the body, lower-cased, without parameters: `application/sdp`. */
  get contentType(): string | undefined {
    const v = this.get('content-type');
    if (v === undefined) return undefined;
    const semi = v.indexOf(';');
    return (semi === -1 ? v : v.slice(0, semi)).replace(/[ \t]/g, '').toLowerCase();
  }

  get expires(): number | undefined {
    const v = this.get('expires');
    return v === undefined ? undefined : parseUint32(v, 'expires');
  }

  /** Contact values; empty when there is none or when the Contact is `*` (see contactStar). */
  get contact(): NameAddr[] {
    if (this.cContact === undefined) {
      const out: NameAddr[] = [];
      for (const h of this.headers) if (h.key === 'contact' && h.value !== '*') parseContact(h.value, out);
      this.cContact = out;
    }
    return this.cContact;
  }

  /** `Contact: *` (RFC 3261 §10.2.2, remove all bindings). */
  get contactStar(): boolean {
    for (const h of this.headers) if (h.key === 'contact' && h.value === '*') return true;
    return false;
  }

  get route(): NameAddr[] {
    if (this.cRoute === undefined) this.cRoute = this.parseList('route');
    return this.cRoute;
  }

  get recordRoute(): NameAddr[] {
    if (this.cRecordRoute === undefined) this.cRecordRoute = this.parseList('record-route');
    return this.cRecordRoute;
  }

  get path(): NameAddr[] {
    if (this.cPath === undefined) this.cPath = this.parseList('path');
    return this.cPath;
  }

  get require(): string[] {
    return this.tokens('require');
  }

  get proxyRequire(): string[] {
    return this.tokens('proxy-require');
  }

  get supported(): string[] {
    return this.tokens('supported');
  }

  get allow(): string[] {
    return this.tokens('allow');
  }

  get event(): EventHeader | undefined {
    const v = this.get('event');
    return v === undefined ? undefined : parseEvent(v);
  }

  /** Subscription-State (RFC 6665 §8.2.3): `{ state: 'active', params: expires=… }`. */
  get subscriptionState(): { state: string; params: Map<string, ParamValue> } | undefined {
    const v = this.get('subscription-state');
    if (v === undefined) return undefined;
    const end = scanToken(v, 0);
    if (end === 0) throw new SipParseError('SIP_ERR_HEADER', 'missing state', 'subscription-state');
    const params = new Map<string, ParamValue>();
    const rest = parseParams(v, end, params, 'subscription-state');
    if (rest !== v.length) throw new SipParseError('SIP_ERR_HEADER', 'trailing characters', 'subscription-state', rest);
    return { state: v.slice(0, end).toLowerCase(), params };
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * Parses every header the stack relies on so that a message that passes the parser is safe to
   * route: the typed getters above then cannot throw for these headers.
   */
  validate(): void {
    void this.via;
    void this.from;
    void this.to;
    void this.cseq;
    void this.maxForwards;
    void this.contact;
    void this.expires;
    for (const h of this.headers) {
      if (h.key === 'call-id' && h.value.length === 0) throw new SipParseError('SIP_ERR_HEADER', 'empty Call-ID', 'call-id');
      if (h.key === 'date') validateDate(h.value);
    }
  }

  private parseSingleNameAddr(key: string): NameAddr | null {
    for (const h of this.headers) if (h.key === key) return parseNameAddrs(h.value, key, false)[0]!;
    return null;
  }

  private parseList(key: string): NameAddr[] {
    const out: NameAddr[] = [];
    for (const h of this.headers) if (h.key === key) parseNameAddrs(h.value, key, true, out);
    return out;
  }

  private tokens(key: string): string[] {
    const out: string[] = [];
    for (const h of this.headers) if (h.key === key) out.push(...parseTokenList(h.value));
    return out;
  }

  /** Drops caches and the pristine bytes after a change to the header with this key. */
  protected touched(key: string): void {
    this.pristine = undefined;
    switch (key) {
      case 'via':
        this.cVia = undefined;
        break;
      case 'from':
        this.cFrom = undefined;
        break;
      case 'to':
        this.cTo = undefined;
        break;
      case 'cseq':
        this.cCSeq = undefined;
        break;
      case 'contact':
        this.cContact = undefined;
        break;
      case 'route':
        this.cRoute = undefined;
        break;
      case 'record-route':
        this.cRecordRoute = undefined;
        break;
      case 'path':
        this.cPath = undefined;
        break;
    }
  }
}

export function makeField(key: string, name: string, value: string): HeaderField {
  const display = headerDisplayName(key);
  return { key, name: display !== key ? display : name, value, raw: undefined };
}

export function isListHeader(key: string): boolean {
  return LIST_HEADERS.has(key);
}

/** CSeq = 1*DIGIT LWS Method, the number at most 2**32-1 (RFC 3261 §20.16, RFC 4475 §3.1.2.4). */
export function parseCSeq(value: string): CSeq {
  let i = 0;
  const n = value.length;
  while (i < n) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    i++;
  }
  if (i === 0) throw new SipParseError('SIP_ERR_HEADER', 'missing sequence number', 'cseq', 0);
  const seq = parseUint32(value.slice(0, i), 'cseq');
  const m = skipWs(value, i);
  if (m === i) throw new SipParseError('SIP_ERR_HEADER', 'expected whitespace after the number', 'cseq', i);
  const end = scanToken(value, m);
  if (end === m || skipWs(value, end) !== n) throw new SipParseError('SIP_ERR_HEADER', 'bad method', 'cseq', m);
  return { seq, method: value.slice(m, end) };
}

function parseContact(value: string, out: NameAddr[]): void {
  const start = out.length;
  parseNameAddrs(value, 'contact', true, out);
  for (let k = start; k < out.length; k++) {
    const p = out[k]!.params;
    const exp = p.get('expires');
    if (exp !== undefined) {
      if (exp === null) throw new SipParseError('SIP_ERR_HEADER', 'expires parameter without a value', 'contact');
      parseUint32(exp, 'contact');
    }
    const q = p.get('q');
    if (q !== undefined && (q === null || !/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(q))) {
      throw new SipParseError('SIP_ERR_HEADER', `bad q value ${String(q)}`, 'contact');
    }
  }
}

function parseEvent(value: string): EventHeader {
  const end = scanToken(value, 0);
  if (end === 0) throw new SipParseError('SIP_ERR_HEADER', 'missing event type', 'event');
  const params = new Map<string, ParamValue>();
  const rest = parseParams(value, end, params, 'event');
  if (rest !== value.length) throw new SipParseError('SIP_ERR_HEADER', 'trailing characters', 'event', rest);
  return { type: value.slice(0, end).toLowerCase(), id: params.get('id') ?? undefined, params };
}

const DATE_RE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** SIP-date is RFC 1123 with the zone always "GMT" (RFC 3261 §20.17; RFC 4475 §3.1.2.12). */
function validateDate(value: string): void {
  if (!DATE_RE.test(value)) throw new SipParseError('SIP_ERR_HEADER', `not an RFC 1123 GMT date: ${value}`, 'date');
}
