/**
 * `softswitch backend|route|did|trusted …` and `softswitch reload`: the load balancer's backends and
 * sets, the dialplan, DIDs and trusted sources in the configured store. The running server picks the
 * changes up at its next periodic reload, or at once after `softswitch reload` (POST /reload on its
 * http listener). `backend list` also asks the running server for each backend's health.
 */
import { parseArgs } from 'node:util';
import type { BackendState, BalanceAlgorithm } from '../../balancer/types.js';
import { type Store, checkAlgorithm } from '../../platform/store/index.js';
import { CliError, fromStore, unknownSubCommand, usageError } from './cli-error.js';
import { ADMIN_TOKEN_ENV, withAdminToken } from './token-commands.js';
import { formatUserAddress, parseUserAddress } from './user-commands.js';

export const ROUTING_USAGE = `usage:
  softswitch backend add SET URI [--weight N] [--algorithm A]
                                          add a backend to a set (the set is created if new); A is
                                          round-robin (default), weighted or least-calls
  softswitch backend list                 list backends, with health from the running server
  softswitch backend del ID               delete a backend
  softswitch backend enable ID            let a backend take new requests again
  softswitch backend disable ID           no new requests to a backend (calls in progress go on)
  softswitch backend set SET --algorithm A
                                          change how a set chooses its backend
  softswitch route add PATTERN SET [--replace R] [--priority N] [--description D]
                                          dialplan: a called number that fully matches PATTERN (a
                                          regular expression) goes to SET, rewritten by R ($1 … groups)
  softswitch route list                   list routes, lowest priority first
  softswitch route del ID                 delete a route
  softswitch did add NUMBER USER@DOMAIN   a DID that rings a user
  softswitch did list                     list DIDs
  softswitch did del NUMBER               delete a DID
  softswitch trusted add CIDR [--description D]
                                          requests from this address or block need no digest auth
  softswitch trusted list                 list trusted sources
  softswitch trusted del ID               delete a trusted source
  softswitch reload                       make the running server re-read all of the above now`;

export type RoutingGroup = 'backend' | 'route' | 'did' | 'trusted';

export interface RoutingCommandDeps {
  store: Store;
  out: (line: string) => void;
  /** The running server's `http.listen` (`address:port`), asked for health by `backend list`. */
  httpListen?: string;
  /** `fetch`, replaceable in tests. */
  fetch?: typeof fetch;
  /** SOFTSWITCH_ADMIN_TOKEN: the token `backend list` shows to the server instead of minting one. */
  adminToken?: string;
}

export interface ReloadCommandDeps {
  /** The running server's `http.listen` (`address:port`). */
  httpListen: string;
  out: (line: string) => void;
  fetch?: typeof fetch;
  /** The admin token sent as `Authorization: Bearer` (POST /reload requires one). */
  token?: string;
  /** How long to wait for the server's answer, ms (default 10 000: a reload resolves backend names). */
  timeoutMs?: number;
}

const HEALTH_TIMEOUT_MS = 1000;

const usage = (message: string): CliError => usageError(message, ROUTING_USAGE);

type OptionName = 'weight' | 'algorithm' | 'replace' | 'priority' | 'description';

interface Parsed {
  positionals: string[];
  values: Partial<Record<OptionName, string>>;
}

function parse(what: string, args: string[], options: OptionName[], names: string[], optional = 0): Parsed {
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries(options.map((o) => [o, { type: 'string' as const }])),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw usage(`${what}: ${(err as Error).message}`);
  }
  const n = parsed.positionals.length;
  const min = names.length - optional;
  if (n < min) throw usage(`${what}: missing ${names.slice(n).join(' ')}`);
  if (n > names.length) throw usage(`${what}: unexpected argument ${JSON.stringify(parsed.positionals[names.length])}`);
  const values: Partial<Record<OptionName, string>> = {};
  for (const o of options) {
    const v = parsed.values[o];
    if (typeof v === 'string') values[o] = v;
  }
  return { positionals: parsed.positionals, values };
}

