/**
 * The two requests the transaction layer builds from an INVITE: the hop-by-hop ACK of a non-2xx final
 * response (§17.1.1.3) and CANCEL (§9.1). Header fields are reused as they are (their raw bytes included)
 * wherever the RFC says "copied", so building either costs a few small objects.
 */
import { type HeaderField, SipRequest, type SipResponse, makeField } from '../sip/index.js';

/**
 * RFC 3261 §17.1.1.3: "The ACK request constructed by the client transaction MUST contain values for
 * the Call-ID, From, and Request-URI that are equal to the values of those header fields in the request
 * passed to the transport by the client transaction (call this the 'original request'). The To header
 * field in the ACK MUST equal the To header field in the response being acknowledged ... The ACK MUST
 * contain a single Via header field, and this MUST be equal to the top Via header field of the original
 * request. The CSeq header field in the ACK MUST contain the same value for the sequence number as was
 * present in the original request, but the method parameter MUST be equal to 'ACK'. If the INVITE request
 * whose response is being acknowledged had Route header fields, those header fields MUST appear in the
 * ACK."
 */
export function createAckForNon2xx(invite: SipRequest, response: SipResponse): SipRequest {
  const cseq = requireCSeq(invite, 'ACK');
  const headers: HeaderField[] = [topViaField(invite)];
  copyFields(invite, 'route', headers);
  headers.push(makeField('max-forwards', 'Max-Forwards', '70'));
  copyFields(invite, 'from', headers);
  const to = firstField(response, 'to');
  if (to !== undefined) headers.push(to);
  copyFields(invite, 'call-id', headers);
  headers.push(makeField('cseq', 'CSeq', `${cseq.seq} ACK`));
  headers.push(makeField('content-length', 'Content-Length', '0'));
  return new SipRequest({ method: 'ACK', uri: invite.uri, headers });
}

/**
 * RFC 3261 §9.1: "The Request-URI, Call-ID, To, the numeric part of CSeq, and From header fields in the
 * CANCEL request MUST be identical to those in the request being cancelled, including tags. A CANCEL
 * constructed by a client MUST have only a single Via header field value matching the top Via value in
 * the request being cancelled. ... the method parameter [of CSeq] MUST have a value of CANCEL. ... If the
 * request being cancelled contains a Route header field, the CANCEL request MUST include that Route
 * header field's values." Max-Forwards is 70 (§8.1.1.6).
 */
export function createCancel(invite: SipRequest): SipRequest {
  const cseq = requireCSeq(invite, 'CANCEL');
  const headers: HeaderField[] = [topViaField(invite)];
  copyFields(invite, 'route', headers);
  headers.push(makeField('max-forwards', 'Max-Forwards', '70'));
  copyFields(invite, 'from', headers);
  copyFields(invite, 'to', headers);
  copyFields(invite, 'call-id', headers);
  headers.push(makeField('cseq', 'CSeq', `${cseq.seq} CANCEL`));
  headers.push(makeField('content-length', 'Content-Length', '0'));
  return new SipRequest({ method: 'CANCEL', uri: invite.uri, headers });
}

function requireCSeq(invite: SipRequest, what: string): { seq: number; method: string } {
  const cseq = invite.cseq;
  if (cseq === undefined) throw new TypeError(`cannot build ${what}: the request has no CSeq`);
  return cseq;
}

/** The top Via value as a field of its own: the INVITE's first Via field itself when it holds one value. */
function topViaField(invite: SipRequest): HeaderField {
  const field = firstField(invite, 'via');
  const top = invite.topVia;
  if (field === undefined || top === undefined) throw new TypeError('cannot build ACK/CANCEL: the request has no Via');
  // A comma can only mean several values (or, rarely, a quoted parameter): then write the top value anew.
  return field.value.indexOf(',') === -1 ? field : makeField('via', 'Via', top.toString());
}

function firstField(msg: SipRequest | SipResponse, key: string): HeaderField | undefined {
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) if (hs[i]!.key === key) return hs[i];
  return undefined;
}

function copyFields(msg: SipRequest, key: string, out: HeaderField[]): void {
  const hs = msg.headers;
  for (let i = 0; i < hs.length; i++) if (hs[i]!.key === key) out.push(hs[i]!);
}
