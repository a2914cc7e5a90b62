/**
 * parseMessage: bytes of one complete SIP message (a UDP datagram, a WebSocket frame, or a message cut
 * out of a stream by StreamFramer) → SipRequest | SipResponse.
 *
 * The head is decoded as latin1 so that every character is one octet: offsets in the string are offsets
 * in the buffer, and untouched header fields are re-emitted byte for byte. Anything the parser does not
 * accept raises a SipParseError; nothing else escapes from here.
 */
import { SipParseError } from './errors.js';
import { TOKEN, isToken } from './grammar.js';
import { headerKey } from './header-names.js';
import type { HeaderField } from './sip-message.js';
import { SipRequest } from './sip-request.js';
import { SipResponse } from './sip-response.js';
import { SipUri, parseUri } from './uri.js';

export interface ParseOptions {
  /** Larger inputs are refused with SIP_ERR_TOO_LARGE before any work is done. */
  maxMessageSize?: number;
  /**
   * More header fields (lines, not comma-separated values) than this are refused with
   * SIP_ERR_TOO_MANY_HEADERS; counted while the fields are cut out, no second pass.
   */
  maxHeaders?: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const LFLF = Buffer.from('\n\n', 'latin1');
const VERSION_RE = /^SIP\/\d{1,3}\.\d{1,3}$/i;

export function parseMessage(buf: Buffer, options?: ParseOptions): SipRequest | SipResponse {
  if (options?.maxMessageSize !== undefined && buf.length > options.maxMessageSize) {
    throw new SipParseError('SIP_ERR_TOO_LARGE', `message of ${buf.length} bytes exceeds ${options.maxMessageSize}`);
  }
  try {
    return parse(buf, options?.maxHeaders ?? Infinity);
  } catch (err) {
    if (err instanceof SipParseError) throw err;
    // A bug in the parser must still cost the caller no more than a malformed message.
    throw new SipParseError('SIP_ERR_PARSE', `internal parser error: ${(err as Error).message}`);
  }
}

function parse(buf: Buffer, maxHeaders: number): SipRequest | SipResponse {
  const len = buf.length;
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  let start = 0;
  while (start < len && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  if (start === len) throw new SipParseError('SIP_ERR_PARSE', 'empty message');

  // End of the header section: the first empty line. A message whose first line ends in a bare LF is
  // read in LF mode (liberal towards old stacks); otherwise lines end in CRLF.
  const firstLf = buf.indexOf(0x0a, start);
  const lfMode = firstLf > start && buf[firstLf - 1] !== 0x0d;
  let headEnd = lfMode ? buf.indexOf(LFLF, start) : buf.indexOf(CRLFCRLF, start);
  let bodyStart: number;
  if (headEnd !== -1) {
    bodyStart = headEnd + (lfMode ? 2 : 4);
    headEnd += lfMode ? 1 : 2; // keep the last header line's line end in the head
  } else if (buf[len - 1] === 0x0a) {
    // A datagram whose header section runs to its end without the empty line: no body.
    headEnd = len;
    bodyStart = len;
  } else {
    throw new SipParseError('SIP_ERR_FRAMING', 'no empty line after the header fields');
  }
  const head = buf.toString('latin1', start, headEnd);

  // ---- start line
  let nl = head.indexOf('\n');
  const startLineText = head.slice(0, nl > 0 && head.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl);
  let pos = nl + 1;

  // ---- header fields
  const headers: HeaderField[] = [];
  let contentLength = -1;
  const hlen = head.length;
  while (pos < hlen) {
    const fieldStart = pos;
    if (headers.length >= maxHeaders) {
      throw new SipParseError('SIP_ERR_TOO_MANY_HEADERS', `more than ${maxHeaders} header fields`, undefined, start + pos);
    }
    nl = head.indexOf('\n', pos);
    if (nl === -1) nl = hlen - 1;
    let lineEnd = nl > pos && head.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
    const first = head.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) {
      throw new SipParseError('SIP_ERR_HEADER', 'continuation line without a header field', undefined, start + pos);
    }
    const colon = head.indexOf(':', pos);
    if (colon === -1 || colon > lineEnd) {
      throw new SipParseError('SIP_ERR_HEADER', `header line without a colon: ${JSON.stringify(head.slice(pos, lineEnd).slice(0, 40))}`, undefined, start + pos);
    }
    let nameEnd = colon;
    while (nameEnd > pos && (head.charCodeAt(nameEnd - 1) === 0x20 || head.charCodeAt(nameEnd - 1) === 0x09)) nameEnd--;
    const name = head.slice(pos, nameEnd);
    for (let k = pos; k < nameEnd; k++) {
      if (TOKEN[head.charCodeAt(k)] !== 1) throw new SipParseError('SIP_ERR_HEADER', `bad header name ${JSON.stringify(name)}`, undefined, start + k);
    }
    if (name.length === 0) throw new SipParseError('SIP_ERR_HEADER', 'empty header name', undefined, start + pos);

    // Folded continuation lines (starting with SP/HTAB) belong to this field (RFC 3261 §7.3.1).
    let value = head.slice(colon + 1, lineEnd);
    pos = nl + 1;
    while (pos < hlen && (head.charCodeAt(pos) === 0x20 || head.charCodeAt(pos) === 0x09)) {
      nl = head.indexOf('\n', pos);
      if (nl === -1) nl = hlen - 1;
      lineEnd = nl > pos && head.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
      value += ' ' + head.slice(pos, lineEnd);
      pos = nl + 1;
    }
    value = trimWs(value);
    const key = headerKey(name);
    // Raw text is reused on output only when it already has the CRLF line ends we send.
    const raw = head.charCodeAt(pos - 2) === 0x0d ? head.slice(fieldStart, pos) : undefined;
    headers.push({ key, name, value, raw });
    if (key === 'content-length' && contentLength === -1) contentLength = parseContentLength(value, start + fieldStart);
  }

  // ---- body (RFC 3261 §18.3: octets beyond Content-Length are discarded; without it, the rest of the datagram)
  let bodyEnd: number;
  if (contentLength === -1) {
    bodyEnd = len;
  } else {
    bodyEnd = bodyStart + contentLength;
    if (bodyEnd > len) {
      throw new SipParseError('SIP_ERR_FRAMING', `Content-Length ${contentLength} exceeds the ${len - bodyStart} octets present`, 'content-length');
    }
  }
  const body = buf.subarray(bodyStart, bodyEnd);

  const msg = startLineText.length > 4 && startLineText.slice(0, 4).toUpperCase() === 'SIP/'
    ? makeResponse(startLineText, headers, body)
    : makeRequest(startLineText, headers, body);
  msg.validate();
  msg.pristine = buf.subarray(start, bodyEnd);
  return msg;
}

function makeRequest(line: string, headers: HeaderField[], body: Buffer): SipRequest {
  // Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP between elements (RFC 4475 §3.1.2.9-10).
  const a = line.indexOf(' ');
  const b = line.lastIndexOf(' ');
  if (a <= 0 || b === a) throw new SipParseError('SIP_ERR_START_LINE', 'malformed request line');
  const method = line.slice(0, a);
  if (!isToken(method)) throw new SipParseError('SIP_ERR_START_LINE', `bad method ${JSON.stringify(method)}`);
  const version = line.slice(b + 1);
  if (!VERSION_RE.test(version)) throw new SipParseError('SIP_ERR_START_LINE', `bad SIP version ${JSON.stringify(version)}`);
  const uriText = line.slice(a + 1, b);
  for (let i = 0; i < uriText.length; i++) {
    const c = uriText.charCodeAt(i);
    if (c === 0x20 || c === 0x09) throw new SipParseError('SIP_ERR_START_LINE', 'whitespace in the Request-URI');
  }
  let uri;
  try {
    uri = parseUri(uriText);
  } catch (err) {
    if (err instanceof SipParseError) throw new SipParseError('SIP_ERR_START_LINE', `bad Request-URI: ${err.message}`);
    throw err;
  }
  // RFC 3261 §19.1.1 (table): the headers component is not allowed in a Request-URI (RFC 4475 §3.1.2.11).
  if (uri instanceof SipUri && uri.headers.length > 0) {
    throw new SipParseError('SIP_ERR_START_LINE', 'URI headers are not allowed in the Request-URI');
  }
  return new SipRequest({ method, uri, headers, body, version }, line);
}

function makeResponse(line: string, headers: HeaderField[], body: Buffer): SipResponse {
  // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (the phrase may be empty, RFC 4475 §3.1.1.13).
  const a = line.indexOf(' ');
  const version = a === -1 ? line : line.slice(0, a);
  if (!VERSION_RE.test(version)) throw new SipParseError('SIP_ERR_START_LINE', `bad SIP version ${JSON.stringify(version)}`);
  const code = line.slice(a + 1, a + 4);
  if (a === -1 || code.length !== 3 || !/^[1-6]\d\d$/.test(code)) {
    throw new SipParseError('SIP_ERR_START_LINE', `bad status code ${JSON.stringify(line.slice(a + 1, a + 8))}`);
  }
  const after = line.charCodeAt(a + 4);
  if (line.length > a + 4 && after !== 0x20) throw new SipParseError('SIP_ERR_START_LINE', 'bad status code');
  const reason = line.slice(a + 5);
  return new SipResponse({ status: Number(code), reason, headers, body, version }, line);
}

function parseContentLength(value: string, position: number): number {
  if (value.length === 0 || value.length > 10) throw new SipParseError('SIP_ERR_FRAMING', `bad Content-Length ${JSON.stringify(value)}`, 'content-length', position);
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) throw new SipParseError('SIP_ERR_FRAMING', `bad Content-Length ${JSON.stringify(value)}`, 'content-length', position);
    n = n * 10 + d;
  }
  return n;
}

function trimWs(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}
