import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';

/**
 * Finds an external tool the tests drive. A missing tool fails the test with the package to install;
 * there is no silent skip (the pretest step installs them as root).
 */
export function requireTool(command: string, debianPackage: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || path === '') {
    throw new Error(`${command} is not installed: apt-get install ${debianPackage} (npm test's pretest step does this as root)`);
  }
  return path;
}

/** A port free for both UDP and TCP on the address right now (the kernel picks it). */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, address, () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket(address.includes(':') ? 'udp6' : 'udp4');
      u.once('error', () => resolve(false));
      u.bind(port, address, () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port found');
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion with a hard time limit (killed after it). */
export function run(command: string, args: string[], options: { timeoutMs: number; cwd?: string }): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Waits until something is bound to 127.0.0.1:port over UDP (/proc/net/udp), or throws. */
export async function waitUdpBound(port: number, timeoutMs = 10_000): Promise<void> {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const table = readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1);
    if (table.some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing bound to UDP port ${port} after ${timeoutMs} ms`);
}
