/**
 * RFC 8599 (Push Notification with SIP) contact URI parameters: a REGISTER whose Contact URI carries
 * `pn-provider`, `pn-prid` (the device's token at the provider) and optionally `pn-param` (e.g. the iOS
 * app's topic) and `pn-purr` (the registrar's reference for the binding) asks to be woken by a push.
 */
import { SipUri, type Uri } from './uri.js';

/** The push services this project speaks (RFC 8599 §10.2 registers apns, fcm, webpush). */
export const PUSH_PROVIDERS = ['apns', 'fcm', 'webpush'] as const;
export type PushProvider = (typeof PUSH_PROVIDERS)[number];

export interface PushParams {
  provider: PushProvider;
  /** pn-prid: the device's registration token (APNs device token, FCM token, Web Push subscription). */
  prid: string;
  /** pn-param: provider-specific (APNs: `<team>.<bundle>.voip` style topic; FCM: the project id). */
  param?: string | undefined;
  /** pn-purr: the registrar's own reference to the binding, when it gave one. */
  purr?: string | undefined;
}

/**
 * The push parameters of a contact URI, or undefined when it has none, names a provider this project does
 * not speak, or lacks `pn-prid` (RFC 8599 §4.1.1: pn-prid is required with pn-provider for these providers).
 * URI parameter values are %-decoded (`pn-prid` of Web Push carries base64url, which needs none).
 */
export function parsePushParams(uri: Uri): PushParams | undefined {
  if (!(uri instanceof SipUri)) return undefined;
  const provider = text(uri.getParam('pn-provider'))?.toLowerCase();
  const prid = text(uri.getParam('pn-prid'));
  if (provider === undefined || prid === undefined || !(PUSH_PROVIDERS as readonly string[]).includes(provider)) return undefined;
  return { provider: provider as PushProvider, prid, param: text(uri.getParam('pn-param')), purr: text(uri.getParam('pn-purr')) };
}

function text(v: string | null | undefined): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}
