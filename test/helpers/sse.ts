/**
 * A reader of a server-sent event stream (text/event-stream) over HTTP, for tests: it collects the events as they
 * arrive and lets a test wait for the next one of a name (and shape), or for the stream's end.
 */
import assert from 'node:assert/strict';
import { type ClientRequest, type IncomingMessage, request } from 'node:http';

export interface SseEvent {
  event: string;
  data: unknown;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  /** Resolves when the server ends the stream (or close() does). */
  readonly ended: Promise<void>;
  private taken = 0;
  private wake: (() => void) | undefined;
  private done = false;

  private constructor(private readonly req: ClientRequest, res: IncomingMessage) {
    this.ended = this.read(res);
  }

  /**
   * Opens the stream (node:http, so that close() really closes the connection, as a browser tab that goes away does);
   * a refusal (not 200) is answered as its status and JSON instead.
   */
  static async open(url: string, token: string): Promise<SseReader | { status: number; json: unknown }> {
    const req = request(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
    const res = await new Promise<IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject).end());
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.statusCode ?? 0, json };
    }
    assert.match(String(res.headers['content-type'] ?? ''), /^text\/event-stream/);
    return new SseReader(req, res);
  }

  /** The next event not yet taken whose name is `event` (and that `match` accepts); earlier ones of other names are passed over. */
  async next(event: string, match: (data: any) => boolean = () => true, timeoutMs = 10_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.taken < this.events.length) {
        const e = this.events[this.taken++]!;
        if (e.event === event && match(e.data)) return e.data;
      }
      if (this.done) assert.fail(`the stream ended without a \`${event}\` event; it sent ${JSON.stringify(this.events)}`);
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`no \`${event}\` event within ${timeoutMs} ms; the stream sent ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  close(): void {
    this.req.destroy();
  }

  private async read(res: IncomingMessage): Promise<void> {
    res.setEncoding('utf8');
    let buffer = '';
    try {
      for await (const chunk of res) {
        buffer += chunk as string;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          const name = lines.find((l) => l.startsWith('event: '))?.slice(7);
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (name !== undefined) this.events.push({ event: name, data: JSON.parse(data) });
          this.wake?.();
        }
      }
    } catch {
      // aborted by close(), or the connection dropped: the stream is over either way
    } finally {
      this.done = true;
      this.wake?.();
    }
  }
}
