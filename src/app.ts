/**
 * Assembles a softswitch from a validated configuration: transports, the stack, and the modules on top.
 * `softswitch start` and the end-to-end tests both build the server through here.
 */
import { resolve } from 'node:path';
import type { Config } from './config/index.js';
import { Stack } from './core/index.js';
import type { Logger } from './log/index.js';
import { type SqlStore, openStore } from './store/index.js';
import { TransportLayer, loadOrCreateCertificate } from './transport/index.js';
import { HttpServer } from './http/index.js';
import { type Registrar, type CredentialSource, CachedCredentialSource, createRegistrar } from '../registrar/index.js';
import { MediaHook, ProxyCore, Router } from '../proxy/index.js';
import { createMediaGateway } from '../media/index.js';

export interface Softswitch {
  readonly stack: Stack;
  readonly store: SqlStore;
  readonly registrar: Registrar;
  readonly http: HttpServer;
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
  const store = await openStore({ url: config.store.url, logger });
  // The registrar and the router see subscribers only through this narrow interface.
  const subscribers: CredentialSource = new CachedCredentialSource({
    async getCredentials(username, domain) {
      const s = await store.subscribers.get(username, domain);
      return s && { ha1Md5: s.ha1Md5, ha1Sha256: s.ha1Sha256, enabled: s.enabled };
    },
  });
  const registrar = createRegistrar({
    stack,
    credentials: subscribers,
    persistence: store.locations,
    logger,
    options: { domains: config.sip.domain, authAlgorithms: config.auth.algorithms },
  });
  const gateway = createMediaGateway({ nodes: config.media.rtpengine, logger, alwaysRelay: config.media.alwaysRelay });
  const media = new MediaHook(gateway, logger);
  const proxy = new ProxyCore({ stack, logger, media });
  stack.setUser(new Router({ stack, proxy, recordRoute: proxy.recordRoute, registrar, subscribers, media, domains: config.sip.domain, logger }));
  const http = new HttpServer({
    listen: config.http.listen,
    logger,
    source: {
      health: () => ({
        ok: started,
        listeners: stack.listeners.map((l) => `${l.protocol}:${l.address}:${l.port}`),
        transactions: stack.transactions.stats,
        registrations: registrar.locations.count,
        rtpengine: gateway.stats().map((n) => ({ node: `${n.host}:${n.port}`, up: n.up, calls: n.calls })),
        messages: stack.stats,
      }),
    },
  });
  let started = false;
  return {
    stack,
    store,
    registrar,
    http,
    async start() {
      gateway.start();
      await registrar.start();
      await stack.start();
      await http.start();
      started = true;
    },
    async stop() {
      if (started) {
        started = false;
        await http.stop();
        await stack.stop();
        await registrar.stop();
        gateway.stop();
      }
      await store.close();
    },
  };
}
