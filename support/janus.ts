/**
 * A real Janus for a test: Debian's `janus` run in the foreground with a config folder generated in a temp dir that
 * stop() removes. Only the videoroom plugin and the websockets transport load (the rest are disabled by file name, as
 * janus.jcfg's `disable` lists take them); the API and the Admin API listen on 127.0.0.1 at free ports; token_auth
 * with stored tokens (so tokens come from the Admin API); no STUN/TURN server, no event handlers, no loggers: Janus
 * reaches nothing beyond loopback.
 *
 * Media: Janus ignores loopback for ICE, so media tests run it in a network namespace with a veth pair to the peers'
 * namespace (support/janus-netns.ts): `netns` runs it under `ip netns exec`, `listenAddress` puts both APIs on
 * that namespace's end of the pair, `iceEnforceList` keeps ICE to that interface.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireTool } from './tools.js';
import { supervise } from './daemon.js';

export interface JanusServerOptions {
  /** token_auth with stored tokens; default true. */
  tokenAuth?: boolean;
  /** api_secret; default none. */
  apiSecret?: string;
  /** session_timeout in seconds; default 60 (Janus's). */
  sessionTimeoutSec?: number;
  /** debug_level 0-7; default 4 (Janus's: errors, warnings, info). */
  debugLevel?: number;
  /** Run Janus inside this network namespace (`ip netns exec NAME janus …`); default the test's own. */
  netns?: string;
  /** Where the API and the Admin API listen; default 127.0.0.1. In a namespace of its own, an address of that namespace. */
  listenAddress?: string;
  /** nat.ice_enforce_list: the only interfaces (or addresses) ICE gathers candidates on; default none (all but vmnet*). */
  iceEnforceList?: string;
  /** A folder for the videoroom's recordings (rec_dir), made inside the server's folder: JanusServer.recordingDir. */
  recordings?: boolean;
  /** How many RTP/RTCP ports Janus may use (one per bundled PeerConnection); default 20, a bench's rooms need more. */
  rtpPortCount?: number;
}

export interface JanusServer {
  /** ws:// URL of the Janus API (subprotocol janus-protocol). */
  url: string;
  /** ws:// URL of the Admin API (subprotocol janus-admin-protocol). */
  adminUrl: string;
  adminSecret: string;
  apiSecret: string | undefined;
  /** The RTP/RTCP port range Janus was given (rtp_port_range). */
  rtpPorts: { min: number; max: number };
  /** The folder holding the generated configs (and a place for recordings). */
  dir: string;
  /** With `recordings`: where rooms record to (the rooms' rec_dir, set by `edit`); the test reads it as Janus writes it. */
  recordingDir: string | undefined;
  pid: number;
  /** Sends a signal to Janus (SIGSTOP to freeze it, SIGKILL to kill it); resolves when a killing signal took it. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s; resolves when Janus has exited and its folder is gone. Safe to call twice. */
  stop(): Promise<void>;
  /** The last lines Janus logged, for failure messages. */
  logTail(lines?: number): string;
}

const STARTUP_TIMEOUT_MS = 15_000;
const RTP_PORTS = 20;
/** Where Debian installs Janus's modules: /usr/lib/<multiarch>/janus (or /usr/lib/janus elsewhere). */
function janusLibDir(): string {
  const candidates = [
    ...readdirSync('/usr/lib').map((name) => join('/usr/lib', name, 'janus')),
    '/usr/lib/janus',
    '/usr/local/lib/janus',
  ];
  const found = candidates.find((dir) => existsSync(join(dir, 'plugins', 'libjanus_videoroom.so')));
  if (found === undefined) throw new Error('janus is installed but its videoroom plugin (libjanus_videoroom.so) was not found under /usr/lib');
  return found;
}

/** The `.so` files of a module folder, but `keep`, as a `disable` list. */
function disableAllBut(folder: string, keep: string): string {
  const names = existsSync(folder) ? readdirSync(folder).filter((n) => n.endsWith('.so') && n !== keep) : [];
  return names.join(',');
}

const quote = (s: string): string => JSON.stringify(s); // jcfg (libconfig) strings take JSON's escapes

