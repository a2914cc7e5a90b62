/**
 * The mid-registrar (OpenSIPS mid_registrar modes in front of a FreeSWITCH pool). `createMidRegistrar`
 * builds it over the local Registrar's authenticator and location service, so the device bindings it
 * stores are the ones `registrar.lookup` / `lookupByContact` route to.
 */
import type { Registrar } from '../registrar.js';
import { MidRegistrar, type MidRegistrarInit } from './mid-registrar.js';

export { MidRegistrar, type MidRegistrarInit } from './mid-registrar.js';
export type * from './types.js';

export interface MidRegistrarDeps extends Omit<MidRegistrarInit, 'authenticator' | 'locations'> {
  /** The local Registrar whose authenticator and location service the mid-registrar shares. */
  registrar: Pick<Registrar, 'authenticator' | 'locations'>;
}

export function createMidRegistrar(deps: MidRegistrarDeps): MidRegistrar {
  const { registrar, ...rest } = deps;
  return new MidRegistrar({ ...rest, authenticator: registrar.authenticator, locations: registrar.locations });
}
