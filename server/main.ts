#!/usr/bin/env node
/**
 * The `softswitch` command: `softswitch start [--config FILE]`, `softswitch user …`.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { CLUSTER_SECRET_ENV, ClusterWorker, type PrimaryMessage, WORKER_GENERATION_ENV, WORKER_INDEX_ENV, runSupervisor } from './cluster/index.js';
import { readPidFile, removePidFile, writePidFile } from './cluster/pid-file.js';
import { createSoftswitch } from './app.js';
import { NonceLedger } from '../registrar/index.js';
import { CliError, USER_USAGE, type RoutingGroup, runReloadCommand, runRoutingCommand, runUserCommand } from './cli/index.js';
import { ADMIN_TOKEN_ENV, USER_PASSWORD_ENV, promptHidden, readFirstLine, runBanCommand, runCallCommand, runTokenCommand, withAdminToken } from './cli/index.js';
import { PUSH_USAGE, runPushCommand } from './cli/index.js';
import { createPushProviders } from '../push/providers.js';
import type { PushProviderClient } from '../push/types.js';
import type { PushProvider } from '../src/sip/index.js';
import { ConfigError, loadConfig } from '../platform/config/index.js';
import { createLogger, silentLogger } from '../src/log/index.js';
import { StoreError, openStore } from '../platform/store/index.js';
import { raiseFileLimit } from '../src/transport/file-limit.js';

const USAGE = `usage:
  softswitch start [--config FILE] [--workers N|auto]
                                          start the server (embedded defaults without a file) with N
                                          worker processes (default and auto: one per core; 1: a single
                                          process, see README "Workers")
  softswitch user … [--config FILE]       manage subscribers in the configured store (softswitch user help)
  softswitch backend|route|did|trusted … [--config FILE]
                                          load balancer backends, dialplan, DIDs, trusted sources
                                          (softswitch backend help)
  softswitch reload [--config FILE]       make the running server re-read them now
  softswitch token … [--config FILE]      admin tokens of the HTTP API (softswitch token help)
  softswitch calls list [--user USER@DOMAIN] [--number N] [--since ISO|30m|2h|7d] [--limit N] [--json] [--config FILE]
                                          call records in the store, newest first (softswitch calls help)
  softswitch ban list|add|lift … [--config FILE]
                                          the running server's bans (softswitch ban help)
  softswitch push test USER@DOMAIN [--config FILE]
                                          send a test push to each of the user's push bindings and
                                          print each provider's answer (softswitch push help)
  softswitch restart --rolling [--config FILE]
                                          replace the running server's workers one by one without
                                          dropping a call (SIGHUP to the pid in dataDir/softswitch.pid)
  softswitch help                         this text`;

/** `softswitch user add alice@example.com --password …` and friends, against the configured store. */
async function user(args: string[]): Promise<number> {
  const { file, rest } = configArg(args);
  const config = loadConfig({ file });
  const store = await openStore({ url: config.store.url, logger: silentLogger() });
  try {
    await runUserCommand(rest, store, (line) => process.stdout.write(line + '\n'), {
      readStdin: () => readFirstLine(process.stdin),
      env: process.env[USER_PASSWORD_ENV],
      prompt: process.stdin.isTTY ? promptHidden : undefined,
    });
    return 0;
  } finally {
    await store.close();
  }
}

/** Splits `--config FILE` off the arguments of a store command. */
function configArg(args: string[]): { file: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--config' || a === '-c') file = args[++i];
    else if (a.startsWith('--config=')) file = a.slice('--config='.length);
    else rest.push(a);
  }
  return { file, rest };
}

/** A usage error of the routing commands with its own usage text (the handler below prints USER_USAGE). */
function routingUsage(err: unknown): number {
  if (!(err instanceof CliError) || err.code !== 'CLI_ERR_USAGE') throw err;
  process.stderr.write(`softswitch: ${err.message}\n`);
  return err.exitCode;
}

/** `softswitch backend add freeswitch sip:10.0.0.5` and friends, against the configured store. */
async function routing(group: RoutingGroup, args: string[]): Promise<number> {
  const { file, rest } = configArg(args);
  const config = loadConfig({ file });
  const store = await openStore({ url: config.store.url, logger: silentLogger() });
  try {
    await runRoutingCommand(group, rest, { store, httpListen: config.http.listen, adminToken: process.env[ADMIN_TOKEN_ENV], out: (line) => process.stdout.write(line + '\n') });
    return 0;
  } catch (err) {
    return routingUsage(err);
  } finally {
    await store.close();
  }
}

/**
 * `softswitch reload`: POST /reload to the running server's http listener, with SOFTSWITCH_ADMIN_TOKEN or
 * else a token minted in the store for this one request (whoever can write the store may reload).
 */
