/**
 * A local FCM: one HTTPS server on 127.0.0.1 with Google's OAuth2 token endpoint (`/token`: checks the
 * RS256 JWT grant against the service account's public key, its `aud` and scope, and issues access tokens
 * with `expires_in`) and the FCM HTTP v1 send endpoint (checks the bearer token, the project id and the
 * message shape a push call server must send: token, data-only with string values, android priority HIGH,
 * ttl "0s"). Per-token rules answer 404 UNREGISTERED, 429 or 500 as FCM does. Every accepted message is
 * recorded and emitted as a 'push' event. `writeServiceAccount` makes the JSON file that points at it.
 */
import { EventEmitter } from 'node:events';
import { type KeyObject, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import { join } from 'node:path';
import { type FakeRule, type RuledPush, checkJwt, loopbackCertificate, takeRule } from '../../support/fake-push-common.js';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

export interface FcmPush {
  token: string;
  data: Record<string, string>;
  android: Record<string, unknown>;
  accessToken: string;
}

export interface FakeFcm extends EventEmitter {
  /** `https://127.0.0.1:<port>`: the client's endpoint. */
  readonly url: string;
  readonly ca: string;
  readonly projectId: string;
  /** The service account (with its generated private key) whose token_uri is this server. */
  readonly serviceAccount: { type: string; project_id: string; private_key_id: string; private_key: string; client_email: string; token_uri: string };
  readonly pushes: FcmPush[];
  /** Messages answered by a rule (emitted as 'ruled' events). */
  readonly ruled: RuledPush[];
  /** Access tokens issued so far. */
  readonly grants: number;
  /** Life of the access tokens issued from now on, seconds (Google: 3599). */
  accessTokenLifetime: number;
  rule(token: string, rule: FakeRule): void;
  /** Every access token issued so far is refused with 401 from now on. */
  revokeAccessTokens(): void;
  /** Writes the service account JSON into `dir`, 0600; answers its path. */
  writeServiceAccount(dir: string): string;
  close(): Promise<void>;
}

export async function startFakeFcm(options: { projectId?: string } = {}): Promise<FakeFcm> {
  const certificate = await loopbackCertificate('fake FCM');
  const server = createServer({ cert: certificate.cert, key: certificate.key });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  return new FcmServer(server, url, certificate.cert, options.projectId ?? 'softswitch-test');
}

class FcmServer extends EventEmitter implements FakeFcm {
  readonly serviceAccount: FakeFcm['serviceAccount'];
  readonly pushes: FcmPush[] = [];
  readonly ruled: RuledPush[] = [];
  grants = 0;
  accessTokenLifetime = 3599;
  private readonly publicKey: KeyObject;
  private readonly rules = new Map<string, FakeRule>();
  /** Access token → expiry (ms since the epoch). */
  private readonly accessTokens = new Map<string, number>();

  constructor(
    private readonly server: Server,
    readonly url: string,
    readonly ca: string,
    readonly projectId: string,
  ) {
    super();
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.publicKey = publicKey;
    this.serviceAccount = {
      type: 'service_account',
      project_id: projectId,
      private_key_id: randomBytes(20).toString('hex'),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: `softswitch@${projectId}.iam.gserviceaccount.com`,
      token_uri: `${url}/token`,
    };
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => this.answer(req, res, body));
    });
  }

  rule(token: string, rule: FakeRule): void {
    this.rules.set(token, rule);
  }

  revokeAccessTokens(): void {
    this.accessTokens.clear();
  }

  writeServiceAccount(dir: string): string {
    const path = join(dir, 'service-account.json');
    writeFileSync(path, JSON.stringify(this.serviceAccount, null, 2), { mode: 0o600 });
    return path;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, res: ServerResponse, body: string): void {
    const reply = (status: number, json: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(json));
    };
    if (req.method === 'POST' && req.url === '/token') return this.token(body, reply);
    const send = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url ?? '');
    if (req.method !== 'POST' || send === null) return reply(404, fcmError(404, 'NOT_FOUND'));

    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const expiry = bearer === undefined ? undefined : this.accessTokens.get(bearer);
    if (expiry === undefined || expiry <= Date.now()) return reply(401, fcmError(401, 'UNAUTHENTICATED'));
    if (decodeURIComponent(send[1]!) !== this.projectId) return reply(403, fcmError(403, 'PERMISSION_DENIED', 'SENDER_ID_MISMATCH'));
    const problem = messageProblem(body);
    if (typeof problem === 'string') return reply(400, fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', problem));

    const rule = takeRule(this.rules, problem.token);
    if (rule !== undefined) {
      const code = rule.status === 404 ? 'UNREGISTERED' : rule.status === 429 ? 'QUOTA_EXCEEDED' : 'INTERNAL';
      const ruled: RuledPush = { token: problem.token, status: rule.status, reason: rule.reason ?? code };
      this.ruled.push(ruled);
      this.emit('ruled', ruled);
      return reply(rule.status, fcmError(rule.status, rule.status === 404 ? 'NOT_FOUND' : rule.status === 429 ? 'RESOURCE_EXHAUSTED' : 'INTERNAL', rule.reason ?? code));
    }
    const push: FcmPush = { ...problem, accessToken: bearer! };
    this.pushes.push(push);
    reply(200, { name: `projects/${this.projectId}/messages/${randomUUID()}` });
    this.emit('push', push);
  }

  /** The token endpoint: RFC 7523 JWT bearer grant. */
  private token(body: string, reply: (status: number, json: unknown) => void): void {
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return reply(400, { error: 'unsupported_grant_type' });
    const checked = checkJwt(form.get('assertion') ?? '', 'RS256', this.publicKey);
    if ('refused' in checked) return reply(400, { error: 'invalid_grant', error_description: checked.refused });
    const { iss, aud, scope, iat, exp } = checked.claims;
    const now = Date.now() / 1000;
    if (iss !== this.serviceAccount.client_email || aud !== this.serviceAccount.token_uri) return reply(400, { error: 'invalid_grant', error_description: 'iss or aud' });
    if (scope !== FCM_SCOPE) return reply(400, { error: 'invalid_scope' });
    if (typeof iat !== 'number' || typeof exp !== 'number' || iat > now + 60 || exp <= now || exp - iat > 3600) return reply(400, { error: 'invalid_grant', error_description: 'iat/exp' });
    const accessToken = `ya29.${randomBytes(24).toString('base64url')}`;
    this.accessTokens.set(accessToken, Date.now() + this.accessTokenLifetime * 1000);
    this.grants++;
    reply(200, { access_token: accessToken, expires_in: this.accessTokenLifetime, token_type: 'Bearer' });
  }
}

/** The message FCM was given, or why it refuses it. */
function messageProblem(body: string): Omit<FcmPush, 'accessToken'> | string {
  let json: { message?: Record<string, unknown> };
  try {
    json = JSON.parse(body) as typeof json;
  } catch {
    return 'body is not JSON';
  }
  const m = json.message;
  if (m === undefined || typeof m.token !== 'string' || m.token === '') return 'message.token missing';
  if (m.notification !== undefined) return 'a call push must be data-only (message.notification set)';
  const data = m.data as Record<string, unknown> | undefined;
  if (data === undefined || Object.values(data).some((v) => typeof v !== 'string')) return 'message.data values must be strings';
  const android = m.android as Record<string, unknown> | undefined;
  if (android?.priority !== 'HIGH') return 'message.android.priority must be HIGH';
  if (android.ttl !== '0s') return 'message.android.ttl must be "0s"';
  return { token: m.token, data: data as Record<string, string>, android };
}

function fcmError(code: number, status: string, errorCode?: string, message = status): unknown {
  return {
    error: {
      code,
      message,
      status,
      details: errorCode === undefined ? [] : [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }],
    },
  };
}
