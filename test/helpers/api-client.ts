/**
 * The /v1 API of a whole softswitch as a client sees it, for the api-*.test.ts files: a started server
 * (test/helpers/server.ts: SQLite store, HTTP on 127.0.0.1:0), an admin token, users signed in with
 * `POST /v1/auth/token`, its OpenAPI document, and requests sent either through fastify's `inject` (the
 * HttpServer's instance, no socket) or over real HTTP to the bound port, answered the same way. `conforms`
 * checks an answer against what the document says of its operation: the status is one it documents, and
 * the body matches the schema documented for that status (JSON Schema 2020-12, ajv), or is empty where
 * the document has no content. Nothing here knows the shape of an error body: it is read from the document.
 */
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { ValidateFunction } from 'ajv';
import type { Binding } from '../../registrar/types.js';
import { parseNameAddrs } from '../../src/sip/index.js';
import { startTestServer, type TestServer } from './server.js';

export const API_DOMAIN = 'example.com';
/** http.tokenSecret of the server: a test can sign its own user tokens with it (an expired one). */
export const API_TOKEN_SECRET = 'the api tests signing key, long enough to be one';

export type Via = 'inject' | 'http';
export const VIAS: readonly Via[] = ['inject', 'http'];

export interface ApiRequest {
  method: string;
  /** From the root, `/v1/…`, with its query. */
  url: string;
  /** The bearer token; none when null or absent. */
  token?: string | null;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as it is, with this Content-Type. */
  raw?: { contentType: string; data: string | Buffer };
  /** More request headers (Range). */
  headers?: Record<string, string>;
  /** Over HTTP, how long the answer may take; default 10 s. */
  timeoutMs?: number;
}

export interface ApiAnswer {
  status: number;
  contentType: string;
  /** The WWW-Authenticate header ('' when none). */
  challenge: string;
  /** The body as received. */
  bytes: Buffer;
  /** The body parsed, when it is JSON; undefined when empty or not JSON. */
  json: unknown;
}

interface Operation {
  summary?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  responses: Record<string, { description?: string; content?: Record<string, { schema: object }> }>;
}

export interface ApiDocument {
  openapi: string;
  security?: Array<Record<string, string[]>>;
  paths: Record<string, Record<string, Operation>>;
}

/** `GET /v1/users/{user}`: how the tests name an operation of the document. */
export type OperationKey = string;

export interface ApiServer {
  t: TestServer;
  base: string;
  admin: string;
  doc: ApiDocument;
  /** The operations of the document, by key, in the document's order. */
  operations: Map<OperationKey, Operation>;
  /** A new access token of `username` (password `<name>-secret`). */
  signIn(username: string, password?: string): Promise<string>;
  send(via: Via, request: ApiRequest): Promise<ApiAnswer>;
  stop(): Promise<void>;
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);

/** Starts a softswitch with `users` of example.com (password `<name>-secret`) and reads its document. */
export async function startApiServer(users: readonly string[], raw: Record<string, unknown> = {}): Promise<ApiServer> {
  const t = await startTestServer({ ...raw, sip: { domain: [API_DOMAIN] }, http: { tokenSecret: API_TOKEN_SECRET } });
  try {
    const base = `http://127.0.0.1:${t.server.http.boundTo}`;
    const admin = (await t.server.store.tokens.create({ name: 'api-tests' })).token;
    for (const name of users) await t.addUser(`${name}@${API_DOMAIN}`, `${name}-secret`);

    const send = async (via: Via, request: ApiRequest): Promise<ApiAnswer> => {
      const headers: Record<string, string> = { ...request.headers };
      if (request.token !== undefined && request.token !== null) headers.authorization = `Bearer ${request.token}`;
      let payload: string | Buffer | undefined;
      if (request.json !== undefined) {
        headers['content-type'] = 'application/json';
        payload = JSON.stringify(request.json);
      } else if (request.raw !== undefined) {
        headers['content-type'] = request.raw.contentType;
        payload = request.raw.data;
      }
      let status: number;
      let contentType: string;
      let challenge: string;
      let bytes: Buffer;
      if (via === 'inject') {
        const res = await t.server.http.fastify.inject({ method: request.method as 'GET', url: request.url, headers, ...(payload === undefined ? {} : { payload }) });
        status = res.statusCode;
        contentType = String(res.headers['content-type'] ?? '');
        challenge = String(res.headers['www-authenticate'] ?? '');
        bytes = res.rawPayload;
      } else {
        const res = await fetch(`${base}${request.url}`, {
          method: request.method, headers, signal: AbortSignal.timeout(request.timeoutMs ?? 10_000), ...(payload === undefined ? {} : { body: payload }),
        });
        status = res.status;
        contentType = res.headers.get('content-type') ?? '';
        challenge = res.headers.get('www-authenticate') ?? '';
        bytes = Buffer.from(await res.arrayBuffer());
      }
      let json: unknown;
      if (bytes.length > 0 && /^application\/(.+\+)?json/.test(contentType)) json = JSON.parse(bytes.toString('utf8'));
      return { status, contentType, challenge, bytes, json };
    };

    const signIn = async (username: string, password = `${username}-secret`): Promise<string> => {
      const res = await send('http', { method: 'POST', url: '/v1/auth/token', json: { grant_type: 'password', username, password } });
      assert.equal(res.status, 200, `${username} signs in: ${res.bytes.toString()}`);
      return (res.json as { access_token: string }).access_token;
    };

    const docAnswer = await send('http', { method: 'GET', url: '/v1/openapi.json' });
    assert.equal(docAnswer.status, 200, 'GET /v1/openapi.json');
    const doc = docAnswer.json as ApiDocument;
    const operations = new Map<OperationKey, Operation>();
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) if (HTTP_METHODS.has(method)) operations.set(`${method.toUpperCase()} ${path}`, op);
    }
    return { t, base, admin, doc, operations, signIn, send, stop: () => t.stop() };
  } catch (err) {
    await t.stop();
    throw err;
  }
}

