import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openTempStore } from '../../../helpers/temp-store.js';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CliError, ROUTING_USAGE, runReloadCommand, runRoutingCommand, withAdminToken, type CliErrorCode, type RoutingGroup } from '../../../../server/cli/index.js';
import { HttpServer } from '../../../../platform/http/index.js';
import { silentLogger } from '../../../../src/log/index.js';
import type { SqlStore } from '../../../../platform/store/index.js';
import type { BackendState } from '../../../../balancer/index.js';
import { assertCliFails } from '../../../helpers/cli-errors.js';

/** A port nothing listens on (bound, read, closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('softswitch backend|route|did|trusted … and reload', () => {
  let closeStore: (() => Promise<void>) | undefined;
  let store: SqlStore;
  let noServer: string;

  async function run(group: RoutingGroup, args: string[], httpListen = noServer): Promise<string[]> {
    const lines: string[] = [];
    await runRoutingCommand(group, args, { store, httpListen, out: (l) => lines.push(l) });
    return lines;
  }

  function fails(group: RoutingGroup, args: string[], code: CliErrorCode, message: RegExp): Promise<void> {
    return assertCliFails(run(group, args), `${group} ${args.join(' ')}`, code, message);
  }

  before(async () => {
    ({ store, close: closeStore } = await openTempStore());
    noServer = `127.0.0.1:${await closedPort()}`;
  });

  after(async () => {
    await closeStore?.();
  });

  describe('backend', () => {
    it('backend add stores the backend (weight 1 by default) and prints its id', async () => {
      assert.deepEqual(await run('backend', ['add', 'freeswitch', 'sip:10.0.0.5:5060;transport=udp']), ['added backend 1 sip:10.0.0.5:5060;transport=udp to set freeswitch (weight 1)']);
      const [b] = await store.routing.listBackends();
      assert.deepEqual([b?.set, b?.uri, b?.weight, b?.enabled], ['freeswitch', 'sip:10.0.0.5:5060;transport=udp', 1, true]);
    });

    it('backend add --weight N --algorithm A sets both', async () => {
      assert.deepEqual(await run('backend', ['add', 'freeswitch', 'sip:10.0.0.6', '--weight', '5', '--algorithm', 'weighted']), ['added backend 2 sip:10.0.0.6 to set freeswitch (weight 5, set algorithm weighted)']);
      assert.deepEqual(await store.routing.listSets(), [{ name: 'freeswitch', algorithm: 'weighted' }]);
    });

    it('backend add refuses a non-SIP URI, a bad weight or algorithm, a duplicate, and missing arguments', async () => {
      await fails('backend', ['add', 'freeswitch', 'http://10.0.0.7'], 'CLI_ERR_INVALID', /backend add: uri "http:\/\/10\.0\.0\.7" is not a sip: or sips: URI/);
      await fails('backend', ['add', 'freeswitch', 'sip:10.0.0.7', '--weight', '0'], 'CLI_ERR_INVALID', /weight must be a whole number from 1 to 1000/);
      await fails('backend', ['add', 'freeswitch', 'sip:10.0.0.7', '--weight', 'heavy'], 'CLI_ERR_INVALID', /--weight must be a whole number, got "heavy"/);
      await fails('backend', ['add', 'freeswitch', 'sip:10.0.0.7', '--algorithm', 'random'], 'CLI_ERR_INVALID', /algorithm must be one of round-robin, weighted, least-calls/);
      await fails('backend', ['add', 'freeswitch', 'sip:10.0.0.6'], 'CLI_ERR_DUPLICATE', /already in set freeswitch/);
      await fails('backend', ['add', 'freeswitch'], 'CLI_ERR_USAGE', /backend add: missing URI/);
      await fails('backend', ['add', 'a', 'sip:x', 'extra'], 'CLI_ERR_USAGE', /unexpected argument "extra"/);
      await fails('backend', ['add', 'a', 'sip:x', '--colour', 'red'], 'CLI_ERR_USAGE', /Unknown option '--colour'/);
      assert.equal((await store.routing.listBackends()).length, 2);
    });

    it('backend list without a running server shows the backends and says health is unknown', async () => {
      const lines = await run('backend', ['list']);
      assert.deepEqual(lines, [
        'ID  SET         ALGORITHM  URI                              WEIGHT  ENABLED  HEALTH   CALLS  FAILURES',
        '1   freeswitch  weighted   sip:10.0.0.5:5060;transport=udp  1       yes      unknown  -      -',
        '2   freeswitch  weighted   sip:10.0.0.6                     5       yes      unknown  -      -',
        `health unknown: no server answered at http://${noServer}/health`,
      ]);
    });

    it('backend list with a running server shows each backend\'s health, calls and failures from /health', async () => {
      const states: BackendState[] = [
        { id: 1, set: 'freeswitch', uri: 'sip:10.0.0.5:5060;transport=udp', weight: 1, enabled: true, health: 'up', activeCalls: 3, failures: 0, lastSeen: 1, probeMs: 2 },
        { id: 2, set: 'freeswitch', uri: 'sip:10.0.0.6', weight: 5, enabled: true, health: 'down', activeCalls: 0, failures: 4, lastSeen: undefined, probeMs: undefined },
      ];
      const http = new HttpServer({ listen: '127.0.0.1:0', logger: silentLogger(), tokens: store.tokens, source: { health: () => ({ ok: false, backends: states }) } });
      await http.start();
      try {
        const lines = await run('backend', ['list'], `127.0.0.1:${http.boundTo}`);
        assert.deepEqual(lines, [
          'ID  SET         ALGORITHM  URI                              WEIGHT  ENABLED  HEALTH  CALLS  FAILURES',
          '1   freeswitch  weighted   sip:10.0.0.5:5060;transport=udp  1       yes      up      3      0',
          '2   freeswitch  weighted   sip:10.0.0.6                     5       yes      down    0      4',
        ]);
      } finally {
        await http.stop();
      }
    });

    it('backend list against a server whose /health details need a token shows the health, with a token it minted and deleted', async () => {
      const states: BackendState[] = [
        { id: 1, set: 'freeswitch', uri: 'sip:10.0.0.5:5060;transport=udp', weight: 1, enabled: true, health: 'up', activeCalls: 1, failures: 0, lastSeen: 1, probeMs: 2 },
      ];
      const http = new HttpServer({ listen: '127.0.0.1:0', logger: silentLogger(), tokens: store.tokens, healthDetails: 'token', source: { health: () => ({ ok: true, backends: states }) } });
      await http.start();
      try {
        const anonymous = (await (await fetch(`http://127.0.0.1:${http.boundTo}/health`)).json()) as Record<string, unknown>;
        assert.deepEqual(anonymous, { ok: true });
        const lines = await run('backend', ['list'], `127.0.0.1:${http.boundTo}`);
        assert.match(lines[1]!, /^1 +freeswitch .* up +1 +0$/);
        assert.deepEqual(await store.tokens.list(), [], 'the minted token is deleted afterwards');
      } finally {
        await http.stop();
      }
    });

    it('backend disable / enable / set / del change the store; an unknown or malformed id is refused', async () => {
      assert.deepEqual(await run('backend', ['disable', '2']), ['disabled backend 2']);
      assert.equal((await store.routing.listBackends()).find((b) => b.id === 2)?.enabled, false);
      assert.deepEqual(await run('backend', ['enable', '2']), ['enabled backend 2']);
      assert.equal((await store.routing.listBackends()).find((b) => b.id === 2)?.enabled, true);
      assert.deepEqual(await run('backend', ['set', 'freeswitch', '--algorithm', 'least-calls']), ['set freeswitch uses least-calls']);
      assert.equal((await store.routing.listSets())[0]?.algorithm, 'least-calls');
      await fails('backend', ['set', 'freeswitch'], 'CLI_ERR_INVALID', /--algorithm round-robin\|weighted\|least-calls is required/);
      assert.deepEqual(await run('backend', ['del', '2']), ['deleted backend 2']);
      await fails('backend', ['del', '2'], 'CLI_ERR_NOT_FOUND', /no such backend 2/);
      await fails('backend', ['enable', '99'], 'CLI_ERR_NOT_FOUND', /no such backend 99/);
      await fails('backend', ['del', 'two'], 'CLI_ERR_INVALID', /"two" is not a backend\/route\/source id/);
    });

    it('an unknown or missing sub-command is a usage error with the routing usage; help prints it', async () => {
      await fails('backend', ['frob'], 'CLI_ERR_USAGE', /backend: unknown sub-command "frob"\nusage:/);
      await fails('route', [], 'CLI_ERR_USAGE', /route: missing sub-command/);
      assert.deepEqual(await run('backend', ['help']), ROUTING_USAGE.split('\n'));
    });
  });

  describe('route, did, trusted', () => {
    it('route add / list / del', async () => {
      assert.deepEqual(await run('route', ['add', '0(\\d{9,10})', 'pstn', '--replace', '+49$1', '--priority', '10', '--description', 'German national']), ['added route 1: 0(\\d{9,10}) → pstn as +49$1 (priority 10)']);
      assert.deepEqual(await run('route', ['add', '\\+.*', 'pstn']), ['added route 2: \\+.* → pstn (priority 0)']);
      assert.deepEqual(await run('route', ['list']), [
        'ID  PRIORITY  PATTERN      REPLACE  SET   DESCRIPTION',
        '2   0         \\+.*         -        pstn',
        '1   10        0(\\d{9,10})  +49$1    pstn  German national',
      ]);
      await fails('route', ['add', '0(\\d+', 'pstn'], 'CLI_ERR_INVALID', /route add: pattern "0\(\\\\d\+" is not a regular expression/);
      await fails('route', ['add', '1', 'pstn', '--priority', 'high'], 'CLI_ERR_INVALID', /--priority must be a whole number/);
      assert.deepEqual(await run('route', ['del', '2']), ['deleted route 2']);
      await fails('route', ['del', '2'], 'CLI_ERR_NOT_FOUND', /no such route 2/);
    });

    it('did add / list / del', async () => {
      assert.deepEqual(await run('did', ['add', '+4930123456', 'alice@Example.com']), ['added DID +4930123456 → alice@example.com']);
      assert.deepEqual(await run('did', ['list']), ['+4930123456  alice@example.com']);
      await fails('did', ['add', '+4930123456', 'bob@example.com'], 'CLI_ERR_DUPLICATE', /DID \+4930123456 already exists/);
      await fails('did', ['add', '030-123', 'bob@example.com'], 'CLI_ERR_INVALID', /digits with an optional leading "\+"/);
      await fails('did', ['add', '+4930', 'bob'], 'CLI_ERR_INVALID', /expected user@domain/);
      assert.deepEqual(await run('did', ['del', '+4930123456']), ['deleted DID +4930123456']);
      assert.deepEqual(await run('did', ['list']), ['no DIDs']);
    });

    it('trusted add / list / del', async () => {
      assert.deepEqual(await run('trusted', ['add', '192.0.2.0/24', '--description', 'carrier']), ['added trusted source 1: 192.0.2.0/24']);
      assert.deepEqual(await run('trusted', ['add', '2001:db8::/32']), ['added trusted source 2: 2001:db8::/32']);
      assert.deepEqual(await run('trusted', ['list']), ['ID  CIDR           DESCRIPTION', '1   192.0.2.0/24   carrier', '2   2001:db8::/32']);
      await fails('trusted', ['add', 'carrier.example.com'], 'CLI_ERR_INVALID', /not an IPv4\/IPv6 address or CIDR block/);
      assert.deepEqual(await run('trusted', ['del', '1']), ['deleted trusted source 1']);
      await fails('trusted', ['del', '1'], 'CLI_ERR_NOT_FOUND', /no such trusted source 1/);
    });
  });

  describe('reload', () => {
    async function reload(httpListen: string, preset?: string): Promise<string[]> {
      const lines: string[] = [];
      await withAdminToken(store, preset, (token) => runReloadCommand([], { httpListen, token, out: (l) => lines.push(l) }));
      return lines;
    }

    it('POSTs /reload to the running server and prints what it loaded', async () => {
      let calls = 0;
      const http = new HttpServer({
        listen: '127.0.0.1:0',
        logger: silentLogger(),
        tokens: store.tokens,
        source: { health: () => ({ ok: true }), reload: async () => ({ reloadedAt: 1, sets: 2, backends: 3, enabled: 2, routes: 4, dids: 5, trusted: 6, n: ++calls }) },
      });
      await http.start();
      try {
        assert.deepEqual(await reload(`127.0.0.1:${http.boundTo}`), ['reloaded: 2 sets, 3 backends (2 enabled), 4 routes, 5 DIDs, 6 trusted sources']);
        assert.equal(calls, 1);
        assert.deepEqual(await store.tokens.list(), [], 'the token minted for the reload is deleted afterwards');
        // SOFTSWITCH_ADMIN_TOKEN: an operator's token is used as it is, and one the server does not know is refused.
        const { token } = await store.tokens.create({ name: 'ops' });
        assert.equal((await reload(`127.0.0.1:${http.boundTo}`, token)).length, 1);
        assert.equal(calls, 2);
        await assert.rejects(reload(`127.0.0.1:${http.boundTo}`, `sst_${'A'.repeat(43)}`), (err: unknown) => {
          assert.ok(err instanceof CliError);
          assert.match(err.message, /refused the admin token \(401: unknown or revoked token\); check SOFTSWITCH_ADMIN_TOKEN/);
          return true;
        });
        assert.equal(calls, 2);
        await store.tokens.revoke('ops');
      } finally {
        await http.stop();
      }
    });

    it('a reload that fails on the server is an error with its message; a server without reload says so', async () => {
      const failing = new HttpServer({ listen: '127.0.0.1:0', logger: silentLogger(), tokens: store.tokens, source: { health: () => ({ ok: true }), reload: async () => { throw new Error('the store is unreachable'); } } });
      const none = new HttpServer({ listen: '127.0.0.1:0', logger: silentLogger(), tokens: store.tokens, source: { health: () => ({ ok: true }) } });
      await failing.start();
      await none.start();
      try {
        await assert.rejects(reload(`127.0.0.1:${failing.boundTo}`), (err: unknown) => err instanceof CliError && /answered 500: the store is unreachable/.test(err.message));
        await assert.rejects(reload(`127.0.0.1:${none.boundTo}`), (err: unknown) => err instanceof CliError && err.code === 'CLI_ERR_NOT_FOUND' && /has nothing to reload/.test(err.message));
      } finally {
        await failing.stop();
        await none.stop();
      }
    });

    it('without a running server it says that no server answered, naming http.listen', async () => {
      await assert.rejects(reload(noServer), (err: unknown) => {
        assert.ok(err instanceof CliError);
        assert.equal(err.exitCode, 1);
        assert.match(err.message, new RegExp(`no softswitch server answered at http://${noServer.replace(/\./g, '\\.')}/reload \\(ECONNREFUSED\\); is it running with http\\.listen = `));
        return true;
      });
    });
  });
});
