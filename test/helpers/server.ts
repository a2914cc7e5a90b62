import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Softswitch, type SoftswitchOptions, createSoftswitch } from '../../server/app.js';
import { validate } from '../../platform/config/index.js';
import { silentLogger, createLogger } from '../../src/log/index.js';
import type { ListenSpec, TransportProtocol } from '../../src/transport/types.js';

export interface TestServer {
  server: Softswitch;
  /** `host:port` of the listener for a protocol. */
  addr(protocol: TransportProtocol): string;
  listener(protocol: TransportProtocol): ListenSpec;
  dataDir: string;
  /** Provisions a subscriber, as `softswitch user add alice@example.com --password …` does. */
  addUser(address: string, password: string): Promise<void>;
  /** Stops the server and starts a new one on the same configuration and data folder (new ports). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts an in-process softswitch on 127.0.0.1 with kernel-chosen ports for every transport, a fresh
 * data folder, and the given configuration overrides. LOG=debug shows its logs.
 */
export async function startTestServer(raw: Record<string, unknown> = {}, options: SoftswitchOptions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'softswitch-test-'));
  const sip = (raw.sip as Record<string, unknown> | undefined) ?? {};
  const config = validate({
    ...raw,
    sip: {
      listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0', 'tls:127.0.0.1:0', 'ws:127.0.0.1:0', 'wss:127.0.0.1:0'],
      domain: ['example.com'],
      ...sip,
    },
    store: { url: `sqlite:${join(dataDir, 'softswitch.db')}`, ...((raw.store as object | undefined) ?? {}) },
    http: { listen: '127.0.0.1:0', ...((raw.http as object | undefined) ?? {}) },
    turn: { listen: '127.0.0.1:0', ...((raw.turn as object | undefined) ?? {}) },
    dataDir,
  });
  const logger = process.env.LOG ? createLogger({ level: process.env.LOG as 'debug' }) : silentLogger();
  let server = await createSoftswitch(config, logger, options);
  await server.start();
  const listener = (protocol: TransportProtocol): ListenSpec => {
    const l = server.stack.listeners.find((x) => x.protocol === protocol);
    if (l === undefined) throw new Error(`no ${protocol} listener`);
    return l;
  };
  return {
    get server() {
      return server;
    },
    dataDir,
    listener,
    addr: (protocol) => `${listener(protocol).address}:${listener(protocol).port}`,
    async addUser(address, password) {
      const at = address.lastIndexOf('@');
      await server.store.subscribers.add({ username: address.slice(0, at), domain: address.slice(at + 1), password });
    },
    async restart() {
      await server.stop();
      server = await createSoftswitch(config, logger, options);
      await server.start();
    },
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
