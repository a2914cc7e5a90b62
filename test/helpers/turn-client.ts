/**
 * A small TURN client over UDP for tests against a real TURN server (coturn): STUN message encoding
 * (RFC 5389 §6, §15), long-term credentials (RFC 5389 §10.2), Allocate (RFC 5766 §6) and CreatePermission
 * (RFC 5766 §9), Refresh (§7), ChannelBind (§11), Send and Data indications (§10) and ChannelData (§11.4). It
 * answers "what code did the server give" and "what data came back", nothing more: no TCP.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

/** RFC 5389 §6: the fixed value in bytes 4-7 of every message. */
export const MAGIC_COOKIE = 0x2112a442;
/** RFC 5389 §15.5: FINGERPRINT is the CRC-32 XOR this ("STUN"). */
const FINGERPRINT_XOR = 0x5354554e;
const HEADER_LENGTH = 20;

/** STUN/TURN methods (RFC 5389 §18.1, RFC 5766 §13). */
export const StunMethod = { Binding: 0x001, Allocate: 0x003, Refresh: 0x004, Send: 0x006, Data: 0x007, CreatePermission: 0x008, ChannelBind: 0x009 } as const;

/** Attribute types (RFC 5389 §18.2, RFC 5766 §14). */
export const StunAttr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  RequestedTransport: 0x0019,
  XorMappedAddress: 0x0020,
  Software: 0x8022,
  Fingerprint: 0x8028,
} as const;

export type StunClass = 'request' | 'indication' | 'success' | 'error';
const CLASS_BITS: Record<StunClass, number> = { request: 0x000, indication: 0x010, success: 0x100, error: 0x110 };

export interface StunAttribute {
  type: number;
  value: Buffer;
}

export interface StunMessage {
  method: number;
  class: StunClass;
  /** 12 bytes (RFC 5389 §6). */
  transactionId: Buffer;
  attributes: StunAttribute[];
}

export interface TransportAddress {
  address: string;
  port: number;
}

/** What the server answered: 200 for a success response (STUN has no code for it), else the ERROR-CODE. */
export interface TurnReply {
  code: number;
  reason: string;
  /** Allocate success: XOR-RELAYED-ADDRESS. */
  relayed?: TransportAddress;
  /** Allocate success: XOR-MAPPED-ADDRESS. */
  mapped?: TransportAddress;
  /** Allocate and Refresh success: LIFETIME, seconds. */
  lifetime?: number;
}

/** Data the server relayed from a peer: a Data indication names the peer, ChannelData its channel. */
export interface RelayedData {
  peer?: TransportAddress;
  channel?: number;
  data: Buffer;
}

export interface TurnCredentials {
  username: string;
  password: string;
}

/** RFC 5389 §6: the class bits C1 C0 sit at bits 8 and 4, the method's 12 bits around them. */
export function messageType(method: number, cls: StunClass): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | CLASS_BITS[cls];
}

/**
 * Encodes a message. With `key`, MESSAGE-INTEGRITY (RFC 5389 §15.4: HMAC-SHA1 over the message up to it, the
 * length field already counting it); with `fingerprint`, FINGERPRINT last (§15.5). Padding is zero bytes.
 */
