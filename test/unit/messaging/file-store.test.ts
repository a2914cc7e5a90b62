/**
 * Chat files at rest (messaging/file-store.ts over messaging/local-blobs.ts on a temp folder): the bytes on
 * disk are ciphertext in 64 KiB authenticated chunks; a range read decrypts only what it needs, at every
 * chunk boundary; a flipped byte, a cut, swapped chunks, another master key or another file's row are
 * detected and never yield plaintext; an upload over the limit leaves nothing behind.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Envelope, EnvelopeError } from '../../../messaging/envelope.js';
import { CHUNK_BYTES, EncryptedFiles, FILE_HEADER_BYTES, FileStoreError, sealedSize, type StoredFile } from '../../../messaging/file-store.js';
import { LocalBlobStore, locationOf } from '../../../messaging/local-blobs.js';
import { silentLogger } from '../../../src/log/index.js';

const TAG = 16;
const newId = () => randomBytes(16).toString('base64url');

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}

/** Reads the stream; resolves with what it yielded before it failed, and the error. */
async function readUntilError(stream: Readable): Promise<{ got: Buffer; err: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
  } catch (err) {
    return { got: Buffer.concat(parts), err };
  }
  return { got: Buffer.concat(parts), err: undefined };
}

/** Hands the data out in pieces of `size` bytes, like a network stream. */
function pieces(data: Buffer, size: number): Readable {
  const list: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) list.push(data.subarray(i, i + size));
  return Readable.from(list, { objectMode: false });
}

const isTampered = (err: unknown) => err instanceof EnvelopeError && err.code === 'MESSAGING_ERR_TAMPERED';

