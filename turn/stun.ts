/**
 * The STUN message codec the embedded TURN server speaks (RFC 5389 §6, §15; RFC 5766 §11.4, §14): headers,
 * attributes, XOR addresses, MESSAGE-INTEGRITY, FINGERPRINT and ChannelData. Decoding never throws: bytes that
 * are not STUN give undefined, a STUN message with a bad attribute gives what the server answers 400 to.
 * SOFTWARE is never written (RFC 5389 §15.10: do not tell scanners what runs here).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ipBytes } from '../src/transport/stun.js';

/** RFC 5389 §6: bytes 4-7 of every message. */
export const MAGIC_COOKIE = 0x2112a442;
const HEADER = 20;
/** RFC 5389 §15.5: FINGERPRINT is the CRC-32 XOR "STUN". */
const FINGERPRINT_XOR = 0x5354554e;

/** Methods (RFC 5389 §18.1, RFC 5766 §13). */
export const Method = { Binding: 0x001, Allocate: 0x003, Refresh: 0x004, Send: 0x006, Data: 0x007, CreatePermission: 0x008, ChannelBind: 0x009 } as const;

/** Attribute types (RFC 5389 §18.2, RFC 5766 §14, RFC 6156 §4.1.1). */
export const Attr = {
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  EvenPort: 0x0018,
  RequestedTransport: 0x0019,
  XorMappedAddress: 0x0020,
  Fingerprint: 0x8028,
} as const;

export type StunClass = 'request' | 'indication' | 'success' | 'error';
const CLASS_BITS: Record<StunClass, number> = { request: 0x000, indication: 0x010, success: 0x100, error: 0x110 };
const CLASSES = Object.keys(CLASS_BITS) as StunClass[];

export interface StunAttribute {
  type: number;
  value: Buffer;
}

export interface StunMessage {
  method: number;
  cls: StunClass;
  /** 12 bytes. */
  transactionId: Buffer;
  /** In message order; those after MESSAGE-INTEGRITY (other than FINGERPRINT) are left out (RFC 5389 §15.4). */
  attributes: StunAttribute[];
  /** Where MESSAGE-INTEGRITY starts in the decoded bytes, for checkIntegrity(). */
  integrityAt?: number;
}

export interface TransportAddress {
  address: string;
  port: number;
}

/** RFC 5389 §6: the class bits C1 C0 sit at bits 8 and 4, the method's 12 bits around them. */
export function messageType(method: number, cls: StunClass): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | CLASS_BITS[cls];
}

/**
 * A STUN message (top two bits zero, the magic cookie, a length that is a multiple of 4 and fits, attributes
 * that fit, a FINGERPRINT that matches when there is one), else undefined: the caller drops it silently.
 */
