/**
 * The registrar module: digest authentication, the location service and the RFC 3261 §10.3 registrar.
 * `createRegistrar` wires them; the proxy calls `handle` for REGISTERs to our domains, `lookup` /
 * `lookupByContact` to route, `onFlowClosed` when a connection goes, and `authenticator` for its 407s;
 * the push call server (RFC 8599) asks `isAsleep` of a binding and waits on `onBinding` for woken devices.
 */
import type { Stack } from '../src/core/index.js';
import type { Logger } from '../src/log/index.js';
import { DigestAuthenticator } from './auth/digest-authenticator.js';
import { LocationService } from './location/location-service.js';
import { Registrar } from './registrar.js';
import { ServedDomains } from './served-domains.js';
import type { NonceLedger } from './auth/nonce-ledger.js';
import type { AuthFailureGuard, CredentialSource, LocationPersistence, RegistrarOptions } from './types.js';

export { DigestAuthenticator } from './auth/digest-authenticator.js';
export { CachedCredentialSource } from './auth/cached-credentials.js';
export { NonceLedger, type NonceIssuer, type RemoteNonceClaim } from './auth/nonce-ledger.js';
export { LocationService } from './location/location-service.js';
export { aorIn, aorOf } from './location/aor.js';
export { isAsleep, isSameDevice, isSamePushDevice, pushParamsOf } from './location/push-binding.js';
export { ServedDomains } from './served-domains.js';
export { Registrar, type RegistrarInit } from './registrar.js';
export type * from './types.js';
export {
  MidRegistrar, type MidRegistrarInit, type MidRegistrarDeps, createMidRegistrar,
  type MidRegistrarApi, type MidRegistrarMode, type MidRegistrarOptions, type MidRegistrarStats, type BackendPicker,
  type BackendTarget,
} from './mid/index.js';

export interface RegistrarDeps {
  stack: Stack;
  credentials: CredentialSource;
  /** Write-behind storage of the bindings (e.g. the SQL store's `locations` repository). */
  persistence?: LocationPersistence | undefined;
  logger: Logger;
  options: RegistrarOptions;
  /** Milliseconds since the epoch, for every expiry and nonce; default Date.now. */
  clock?: () => number;
  /** HMAC key of the digest nonces (≥ 16 bytes); random per process by default. Workers of a cluster share one. */
  nonceSecret?: Buffer;
  /** Used nonce-counts; a cluster worker passes one that reaches the other workers. */
  ledger?: NonceLedger;
  /** Password-guessing protection (security/AuthGuard), wired by the application. */
  guard?: AuthFailureGuard;
}

export function createRegistrar(deps: RegistrarDeps): Registrar {
  const { options, logger, clock } = deps;
  const domains = new ServedDomains(options.domains, (host) => deps.stack.isLocalHost(host));
  const authenticator = new DigestAuthenticator({
    credentials: deps.credentials,
    logger,
    algorithms: options.authAlgorithms,
    nonceTtlMs: options.nonceTtlMs,
    registerNonceTtlMs: options.registerNonceTtlMs,
    allowNoQop: options.allowNoQop,
    ledger: deps.ledger,
    guard: deps.guard,
    namesServer: (uri) => domains.namesServer(uri),
    secret: deps.nonceSecret,
    clock,
  });
  const locations = new LocationService({ persistence: deps.persistence, logger, clock, pushProviders: options.push?.providers });
  return new Registrar({ stack: deps.stack, authenticator, locations, logger, options, clock, domains });
}
