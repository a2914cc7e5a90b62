/**
 * The admin side of `softswitch start` as an operator runs it: private files on disk, admin tokens on the
 * HTTP port (`softswitch token …`, `softswitch reload`), and passwords that never pass through argv.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/index.js';
import { computeHA1 } from '../../src/sip/index.js';
import { openStore } from '../../platform/store/index.js';
import { repoRoot } from '../../support/paths.js';
import { freePort, requireTool } from '../../support/tools.js';

const main = join(repoRoot, 'dist', 'server', 'main.js');
const mode = (path: string): number => statSync(path).mode & 0o777;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `softswitch ARGS…` with `input` on its standard input and extra environment. */
function cli(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

describe('softswitch start: secrets on disk and admin tokens', () => {
  let dir: string;
  let dataDir: string;
  let cfg: string;
  let httpUrl: string;
  let child: ChildProcess | undefined;
  let out = '';
  let oldUmask: number;

  async function start(): Promise<void> {
    out = '';
    const c = spawn(process.execPath, [main, 'start', '--config', cfg, '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const end = Date.now() + 20_000;
    while (!(await fetch(`${httpUrl}/health`).then((r) => r.ok, () => false))) {
      if (Date.now() > end || c.exitCode !== null) throw new Error(`softswitch did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stop(): Promise<void> {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    c.kill('SIGKILL');
  }

  async function createToken(name: string, expires?: string): Promise<string> {
    const r = await cli(['token', 'create', '--name', name, ...(expires === undefined ? [] : ['--expires', expires]), '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines.at(-1)!, /^sst_[A-Za-z0-9_-]{43}$/);
    return lines.at(-1)!;
  }

  const reload = (token?: string) => fetch(`${httpUrl}/reload`, { method: 'POST', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  before(async () => {
    // The usual umask: without explicit modes, everything would be created world-readable (0644/0755).
    oldUmask = process.umask(0o022);
    dir = mkdtempSync(join(tmpdir(), 'softswitch-admin-'));
    dataDir = join(dir, 'data');
    const httpPort = await freePort();
    httpUrl = `http://127.0.0.1:${httpPort}`;
    cfg = join(dir, 'softswitch.yaml');
    writeFileSync(cfg, [
      'sip:', `  listen: ["udp:127.0.0.1:${await freePort()}", "tls:127.0.0.1:${await freePort()}"]`, '  domain: [example.com]',
      `dataDir: ${dataDir}`, 'http:', `  listen: "127.0.0.1:${httpPort}"`, 'turn:', '  listen: "127.0.0.1:0"', 'store:', `  url: "sqlite:${join(dataDir, 'softswitch.db')}"`, '',
    ].join('\n'));
    await start();
  });

  after(async () => {
    await stop();
    process.umask(oldUmask);
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the data folder 0700, and the SQLite file, its -wal and -shm and the generated TLS key 0600', () => {
    assert.equal(mode(dataDir), 0o700, 'data folder');
    assert.equal(mode(join(dataDir, 'tls')), 0o700, 'tls folder');
    assert.equal(mode(join(dataDir, 'tls', 'selfsigned.key')), 0o600, 'TLS key');
    for (const suffix of ['', '-wal', '-shm']) assert.equal(mode(join(dataDir, `softswitch.db${suffix}`)), 0o600, `softswitch.db${suffix}`);
  });

  it('POST /reload without a token is 401 with WWW-Authenticate: Bearer', async () => {
    const res = await reload();
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="softswitch"/);
  });

  it('/v1/anything without a token is 401', async () => {
    assert.equal((await fetch(`${httpUrl}/v1/anything`)).status, 401);
    assert.equal((await fetch(`${httpUrl}/v1/health`)).status, 401);
  });

  it('POST /reload with a token from softswitch token create is 200', async () => {
    const token = await createToken('deploy');
    const res = await reload(token);
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(typeof ((await res.json()) as { backends: unknown }).backends, 'number');
    assert.ok(!out.includes(token), 'the server never logs the token');
  });

  it('a revoked token is 401; one in use stops working within the 5 s cache', async () => {
    const unused = await createToken('unused');
    assert.equal((await cli(['token', 'revoke', 'unused', '--config', cfg])).code, 0);
    assert.equal((await reload(unused)).status, 401);

    const used = await createToken('in-use');
    assert.equal((await reload(used)).status, 200);
    const revoked = Date.now();
    assert.equal((await cli(['token', 'revoke', 'in-use', '--config', cfg])).code, 0);
    let status = 200;
    while (status === 200 && Date.now() - revoked < 8000) {
      await new Promise((r) => setTimeout(r, 250));
      status = (await fetch(`${httpUrl}/v1/health`, { headers: { authorization: `Bearer ${used}` } })).status;
    }
    assert.equal(status, 401);
    assert.ok(Date.now() - revoked <= 5500 + 1000, `refused ${Date.now() - revoked} ms after the revocation`);
  });

  it('an expired token is 401 expired token', async () => {
    const token = await createToken('brief', '1s');
    await new Promise((r) => setTimeout(r, 1100));
    const res = await reload(token);
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { code: 'AUTH_ERR_INVALID_TOKEN', message: 'expired token' });
  });

  it('softswitch token list shows the tokens without their secrets', async () => {
    const r = await cli(['token', 'list', '--config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ID +NAME +CREATED +EXPIRES +LAST USED +STATUS$/m);
    assert.match(r.stdout, /deploy .* active$/m);
    assert.match(r.stdout, /brief .* expired$/m);
    assert.doesNotMatch(r.stdout, /sst_/);
  });

  it('softswitch reload works: it mints its own short-lived token (or takes SOFTSWITCH_ADMIN_TOKEN)', async () => {
    const r = await cli(['reload', '--config', cfg]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^reloaded: \d+ sets/);
    const list = await cli(['token', 'list', '--config', cfg]);
    assert.doesNotMatch(list.stdout, / cli-/, 'the minted token is gone');
    const token = await createToken('from-env');
    const withEnv = await cli(['reload', '--config', cfg], { env: { SOFTSWITCH_ADMIN_TOKEN: token } });
    assert.equal(withEnv.code, 0, withEnv.stderr);
    const bad = await cli(['reload', '--config', cfg], { env: { SOFTSWITCH_ADMIN_TOKEN: `sst_${'b'.repeat(43)}` } });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /refused the admin token \(401: unknown or revoked token\)/);
  });

  it('softswitch user add --password-stdin takes the password from standard input, never echoed or logged', async () => {
    const password = 'pipe-Secr3t-' + Date.now();
    const r = await cli(['user', 'add', 'alice@example.com', '--password-stdin', '--config', cfg], { input: `${password}\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'added alice@example.com\n');
    assert.equal(r.stderr, '');
    const env = await cli(['user', 'passwd', 'alice@example.com', '--config', cfg], { env: { SOFTSWITCH_USER_PASSWORD: password + '-env' } });
    assert.equal(env.code, 0, env.stderr);
    assert.ok(!(env.stdout + env.stderr).includes(password));
    const store = await openStore({ url: `sqlite:${join(dataDir, 'softswitch.db')}`, logger: silentLogger() });
    try {
      assert.equal((await store.subscribers.get('alice', 'example.com'))?.ha1Md5, computeHA1('MD5', 'alice', 'example.com', password + '-env'));
    } finally {
      await store.close();
    }
    assert.ok(!out.includes(password), 'the server never logs it');
  });

  it('on a terminal without a password option it asks twice and echoes nothing', async () => {
    requireTool('script', 'bsdutils');
    const password = 'tty-Secr3t';
    // script(1) gives the CLI a pseudo-terminal; the answers are typed after the prompts appear.
    const child = spawn('script', ['-qfec', `${process.execPath} ${main} user add bob@example.com --config ${cfg}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
    const waitFor = async (text: string, from: number) => {
      const end = Date.now() + 10_000;
      while (!screen.slice(from).includes(text)) {
        if (Date.now() > end) throw new Error(`no "${text}" on the terminal:\n${screen}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return screen.length;
    };
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      let at = await waitFor('Password for bob@example.com: ', 0);
      child.stdin.write(`${password}\r`);
      at = await waitFor('Again: ', at);
      child.stdin.write(`${password}\r`);
      await waitFor('added bob@example.com', at);
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
    assert.ok(!screen.includes(password), `the password was echoed:\n${screen}`);
    const store = await openStore({ url: `sqlite:${join(dataDir, 'softswitch.db')}`, logger: silentLogger() });
    try {
      assert.equal((await store.subscribers.get('bob', 'example.com'))?.ha1Md5, computeHA1('MD5', 'bob', 'example.com', password));
    } finally {
      await store.close();
    }
  });

  it('files an older version left readable by others are tightened at the next start, with one log line each for the data folder and the store', async () => {
    await stop();
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'tls'), 0o755);
    chmodSync(join(dataDir, 'tls', 'selfsigned.key'), 0o644);
    chmodSync(join(dataDir, 'softswitch.db'), 0o644);
    await start();
    assert.equal(mode(dataDir), 0o700);
    assert.equal(mode(join(dataDir, 'tls')), 0o700);
    assert.equal(mode(join(dataDir, 'tls', 'selfsigned.key')), 0o600);
    for (const suffix of ['', '-wal', '-shm']) assert.equal(mode(join(dataDir, `softswitch.db${suffix}`)), 0o600, `softswitch.db${suffix}`);
    const lines = out.split('\n').filter((l) => l.includes('tightened the permissions'));
    assert.equal(lines.length, 2, out);
    const folder = JSON.parse(lines.find((l) => l.includes('data folder'))!) as { paths: Array<{ path: string; from: string }> };
    assert.deepEqual(folder.paths.map((p) => [p.path, p.from]), [
      [dataDir, '0755'], [join(dataDir, 'tls'), '0755'], [join(dataDir, 'tls', 'selfsigned.key'), '0644'],
    ]);
    const files = JSON.parse(lines.find((l) => l.includes('store files'))!) as { paths: Array<{ path: string; from: string }> };
    assert.deepEqual(files.paths.map((p) => [p.path, p.from]), [[join(dataDir, 'softswitch.db'), '0644']]);
  });
});
