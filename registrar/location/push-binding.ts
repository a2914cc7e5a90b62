/**
 * RFC 8599 push bindings: which contacts carry push data, which bindings are asleep, and when two
 * bindings are the same device. One place, so that a binding made by a REGISTER, loaded from persistence
 * or replicated from another worker reads its push data the same way (from its contact URI).
 */
import { type PushParams, type PushProvider, type Uri, parsePushParams, uriEquals } from '../../src/sip/index.js';
import type { Binding } from '../types.js';

/**
 * The push data of a contact URI when its provider is one of `served`; undefined otherwise: a device
 * naming a provider we have no client for registers as an ordinary binding (RFC 8599 §5.3: the registrar
 * then does not claim push support), which its connection closing ends as before.
 */
export function pushParamsOf(uri: Uri, served: ReadonlySet<PushProvider>): PushParams | undefined {
  const push = parsePushParams(uri);
  return push !== undefined && served.has(push.provider) ? push : undefined;
}

/**
 * Whether a binding can only be reached by waking its device with a push: a push binding whose
 * connection closed (no flow), or one registered over UDP, where nothing tells us the app still runs
 * (RFC 8599 §5.6: the proxy pushes, then waits for the refresh REGISTER).
 */
export function isAsleep(binding: Binding): boolean {
  return binding.push !== undefined && (binding.flow === undefined || binding.flow.protocol === 'udp');
}

/**
 * Whether two push data name the same device: its token at the same provider. A woken UA may register
 * with a new contact URI (RFC 8599 §5.6); its push parameters still say which binding it refreshes.
 */
export function isSamePushDevice(a: PushParams | undefined, b: PushParams | undefined): boolean {
  return a !== undefined && b !== undefined && a.provider === b.provider && a.prid === b.prid;
}

/**
 * Whether `after` is the device of `before` registered again, by the rule a REGISTER refresh follows
 * (registrar.ts): the same AoR and the same RFC 5626 instance and reg-id (an outbound registration) or the
 * same contact, else the same push token. The push call server waits on it for a woken device.
 */
export function isSameDevice(before: Binding, after: Binding): boolean {
  if (before.aor !== after.aor) return false;
  const outbound = after.instanceId !== undefined && after.regId !== undefined;
  const same = outbound ? before.instanceId === after.instanceId && before.regId === after.regId : uriEquals(before.contact.uri, after.contact.uri);
  return same || isSamePushDevice(before.push, after.push);
}
