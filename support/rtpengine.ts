/**
 * A real rtpengine for tests: Debian's `rtpengine-daemon` in userspace (`--table=-1`), on loopback only,
 * with free ng/CLI ports and its own RTP port range. It never reads /etc/rtpengine (`--config-file=none`)
 * and keeps no deleted call around (`--delete-delay=0`) unless told to.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { NgClient } from '../media/index.js';
import { freePort, requireTool } from './tools.js';

export interface RtpengineOptions {
  /** ng port to listen on (a restart reuses its port); default a free one. */
  ngPort?: number;
  /**
   * First port of its 200-port RTP range; default a random one. Two rtpengines on one address need
   * disjoint ranges: they bind their ports with SO_REUSEADDR, so on a shared port one steals the other's packets.
   */
  portMin?: number;
  /** Seconds a deleted call lingers (rtpengine's default is 30); default 0. */
  deleteDelay?: number;
  /** The address media is relayed on (`--interface`); default 127.0.0.1. */
  mediaAddress?: string;
  /** More command-line options (`--max-sessions=0` …). */
  args?: string[];
}

export interface RtpengineSession {
  callId: string;
  /** The CLI's deletion mark: the call was deleted and lingers for delete-delay. */
  deleted: boolean;
}

export interface RtpengineHandle {
  /** `udp:127.0.0.1:PORT`, for the pool. */
  ng: string;
  ngPort: number;
  cliPort: number;
  /** The command line it runs with. */
  argv: string[];
  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
  /** SIGKILL now, for failover tests. */
  kill(): void;
  /** Starts it again on the same ports after stop() or kill(). */
  restart(): Promise<void>;
  /** Call-IDs of live sessions (CLI `list sessions all`); deleted ones only with `includeDeleted`. */
  listSessions(options?: { includeDeleted?: boolean }): Promise<string[]>;
  /** Every session with its deletion mark. */
  sessions(): Promise<RtpengineSession[]>;
  /** The last lines it logged, for failure messages. */
  logTail(): string;
}

const STARTUP_TIMEOUT_MS = 10_000;
/** Daemons still running: a test process that dies early must not leave them behind. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

export async function startRtpengine(options: RtpengineOptions = {}): Promise<RtpengineHandle> {
  const binary = requireTool('rtpengine', 'rtpengine-daemon');
  const ngPort = options.ngPort ?? (await freePort());
  const cliPort = await freePort();
  // an RTP port range of its own, so parallel test files rarely meet: rtpengine 10.5 opens every media
  // socket with SO_REUSEADDR (lib/socket.c open_socket), so it does not skip a port another daemon holds
  const portMin = options.portMin ?? 20000 + Math.floor(Math.random() * 60) * 200;
  const argv = [
    '--config-file=none',
    '--table=-1',
    `--interface=${options.mediaAddress ?? '127.0.0.1'}`,
    `--listen-ng=127.0.0.1:${ngPort}`,
    `--listen-cli=127.0.0.1:${cliPort}`,
    '--foreground',
    '--log-stderr',
    '--log-level=6',
    `--port-min=${portMin}`,
    `--port-max=${portMin + 199}`,
    `--delete-delay=${options.deleteDelay ?? 0}`,
    ...(options.args ?? []),
  ];
  const log: string[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
    const proc = spawn(binary, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    live.add(proc);
    // always drain stderr: a full pipe would block rtpengine's logging thread
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      log.push(...chunk.split('\n').filter((l) => l !== ''));
      if (log.length > 200) log.splice(0, log.length - 200);
    });
    let exitCode: number | null | undefined;
    exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
      live.delete(proc);
      exitCode = code ?? (signal ? -1 : null);
      resolve();
    }));
    const client = new NgClient({ host: '127.0.0.1', port: ngPort, timeoutMs: 500, retransmitMs: 100 });
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    try {
      for (;;) {
        if (exitCode !== undefined) throw new Error(`rtpengine exited at start (${exitCode}): ${log.slice(-10).join(' | ')}`);
        try {
          const reply = await client.command({ command: 'ping' });
          if (reply.result === 'pong') return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) {
          proc.kill('SIGKILL');
          throw new Error(`rtpengine did not answer ping within ${STARTUP_TIMEOUT_MS} ms: ${log.slice(-10).join(' | ')}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      client.close();
    }
  };

  const sessions = async (): Promise<RtpengineSession[]> => {
    const text = await cli(cliPort, 'list sessions all');
    const out: RtpengineSession[] = [];
    for (const line of text.split('\n')) {
      const m = /^callid:\s*(.*?)\s*\|\s*deletionmark:\s*(\S+)/.exec(line);
      if (m) out.push({ callId: m[1]!, deleted: m[2] === 'yes' });
    }
    return out;
  };

  await launch();
  return {
    ng: `udp:127.0.0.1:${ngPort}`,
    ngPort,
    cliPort,
    argv: [binary, ...argv],
    async stop() {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
    kill() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    async restart() {
      await exited;
      await launch();
    },
    async listSessions(opts = {}) {
      return (await sessions()).filter((s) => opts.includeDeleted === true || !s.deleted).map((s) => s.callId);
    },
    sessions,
    logTail: () => log.slice(-30).join('\n'),
  };
}

/** One rtpengine CLI command (what `rtpengine-ctl` does): a line over TCP, the answer until close. */
function cli(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${command}\n`));
    let text = '';
    socket.setEncoding('utf8');
    socket.setTimeout(3000, () => socket.destroy(new Error(`rtpengine CLI "${command}" timed out`)));
    socket.on('data', (d: string) => (text += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}
