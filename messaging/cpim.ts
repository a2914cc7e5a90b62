/**
 * `message/cpim` (RFC 3862): the envelope chat clients put around a message body to carry a sender,
 * recipients, a time and, in a namespace of their own, IMDN requests (RFC 5438 §6).
 *
 *   From: MR SANDERS <im:piglet@100akerwood.com>      message headers (§3), in order
 *   NS: imdn <urn:ietf:params:imdn>                   a namespace prefix (§5)
 *   imdn.Message-ID: 34jk324j                         a header in that namespace
 *                                                     blank line
 *   Content-Type: text/plain                          MIME headers of the encapsulated part (§2.3)
 *                                                     blank line
 *   Hello                                             the part's content
 *
 * Lines end in CRLF (§3.1); bare LF is accepted on input, as many clients send it. The body is untrusted:
 * header count and line length are bounded, so a hostile body costs one linear scan at most.
 */

/** Message headers, or MIME headers of the inner part, in order: [name, value]. */
export type CpimHeader = [name: string, value: string];

export interface CpimMessage {
  /**
   * The message headers in order (From, To, cc, DateTime, Subject, NS, Require, `imdn.Message-ID`, …).
   * A value keeps its header parameters (`Subject:;lang=fr Bonjour` has the value `;lang=fr Bonjour`).
   */
  headers: CpimHeader[];
  /** The inner part's Content-Type (text/plain when it has none, RFC 2045 §5.2). */
  contentType: string;
  /** The inner part's MIME headers in order, Content-Type included when it had one. */
  contentHeaders: CpimHeader[];
  body: string;
}

export type CpimErrorCode = 'MESSAGING_ERR_CPIM';

/** A body that is not a well-formed message/cpim (or a message that cannot be written as one). */
export class CpimError extends Error {
  readonly code: CpimErrorCode = 'MESSAGING_ERR_CPIM';

  constructor(message: string) {
    super(message);
    this.name = 'CpimError';
  }
}

/** The IMDN namespace of CPIM headers (RFC 5438 §6.1). */
export const IMDN_NS = 'urn:ietf:params:imdn';
/** Headers in each of the two header sections at most. */
export const CPIM_MAX_HEADERS = 64;
/** Length of one header line at most (characters, without its line end). */
export const CPIM_MAX_LINE = 4096;

/** The dispositions RFC 5438 §6.2 defines for `imdn.Disposition-Notification`. */
export const IMDN_DISPOSITIONS = ['positive-delivery', 'negative-delivery', 'display', 'processing'] as const;
export type ImdnDisposition = (typeof IMDN_DISPOSITIONS)[number];

export interface ImdnRequest {
  /** `imdn.Message-ID` (RFC 5438 §6.3): the id the sender will match receipts with. */
  messageId: string;
  /** The known dispositions asked for, lower-case, in the order given; unknown ones are left out (§6.2). */
  dispositions: ImdnDisposition[];
  /** The message's DateTime (RFC 3862 §4.5), which RFC 5438 §6.3 requires with a request. */
  dateTime?: string | undefined;
}

/** RFC 3862 §3.1: Name = 1*name-char, printable US-ASCII without ":" and space; "." separates a prefix. */
const HEADER_NAME = /^[!-9;-~]+$/;
/** No line breaks or other control characters (tab allowed) in a value. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
/** `NS: [prefix SP] <URI>` (RFC 3862 §5). */
const NS_VALUE = /^(?:([!-9;-~]+) +)?<([^<>\s]+)>$/;

interface Section {
  headers: CpimHeader[];
  /** Offset just after the blank line that ended the section. */
  end: number;
}

/** Reads header lines from `start` up to a blank line. `folding`: MIME headers may continue on a line starting with white space. */
function readSection(text: string, start: number, what: string, folding: boolean): Section {
  const headers: CpimHeader[] = [];
  let pos = start;
  for (;;) {
    const nl = text.indexOf('\n', pos);
    if (nl === -1 && text.length - pos > CPIM_MAX_LINE) throw new CpimError(`${what}: a header line is longer than ${CPIM_MAX_LINE} characters`);
    if (nl === -1) throw new CpimError(`${what}: no blank line after the headers`);
    const lineEnd = nl > pos && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    if (lineEnd - pos > CPIM_MAX_LINE) throw new CpimError(`${what}: a header line is longer than ${CPIM_MAX_LINE} characters`);
    const line = text.slice(pos, lineEnd);
    pos = nl + 1;
    if (line === '') return { headers, end: pos };
    if (folding && (line[0] === ' ' || line[0] === '\t') && headers.length > 0) {
      const last = headers[headers.length - 1]!;
      last[1] = `${last[1]} ${line.trim()}`;
      if (last[1].length > CPIM_MAX_LINE) throw new CpimError(`${what}: a folded header is longer than ${CPIM_MAX_LINE} characters`);
      continue;
    }
    if (headers.length >= CPIM_MAX_HEADERS) throw new CpimError(`${what}: more than ${CPIM_MAX_HEADERS} headers`);
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon);
    if (!HEADER_NAME.test(name)) throw new CpimError(`${what}: not a header line`);
    let value = line.slice(colon + 1);
    if (CONTROL.test(value)) throw new CpimError(`${what}: control character in ${name}`);
    // Header = Header-name ":" *( ";" Parameter ) SP Header-value: the parameters stay with the value.
    if (value.startsWith(';')) value = value.trimEnd();
    else value = value.trim();
    headers.push([name, value]);
  }
}

