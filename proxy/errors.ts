/** Errors of the proxy core, with stable codes. Problems with messages from the network are answered, never thrown. */
export type ProxyErrorCode =
  | 'PROXY_ERR_STOPPED'; // the core was used after stop()

export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  constructor(code: ProxyErrorCode, message: string) {
    super(message);
    this.name = 'ProxyError';
    this.code = code;
  }
}
