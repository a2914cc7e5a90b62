/**
 * Chat files encrypted at rest (the XEP-0363 "slot" model: a file is uploaded first, and the message
 * carries its URL). Each file has its own AES-256-GCM key, wrapped by the master key (envelope.ts) and kept
 * in the file's row (FileRecord.wrappedKey); the blob store (local-blobs.ts) holds only ciphertext.
 *
 * A file is encrypted in chunks of 64 KiB of plaintext, each its own AES-256-GCM message, so that a Range
 * request (a voice note or a video seeking) decrypts only the chunks it touches, and still nothing
 * unauthenticated is ever returned (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár,
 * "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015). Blob layout:
 *
 *   offset              size        field
 *   0                   1           version, 0x01
 *   1                   8           nonce prefix (random per file)
 *   9 + i·(65536+16)    ≤ 65536     chunk i: the plaintext bytes i·65536 … under AES-256-GCM
 *                       16          GCM tag of chunk i
 *
 * Every chunk but the last holds exactly 65536 plaintext bytes; the last holds 1…65536 (an empty file: one
 * empty chunk). Chunk i's nonce is the prefix ‖ i (32 bits, big-endian); its additional data is the 9 header
 * bytes ‖ i (4 bytes) ‖ the last-chunk flag (1 byte) ‖ UTF-8(file id). So a flipped byte fails that chunk's
 * tag, chunks swapped or repeated fail on their index, a file cut at a chunk boundary fails on the missing
 * last flag, a blob moved under another file's row fails on the id, and a changed size in the row changes
 * which chunk is read as the last, which fails too. The plaintext size comes from the row (FileRecord.size),
 * which fixes where every chunk starts.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Envelope, EnvelopeError, KEY_BYTES, TAG_BYTES } from './envelope.js';
import { type BlobStore, locationOf } from './local-blobs.js';

/** Plaintext bytes per chunk. */
export const CHUNK_BYTES = 65_536;
const FILE_VERSION = 1;
const PREFIX_BYTES = 8;
/** Version and nonce prefix. */
export const FILE_HEADER_BYTES = 1 + PREFIX_BYTES;
const CHUNK_RECORD_BYTES = CHUNK_BYTES + TAG_BYTES;

export type FileStoreErrorCode =
  | 'MESSAGING_ERR_TOO_LARGE' // the upload is over the size limit (nothing was kept)
  | 'MESSAGING_ERR_RANGE'; // a read outside the file

export class FileStoreError extends Error {
  readonly code: FileStoreErrorCode;

  constructor(code: FileStoreErrorCode, message: string) {
    super(message);
    this.name = 'FileStoreError';
    this.code = code;
  }
}

/** What reading a file needs of its row (FileRecord has it). */
export interface StoredFile {
  id: string;
  location: string;
  /** Plaintext bytes. */
  size: number;
  wrappedKey: Buffer;
}

/** The ciphertext size of a file of `size` plaintext bytes. */
export function sealedSize(size: number): number {
  return FILE_HEADER_BYTES + chunkCount(size) * TAG_BYTES + size;
}

function chunkCount(size: number): number {
  return size === 0 ? 1 : Math.ceil(size / CHUNK_BYTES);
}

function chunkNonce(prefix: Buffer, index: number): Buffer {
  const nonce = Buffer.alloc(PREFIX_BYTES + 4);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, PREFIX_BYTES);
  return nonce;
}

function chunkAad(header: Buffer, index: number, last: boolean, id: string): Buffer {
  const fixed = Buffer.alloc(5);
  fixed.writeUInt32BE(index, 0);
  fixed[4] = last ? 1 : 0;
  return Buffer.concat([header, fixed, Buffer.from(id, 'utf8')]);
}

const tampered = (id: string, why: string) => new EnvelopeError('MESSAGING_ERR_TAMPERED', `file ${id}: ${why}: the stored bytes are not the ones written (changed, truncated or moved)`);

export class EncryptedFiles {
  constructor(private readonly blobs: BlobStore, private readonly envelope: Envelope) {}

