import type { SipMessage } from './sip-message.js';

/**
 * Message → bytes. An unmodified parsed message comes back as the exact bytes it was parsed from;
 * otherwise untouched header fields are copied from their raw text and only the changed ones are
 * written anew. Content-Length always tells the truth about the body that goes out.
 */
export function serializeMessage(msg: SipMessage): Buffer {
  if (msg.pristine !== undefined) return msg.pristine;
  const body = msg.body;
  const bodyLength = String(body.length);
  let head = msg.startLine() + '\r\n';
  let sawLength = false;
  for (const h of msg.headers) {
    if (h.key === 'content-length') {
      if (sawLength) continue;
      sawLength = true;
      if (h.value !== bodyLength) {
        head += h.name + ': ' + bodyLength + '\r\n';
        continue;
      }
    }
    head += h.raw ?? h.name + ': ' + h.value + '\r\n';
  }
  if (!sawLength) head += 'Content-Length: ' + bodyLength + '\r\n';
  head += '\r\n';
  const out = Buffer.allocUnsafe(head.length + body.length);
  out.write(head, 0, 'latin1');
  body.copy(out, head.length);
  return out;
}
