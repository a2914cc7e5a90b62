/**
 * A daemon a test or bench starts (coturn, Janus): the last lines of its output kept for the failure message, its exit
 * awaited, and a SIGKILL when the test process exits first, so that nothing is left behind.
 */
import type { ChildProcess } from 'node:child_process';

/** Daemons still running: a test process that dies early must not leave them behind. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

export interface Daemon {
  /** The last `maxLines` lines of its stdout and stderr. */
  readonly log: string[];
  /** Resolves when it has exited. */
  readonly exited: Promise<void>;
  /** Undefined while it runs; its exit code (-1 for a signal) once it has exited. */
  exitCode(): number | null | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  terminate(graceMs?: number): Promise<void>;
}

export function supervise(proc: ChildProcess, maxLines: number): Daemon {
  live.add(proc);
  const log: string[] = [];
  const onData = (chunk: string): void => {
    for (const line of chunk.split('\n')) if (line !== '') log.push(line);
    if (log.length > maxLines) log.splice(0, log.length - maxLines);
  };
  for (const stream of [proc.stdout, proc.stderr]) {
    if (stream === null) continue;
    stream.setEncoding('utf8');
    stream.on('data', onData);
  }
  let code: number | null | undefined;
  const exited = new Promise<void>((resolve) => proc.once('exit', (exit, signal) => {
    live.delete(proc);
    code = exit ?? (signal !== null ? -1 : null);
    resolve();
  }));
  return {
    log,
    exited,
    exitCode: () => code,
    async terminate(graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