  /**
   * Encrypts and stores the plaintext as file `id` (22 base64url characters). More than `maxSize` bytes:
   * FileStoreError MESSAGING_ERR_TOO_LARGE, and nothing is kept. The source is not destroyed when the
   * limit stops the read (an HTTP request can still be answered 413).
   */
  async put(id: string, plaintext: AsyncIterable<Buffer | Uint8Array> | Readable, maxSize: number): Promise<{ location: string; size: number; wrappedKey: Buffer }> {
    const location = locationOf(id);
    const { key, wrapped } = this.envelope.newKey();
    const header = Buffer.concat([Buffer.from([FILE_VERSION]), randomBytes(PREFIX_BYTES)]);
    let size = 0;
    const source: AsyncIterable<Buffer | Uint8Array> = plaintext instanceof Readable ? plaintext.iterator({ destroyOnReturn: false }) : plaintext;
    const sealChunk = (index: number, last: boolean, plain: Buffer): Buffer => {
      const cipher = createCipheriv('aes-256-gcm', key, chunkNonce(header.subarray(1), index));
      cipher.setAAD(chunkAad(header, index, last, id));
      return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    };
    async function* encrypt(): AsyncGenerator<Buffer> {
      yield header;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let index = 0;
      for await (const piece of source) {
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
        size += bytes.length;
        if (size > maxSize) throw new FileStoreError('MESSAGING_ERR_TOO_LARGE', `the file is larger than ${maxSize} bytes`);
        pending.push(bytes);
        pendingBytes += bytes.length;
        // Strictly more than a chunk: the last chunk (even a full one) is sealed below with its flag.
        while (pendingBytes > CHUNK_BYTES) {
          const all = Buffer.concat(pending);
          yield sealChunk(index++, false, all.subarray(0, CHUNK_BYTES));
          pending = [all.subarray(CHUNK_BYTES)];
          pendingBytes = all.length - CHUNK_BYTES;
        }
      }
      yield sealChunk(index, true, Buffer.concat(pending));
    }
    try {
      await this.blobs.write(location, encrypt());
    } finally {
      key.fill(0);
    }
    return { location, size, wrappedKey: wrapped };
  }

  /**
   * The plaintext of bytes `range.start`…`range.end` (inclusive; default the whole file). Only the chunks
   * the range touches are read and decrypted; each is authenticated before any of it is passed on, and a
   * mismatch errors the stream with EnvelopeError MESSAGING_ERR_TAMPERED. A range outside the file throws
   * FileStoreError MESSAGING_ERR_RANGE at once.
   */
  read(file: StoredFile, range?: { start: number; end: number }): Readable {
    const start = range?.start ?? 0;
    const end = range?.end ?? file.size - 1;
    const valid = Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && (file.size === 0 ? range === undefined : start <= end && end < file.size);
    if (!valid) throw new FileStoreError('MESSAGING_ERR_RANGE', `bytes ${start}-${end} are outside the file (${file.size} bytes)`);
    return Readable.from(this.decrypt(file, start, end), { objectMode: false });
  }

  /** Deletes the file's bytes (its row is the caller's). */
  async remove(location: string): Promise<void> {
    await this.blobs.remove(location);
  }

  private async *decrypt(file: StoredFile, start: number, end: number): AsyncGenerator<Buffer> {
    const key = this.envelope.unwrap(file.wrappedKey);
    if (key.length !== KEY_BYTES) throw tampered(file.id, 'the wrapped key');
    try {
      const header = await collect(this.blobs.read(file.location, 0, FILE_HEADER_BYTES - 1));
      if (header.length !== FILE_HEADER_BYTES || header[0] !== FILE_VERSION) throw tampered(file.id, 'the header');
      const chunks = chunkCount(file.size);
      const first = Math.floor(start / CHUNK_BYTES);
      const last = file.size === 0 ? 0 : Math.floor(end / CHUNK_BYTES);
      const plainOf = (i: number) => (i < chunks - 1 ? CHUNK_BYTES : file.size - (chunks - 1) * CHUNK_BYTES);
      const from = FILE_HEADER_BYTES + first * CHUNK_RECORD_BYTES;
      const to = FILE_HEADER_BYTES + last * CHUNK_RECORD_BYTES + plainOf(last) + TAG_BYTES - 1;
      const source = this.blobs.read(file.location, from, to);
      let buffered: Buffer[] = [];
      let bufferedBytes = 0;
      let index = first;
      const open = (record: Buffer): Buffer => {
        const isLast = index === chunks - 1;
        const decipher = createDecipheriv('aes-256-gcm', key, chunkNonce(header.subarray(1), index));
        decipher.setAAD(chunkAad(header, index, isLast, file.id));
        decipher.setAuthTag(record.subarray(record.length - TAG_BYTES));
        let plain: Buffer;
        try {
          // Held back until final() has checked the tag.
          plain = Buffer.concat([decipher.update(record.subarray(0, record.length - TAG_BYTES)), decipher.final()]);
        } catch {
          throw tampered(file.id, `chunk ${index}`);
        }
        const chunkStart = index * CHUNK_BYTES;
        const sliceFrom = Math.max(0, start - chunkStart);
        const sliceTo = file.size === 0 ? 0 : Math.min(plain.length, end - chunkStart + 1);
        return plain.subarray(sliceFrom, sliceTo);
      };
      try {
        for await (const piece of source as AsyncIterable<Buffer>) {
          buffered.push(piece);
          bufferedBytes += piece.length;
          while (index <= last && bufferedBytes >= plainOf(index) + TAG_BYTES) {
            const need = plainOf(index) + TAG_BYTES;
            const all = buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered);
            const out = open(all.subarray(0, need));
            index++;
            buffered = [all.subarray(need)];
            bufferedBytes = all.length - need;
            if (out.length > 0) yield out;
          }
        }
      } finally {
        source.destroy();
      }
      if (index <= last) throw tampered(file.id, `chunk ${index} is cut short`);
    } finally {
      key.fill(0);
    }
  }
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}
