import { SipMessage, type HeaderField } from './sip-message.js';
import { type Uri, parseUri } from './uri.js';

export interface SipRequestInit {
  method: string;
  uri: string | Uri;
  headers?: HeaderField[];
  body?: Buffer;
  version?: string;
}

/** A SIP request (RFC 3261 §7.1). */
export class SipRequest extends SipMessage {
  method: string;
  version: string;
  private uriText: string;
  private parsedUri: Uri | undefined;
  /** The request line exactly as received, while neither method, URI nor version changed. */
  private rawStartLine: string | undefined;

  constructor(init: SipRequestInit, rawStartLine?: string) {
    super(init.headers ?? [], init.body ?? Buffer.alloc(0));
    this.method = init.method;
    this.version = init.version ?? 'SIP/2.0';
    if (typeof init.uri === 'string') {
      this.uriText = init.uri;
      this.parsedUri = undefined;
    } else {
      this.uriText = init.uri.toString();
      this.parsedUri = init.uri;
    }
    this.rawStartLine = rawStartLine;
  }

  get isRequest(): true {
    return true;
  }

  /** The Request-URI as written. */
  get uri(): string {
    return this.uriText;
  }

  /** The Request-URI, parsed (and cached). */
  get ruri(): Uri {
    if (this.parsedUri === undefined) this.parsedUri = parseUri(this.uriText);
    return this.parsedUri;
  }

  /** Retargets the request (RFC 3261 §16.5). */
  setUri(uri: string | Uri): void {
    if (typeof uri === 'string') {
      this.uriText = uri;
      this.parsedUri = undefined;
    } else {
      this.uriText = uri.toString();
      this.parsedUri = uri;
    }
    this.rawStartLine = undefined;
    this.pristine = undefined;
  }

  startLine(): string {
    return this.rawStartLine ?? `${this.method} ${this.uriText} ${this.version}`;
  }
}
