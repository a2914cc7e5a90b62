import { SipParseError } from './errors.js';

export type FramerItem =
  | { kind: 'message'; data: Buffer }
  /** CRLF pairs between messages: two or more are an RFC 5626 §4.4.1 ping (answer with one CRLF), one is a pong. */
  | { kind: 'keepalive'; crlfs: number };

export interface StreamFramerOptions {
  /** Largest message (head and body) accepted; a larger one is a framing error. */
  maxMessageSize: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Cuts SIP messages out of a byte stream (TCP, TLS) by Content-Length (RFC 3261 §18.3): a missing
 * Content-Length means an empty body, a malformed or conflicting one is a framing error after which the
 * connection cannot be resynchronised and must be closed.
 */
export class StreamFramer {
  private pending: Buffer = Buffer.alloc(0);
  private failed = false;
  private readonly maxMessageSize: number;

  constructor(options: StreamFramerOptions) {
    if (!(options.maxMessageSize > 0)) throw new TypeError('maxMessageSize must be a positive number');
    this.maxMessageSize = options.maxMessageSize;
  }

  /** Bytes waiting for the rest of their message. */
  get buffered(): number {
    return this.pending.length;
  }

  /**
   * Adds received bytes and returns the complete messages and keep-alives they finish. Throws
   * SipParseError (SIP_ERR_FRAMING or SIP_ERR_TOO_LARGE) when the stream cannot be framed.
   */
  push(chunk: Buffer): FramerItem[] {
    if (this.failed) throw new SipParseError('SIP_ERR_FRAMING', 'stream already failed to frame');
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: FramerItem[] = [];
    let pos = 0;
    try {
      for (;;) {
        // Keep-alive CRLFs between messages.
        let crlfs = 0;
        while (pos + 1 < buf.length && buf[pos] === 0x0d && buf[pos + 1] === 0x0a) {
          pos += 2;
          crlfs++;
        }
        if (crlfs > 0) out.push({ kind: 'keepalive', crlfs });
        if (pos >= buf.length) break;
        if (buf[pos] === 0x0d && pos + 1 === buf.length) break; // half a CRLF: wait
        const headEnd = buf.indexOf(CRLFCRLF, pos);
        if (headEnd === -1) {
          if (buf.length - pos > this.maxMessageSize) throw this.tooLarge(buf.length - pos);
          break;
        }
        const bodyStart = headEnd + 4;
        const contentLength = findContentLength(buf, pos, headEnd + 2);
        const total = bodyStart - pos + contentLength;
        if (total > this.maxMessageSize) throw this.tooLarge(total);
        if (buf.length < bodyStart + contentLength) break;
        out.push({ kind: 'message', data: buf.subarray(pos, bodyStart + contentLength) });
        pos = bodyStart + contentLength;
      }
    } catch (err) {
      this.failed = true;
      this.pending = Buffer.alloc(0);
      throw err;
    }
    buf = pos === 0 ? buf : buf.subarray(pos);
    // Keep a copy of a small remainder so that the big chunk it came from can be collected.
    this.pending = buf.length > 0 && buf.length < 4096 && pos > 0 ? Buffer.from(buf) : buf;
    return out;
  }

  private tooLarge(size: number): SipParseError {
    return new SipParseError('SIP_ERR_TOO_LARGE', `message of ${size} bytes or more exceeds the maximum of ${this.maxMessageSize}`);
  }
}

/**
 * Content-Length of the head in buf[start, end): 0 when absent (RFC 3261 §18.3 requires it on streams;
 * a sender that omits it has no body), an error when negative, malformed or given twice with different values.
 */
function findContentLength(buf: Buffer, start: number, end: number): number {
  const head = buf.toString('latin1', start, end);
  let result = -1;
  let pos = head.indexOf('\n') + 1;
  while (pos > 0 && pos < head.length) {
    const nl = head.indexOf('\n', pos);
    const lineEnd = nl === -1 ? head.length : nl;
    const c = head.charCodeAt(pos) | 0x20;
    if (c === 0x6c /* l */ || c === 0x63 /* c */) {
      const colon = head.indexOf(':', pos);
      if (colon !== -1 && colon < lineEnd) {
        const name = head.slice(pos, colon).trim().toLowerCase();
        if (name === 'content-length' || name === 'l') {
          const value = head.slice(colon + 1, lineEnd).trim();
          if (!/^\d{1,10}$/.test(value)) throw new SipParseError('SIP_ERR_FRAMING', `bad Content-Length ${JSON.stringify(value)}`, 'content-length');
          const n = Number(value);
          if (result !== -1 && result !== n) throw new SipParseError('SIP_ERR_FRAMING', 'conflicting Content-Length values', 'content-length');
          result = n;
        }
      }
    }
    pos = nl === -1 ? -1 : nl + 1;
  }
  return result === -1 ? 0 : result;
}
