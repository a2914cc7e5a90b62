/**
 * The part of the `web-push` package (3.6, plain JavaScript without types) that push/webpush.ts uses.
 */
declare module 'web-push' {
  import type { Agent } from 'node:https';

  export interface PushSubscription {
    endpoint: string;
    keys: { p256dh: string; auth: string };
  }
  export interface RequestOptions {
    vapidDetails: { subject: string; publicKey: string; privateKey: string };
    /** Seconds the push service keeps an undelivered push. */
    TTL?: number;
    urgency?: 'very-low' | 'low' | 'normal' | 'high';
    /** RFC 8030 §5.4: a new push with the same topic replaces an undelivered one. */
    topic?: string;
    agent?: Agent;
    timeout?: number;
  }
  export interface SendResult {
    statusCode: number;
    body: string;
    headers: Record<string, string | string[] | undefined>;
  }
  export class WebPushError extends Error {
    statusCode: number;
    body: string;
    headers: Record<string, string | string[] | undefined>;
    endpoint: string;
  }
  export function generateVAPIDKeys(): { publicKey: string; privateKey: string };
  export function sendNotification(subscription: PushSubscription, payload: string | Buffer, options: RequestOptions): Promise<SendResult>;
  const webpush: {
    WebPushError: typeof WebPushError;
    generateVAPIDKeys: typeof generateVAPIDKeys;
    sendNotification: typeof sendNotification;
  };
  export default webpush;
}
