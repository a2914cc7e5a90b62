/**
 * What crosses between workers: the frame that hands a datagram to its owner over the internal loopback
 * socket, and bindings as plain JSON for the IPC channel.
 */
import { parseNameAddrs } from '../../src/sip/index.js';
import type { Flow, HostPort, TransportProtocol } from '../../src/transport/types.js';
import type { Binding } from '../../registrar/index.js';
import type { WireBinding } from './types.js';

export type { Flow };
export interface ReceivedAddressLike {
  protocol: TransportProtocol;
  address: string;
  port: number;
}

/** First octet of a hand-over frame: never the first octet of a SIP message (a token or "SIP/2.0"). */
const FRAME_MAGIC = 0xf5;
const FRAME_VERSION = 1;
const HEADER_LENGTH = 8;

/**
 * The header of a hand-over frame; the datagram follows it unchanged (sent as a second buffer, no copy):
 * magic, version, remote port, local port, remote address length, local address length, then both
 * addresses in ASCII.
 */
export function frameHeader(remote: HostPort, local: HostPort): Buffer {
  const ra = Buffer.from(remote.address, 'latin1');
  const la = Buffer.from(local.address, 'latin1');
  const h = Buffer.allocUnsafe(HEADER_LENGTH + ra.length + la.length);
  h[0] = FRAME_MAGIC;
  h[1] = FRAME_VERSION;
  h.writeUInt16BE(remote.port, 2);
  h.writeUInt16BE(local.port, 4);
  h[6] = ra.length;
  h[7] = la.length;
  ra.copy(h, HEADER_LENGTH);
  la.copy(h, HEADER_LENGTH + ra.length);
  return h;
}

/** Control frames between workers (the second octet, after the magic): a stream send to relay, its result, a stream-borne message to hand over. */
export const FRAME_SEND = 2;
export const FRAME_SENT = 3;
export const FRAME_MESSAGE = 4;
export type ControlKind = typeof FRAME_SEND | typeof FRAME_SENT | typeof FRAME_MESSAGE;

/** Magic, kind, the length of a JSON header (2 octets), the header; the payload (if any) follows unchanged. */
export function controlFrame(kind: ControlKind, header: object): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const h = Buffer.allocUnsafe(4 + json.length);
  h[0] = FRAME_MAGIC;
  h[1] = kind;
  h.writeUInt16BE(json.length, 2);
  json.copy(h, 4);
  return h;
}

export interface ControlFrame {
  kind: ControlKind;
  header: Record<string, unknown>;
  data: Buffer;
}

/** A control frame, or undefined for anything else (a datagram frame, garbage). */
export function parseControlFrame(msg: Buffer): ControlFrame | undefined {
  if (msg.length < 4 || msg[0] !== FRAME_MAGIC) return undefined;
  const kind = msg[1];
  if (kind !== FRAME_SEND && kind !== FRAME_SENT && kind !== FRAME_MESSAGE) return undefined;
  const end = 4 + msg.readUInt16BE(2);
  if (end > msg.length) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(msg.toString('utf8', 4, end));
  } catch {
    return undefined;
  }
  if (header === null || typeof header !== 'object') return undefined;
  return { kind, header: header as Record<string, unknown>, data: msg.subarray(end) };
}

export interface Frame {
  remote: HostPort;
  local: HostPort;
  data: Buffer;
}

/** The datagram and its addresses, or undefined for anything that is not a frame of this version. */
export function parseFrame(msg: Buffer): Frame | undefined {
  if (msg.length < HEADER_LENGTH || msg[0] !== FRAME_MAGIC || msg[1] !== FRAME_VERSION) return undefined;
  const ral = msg[6]!;
  const lal = msg[7]!;
  const body = HEADER_LENGTH + ral + lal;
  if (msg.length <= body) return undefined;
  return {
    remote: { address: msg.toString('latin1', HEADER_LENGTH, HEADER_LENGTH + ral), port: msg.readUInt16BE(2) },
    local: { address: msg.toString('latin1', HEADER_LENGTH + ral, body), port: msg.readUInt16BE(4) },
    data: msg.subarray(body),
  };
}

export function toWire(b: Binding): WireBinding {
  return {
    aor: b.aor,
    contact: String(b.contact),
    contactUri: b.contactUri,
    expiresAt: b.expiresAt,
    q: b.q,
    callId: b.callId,
    cseq: b.cseq,
    flow: b.flow === undefined ? undefined : { id: b.flow.id, protocol: b.flow.protocol, local: { ...b.flow.local }, remote: { ...b.flow.remote } },
    received: { ...b.received },
    path: b.path === undefined ? undefined : [...b.path],
    instanceId: b.instanceId,
    regId: b.regId,
    userAgent: b.userAgent,
    updatedAt: b.updatedAt,
  };
}

/** The Binding back; throws SipParseError when the Contact text does not parse. */
export function fromWire(w: WireBinding): Binding {
  const contact = parseNameAddrs(w.contact, 'contact', true)[0];
  if (contact === undefined) throw new TypeError(`binding of ${w.aor} without a Contact`);
  return {
    aor: w.aor,
    contact,
    contactUri: w.contactUri,
    expiresAt: w.expiresAt,
    q: w.q,
    callId: w.callId,
    cseq: w.cseq,
    flow: w.flow,
    received: w.received,
    path: w.path,
    instanceId: w.instanceId,
    regId: w.regId,
    userAgent: w.userAgent,
    updatedAt: w.updatedAt,
  };
}
