import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CliError, runBanCommand } from '../../../../server/cli/index.js';
import { startTestServer, type TestServer } from '../../../helpers/server.js';

describe('softswitch ban list|add|lift (through the running server\'s /v1/bans)', () => {
  let t: TestServer;
  let token: string;
  before(async () => {
    t = await startTestServer();
    token = (await t.server.store.tokens.create({ name: 'ban-cli', expiresAt: Date.now() + 60_000 })).token;
  });
  after(() => t.stop());

  async function ban(...args: string[]): Promise<string[]> {
    const out: string[] = [];
    await runBanCommand(args, { httpListen: `127.0.0.1:${t.server.http.boundTo}`, token, out: (l) => out.push(l) });
    return out;
  }

  it('adds a ban that the server then applies, lists it, and lifts it', async () => {
    assert.deepEqual(await ban('list'), ['no bans']);
    const added = await ban('add', '192.0.2.9', '--seconds', '60', '--reason', 'abuse desk');
    assert.match(added[0]!, /^banned: 192\.0\.2\.9 until /);
    assert.equal(t.server.security.bans.isBanned('192.0.2.9'), true);
    const listed = await ban('list');
    assert.equal(listed.length, 2);
    assert.match(listed[1]!, /^192\.0\.2\.9\tabuse desk\t/);
    assert.deepEqual(await ban('lift', '192.0.2.9'), ['lifted: 192.0.2.9']);
    assert.equal(t.server.security.bans.isBanned('192.0.2.9'), false);
  });

  it('refuses a bad address before asking the server, and says when there is no such ban', async () => {
    await assert.rejects(ban('add', 'not-an-ip'), (e: unknown) => e instanceof CliError && /not an IP address/.test(e.message));
    await assert.rejects(ban('lift', '198.51.100.77'), (e: unknown) => e instanceof CliError && e.code === 'CLI_ERR_NOT_FOUND');
  });

  it('without a valid token the server refuses and the command says so', async () => {
    const out: string[] = [];
    await assert.rejects(
      runBanCommand(['list'], { httpListen: `127.0.0.1:${t.server.http.boundTo}`, token: 'sst_wrong', out: (l) => out.push(l) }),
      (e: unknown) => e instanceof CliError && /401/.test(e.message),
    );
  });
});
