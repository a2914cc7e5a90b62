import type { EventEmitter } from 'node:events';
import type { Logger } from '../../src/log/index.js';

/**
 * Calls the listeners of `event` one by one: a listener that throws is logged, and neither stops the others nor
 * unwinds into the socket's message handler (where it would lose the message being routed).
 */
export function emitSafely(emitter: object, log: Logger, event: string, args: readonly unknown[]): void {
  for (const listener of (emitter as EventEmitter).rawListeners(event)) {
    try {
      (listener as (...a: unknown[]) => unknown)(...args);
    } catch (err) {
      log.error({ event, err: (err as Error)?.message ?? String(err) }, 'janus: an event listener threw');
    }
  }
}
