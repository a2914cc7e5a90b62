/**
 * A user's devices as chat delivery sees them: each registered binding is one device, named by a key that
 * stays the same across its re-registrations, so its place in the user's message stream (its cursor)
 * survives a new connection, a new Contact after a push wake-up, and a restart.
 */
import { createHash } from 'node:crypto';
import type { Binding } from '../registrar/index.js';
import type { Uri } from '../src/sip/index.js';
import { escapeUriUser } from '../src/sip/index.js';
import type { Destination } from '../src/transport/types.js';

/** What the composer gives delivery of the registrar, the push service and the proxy. */
export interface DeviceDirectory {
  /** The unexpired bindings of an AoR (`sip:user@domain`). */
  lookup(aor: string): Binding[];
  /** True for a push device without a live connection: only a push reaches it now (RFC 8599). */
  isAsleep(binding: Binding): boolean;
  /** Where a request for the binding goes: its Contact over its own connection (RFC 5626), its Path. */
  target(binding: Binding): { uri: Uri; destination: Destination; route?: string[] | undefined };
  /** Every binding added or refreshed with a live connection (RegistrarApi.onBinding); returns the unsubscribe. */
  onBinding(listener: (binding: Binding) => void): () => void;
  /** Wakes a sleeping device for a message (PushService.message); absent without push providers. */
  push?: ((binding: Binding, payload: { id: string; aor: string; from: string; body?: string | undefined }) => Promise<unknown>) | undefined;
}

const hash = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 22);

/**
 * The device a binding is: its RFC 5626 `+sip.instance` (the same across connections and Contacts), else its
 * RFC 8599 push token, else its Contact URI. Hashed where the text can be long (a Web Push subscription).
 */
export function deviceKey(binding: Binding): string {
  if (binding.instanceId !== undefined) return binding.instanceId.length <= 120 ? `i:${binding.instanceId}` : `i#${hash(binding.instanceId)}`;
  if (binding.push !== undefined) return `p:${binding.push.provider}:${hash(binding.push.prid)}`;
  return `c:${hash(binding.contactUri)}`;
}

/** `alice@example.com` → `sip:alice@example.com` (the registrar's AoR form: the user part escaped). */
export function aorOfUser(user: string): string {
  const at = user.lastIndexOf('@');
  return `sip:${escapeUriUser(user.slice(0, at))}@${user.slice(at + 1)}`;
}

/** `sip:alice@example.com` → `alice@example.com`. */
export function userOfAor(aor: string): string {
  return decodeURIComponent(aor.replace(/^sips?:/, ''));
}
