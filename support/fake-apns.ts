/**
 * A local APNs: an HTTP/2 TLS server on 127.0.0.1 that checks what Apple checks of a token-authenticated
 * push (the ES256 provider token against the team's public key, its `kid`, `iss` and age, the device
 * token in the path, topic, push type, priority, expiration, the JSON body) and answers as Apple does:
 * 200 with `apns-id`, or an error status with `{"reason": …}`. Every accepted push is recorded and emitted
 * as a 'push' event; per-token rules answer 410, 400, 429 or 500 instead.
 */
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type KeyObject, generateKeyPairSync, randomUUID } from 'node:crypto';
import { type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream, createSecureServer } from 'node:http2';
import { type FakeRule, type RuledPush, checkJwt, loopbackCertificate, takeRule } from './fake-push-common.js';

export interface ApnsPush {
  token: string;
  headers: IncomingHttpHeaders;
  payload: Record<string, unknown>;
  /** The provider token it came with. */
  jwt: string;
}

export interface FakeApns extends EventEmitter {
  /** `https://127.0.0.1:<port>`: the client's endpoint. */
  readonly url: string;
  /** The server's certificate: the client's `ca`. */
  readonly ca: string;
  /** The .p8 key (PKCS#8 PEM) the client signs with, and what goes with it. */
  readonly keyPem: string;
  readonly keyId: string;
  readonly teamId: string;
  readonly bundleId: string;
  readonly pushes: ApnsPush[];
  /** Pushes answered by a rule (emitted as 'ruled' events). */
  readonly ruled: RuledPush[];
  /** Every provider token refused, with Apple's reason. */
  readonly refusals: string[];
  /** HTTP/2 connections opened so far. */
  readonly connections: number;
  /** HTTP/2 PING frames received (the client's keep-alive). */
  readonly pings: number;
  /** Answers pushes to `token` by this rule (410 `Unregistered`, 400 `BadDeviceToken`, 429, 500…). */
  rule(token: string, rule: FakeRule): void;
  /** Every provider token seen so far is now refused with 403 `ExpiredProviderToken`. */
  expireProviderTokens(): void;
  /** Closes every open connection, as Apple does after an idle hour or a deploy. */
  dropConnections(): void;
  close(): Promise<void>;
}

/** The `push` configuration section that points the server at this APNs (the same for every server it pushes for). */
export interface ApnsPushConfig {
  caFile: string;
  apns: { keyFile: string; keyId: string; teamId: string; bundleId: string; endpoint: string };
}

/**
 * Writes what an operator is given for this APNs into `dir` — its .p8 key (0600, as a secret) and the
 * certificate to trust (push.caFile) — and returns the `push` section naming them.
 */
export function apnsPushConfig(fake: FakeApns, dir: string): ApnsPushConfig {
  const keyFile = join(dir, 'AuthKey.p8');
  const caFile = join(dir, 'apns-ca.pem');
  writeFileSync(keyFile, fake.keyPem, { mode: 0o600 });
  writeFileSync(caFile, fake.ca);
  return { caFile, apns: { keyFile, keyId: fake.keyId, teamId: fake.teamId, bundleId: fake.bundleId, endpoint: fake.url } };
}

/** A 64-hex-digit device token, as an iOS device gets from APNs. */
export function apnsDeviceToken(): string {
  return randomUUID().replace(/-/g, '') + randomUUID().replace(/-/g, '');
}

