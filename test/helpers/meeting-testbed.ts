/**
 * The meeting suites' testbed: a real Janus (support/janus.ts: token_auth on, loopback) and a whole softswitch
 * whose `meetings.janus` names it (api-client.ts), its users signed in, an Admin API connection, and the checks every
 * suite makes of an answer: over HTTP, against the API's document (`call`), its status and body (`ok`, `refused`),
 * and whether Janus refuses a grant's token (`refusedByJanus`).
 */
import assert from 'node:assert/strict';
import { JanusAdmin, JanusClient, JanusError, type JanusGrant } from '../../conference/index.js';
import { type ApiAnswer, type ApiServer, conforms, startApiServer } from './api-client.js';
import { startJanus, type JanusServer } from '../../support/janus.js';

export interface MeetingTestbed {
  /** The first Janus node (every node with `nodes`). */
  janus: JanusServer;
  nodes: JanusServer[];
  api: ApiServer;
  admin: JanusAdmin;
  /** Each user's access token, by name. */
  tokens: Record<string, string>;
  /** Sends over HTTP with `token` (none for null) and checks the answer against the document's `operation`. */
  call(token: string | null, method: string, url: string, operation: string, json?: unknown): Promise<ApiAnswer>;
  /** True when Janus refuses a new session with the grant's token (token_auth: 403). */
  refusedByJanus(grant: JanusGrant): Promise<boolean>;
  /** Closes the Janus clients it opened, the Admin API connection, the softswitch and Janus. */
  stop(): Promise<void>;
}

export interface MeetingTestbedOptions {
  recordings?: boolean;
  /** Janus nodes to start (default 1), each in meetings.janus in order. */
  nodes?: number;
  /** More settings of `meetings` (healthIntervalMs, downAfter). */
  meetings?: Record<string, unknown>;
  /** More settings of each node of meetings.janus (capacity), by index. */
  nodeSettings?: Array<Record<string, unknown>>;
}

export async function startMeetingTestbed(users: readonly string[], options: MeetingTestbedOptions = {}): Promise<MeetingTestbed> {
  const nodes: JanusServer[] = [];
  let api: ApiServer | undefined;
  try {
    for (let i = 0; i < (options.nodes ?? 1); i++) nodes.push(await startJanus(options.recordings === true ? { recordings: true } : {}));
    const config = nodes.map((janus, i) => ({
      url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret, ...(options.recordings === true ? { recordingDir: janus.recordingDir } : {}), ...options.nodeSettings?.[i],
    }));
    const janus = nodes[0]!;
    api = await startApiServer(users, { meetings: { janus: config, ...options.meetings } });
    const tokens: Record<string, string> = {};
    for (const user of users) tokens[user] = await api.signIn(user);
    // Janus accepts TCP on its admin port a moment before its WebSocket protocol answers there (one CI run in four saw
    // "socket hang up" here): a few tries, as an operator's client would reconnect.
    const admin = await connectAdmin(janus);
    const clients: JanusClient[] = [];
    const server = api;
    return {
      janus, nodes, api: server, admin, tokens,
      async call(token, method, url, operation, json) {
        const answer = await server.send('http', { method, url, token, json });
        conforms(server, operation, answer, `${method} ${url}`);
        return answer;
      },
      async refusedByJanus(grant) {
        const client = await JanusClient.connect({ url: grant.url, token: grant.token });
        clients.push(client);
        try {
          await client.createSession();
          return false;
        } catch (err) {
          if (err instanceof JanusError && err.code === 'JANUS_ERR_REFUSED') return true;
          throw err;
        }
      },
      async stop() {
        await Promise.allSettled(clients.map((c) => c.close()));
        await admin.close();
        await server.stop();
        await Promise.allSettled(nodes.map((n) => n.stop()));
      },
    };
  } catch (err) {
    await api?.stop();
    await Promise.allSettled(nodes.map((n) => n.stop()));
    throw err;
  }
}

async function connectAdmin(janus: JanusServer): Promise<JanusAdmin> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await JanusAdmin.connect({ url: janus.adminUrl, adminSecret: janus.adminSecret });
    } catch (err) {
      if (attempt >= 5 || !(err instanceof JanusError)) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The answer's JSON, after asserting its status. */
export function ok<T>(answer: ApiAnswer, status = 200): T {
  assert.equal(answer.status, status, answer.bytes.toString());
  return answer.json as T;
}

/** Asserts a refusal's status and code; its message. */
export function refused(answer: ApiAnswer, status: number, code: string): string {
  assert.equal(answer.status, status, answer.bytes.toString());
  assert.equal((answer.json as { code: string }).code, code);
  return (answer.json as { message: string }).message;
}
