/**
 * Private files on disk: the SQLite store holds HA1 hashes (as good as passwords for SIP digest), the data
 * folder holds it and the generated TLS key. New folders are created 0700 and files 0600 whatever the
 * umask; what an older version left readable by others is tightened at start, with one log line naming
 * the paths and their old modes.
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { categoryLogger, type Logger } from '../log/index.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

export interface TightenedPath {
  readonly path: string;
  /** The old permission bits, octal text ("0644"). */
  readonly from: string;
}

export interface TightenResult {
  readonly tightened: TightenedPath[];
  /** Paths that could not be changed (another owner, a read-only file system) and why. */
  readonly failed: Array<{ path: string; reason: string }>;
}

const octal = (mode: number): string => '0' + (mode & 0o777).toString(8).padStart(3, '0');

/**
 * Takes every group and other permission off each existing path that has any (a missing path is
 * skipped; nothing is ever loosened).
 */
export function tightenModes(entries: ReadonlyArray<{ path: string; mode: number }>): TightenResult {
  const tightened: TightenedPath[] = [];
  const failed: Array<{ path: string; reason: string }> = [];
  for (const { path, mode } of entries) {
    let current: number;
    try {
      current = statSync(path).mode & 0o777;
    } catch {
      continue;
    }
    if ((current & ~mode & 0o777) === 0) continue;
    try {
      chmodSync(path, current & mode);
      tightened.push({ path, from: octal(current) });
    } catch (err) {
      failed.push({ path, reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
    }
  }
  return { tightened, failed };
}

/** One line for what was tightened, one for what could not be: never one line per file. */
export function logTightened(log: Logger, what: string, result: TightenResult): void {
  if (result.tightened.length > 0) {
    log.warn({ paths: result.tightened }, `tightened the permissions of ${what} that others could read (folders 0700, files 0600)`);
  }
  if (result.failed.length > 0) {
    log.error({ paths: result.failed }, `cannot restrict the permissions of ${what}: others may read them`);
  }
}

/**
 * The data folder (`dataDir`): created 0700 when missing; the folder, its `tls/` folder and the
 * generated TLS key tightened when an older version left them open.
 */
export function securePrivateDir(dataDir: string, logger: Logger): void {
  const log = categoryLogger(logger, 'store');
  try {
    mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    throw new Error(`configuration key dataDir: cannot create ${dataDir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  logTightened(log, 'the data folder', tightenModes([
    { path: dataDir, mode: PRIVATE_DIR_MODE },
    { path: join(dataDir, 'tls'), mode: PRIVATE_DIR_MODE },
    { path: join(dataDir, 'tls', 'selfsigned.key'), mode: PRIVATE_FILE_MODE },
  ]));
}

/**
 * A SQLite database file before SQLite opens it: its missing folders created 0700, the file created 0600
 * when missing (SQLite gives its -wal and -shm files the mode of the database file), and the file and
 * its -wal, -shm and -journal tightened.
 */
export function prepareSqliteFile(filename: string, folder: string, log: Logger): void {
  mkdirSync(folder, { recursive: true, mode: PRIVATE_DIR_MODE });
  // 'a': creates the file without truncating an existing one; the mode applies only on creation.
  closeSync(openSync(filename, 'a', PRIVATE_FILE_MODE));
  logTightened(log, 'the store files', tightenModes(['', '-wal', '-shm', '-journal'].map((suffix) => ({ path: filename + suffix, mode: PRIVATE_FILE_MODE }))));
}
