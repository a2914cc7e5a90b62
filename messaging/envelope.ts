/**
 * The encryption envelope for chat data at rest: message bodies (`chat_messages.body`) and the keys of chat
 * files. A copy of the database (or of the files folder) without the master key reveals no message text and
 * no file content; a changed byte, a truncated value or a value moved to another row is detected on read.
 *
 * Every sealed object has its own random 256-bit data key (AES-256-GCM, NIST SP 800-38D), and that key is
 * stored wrapped (AES-256-GCM again) by the master key. Rotating the master key later means re-wrapping the
 * small wrapped keys, never re-encrypting the data; the master key id in every value says which key wrapped
 * it, so a rotation can keep several master keys and pick the right one.
 *
 * Wrapped key (65 bytes, `newKey().wrapped`, FileRecord.wrappedKey, and the head of a sealed value):
 *
 *   offset  size  field
 *   0       1     version, 0x01
 *   1       4     master key id: the first 4 bytes of SHA-256(master key) (`keyId` is their hex)
 *   5       12    nonce of the wrap (random)
 *   17      32    the data key, AES-256-GCM under the master key, additional data = bytes 0..4
 *   49      16    GCM tag of the wrap
 *
 * Sealed value (`seal()`: 65 + 12 + n + 16 bytes):
 *
 *   offset  size  field
 *   0       65    wrapped data key, as above
 *   65      12    nonce of the payload (random)
 *   77      n     the payload, AES-256-GCM under the data key, additional data = bytes 0..64 ‖ UTF-8(aad)
 *   77+n    16    GCM tag of the payload
 *
 * `aad` is the object's id (a message id): a sealed body copied into another row does not open there.
 * Random 96-bit nonces are safe here: a data key seals exactly one payload, and the master key wraps one
 * data key per object, far below the 2^32 wraps SP 800-38D §8.3 allows per key.
 *
 * The master key is `storage.masterKey` (64 hex characters or base64 of 32 bytes), else the file
 * dataDir/storage/master.key, created on the first start (32 random bytes as 64 hex characters, file 0600,
 * folder 0700) and read on every later one. Only its id is ever logged.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { categoryLogger, type Logger } from '../src/log/index.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, logTightened, tightenModes } from '../src/transport/file-modes.js';

/** Where a generated master key is kept under dataDir. */
export const MASTER_KEY_FILE = join('storage', 'master.key');

export const ENVELOPE_VERSION = 1;
export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
const KEY_ID_BYTES = 4;
const HEADER_BYTES = 1 + KEY_ID_BYTES;
/** Length of a wrapped data key. */
export const WRAPPED_KEY_BYTES = HEADER_BYTES + NONCE_BYTES + KEY_BYTES + TAG_BYTES;
/** What seal() adds to the payload. */
export const SEAL_OVERHEAD = WRAPPED_KEY_BYTES + NONCE_BYTES + TAG_BYTES;

export type EnvelopeErrorCode =
  | 'MESSAGING_ERR_TAMPERED' // a sealed value or wrapped key does not authenticate (changed, truncated, another key, another object)
  | 'MESSAGING_ERR_MASTER_KEY'; // the master key (configured or its file) is not 32 bytes in a known form

/** Never carries key material or plaintext. */
export class EnvelopeError extends Error {
  readonly code: EnvelopeErrorCode;

  constructor(code: EnvelopeErrorCode, message: string) {
    super(message);
    this.name = 'EnvelopeError';
    this.code = code;
  }
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

/** 64 hex characters or base64 of 32 bytes → the key; undefined for anything else. */
function decodeKey(text: string): Buffer | undefined {
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEY.test(text)) {
    const key = Buffer.from(text, 'base64');
    return key.length === KEY_BYTES ? key : undefined;
  }
  return undefined;
}

const tampered = (what: string) => new EnvelopeError('MESSAGING_ERR_TAMPERED', `${what} does not authenticate: changed, truncated, sealed for another object or by another master key`);

export class Envelope {
  /** Hex of the first 4 bytes of SHA-256(master key): names the key in logs and in every sealed value. */
  readonly keyId: string;
  private readonly master: Buffer;
  private readonly header: Buffer;

  /** `master`: the 32-byte master key (Envelope.load finds it; tests may pass one). */
  constructor(master: Buffer) {
    if (master.length !== KEY_BYTES) throw new EnvelopeError('MESSAGING_ERR_MASTER_KEY', `the master key must be ${KEY_BYTES} bytes`);
    this.master = Buffer.from(master);
    const id = createHash('sha256').update(this.master).digest().subarray(0, KEY_ID_BYTES);
    this.keyId = id.toString('hex');
    this.header = Buffer.concat([Buffer.from([ENVELOPE_VERSION]), id]);
  }

