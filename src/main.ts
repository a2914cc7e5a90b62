#!/usr/bin/env node
/**
 * The `softswitch` command: `softswitch start [--config FILE]`, `softswitch user …`.
 */
import { parseArgs } from 'node:util';
import { createSoftswitch } from './app.js';
import { ConfigError, loadConfig } from './config/index.js';
import { createLogger } from './log/index.js';

const USAGE = `usage:
  softswitch start [--config FILE]        start the server (embedded defaults without a file)
  softswitch help                         this text`;

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  const config = loadConfig({ file: values.config });
  const logger = createLogger({ level: config.log.level });
  const server = await createSoftswitch(config, logger);
  await server.start();
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      server.stop().then(resolveStop, (err: Error) => {
        logger.error({ err: err.message }, 'error while stopping');
        resolveStop();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  logger.info('stopped');
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Start-up failures (bad configuration, a port in use, an unreadable certificate) end here: one clear line.
    const message = err instanceof ConfigError ? err.message : `softswitch: ${(err as Error).message ?? String(err)}`;
    process.stderr.write(message + '\n');
    process.exit(1);
  },
);
