/**
 * A real coturn for tests: Debian's `coturn` package run with the repo's production sample
 * (turn/turnserver.conf) as is, and only the per-run values on its command line (which coturn applies over the
 * file): loopback listening and relay addresses, free ports, a relay port range clear of the kernel's ephemeral
 * ports, the secret, the realm, a throw-away TLS certificate, its user database, pid file and log (stdout) in a
 * temp folder that stop() removes.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths.js';
import { supervise } from './daemon.js';
import { freePort, requireTool, run } from './tools.js';

export interface CoturnOptions {
  /** static-auth-secret (the TURN REST scheme's shared secret). */
  secret: string;
  /** More secrets coturn accepts (a rotation: softswitch's turn.previousSecrets); each is one more static-auth-secret. */
  previousSecrets?: string[];
  realm: string;
  /** The address it listens and relays on; default 127.0.0.1. */
  address?: string;
  /** The configuration file; default the repo's turn/turnserver.conf. */
  configFile?: string;
  /** Also relay from ::1, for IPv6 allocations (RFC 6156); the listener stays on 127.0.0.1. */
  ipv6Relay?: boolean;
  /** More command-line options. */
  args?: string[];
}

export interface CoturnHandle {
  /** The UDP/TCP listening port on `address`. */
  port: number;
  address: string;
  /** The command line it runs with (the secrets shown as `***`). */
  argv: string[];
  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited and its temp folder is gone. */
  stop(): Promise<void>;
  /** The last lines it logged, for failure messages. */
  logTail(): string;
}

const STARTUP_TIMEOUT_MS = 10_000;
export const RELAY_PORT_MIN = 61000;
export const RELAY_PORT_MAX = 65535;
export function coturnConfigPath(): string {
  return join(repoRoot, 'turn', 'turnserver.conf');
}

export async function startCoturn(options: CoturnOptions): Promise<CoturnHandle> {
  const binary = requireTool('turnserver', 'coturn');
  const openssl = requireTool('openssl', 'openssl');
  const dir = mkdtempSync(join(tmpdir(), 'softswitch-coturn-'));
  try {
    // the sample names a certificate under /etc/coturn: a fresh self-signed one stands in for it
    const cert = await run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { timeoutMs: 10_000 });
    if (cert.code !== 0) throw new Error(`openssl could not make a test certificate: ${cert.stderr}`);
    const address = options.address ?? '127.0.0.1';
    const port = await freePort();
    const tlsPort = await freePort();
    const argv = [
      '-c', options.configFile ?? coturnConfigPath(),
      '--listening-ip', address,
      '--relay-ip', address,
      ...(options.ipv6Relay === true ? ['--relay-ip', '::1'] : []),
      '--listening-port', String(port),
      // relay ports above Linux's ephemeral range (32768-60999), where freePort() finds the other tests' ports
      '--min-port', String(RELAY_PORT_MIN),
      '--max-port', String(RELAY_PORT_MAX),
      '--tls-listening-port', String(tlsPort),
      '--realm', options.realm,
      '--cert', join(dir, 'cert.pem'),
      '--pkey', join(dir, 'key.pem'),
      '--userdb', join(dir, 'turndb'),
      '--pidfile', join(dir, 'turnserver.pid'),
      '--log-file', 'stdout',
      ...(options.args ?? []),
    ];
    // the secrets last, so argv can be shown without them
    const secrets = [options.secret, ...(options.previousSecrets ?? [])].flatMap((s) => ['--static-auth-secret', s]);
    const proc = spawn(binary, [...argv, ...secrets], { stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = supervise(proc, 300);
    const { log, exited } = daemon;
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (!(await answersBinding(address, port))) {
      if (daemon.exitCode() !== undefined) throw new Error(`turnserver exited at start (${daemon.exitCode()}): ${log.slice(-15).join(' | ')}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`turnserver did not start within ${STARTUP_TIMEOUT_MS} ms: ${log.slice(-15).join(' | ')}`);
      }
    }
    let stopped: Promise<void> | undefined;
    return {
      port,
      address,
      argv: [binary, ...argv, ...secrets.map((s, i) => (i % 2 === 1 ? '***' : s))],
      stop() {
        stopped ??= (async () => {
          await daemon.terminate();
          rmSync(dir, { recursive: true, force: true });
        })();
        return stopped;
      },
      logTail: () => log.slice(-40).join('\n'),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Ready means answering a STUN Binding request (RFC 5389 §6: type 0x0001, no attributes) on the UDP port. */
function answersBinding(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0);
    request.writeUInt32BE(0x2112a442, 4);
    randomBytes(12).copy(request, 8);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 200);
    socket.on('error', () => done(false));
    socket.on('message', (buf) => {
      if (buf.length >= 20 && buf.subarray(8, 20).equals(request.subarray(8, 20))) done(true);
    });
    socket.send(request, port, address);
  });
}
