/**
 * `softswitch calls list` (server/cli/call-commands.ts) over an in-memory CallRepository: the arguments as
 * the repository's query, the table newest first, JSON lines, and the errors.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CALLS_USAGE, CliError, formatDuration, parseCallListArgs, runCallCommand, type CliErrorCode } from '../../../../server/cli/index.js';
import { MemoryCallRepository, callRecord, userParty } from '../../../helpers/memory-calls.js';
import { assertCliFails } from '../../../helpers/cli-errors.js';

const NOW = Date.parse('2026-12-07T08:00:00Z');
const T0 = Date.parse('2026-12-07T07:00:00Z');

function repository(): MemoryCallRepository {
  return new MemoryCallRepository([
    callRecord('a', T0, { caller: userParty('alice'), callee: userParty('bob'), duration: 65 }),
    callRecord('b', T0 + 600_000, {
      direction: 'user-pstn', callee: { number: '+4930123456', uri: 'sip:+4930123456@example.com' },
      disposition: 'busy', answeredAt: undefined, duration: 3, billableSeconds: 0, finalCode: 486,
    }),
    callRecord('c', T0 + 1_200_000, {
      direction: 'pstn-user', caller: { number: '+15551234567', uri: 'sip:+15551234567@trunk.example.net' }, callee: userParty('alice'), duration: 3725,
    }),
  ]);
}

async function run(calls: MemoryCallRepository, ...args: string[]): Promise<string[]> {
  const lines: string[] = [];
  await runCallCommand(args, calls, (line) => lines.push(line), () => NOW);
  return lines;
}

function fails(args: string[], code: CliErrorCode, message: RegExp): Promise<void> {
  return assertCliFails(run(repository(), ...args), `calls ${args.join(' ')}`, code, message);
}

describe('softswitch calls list', () => {
  it('without options asks for the last 50 calls of everyone', () => {
    assert.deepEqual(parseCallListArgs([], NOW), { query: { limit: 50 }, json: false });
  });

  it('turns --user, --number, --since (relative or a time) and --limit into the query', () => {
    assert.deepEqual(parseCallListArgs(['--user', 'alice@Example.COM', '--number', '+4930123456', '--since', '2h', '--limit', '10', '--json'], NOW), {
      query: { user: 'alice@example.com', number: '+4930123456', since: NOW - 2 * 3_600_000, limit: 10 },
      json: true,
    });
    assert.equal(parseCallListArgs(['--since', '30m'], NOW).query.since, NOW - 30 * 60_000);
    assert.equal(parseCallListArgs(['--since', '7d'], NOW).query.since, NOW - 7 * 86_400_000);
    assert.equal(parseCallListArgs(['--since', '2026-12-01T00:00:00Z'], NOW).query.since, Date.parse('2026-12-01T00:00:00Z'));
    assert.equal(parseCallListArgs(['--since', '1764547200000'], NOW).query.since, 1764547200000);
  });

  it('prints a table newest first: time, direction, caller → callee, disposition, duration, final code', async () => {
    const lines = await run(repository(), 'list');
    assert.deepEqual(lines, [
      'TIME                  DIRECTION  CALLER → CALLEE                      DISPOSITION  DURATION  CODE',
      '2026-12-07T07:20:00Z  pstn-user  +15551234567 → alice@example.com     answered     1:02:05   200',
      '2026-12-07T07:10:00Z  user-pstn  alice@example.com → +4930123456      busy         0:03      486',
      '2026-12-07T07:00:00Z  user-user  alice@example.com → bob@example.com  answered     1:05      200',
    ]);
  });

  it('passes the filters to the repository and says when there are more calls than --limit', async () => {
    const calls = repository();
    const lines = await run(calls, 'list', '--user', 'alice@example.com', '--limit', '2');
    assert.deepEqual(calls.queries, [{ user: 'alice@example.com', limit: 2 }]);
    assert.equal(lines.length, 4);
    assert.match(lines[1]!, /^2026-12-07T07:20:00Z/);
    assert.match(lines[3]!, /^\(more: raise --limit/);
    assert.deepEqual(await run(repository(), 'list', '--since', '5m'), ['no calls']);
  });

  it('--json prints one record a line, times as ISO-8601 as the API does', async () => {
    const lines = await run(repository(), 'list', '--json');
    assert.equal(lines.length, 3);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(records.map((r) => r.id), ['c', 'b', 'a']);
    assert.equal(records[0]!.startedAt, '2026-12-07T07:20:00.000Z');
    assert.equal(records[1]!.finalCode, 486);
    assert.ok(!('answeredAt' in records[1]!));
  });

  it('refuses bad arguments, naming them', async () => {
    await fails(['list', '--since', 'yesterday'], 'CLI_ERR_INVALID', /--since "yesterday" is not valid/);
    await fails(['list', '--since', '0d'], 'CLI_ERR_INVALID', /--since "0d"/);
    await fails(['list', '--limit', '0'], 'CLI_ERR_INVALID', /--limit "0" is not valid: expected a whole number from 1 to 500/);
    await fails(['list', '--limit', '501'], 'CLI_ERR_INVALID', /--limit "501"/);
    await fails(['list', '--user', 'alice'], 'CLI_ERR_INVALID', /invalid address "alice"/);
    await fails(['list', '--colour', 'blue'], 'CLI_ERR_USAGE', /calls list: .*colour/);
    await fails(['list', 'extra'], 'CLI_ERR_USAGE', /unexpected argument "extra"/);
    await fails([], 'CLI_ERR_USAGE', /missing sub-command/);
    await fails(['delete'], 'CLI_ERR_USAGE', /unknown sub-command "delete"/);
  });

  it('help prints the usage', async () => {
    assert.deepEqual(await run(repository(), 'help'), CALLS_USAGE.split('\n'));
  });

  it('formats durations as m:ss, or h:mm:ss from an hour', () => {
    assert.equal(formatDuration(0), '0:00');
    assert.equal(formatDuration(65), '1:05');
    assert.equal(formatDuration(3725), '1:02:05');
  });
});
