/**
 * Where chat files' bytes live: ciphertext only (file-store.ts encrypts before writing and authenticates
 * after reading), so a store never needs to be trusted with content, only with keeping bytes.
 *
 * BlobStore is the seam for other back ends: an S3-compatible store implements the same three calls
 * (write: a multipart PutObject of the stream; read: GetObject with `Range: bytes=start-end`; remove:
 * DeleteObject) with the same relative locations as object keys.
 *
 * LocalBlobStore keeps them on the local disk (storage.path, default dataDir/files): the folder 0700, every
 * file 0600, a location `ab/abcdef…` (the first two characters of the id, then the id) so that no folder
 * grows past a few thousand entries. Locations are made from server-chosen ids, never from user input, and
 * are checked again here so that nothing can point outside the folder. A write goes to a temporary name
 * beside the final one and is renamed into place once flushed (rename(2) is atomic within a folder): a
 * reader never sees half a file, and a failed write leaves nothing under the final name.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { categoryLogger, type Logger } from '../src/log/index.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, logTightened, tightenModes } from '../src/transport/file-modes.js';

/** Raw bytes by location. */
export interface BlobStore {
  /** Stores the bytes under `location` (replacing any), all or nothing; resolves with the byte count. */
  write(location: string, data: AsyncIterable<Buffer> | Readable): Promise<number>;
  /** Bytes `start`..`endInclusive` of the blob (fewer when it is shorter); errors on the stream when it is missing. */
  read(location: string, start: number, endInclusive: number): Readable;
  /** Deletes the blob; a missing one is not an error. */
  remove(location: string): Promise<void>;
}

/** `ab/abcdef…`: two base64url characters, a slash, a base64url name. */
const LOCATION = /^[A-Za-z0-9_-]{2}\/[A-Za-z0-9_-]{2,128}$/;

/** The location of an id (22 base64url characters) in a LocalBlobStore (and an S3 bucket later). */
export function locationOf(id: string): string {
  const location = `${id.slice(0, 2)}/${id}`;
  if (!LOCATION.test(location)) throw new TypeError('a blob id must be base64url characters');
  return location;
}

export class LocalBlobStore implements BlobStore {
  private readonly log: Logger;

  /** `root`: the folder (created 0700 when missing, tightened when an older version left it open). */
  constructor(readonly root: string, logger: Logger) {
    this.log = categoryLogger(logger, 'messaging');
    mkdirSync(root, { recursive: true, mode: PRIVATE_DIR_MODE });
    logTightened(this.log, 'the chat files folder', tightenModes([{ path: root, mode: PRIVATE_DIR_MODE }]));
  }

  async write(location: string, data: AsyncIterable<Buffer> | Readable): Promise<number> {
    const path = this.pathOf(location);
    await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
    // A dot name: never a valid location, so never read or listed as a blob.
    const temp = join(dirname(path), `.tmp-${randomBytes(8).toString('hex')}`);
    const handle = await open(temp, 'wx', PRIVATE_FILE_MODE);
    let written = 0;
    try {
      for await (const chunk of data as AsyncIterable<Buffer>) {
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        let offset = 0;
        while (offset < bytes.length) {
          const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
          offset += bytesWritten;
        }
        written += bytes.length;
      }
      // Flushed before the rename: after a crash the final name holds the whole file or nothing.
      await handle.sync();
      await handle.close();
      await rename(temp, path);
      return written;
    } catch (err) {
      await handle.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw err;
    }
  }

  read(location: string, start: number, endInclusive: number): Readable {
    return createReadStream(this.pathOf(location), { start, end: endInclusive });
  }

  async remove(location: string): Promise<void> {
    try {
      await unlink(this.pathOf(location));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /**
   * Deletes what an interrupted write left (a crash between open and rename): `.tmp-*` files older than
   * `olderThanMs`, so a write in progress in another worker is never touched. Resolves with how many went.
   */
  async sweep(olderThanMs = 3_600_000, now = Date.now()): Promise<number> {
    let removed = 0;
    const folders = await readdir(this.root, { withFileTypes: true }).catch(() => []);
    for (const folder of folders) {
      if (!folder.isDirectory()) continue;
      const dir = join(this.root, folder.name);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (!name.startsWith('.tmp-')) continue;
        const path = join(dir, name);
        const info = await stat(path).catch(() => undefined);
        if (info === undefined || now - info.mtimeMs < olderThanMs) continue;
        await unlink(path).then(() => removed++, () => undefined);
      }
    }
    if (removed > 0) this.log.info({ removed }, 'unfinished chat file writes of an earlier run deleted');
    return removed;
  }

  private pathOf(location: string): string {
    if (!LOCATION.test(location)) throw new TypeError('not a blob location');
    return join(this.root, location);
  }
}
