/**
 * Errors of the SIP message layer. Every failure to understand bytes off the wire surfaces as a
 * SipParseError with a stable code, never as a TypeError from deep inside the parser, so the stack can
 * answer with the right status (400, 505, 416 …) and log one line.
 */
export type SipParseErrorCode =
  | 'SIP_ERR_PARSE' // generic malformed input
  | 'SIP_ERR_START_LINE' // request-line / status-line
  | 'SIP_ERR_HEADER' // a header field that violates its grammar
  | 'SIP_ERR_URI' // a URI that violates its grammar
  | 'SIP_ERR_FRAMING' // Content-Length / message boundaries
  | 'SIP_ERR_TOO_LARGE' // over the configured maximum message size
  | 'SIP_ERR_TOO_MANY_HEADERS'; // more header fields than the configured maximum

export class SipParseError extends Error {
  readonly code: SipParseErrorCode;
  /** Canonical lower-case name of the offending header, when one is to blame. */
  readonly header: string | undefined;
  /** Offset in the input (bytes for messages, characters for a lone header value), when known. */
  readonly position: number | undefined;

  constructor(code: SipParseErrorCode, message: string, header?: string, position?: number) {
    super(header === undefined ? message : `${header}: ${message}`);
    this.name = 'SipParseError';
    this.code = code;
    this.header = header;
    this.position = position;
  }
}