async function reload(args: string[]): Promise<number> {
  const { file, rest } = configArg(args);
  const config = loadConfig({ file });
  const preset = process.env[ADMIN_TOKEN_ENV];
  const store = preset === undefined || preset === '' ? await openStore({ url: config.store.url, logger: silentLogger() }) : undefined;
  try {
    const send = (token: string | undefined) => runReloadCommand(rest, { httpListen: config.http.listen, token, out: (line) => process.stdout.write(line + '\n') });
    await (store === undefined ? send(preset) : withAdminToken(store, undefined, send));
    return 0;
  } catch (err) {
    return routingUsage(err);
  } finally {
    await store?.close();
  }
}

/** `softswitch ban list|add|lift`: the running server's bans, through its admin API (token as for reload). */
async function ban(args: string[]): Promise<number> {
  const { file, rest } = configArg(args);
  const config = loadConfig({ file });
  const preset = process.env[ADMIN_TOKEN_ENV];
  const store = preset === undefined || preset === '' ? await openStore({ url: config.store.url, logger: silentLogger() }) : undefined;
  try {
    const send = (token: string) => runBanCommand(rest, { httpListen: config.http.listen, token, out: (line) => process.stdout.write(line + '\n') });
    await (store === undefined ? send(preset!) : withAdminToken(store, undefined, send));
    return 0;
  } catch (err) {
    return routingUsage(err);
  } finally {
    await store?.close();
  }
}

/** `softswitch token create --name ci` and friends, against the configured store. */
async function token(args: string[]): Promise<number> {
  const { file, rest } = configArg(args);
  const config = loadConfig({ file });
  const store = await openStore({ url: config.store.url, logger: silentLogger() });
  try {
    await runTokenCommand(rest, store, (line) => process.stdout.write(line + '\n'));
    return 0;
  } catch (err) {
    if (!(err instanceof CliError) || err.code !== 'CLI_ERR_USAGE') throw err;
    process.stderr.write(`softswitch: ${err.message}\n`);
    return err.exitCode;
  } finally {
    await store.close();
  }
}

/** `softswitch calls list --since 2h` and friends: the call records, read from the configured store. */
async function calls(args: string[]): Promise<number> {
  const { file, rest } = configArg(args);
  const config = loadConfig({ file });
  const store = await openStore({ url: config.store.url, logger: silentLogger() });
  try {
    const { calls: records } = store;
    await runCallCommand(rest, records, (line) => process.stdout.write(line + '\n'));
    return 0;
  } catch (err) {
    return routingUsage(err);
  } finally {
    await store.close();
  }
}

