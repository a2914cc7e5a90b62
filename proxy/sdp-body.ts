import type { SipMessage } from '../src/sip/index.js';

/** A message whose body is an SDP (RFC 3264 offer or answer). Multipart bodies are not looked into. */
export function hasSdp(message: SipMessage): boolean {
  return message.body.length > 0 && message.contentType === 'application/sdp';
}