export async function startJanus(options: JanusServerOptions = {}): Promise<JanusServer> {
  const binary = requireTool('janus', 'janus');
  if (options.netns !== undefined) requireTool('ip', 'iproute2');
  const host = options.listenAddress ?? '127.0.0.1';
  const lib = janusLibDir();
  const dir = mkdtempSync(join(tmpdir(), 'softswitch-janus-'));
  try {
    const port = await freePort();
    const adminPort = await freePort();
    // a narrow range next to a free port keeps Janus off the wide default: a test's few PeerConnections bundle
    // everything on one port each
    const rtpMin = await freePort();
    const rtpPorts = { min: rtpMin, max: Math.min(65535, rtpMin + (options.rtpPortCount ?? RTP_PORTS) - 1) };
    const adminSecret = randomBytes(16).toString('hex');
    const apiSecret = options.apiSecret;
    const general = [
      `configs_folder = ${quote(dir)}`,
      `plugins_folder = ${quote(join(lib, 'plugins'))}`,
      `transports_folder = ${quote(join(lib, 'transports'))}`,
      `events_folder = ${quote(join(lib, 'events'))}`,
      `loggers_folder = ${quote(join(lib, 'loggers'))}`,
      `debug_level = ${options.debugLevel ?? 4}`,
      'debug_timestamps = true',
      'debug_colors = false',
      `admin_secret = ${quote(adminSecret)}`,
      `token_auth = ${options.tokenAuth === false ? 'false' : 'true'}`,
      ...(apiSecret !== undefined ? [`api_secret = ${quote(apiSecret)}`] : []),
      `session_timeout = ${options.sessionTimeoutSec ?? 60}`,
      'server_name = "softswitch-test"',
      'hide_dependencies = true',
    ];
    writeFileSync(join(dir, 'janus.jcfg'), [
      `general: {\n  ${general.join('\n  ')}\n}`,
      `media: {\n  rtp_port_range = "${rtpPorts.min}-${rtpPorts.max}"\n  no_media_timer = 1\n}`,
      // no stun_server/turn_server: Janus looks nothing up; it still gathers host candidates on the interfaces
      // no nat_1_1_mapping either: the candidates Janus offers are its interfaces' own addresses
      `nat: {\n  nice_debug = false\n  ${options.iceEnforceList !== undefined ? `ice_enforce_list = ${quote(options.iceEnforceList)}` : 'ice_ignore_list = "vmnet"'}\n  ignore_mdns = true\n}`,
      `plugins: {\n  disable = ${quote(disableAllBut(join(lib, 'plugins'), 'libjanus_videoroom.so'))}\n}`,
      `transports: {\n  disable = ${quote(disableAllBut(join(lib, 'transports'), 'libjanus_websockets.so'))}\n}`,
      `loggers: {\n  disable = ${quote(disableAllBut(join(lib, 'loggers'), ''))}\n}`,
      'events: {\n  broadcast = false\n}',
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'janus.transport.websockets.jcfg'), [
      `general: {\n  json = "plain"\n  ws = true\n  ws_ip = ${quote(host)}\n  ws_port = ${port}\n  wss = false\n}`,
      `admin: {\n  admin_ws = true\n  admin_ws_ip = ${quote(host)}\n  admin_ws_port = ${adminPort}\n  admin_wss = false\n}`,
      '',
    ].join('\n'));
    // no rooms from a config file: the rooms a test sees are the ones it created
    writeFileSync(join(dir, 'janus.plugin.videoroom.jcfg'), 'general: {\n}\n');
    // Janus (root under `ip netns exec`, or this user) writes there, the softswitch reads and deletes: one folder for both
    const recordingDir = options.recordings === true ? join(dir, 'recordings') : undefined;
    if (recordingDir !== undefined) mkdirSync(recordingDir);

    const argv = ['--config', join(dir, 'janus.jcfg'), '--configs-folder', dir, '--disable-colors'];
    // `ip netns exec` execs Janus in place: proc.pid is Janus's pid, signals reach Janus
    const proc = options.netns !== undefined
      ? spawn('ip', ['netns', 'exec', options.netns, binary, ...argv], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(binary, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = supervise(proc, 500);
    const { log, exited } = daemon;
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    // the test's own namespace cannot connect into another one: there, Janus's listening sockets are read from /proc
    const ready = (p: number): Promise<boolean> => (options.netns !== undefined ? Promise.resolve(listening(proc.pid!, p)) : accepts(p));
    while (!(await ready(port)) || !(await ready(adminPort))) {
      if (daemon.exitCode() !== undefined) throw new Error(`janus exited at start (${daemon.exitCode()}):\n${log.slice(-30).join('\n')}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`janus did not listen on ${port}/${adminPort} within ${STARTUP_TIMEOUT_MS} ms:\n${log.slice(-30).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    let stopped: Promise<void> | undefined;
    return {
      url: `ws://${host}:${port}`,
      adminUrl: `ws://${host}:${adminPort}`,
      adminSecret,
      apiSecret,
      rtpPorts,
      dir,
      recordingDir,
      pid: proc.pid!,
      async signal(signal) {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill(signal);
        if (signal === 'SIGKILL') await exited;
      },
      stop() {
        stopped ??= (async () => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGCONT'); // a test may have left it frozen
          await daemon.terminate();
          rmSync(dir, { recursive: true, force: true });
        })();
        return stopped;
      },
      logTail: (lines = 40) => log.slice(-lines).join('\n'),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** True when something accepts a TCP connection on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when process `pid`'s network namespace has a TCP socket listening on `port` (/proc/PID/net/tcp, state 0A). */
function listening(pid: number, port: number): boolean {
  let table: string;
  try {
    table = readFileSync(`/proc/${pid}/net/tcp`, 'utf8');
  } catch {
    return false; // not started or gone; the caller sees the exit
  }
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return table.split('\n').slice(1).some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1]?.endsWith(`:${hex}`) === true && fields[3] === '0A';
  });
}
