/**
 * Which worker of a cluster holds the transaction of a datagram, read from its raw bytes (no full parse:
 * this runs for every datagram the shared UDP sockets receive, before the parser).
 *
 * - A response goes to the worker whose tag ends the branch of its top Via (`~1`: the transaction layer
 *   of worker 1 appended it, TransactionLayer.setBranchTag), else by its Call-ID like a request.
 * - A request goes to hash(Call-ID) mod workers: its retransmissions, its CANCEL and the ACK of a non-2xx
 *   carry the same Call-ID (RFC 3261 §9.1, §17.1.1.3), so they land with its server transaction, and so do
 *   the dialog's later requests and the responses to what that worker forwarded for it.
 *
 * A datagram without a Call-ID (malformed) has no owner: the worker that received it rejects it.
 */

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SP = 0x20;
const HTAB = 0x09;

/** The tag that ends the branches of worker `index`: `~` is a token character that base64url never writes. */
export function branchTag(index: number): string {
  return `~${index}`;
}

/**
 * The prefix of the flow ids a worker gives its connections (TransportLayer.setStreamRelay): `w1` → `wss:w1.…`
 * for the first worker of slot 1, `w1g2` for the third (generation 2: restarted twice).
 */
export function flowTag(index: number, generation = 0): string {
  return generation === 0 ? `w${index}` : `w${index}g${generation}`;
}

/** The worker (slot and generation) whose connection a flow id names (`<protocol>:w<N>[g<G>].…`), or undefined. */
export function flowOwner(flowId: string): { index: number; generation: number } | undefined {
  const colon = flowId.indexOf(':');
  if (colon === -1 || flowId.charCodeAt(colon + 1) !== 0x77 /* w */) return undefined;
  const dot = flowId.indexOf('.', colon + 2);
  if (dot === -1 || dot === colon + 2 || dot > colon + 16) return undefined;
  const tag = flowId.slice(colon + 2, dot);
  const g = tag.indexOf('g');
  const index = Number(g === -1 ? tag : tag.slice(0, g));
  const generation = g === -1 ? 0 : Number(tag.slice(g + 1));
  if (g === 0 || g === tag.length - 1 || !/^\d+(g\d+)?$/.test(tag)) return undefined;
  return Number.isInteger(index) && Number.isInteger(generation) ? { index, generation } : undefined;
}

/** The worker slot whose connection a flow id names, or undefined for another kind of id. */
export function flowWorker(flowId: string): number | undefined {
  return flowOwner(flowId)?.index;
}

/** Whether the bytes of a SIP message are a response (they start with "SIP/"). */
export function isResponse(data: Buffer): boolean {
  return data.length > 8 && data[0] === 0x53 && data[1] === 0x49 && data[2] === 0x50 && data[3] === 0x2f;
}

/** The owner of a datagram among `workers`, or undefined when it names none. */
export function datagramOwner(data: Buffer, workers: number): number | undefined {
  const response = isResponse(data);
  let pos = data.indexOf(LF);
  let callId: number | undefined;
  let viaSeen = false;
  while (pos !== -1 && pos + 1 < data.length) {
    const start = pos + 1;
    const end = data.indexOf(LF, start);
    const lineEnd = end === -1 ? data.length : end;
    const contentEnd = lineEnd > start && data[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    if (contentEnd === start) break; // the empty line: end of the header section
    const first = data[start]!;
    if (first !== SP && first !== HTAB) {
      const colon = data.indexOf(COLON, start);
      if (colon !== -1 && colon < contentEnd) {
        let nameEnd = colon;
        while (nameEnd > start && (data[nameEnd - 1] === SP || data[nameEnd - 1] === HTAB)) nameEnd--;
        const nameLength = nameEnd - start;
        if (response && !viaSeen && isVia(data, start, nameLength)) {
          viaSeen = true;
          const owner = ownerFromVia(data, colon + 1, contentEnd, workers);
          if (owner !== undefined) return owner;
        } else if (callId === undefined && isCallId(data, start, nameLength)) {
          callId = hashValue(data, colon + 1, contentEnd);
          if (!response) return callId % workers;
        }
      }
    }
    pos = end;
  }
  return callId === undefined ? undefined : callId % workers;
}

function lower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

function isVia(data: Buffer, start: number, length: number): boolean {
  if (length === 1) return lower(data[start]!) === 0x76; // compact form v
  return length === 3 && lower(data[start]!) === 0x76 && lower(data[start + 1]!) === 0x69 && lower(data[start + 2]!) === 0x61;
}

const CALL_ID = 'call-id';

function isCallId(data: Buffer, start: number, length: number): boolean {
  if (length === 1) return lower(data[start]!) === 0x69; // compact form i
  if (length !== CALL_ID.length) return false;
  for (let i = 0; i < length; i++) if (lower(data[start + i]!) !== CALL_ID.charCodeAt(i)) return false;
  return true;
}

/** FNV-1a over the value with surrounding whitespace left out (Call-IDs compare byte for byte). */
function hashValue(data: Buffer, from: number, to: number): number {
  while (from < to && (data[from] === SP || data[from] === HTAB)) from++;
  while (to > from && (data[to - 1] === SP || data[to - 1] === HTAB)) to--;
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) {
    h ^= data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The worker of `workers` that a text (a chat device's key) falls to: FNV-1a of its UTF-8, mod workers. */
export function textOwner(text: string, workers: number): number {
  const bytes = Buffer.from(text, 'utf8');
  return hashValue(bytes, 0, bytes.length) % workers;
}

const BRANCH = ';branch=';

/** The worker named by the tag at the end of the branch of the first Via value in data[from, to). */
function ownerFromVia(data: Buffer, from: number, to: number, workers: number): number | undefined {
  // The first value ends at the first comma; parameters are matched case-insensitively.
  let i = from;
  let valueEnd = data.indexOf(0x2c, from);
  if (valueEnd === -1 || valueEnd > to) valueEnd = to;
  for (; i + BRANCH.length <= valueEnd; i++) {
    if (data[i] !== 0x3b) continue;
    let k = 1;
    let j = i + 1;
    while (j < valueEnd && (data[j] === SP || data[j] === HTAB)) j++;
    for (; k < BRANCH.length - 1 && j < valueEnd; k++, j++) if (lower(data[j]!) !== BRANCH.charCodeAt(k)) break;
    if (k !== BRANCH.length - 1) continue;
    while (j < valueEnd && (data[j] === SP || data[j] === HTAB)) j++;
    if (data[j] !== 0x3d) continue; // '='
    j++;
    while (j < valueEnd && (data[j] === SP || data[j] === HTAB)) j++;
    let end = j;
    while (end < valueEnd && data[end] !== 0x3b && data[end] !== SP && data[end] !== HTAB) end++;
    // The tag: '~' then decimal digits, ending the branch.
    let d = end;
    while (d > j && data[d - 1]! >= 0x30 && data[d - 1]! <= 0x39) d--;
    if (d === end || d - 1 < j || data[d - 1] !== 0x7e) return undefined;
    let n = 0;
    for (let x = d; x < end; x++) n = n * 10 + (data[x]! - 0x30);
    return n < workers ? n : undefined;
  }
  return undefined;
}
