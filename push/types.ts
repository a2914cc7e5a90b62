/**
 * The push call server's types (RFC 8599): what a provider client (APNs, FCM, Web Push) is asked to send,
 * and what it answers. Types only.
 */
import type { PushParams, PushProvider } from '../src/sip/index.js';

/** What a push is about. The app shows an incoming call, stops ringing, or shows a new message. */
export type PushKind = 'call' | 'cancel' | 'message';

/** The payload of a push, the same for every provider (each wraps it in its own format). */
export interface PushPayload {
  kind: PushKind;
  /** The call (SIP Call-ID) or message id the push is about: the app matches the INVITE or the cancel to it. */
  id: string;
  /** The AoR the device is registered for (user@domain). */
  aor: string;
  /** The caller or sender, as a URI, and their display name when known. */
  from: string;
  fromName?: string | undefined;
  /** A message's text, only with `push.includeContent` (never logged). */
  body?: string | undefined;
}

/** How a provider answered one push. */
export interface PushResult {
  ok: boolean;
  /** The provider's HTTP status, 0 when it was not reached. */
  status: number;
  /** The provider's reason (`BadDeviceToken`, `Unregistered`, `UNREGISTERED`, …) or the local error. */
  reason?: string | undefined;
  /** The device's token is dead (APNs 410, FCM UNREGISTERED/404, Web Push 404/410): drop its push binding. */
  unregistered?: boolean;
  /** The provider's id of the push (`apns-id`), when it gives one. */
  id?: string | undefined;
}

/** One provider's client. `send` never rejects: every failure is a PushResult with ok false. */
export interface PushProviderClient {
  readonly provider: PushProvider;
  send(device: PushParams, payload: PushPayload): Promise<PushResult>;
  close(): Promise<void>;
}
