/**
 * Counts of the SIP messages a stack handles, by method and status code: what `/metrics` exports as
 * `softswitch_sip_*_total`. On the hot path, so a count is one increment in a preallocated array (no
 * string built, no Map entry created per message); the labelled view is built only when read.
 *
 * The method is a token anyone can choose (RFC 3261 §25.1 `extension-method`): the methods of RFC 3261 and
 * its extensions each get their own slot, every other one counts as `OTHER`, so a scanner inventing methods
 * cannot grow the number of series.
 */

/** The methods counted by name (RFC 3261 §7.1, RFC 3262 PRACK, 3265/6665 SUBSCRIBE/NOTIFY, 3311 UPDATE, 3428 MESSAGE, 3515 REFER, 3903 PUBLISH, 6086 INFO). */
export const COUNTED_METHODS = [
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE',
] as const;
export const OTHER_METHOD = 'OTHER';

const SLOT = new Map<string, number>(COUNTED_METHODS.map((m, i) => [m, i]));
const METHODS = COUNTED_METHODS.length + 1;
/** Status codes 100–699 (RFC 3261 §7.2), one slot each. */
const CODES = 600;

/** One count of a labelled series, as read by `MessageCounters.read`. */
export interface MethodCount {
  method: string;
  count: number;
}
export interface ResponseCount extends MethodCount {
  code: number;
}

export interface MessageCountsView {
  /** Requests read from the network, retransmissions included. */
  requestsReceived: MethodCount[];
  /** Of those, retransmissions absorbed by their transaction (§17.2.3 matched an existing one). */
  retransmissionsReceived: MethodCount[];
  /** Responses read, by the method of their CSeq and their code. */
  responsesReceived: ResponseCount[];
  /** Responses sent (the stack's own and the ones it forwards), first transmissions only. */
  responsesSent: ResponseCount[];
}

export class MessageCounters {
  private readonly requests = new Float64Array(METHODS);
  private readonly retransmissions = new Float64Array(METHODS);
  private readonly received = new Float64Array(METHODS * CODES);
  private readonly sent = new Float64Array(METHODS * CODES);

  request(method: string): void {
    this.requests[SLOT.get(method) ?? METHODS - 1]!++;
  }

  retransmission(method: string): void {
    this.retransmissions[SLOT.get(method) ?? METHODS - 1]!++;
  }

  /** A response read; `method` is its CSeq method (undefined when the CSeq is missing: OTHER). */
  responseReceived(method: string | undefined, status: number): void {
    const i = responseSlot(method, status);
    if (i >= 0) this.received[i]!++;
  }

  responseSent(method: string | undefined, status: number): void {
    const i = responseSlot(method, status);
    if (i >= 0) this.sent[i]!++;
  }

  /** The non-zero counts, labelled. */
  read(): MessageCountsView {
    return {
      requestsReceived: methodCounts(this.requests),
      retransmissionsReceived: methodCounts(this.retransmissions),
      responsesReceived: responseCounts(this.received),
      responsesSent: responseCounts(this.sent),
    };
  }
}

function responseSlot(method: string | undefined, status: number): number {
  if (!(status >= 100 && status <= 699)) return -1;
  const m = method === undefined ? METHODS - 1 : SLOT.get(method) ?? METHODS - 1;
  return m * CODES + ((status - 100) | 0);
}

function methodName(slot: number): string {
  return COUNTED_METHODS[slot] ?? OTHER_METHOD;
}

function methodCounts(counts: Float64Array): MethodCount[] {
  const out: MethodCount[] = [];
  counts.forEach((count, slot) => {
    if (count > 0) out.push({ method: methodName(slot), count });
  });
  return out;
}

function responseCounts(counts: Float64Array): ResponseCount[] {
  const out: ResponseCount[] = [];
  counts.forEach((count, i) => {
    if (count > 0) out.push({ method: methodName(Math.floor(i / CODES)), code: 100 + (i % CODES), count });
  });
  return out;
}
