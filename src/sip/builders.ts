import { randomBytes } from 'node:crypto';
import { headerKey } from './header-names.js';
import { type HeaderField, makeField } from './sip-message.js';
import { SipRequest } from './sip-request.js';
import { SipResponse } from './sip-response.js';
import { MAGIC_COOKIE } from './via.js';

/** Wire strings carry one octet per char; these convert to and from ordinary (UTF-16) JS strings. */
export function utf8ToWire(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

export function wireToUtf8(s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8');
}

const pool = { buf: Buffer.alloc(0), pos: 0 };

/** Random URL-safe text from a pooled buffer: one randomBytes call per thousand identifiers. */
export function randomToken(length = 16): string {
  const bytes = Math.ceil((length * 3) / 4);
  if (pool.pos + bytes > pool.buf.length) {
    pool.buf = randomBytes(4096);
    pool.pos = 0;
  }
  const s = pool.buf.toString('base64url', pool.pos, pool.pos + bytes).slice(0, length);
  pool.pos += bytes;
  return s;
}

/** A branch with the RFC 3261 §8.1.1.7 magic cookie. */
export function newBranch(): string {
  return MAGIC_COOKIE + randomToken(16);
}

export function newTag(): string {
  return randomToken(12);
}

export function newCallId(): string {
  return randomToken(22);
}

export interface ResponseOptions {
  reason?: string;
  /** To-tag to add when the request's To has none (RFC 3261 §8.2.6.2); ignored for 100 Trying. */
  toTag?: string;
  /** Extra header fields, as [name, value] pairs, appended after the copied ones. */
  headers?: Array<[string, string]>;
  body?: Buffer | string;
  contentType?: string;
}

/**
 * Builds a response to a request (RFC 3261 §8.2.6.2): From, Call-ID, CSeq and every Via copied (Via
 * values keep their order and bytes, including received/rport added on arrival), To copied with a tag
 * added when it has none, and for 100 Trying the Timestamp too (§8.2.6.1).
 */
export function createResponse(request: SipRequest, status: number, options: ResponseOptions = {}): SipResponse {
  const headers: HeaderField[] = [];
  for (const h of request.headers) {
    switch (h.key) {
      case 'via':
      case 'from':
      case 'call-id':
      case 'cseq':
        headers.push(h);
        break;
      case 'to':
        if (status > 100 && request.to !== undefined && request.to.tag === undefined) {
          headers.push(makeField('to', 'To', `${h.value};tag=${options.toTag ?? newTag()}`));
        } else {
          headers.push(h);
        }
        break;
      case 'timestamp':
        if (status === 100) headers.push(h);
        break;
    }
  }
  for (const [name, value] of options.headers ?? []) headers.push(makeField(headerKey(name), name, value));
  const response = new SipResponse({ status, reason: options.reason, headers });
  if (options.body !== undefined) response.setBody(options.body, options.contentType);
  return response;
}
