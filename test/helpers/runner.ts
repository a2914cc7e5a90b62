/**
 * Runs a runner script (a browser or libwebrtc peer driven inside a network namespace) as a child process until it
 * exits, killing it after `timeoutMs`, and finds the line it printed as `<TAG> {json}`: the media, console and Janus
 * media suites all read their runner's result this way.
 */
import { spawn } from 'node:child_process';

export interface RunnerOutcome {
  /** The JSON text after `<TAG> `, when the runner printed it. */
  result: string | undefined;
  code: number | null;
  stdout: string;
  /** The last 8000 characters of stderr. */
  stderr: string;
}

export async function runTagged(command: readonly [string, readonly string[]], env: Record<string, string>, tag: string, timeoutMs: number): Promise<RunnerOutcome> {
  const [cmd, args] = command;
  const child = spawn(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  const line = stdout.split('\n').find((l) => l.startsWith(`${tag} `));
  return { result: line?.slice(tag.length + 1), code, stdout, stderr };
}
