/**
 * One Janus node as the focus uses it: an Admin API connection (stored tokens) and a Janus API session with a
 * videoroom handle (rooms, their `allowed` lists, kicks), opened on first use and opened again after the connection
 * is lost. The focus's own session needs a token too (token_auth): its derived focus token, which it stores on the
 * node itself through the Admin API before opening the session.
 */
import { silentLogger, type Logger } from '../src/log/index.js';
import { JanusAdmin, JanusClient, VIDEOROOM_PLUGIN, VideoRoomAdmin } from './janus/index.js';

/** A node of `meetings.janus`. */
export interface JanusNodeConfig {
  url: string;
  adminUrl: string;
  adminSecret: string;
  apiSecret?: string | undefined;
}

export interface JanusNodeOptions {
  node: JanusNodeConfig;
  /** The token the focus's own session uses (FocusSecrets.focusToken()). */
  focusToken: string;
  /** Each request's timeout; a node that does not answer within it is down for this request. */
  timeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

interface Connection {
  admin: JanusAdmin;
  client: JanusClient;
  rooms: VideoRoomAdmin;
}

const DEFAULT_TIMEOUT_MS = 5000;

export class JanusNode {
  readonly url: string;
  readonly timeoutMs: number;
  private connection: Promise<Connection> | undefined;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly options: JanusNodeOptions) {
    this.url = options.node.url;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.log = options.logger ?? silentLogger();
  }

  /** The Admin API, connected. Rejects with the JanusError of a node that cannot be reached. */
  async admin(): Promise<JanusAdmin> {
    return (await this.connect()).admin;
  }

  /** The videoroom handle of the focus's session, connected. */
  async rooms(): Promise<VideoRoomAdmin> {
    return (await this.connect()).rooms;
  }

  /**
   * Whether the node answers now: the Admin API's `info` (connecting first when the connection was lost). Never throws;
   * a refusal (token_auth off) or a timeout is no answer.
   */
  async ping(): Promise<boolean> {
    try {
      await (await this.admin()).info({ timeoutMs: this.timeoutMs });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    if (connection === undefined) return;
    const c = await connection.catch(() => undefined);
    if (c !== undefined) await Promise.allSettled([c.client.close(), c.admin.close()]);
  }

  private connect(): Promise<Connection> {
    if (this.closed) return Promise.reject(new Error('janus node: closed'));
    this.connection ??= this.open().catch((err: unknown) => {
      // The next request tries again: a node that was down may be back.
      this.connection = undefined;
      throw err;
    });
    return this.connection;
  }

  private async open(): Promise<Connection> {
    const { node, focusToken } = this.options;
    const timeoutMs = this.timeoutMs;
    const admin = await JanusAdmin.connect({ url: node.adminUrl, adminSecret: node.adminSecret, timeoutMs, logger: this.log });
    let client: JanusClient | undefined;
    try {
      // Without token_auth anyone could open a session and a copied room id would pass the lobby: such a node is refused.
      const info = await admin.info();
      if (info.auth_token !== true) throw new Error(`janus node ${node.url}: token_auth is off (janus.jcfg general.token_auth = true is needed for meetings)`);
      if (!(VIDEOROOM_PLUGIN in info.plugins)) throw new Error(`janus node ${node.url}: the videoroom plugin is not loaded`);
      await admin.addToken(focusToken, [VIDEOROOM_PLUGIN]);
      client = await JanusClient.connect({ url: node.url, token: focusToken, apisecret: node.apiSecret, timeoutMs, logger: this.log });
      const session = await client.createSession();
      const rooms = await VideoRoomAdmin.attach(session);
      const connection: Connection = { admin, client, rooms };
      let current = true;
      const lost = (): void => {
        if (!current || this.closed) return;
        current = false;
        this.log.warn({ url: node.url }, 'janus node: connection lost; the next request opens a new one');
        this.connection = undefined;
        void client?.close();
        void admin.close();
      };
      client.once('closed', lost);
      admin.once('closed', lost);
      session.once('destroyed', lost);
      return connection;
    } catch (err) {
      await Promise.allSettled([client?.close(), admin.close()]);
      throw err;
    }
  }
}
