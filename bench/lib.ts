/** Shared pieces of the load benchmarks: start the server as its own process, read its CPU, drive SIPp. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

/** Starts `softswitch start` with a YAML config (as text) and waits for it to listen. */
export async function startServerProcess(yaml: (dir: string) => string): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'softswitch-bench-'));
  writeFileSync(join(dir, 'softswitch.yaml'), yaml(dir));
  const child = spawn(process.execPath, [join(repoRoot, 'dist', 'src', 'main.js'), 'start', '--config', join(dir, 'softswitch.yaml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out.length < 100_000 ? (out += d.toString()) : undefined));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 15_000;
  while (!out.includes('"listening"')) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    pid: child.pid!,
    dir,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** user+system CPU seconds of a process and its threads, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : 0;
}

export interface SippRun {
  successful: number;
  failed: number;
  retransmissions: number;
  seconds: number;
}

/** Runs SIPp to completion and reads its final statistics (-trace_stat CSV). */
export function runSipp(args: string[], timeoutSeconds: number): SippRun {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-bench-'));
  const stf = join(dir, 'stats.csv');
  const started = process.hrtime.bigint();
  const r = spawnSync('sipp', [...args, '-nostdin', '-trace_stat', '-stf', stf, '-fd', '1'], {
    cwd: dir, encoding: 'utf8', timeout: timeoutSeconds * 1000, maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.error) throw r.error;
  const lines = readFileSync(stf, 'utf8').trim().split('\n');
  rmSync(dir, { recursive: true, force: true });
  const header = lines[0]!.split(';');
  const last = lines[lines.length - 1]!.split(';');
  const col = (name: string) => Number(last[header.indexOf(name)] ?? 0);
  return {
    successful: col('SuccessfulCall(C)'),
    failed: col('FailedCall(C)'),
    retransmissions: col('Retransmissions(C)'),
    seconds,
  };
}
