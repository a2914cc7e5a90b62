/**
 * The push call server (RFC 8599): provider clients (APNs over HTTP/2, FCM HTTP v1, Web Push) and the
 * service that wakes sleeping devices for calls (push-service.ts). The registrar keeps the push bindings;
 * the routing policy holds the INVITE while a device wakes.
 */
export { PushService, type PushServiceOptions, type PushStats, type WakeCall } from './push-service.js';
export { createPushProviders, type PushProvidersOptions } from './providers.js';
export { ApnsClient, type ApnsOptions } from './apns.js';
export { FcmClient, type FcmOptions } from './fcm.js';
export { WebPushClient, type WebPushOptions, type VapidKeys, loadVapidKeys, encodeSubscription, decodeSubscription } from './webpush.js';
export { shortToken } from './delivery.js';
export type { PushKind, PushPayload, PushProviderClient, PushResult } from './types.js';