/**
 * Parses a message/cpim body. Throws CpimError when either header section is malformed, unterminated,
 * or over the limits. The body after the second blank line is taken as it is.
 */
export function parseCpim(body: string): CpimMessage {
  const message = readSection(body, 0, 'message headers', false);
  const content = readSection(body, message.end, 'content headers', true);
  const type = content.headers.find(([name]) => sameName(name, 'Content-Type'))?.[1];
  if (type !== undefined && type === '') throw new CpimError('content headers: empty Content-Type');
  return { headers: message.headers, contentType: type ?? 'text/plain', contentHeaders: content.headers, body: body.slice(content.end) };
}

function checkHeader([name, value]: CpimHeader): void {
  if (!HEADER_NAME.test(name)) throw new CpimError(`not a CPIM header name: ${JSON.stringify(name.slice(0, 64))}`);
  if (CONTROL.test(value)) throw new CpimError(`control character or line break in ${name}`);
}

const line = ([name, value]: CpimHeader): string => (value.startsWith(';') ? `${name}:${value}` : `${name}: ${value}`);

/**
 * Writes the message with CRLF line ends (RFC 3862 §3.1). `contentType` is the inner part's Content-Type:
 * it replaces a Content-Type in `contentHeaders`, or comes first when there is none. Throws CpimError for
 * a name or value that would break the format (a line break: header injection).
 */
export function buildCpim(msg: CpimMessage): string {
  const content: CpimHeader[] = [];
  let typed = false;
  for (const header of msg.contentHeaders) {
    if (sameName(header[0], 'Content-Type')) {
      if (!typed) content.push(['Content-Type', msg.contentType]);
      typed = true;
    } else content.push(header);
  }
  if (!typed) content.unshift(['Content-Type', msg.contentType]);
  for (const header of [...msg.headers, ...content]) checkHeader(header);
  return `${msg.headers.map(line).join('\r\n')}\r\n\r\n${content.map(line).join('\r\n')}\r\n\r\n${msg.body}`;
}

/**
 * RFC 3862 §3.1 makes names case-sensitive, but clients in the wild write `Content-type`, `imdn.Message-Id`:
 * names are matched ignoring ASCII case; what this module writes uses the RFCs' spelling.
 */
function sameName(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}

/**
 * Every value of the header `name` (parameters removed) in order. With `namespace` (a URN such as
 * IMDN_NS) the header is looked for under whatever prefix an `NS` header before it bound to that URN
 * (RFC 3862 §5: the prefix is the sender's choice, the URN is the name); without, among unprefixed headers.
 */
export function headerValues(msg: CpimMessage, name: string, namespace?: string): string[] {
  const values: string[] = [];
  /** prefix → URN, as declared so far. */
  const prefixes = new Map<string, string>();
  for (const [headerName, value] of msg.headers) {
    if (sameName(headerName, 'NS')) {
      const ns = NS_VALUE.exec(value);
      // `NS: <urn>` without a prefix would set a default namespace; none of ours needs it.
      if (ns?.[1] !== undefined) prefixes.set(ns[1].toLowerCase(), ns[2]!);
      continue;
    }
    const dot = headerName.indexOf('.');
    const local = dot === -1 ? headerName : headerName.slice(dot + 1);
    if (!sameName(local, name)) continue;
    const inNamespace = dot === -1 ? namespace === undefined : namespace !== undefined && prefixes.get(headerName.slice(0, dot).toLowerCase()) === namespace;
    if (inNamespace) values.push(withoutParameters(value));
  }
  return values;
}

/** The first value of the header (see headerValues), or undefined. */
export function header(msg: CpimMessage, name: string, namespace?: string): string | undefined {
  return headerValues(msg, name, namespace)[0];
}

/** `;lang=fr Bonjour` → `Bonjour`. */
function withoutParameters(value: string): string {
  if (!value.startsWith(';')) return value;
  const space = value.indexOf(' ');
  return space === -1 ? '' : value.slice(space + 1);
}

/** An IMDN Message-ID we accept: RFC 5438 §6.3 asks for a globally unique token; bounded here. */
const MESSAGE_ID = /^[!-~]{1,256}$/;

/**
 * The IMDN request of a message (RFC 5438 §6): its `imdn.Message-ID` and the dispositions of
 * `imdn.Disposition-Notification` (comma-separated, possibly over several headers). Undefined when the
 * message has no usable Message-ID; a Message-ID without Disposition-Notification asks for nothing (`[]`).
 */
export function imdnRequest(msg: CpimMessage): ImdnRequest | undefined {
  const messageId = header(msg, 'Message-ID', IMDN_NS);
  if (messageId === undefined || !MESSAGE_ID.test(messageId)) return undefined;
  const dispositions: ImdnDisposition[] = [];
  for (const value of headerValues(msg, 'Disposition-Notification', IMDN_NS)) {
    for (const item of value.split(',')) {
      const d = item.trim().toLowerCase();
      if ((IMDN_DISPOSITIONS as readonly string[]).includes(d) && !dispositions.includes(d as ImdnDisposition)) dispositions.push(d as ImdnDisposition);
    }
  }
  return { messageId, dispositions, dateTime: header(msg, 'DateTime') };
}