export function decodeStun(buf: Buffer): StunMessage | undefined {
  if (buf.length < HEADER || (buf[0]! & 0xc0) !== 0 || buf.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0 || HEADER + length !== buf.length) return undefined;
  const type = buf.readUInt16BE(0);
  const attributes: StunAttribute[] = [];
  let integrityAt: number | undefined;
  let offset = HEADER;
  while (offset < buf.length) {
    if (offset + 4 > buf.length) return undefined;
    const attrType = buf.readUInt16BE(offset);
    const attrLength = buf.readUInt16BE(offset + 2);
    if (offset + 4 + attrLength > buf.length) return undefined;
    const value = buf.subarray(offset + 4, offset + 4 + attrLength);
    if (attrType === Attr.Fingerprint) {
      // §15.5: the last attribute, over everything before it; a mismatch means "not STUN" (§7.3)
      if (attrLength !== 4 || offset + 8 !== buf.length || ((crc32(buf.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0) !== value.readUInt32BE(0)) return undefined;
    } else if (integrityAt === undefined) {
      if (attrType === Attr.MessageIntegrity) integrityAt = offset;
      attributes.push({ type: attrType, value });
    }
    offset += 4 + Math.ceil(attrLength / 4) * 4;
  }
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = CLASSES.find((c) => (type & 0x110) === CLASS_BITS[c])!;
  return { method, cls, transactionId: buf.subarray(8, HEADER), attributes, ...(integrityAt === undefined ? {} : { integrityAt }) };
}

/** The first attribute of a type. */
export function attr(message: StunMessage, type: number): Buffer | undefined {
  return message.attributes.find((a) => a.type === type)?.value;
}

/**
 * Encodes a message, zero padding. With `key`, MESSAGE-INTEGRITY (RFC 5389 §15.4: HMAC-SHA1 over the message
 * up to it, the header's length already counting it); then always FINGERPRINT (§15.5: browsers demultiplex STUN
 * from media on one port by it).
 */
export function encodeStun(message: Omit<StunMessage, 'integrityAt'>, key?: Buffer): Buffer {
  const size = message.attributes.reduce((n, a) => n + 4 + Math.ceil(a.value.length / 4) * 4, 0) + (key === undefined ? 0 : 24) + 8;
  const out = Buffer.alloc(HEADER + size);
  out.writeUInt16BE(messageType(message.method, message.cls), 0);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  message.transactionId.copy(out, 8, 0, 12);
  let offset = HEADER;
  const put = (type: number, value: Buffer): void => {
    out.writeUInt16BE(type, offset);
    out.writeUInt16BE(value.length, offset + 2);
    value.copy(out, offset + 4);
    offset += 4 + Math.ceil(value.length / 4) * 4;
  };
  for (const a of message.attributes) put(a.type, a.value);
  if (key !== undefined) {
    out.writeUInt16BE(offset + 24 - HEADER, 2);
    put(Attr.MessageIntegrity, createHmac('sha1', key).update(out.subarray(0, offset)).digest());
  }
  out.writeUInt16BE(size, 2);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((crc32(out.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0, 0);
  put(Attr.Fingerprint, crc);
  return out;
}

/**
 * Checks the MESSAGE-INTEGRITY of a decoded message against a key (RFC 5389 §15.4): the HMAC over the bytes
 * before it, with the header's length rewritten to end just after it.
 */
export function checkIntegrity(buf: Buffer, message: StunMessage, key: Buffer): boolean {
  const at = message.integrityAt;
  if (at === undefined || buf.readUInt16BE(at + 2) !== 20) return false;
  const header = Buffer.from(buf.subarray(0, HEADER));
  header.writeUInt16BE(at + 24 - HEADER, 2);
  const mac = createHmac('sha1', key).update(header).update(buf.subarray(HEADER, at)).digest();
  return timingSafeEqual(mac, buf.subarray(at + 4, at + 24));
}

/**
 * RFC 5389 §15.4: the long-term key MD5(username ":" realm ":" SASLprep(password)). The passwords here are
 * base64 (the TURN REST scheme), which SASLprep leaves as they are.
 */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/** XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS (RFC 5389 §15.2): port and address XOR the cookie and transaction ID. */
export function encodeXorAddress(peer: TransportAddress, transactionId: Buffer): Buffer {
  const raw = ipBytes(peer.address);
  const out = Buffer.alloc(4 + raw.length);
  out[1] = raw.length === 4 ? 0x01 : 0x02;
  out.writeUInt16BE(peer.port ^ (MAGIC_COOKIE >>> 16), 2);
  for (let i = 0; i < raw.length; i++) out[4 + i] = raw[i]! ^ xorMask(transactionId, i);
  return out;
}

/** undefined for a value of the wrong size or family (the server answers 400). IPv6 comes back uncompressed. */
export function decodeXorAddress(value: Buffer, transactionId: Buffer): TransportAddress | undefined {
  const size = value.length === 8 && value[1] === 0x01 ? 4 : value.length === 20 && value[1] === 0x02 ? 16 : 0;
  if (size === 0) return undefined;
  const raw = Buffer.alloc(size);
  for (let i = 0; i < size; i++) raw[i] = value[4 + i]! ^ xorMask(transactionId, i);
  const address = size === 4 ? raw.join('.') : Array.from({ length: 8 }, (_, i) => raw.readUInt16BE(i * 2).toString(16)).join(':');
  return isIP(address) === 0 ? undefined : { address, port: value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16) };
}

/** Byte i of the magic cookie followed by the transaction ID. */
function xorMask(transactionId: Buffer, i: number): number {
  return i < 4 ? (MAGIC_COOKIE >>> (24 - i * 8)) & 0xff : transactionId[i - 4]!;
}

/** ERROR-CODE (RFC 5389 §15.6): class (hundreds) and number, then the reason phrase. */
export function errorCode(code: number, reason: string): Buffer {
  return Buffer.concat([Buffer.from([0, 0, Math.floor(code / 100), code % 100]), Buffer.from(reason, 'utf8')]);
}

/** A 32-bit attribute value (LIFETIME). */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** RFC 5766 §11: channel numbers 0x4000-0x7FFF; the first two bits 01 tell ChannelData from STUN (00). */
export const CHANNEL_MIN = 0x4000;
export const CHANNEL_MAX = 0x7fff;

/**
 * A ChannelData message (RFC 5766 §11.4): channel number, length, data; over UDP the padding to 4 bytes may be
 * there or not. undefined when the length does not fit.
 */
export function decodeChannelData(buf: Buffer): { channel: number; data: Buffer } | undefined {
  if (buf.length < 4) return undefined;
  const channel = buf.readUInt16BE(0);
  const length = buf.readUInt16BE(2);
  if (channel < CHANNEL_MIN || channel > CHANNEL_MAX || 4 + length > buf.length) return undefined;
  return { channel, data: buf.subarray(4, 4 + length) };
}

/** ChannelData without padding (RFC 5766 §11.5: over UDP it need not be padded). */
export function encodeChannelData(channel: number, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + data.length);
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(data.length, 2);
  data.copy(out, 4);
  return out;
}

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** CRC-32 of ISO 3309 (zlib.crc32 is newer than the Node 20 releases this runs on). */
export function crc32(buf: Buffer): number {
  let c = -1;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
