/**
 * The writer's overflow on disk: HistoryOps as JSON lines, appended synchronously (one write(2) per op, so
 * push() stays synchronous and an op is in the file the moment push returns) and read back from where the
 * last read stopped while new ops are still appended behind. The file holds call records (numbers, names):
 * it is created 0600 in a folder created 0700, and a looser one left by an earlier version is tightened.
 */
import { closeSync, mkdirSync, openSync, readSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, tightenModes } from '../src/transport/file-modes.js';
import type { HistoryOp } from './types.js';

const NEWLINE = 0x0a;
/** Bytes read back at a time (doubled for a longer line). */
const READ_CHUNK = 1024 * 1024;

function line(op: HistoryOp): string {
  return `${JSON.stringify(op)}\n`;
}

/** The op of a line, or undefined for one that is not (a line cut short by a crash, an edited file). */
function parseOp(text: string): HistoryOp | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const ok = (o.op === 'dialog' && typeof o.dialog === 'object' && o.dialog !== null)
    || (o.op === 'forget' && typeof o.id === 'string')
    || (o.op === 'record' && typeof o.record === 'object' && o.record !== null);
  return ok ? (v as HistoryOp) : undefined;
}

export interface SpillRead {
  ops: HistoryOp[];
  /** Lines that held no op, skipped. */
  unreadable: number;
}

export class SpillFile {
  private fd: number | undefined;
  /** Bytes in the file. */
  private size = 0;
  /** Bytes read back already. */
  private readOffset = 0;
  /** Lines appended or found and not read back yet. */
  private lines = 0;
  /** Changes when the file is rewritten or removed: a read begun before then lets its bytes be. */
  private generation = 0;

  constructor(readonly path: string) {}

  /** Ops waiting in the file. */
  get pending(): number {
    return this.lines;
  }

  /** True while the file holds bytes not read back. */
  get unread(): boolean {
    return this.readOffset < this.size;
  }

  /**
   * Takes up a file left by an earlier process and returns how many lines it holds. A last line cut short
   * by a crash is ended, so that what is appended next is a line of its own.
   */
  adopt(): number {
    let size: number;
    try {
      size = statSync(this.path).size;
    } catch {
      return 0;
    }
    tightenModes([{ path: this.path, mode: PRIVATE_FILE_MODE }]);
    this.size = size;
    this.readOffset = 0;
    this.lines = 0;
    if (size === 0) {
      this.remove();
      return 0;
    }
    const fd = openSync(this.path, 'r');
    let last = NEWLINE;
    try {
      const buf = Buffer.alloc(Math.min(READ_CHUNK, size));
      for (let at = 0; at < size;) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - at), at);
        if (n === 0) break;
        for (let i = 0; i < n; i++) if (buf[i] === NEWLINE) this.lines++;
        last = buf[n - 1]!;
        at += n;
      }
    } finally {
      closeSync(fd);
    }
    if (last !== NEWLINE) {
      this.write('\n');
      this.lines++;
    }
    return this.lines;
  }

  /** Appends the ops, synchronously; throws what the file system throws (the caller logs it). */
  append(ops: readonly HistoryOp[]): void {
    if (ops.length === 0) return;
    this.write(ops.map(line).join(''));
    this.lines += ops.length;
  }

  /** Up to `max` lines from where the last read stopped, in order. */
  async read(max: number): Promise<SpillRead> {
    const out: SpillRead = { ops: [], unreadable: 0 };
    const generation = this.generation;
    const handle = await open(this.path, 'r');
    try {
      let chunk = READ_CHUNK;
      while (out.ops.length + out.unreadable < max && this.unread) {
        const length = Math.min(chunk, this.size - this.readOffset);
        const buf = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buf, 0, length, this.readOffset);
        if (generation !== this.generation) return { ops: [], unreadable: 0 };
        const end = bytesRead === 0 ? -1 : buf.lastIndexOf(NEWLINE, bytesRead - 1);
        if (end < 0) {
          // adopt() and append() end every line, so a line longer than the chunk is all this can be.
          if (bytesRead < length || length === this.size - this.readOffset) throw new Error(`${this.path}: no end of line after byte ${this.readOffset}`);
          chunk *= 2;
          continue;
        }
        let start = 0;
        while (start <= end && out.ops.length + out.unreadable < max) {
          const nl = buf.indexOf(NEWLINE, start);
          const text = buf.toString('utf8', start, nl);
          start = nl + 1;
          this.lines = Math.max(0, this.lines - 1);
          if (text.trim() === '') continue;
          const op = parseOp(text);
          if (op === undefined) out.unreadable++;
          else out.ops.push(op);
        }
        this.readOffset += start;
      }
    } finally {
      await handle.close();
    }
    return out;
  }

  /**
   * Writes `head` and then the lines not read back yet as the whole file (a new file renamed over the old
   * one, so a crash leaves either). What was read back is written already and is left out.
   */
  rewrite(head: readonly HistoryOp[]): void {
    if (head.length === 0 && this.readOffset === 0) return;
    const rest = Buffer.alloc(this.size - this.readOffset);
    if (rest.length > 0) {
      const fd = openSync(this.path, 'r');
      try {
        for (let at = 0; at < rest.length;) {
          const n = readSync(fd, rest, at, rest.length - at, this.readOffset + at);
          if (n === 0) break;
          at += n;
        }
      } finally {
        closeSync(fd);
      }
    }
    if (head.length === 0 && rest.length === 0) {
      this.remove();
      return;
    }
    this.close();
    this.generation++;
    const content = Buffer.concat([Buffer.from(head.map(line).join('')), rest]);
    const tmp = `${this.path}.tmp`;
    mkdirSync(dirname(this.path), { recursive: true, mode: PRIVATE_DIR_MODE });
    writeFileSync(tmp, content, { mode: PRIVATE_FILE_MODE });
    renameSync(tmp, this.path);
    this.size = content.length;
    this.readOffset = 0;
    this.lines += head.length;
  }

  /** Deletes the file: everything in it is written. */
  remove(): void {
    this.close();
    try {
      unlinkSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.size = 0;
    this.readOffset = 0;
    this.lines = 0;
    this.generation++;
  }

  /** Closes the file (it stays on disk); the next append opens it again. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private write(text: string): void {
    if (this.fd === undefined) {
      mkdirSync(dirname(this.path), { recursive: true, mode: PRIVATE_DIR_MODE });
      this.fd = openSync(this.path, 'a', PRIVATE_FILE_MODE);
    }
    const buf = Buffer.from(text);
    for (let at = 0; at < buf.length;) at += writeSync(this.fd, buf, at, buf.length - at);
    this.size += buf.length;
  }
}
