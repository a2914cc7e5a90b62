/**
 * The provider clients a node pushes through, built from the `push` configuration: APNs and FCM when their
 * credentials are configured, Web Push always (its VAPID keys are generated when none are configured).
 */
import type { Config } from '../platform/config/index.js';
import { categoryLogger, type Logger } from '../src/log/index.js';
import type { PushProvider } from '../src/sip/index.js';
import { ApnsClient } from './apns.js';
import type { TrustedCa } from './delivery.js';
import { FcmClient } from './fcm.js';
import type { PushProviderClient } from './types.js';
import { WebPushClient, loadVapidKeys } from './webpush.js';

export interface PushProvidersOptions {
  dataDir: string;
  logger: Logger;
  /** Trusts a certificate the system does not, for every provider (tests pointing at local fakes). */
  ca?: TrustedCa | undefined;
}

/**
 * One client per usable provider. A provider without credentials is absent, with one info line saying
 * how to enable it; a credential file that cannot be read or parsed stops the start (an error naming the
 * configuration key), as any other bad configuration value does.
 */
export function createPushProviders(config: Config['push'], opts: PushProvidersOptions): Map<PushProvider, PushProviderClient> {
  const log = categoryLogger(opts.logger, 'push');
  const clients = new Map<PushProvider, PushProviderClient>();
  const { apns, fcm, webpush } = config;

  if (apns.keyFile !== undefined && apns.keyId !== undefined && apns.teamId !== undefined && apns.bundleId !== undefined) {
    const { keyFile, keyId, teamId, bundleId, endpoint } = apns;
    clients.set('apns', explained('push.apns.keyFile', () => new ApnsClient({ keyFile, keyId, teamId, bundleId, endpoint, ca: opts.ca, logger: opts.logger })));
  } else {
    log.info('APNs pushes off: set push.apns.keyFile, keyId, teamId and bundleId (a .p8 auth key from the Apple developer account) to wake iOS apps');
  }

  if (fcm.serviceAccountFile !== undefined) {
    const { serviceAccountFile, endpoint } = fcm;
    clients.set('fcm', explained('push.fcm.serviceAccountFile', () => new FcmClient({ serviceAccountFile, endpoint, ca: opts.ca, logger: opts.logger })));
  } else {
    log.info('FCM pushes off: set push.fcm.serviceAccountFile (a Firebase service account key JSON) to wake Android apps');
  }

  const vapid = loadVapidKeys({ dataDir: opts.dataDir, publicKey: webpush.publicKey, privateKey: webpush.privateKey, subject: webpush.subject, logger: opts.logger });
  clients.set('webpush', new WebPushClient({ vapid, ca: opts.ca, logger: opts.logger }));
  return clients;
}

/** Builds a client; a failure names the configuration key whose file is at fault. */
function explained<T>(key: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw new Error(`configuration key ${key}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
