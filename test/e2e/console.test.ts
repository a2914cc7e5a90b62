/**
 * The web console (issue 18 item 4): its files as the softswitch serves them (real HTTP and HTTPS, raw request
 * paths), the admin routes its admin page reads, and the pages themselves in headless Chromium.
 *
 * The browser scenario runs in a child inside a loopback-only network namespace (`ip netns exec NS node
 * console-runner.js OUTDIR`, the pattern of media.test.ts): the softswitch and Chromium live there, so the two
 * browsers' media never leaves it. The child prints what it saw; the assertions are here. Its screenshots stay
 * in OUTDIR (a temp folder, printed) for a person to look at.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runTagged } from '../helpers/runner.js';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoopbackNamespace } from '../../support/netns.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createSipJsPhone, installTestWebSocket, type Softphone } from '../helpers/softphone.js';
import { requireTool } from '../../support/tools.js';
import type { ConsoleResult } from './console-runner.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'console-runner.js');
const RUNNER_TIMEOUT_MS = 75_000;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with the path sent exactly as given (fetch would resolve `..` before sending); the body as bytes. */
function getRaw(port: number, path: string, headers: Record<string, string> = {}, tls = false): Promise<Omit<Answer, 'body'> & { body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      { host: '127.0.0.1', port, path, method: 'GET', headers, rejectUnauthorized: false, timeout: 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** The same with the body as text (no Accept-Encoding: never compressed). */
async function get(port: number, path: string, options: { headers?: Record<string, string>; tls?: boolean } = {}): Promise<Answer> {
  const r = await getRaw(port, path, options.headers, options.tls);
  return { ...r, body: r.body.toString('utf8') };
}

describe('the web console: files served under /console/ without a token, with a strict CSP, and nothing else on disk', () => {
  let t: TestServer;
  let port: number;

  before(async () => {
    t = await startTestServer();
    port = t.server.http.boundTo;
  });
  after(async () => {
    await t.stop();
  });

  it('GET / redirects a newcomer to /console/, and /console to /console/', async () => {
    for (const path of ['/', '/console']) {
      const r = await get(port, path);
      assert.equal(r.status, 302, path);
      assert.equal(r.headers.location, '/console/', path);
    }
  });

  it('the softphone page, its script and its style are public, each with its content type, an ETag and Cache-Control: no-cache', async () => {
    const expected: Array<[string, RegExp]> = [
      ['/console/', /^text\/html; charset=utf-8$/],
      ['/console/index.html', /^text\/html; charset=utf-8$/],
      ['/console/admin.html', /^text\/html; charset=utf-8$/],
      ['/console/softphone.js', /^text\/javascript; charset=utf-8$/],
      ['/console/admin.js', /^text\/javascript; charset=utf-8$/],
      ['/console/style.css', /^text\/css; charset=utf-8$/],
    ];
    for (const [path, type] of expected) {
      const r = await get(port, path);
      assert.equal(r.status, 200, `${path}: ${r.body.slice(0, 200)}`);
      assert.match(String(r.headers['content-type']), type, path);
      assert.equal(r.headers['cache-control'], 'no-cache', path);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', path);
      assert.match(String(r.headers.etag), /^"[A-Za-z0-9_-]{22}"$/, path);
    }
    assert.match((await get(port, '/console/')).body, /<script type="module" src="softphone.js"><\/script>/);
  });

  it('a browser that accepts gzip gets the bundle gzipped (Vary: Accept-Encoding), one that does not gets it as is', async () => {
    const plain = await get(port, '/console/softphone.js');
    const zipped = await getRaw(port, '/console/softphone.js', { 'accept-encoding': 'br, gzip;q=0.8' });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(zipped.headers.vary, 'accept-encoding');
    assert.equal(gunzipSync(zipped.body).toString('utf8'), plain.body);
    assert.ok(zipped.body.length < plain.body.length / 3, `gzipped ${zipped.body.length} bytes of ${plain.body.length}`);
    console.log(`console: softphone.js ${plain.body.length} bytes, ${zipped.body.length} gzipped`);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal((await getRaw(port, '/console/softphone.js', { 'accept-encoding': 'gzip;q=0, br' })).headers['content-encoding'], undefined);
  });

  it('a request with the ETag it has is answered 304 Not Modified, without a body (RFC 9110 §13.1.2)', async () => {
    const first = await get(port, '/console/softphone.js');
    const again = await get(port, '/console/softphone.js', { headers: { 'if-none-match': String(first.headers.etag) } });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
  });

  it('the Content-Security-Policy allows only this origin and the SIP WebSockets as the page reaches them: no inline script, no framing', async () => {
    const r = await get(port, '/console/');
    const csp = String(r.headers['content-security-policy']);
    const ws = t.listener('ws').port;
    const wss = t.listener('wss').port;
    assert.match(csp, /(^|; )default-src 'none'(;|$)/);
    assert.match(csp, /(^|; )script-src 'self'(;|$)/);
    assert.match(csp, /(^|; )style-src 'self'(;|$)/);
    assert.match(csp, new RegExp(`(^|; )connect-src 'self' ws://127\\.0\\.0\\.1:${ws} wss://127\\.0\\.0\\.1:${wss}(;|$)`));
    assert.match(csp, /(^|; )frame-ancestors 'none'(;|$)/);
    assert.match(csp, /(^|; )base-uri 'none'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
  });

  it('a malformed Host header puts no origin of its own in the CSP or the config: only self is allowed', async () => {
    const r = await get(port, '/console/config.json', { headers: { host: "evil.example; script-src * 'unsafe-inline'" } });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-security-policy']), /(^|; )connect-src 'self';/);
    assert.deepEqual(JSON.parse(r.body), { domain: 'example.com', webSockets: [] });
  });

  it('/console/config.json names the SIP WebSockets on the host the page came from, and the domain to sign in to', async () => {
    const r = await get(port, '/console/config.json', { headers: { host: `pbx.example.com:${port}` } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.deepEqual(JSON.parse(r.body), {
      domain: 'example.com',
      webSockets: [`ws://pbx.example.com:${t.listener('ws').port}`, `wss://pbx.example.com:${t.listener('wss').port}`],
    });
  });

  it('no path reaches a file outside the built console: .. plain or percent-encoded, backslashes, absolute paths, folders (404, no listing)', async () => {
    const secret = readFileSync(join(process.cwd(), 'package.json'), 'utf8').slice(0, 40);
    const paths = [
      '/console/../package.json', '/console/../../package.json', '/console/%2e%2e/%2e%2e/package.json', '/console/..%2f..%2f..%2fpackage.json',
      '/console/%2e%2e%2f%2e%2e%2f%2e%2e%2fpackage.json', '/console/..%5c..%5cpackage.json', '/console/%2fetc%2fpasswd', '/console//etc/passwd',
      '/console/site.js', '/console/../site.js', '/console/web/', '/console/./', '/console/%00index.html', '/console/index.html%00.js',
    ];
    for (const path of paths) {
      const r = await get(port, path);
      assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status} ${r.body.slice(0, 120)}`);
      assert.ok(!r.body.includes(secret) && !r.body.includes('root:') && !r.body.includes('<a href'), `${path} answered content: ${r.body.slice(0, 120)}`);
    }
  });

  it('paths outside /console/ still need a token: the console opens nothing else', async () => {
    assert.equal((await get(port, '/v1/registrations')).status, 401);
    assert.equal((await get(port, '/v1/active-calls')).status, 401);
    assert.equal((await get(port, '/nothing-here')).status, 401);
  });

  it('with http.tls the console is served over HTTPS on http.listen, with the same CSP', async () => {
    const s = await startTestServer({ http: { tls: true } });
    try {
      const r = await get(s.server.http.boundTo, '/console/', { tls: true });
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.match(String(r.headers['content-security-policy']), /script-src 'self'/);
    } finally {
      await s.stop();
    }
  });

  it('the bundle is built by npm run build and stays small: the softphone script (SIP.js inside) under 400 KiB, the admin script under 20 KiB', () => {
    const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'console', 'web');
    assert.ok(statSync(join(dir, 'softphone.js')).size < 400 * 1024, `softphone.js is ${statSync(join(dir, 'softphone.js')).size} bytes`);
    assert.ok(statSync(join(dir, 'admin.js')).size < 20 * 1024, `admin.js is ${statSync(join(dir, 'admin.js')).size} bytes`);
  });
});

describe('the admin routes the console reads: GET /v1/registrations and GET /v1/active-calls (admin token)', () => {
  let t: TestServer;
  let phone: Softphone | undefined;
  let admin: string;

  before(async () => {
    installTestWebSocket();
    t = await startTestServer();
    admin = (await t.server.store.tokens.create({ name: 'console-admin', expiresAt: Date.now() + 600_000 })).token;
  });
  after(async () => {
    await phone?.stop();
    await t.stop();
  });

  const call = async (path: string, token: string) => {
    const r = await get(t.server.http.boundTo, path, { headers: { authorization: `Bearer ${token}` } });
    return { status: r.status, json: JSON.parse(r.body) as Record<string, unknown> };
  };

  it('a registered WebSocket phone is listed with its AoR, transport, source address and user agent; ?user= narrows the list', async () => {
    await t.addUser('carol@example.com', 'carol-secret');
    phone = await createSipJsPhone({ uri: 'sip:carol@example.com', password: 'carol-secret', wsUrl: `ws://${t.addr('ws')}` });
    await phone.register();
    const { status, json } = await call('/v1/registrations', admin);
    assert.equal(status, 200);
    const regs = json.registrations as Array<Record<string, unknown>>;
    assert.equal(regs.length, 1, JSON.stringify(regs));
    assert.equal(regs[0]!.aor, 'sip:carol@example.com');
    assert.equal(regs[0]!.transport, 'ws');
    assert.match(String(regs[0]!.address), /^127\.0\.0\.1:\d+$/);
    assert.match(String(regs[0]!.userAgent), /SIP\.js/);
    assert.equal(regs[0]!.asleep, false);
    assert.ok(Date.parse(String(regs[0]!.expiresAt)) > Date.now());
    assert.deepEqual((await call('/v1/registrations?user=dave@example.com', admin)).json, { registrations: [] });
    assert.equal(((await call('/v1/registrations?user=carol@EXAMPLE.com', admin)).json.registrations as unknown[]).length, 1, 'the domain is case-insensitive');
    assert.deepEqual((await call('/v1/registrations?user=CAROL@example.com', admin)).json, { registrations: [] }, 'the user part is case-sensitive (RFC 3261 §19.1.4)');
  });

  it('a malformed query gets 400 naming it, never a 500: ?user= twice, not user@domain, an unknown field', async () => {
    for (const path of ['/v1/registrations', '/v1/active-calls']) {
      for (const q of ['user=a@example.com&user=b@example.com', 'user=nodomain', 'who=a@example.com']) {
        const { status, json } = await call(`${path}?${q}`, admin);
        assert.equal(status, 400, `${path}?${q}`);
        assert.match(String(json.message), /user|unknown field/, `${path}?${q}: ${JSON.stringify(json)}`);
      }
    }
  });

  it('no call up: the active calls list is empty', async () => {
    assert.deepEqual(await call('/v1/active-calls', admin), { status: 200, json: { workersMissing: 0, calls: [] } });
  });

  it('a user token is refused (403 insufficient_scope): these lists are for operators', async () => {
    const r = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: 'carol@example.com', password: 'carol-secret' }),
    });
    const { access_token: user } = (await r.json()) as { access_token: string };
    assert.equal((await call('/v1/registrations', user)).status, 403);
    assert.equal((await call('/v1/active-calls', user)).status, 403);
  });
});

describe('the web console in a real browser: headless Chromium in a loopback-only namespace', () => {
  let ns: LoopbackNamespace | undefined;
  let r: ConsoleResult;
  const outDir = mkdtempSync(join(tmpdir(), 'softswitch-console-'));

  before(async () => {
    requireTool('chromium', 'chromium');
    ns = LoopbackNamespace.create('console');
    console.log(`console screenshots: ${outDir}`);
    const { result, code, stdout, stderr } = await runTagged(ns.exec(process.execPath, ['--enable-source-maps', RUNNER, outDir]),
      { CONSOLE_RUNNER_TIMEOUT_MS: String(RUNNER_TIMEOUT_MS - 10_000) }, 'CONSOLE-RESULT', RUNNER_TIMEOUT_MS);
    if (result === undefined) throw new Error(`the console runner gave no result (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}`);
    r = JSON.parse(result) as ConsoleResult;
    if (r.error !== undefined) throw new Error(`the console runner failed: ${r.error}\n${r.logs ?? ''}\n${stderr}`);
    console.log(`console: audio packets received Alice ${r.alice?.packetsReceived}, Bob ${r.bob?.packetsReceived}; hold ${JSON.stringify(r.hold)}; mute ${JSON.stringify(r.mute)}`);
  }, { timeout: RUNNER_TIMEOUT_MS + 5000 });

  after(() => {
    ns?.destroy();
    ns = undefined;
  });

  it('a wrong password is refused on the page with the server\'s reason, and the sign-in form stays', () => {
    assert.deepEqual(r.wrongPassword, { status: '401 wrong username or password', formShown: true });
  });

  it('two users sign in on two softphone pages and both register over the WebSocket', () => {
    assert.equal(r.alice?.registration, 'registered');
    assert.equal(r.bob?.registration, 'registered');
  });

  it('Alice calls Bob, he answers, both pages show the call connected and getStats counts audio packets received both ways', () => {
    assert.equal(r.alice?.callState, 'connected');
    assert.equal(r.bob?.callState, 'connected');
    assert.ok(r.alice!.packetsReceived > 25, `Alice's page received ${r.alice!.packetsReceived} audio packets`);
    assert.ok(r.bob!.packetsReceived > 25, `Bob's page received ${r.bob!.packetsReceived} audio packets`);
    assert.ok(r.alice!.packetsSent > 25 && r.bob!.packetsSent > 25, `packets sent: Alice ${r.alice!.packetsSent}, Bob ${r.bob!.packetsSent}`);
  });

  it('Alice puts the call on hold (re-INVITE, RFC 3264 §8.4): Bob stops sending and her page stops receiving; resumed, audio flows again', () => {
    assert.ok(r.hold !== undefined, 'no hold step');
    assert.ok(r.hold.receivedWhileHeld <= 5, `Alice's page received ${r.hold.receivedWhileHeld} packets in 2 s while she held the call`);
    assert.ok(r.hold.receivedAfterResume > 25, `Alice's page received ${r.hold.receivedAfterResume} packets in 2 s after resuming`);
  });

  it('Alice mutes (her track off, no re-INVITE): what Bob hears stops; unmuted, he hears her again', () => {
    assert.ok(r.mute !== undefined, 'no mute step');
    assert.ok(r.mute.heardAfterUnmute > 0, `Bob heard no energy (${r.mute.heardAfterUnmute}) after Alice unmuted`);
    // Not zero: the fake microphone's beeps already in Bob's jitter buffer and the decoder's fade-out.
    assert.ok(r.mute.heardWhileMuted < r.mute.heardAfterUnmute / 5, `Bob heard ${r.mute.heardWhileMuted} while Alice was muted, ${r.mute.heardAfterUnmute} after`);
  });

  it('a keypad key sends DTMF as an RFC 4733 telephone-event on the call', () => {
    assert.equal(r.dtmfStatus, 'DTMF 5 sent (RFC 4733)');
  });

  it('the admin page shows the call in active calls: Alice to Bob, answered, media end to end', () => {
    assert.equal(r.adminCalls?.length, 1, JSON.stringify(r.adminCalls));
    const [caller, callee, state, , , media] = r.adminCalls![0]!;
    assert.deepEqual([caller, callee, state, media], ['alice@example.com', 'bob@example.com', 'confirmed', 'end to end']);
  });

  it('a chat message Alice sends on her page appears on Bob\'s', () => {
    assert.deepEqual(r.chatOnBob, ['alice@example.com: Hello Bob, from the console']);
  });

  it('Alice\'s page shows Bob\'s presence: online and on the phone while they talk, or online before', () => {
    assert.match(String(r.presence), /^online/);
  });

  it('Alice hangs up and both pages show the call ended', () => {
    assert.deepEqual(r.afterHangup, { alice: 'ended', bob: 'ended' });
  });

  it('a second call is hung up with the admin page\'s Hang up button: both sides get a BYE and both pages show the call ended', () => {
    assert.deepEqual(r.adminHangup, { status: 'Hung up alice@example.com → bob@example.com: BYE sent to both sides', alice: 'ended', bob: 'ended' });
  });

  it('a screenshot of each page is saved in the test\'s output folder', () => {
    for (const file of [r.alice?.screenshot, r.bob?.screenshot, r.adminScreenshot]) {
      assert.ok(file !== undefined && file.startsWith(outDir), `screenshot ${file} is not in ${outDir}`);
      const png = readFileSync(file);
      assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG', `${file} is not a PNG`);
      assert.ok(png.length > 10_000, `${file} is ${png.length} bytes: an empty page?`);
    }
  });
});
