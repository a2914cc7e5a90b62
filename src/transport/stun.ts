import { isIP } from 'node:net';
import type { HostPort } from './types.js';

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;

/**
 * RFC 5389 §6: a STUN message starts with two zero bits and carries the magic cookie at offset 4. No SIP
 * message can start that way (a SIP start line begins with a token character), so the check is exact.
 */
export function isStun(data: Buffer): boolean {
  return data.length >= 20 && (data[0]! & 0xc0) === 0 && data.readUInt32BE(4) === MAGIC_COOKIE && (data.readUInt16BE(2) & 3) === 0;
}

/**
 * RFC 5626 §4.4.2 / §8.3: a UDP SIP port of an outbound-capable server answers STUN Binding requests, so
 * that clients can keep their NAT binding open and learn their reflexive address. Returns the Binding
 * success response with XOR-MAPPED-ADDRESS (RFC 5389 §15.2), or undefined for anything that is not a
 * well-formed Binding request.
 */
export function stunBindingResponse(request: Buffer, remote: HostPort): Buffer | undefined {
  if (!isStun(request) || request.readUInt16BE(0) !== BINDING_REQUEST) return undefined;
  if (request.readUInt16BE(2) + 20 !== request.length) return undefined;
  const family = isIP(remote.address);
  if (family === 0) return undefined;
  const addrLen = family === 4 ? 4 : 16;
  const out = Buffer.alloc(20 + 4 + 4 + addrLen);
  out.writeUInt16BE(BINDING_SUCCESS, 0);
  out.writeUInt16BE(4 + 4 + addrLen, 2);
  request.copy(out, 4, 4, 20); // magic cookie and transaction id
  out.writeUInt16BE(XOR_MAPPED_ADDRESS, 20);
  out.writeUInt16BE(4 + addrLen, 22);
  out.writeUInt8(0, 24);
  out.writeUInt8(family === 4 ? 0x01 : 0x02, 25);
  out.writeUInt16BE(remote.port ^ (MAGIC_COOKIE >>> 16), 26);
  const addr = ipBytes(remote.address);
  // X-Address: the address XOR the magic cookie (IPv4) or the cookie followed by the transaction id (IPv6).
  for (let i = 0; i < addrLen; i++) out[28 + i] = addr[i]! ^ request[4 + i]!;
  return out;
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address (a valid one: check with isIP first). */
export function ipBytes(address: string): Buffer {
  return isIP(address) === 4 ? ipv4Bytes(address) : ipv6Bytes(address);
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map((n) => Number(n)));
}

function ipv6Bytes(address: string): Buffer {
  let a = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const b = ipv4Bytes(v4[1]!);
    a = `${a.slice(0, -v4[1]!.length)}${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head = '', tail] = a.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