  /**
   * The configured key, else dataDir/storage/master.key (created once). The workers of a node start
   * together and must share one key: each writes a candidate file and links it to the final name; all but
   * the first get EEXIST and read the winner's, which a link makes complete or absent, never half-written.
   */
  static load(options: { masterKey?: string | undefined; dataDir: string; logger: Logger }): Envelope {
    const log = categoryLogger(options.logger, 'messaging');
    if (options.masterKey !== undefined) {
      const key = decodeKey(options.masterKey.trim());
      if (key === undefined) throw new EnvelopeError('MESSAGING_ERR_MASTER_KEY', 'configuration key storage.masterKey: must be 32 bytes as 64 hex characters or base64 (44 characters)');
      const envelope = new Envelope(key);
      log.info({ keyId: envelope.keyId, source: 'storage.masterKey' }, 'chat storage master key loaded');
      return envelope;
    }
    const dir = join(options.dataDir, 'storage');
    const path = join(options.dataDir, MASTER_KEY_FILE);
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const candidate = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
    const generated = randomBytes(KEY_BYTES);
    writeFileSync(candidate, generated.toString('hex') + '\n', { flag: 'wx', mode: PRIVATE_FILE_MODE });
    try {
      linkSync(candidate, path);
      const envelope = new Envelope(generated);
      log.warn({ keyId: envelope.keyId, path }, 'chat storage master key generated: back it up apart from the database (without it every message and file is lost)');
      return envelope;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      logTightened(log, 'the chat storage master key', tightenModes([{ path: dir, mode: PRIVATE_DIR_MODE }, { path, mode: PRIVATE_FILE_MODE }]));
      const envelope = new Envelope(readKeyFile(path));
      log.info({ keyId: envelope.keyId, path }, 'chat storage master key loaded');
      return envelope;
    } finally {
      unlinkSync(candidate);
    }
  }

  /** Seals `plain` under a fresh data key; `aad` (the object's id) must be given again to open it. */
  seal(plain: Buffer, aad: string): Buffer {
    const { key, wrapped } = this.newKey();
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.concat([wrapped, Buffer.from(aad, 'utf8')]));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    key.fill(0);
    return Buffer.concat([wrapped, nonce, body, cipher.getAuthTag()]);
  }

  /** The plaintext of a seal() with the same `aad`; EnvelopeError MESSAGING_ERR_TAMPERED on any mismatch. */
  open(sealed: Buffer, aad: string): Buffer {
    if (sealed.length < SEAL_OVERHEAD) throw tampered('the sealed value');
    const wrapped = sealed.subarray(0, WRAPPED_KEY_BYTES);
    const key = this.unwrap(wrapped);
    const nonce = sealed.subarray(WRAPPED_KEY_BYTES, WRAPPED_KEY_BYTES + NONCE_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(Buffer.concat([wrapped, Buffer.from(aad, 'utf8')]));
      decipher.setAuthTag(tag);
      // update() output is unauthenticated until final() succeeds: nothing of it leaves before that.
      return Buffer.concat([decipher.update(sealed.subarray(WRAPPED_KEY_BYTES + NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw tampered('the sealed value');
    } finally {
      key.fill(0);
    }
  }

  /** A fresh data key for an object encrypted elsewhere (a chat file), and the key wrapped for storage. */
  newKey(): { key: Buffer; wrapped: Buffer } {
    const key = randomBytes(KEY_BYTES);
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.master, nonce);
    cipher.setAAD(this.header);
    const body = Buffer.concat([cipher.update(key), cipher.final()]);
    return { key, wrapped: Buffer.concat([this.header, nonce, body, cipher.getAuthTag()]) };
  }

  /** The data key of a newKey().wrapped; EnvelopeError MESSAGING_ERR_TAMPERED when it is not one of ours. */
  unwrap(wrapped: Buffer): Buffer {
    if (wrapped.length !== WRAPPED_KEY_BYTES || !wrapped.subarray(0, HEADER_BYTES).equals(this.header)) {
      // Another version or another master key's id: a future rotation looks the key up by this id.
      throw tampered('the wrapped key');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.master, wrapped.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES));
      decipher.setAAD(this.header);
      decipher.setAuthTag(wrapped.subarray(WRAPPED_KEY_BYTES - TAG_BYTES));
      return Buffer.concat([decipher.update(wrapped.subarray(HEADER_BYTES + NONCE_BYTES, WRAPPED_KEY_BYTES - TAG_BYTES)), decipher.final()]);
    } catch {
      throw tampered('the wrapped key');
    }
  }
}

/** The key file: one line, 64 hex characters (or base64); anything else stops the start, naming the file. */
function readKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new EnvelopeError('MESSAGING_ERR_MASTER_KEY', `cannot read the chat storage master key ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const key = decodeKey(text.trim());
  if (key === undefined) {
    throw new EnvelopeError('MESSAGING_ERR_MASTER_KEY', `${path} does not hold a master key (32 bytes as 64 hex characters); restore the right file or set storage.masterKey — deleting it loses every stored message and file`);
  }
  return key;
}
