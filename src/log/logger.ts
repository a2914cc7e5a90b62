import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

/**
 * The project logger: structured JSON lines (pino), one child per category (`sip.transport`,
 * `sip.transaction`, `proxy.route`, `registrar.push` …). Secrets never go into a log line.
 */
export type Logger = PinoLogger;
export type LogLevel = LevelWithSilent;

export function createLogger(options: { level?: LogLevel; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = options.level ?? 'info';
  return options.destination ? pino({ level, base: undefined }, options.destination) : pino({ level, base: undefined });
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export function categoryLogger(parent: Logger, category: string): Logger {
  return parent.child({ cat: category });
}
