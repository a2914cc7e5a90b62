/**
 * The pid file of a running server, `dataDir/softswitch.pid`: the primary of a cluster (or the single
 * process of `--workers 1`) writes its pid there once it runs and removes it when it stops, so that
 * `softswitch restart --rolling` (another process, same configuration) can send it SIGHUP.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const PID_FILE_NAME = 'softswitch.pid';

export type PidFileErrorCode = 'PID_ERR_MISSING' | 'PID_ERR_INVALID' | 'PID_ERR_STALE';

export class PidFileError extends Error {
  readonly code: PidFileErrorCode;
  constructor(code: PidFileErrorCode, message: string) {
    super(message);
    this.name = 'PidFileError';
    this.code = code;
  }
}

/** Writes this process's pid (mode 0644: the pid is no secret); returns the path. */
export function writePidFile(dataDir: string): string {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, PID_FILE_NAME);
  writeFileSync(path, `${process.pid}\n`, { mode: 0o644 });
  return path;
}

/** Removes the file if it still names this process (a newer server may have replaced it). */
export function removePidFile(path: string | undefined): void {
  if (path === undefined) return;
  try {
    if (Number(readFileSync(path, 'utf8').trim()) === process.pid) unlinkSync(path);
  } catch {
    // already gone
  }
}

/** The pid of the running server; PidFileError when there is no file, it is garbled, or that process is gone. */
export function readPidFile(dataDir: string): number {
  const path = join(resolve(dataDir), PID_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new PidFileError('PID_ERR_MISSING', `no ${path}: is the server running with this configuration (dataDir)?`);
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new PidFileError('PID_ERR_INVALID', `${path} does not hold a pid: ${JSON.stringify(text.slice(0, 20))}`);
  try {
    process.kill(pid, 0);
  } catch {
    throw new PidFileError('PID_ERR_STALE', `${path} names pid ${pid}, which is not running`);
  }
  return pid;
}
