import { spawnSync } from 'node:child_process';
import { requireTool } from './tools.js';

/**
 * A network namespace whose only interface is loopback: tests whose messages name foreign hosts
 * (RFC 4475) or that move media run inside one, so no packet can ever leave the machine.
 * Needs root (CI runs as root); anything else fails with the reason, never skips.
 *
 * `publicAddress` puts one more address on loopback (/32): a host address that is not in 127.0.0.0/8, for TURN
 * relays, which refuse loopback peers (their deny rules would otherwise refuse every test peer). Use an RFC 5737
 * documentation address (203.0.113.1): it names nobody's host. It sits on `lo` like 127.0.0.1, the namespace still
 * has no other interface and no route out.
 */
export class LoopbackNamespace {
  readonly name: string;
  private constructor(name: string) {
    this.name = name;
  }

  static create(prefix: string, options: { publicAddress?: string } = {}): LoopbackNamespace {
    requireTool('ip', 'iproute2');
    if (process.getuid?.() !== 0) throw new Error('network namespaces need root: run the tests as root (CI does)');
    const name = `${prefix}-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
    sh('ip', ['netns', 'add', name]);
    try {
      sh('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
      const links = sh('ip', ['netns', 'exec', name, 'ip', '-o', 'link', 'show']).trim().split('\n');
      if (links.length !== 1 || !/\blo\b/.test(links[0]!)) throw new Error(`namespace ${name} has more than loopback: ${links.join('; ')}`);
      if (options.publicAddress !== undefined) {
        sh('ip', ['netns', 'exec', name, 'ip', 'addr', 'add', `${options.publicAddress}/${options.publicAddress.includes(':') ? 128 : 32}`, 'dev', 'lo']);
      }
    } catch (err) {
      spawnSync('ip', ['netns', 'del', name]);
      throw err;
    }
    return new LoopbackNamespace(name);
  }

  /** argv prefix that runs a command inside the namespace. */
  exec(command: string, args: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.name, command, ...args]];
  }

  /** Kills whatever is still running inside (a killed runner's rtpengine, SIPp, coturn, Chromium), by pid, then deletes it. */
  destroy(): void {
    const pids = spawnSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8' }).stdout.split('\n').filter((p) => /^\d+$/.test(p));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}
