/**
 * Assembles a softswitch from a validated configuration: transports, the stack, and the modules on top.
 * `softswitch start` and the end-to-end tests both build the server through here.
 */
import { resolve } from 'node:path';
import type { Config } from './config/index.js';
import { DefaultUser, Stack } from './core/index.js';
import type { Logger } from './log/index.js';
import { TransportLayer, loadOrCreateCertificate } from './transport/index.js';

export interface Softswitch {
  readonly stack: Stack;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function createSoftswitch(config: Config, logger: Logger): Promise<Softswitch> {
  const needsTls = config.sip.listen.some((l) => l.protocol === 'tls' || l.protocol === 'wss');
  const tls = needsTls
    ? await loadOrCreateCertificate({
        certFile: config.tls.cert,
        keyFile: config.tls.key,
        dataDir: resolve(config.dataDir),
        hostnames: [...config.sip.domain, ...(config.sip.advertise ? [config.sip.advertise] : [])],
        logger,
      })
    : undefined;
  const stack = new Stack({
    logger,
    advertise: config.sip.advertise,
    maxMessageSize: config.sip.maxMessageSize,
    serverHeader: config.sip.serverHeader,
    createTransport: (user) =>
      new TransportLayer({
        listen: config.sip.listen,
        user,
        logger,
        tls: tls && { cert: tls.cert, key: tls.key },
        maxMessageSize: config.sip.maxMessageSize,
        maxConnections: config.sip.maxConnections,
        idleTimeoutMs: config.sip.idleTimeout * 1000,
      }),
  });
  stack.setUser(new DefaultUser(stack, logger));
  let started = false;
  return {
    stack,
    async start() {
      await stack.start();
      started = true;
    },
    async stop() {
      if (!started) return;
      started = false;
      await stack.stop();
    },
  };
}
