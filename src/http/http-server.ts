/**
 * The HTTP side of a node: `/health` for load balancers and operators (listeners, transactions,
 * registrations, backends), `POST /reload` for `softswitch reload`. Later steps add the REST API and
 * metrics here.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from '../log/index.js';

export interface HealthSource {
  /** Named checks: each returns a JSON-serialisable status; `ok: false` anywhere makes the answer 503. */
  health(): Record<string, unknown> & { ok: boolean };
  /**
   * `POST /reload` (`softswitch reload`): re-reads routing data from the store; the result is answered
   * as JSON. Without it the route answers 404.
   */
  reload?(): Promise<unknown>;
}

export class HttpServer {
  private readonly app: FastifyInstance;
  private readonly host: string;
  private readonly port: number;
  private boundPort = 0;

  constructor(options: { listen: string; source: HealthSource; logger: Logger }) {
    const i = options.listen.lastIndexOf(':');
    this.host = options.listen.slice(0, i).replace(/^\[|\]$/g, '');
    this.port = Number(options.listen.slice(i + 1));
    this.app = Fastify({ logger: false });
    this.app.get('/health', async (_req, reply) => {
      const h = options.source.health();
      return reply.code(h.ok ? 200 : 503).send(h);
    });
    this.app.post('/reload', async (_req, reply) => {
      const source = options.source;
      if (source.reload === undefined) return reply.code(404).send({ ok: false, error: 'nothing to reload on this server' });
      try {
        const result = await source.reload();
        return reply.code(200).send(result ?? { ok: true });
      } catch (err) {
        options.logger.warn({ err: (err as Error).message }, 'POST /reload failed');
        return reply.code(500).send({ ok: false, error: (err as Error).message ?? String(err) });
      }
    });
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.host, port: this.port });
    const addr = this.app.server.address();
    this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : this.port;
  }

  /** The port actually bound (the configured one, or the kernel's choice for 0). */
  get boundTo(): number {
    return this.boundPort;
  }

  async stop(): Promise<void> {
    await this.app.close();
  }
}
