import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../support/paths.js';
import { freePort, requireTool, run, type RunResult } from '../../support/tools.js';

export const SIPP_SCENARIOS = join(repoRoot, 'test', 'e2e', 'sipp');

export interface SippOptions {
  scenario: string; // file name under test/e2e/sipp, or an absolute path
  target: string; // host:port
  transport?: 'u1' | 't1' | 'un' | 'tn';
  calls?: number;
  rate?: number;
  timeoutSeconds?: number;
  extra?: string[];
  /** Local address SIPp binds and writes in its messages (127.0.0.1 by default; another loopback address stands for another host). */
  local?: string;
}

/** Runs SIPp against the server; exit code 0 means every call of the scenario succeeded. */
export async function runSipp(o: SippOptions): Promise<RunResult & { localPort: number }> {
  const sipp = requireTool('sipp', 'sip-tester');
  const local = o.local ?? '127.0.0.1';
  const localPort = await freePort(local);
  const dir = mkdtempSync(join(tmpdir(), 'sipp-'));
  const timeout = o.timeoutSeconds ?? 15;
  const scenario = o.scenario.startsWith('/') ? o.scenario : join(SIPP_SCENARIOS, o.scenario);
  const args = [
    o.target, '-sf', scenario, '-t', o.transport ?? 'u1', '-i', local, '-p', String(localPort),
    '-m', String(o.calls ?? 1), '-r', String(o.rate ?? 10), '-timeout', `${timeout}s`, '-timeout_error',
    '-nostdin', '-trace_err', '-error_file', join(dir, 'errors.log'), ...(o.extra ?? []),
  ];
  try {
    const r = await run(sipp, args, { timeoutMs: (timeout + 5) * 1000, cwd: dir });
    return { ...r, localPort };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
