/**
 * A local Web Push service (RFC 8030) with browser subscriptions made for it: an HTTPS server on 127.0.0.1
 * that checks the VAPID `Authorization: vapid t=…, k=…` (RFC 8292: the JWT's ES256 signature with the key
 * in `k`, which must be the server's VAPID public key, `aud` the push service's origin, `exp` within 24 h,
 * `sub`), and decrypts each payload (RFC 8291, aes128gcm) with the subscription's private key through the
 * `http_ece` package, proving the encryption is real. Accepted pushes are answered 201 with a Location,
 * recorded with their decrypted payload and emitted as 'push' events; per-subscription rules answer 404,
 * 410, 429 or 500 instead.
 */
import { EventEmitter } from 'node:events';
import { type ECDH, createECDH, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import ece from 'http_ece';
import { type FakeRule, type RuledPush, checkJwt, loopbackCertificate, takeRule } from '../../support/fake-push-common.js';

export interface BrowserSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface WebPushDelivery {
  /** The subscription's id (the last path segment of its endpoint). */
  id: string;
  headers: IncomingHttpHeaders;
  /** The decrypted payload. */
  payload: string;
}

export interface FakeWebPush extends EventEmitter {
  readonly url: string;
  readonly ca: string;
  readonly pushes: WebPushDelivery[];
  /** Pushes answered by a rule (`token`: the subscription's id; emitted as 'ruled' events). */
  readonly ruled: RuledPush[];
  /** VAPID or decryption failures, with the reason. */
  readonly refusals: string[];
  /** A new browser subscription at this service (its keys stay here to decrypt what is pushed to it). */
  subscribe(): BrowserSubscription;
  rule(subscription: BrowserSubscription, rule: FakeRule): void;
  close(): Promise<void>;
}

/**
 * Starts the service; `vapidPublicKey` is the key every push must be signed with (the softswitch's,
 * base64url uncompressed point), or undefined to accept any key that verifies its own JWT.
 */
export async function startFakeWebPush(options: { vapidPublicKey?: string } = {}): Promise<FakeWebPush> {
  const certificate = await loopbackCertificate('fake Web Push');
  const server = createServer({ cert: certificate.cert, key: certificate.key });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return new WebPushServer(server, `https://127.0.0.1:${(server.address() as { port: number }).port}`, certificate.cert, options.vapidPublicKey);
}

class WebPushServer extends EventEmitter implements FakeWebPush {
  readonly pushes: WebPushDelivery[] = [];
  readonly refusals: string[] = [];
  readonly ruled: RuledPush[] = [];
  private readonly receivers = new Map<string, { ecdh: ECDH; auth: string }>();
  private readonly rules = new Map<string, FakeRule>();

  constructor(
    private readonly server: Server,
    readonly url: string,
    readonly ca: string,
    private readonly vapidPublicKey: string | undefined,
  ) {
    super();
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => this.answer(req, res, Buffer.concat(chunks)));
    });
  }

  subscribe(): BrowserSubscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const id = randomUUID();
    const auth = randomBytes(16).toString('base64url');
    this.receivers.set(id, { ecdh, auth });
    return { endpoint: `${this.url}/push/${id}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth } };
  }

  rule(subscription: BrowserSubscription, rule: FakeRule): void {
    this.rules.set(subscription.endpoint.slice(subscription.endpoint.lastIndexOf('/') + 1), rule);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const reply = (status: number, text = '', headers: Record<string, string> = {}): void => {
      res.writeHead(status, headers);
      res.end(text);
    };
    const refuse = (status: number, reason: string): void => {
      this.refusals.push(reason);
      reply(status, reason);
    };
    const id = /^\/push\/([^/]+)$/.exec(req.url ?? '')?.[1];
    const receiver = id === undefined ? undefined : this.receivers.get(id);
    if (req.method !== 'POST' || id === undefined || receiver === undefined) return reply(404, 'no such subscription');
    const vapidProblem = this.checkVapid(req.headers.authorization);
    if (vapidProblem !== undefined) return refuse(401, vapidProblem);
    if (!/^\d+$/.test(String(req.headers.ttl))) return refuse(400, 'TTL header missing');
    if (req.headers['content-encoding'] !== 'aes128gcm') return refuse(415, 'content-encoding must be aes128gcm');

    const rule = takeRule(this.rules, id);
    if (rule !== undefined) {
      const ruled: RuledPush = { token: id, status: rule.status, reason: rule.reason ?? (rule.status === 410 ? 'push subscription has unsubscribed or expired' : '') };
      this.ruled.push(ruled);
      this.emit('ruled', ruled);
      return reply(rule.status, ruled.reason);
    }
    let payload: string;
    try {
      payload = ece.decrypt(body, { version: 'aes128gcm', privateKey: receiver.ecdh, authSecret: receiver.auth }).toString('utf8');
    } catch (err) {
      return refuse(400, `payload does not decrypt: ${(err as Error).message}`);
    }
    const delivery: WebPushDelivery = { id, headers: req.headers, payload };
    this.pushes.push(delivery);
    reply(201, '', { location: `${this.url}/message/${randomUUID()}` });
    this.emit('push', delivery);
  }

  /** RFC 8292 §3: why the VAPID authorization is refused, or undefined. */
  private checkVapid(authorization: string | undefined): string | undefined {
    const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization ?? '');
    if (m === null) return 'no vapid authorization';
    const [, jwt, k] = m as unknown as [string, string, string];
    if (this.vapidPublicKey !== undefined && k !== this.vapidPublicKey) return 'k is not the server\'s VAPID key';
    const point = Buffer.from(k, 'base64url');
    if (point.length !== 65 || point[0] !== 4) return 'k is not an uncompressed P-256 point';
    const key = createPublicKey({ format: 'jwk', key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') } });
    const checked = checkJwt(jwt, 'ES256', key);
    if ('refused' in checked) return `vapid JWT: ${checked.refused}`;
    const { aud, exp, sub } = checked.claims;
    const now = Date.now() / 1000;
    if (aud !== this.url) return `aud ${String(aud)} is not ${this.url}`;
    if (typeof exp !== 'number' || exp <= now || exp > now + 86_400) return 'exp missing, past, or more than 24 h ahead';
    if (typeof sub !== 'string' || !/^(mailto:|https:)/.test(sub)) return 'sub must be mailto: or https:';
    return undefined;
  }
}
