import { Writable } from 'node:stream';
import { type Logger, createLogger } from '../../src/log/index.js';

/** A trace-level logger whose JSON lines are kept as written, for tests that check what is (not) logged. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level: 'trace', destination }), lines };
}