describe('EncryptedFiles on a LocalBlobStore', () => {
  let dir: string;
  let root: string;
  let envelope: Envelope;
  let blobs: LocalBlobStore;
  let files: EncryptedFiles;
  /** 2.5 chunks of a recognisable pattern. */
  const plain = Buffer.alloc(CHUNK_BYTES * 2 + CHUNK_BYTES / 2);
  for (let i = 0; i < plain.length; i++) plain[i] = (i * 7 + (i >> 8)) & 0xff;
  let file: StoredFile;

  async function put(data: Buffer, pieceSize = 10_000, maxSize = 10 * 1024 * 1024): Promise<StoredFile> {
    const id = newId();
    const stored = await files.put(id, pieces(data, pieceSize), maxSize);
    return { id, ...stored };
  }

  const pathOf = (f: StoredFile) => join(root, f.location);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'softswitch-files-'));
    root = join(dir, 'files');
    envelope = new Envelope(randomBytes(32));
    blobs = new LocalBlobStore(root, silentLogger());
    files = new EncryptedFiles(blobs, envelope);
    file = await put(plain);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps ciphertext only, under ab/<id>, folder 0700 and file 0600', () => {
    assert.equal(file.location, `${file.id.slice(0, 2)}/${file.id}`);
    assert.equal(file.size, plain.length);
    const onDisk = readFileSync(pathOf(file));
    assert.equal(onDisk.length, sealedSize(plain.length));
    assert.equal(onDisk.length, FILE_HEADER_BYTES + 3 * TAG + plain.length);
    for (const offset of [0, 1000, CHUNK_BYTES, plain.length - 64]) {
      assert.equal(onDisk.indexOf(plain.subarray(offset, offset + 32)), -1, `plaintext at ${offset} is not on disk`);
    }
    assert.equal(statSync(root).mode & 0o777, 0o700);
    assert.equal(statSync(join(root, file.id.slice(0, 2))).mode & 0o777, 0o700);
    assert.equal(statSync(pathOf(file)).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(root, file.id.slice(0, 2))), [file.id], 'no temporary file is left');
  });

  it('reads the whole file back, whatever pieces it arrived in', async () => {
    assert.deepEqual(await readAll(files.read(file)), plain);
    const odd = await put(plain, 65_537);
    assert.deepEqual(await readAll(files.read(odd)), plain);
  });

  it('handles the sizes at chunk boundaries: empty, one byte, exactly one chunk, one chunk and one byte', async () => {
    for (const size of [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2 * CHUNK_BYTES]) {
      const data = randomBytes(size);
      const f = await put(data, 4096);
      assert.equal(f.size, size);
      assert.equal(statSync(pathOf(f)).size, sealedSize(size), `size ${size}`);
      assert.deepEqual(await readAll(files.read(f)), data, `size ${size}`);
      if (size > 0) assert.deepEqual(await readAll(files.read(f, { start: size - 1, end: size - 1 })), data.subarray(size - 1), `last byte of ${size}`);
    }
  });

  it('reads ranges at chunk boundaries: the first byte, the last byte, across two chunks, a suffix, one whole chunk', async () => {
    const cases: Array<[number, number]> = [
      [0, 0],
      [plain.length - 1, plain.length - 1],
      [CHUNK_BYTES - 1, CHUNK_BYTES],
      [CHUNK_BYTES - 10, 2 * CHUNK_BYTES + 10],
      [plain.length - 500, plain.length - 1],
      [CHUNK_BYTES, 2 * CHUNK_BYTES - 1],
      [0, plain.length - 1],
      [123, 4567],
    ];
    for (const [start, end] of cases) {
      assert.deepEqual(await readAll(files.read(file, { start, end })), plain.subarray(start, end + 1), `${start}-${end}`);
    }
  });

  it('a range read decrypts only its chunks: a damaged chunk elsewhere does not affect it', async () => {
    const f = await put(plain);
    const bytes = readFileSync(pathOf(f));
    bytes[FILE_HEADER_BYTES + 100] ^= 0x01; // inside chunk 0
    writeFileSync(pathOf(f), bytes);
    const tail = await readAll(files.read(f, { start: CHUNK_BYTES, end: plain.length - 1 }));
    assert.deepEqual(tail, plain.subarray(CHUNK_BYTES));
    const { err } = await readUntilError(files.read(f, { start: 0, end: 10 }));
    assert.ok(isTampered(err));
  });

  it('refuses a range outside the file at once', () => {
    for (const range of [{ start: 0, end: plain.length }, { start: 5, end: 4 }, { start: -1, end: 3 }]) {
      assert.throws(() => files.read(file, range), (err: unknown) => err instanceof FileStoreError && err.code === 'MESSAGING_ERR_RANGE', JSON.stringify(range));
    }
  });

  it('detects a flipped byte on disk anywhere (header, a chunk, a tag) and yields nothing of the bad chunk', async () => {
    const original = readFileSync(pathOf(file));
    const lastTag = original.length - 1;
    const spots = [0, 3, FILE_HEADER_BYTES, FILE_HEADER_BYTES + CHUNK_BYTES + 5, FILE_HEADER_BYTES + CHUNK_BYTES + TAG + 7, lastTag - 20, lastTag];
    const f = await put(plain);
    for (const spot of spots) {
      const bytes = Buffer.from(readFileSync(pathOf(f)));
      bytes[spot] ^= 0x40;
      writeFileSync(pathOf(f), bytes);
      const { got, err } = await readUntilError(files.read(f));
      assert.ok(isTampered(err), `byte ${spot}: ${String(err)}`);
      // Whole chunks before the bad one may have gone out; never a byte of the bad one.
      assert.equal(got.length % CHUNK_BYTES, 0, `byte ${spot}`);
      assert.deepEqual(got, plain.subarray(0, got.length));
      bytes[spot] ^= 0x40;
      writeFileSync(pathOf(f), bytes);
    }
    assert.deepEqual(await readAll(files.read(f)), plain, 'restored, it reads again');
  });

  it('detects a file cut short, even at a chunk boundary, and chunks swapped', async () => {
    const f = await put(plain);
    const full = readFileSync(pathOf(f));
    truncateSync(pathOf(f), FILE_HEADER_BYTES + 2 * (CHUNK_BYTES + TAG));
    assert.ok(isTampered((await readUntilError(files.read(f))).err));
    // The same cut, with the row saying the file is two chunks long: chunk 1 is not flagged last.
    assert.ok(isTampered((await readUntilError(files.read({ ...f, size: 2 * CHUNK_BYTES }))).err));

    const chunk0 = full.subarray(FILE_HEADER_BYTES, FILE_HEADER_BYTES + CHUNK_BYTES + TAG);
    const chunk1 = full.subarray(FILE_HEADER_BYTES + CHUNK_BYTES + TAG, FILE_HEADER_BYTES + 2 * (CHUNK_BYTES + TAG));
    writeFileSync(pathOf(f), Buffer.concat([full.subarray(0, FILE_HEADER_BYTES), chunk1, chunk0, full.subarray(FILE_HEADER_BYTES + 2 * (CHUNK_BYTES + TAG))]));
    const { got, err } = await readUntilError(files.read(f));
    assert.ok(isTampered(err));
    assert.equal(got.length, 0);
  });

  it('refuses to read under another master key, or a blob under another file\'s row', async () => {
    const other = new EncryptedFiles(blobs, new Envelope(randomBytes(32)));
    const { got, err } = await readUntilError(other.read(file));
    assert.ok(isTampered(err));
    assert.equal(got.length, 0);

    const second = await put(plain);
    // Another file's bytes and key under this id: the id is in every chunk's additional data.
    const moved = await readUntilError(files.read({ ...second, id: file.id }));
    assert.ok(isTampered(moved.err));
    assert.equal(moved.got.length, 0);
  });

  it('an upload over the limit fails with MESSAGING_ERR_TOO_LARGE and leaves no file, final or temporary', async () => {
    const id = newId();
    const before = readdirSync(root).flatMap((d) => readdirSync(join(root, d)));
    const source = pieces(randomBytes(CHUNK_BYTES * 3), 8192);
    await assert.rejects(files.put(id, source, CHUNK_BYTES * 2), (err: unknown) => err instanceof FileStoreError && err.code === 'MESSAGING_ERR_TOO_LARGE');
    assert.equal(source.destroyed, false, 'the source is left for its owner (an HTTP request still to be answered)');
    source.destroy();
    const after = readdirSync(root).flatMap((d) => readdirSync(join(root, d)));
    assert.deepEqual(after.sort(), before.sort());
    // Exactly the limit is fine.
    const exact = await files.put(newId(), pieces(randomBytes(1000), 100), 1000);
    assert.equal(exact.size, 1000);
  });

  it('remove() deletes the bytes; removing again is not an error', async () => {
    const f = await put(randomBytes(100));
    await files.remove(f.location);
    assert.throws(() => statSync(pathOf(f)), /ENOENT/);
    await files.remove(f.location);
    const { err } = await readUntilError(files.read(f));
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOENT');
  });

  it('never takes a location that is not ab/<base64url>', async () => {
    assert.throws(() => locationOf('../../etc/passwd'), TypeError);
    for (const location of ['../x', 'ab/../../x', '/etc/passwd', 'ab/.tmp-1', 'ab']) {
      assert.throws(() => blobs.read(location, 0, 1), TypeError, location);
      await assert.rejects(blobs.remove(location), TypeError, location);
    }
  });
});

describe('LocalBlobStore.sweep', () => {
  it('deletes the unfinished writes of an earlier run (.tmp-* older than an hour) and nothing else', async () => {
    const root = mkdtempSync(join(tmpdir(), 'softswitch-blobs-'));
    try {
      const blobs = new LocalBlobStore(root, silentLogger());
      const location = locationOf('abcdefghijklmnopqrstuv');
      await blobs.write(location, Readable.from([Buffer.from('kept')]));
      const dir = join(root, location.split('/')[0]!);
      writeFileSync(join(dir, '.tmp-old'), 'left by a crash');
      writeFileSync(join(dir, '.tmp-new'), 'a write in progress');
      const later = Date.now() + 30 * 60_000;
      assert.equal(await blobs.sweep(3_600_000, later), 0, 'nothing is an hour old yet');
      assert.equal(await blobs.sweep(3_600_000, Date.now() + 2 * 3_600_000), 2);
      assert.deepEqual(readdirSync(dir), [location.split('/')[1]]);
      assert.equal(readFileSync(join(root, location), 'utf8').length > 0, true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