/** Who may call an operation: its own security, else the document's (OpenAPI 3.1 §4.8.10). */
export function securityOf(doc: ApiDocument, op: Operation): Array<Record<string, string[]>> {
  return op.security ?? doc.security ?? [];
}

// CommonJS modules: their class and function are `default` here.
const ajv = new Ajv2020.default({ strict: false, allErrors: true });
addFormats.default(ajv);
const compiled = new WeakMap<object, ValidateFunction>();

/**
 * Asserts that `answer` is one the document allows for `key`: a documented status, and a body that matches the
 * schema documented for it (JSON), is not empty (binary content), or is empty (no content). `what` names the request.
 */
export function conforms(server: ApiServer, key: OperationKey, answer: ApiAnswer, what: string): void {
  const op = server.operations.get(key);
  assert.ok(op !== undefined, `${key} is not in the document`);
  const body = answer.bytes.toString('utf8').slice(0, 500);
  const documented = op.responses[String(answer.status)];
  assert.ok(documented !== undefined, `${what} answered ${answer.status}, which ${key} does not document (${Object.keys(op.responses).join(', ')}): ${body}`);
  const content = documented.content;
  if (content === undefined) {
    assert.equal(answer.bytes.length, 0, `${what} answered ${answer.status} with a body, where ${key} documents none: ${body}`);
    return;
  }
  const json = content['application/json'];
  if (json === undefined) {
    // Binary content (a downloaded file): only that there is one.
    assert.ok(answer.bytes.length > 0, `${what} answered ${answer.status} without the content ${key} documents`);
    return;
  }
  assert.match(answer.contentType, /^application\/json/, `${what} answered ${answer.status} as ${answer.contentType}, documented as JSON: ${body}`);
  let validate = compiled.get(json.schema);
  if (validate === undefined) {
    validate = ajv.compile(json.schema);
    compiled.set(json.schema, validate);
  }
  assert.ok(validate(answer.json), `${what} → ${answer.status} ${body} does not match the schema ${key} documents for it: ${ajv.errorsText(validate.errors)}`);
}

/** Binds a phone of `user` (user@domain) at 192.0.2.9:`port` over WSS in the server's registrar, as a REGISTER would; its contact URI. */
export function addBinding(server: ApiServer, user: string, port: number): string {
  const aor = `sip:${user}`;
  const na = parseNameAddrs(`<sip:${user.slice(0, user.lastIndexOf('@'))}@192.0.2.9:${port};transport=ws>`, 'contact', true)[0]!;
  const now = Date.now();
  const binding: Binding = {
    aor, contact: na, contactUri: na.uri.toString(), expiresAt: now + 600_000, callId: `api-test-${port}`, cseq: 1,
    received: { protocol: 'wss', address: '192.0.2.9', port }, userAgent: 'api-test/1', updatedAt: now,
  };
  server.t.server.registrar.locations.update(aor, { add: [binding] });
  return binding.contactUri;
}

/** Records an ended call from `caller` to `callee` (user names of example.com) in the call history. */
export async function recordCall(server: ApiServer, id: string, caller: string, callee: string): Promise<void> {
  const now = Date.now();
  await server.t.server.store.calls.record({
    id, callId: `${id}@${API_DOMAIN}`,
    caller: { user: caller, domain: API_DOMAIN, uri: `sip:${caller}@${API_DOMAIN}` }, callee: { user: callee, domain: API_DOMAIN, uri: `sip:${callee}@${API_DOMAIN}` },
    direction: 'user-user', disposition: 'answered', startedAt: now - 60_000, answeredAt: now - 55_000, endedAt: now,
    duration: 60, billableSeconds: 55, finalCode: 200, hangupBy: 'caller', endCause: 'bye', mediaRelayed: false,
  });
}
