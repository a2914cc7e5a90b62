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

/** Proxy-Require option tags this element implements (none yet: RFC 3261 §16.3 step 6 → 420). */
const SUPPORTED_PROXY_OPTIONS = new Set<string>();

export function checkRequest(req: SipRequest): Rejection | undefined {
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

/** A reason phrase from a parse error: one line, printable, short. */
export function reasonFromParseError(err: SipParseError): string {
  const text = err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
  return `Bad Request (${text})`;
}
