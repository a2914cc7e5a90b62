/**
 * `softswitch calls list`: the call records (CDRs) in the configured store, newest first, as a table for
 * people or as JSON lines (the same record shape as GET /v1/calls) for scripts. It reads the store
 * directly, like `user list`, so it works with the server stopped.
 */
import { parseArgs } from 'node:util';
import { MAX_CALL_PAGE } from '../../platform/store/index.js';
import { DEFAULT_PAGE, callToJson, parseInstant } from '../../history/routes.js';
import type { CallParty, CallQuery, CallRecord, CallRepository } from '../../platform/store/types.js';
import { CliError, fromStore, unknownSubCommand, usageError } from './cli-error.js';
import { printTable } from './routing-commands.js';
import { parseUserAddress } from './user-commands.js';

export const CALLS_USAGE = `usage:
  softswitch calls list [--user USER@DOMAIN] [--number N] [--since ISO|30m|2h|7d] [--limit N] [--json]
                                          call records, newest first (default the last ${DEFAULT_PAGE}, at most ${MAX_CALL_PAGE}):
                                          time, direction, caller → callee, disposition, duration, final code;
                                          --json: one record a line`;

const AGO_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

const usage = (message: string): CliError => usageError(message, CALLS_USAGE);

function invalid(option: string, value: string, expected: string): CliError {
  return new CliError('CLI_ERR_INVALID', `calls list: ${option} ${JSON.stringify(value)} is not valid: expected ${expected}`);
}

/** `--since`: a time (ISO-8601 or ms since the epoch) or how long ago (`30m`, `2h`, `7d`). */
export function parseSince(text: string, now: number): number {
  const ago = /^([1-9][0-9]{0,5})([mhd])$/.exec(text);
  const ms = ago === null ? parseInstant(text) : now - Number(ago[1]) * AGO_MS[ago[2]!]!;
  if (ms === undefined) throw invalid('--since', text, 'an ISO-8601 time (2026-12-07T08:00:00Z), ms since the epoch, or 30m, 2h, 7d');
  return ms;
}

/** The arguments of `calls list` as the repository's query, and whether to print JSON. */
export function parseCallListArgs(args: string[], now: number): { query: CallQuery; json: boolean } {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: { user: { type: 'string' }, number: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    throw usage(`calls list: ${(err as Error).message}`);
  }
  if (positionals.length > 0) throw usage(`calls list: unexpected argument ${JSON.stringify(positionals[0])}`);
  const query: CallQuery = { limit: DEFAULT_PAGE };
  if (values.user !== undefined) {
    const { username, domain } = parseUserAddress(values.user);
    query.user = `${username}@${domain}`;
  }
  if (values.number !== undefined) {
    if (values.number === '') throw invalid('--number', values.number, 'a number');
    query.number = values.number;
  }
  if (values.since !== undefined) query.since = parseSince(values.since, now);
  if (values.limit !== undefined) {
    const limit = /^[0-9]{1,4}$/.test(values.limit) ? Number(values.limit) : NaN;
    if (!(limit >= 1 && limit <= MAX_CALL_PAGE)) throw invalid('--limit', values.limit, `a whole number from 1 to ${MAX_CALL_PAGE}`);
    query.limit = limit;
  }
  return { query, json: values.json === true };
}

/** A party as one word: our user as user@domain, else its number, else its URI. */
function party(p: CallParty): string {
  if (p.user !== undefined) return `${p.user}@${p.domain ?? ''}`;
  return p.number ?? p.uri;
}

/** Whole seconds as `m:ss` or `h:mm:ss`. */
export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function row(c: CallRecord): string[] {
  const time = new Date(c.startedAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return [time, c.direction, `${party(c.caller)} → ${party(c.callee)}`, c.disposition, formatDuration(c.duration), String(c.finalCode)];
}

/** Runs `softswitch calls ARGS…` against the call records. */
export async function runCallCommand(args: string[], calls: CallRepository, out: (line: string) => void, now: () => number = Date.now): Promise<void> {
  const [command, ...rest] = args;
  switch (command) {
    case 'list': {
      const { query, json } = parseCallListArgs(rest, now());
      const page = await calls.list(query).catch(fromStore('calls list'));
      if (json) {
        for (const c of page.calls) out(JSON.stringify(callToJson(c)));
        return;
      }
      printTable(out, ['TIME', 'DIRECTION', 'CALLER → CALLEE', 'DISPOSITION', 'DURATION', 'CODE'], page.calls.map(row), 'no calls');
      if (page.next !== undefined) out(`(more: raise --limit, up to ${MAX_CALL_PAGE}, or narrow --since)`);
      return;
    }
    case 'help':
    case '--help':
    case '-h':
      for (const line of CALLS_USAGE.split('\n')) out(line);
      return;
    default:
      throw unknownSubCommand('calls', command, CALLS_USAGE);
  }
}
