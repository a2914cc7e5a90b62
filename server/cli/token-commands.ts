/**
 * `softswitch token create|list|revoke`: admin tokens for the HTTP API (`POST /reload`, `/v1/…`, the
 * details of `/health` on a public address). The token is printed once, at creation; the store keeps
 * only its SHA-256, so a lost token cannot be shown again: revoke it and create another.
 *
 * The CLI commands that talk to the running server (`reload`, `backend list`) have the store, the same
 * privilege as a token, so they mint a short-lived one for themselves (withAdminToken), unless
 * SOFTSWITCH_ADMIN_TOKEN gives one (a CLI on another machine than the store's, or a script).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { AdminToken, Store } from '../../platform/store/index.js';
import { CliError, fromStore, unknownSubCommand, usageError } from './cli-error.js';

export const TOKEN_USAGE = `usage:
  softswitch token create --name NAME [--expires 30d|12h|45m|never]
                                          create an admin token for the HTTP API and print it (once);
                                          default expiry 90d
  softswitch token list                   list tokens (never their secret)
  softswitch token revoke NAME|ID         delete a token (the server stops taking it within 5 s)`;

/** The environment variable a CLI command uses instead of minting its own token. */
export const ADMIN_TOKEN_ENV = 'SOFTSWITCH_ADMIN_TOKEN';
/** Names the CLI mints for itself start so; operators' tokens may not. */
export const CLI_TOKEN_PREFIX = 'cli-';
/** Long enough for a reload that resolves backend names (10 s timeout), short enough to be worthless soon. */
const CLI_TOKEN_LIFETIME_MS = 120_000;
const DEFAULT_EXPIRES = '90d';
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Ten years: further is "never" in disguise. */
const MAX_EXPIRES_MS = 3650 * 86_400_000;

const usage = (message: string): CliError => usageError(message, TOKEN_USAGE);

/** `30d`, `12h`, `45m`, `90s` → ms; `never` → undefined. */
export function parseExpires(text: string): number | undefined {
  if (text === 'never') return undefined;
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(text);
  const ms = m === null ? NaN : Number(m[1]) * UNIT_MS[m[2]!]!;
  if (!(ms <= MAX_EXPIRES_MS)) {
    throw new CliError('CLI_ERR_INVALID', `token create: --expires ${JSON.stringify(text)} is not valid: expected a number and s, m, h or d (30d, 12h), up to 3650d, or never`);
  }
  return ms;
}

const iso = (ms: number | undefined, none: string): string => (ms === undefined ? none : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

function status(t: AdminToken, now: number): string {
  return t.expiresAt !== undefined && t.expiresAt <= now ? 'expired' : 'active';
}

/** Runs `softswitch token ARGS…` against the store; the token of `create` is the last line printed. */
export async function runTokenCommand(args: string[], store: Store, out: (line: string) => void, now: () => number = Date.now): Promise<void> {
  const [command, ...rest] = args;
  const what = `token ${command ?? ''}`.trim();
  const parse = (options: Record<string, { type: 'string' }>, count: number, names: string) => {
    let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
    try {
      parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
    } catch (err) {
      throw usage(`${what}: ${(err as Error).message}`);
    }
    if (parsed.positionals.length < count) throw usage(`${what}: missing ${names}`);
    if (parsed.positionals.length > count) throw usage(`${what}: unexpected argument ${JSON.stringify(parsed.positionals[count])}`);
    return parsed;
  };
  switch (command) {
    case 'create': {
      const { values } = parse({ name: { type: 'string' }, expires: { type: 'string' } }, 0, '');
      const name = values.name;
      if (typeof name !== 'string') throw usage('token create: --name NAME is required');
      if (name.startsWith(CLI_TOKEN_PREFIX)) throw new CliError('CLI_ERR_INVALID', `token create: names starting with "${CLI_TOKEN_PREFIX}" are kept for the tokens the CLI makes for itself`);
      const lifetime = parseExpires(typeof values.expires === 'string' ? values.expires : DEFAULT_EXPIRES);
      const { token, record } = await store.tokens.create({ name, expiresAt: lifetime === undefined ? undefined : now() + lifetime }).catch(fromStore(what));
      out(`created token ${record.id} "${record.name}", expires ${iso(record.expiresAt, 'never')}; it is shown only now, keep it secret:`);
      out(token);
      return;
    }
    case 'list': {
      parse({}, 0, '');
      const tokens = await store.tokens.list().catch(fromStore(what));
      if (tokens.length === 0) {
        out('no tokens');
        return;
      }
      const t = now();
      const rows = [['ID', 'NAME', 'CREATED', 'EXPIRES', 'LAST USED', 'STATUS'], ...tokens.map((k) => [
        String(k.id), k.name, iso(k.createdAt, '-'), iso(k.expiresAt, 'never'), iso(k.lastUsedAt, '-'), status(k, t),
      ])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
      return;
    }
    case 'revoke': {
      const { positionals } = parse({}, 1, 'NAME|ID');
      const arg = positionals[0]!;
      const key = /^[0-9]+$/.test(arg) ? Number(arg) : arg;
      const revoked = await store.tokens.revoke(key).catch(fromStore(what));
      out(`revoked token ${revoked.id} "${revoked.name}"`);
      return;
    }
    case 'help':
    case '--help':
    case '-h':
      for (const line of TOKEN_USAGE.split('\n')) out(line);
      return;
    default:
      throw unknownSubCommand('token', command, TOKEN_USAGE);
  }
}

/**
 * Runs `fn` with an admin token for the running server: `preset` (SOFTSWITCH_ADMIN_TOKEN) when given,
 * else one minted in the store for CLI_TOKEN_LIFETIME_MS and deleted afterwards (a CLI killed in between
 * leaves an expired `cli-…` token, deleted by the next one).
 */
export async function withAdminToken<T>(store: Store, preset: string | undefined, fn: (token: string) => Promise<T>): Promise<T> {
  if (preset !== undefined && preset !== '') return fn(preset);
  const now = Date.now();
  await store.tokens.purgeExpired(now, CLI_TOKEN_PREFIX).catch(fromStore('admin token'));
  const { token, record } = await store.tokens
    .create({ name: `${CLI_TOKEN_PREFIX}${randomBytes(6).toString('hex')}`, expiresAt: now + CLI_TOKEN_LIFETIME_MS })
    .catch(fromStore('admin token'));
  try {
    return await fn(token);
  } finally {
    await store.tokens.revoke(record.id).catch(() => {});
  }
}
