/**
 * A response to a request the parser refused: RFC 4475 asks for 400 to most malformed requests, but a
 * malformed request has no trustworthy model. The header lines a response must echo (Via, From, To,
 * Call-ID, CSeq — RFC 3261 §8.2.6.2) are copied as raw lines, so a response can go back whenever those
 * lines exist, even if another header is broken.
 */
import { headerKey } from '../sip/index.js';

const ECHOED = new Set(['via', 'from', 'to', 'call-id', 'cseq']);

export interface Salvaged {
  /** The whole response. */
  data: Buffer;
  /** The raw text of the first Via value, for §18.2.2 routing when it parses. */
  topVia: string;
}

/** Builds `SIP/2.0 <status> <reason>` echoing the request's routing headers, or undefined when impossible. */
export function salvageResponse(request: Buffer, status: number, reason: string, extra: string[] = []): Salvaged | undefined {
  const headEnd = request.indexOf('\r\n\r\n');
  const head = request.toString('latin1', 0, headEnd === -1 ? Math.min(request.length, 65535) : headEnd);
  const lines = head.split(/\r?\n/);
  if (lines.length < 2 || lines[0]!.startsWith('SIP/')) return undefined; // responses are never answered
  const method = lines[0]!.split(' ', 1)[0];
  if (method === 'ACK') return undefined; // §17.2.1: an ACK is never answered
  const kept: string[] = [];
  let topVia: string | undefined;
  let current: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current !== undefined) kept[kept.length - 1] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      current = undefined;
      continue;
    }
    const key = headerKey(line.slice(0, colon).trim());
    if (!ECHOED.has(key)) {
      current = undefined;
      continue;
    }
    current = key;
    kept.push(line);
    if (key === 'via' && topVia === undefined) topVia = line.slice(colon + 1);
  }
  if (topVia === undefined) return undefined;
  const text = [`SIP/2.0 ${status} ${reason}`, ...kept, ...extra, 'Content-Length: 0', '', ''].join('\r\n');
  return { data: Buffer.from(text, 'latin1'), topVia: topVia.split(',')[0]!.trim() };
}