/** `softswitch push test alice@example.com`: a test push to each push binding, through the configured providers. */
async function push(args: string[]): Promise<number> {
  const { file, rest } = configArg(args);
  if (rest[0] === 'help') {
    process.stdout.write(PUSH_USAGE + '\n');
    return 0;
  }
  const config = loadConfig({ file });
  const store = await openStore({ url: config.store.url, logger: silentLogger() });
  const providers = new Map<PushProvider, PushProviderClient>();
  try {
    for (const [name, client] of createPushProviders(config.push, { dataDir: config.dataDir, logger: silentLogger() })) providers.set(name, client);
    return await runPushCommand(rest, { locations: store.locations, providers, out: (line) => process.stdout.write(line + '\n') });
  } catch (err) {
    if (!(err instanceof CliError) || err.code !== 'CLI_ERR_USAGE') throw err;
    process.stderr.write(`softswitch: ${err.message}\n`);
    return err.exitCode;
  } finally {
    await Promise.all([...providers.values()].map((c) => c.close()));
    await store.close();
  }
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, workers: { type: 'string', short: 'w' } }, strict: true });
  // One worker per core by default (server/cluster: UDP datagrams go to the worker holding their
  // transaction, sends on another worker's connection are relayed to it); --workers 1 is one process.
  const workers = values.workers === undefined || values.workers === 'auto' ? availableParallelism() : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new Error(`--workers must be a whole number from 1 to 256, got ${JSON.stringify(values.workers)}`);
  const config = loadConfig({ file: values.config });
  // Every connection is a file: soft limit up to the hard one, before the workers fork (they inherit it).
  if (cluster.isPrimary) raiseFileLimit(createLogger({ level: config.log.level }));
  const graceMs = config.shutdownGraceSeconds * 1000;
  // --workers 1 is the single process of old: no cluster, no hand-over, nothing in between.
  if (workers > 1 && cluster.isPrimary) {
    // `softswitch restart --rolling` finds the primary through this file (SIGHUP).
    const pidFile = writePidFile(config.dataDir);
    try {
      // Workers drain for up to the grace period before they stop; a worker still there 5 s later is killed.
      return await runSupervisor({ workers, logger: createLogger({ level: config.log.level }), stopTimeoutMs: graceMs + 5000 });
    } finally {
      removePidFile(pidFile);
    }
  }
  const index = workers > 1 ? Number(process.env[WORKER_INDEX_ENV]) : 0;
  const generation = workers > 1 ? Number(process.env[WORKER_GENERATION_ENV] ?? 0) : 0;
  const logger = workers > 1 ? createLogger({ level: config.log.level }).child({ worker: index }) : createLogger({ level: config.log.level });
  const secretHex = workers > 1 ? process.env[CLUSTER_SECRET_ENV] : undefined;
  const member = workers > 1 ? new ClusterWorker({ index, workers, generation, logger }) : undefined;
  const server = await createSoftswitch(config, logger, {
    secret: secretHex ? Buffer.from(secretHex, 'hex') : undefined,
    // Each worker issues nonces under its index and keeps their counts; the others claim through it.
    ledger: member === undefined ? undefined : new NonceLedger({ index }),
    workerIndex: index,
    onReloaded: () => member?.reloaded(),
    // GET /metrics answers for every worker: the one scraped asks the others.
    metricsPeers: member,
  });
  if (member !== undefined) {
    process.on('message', (m: PrimaryMessage) => member.onPrimaryMessage(m));
    member.attach(server);
    await member.open();
  }
  await server.start();
  member?.started();
  const pidFile = member === undefined ? writePidFile(config.dataDir) : undefined;
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    // SIGTERM/SIGINT: drain first (503 to new requests, live transactions finish, in-dialog requests
    // still route; at most shutdownGraceSeconds), then stop. A rolling restart drains the same way, but
    // hands what is not its own to the successor instead of refusing it.
    const stop = (signal: string, drain: boolean, handOff?: ClusterWorker['handOff']) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, graceSeconds: drain ? config.shutdownGraceSeconds : 0 }, 'stopping');
      (drain ? server.drain({ graceMs, handOff }) : Promise.resolve())
        // A rolling restart's successor holds the calls still up from now on.
        .then(() => (handOff !== undefined ? member?.handDialogsOver() : undefined))
        .then(() => server.stop())
        .then(resolveStop, (err: Error) => {
          logger.error({ err: err.message }, 'error while stopping');
          resolveStop();
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM', true));
    process.once('SIGINT', () => stop('SIGINT', true));
    // A single process cannot replace itself; the primary of a cluster handles SIGHUP (without a handler it would end the process).
    if (member === undefined) process.on('SIGHUP', () => logger.warn('a rolling restart needs --workers 2 or more; SIGHUP ignored'));
    // A worker whose primary is gone stops too, at once: nothing routes to it any more.
    if (member !== undefined) {
      process.once('disconnect', () => stop('disconnect', false));
      member.onDrain(() => stop('rolling restart', true, member.handOff));
    }
  });
  removePidFile(pidFile);
  member?.close();
  logger.info('stopped');
  return 0;
}

/** `softswitch restart --rolling`: SIGHUP to the primary named by dataDir/softswitch.pid. */
function restart(args: string[]): number {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, rolling: { type: 'boolean' } }, strict: true });
  if (values.rolling !== true) {
    process.stderr.write(`softswitch: restart needs --rolling (the only kind there is; a stop on SIGTERM drains too)\n${USAGE}\n`);
    return 2;
  }
  const config = loadConfig({ file: values.config });
  const pid = readPidFile(config.dataDir);
  process.kill(pid, 'SIGHUP');
  process.stdout.write(`rolling restart asked of pid ${pid}; the workers are replaced one by one (see the server's log)\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case 'user':
      return user(rest);
    case 'backend':
    case 'route':
    case 'did':
    case 'trusted':
      return routing(command, rest);
    case 'reload':
      return reload(rest);
    case 'ban':
      return ban(rest);
    case 'token':
      return token(rest);
    case 'calls':
      return calls(rest);
    case 'push':
      return push(rest);
    case 'restart':
      return restart(rest);
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
    // Start-up failures (bad configuration, a port in use, an unreadable certificate, an unreachable
    // store) and CLI errors end here: one clear line, no stack trace.
    if (err instanceof CliError) {
      process.stderr.write(`softswitch: ${err.message}\n`);
      if (err.code === 'CLI_ERR_USAGE') process.stderr.write(USER_USAGE + '\n');
      process.exit(err.exitCode);
    }
    const message = err instanceof ConfigError || err instanceof StoreError ? err.message : `softswitch: ${(err as Error).message ?? String(err)}`;
    process.stderr.write(message + '\n');
    process.exit(1);
  },
);
