/**
 * The checks every request passes before a transaction or a module sees it (RFC 3261 §8.2, §16.3 and
 * the answers RFC 4475 asks for). Each failure is a status, a reason phrase that says what is wrong, and
 * for 420 the Unsupported header.
 */
import { type SipRequest, SipParseError } from '../sip/index.js';

export interface Rejection {
  status: number;
  reason: string;
  headers?: Array<[string, string]>;
}

/** Header fields of which a request carries exactly one (RFC 4475 §3.3.8, §3.3.9). */
const SINGLE_VALUED = ['call-id', 'cseq', 'from', 'to', 'max-forwards', 'content-length'] as const;
const REQUIRED = [['from', 'From'], ['to', 'To'], ['call-id', 'Call-ID'], ['cseq', 'CSeq']] as const;
const URI_SCHEMES = new Set(['sip', 'sips', 'tel']);

/**
 * What one request may carry (config `limits`); a request over a limit is refused before a transaction.
 * Absent limits are not checked (unit tests of other checks, embedders).
 */
export interface RequestLimits {
  maxContacts: number;
  maxVias: number;
  maxRoutes: number;
  maxBodyWithoutNeed: number;
}

/**
 * Methods that carry no body in practice: a large body on them is a way to make a server hold bytes
 * (RFC 3261 allows a body on any request; these are answered 413 above `maxBodyWithoutNeed`).
 */
const BODY_NOT_NEEDED = new Set(['REGISTER', 'OPTIONS', 'BYE', 'CANCEL', 'SUBSCRIBE', 'REFER']);

/** Proxy-Require option tags this element implements (none yet: RFC 3261 §16.3 step 6 → 420). */
const SUPPORTED_PROXY_OPTIONS = new Set<string>();

export function checkRequest(req: SipRequest, limits?: RequestLimits): Rejection | undefined {
  if (limits !== undefined) {
    const over = checkLimits(req, limits);
    if (over !== undefined) return over;
  }
  for (const [key, name] of REQUIRED) {
    if (!req.has(key)) return { status: 400, reason: `Missing ${name} Header` };
  }
  for (const key of SINGLE_VALUED) {
    if (req.count(key) > 1) return { status: 400, reason: `Multiple ${key} Header Fields` };
  }
  // §8.2.x / §21.5.6: only SIP/2.0 is understood.
  if (req.version.toUpperCase() !== 'SIP/2.0') return { status: 505, reason: 'Version Not Supported' };
  const cseq = req.cseq!;
  if (cseq.method !== req.method) return { status: 400, reason: 'CSeq Method Does Not Match Request Method' };
  // §8.2.2.1 / §16.3 step 1: an unknown Request-URI scheme is answered 416.
  if (!URI_SCHEMES.has(req.ruri.scheme)) return { status: 416, reason: 'Unsupported URI Scheme' };
  if (cseq.seq > 0x7fffffff && req.method !== 'ACK') {
    // §8.1.1.5: the number MUST be less than 2**31; larger ones come only from broken or hostile peers.
    return { status: 400, reason: 'CSeq Number Too Large' };
  }
  // §16.3 step 2: Max-Forwards 0 is never forwarded.
  if (req.maxForwards === 0) return { status: 483, reason: 'Too Many Hops' };
  // §16.3 step 6 (Proxy-Require) — the element answers 420 listing what it does not support.
  const unsupported = req.proxyRequire.filter((tag) => !SUPPORTED_PROXY_OPTIONS.has(tag.toLowerCase()));
  if (unsupported.length > 0) return { status: 420, reason: 'Bad Extension', headers: [['Unsupported', unsupported.join(', ')]] };
  return undefined;
}

/**
 * List lengths and the body, in one pass over the header fields. The values are counted by scanning for
 * top-level commas (outside quotes and <>), stopping at the limit: a 4,000-entry Contact list costs one
 * scan of its text, never 4,000 parsed name-addrs.
 */
function checkLimits(req: SipRequest, limits: RequestLimits): Rejection | undefined {
  if (req.body.length > limits.maxBodyWithoutNeed && BODY_NOT_NEEDED.has(req.method)) {
    // RFC 3261 §21.4.14: 413 Request Entity Too Large.
    return { status: 413, reason: `Request Entity Too Large (${req.method} body over ${limits.maxBodyWithoutNeed} octets)` };
  }
  let vias = 0;
  let contacts = 0;
  let routes = 0;
  let recordRoutes = 0;
  const hs = req.headers;
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i]!;
    switch (h.key) {
      case 'via':
        vias += countValues(h.value, limits.maxVias - vias + 1);
        if (vias > limits.maxVias) return tooMany('Via', limits.maxVias);
        break;
      case 'contact':
        contacts += countValues(h.value, limits.maxContacts - contacts + 1);
        if (contacts > limits.maxContacts) return tooMany('Contact', limits.maxContacts);
        break;
      case 'route':
        routes += countValues(h.value, limits.maxRoutes - routes + 1);
        if (routes > limits.maxRoutes) return tooMany('Route', limits.maxRoutes);
        break;
      case 'record-route':
        recordRoutes += countValues(h.value, limits.maxRoutes - recordRoutes + 1);
        if (recordRoutes > limits.maxRoutes) return tooMany('Record-Route', limits.maxRoutes);
        break;
      default:
        break;
    }
  }
  return undefined;
}

function tooMany(name: string, max: number): Rejection {
  return { status: 400, reason: `Bad Request (more than ${max} ${name} values)` };
}

/** Comma-separated values in a header value, counting stops once `stop` is reached. */
function countValues(value: string, stop: number): number {
  let n = 1;
  let quoted = false;
  let angle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c /* backslash */) i++;
      else if (c === 0x22) quoted = false;
    } else if (c === 0x22) {
      quoted = true;
    } else if (c === 0x3c /* < */) {
      angle = true;
    } else if (c === 0x3e /* > */) {
      angle = false;
    } else if (c === 0x2c /* , */ && !angle && ++n >= stop) {
      return n;
    }
  }
  return n;
}

/** A reason phrase from a parse error: one line, printable, short. */
export function reasonFromParseError(err: SipParseError): string {
  const text = err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
  return `Bad Request (${text})`;
}