function parseId(what: string, text: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(text)) throw new CliError('CLI_ERR_INVALID', `${what}: ${JSON.stringify(text)} is not a backend/route/source id (a positive whole number, see the list)`);
  return Number(text);
}

function parseInteger(what: string, option: string, text: string): number {
  if (!/^-?[0-9]{1,10}$/.test(text)) throw new CliError('CLI_ERR_INVALID', `${what}: --${option} must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function algorithmOf(what: string, text: string): BalanceAlgorithm {
  try {
    return checkAlgorithm(text);
  } catch (err) {
    throw new CliError('CLI_ERR_INVALID', `${what}: --${(err as Error).message}`);
  }
}

/**
 * Prints `rows` under `header` (when given) as aligned columns, two spaces apart, the last column not
 * padded; `empty` alone when there are no rows.
 */
export function printTable(out: (line: string) => void, header: string[] | undefined, rows: string[][], empty: string): void {
  if (rows.length === 0) {
    out(empty);
    return;
  }
  const all = header === undefined ? rows : [header, ...rows];
  const widths: number[] = [];
  for (const r of all) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  for (const r of all) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** `http://host:port` of an `http.listen` value; a wildcard address is reached on loopback. */
export function serverUrl(listen: string): string {
  const i = listen.lastIndexOf(':');
  let host = listen.slice(0, i);
  const port = listen.slice(i + 1);
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  else if (host === '[::]' || host === '::') host = '[::1]';
  else if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `http://${host}:${port}`;
}

function bearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** The running server's backend states, or why there are none. */
async function fetchHealth(listen: string | undefined, doFetch: typeof fetch, token: string): Promise<{ states: BackendState[] } | { unknown: string }> {
  if (listen === undefined) return { unknown: 'no http listener configured' };
  const url = `${serverUrl(listen)}/health`;
  try {
    // The token unlocks the details of /health on a server whose http.listen is not a loopback address.
    const res = await doFetch(url, { headers: bearer(token), signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    // 503 is still a health report (the server is starting or something is down).
    const body = (await res.json()) as { backends?: unknown };
    if (!Array.isArray(body.backends)) return { unknown: `the server at ${url} reports no backend health` };
    return { states: body.backends as BackendState[] };
  } catch {
    return { unknown: `no server answered at ${url}` };
  }
}

async function backend(command: string | undefined, args: string[], deps: RoutingCommandDeps): Promise<void> {
  const { store, out } = deps;
  const what = `backend ${command ?? ''}`.trim();
  switch (command) {
    case 'add': {
      const { positionals, values } = parse(what, args, ['weight', 'algorithm'], ['SET', 'URI']);
      const [set, uri] = positionals as [string, string];
      const weight = values.weight === undefined ? undefined : parseInteger(what, 'weight', values.weight);
      const algorithm = values.algorithm === undefined ? undefined : algorithmOf(what, values.algorithm);
      const b = await store.routing.addBackend({ set, uri, weight }).catch(fromStore(what));
      if (algorithm !== undefined) await store.routing.putSet({ name: set, algorithm }).catch(fromStore(what));
      out(`added backend ${b.id} ${b.uri} to set ${b.set} (weight ${b.weight}${values.algorithm === undefined ? '' : `, set algorithm ${values.algorithm}`})`);
      return;
    }
    case 'list': {
      parse(what, args, [], []);
      const [sets, backends] = await Promise.all([store.routing.listSets(), store.routing.listBackends()]).catch(fromStore(what));
      const health = await withAdminToken(store, deps.adminToken, (token) => fetchHealth(deps.httpListen, deps.fetch ?? fetch, token));
      const algorithm = new Map(sets.map((s) => [s.name, s.algorithm]));
      const live = 'states' in health ? new Map(health.states.map((s) => [s.id, s])) : undefined;
      const rows = backends.map((b) => {
        const s = live?.get(b.id);
        return [
          String(b.id), b.set, algorithm.get(b.set) ?? 'round-robin', b.uri, String(b.weight), b.enabled ? 'yes' : 'no',
          s?.health ?? (live === undefined ? 'unknown' : 'not loaded'), s === undefined ? '-' : String(s.activeCalls), s === undefined ? '-' : String(s.failures),
        ];
      });
      printTable(out, ['ID', 'SET', 'ALGORITHM', 'URI', 'WEIGHT', 'ENABLED', 'HEALTH', 'CALLS', 'FAILURES'], rows, 'no backends');
      if ('unknown' in health) out(`health unknown: ${health.unknown}`);
      return;
    }
    case 'del': {
      const { positionals } = parse(what, args, [], ['ID']);
      const id = parseId(what, positionals[0]!);
      await store.routing.removeBackend(id).catch(fromStore(what));
      out(`deleted backend ${id}`);
      return;
    }
    case 'enable':
    case 'disable': {
      const { positionals } = parse(what, args, [], ['ID']);
      const id = parseId(what, positionals[0]!);
      await store.routing.setBackendEnabled(id, command === 'enable').catch(fromStore(what));
      out(`${command}d backend ${id}`);
      return;
    }
    case 'set': {
      const { positionals, values } = parse(what, args, ['algorithm'], ['SET']);
      if (values.algorithm === undefined) throw new CliError('CLI_ERR_INVALID', `${what}: --algorithm round-robin|weighted|least-calls is required`);
      await store.routing.putSet({ name: positionals[0]!, algorithm: algorithmOf(what, values.algorithm) }).catch(fromStore(what));
      out(`set ${positionals[0]} uses ${values.algorithm}`);
      return;
    }
    default:
      throw unknown('backend', command);
  }
}

async function route(command: string | undefined, args: string[], { store, out }: RoutingCommandDeps): Promise<void> {
  const what = `route ${command ?? ''}`.trim();
  switch (command) {
    case 'add': {
      const { positionals, values } = parse(what, args, ['replace', 'priority', 'description'], ['PATTERN', 'SET']);
      const priority = values.priority === undefined ? 0 : parseInteger(what, 'priority', values.priority);
      const r = await store.routing.addRoute({
        pattern: positionals[0]!, set: positionals[1]!, replace: values.replace ?? '', priority, description: values.description ?? '',
      }).catch(fromStore(what));
      out(`added route ${r.id}: ${r.pattern} → ${r.set}${r.replace === '' ? '' : ` as ${r.replace}`} (priority ${r.priority})`);
      return;
    }
    case 'list': {
      parse(what, args, [], []);
      const routes = await store.routing.listRoutes().catch(fromStore(what));
      printTable(out, ['ID', 'PRIORITY', 'PATTERN', 'REPLACE', 'SET', 'DESCRIPTION'],
        routes.map((r) => [String(r.id), String(r.priority), r.pattern, r.replace === '' ? '-' : r.replace, r.set, r.description]), 'no routes');
      return;
    }
    case 'del': {
      const { positionals } = parse(what, args, [], ['ID']);
      const id = parseId(what, positionals[0]!);
      await store.routing.removeRoute(id).catch(fromStore(what));
      out(`deleted route ${id}`);
      return;
    }
    default:
      throw unknown('route', command);
  }
}

async function did(command: string | undefined, args: string[], { store, out }: RoutingCommandDeps): Promise<void> {
  const what = `did ${command ?? ''}`.trim();
  switch (command) {
    case 'add': {
      const { positionals } = parse(what, args, [], ['NUMBER', 'USER@DOMAIN']);
      const { username, domain } = parseUserAddress(positionals[1]!);
      await store.routing.addDid({ number: positionals[0]!, username, domain }).catch(fromStore(what));
      out(`added DID ${positionals[0]} → ${formatUserAddress(username, domain)}`);
      return;
    }
    case 'list': {
      parse(what, args, [], []);
      const dids = await store.routing.listDids().catch(fromStore(what));
      printTable(out, undefined, dids.map((d) => [d.number, formatUserAddress(d.username, d.domain)]), 'no DIDs');
      return;
    }
    case 'del': {
      const { positionals } = parse(what, args, [], ['NUMBER']);
      await store.routing.removeDid(positionals[0]!).catch(fromStore(what));
      out(`deleted DID ${positionals[0]}`);
      return;
    }
    default:
      throw unknown('did', command);
  }
}

async function trusted(command: string | undefined, args: string[], { store, out }: RoutingCommandDeps): Promise<void> {
  const what = `trusted ${command ?? ''}`.trim();
  switch (command) {
    case 'add': {
      const { positionals, values } = parse(what, args, ['description'], ['CIDR']);
      const t = await store.routing.addTrusted({ cidr: positionals[0]!, description: values.description ?? '' }).catch(fromStore(what));
      out(`added trusted source ${t.id}: ${t.cidr}`);
      return;
    }
    case 'list': {
      parse(what, args, [], []);
      const list = await store.routing.listTrusted().catch(fromStore(what));
      printTable(out, ['ID', 'CIDR', 'DESCRIPTION'], list.map((t) => [String(t.id), t.cidr, t.description]), 'no trusted sources (backends are always trusted)');
      return;
    }
    case 'del': {
      const { positionals } = parse(what, args, [], ['ID']);
      const id = parseId(what, positionals[0]!);
      await store.routing.removeTrusted(id).catch(fromStore(what));
      out(`deleted trusted source ${id}`);
      return;
    }
    default:
      throw unknown('trusted', command);
  }
}

function unknown(group: RoutingGroup, command: string | undefined): CliError {
  return unknownSubCommand(group, command, ROUTING_USAGE);
}

/** Runs `softswitch backend|route|did|trusted ARGS…` against the store; failures throw CliError. */
export async function runRoutingCommand(group: RoutingGroup, args: string[], deps: RoutingCommandDeps): Promise<void> {
  const [command, ...rest] = args;
  if (command === 'help' || command === '--help' || command === '-h') {
    for (const line of ROUTING_USAGE.split('\n')) deps.out(line);
    return;
  }
  switch (group) {
    case 'backend':
      return backend(command, rest, deps);
    case 'route':
      return route(command, rest, deps);
    case 'did':
      return did(command, rest, deps);
    case 'trusted':
      return trusted(command, rest, deps);
  }
}

function describeReload(body: unknown): string {
  const s = body as Partial<Record<'sets' | 'backends' | 'enabled' | 'routes' | 'dids' | 'trusted', unknown>>;
  if (typeof s === 'object' && s !== null && typeof s.backends === 'number') {
    return `reloaded: ${String(s.sets)} sets, ${s.backends} backends (${String(s.enabled)} enabled), ${String(s.routes)} routes, ${String(s.dids)} DIDs, ${String(s.trusted)} trusted sources`;
  }
  return `reloaded: ${JSON.stringify(body)}`;
}

/** `softswitch reload`: POST /reload to the running server and print what it answered. */
export async function runReloadCommand(args: string[], deps: ReloadCommandDeps): Promise<void> {
  parse('reload', args, [], []);
  const url = `${serverUrl(deps.httpListen)}/reload`;
  let res: Response;
  try {
    res = await (deps.fetch ?? fetch)(url, { method: 'POST', headers: bearer(deps.token), signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000) });
  } catch (err) {
    const reason = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError('CLI_ERR_NOT_FOUND', `reload: no softswitch server answered at ${url} (${reason}); is it running with http.listen = ${deps.httpListen}?`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: shown as text
  }
  // `{ code, message }`; `error` is what a server of an older version answered.
  const said = typeof body === 'object' && body !== null ? ((body as { message?: unknown }).message ?? (body as { error?: unknown }).error) : undefined;
  const error = typeof said === 'string' ? said : text;
  if (res.status === 401 || res.status === 429) {
    throw new CliError('CLI_ERR_INVALID', `reload: the server at ${url} refused the admin token (${res.status}: ${error}); check ${ADMIN_TOKEN_ENV} or that the CLI uses the server's store`);
  }
  if (res.status === 404) throw new CliError('CLI_ERR_NOT_FOUND', `reload: the server at ${url} has nothing to reload (${error})`);
  if (res.status !== 200) throw new CliError('CLI_ERR_STORE', `reload: the server answered ${res.status}: ${error}`);
  deps.out(describeReload(body));
}
