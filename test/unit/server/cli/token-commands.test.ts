import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTempStore } from '../../../helpers/temp-store.js';
import { join } from 'node:path';
import { CliError, TOKEN_USAGE, parseExpires, runTokenCommand, withAdminToken, type CliErrorCode } from '../../../../server/cli/index.js';
import { hashAdminToken, type SqlStore } from '../../../../platform/store/index.js';
import { assertCliFails } from '../../../helpers/cli-errors.js';

const NOW = Date.parse('2026-12-07T04:00:00Z');

describe('softswitch token …', () => {
  let closeStore: (() => Promise<void>) | undefined;
  let store: SqlStore;
  const printed: string[] = [];

  async function run(...args: string[]): Promise<string[]> {
    const lines: string[] = [];
    await runTokenCommand(args, store, (line) => lines.push(line), () => NOW);
    printed.push(...lines);
    return lines;
  }

  function fails(args: string[], code: CliErrorCode, message: RegExp): Promise<void> {
    return assertCliFails(run(...args), `token ${args.join(' ')}`, code, message);
  }

  before(async () => {
    ({ store, close: closeStore } = await openTempStore());
  });

  after(async () => {
    await closeStore?.();
  });

  it('token create prints the token once, as its last line: sst_ and 43 base64url characters; the store keeps only its SHA-256', async () => {
    const lines = await run('create', '--name', 'ci', '--expires', '30d');
    assert.equal(lines.length, 2);
    assert.equal(lines[0], 'created token 1 "ci", expires 2027-01-06T04:00:00Z; it is shown only now, keep it secret:');
    const token = lines[1]!;
    assert.match(token, /^sst_[A-Za-z0-9_-]{43}$/);
    const rows = (await store.knex('admin_tokens').select()) as Array<Record<string, unknown>>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.hash, hashAdminToken(token));
    assert.ok(!JSON.stringify(rows).includes(token.slice(4)), 'the token text is nowhere in the table');
    assert.equal((await store.tokens.lookup(token))?.name, 'ci');
  });

  it('two tokens are never the same', async () => {
    const a = (await run('create', '--name', 'a1', '--expires', 'never'))[1];
    const b = (await run('create', '--name', 'b1', '--expires', '12h'))[1];
    assert.notEqual(a, b);
  });

  it('token list shows id, name, times and status, never a secret', async () => {
    await store.tokens.create({ name: 'old', expiresAt: NOW - 1000 });
    const lines = await run('list');
    assert.deepEqual(lines.map((l) => l.split(/ {2,}/)), [
      ['ID', 'NAME', 'CREATED', 'EXPIRES', 'LAST USED', 'STATUS'],
      ['1', 'ci', lines[1]!.split(/ {2,}/)[2], '2027-01-06T04:00:00Z', '-', 'active'],
      ['2', 'a1', lines[2]!.split(/ {2,}/)[2], 'never', '-', 'active'],
      ['3', 'b1', lines[3]!.split(/ {2,}/)[2], '2026-12-07T16:00:00Z', '-', 'active'],
      ['4', 'old', lines[4]!.split(/ {2,}/)[2], '2026-12-07T03:59:59Z', '-', 'expired'],
    ]);
    assert.doesNotMatch(lines.join('\n'), /sst_|[0-9a-f]{64}/);
  });

  it('token revoke takes a name or an id; the token no longer opens anything', async () => {
    const token = (await run('create', '--name', 'gone'))[1]!;
    assert.ok(await store.tokens.lookup(token));
    assert.deepEqual(await run('revoke', 'gone'), ['revoked token 5 "gone"']);
    assert.equal(await store.tokens.lookup(token), undefined);
    assert.deepEqual(await run('revoke', '4'), ['revoked token 4 "old"']);
    await fails(['revoke', 'gone'], 'CLI_ERR_NOT_FOUND', /no token named gone/);
    await fails(['revoke', '99'], 'CLI_ERR_NOT_FOUND', /no token with id 99/);
  });

  it('the default expiry is 90 days', async () => {
    const lines = await run('create', '--name', 'default');
    assert.match(lines[0]!, /expires 2027-03-07T04:00:00Z/);
  });

  it('refuses a duplicate name, a bad name, a cli- name, a bad expiry, and missing or extra arguments', async () => {
    await fails(['create', '--name', 'ci'], 'CLI_ERR_DUPLICATE', /a token named ci already exists/);
    await fails(['create', '--name', '9lives'], 'CLI_ERR_INVALID', /starting with a letter/);
    await fails(['create', '--name', 'a b'], 'CLI_ERR_INVALID', /is not valid/);
    await fails(['create', '--name', 'cli-mine'], 'CLI_ERR_INVALID', /kept for the tokens the CLI makes/);
    for (const bad of ['30', '0d', '1y', '1.5d', '3651d', 'forever']) await fails(['create', '--name', 'x', '--expires', bad], 'CLI_ERR_INVALID', /--expires/);
    await fails(['create'], 'CLI_ERR_USAGE', /--name NAME is required/);
    await fails(['create', '--name', 'x', 'extra'], 'CLI_ERR_USAGE', /unexpected argument "extra"/);
    await fails(['revoke'], 'CLI_ERR_USAGE', /missing NAME\|ID/);
    await fails(['list', '--all'], 'CLI_ERR_USAGE', /Unknown option '--all'/);
    await fails(['rotate'], 'CLI_ERR_USAGE', /unknown sub-command "rotate"/);
    await fails([], 'CLI_ERR_USAGE', /missing sub-command/);
  });

  it('parseExpires reads s, m, h and d, and never', () => {
    assert.equal(parseExpires('90s'), 90_000);
    assert.equal(parseExpires('45m'), 2_700_000);
    assert.equal(parseExpires('12h'), 43_200_000);
    assert.equal(parseExpires('30d'), 2_592_000_000);
    assert.equal(parseExpires('never'), undefined);
  });

  it('help prints the usage of create, list and revoke', async () => {
    assert.deepEqual(await run('help'), TOKEN_USAGE.split('\n'));
    for (const sub of ['create', 'list', 'revoke']) assert.match(TOKEN_USAGE, new RegExp(`softswitch token ${sub}\\b`));
  });

  it('withAdminToken mints a short-lived cli- token, deletes it afterwards, and clears expired ones left by a killed CLI', async () => {
    await store.tokens.create({ name: 'cli-left', expiresAt: Date.now() - 1 });
    let seen: string | undefined;
    await withAdminToken(store, undefined, async (token) => {
      seen = token;
      const record = await store.tokens.lookup(token);
      assert.match(record?.name ?? '', /^cli-[0-9a-f]{12}$/);
      assert.ok(record!.expiresAt! - Date.now() <= 120_000 && record!.expiresAt! > Date.now());
    });
    assert.equal(await store.tokens.lookup(seen!), undefined);
    assert.ok(!(await store.tokens.list()).some((t) => t.name.startsWith('cli-')));
    // A preset token (SOFTSWITCH_ADMIN_TOKEN) is used as it is; nothing is written.
    const before = (await store.tokens.list()).length;
    assert.equal(await withAdminToken(store, 'sst_preset', async (token) => token), 'sst_preset');
    assert.equal((await store.tokens.list()).length, before);
  });

  it('never prints a token except the one line of create', () => {
    const tokens = printed.filter((l) => /^sst_/.test(l));
    assert.equal(tokens.length, 5);
    for (const t of tokens) assert.equal(printed.filter((l) => l.includes(t)).length, 1);
  });
});