export function encodeStun(message: StunMessage, options: { key?: Buffer; fingerprint?: boolean } = {}): Buffer {
  if (message.transactionId.length !== 12) throw new Error('a STUN transaction ID is 12 bytes');
  const parts: Buffer[] = [];
  for (const attr of message.attributes) parts.push(encodeAttribute(attr.type, attr.value));
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeUInt16BE(messageType(message.method, message.class), 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  message.transactionId.copy(header, 8);
  let body = Buffer.concat(parts);
  if (options.key !== undefined) {
    header.writeUInt16BE(body.length + 24, 2);
    const mac = createHmac('sha1', options.key).update(header).update(body).digest();
    body = Buffer.concat([body, encodeAttribute(StunAttr.MessageIntegrity, mac)]);
  }
  if (options.fingerprint === true) {
    header.writeUInt16BE(body.length + 8, 2);
    const crc = (crc32(Buffer.concat([header, body])) ^ FINGERPRINT_XOR) >>> 0;
    const value = Buffer.alloc(4);
    value.writeUInt32BE(crc, 0);
    body = Buffer.concat([body, encodeAttribute(StunAttr.Fingerprint, value)]);
  }
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}

function encodeAttribute(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

/** Decodes a STUN message (RFC 5389 §6: top two bits zero, the magic cookie, a length that fits); else undefined. */
export function decodeStun(buf: Buffer): StunMessage | undefined {
  if (buf.length < HEADER_LENGTH || (buf[0]! & 0xc0) !== 0 || buf.readUInt32BE(4) !== MAGIC_COOKIE) return undefined;
  const length = buf.readUInt16BE(2);
  if (length % 4 !== 0 || HEADER_LENGTH + length !== buf.length) return undefined;
  const type = buf.readUInt16BE(0);
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = (Object.keys(CLASS_BITS) as StunClass[]).find((c) => (type & 0x110) === CLASS_BITS[c])!;
  const attributes: StunAttribute[] = [];
  let offset = HEADER_LENGTH;
  while (offset + 4 <= buf.length) {
    const attrType = buf.readUInt16BE(offset);
    const attrLength = buf.readUInt16BE(offset + 2);
    if (offset + 4 + attrLength > buf.length) return undefined;
    attributes.push({ type: attrType, value: buf.subarray(offset + 4, offset + 4 + attrLength) });
    offset += 4 + Math.ceil(attrLength / 4) * 4;
  }
  return { method, class: cls, transactionId: Buffer.from(buf.subarray(8, 20)), attributes };
}

/** The first attribute of a type. */
export function attribute(message: StunMessage, type: number): Buffer | undefined {
  return message.attributes.find((a) => a.type === type)?.value;
}

/**
 * Checks MESSAGE-INTEGRITY of a received message (RFC 5389 §15.4): the HMAC over the bytes before it, with the
 * header's length rewritten to end at it (a FINGERPRINT after it is not covered). undefined: no MESSAGE-INTEGRITY.
 */
export function verifyIntegrity(buf: Buffer, key: Buffer): boolean | undefined {
  let offset = HEADER_LENGTH;
  while (offset + 4 <= buf.length) {
    const type = buf.readUInt16BE(offset);
    const length = buf.readUInt16BE(offset + 2);
    if (type === StunAttr.MessageIntegrity) {
      if (length !== 20 || offset + 24 > buf.length) return false;
      const header = Buffer.from(buf.subarray(0, HEADER_LENGTH));
      header.writeUInt16BE(offset + 24 - HEADER_LENGTH, 2);
      const mac = createHmac('sha1', key).update(header).update(buf.subarray(HEADER_LENGTH, offset)).digest();
      return mac.equals(buf.subarray(offset + 4, offset + 24));
    }
    offset += 4 + Math.ceil(length / 4) * 4;
  }
  return undefined;
}

/** Checks FINGERPRINT (RFC 5389 §15.5); undefined when there is none. */
export function verifyFingerprint(buf: Buffer): boolean | undefined {
  if (buf.length < HEADER_LENGTH + 8 || buf.readUInt16BE(buf.length - 8) !== StunAttr.Fingerprint) return undefined;
  return ((crc32(buf.subarray(0, buf.length - 8)) ^ FINGERPRINT_XOR) >>> 0) === buf.readUInt32BE(buf.length - 4);
}

/**
 * SASLprep (RFC 4013) as far as passwords need it here: characters mapped to nothing (RFC 3454 B.1) removed,
 * non-ASCII spaces (C.1.2) made spaces, then NFKC. No prohibited-character or bidi checks.
 */
export function saslprep(value: string): string {
  return value
    .replace(/[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g, '')
    .replace(/[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/g, ' ')
    .normalize('NFKC');
}

/** RFC 5389 §15.4: the long-term credential key, MD5(username ":" realm ":" SASLprep(password)). */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${saslprep(password)}`, 'utf8').digest();
}

/** XOR-MAPPED-ADDRESS / XOR-PEER-ADDRESS / XOR-RELAYED-ADDRESS value (RFC 5389 §15.2). */
export function encodeXorAddress(peer: TransportAddress, transactionId: Buffer): Buffer {
  const v4 = isIPv4(peer.address);
  if (!v4 && !isIPv6(peer.address)) throw new Error(`not an IP address: ${peer.address}`);
  const raw = v4 ? Buffer.from(peer.address.split('.').map(Number)) : ipv6Bytes(peer.address);
  const mask = Buffer.concat([cookieBytes(), transactionId]);
  const out = Buffer.alloc(4 + raw.length);
  out[1] = v4 ? 0x01 : 0x02;
  out.writeUInt16BE(peer.port ^ (MAGIC_COOKIE >>> 16), 2);
  for (let i = 0; i < raw.length; i++) out[4 + i] = raw[i]! ^ mask[i]!;
  return out;
}

export function decodeXorAddress(value: Buffer, transactionId: Buffer): TransportAddress {
  const family = value[1];
  const mask = Buffer.concat([cookieBytes(), transactionId]);
  const port = value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16);
  const size = family === 0x01 ? 4 : 16;
  const raw = Buffer.alloc(size);
  for (let i = 0; i < size; i++) raw[i] = value[4 + i]! ^ mask[i]!;
  // IPv6 in its canonical (compressed) form, as the URL parser writes it
  const address = family === 0x01 ? [...raw].join('.')
    : new URL(`http://[${Array.from({ length: 8 }, (_, i) => raw.readUInt16BE(i * 2).toString(16)).join(':')}]`).hostname.slice(1, -1);
  return { address, port };
}

function cookieBytes(): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(MAGIC_COOKIE, 0);
  return b;
}

function ipv6Bytes(address: string): Buffer {
  // a trailing dotted quad (::ffff:10.0.0.1) is the last two groups
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted) {
    const [a, b, c, d] = dotted[2]!.split('.').map(Number) as [number, number, number, number];
    address = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = address.includes('::') ? address.split('::') as [string, string] : [address, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (ISO 3309, the one FINGERPRINT uses). */
export function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function errorOf(message: StunMessage): { code: number; reason: string } {
  const value = attribute(message, StunAttr.ErrorCode);
  if (value === undefined || value.length < 4) return { code: 0, reason: 'error response without ERROR-CODE' };
  return { code: (value[2]! & 0x07) * 100 + value[3]!, reason: value.subarray(4).toString('utf8') };
}

/**
 * One client 5-tuple (one UDP socket, so at most one allocation: RFC 5766 §2.2). Requests are retransmitted
 * (RFC 5389 §7.2.1, shortened for loopback) until answered or `timeoutMs`.
 */
export class TurnClient {
  private readonly socket: Socket;
  private readonly pending = new Map<string, (buf: Buffer) => void>();
  private auth: { username: string; realm: string; nonce: Buffer; key: Buffer } | undefined;
  private credentials: TurnCredentials | undefined;
  private readonly received: RelayedData[] = [];
  private dataWaiter: (() => void) | undefined;
  /** 438 Stale Nonce answers retried with the new nonce (RFC 5389 §10.2.3). */
  staleNonces = 0;

  private constructor(private readonly server: TransportAddress, socket: Socket, private readonly timeoutMs: number) {
    this.socket = socket;
    socket.on('message', (buf) => {
      if ((buf[0]! & 0xc0) === 0x40 && buf.length >= 4) { // ChannelData (RFC 5766 §11)
        this.deliver({ channel: buf.readUInt16BE(0), data: Buffer.from(buf.subarray(4, 4 + buf.readUInt16BE(2))) });
        return;
      }
      const message = decodeStun(buf);
      if (message === undefined) return;
      if (message.class === 'indication' && message.method === StunMethod.Data) {
        const peer = attribute(message, StunAttr.XorPeerAddress);
        const data = attribute(message, StunAttr.Data);
        if (peer !== undefined && data !== undefined) this.deliver({ peer: decodeXorAddress(peer, message.transactionId), data: Buffer.from(data) });
        return;
      }
      this.pending.get(message.transactionId.toString('hex'))?.(buf);
    });
  }

  /** This client's own address (the 5-tuple's client side). */
  get local(): TransportAddress {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  static async open(server: TransportAddress, options: { timeoutMs?: number } = {}): Promise<TurnClient> {
    const socket = createSocket(isIPv6(server.address) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, isIPv6(server.address) ? '::1' : '127.0.0.1', () => resolve());
    });
    return new TurnClient(server, socket, options.timeoutMs ?? 3000);
  }

  /** A Binding request without credentials (RFC 5389 §7): the answer's `mapped` is this client's address as the server saw it. */
  async binding(): Promise<TurnReply> {
    return this.reply(await this.request(StunMethod.Binding, [], false));
  }

  /**
   * Allocate a UDP relay (RFC 5766 §6.1): first without credentials, expecting 401 with REALM and NONCE
   * (RFC 5389 §10.2.1), then with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY; a 438 (stale nonce) is
   * retried once with the new nonce (§10.2.4). `family: 'ipv6'` asks for an IPv6 relayed address
   * (REQUESTED-ADDRESS-FAMILY, RFC 6156 §4.1.1).
   */
  async allocate(credentials: TurnCredentials, options: { family?: 'ipv4' | 'ipv6' } = {}): Promise<TurnReply> {
    const attrs: StunAttribute[] = [{ type: StunAttr.RequestedTransport, value: Buffer.from([17, 0, 0, 0]) }]; // UDP (RFC 5766 §14.7)
    if (options.family === 'ipv6') attrs.push({ type: StunAttr.RequestedAddressFamily, value: Buffer.from([0x02, 0, 0, 0]) });
    const first = await this.request(StunMethod.Allocate, attrs, false);
    if (first.class === 'success') return this.reply(first);
    const challenge = errorOf(first);
    if (challenge.code !== 401) return challenge;
    this.credentials = credentials;
    this.learnNonce(first);
    return this.reply(await this.signed(StunMethod.Allocate, attrs));
  }

  /** CreatePermission for a peer's IP (RFC 5766 §9.1; the port is ignored), on the allocation made by allocate(). */
  async createPermission(peer: string): Promise<TurnReply> {
    if (this.auth === undefined) throw new Error('createPermission before allocate');
    const value = (tid: Buffer): Buffer => encodeXorAddress({ address: peer, port: 0 }, tid);
    return this.reply(await this.signed(StunMethod.CreatePermission, [{ type: StunAttr.XorPeerAddress, value }]));
  }

  /** ChannelBind (RFC 5766 §11.2): `channel` (0x4000-0x7FFF) carries ChannelData to and from `peer`. */
  async channelBind(channel: number, peer: TransportAddress): Promise<TurnReply> {
    const number = Buffer.alloc(4);
    number.writeUInt16BE(channel, 0);
    const value = (tid: Buffer): Buffer => encodeXorAddress(peer, tid);
    return this.reply(await this.signed(StunMethod.ChannelBind, [{ type: StunAttr.ChannelNumber, value: number }, { type: StunAttr.XorPeerAddress, value }]));
  }

  /** ChannelData (RFC 5766 §11.4) on a bound channel, unpadded. */
  sendChannel(channel: number, data: Buffer): void {
    const header = Buffer.alloc(4);
    header.writeUInt16BE(channel, 0);
    header.writeUInt16BE(data.length, 2);
    this.socket.send(Buffer.concat([header, data]), this.server.port, this.server.address);
  }

  /** The next data relayed from a peer (Data indication or ChannelData), or a rejection after `timeoutMs`. */
  async nextData(timeoutMs = 2000): Promise<RelayedData> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no data relayed from a peer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.dataWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.received.shift()!;
  }

  /** Data relayed so far and not yet taken by nextData(). */
  drain(): RelayedData[] {
    return this.received.splice(0);
  }

  /** Sends bytes as they are to the server (garbage, hand-made messages). */
  sendRaw(packet: Buffer): void {
    this.socket.send(packet, this.server.port, this.server.address);
  }

  /**
   * A Send indication (RFC 5766 §10.1): the server relays `data` to the peer from the relayed address if a
   * permission for the peer's IP exists, else drops it silently (indications get no answer).
   */
  send(peer: TransportAddress, data: Buffer): void {
    const transactionId = randomBytes(12);
    const packet = encodeStun({
      method: StunMethod.Send,
      class: 'indication',
      transactionId,
      attributes: [{ type: StunAttr.XorPeerAddress, value: encodeXorAddress(peer, transactionId) }, { type: StunAttr.Data, value: data }],
    }, { fingerprint: true });
    this.socket.send(packet, this.server.port, this.server.address);
  }

  /** Refresh (RFC 5766 §7) asking for `lifetimeS` seconds; the answer's `lifetime` is what the server granted. */
  async refresh(lifetimeS: number): Promise<TurnReply> {
    const value = Buffer.alloc(4);
    value.writeUInt32BE(lifetimeS, 0);
    return this.reply(await this.signed(StunMethod.Refresh, [{ type: StunAttr.Lifetime, value }]));
  }

  /** Refresh with LIFETIME 0 (RFC 5766 §7): the allocation is freed at once instead of when it times out. */
  release(): Promise<TurnReply> {
    return this.refresh(0);
  }

  close(): void {
    this.socket.close();
  }

  private deliver(data: RelayedData): void {
    this.received.push(data);
    this.dataWaiter?.();
    this.dataWaiter = undefined;
  }

  /** A request with the long-term credentials; a 438 (stale nonce) is retried once with the new nonce (RFC 5389 §10.2.3). */
  private async signed(method: number, attrs: Array<{ type: number; value: Buffer | ((tid: Buffer) => Buffer) }>): Promise<StunMessage> {
    const answer = await this.request(method, attrs, true);
    if (answer.class !== 'error' || errorOf(answer).code !== 438) return answer;
    this.staleNonces++;
    this.learnNonce(answer);
    return this.request(method, attrs, true);
  }

  private learnNonce(message: StunMessage): void {
    const credentials = this.credentials!;
    const realm = attribute(message, StunAttr.Realm);
    const nonce = attribute(message, StunAttr.Nonce);
    if (realm === undefined || nonce === undefined) throw new Error('401 without REALM and NONCE (RFC 5389 §10.2.1)');
    const realmText = realm.toString('utf8');
    this.auth = { username: credentials.username, realm: realmText, nonce: Buffer.from(nonce), key: longTermKey(credentials.username, realmText, credentials.password) };
  }

  private reply(message: StunMessage): TurnReply {
    if (message.class !== 'success') return errorOf(message);
    const relayed = attribute(message, StunAttr.XorRelayedAddress);
    const mapped = attribute(message, StunAttr.XorMappedAddress);
    const lifetime = attribute(message, StunAttr.Lifetime);
    return {
      code: 200, reason: 'success',
      ...(relayed ? { relayed: decodeXorAddress(relayed, message.transactionId) } : {}),
      ...(mapped ? { mapped: decodeXorAddress(mapped, message.transactionId) } : {}),
      ...(lifetime?.length === 4 ? { lifetime: lifetime.readUInt32BE(0) } : {}),
    };
  }

  private async request(method: number, attrs: Array<{ type: number; value: Buffer | ((tid: Buffer) => Buffer) }>, signed: boolean): Promise<StunMessage> {
    const transactionId = randomBytes(12);
    const attributes: StunAttribute[] = attrs.map((a) => ({ type: a.type, value: typeof a.value === 'function' ? a.value(transactionId) : a.value }));
    const auth = this.auth;
    if (signed) {
      if (auth === undefined) throw new Error('no credentials yet');
      attributes.push(
        { type: StunAttr.Username, value: Buffer.from(auth.username, 'utf8') },
        { type: StunAttr.Realm, value: Buffer.from(auth.realm, 'utf8') },
        { type: StunAttr.Nonce, value: auth.nonce },
      );
    }
    const packet = encodeStun({ method, class: 'request', transactionId, attributes }, { ...(signed ? { key: auth!.key } : {}), fingerprint: true });
    const id = transactionId.toString('hex');
    const buf = await new Promise<Buffer>((resolve, reject) => {
      let interval = 100;
      let timer: NodeJS.Timeout;
      const send = (): void => {
        this.socket.send(packet, this.server.port, this.server.address);
        timer = setTimeout(send, interval);
        interval = Math.min(interval * 2, 800);
      };
      const deadline = setTimeout(() => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error(`no answer from the TURN server ${this.server.address}:${this.server.port} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, (answer) => {
        clearTimeout(timer);
        clearTimeout(deadline);
        this.pending.delete(id);
        resolve(answer);
      });
      send();
    });
    const message = decodeStun(buf)!;
    if (message.method !== method) throw new Error(`answer for method ${message.method}, asked ${method}`);
    if (verifyFingerprint(buf) === false) throw new Error('answer with a wrong FINGERPRINT');
    // RFC 5389 §10.2.3: a response carrying MESSAGE-INTEGRITY must verify with the same key
    if (signed && verifyIntegrity(buf, auth!.key) === false) throw new Error('answer with a wrong MESSAGE-INTEGRITY');
    return message;
  }
}
