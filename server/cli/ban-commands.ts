/**
 * `softswitch ban list|add|lift`: the running server's ban list (flood and password-guessing bans live
 * in the server's memory, replicated to every worker), through its admin API (/v1/bans).
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { CliError } from './cli-error.js';
import { serverUrl } from './routing-commands.js';

export const BAN_USAGE = `usage:
  softswitch ban list                     the sources banned now (floods, password guessing, by hand)
  softswitch ban add ADDRESS [--seconds N] [--reason TEXT]
                                          ban a source by hand (default 3600 s)
  softswitch ban lift ADDRESS             lift a ban at once, on every worker`;

export interface BanCommandDeps {
  httpListen: string;
  token: string;
  out: (line: string) => void;
  fetch?: typeof fetch;
}

interface BanJson {
  address: string;
  reason: string;
  since: string;
  until: string;
}

export async function runBanCommand(args: string[], deps: BanCommandDeps): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { seconds: { type: 'string' }, reason: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError('CLI_ERR_USAGE', `ban: ${(err as Error).message}`);
  }
  const [command, address, extra] = parsed.positionals;
  if (command === undefined || command === 'help') {
    for (const line of BAN_USAGE.split('\n')) deps.out(line);
    return;
  }
  if (extra !== undefined) throw new CliError('CLI_ERR_USAGE', `ban: unexpected argument ${JSON.stringify(extra)}`);
  if (command === 'list') {
    const body = (await call(deps, 'GET', '/v1/bans')) as { bans: BanJson[] };
    if (body.bans.length === 0) return deps.out('no bans');
    deps.out(['address', 'reason', 'since', 'until'].join('\t'));
    for (const b of body.bans) deps.out([b.address, b.reason, b.since, b.until].join('\t'));
    return;
  }
  if (command !== 'add' && command !== 'lift') throw new CliError('CLI_ERR_USAGE', `ban: unknown sub-command ${JSON.stringify(command)}`);
  if (address === undefined) throw new CliError('CLI_ERR_USAGE', `ban ${command}: missing ADDRESS`);
  if (isIP(address) === 0) throw new CliError('CLI_ERR_INVALID', `ban ${command}: ${JSON.stringify(address)} is not an IP address`);
  if (command === 'lift') {
    await call(deps, 'DELETE', `/v1/bans/${encodeURIComponent(address)}`);
    return deps.out(`lifted: ${address}`);
  }
  const seconds = parsed.values.seconds === undefined ? 3600 : Number(parsed.values.seconds);
  if (!Number.isInteger(seconds) || seconds < 1) throw new CliError('CLI_ERR_INVALID', `ban add: --seconds must be a positive whole number, got ${JSON.stringify(parsed.values.seconds)}`);
  const body = (await call(deps, 'POST', '/v1/bans', { address, seconds, reason: parsed.values.reason ?? 'manual' })) as { ban: BanJson };
  deps.out(`banned: ${body.ban.address} until ${body.ban.until}`);
}

async function call(deps: BanCommandDeps, method: string, path: string, body?: object): Promise<unknown> {
  const url = `${serverUrl(deps.httpListen)}${path}`;
  let res: Response;
  try {
    res = await (deps.fetch ?? fetch)(url, {
      method,
      headers: { authorization: `Bearer ${deps.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const reason = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError('CLI_ERR_NOT_FOUND', `ban: no softswitch server answered at ${url} (${reason})`);
  }
  // `{ code, message }`; `error` is what a server of an older version answered.
  const json = (await res.json().catch(() => ({}))) as { message?: string; error?: string };
  const said = json.message ?? json.error;
  if (res.status === 404 && method === 'DELETE') throw new CliError('CLI_ERR_NOT_FOUND', `ban lift: ${said ?? 'not banned'}`);
  if (res.status < 200 || res.status >= 300) throw new CliError('CLI_ERR_INVALID', `ban: the server answered ${res.status}: ${said ?? ''}`);
  return json;
}
