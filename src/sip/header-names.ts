/**
 * Header name normalisation: every header field is keyed by its canonical lower-case long name, so that
 * `v`, `Via` and `VIA` are one header (RFC 3261 §7.3.3 compact forms; header names are case-insensitive, §7.3.1).
 */

/** RFC 3261 §7.3.3 and the IANA SIP parameters registry ("compact form" column). */
const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** How a header the stack writes itself is spelled on the wire. */
const DISPLAY_NAMES: Readonly<Record<string, string>> = {
  'accept': 'Accept',
  'accept-contact': 'Accept-Contact',
  'accept-encoding': 'Accept-Encoding',
  'accept-language': 'Accept-Language',
  'alert-info': 'Alert-Info',
  'allow': 'Allow',
  'allow-events': 'Allow-Events',
  'authentication-info': 'Authentication-Info',
  'authorization': 'Authorization',
  'call-id': 'Call-ID',
  'call-info': 'Call-Info',
  'contact': 'Contact',
  'content-disposition': 'Content-Disposition',
  'content-encoding': 'Content-Encoding',
  'content-language': 'Content-Language',
  'content-length': 'Content-Length',
  'content-type': 'Content-Type',
  'cseq': 'CSeq',
  'date': 'Date',
  'error-info': 'Error-Info',
  'event': 'Event',
  'expires': 'Expires',
  'flow-timer': 'Flow-Timer',
  'from': 'From',
  'identity': 'Identity',
  'identity-info': 'Identity-Info',
  'in-reply-to': 'In-Reply-To',
  'max-forwards': 'Max-Forwards',
  'mime-version': 'MIME-Version',
  'min-expires': 'Min-Expires',
  'min-se': 'Min-SE',
  'organization': 'Organization',
  'p-asserted-identity': 'P-Asserted-Identity',
  'p-preferred-identity': 'P-Preferred-Identity',
  'path': 'Path',
  'priority': 'Priority',
  'proxy-authenticate': 'Proxy-Authenticate',
  'proxy-authorization': 'Proxy-Authorization',
  'proxy-require': 'Proxy-Require',
  'rack': 'RAck',
  'reason': 'Reason',
  'record-route': 'Record-Route',
  'refer-to': 'Refer-To',
  'referred-by': 'Referred-By',
  'reject-contact': 'Reject-Contact',
  'reply-to': 'Reply-To',
  'request-disposition': 'Request-Disposition',
  'require': 'Require',
  'retry-after': 'Retry-After',
  'route': 'Route',
  'rseq': 'RSeq',
  'server': 'Server',
  'service-route': 'Service-Route',
  'session-expires': 'Session-Expires',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
  'subject': 'Subject',
  'subscription-state': 'Subscription-State',
  'supported': 'Supported',
  'timestamp': 'Timestamp',
  'to': 'To',
  'unsupported': 'Unsupported',
  'user-agent': 'User-Agent',
  'via': 'Via',
  'warning': 'Warning',
  'www-authenticate': 'WWW-Authenticate',
};

/** Names as they usually appear on the wire, mapped straight to their key without lower-casing. */
const FAST_KEYS = new Map<string, string>();
for (const [key, display] of Object.entries(DISPLAY_NAMES)) {
  FAST_KEYS.set(display, key);
  FAST_KEYS.set(key, key);
}
for (const [compact, key] of Object.entries(COMPACT_FORMS)) {
  FAST_KEYS.set(compact, key);
  FAST_KEYS.set(compact.toUpperCase(), key);
}
// Spellings common enough in the wild to deserve the fast path.
for (const [spelling, key] of [
  ['Call-Id', 'call-id'],
  ['CALL-ID', 'call-id'],
  ['Cseq', 'cseq'],
  ['CSEQ', 'cseq'],
  ['VIA', 'via'],
  ['FROM', 'from'],
  ['TO', 'to'],
  ['Www-Authenticate', 'www-authenticate'],
  ['Max-forwards', 'max-forwards'],
  ['Content-length', 'content-length'],
  ['Content-type', 'content-type'],
  ['Record-route', 'record-route'],
  ['User-agent', 'user-agent'],
] as const) {
  FAST_KEYS.set(spelling, key);
}

/** The canonical key of a header name as written (any case, compact or long form). */
export function headerKey(name: string): string {
  const fast = FAST_KEYS.get(name);
  if (fast !== undefined) return fast;
  const lower = name.toLowerCase();
  return COMPACT_FORMS[lower] ?? lower;
}

/** The spelling used when the stack writes a header with this key. */
export function headerDisplayName(key: string): string {
  return DISPLAY_NAMES[key] ?? key;
}
