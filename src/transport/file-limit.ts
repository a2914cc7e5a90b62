/**
 * The process's open-file limit (RLIMIT_NOFILE). Every SIP connection is a file descriptor; with the
 * common soft limit of 1,024, about a thousand idle TCP connections made every stream transport and the
 * HTTP /health listener fail at accept (EMFILE) while UDP went on. Node has no setrlimit, so the soft limit
 * is read from /proc/self/limits and raised to the hard one with util-linux `prlimit`, once at start,
 * before the cluster forks its workers (children inherit the limit).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { categoryLogger, type Logger } from '../log/index.js';

export interface FileLimit {
  soft: number;
  /** undefined: unlimited. */
  hard: number | undefined;
}

/** RLIMIT_NOFILE of a process (this one by default), from /proc; undefined where /proc cannot tell. */
export function readFileLimit(pid: number | 'self' = 'self'): FileLimit | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/limits`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!m) return undefined;
  if (m[1] === 'unlimited') return undefined; // no limit to speak of
  return { soft: Number(m[1]), hard: m[2] === 'unlimited' ? undefined : Number(m[2]) };
}

/**
 * Raises the soft open-file limit of this process (or of `pid`) to its hard limit and logs both values.
 * Node itself raises the soft limit when it starts; this makes sure of it whatever started us, and says
 * what the limits are. A failure (no prlimit, no /proc) is a warning: the server still starts, with its
 * connection cap lowered to fit (ConnectionAdmission). Returns the limit in force afterwards.
 */
export function raiseFileLimit(logger: Logger, pid: number = process.pid): FileLimit | undefined {
  const log = categoryLogger(logger, 'sip.transport');
  const before = readFileLimit(pid);
  if (before === undefined) {
    log.warn('cannot read the open-file limit (/proc/self/limits): connection caps do not account for it');
    return undefined;
  }
  if (before.hard === undefined || before.soft >= before.hard) {
    log.info({ soft: before.soft, hard: before.hard ?? 'unlimited' }, 'open-file limit');
    return before;
  }
  try {
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${before.hard}:${before.hard}`], { stdio: 'pipe', timeout: 5000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const reason = e.code === 'ENOENT' ? 'prlimit (util-linux) is not installed' : (e.stderr?.toString().trim() || e.message);
    log.warn({ soft: before.soft, hard: before.hard, err: reason }, 'cannot raise the open-file limit; connections are capped to fit the soft limit');
    return before;
  }
  const after = readFileLimit(pid) ?? before;
  log.info({ soft: after.soft, hard: after.hard ?? 'unlimited', before: before.soft }, 'open-file limit raised');
  return after;
}
