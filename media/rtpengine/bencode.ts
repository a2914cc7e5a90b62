/**
 * Bencode (the BitTorrent encoding; rtpengine's ng protocol speaks it natively): integers `i42e`, byte
 * strings `4:spam`, lists `l…e`, dictionaries `d…e`. We write dictionaries with their keys sorted by raw
 * bytes as the format requires; we accept them unsorted because rtpengine does not sort its replies (its
 * docs say so). Anything else that is not well-formed bencode throws a `BencodeError`.
 */
import type { BencodeDecodeOptions, BencodeDict, BencodeInput, BencodeValue } from './types.js';

export class BencodeError extends Error {
  readonly code = 'BENCODE_ERR_MALFORMED';
  /** Byte offset in the input where decoding stopped. */
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = 'BencodeError';
    this.offset = offset;
  }
}

const I = 0x69; // 'i'
const L = 0x6c; // 'l'
const D = 0x64; // 'd'
const E = 0x65; // 'e'
const COLON = 0x3a;
const ZERO = 0x30;
const NINE = 0x39;
const MAX_ENCODE_DEPTH = 256;

// ---- encode ----------------------------------------------------------------------------------------

/**
 * Encodes a value. Numbers must be safe integers, dictionary keys are UTF-8 strings; `undefined`
 * dictionary entries are skipped. Anything else (booleans, null, floats, cycles) is a `TypeError`.
 */
export function encode(value: BencodeInput): Buffer {
  const chunks: Buffer[] = [];
  encodeInto(value, chunks, new Set(), 0);
  return Buffer.concat(chunks);
}

function encodeInto(value: BencodeInput, out: Buffer[], seen: Set<object>, depth: number): void {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    out.push(Buffer.from(`${bytes.length}:`, 'latin1'), bytes);
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`bencode: ${value} is not a safe integer`);
    out.push(Buffer.from(`i${value}e`, 'latin1'));
    return;
  }
  if (typeof value === 'bigint') {
    out.push(Buffer.from(`i${value.toString()}e`, 'latin1'));
    return;
  }
  if (value instanceof Uint8Array) {
    out.push(Buffer.from(`${value.length}:`, 'latin1'), Buffer.from(value.buffer, value.byteOffset, value.length));
    return;
  }
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`bencode: cannot encode ${value === null ? 'null' : typeof value}`);
  }
  if (seen.has(value)) throw new TypeError('bencode: cannot encode a cyclic structure');
  if (depth >= MAX_ENCODE_DEPTH) throw new TypeError(`bencode: nesting deeper than ${MAX_ENCODE_DEPTH}`);
  seen.add(value);
  if (Array.isArray(value)) {
    out.push(Buffer.of(L));
    for (const item of value as readonly BencodeInput[]) {
      if (item === undefined) throw new TypeError('bencode: cannot encode undefined in a list');
      encodeInto(item, out, seen, depth + 1);
    }
  } else {
    const dict = value as { readonly [key: string]: BencodeInput | undefined };
    const entries: Array<[Buffer, BencodeInput]> = [];
    for (const key of Object.keys(dict)) {
      const v = dict[key];
      if (v !== undefined) entries.push([Buffer.from(key, 'utf8'), v]);
    }
    entries.sort((a, b) => Buffer.compare(a[0], b[0]));
    out.push(Buffer.of(D));
    for (const [key, v] of entries) {
      out.push(Buffer.from(`${key.length}:`, 'latin1'), key);
      encodeInto(v, out, seen, depth + 1);
    }
  }
  out.push(Buffer.of(E));
  seen.delete(value);
}

// ---- decode ----------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes exactly one value that spans the whole input; throws `BencodeError` on malformed input. */
export function decode(input: Uint8Array | string, options: BencodeDecodeOptions = {}): BencodeValue {
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.length);
  const decoder = new Decoder(buf, options.strings ?? 'auto', options.maxDepth ?? 64);
  const value = decoder.value(0);
  if (decoder.pos !== buf.length) throw new BencodeError('trailing data after the value', decoder.pos);
  return value;
}

class Decoder {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly strings: 'auto' | 'buffer',
    private readonly maxDepth: number,
  ) {}

  value(depth: number): BencodeValue {
    const c = this.peek();
    if (c === I) return this.integer();
    if (c >= ZERO && c <= NINE) return this.byteString(this.strings);
    if (c === L || c === D) {
      if (depth >= this.maxDepth) throw new BencodeError(`nesting deeper than ${this.maxDepth}`, this.pos);
      return c === L ? this.list(depth) : this.dict(depth);
    }
    throw new BencodeError(`unexpected ${describe(c)}`, this.pos);
  }

  private peek(): number {
    if (this.pos >= this.buf.length) throw new BencodeError('unexpected end of input', this.pos);
    return this.buf[this.pos]!;
  }

  /** `i` [-] digits `e`, no leading zeros, no `-0`. */
  private integer(): number | bigint {
    const start = this.pos;
    this.pos++; // 'i'
    const end = this.buf.indexOf(E, this.pos);
    if (end < 0) throw new BencodeError('unterminated integer', start);
    const text = this.buf.toString('latin1', this.pos, end);
    if (!/^(?:0|-?[1-9][0-9]*)$/.test(text)) throw new BencodeError(`malformed integer "${text.slice(0, 32)}"`, start);
    this.pos = end + 1;
    if (text.length <= 15) return Number(text);
    const big = BigInt(text);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }

  /** length `:` bytes; the length has no leading zeros. */
  private byteString(mode: 'auto' | 'buffer' | 'key'): string | Buffer {
    const start = this.pos;
    const colon = this.buf.indexOf(COLON, this.pos);
    if (colon < 0 || colon - start > 10) throw new BencodeError('malformed string length', start);
    const text = this.buf.toString('latin1', this.pos, colon);
    if (!/^(?:0|[1-9][0-9]*)$/.test(text)) throw new BencodeError(`malformed string length "${text}"`, start);
    const length = Number(text);
    const from = colon + 1;
    if (from + length > this.buf.length) throw new BencodeError(`string of ${length} bytes runs past the end`, start);
    this.pos = from + length;
    const bytes = this.buf.subarray(from, from + length);
    if (mode === 'buffer') return Buffer.from(bytes);
    try {
      return utf8.decode(bytes);
    } catch {
      if (mode === 'key') throw new BencodeError('dictionary key is not UTF-8', start);
      return Buffer.from(bytes);
    }
  }

  private list(depth: number): BencodeValue[] {
    this.pos++; // 'l'
    const out: BencodeValue[] = [];
    while (this.peek() !== E) out.push(this.value(depth + 1));
    this.pos++;
    return out;
  }

  private dict(depth: number): BencodeDict {
    this.pos++; // 'd'
    const out: BencodeDict = {};
    while (this.peek() !== E) {
      const at = this.pos;
      const c = this.peek();
      if (c < ZERO || c > NINE) throw new BencodeError(`dictionary key must be a string, found ${describe(c)}`, at);
      const key = this.byteString('key') as string;
      if (Object.prototype.hasOwnProperty.call(out, key)) throw new BencodeError(`duplicate dictionary key "${key}"`, at);
      // defineProperty, so a key named __proto__ is data and never a prototype
      Object.defineProperty(out, key, { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
    }
    this.pos++;
    return out;
  }
}

function describe(byte: number): string {
  return byte >= 0x21 && byte <= 0x7e ? `"${String.fromCharCode(byte)}"` : `byte 0x${byte.toString(16).padStart(2, '0')}`;
}