export async function startFakeApns(options: { teamId?: string; keyId?: string; bundleId?: string } = {}): Promise<FakeApns> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certificate = await loopbackCertificate('fake APNs');
  const server = createSecureServer({ cert: certificate.cert, key: certificate.key });
  const fake = new ApnsServer(server, publicKey, {
    teamId: options.teamId ?? 'TEAM123456',
    keyId: options.keyId ?? 'KEY1234567',
    bundleId: options.bundleId ?? 'com.example.phone',
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    ca: certificate.cert,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  return fake;
}

const MAX_TOKEN_AGE_S = 3600;

class ApnsServer extends EventEmitter implements FakeApns {
  url = '';
  readonly ca: string;
  readonly keyPem: string;
  readonly keyId: string;
  readonly teamId: string;
  readonly bundleId: string;
  readonly pushes: ApnsPush[] = [];
  readonly refusals: string[] = [];
  readonly ruled: RuledPush[] = [];
  connections = 0;
  pings = 0;
  private readonly rules = new Map<string, FakeRule>();
  private readonly seenJwts = new Set<string>();
  private readonly expiredJwts = new Set<string>();
  private readonly sessions = new Set<ServerHttp2Session>();

  constructor(
    private readonly server: Http2SecureServer,
    private readonly publicKey: KeyObject,
    identity: { teamId: string; keyId: string; bundleId: string; keyPem: string; ca: string },
  ) {
    super();
    ({ teamId: this.teamId, keyId: this.keyId, bundleId: this.bundleId, keyPem: this.keyPem, ca: this.ca } = identity);
    server.on('session', (session) => {
      this.connections++;
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('ping', () => this.pings++);
    });
    server.on('stream', (stream, headers) => {
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => this.answer(stream, headers, body));
    });
  }

  rule(token: string, rule: FakeRule): void {
    this.rules.set(token, rule);
  }

  expireProviderTokens(): void {
    for (const jwt of this.seenJwts) this.expiredJwts.add(jwt);
  }

  dropConnections(): void {
    for (const session of this.sessions) session.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: string): void {
    const refuse = (status: number, reason: string, extra: Record<string, unknown> = {}): void => {
      stream.respond({ ':status': status, 'apns-id': randomUUID(), 'content-type': 'application/json' });
      stream.end(JSON.stringify({ reason, ...extra }));
    };
    const path = /^\/3\/device\/([^/]+)$/.exec(String(headers[':path']));
    if (headers[':method'] !== 'POST') return refuse(405, 'MethodNotAllowed');
    if (path === null) return refuse(404, 'BadPath');
    const token = decodeURIComponent(path[1]!);

    const auth = /^bearer (.+)$/.exec(String(headers.authorization ?? ''));
    if (auth === null) return refuse(403, 'MissingProviderToken');
    const jwt = auth[1]!;
    const providerTokenProblem = this.checkProviderToken(jwt);
    if (providerTokenProblem !== undefined) {
      this.refusals.push(providerTokenProblem);
      return refuse(403, providerTokenProblem);
    }
    this.seenJwts.add(jwt);

    if (!/^[0-9a-f]{64}$/i.test(token)) return refuse(400, 'BadDeviceToken');
    const pushType = headers['apns-push-type'];
    if (pushType !== 'voip' && pushType !== 'alert') return refuse(400, 'InvalidPushType');
    if (headers['apns-topic'] !== (pushType === 'voip' ? `${this.bundleId}.voip` : this.bundleId)) return refuse(400, 'DeviceTokenNotForTopic');
    if (headers['apns-priority'] !== '10' && headers['apns-priority'] !== '5') return refuse(400, 'BadPriority');
    if (pushType === 'voip' && headers['apns-priority'] !== '10') return refuse(400, 'BadPriority');
    if (!/^\d+$/.test(String(headers['apns-expiration']))) return refuse(400, 'BadExpirationDate');
    if (body === '') return refuse(400, 'PayloadEmpty');
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return refuse(400, 'BadPayload');
    }
    const aps = payload.aps as Record<string, unknown> | undefined;
    if (aps === null || typeof aps !== 'object') return refuse(400, 'BadPayload');
    if (pushType === 'alert' && aps.alert === undefined) return refuse(400, 'BadPayload');

    const rule = takeRule(this.rules, token);
    if (rule !== undefined) {
      const reason = rule.reason ?? (rule.status === 429 ? 'TooManyRequests' : rule.status === 410 ? 'Unregistered' : 'InternalServerError');
      this.recordRuled({ token, status: rule.status, reason });
      return refuse(rule.status, reason, rule.status === 410 ? { timestamp: Date.now() } : {});
    }
    const push: ApnsPush = { token, headers, payload, jwt };
    this.pushes.push(push);
    const apnsId = randomUUID();
    stream.respond({ ':status': 200, 'apns-id': apnsId });
    stream.end();
    this.emit('push', push);
  }

  private recordRuled(ruled: RuledPush): void {
    this.ruled.push(ruled);
    this.emit('ruled', ruled);
  }

  /** Apple's reason for refusing the provider token, or undefined when it is good. */
  private checkProviderToken(jwt: string): string | undefined {
    if (this.expiredJwts.has(jwt)) return 'ExpiredProviderToken';
    const checked = checkJwt(jwt, 'ES256', this.publicKey);
    if ('refused' in checked) return 'InvalidProviderToken';
    if (checked.header.kid !== this.keyId || checked.claims.iss !== this.teamId) return 'InvalidProviderToken';
    const iat = checked.claims.iat;
    const now = Date.now() / 1000;
    if (typeof iat !== 'number' || iat > now + 60) return 'InvalidProviderToken';
    if (now - iat > MAX_TOKEN_AGE_S) return 'ExpiredProviderToken';
    return undefined;
  }
}
