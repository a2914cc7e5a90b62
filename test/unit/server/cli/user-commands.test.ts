import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTempStore } from '../../../helpers/temp-store.js';
import { join } from 'node:path';
import { CliError, USER_USAGE, readFirstLine, runUserCommand, type CliErrorCode, type PasswordSources } from '../../../../server/cli/index.js';
import { Readable } from 'node:stream';
import { computeHA1, utf8ToWire } from '../../../../src/sip/index.js';
import type { SqlStore } from '../../../../platform/store/index.js';

describe('softswitch user …', () => {
  let closeStore: (() => Promise<void>) | undefined;
  let store: SqlStore;
  /** Every line any command printed, to check that no password or hash ever shows. */
  const printed: string[] = [];

  async function run(...args: string[]): Promise<string[]> {
    return runWith({}, ...args);
  }

  async function runWith(sources: PasswordSources, ...args: string[]): Promise<string[]> {
    const lines: string[] = [];
    await runUserCommand(args, store, (line) => lines.push(line), sources);
    printed.push(...lines);
    return lines;
  }

  async function ha1Md5(username: string, domain: string): Promise<string | undefined> {
    return (await store.subscribers.get(username, domain))?.ha1Md5;
  }

  async function fails(args: string[], code: CliErrorCode, exitCode: number, message: RegExp): Promise<CliError> {
    let caught: unknown;
    try {
      await run(...args);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof CliError, `expected a CliError from "user ${args.join(' ')}", got ${String(caught)}`);
    assert.equal(caught.code, code);
    assert.equal(caught.exitCode, exitCode);
    assert.match(caught.message, message);
    printed.push(caught.message);
    return caught;
  }

  before(async () => {
    ({ store, close: closeStore } = await openTempStore());
  });

  after(async () => {
    await closeStore?.();
  });

  describe('user add', () => {
    it('adds the subscriber with HA1 of its password for every algorithm and prints the address', async () => {
      assert.deepEqual(await run('add', 'alice@example.com', '--password', 'wonderland'), ['added alice@example.com']);
      const s = await store.subscribers.get('alice', 'example.com');
      assert.equal(s?.ha1Md5, computeHA1('MD5', 'alice', 'example.com', 'wonderland'));
      assert.equal(s?.ha1Sha256, computeHA1('SHA-256', 'alice', 'example.com', 'wonderland'));
      assert.equal(s?.ha1Sha512_256, computeHA1('SHA-512-256', 'alice', 'example.com', 'wonderland'));
    });

    it('accepts -p and --password=VALUE, and lower-cases the domain', async () => {
      assert.deepEqual(await run('add', 'bob@Example.COM', '-p', 'b0b'), ['added bob@example.com']);
      assert.deepEqual(await run('add', '--password=c4rol', 'carol@other.example.org'), ['added carol@other.example.org']);
      assert.ok(await store.domains.exists('other.example.org'));
    });

    it('accepts an IPv4 or [IPv6] domain and a user of SIP user characters', async () => {
      await run('add', '+15551234;phone-context=x@192.0.2.1', '--password', 'x1');
      await run('add', "o'brien.(home)@[2001:db8::1]", '--password', 'x2');
      assert.ok(await store.subscribers.get('+15551234;phone-context=x', '192.0.2.1'));
      assert.ok(await store.subscribers.get("o'brien.(home)", '[2001:db8::1]'));
    });

    it('resolves %HH escapes and takes non-ASCII user names as UTF-8', async () => {
      assert.deepEqual(await run('add', 'j%C3%A9r%C3%B4me@example.com', '--password', 'pw'), ['added j%C3%A9r%C3%B4me@example.com']);
      const s = await store.subscribers.get('jérôme', 'example.com');
      assert.equal(s?.ha1Md5, computeHA1('MD5', utf8ToWire('jérôme'), 'example.com', 'pw'));
      await fails(['add', 'jérôme@example.com', '--password', 'pw'], 'CLI_ERR_DUPLICATE', 1, /already exists/);
    });

    it('refuses a user that exists (exit 1)', async () => {
      await fails(['add', 'alice@example.com', '--password', 'again'], 'CLI_ERR_DUPLICATE', 1, /^user alice@example\.com already exists$/);
    });

    it('refuses a missing password and an empty one', async () => {
      await fails(['add', 'dave@example.com'], 'CLI_ERR_INVALID', 1, /password is required \(--password-stdin, SOFTSWITCH_USER_PASSWORD, a terminal to type it, or --password PASSWORD\)/);
      await fails(['add', 'dave@example.com', '--password', ''], 'CLI_ERR_INVALID', 1, /password must not be empty/);
      await fails(['add', 'dave@example.com', '--password='], 'CLI_ERR_INVALID', 1, /password must not be empty/);
      await fails(['add', 'dave@example.com', '--password'], 'CLI_ERR_USAGE', 2, /argument missing/);
      assert.equal(await store.subscribers.get('dave', 'example.com'), undefined);
    });

    const badAddresses: Array<[string, RegExp]> = [
      ['alice', /expected user@domain/],
      ['alice@', /domain is empty/],
      ['@example.com', /user part is empty/],
      ['al@ice@example.com', /expected user@domain/],
      ['al ice@example.com', /" " may not appear in the user part \(use %20\)/],
      ['alice:pw@example.com', /":" may not appear/],
      ['<alice>@example.com', /"<" may not appear/],
      ['al%zzice@example.com', /not followed by two hex digits/],
      ['al%00ice@example.com', /control character/],
      ['al%FFice@example.com', /not UTF-8/],
      ['alice@exa_mple.com', /not a host name or IP address/],
      ['alice@example.com:5060', /not a host name or IP address/],
      ['alice@-example.com', /not a host name or IP address/],
      ['alice@example.123', /not a host name or IP address/],
      ['alice@2001:db8::1', /IPv6 address goes in brackets/],
      ['sip:alice@example.com', /":" may not appear/],
    ];
    for (const [address, reason] of badAddresses) {
      it(`refuses the address ${JSON.stringify(address)}`, async () => {
        await fails(['add', address, '--password', 'pw'], 'CLI_ERR_INVALID', 1, new RegExp(`^invalid address .*${reason.source}`));
      });
    }

    it('refuses an unknown option, a missing address and an extra argument with the usage (exit 2)', async () => {
      await fails(['add', 'eve@example.com', '--pasword', 'x'], 'CLI_ERR_USAGE', 2, /--pasword[\s\S]*usage:/);
      await fails(['add', '--password', 'x'], 'CLI_ERR_USAGE', 2, /missing USER@DOMAIN[\s\S]*usage:/);
      await fails(['add', 'eve@example.com', 'extra', '--password', 'x'], 'CLI_ERR_USAGE', 2, /unexpected argument "extra"/);
    });
  });

  describe('user list', () => {
    it('prints one user@domain a line, by domain then user, user parts escaped', async () => {
      assert.deepEqual(await run('list'), [
        '+15551234;phone-context=x@192.0.2.1',
        "o'brien.(home)@[2001:db8::1]",
        'alice@example.com',
        'bob@example.com',
        'j%C3%A9r%C3%B4me@example.com',
        'carol@other.example.org',
      ]);
    });

    it('prints only the given domain, matched case-insensitively', async () => {
      assert.deepEqual(await run('list', 'OTHER.example.org'), ['carol@other.example.org']);
    });

    it('prints nothing for a domain without subscribers', async () => {
      assert.deepEqual(await run('list', 'empty.example.net'), []);
    });

    it('refuses a domain that is not a host name, and a second argument', async () => {
      await fails(['list', 'not_a_host'], 'CLI_ERR_INVALID', 1, /"not_a_host" is not a host name or IP address/);
      await fails(['list', 'example.com', 'x'], 'CLI_ERR_USAGE', 2, /unexpected argument "x"/);
      await fails(['list', '--password', 'x'], 'CLI_ERR_USAGE', 2, /--password/);
    });
  });

  describe('user disable and enable', () => {
    it('disables a user (listed as disabled, kept with its HA1s) and enables it again', async () => {
      const before = await store.subscribers.get('bob', 'example.com');
      assert.deepEqual(await run('disable', 'bob@example.com'), ['disabled bob@example.com']);
      assert.equal((await store.subscribers.get('bob', 'example.com'))?.enabled, false);
      assert.equal((await store.subscribers.get('bob', 'example.com'))?.ha1Md5, before?.ha1Md5);
      assert.ok((await run('list', 'example.com')).includes('bob@example.com (disabled)'));
      assert.deepEqual(await run('enable', 'bob@example.com'), ['enabled bob@example.com']);
      assert.ok((await run('list', 'example.com')).includes('bob@example.com'));
    });

    it('refuses an unknown user (exit 1) and a missing address (exit 2)', async () => {
      await fails(['disable', 'nobody@example.com'], 'CLI_ERR_NOT_FOUND', 1, /^no such user nobody@example\.com$/);
      await fails(['enable'], 'CLI_ERR_USAGE', 2, /./);
    });
  });

  describe('user passwd', () => {
    it('replaces every HA1 with those of the new password', async () => {
      assert.deepEqual(await run('passwd', 'bob@example.com', '--password', 'n3w-b0b'), ['changed the password of bob@example.com']);
      const s = await store.subscribers.get('bob', 'example.com');
      assert.equal(s?.ha1Md5, computeHA1('MD5', 'bob', 'example.com', 'n3w-b0b'));
      assert.equal(s?.ha1Sha256, computeHA1('SHA-256', 'bob', 'example.com', 'n3w-b0b'));
      assert.equal(s?.ha1Sha512_256, computeHA1('SHA-512-256', 'bob', 'example.com', 'n3w-b0b'));
    });

    it('refuses an unknown user (exit 1)', async () => {
      await fails(['passwd', 'nobody@example.com', '--password', 'x'], 'CLI_ERR_NOT_FOUND', 1, /^no such user nobody@example\.com$/);
    });

    it('refuses a missing or empty password', async () => {
      await fails(['passwd', 'bob@example.com'], 'CLI_ERR_INVALID', 1, /password is required/);
      await fails(['passwd', 'bob@example.com', '--password', ''], 'CLI_ERR_INVALID', 1, /must not be empty/);
    });

    it('refuses a bad address', async () => {
      await fails(['passwd', 'bob', '--password', 'x'], 'CLI_ERR_INVALID', 1, /invalid address "bob"/);
    });
  });

  describe('user del', () => {
    it('deletes the subscriber', async () => {
      assert.deepEqual(await run('del', 'carol@other.example.org'), ['deleted carol@other.example.org']);
      assert.equal(await store.subscribers.get('carol', 'other.example.org'), undefined);
      assert.deepEqual(await run('list', 'other.example.org'), []);
    });

    it('deletes a user typed with escapes as listed', async () => {
      assert.deepEqual(await run('del', 'j%c3%a9r%c3%b4me@example.com'), ['deleted j%C3%A9r%C3%B4me@example.com']);
      assert.equal(await store.subscribers.get('jérôme', 'example.com'), undefined);
    });

    it('refuses an unknown user (exit 1)', async () => {
      await fails(['del', 'carol@other.example.org'], 'CLI_ERR_NOT_FOUND', 1, /^no such user carol@other\.example\.org$/);
    });

    it('refuses a bad address and a missing one', async () => {
      await fails(['del', 'carol@'], 'CLI_ERR_INVALID', 1, /invalid address/);
      await fails(['del'], 'CLI_ERR_USAGE', 2, /missing USER@DOMAIN/);
    });
  });

  describe('sub-commands', () => {
    it('an unknown sub-command fails with its name and the usage (exit 2)', async () => {
      const err = await fails(['remove', 'alice@example.com'], 'CLI_ERR_USAGE', 2, /unknown sub-command "remove"/);
      assert.ok(err.message.endsWith(USER_USAGE));
    });

    it('no sub-command fails with the usage (exit 2)', async () => {
      const err = await fails([], 'CLI_ERR_USAGE', 2, /missing sub-command/);
      assert.ok(err.message.endsWith(USER_USAGE));
    });

    it('help prints the usage, naming every sub-command', async () => {
      const lines = await run('help');
      assert.deepEqual(lines, USER_USAGE.split('\n'));
      for (const sub of ['add', 'list', 'del', 'passwd']) assert.match(USER_USAGE, new RegExp(`softswitch user ${sub}\\b`));
    });
  });

  describe('where the password comes from (never the command line that ps shows)', () => {
    it('--password-stdin takes the first line of standard input, without its CRLF, and nothing after it', async () => {
      const stdin = () => readFirstLine(Readable.from(['st', 'd1n-secret\r\nsecond line\n']));
      assert.deepEqual(await runWith({ readStdin: stdin }, 'add', 'erin@example.com', '--password-stdin'), ['added erin@example.com']);
      assert.equal(await ha1Md5('erin', 'example.com'), computeHA1('MD5', 'erin', 'example.com', 'std1n-secret'));
      const noNewline = () => readFirstLine(Readable.from(['n0-newline']));
      assert.deepEqual(await runWith({ readStdin: noNewline }, 'passwd', 'erin@example.com', '--password-stdin'), ['changed the password of erin@example.com']);
      assert.equal(await ha1Md5('erin', 'example.com'), computeHA1('MD5', 'erin', 'example.com', 'n0-newline'));
    });

    it('an empty first line on standard input is an empty password, refused', async () => {
      await assert.rejects(runWith({ readStdin: () => readFirstLine(Readable.from(['\nlater'])) }, 'add', 'fay@example.com', '--password-stdin'), /password must not be empty/);
      assert.equal(await store.subscribers.get('fay', 'example.com'), undefined);
    });

    it('SOFTSWITCH_USER_PASSWORD is used when no option gives the password; --password-stdin wins over it', async () => {
      assert.deepEqual(await runWith({ env: 'env-s3cret' }, 'add', 'gus@example.com'), ['added gus@example.com']);
      assert.equal(await ha1Md5('gus', 'example.com'), computeHA1('MD5', 'gus', 'example.com', 'env-s3cret'));
      await runWith({ env: 'env-s3cret', readStdin: async () => 'piped-s3cret' }, 'passwd', 'gus@example.com', '--password-stdin');
      assert.equal(await ha1Md5('gus', 'example.com'), computeHA1('MD5', 'gus', 'example.com', 'piped-s3cret'));
    });

    it('with nothing given it asks on the terminal twice and refuses two different answers', async () => {
      const asked: string[] = [];
      const answers = ['typed-s3cret', 'typed-s3cret'];
      const prompt = async (q: string) => {
        asked.push(q);
        return answers.shift()!;
      };
      assert.deepEqual(await runWith({ prompt }, 'add', 'hal@example.com'), ['added hal@example.com']);
      assert.deepEqual(asked, ['Password for hal@example.com: ', 'Again: ']);
      assert.equal(await ha1Md5('hal', 'example.com'), computeHA1('MD5', 'hal', 'example.com', 'typed-s3cret'));
      const differ = ['one-s3cret', 'two-s3cret'];
      await assert.rejects(runWith({ prompt: async () => differ.shift()! }, 'passwd', 'hal@example.com'), (err: unknown) => {
        assert.ok(err instanceof CliError);
        assert.match(err.message, /the two passwords differ/);
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      });
      assert.equal(await ha1Md5('hal', 'example.com'), computeHA1('MD5', 'hal', 'example.com', 'typed-s3cret'));
    });

    it('--password and --password-stdin together are a usage error (exit 2)', async () => {
      await fails(['add', 'ivy@example.com', '--password', 'x', '--password-stdin'], 'CLI_ERR_USAGE', 2, /--password and --password-stdin exclude each other/);
    });

    it('the usage names every source and warns that --password shows in ps', () => {
      for (const source of ['--password-stdin', 'SOFTSWITCH_USER_PASSWORD', 'terminal', '--password PASSWORD']) assert.ok(USER_USAGE.includes(source), source);
      assert.match(USER_USAGE, /visible to every user in ps/);
    });
  });

  describe('secrets', () => {
    it('never prints a password or a hash', () => {
      const text = printed.join('\n');
      for (const pw of ['wonderland', 'b0b', 'c4rol', 'n3w-b0b', 'std1n-secret', 'env-s3cret', 'piped-s3cret', 'typed-s3cret']) assert.ok(!text.includes(pw), pw);
      assert.doesNotMatch(text, /[0-9a-f]{32}/);
    });
  });
});
