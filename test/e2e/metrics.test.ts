/**
 * `GET /metrics` of `softswitch start --workers 2`: whichever worker a scrape reaches answers for the node,
 * its own numbers summed with the other worker's (asked through the primary). SIPp places calls whose
 * Call-IDs spread them over both workers (each call's datagrams go to the worker its Call-ID hashes to), so
 * one worker's numbers alone would be about half of the calls made.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { silentLogger } from '../../src/log/index.js';
import { openStore } from '../../platform/store/index.js';
import { repoRoot } from '../../support/paths.js';
import { freePort, requireTool, waitUdpBound } from '../../support/tools.js';
import { type TestCluster, startTestCluster } from '../helpers/cluster.js';
import { type Exposition, matching, parseExposition, valueOf } from '../helpers/prometheus.js';
import { runSipp } from '../helpers/sipp.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

const DOMAIN = 'example.com';
const USERS = { alice: 'alice-secret', bob: 'bob-secret' } as const;
const CALLS = 20;
const UAS_SCENARIO = join(repoRoot, 'bench', 'sipp', 'uas-answer.xml');

interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** GET on a new connection each time (no keep-alive): the primary deals connections to the workers in turn. */
function get(port: number, path: string, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} did not answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

describe('GET /metrics on softswitch start --workers 2', { timeout: 120_000 }, () => {
  let cluster: TestCluster;
  let port: number;
  let httpPort: number;
  let token: string;

  /** How long each scrape took (ms) and how large its answer was: the test's diagnostics. */
  const timings: number[] = [];
  let bytes = 0;
  const scrape = async (): Promise<Exposition> => {
    const started = performance.now();
    const r = await get(httpPort, '/metrics', token);
    timings.push(performance.now() - started);
    bytes = r.body.length;
    assert.equal(r.status, 200, r.body);
    return parseExposition(r.body);
  };

  before(async () => {
    requireTool('sipp', 'sip-tester');
    port = await freePort();
    httpPort = await freePort();
    cluster = await startTestCluster(2, () => ({
      sip: { listen: [`udp:127.0.0.1:${port}`], domain: [DOMAIN] },
      auth: { algorithms: ['MD5'] },
      http: { listen: `127.0.0.1:${httpPort}` },
    }), 'softswitch-metrics-');
    await cluster.addUsers(Object.entries(USERS).map(([username, password]) => ({ username, domain: DOMAIN, password })));
    const store = await openStore({ url: cluster.storeUrl, logger: silentLogger() });
    try {
      token = (await store.tokens.create({ name: 'metrics-test', expiresAt: Date.now() + 600_000 })).token;
    } finally {
      await store.close();
    }
  });

  after(async () => {
    await cluster?.stop();
  });

  it('needs an admin token: 401 with a Bearer challenge without one or with a wrong one (RFC 6750 §3)', async () => {
    const none = await get(httpPort, '/metrics');
    assert.equal(none.status, 401, none.body);
    const wrong = await get(httpPort, '/metrics', 'not-a-token');
    assert.equal(wrong.status, 401, wrong.body);
    assert.doesNotMatch(none.body + wrong.body, /softswitch_/, 'no metric leaks into a refusal');
  });

  it('/metrics scraped while SIPp runs calls across two workers: counters equal the calls made (summed over workers)', async (tc) => {
    const first = await get(httpPort, '/metrics', token);
    assert.equal(first.status, 200, first.body);
    assert.match(first.contentType ?? '', /^text\/plain; version=0\.0\.4/, 'Prometheus text format 0.0.4');

    // bob registers from the port the SIPp UAS then answers on.
    const reg = await runSipp({
      scenario: 'reg-auth.xml', target: `127.0.0.1:${port}`, timeoutSeconds: 10,
      extra: ['-key', 'aor_user', 'bob', '-key', 'aor_domain', DOMAIN, '-au', 'bob', '-ap', USERS.bob, '-auth_uri', DOMAIN],
    });
    assert.equal(reg.code, 0, `bob did not register:\n${reg.stdout.slice(-2000)}\n${reg.stderr.slice(-2000)}`);
    const uasPort = reg.localPort;
    const uas = spawn('sipp', [
      '-sf', UAS_SCENARIO, '-key', 'callee', 'bob', '-t', 'u1', '-i', '127.0.0.1', '-p', String(uasPort), '-m', String(CALLS), '-timeout', '60s', '-nostdin',
    ], { stdio: 'ignore', cwd: cluster.dir });
    const scrapes: Exposition[] = [];
    let running = true;
    try {
      await waitUdpBound(uasPort);
      // Scrapes go on while the calls are made: every one answers for both workers, whichever it reaches.
      const scraping = (async () => {
        while (running) {
          scrapes.push(await scrape());
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const uac = await runSipp({
        scenario: 'call-uac-auth.xml', target: `127.0.0.1:${port}`, calls: CALLS, rate: 10, timeoutSeconds: 40,
        extra: [
          '-key', 'aor_user', 'alice', '-key', 'aor_domain', DOMAIN, '-key', 'callee', 'bob',
          '-au', 'alice', '-ap', USERS.alice, '-auth_uri', `bob@${DOMAIN}`, '-recv_timeout', '10000',
        ],
      }).finally(() => (running = false));
      await scraping;
      assert.equal(uac.code, 0, `not every call completed:\n${uac.stdout.slice(-3000)}\n${uac.stderr.slice(-2000)}`);
    } finally {
      running = false;
      uas.kill('SIGKILL');
    }

    // A worker's scrape counts the calls of both: what one scrape has, the next (maybe the other worker's) has too.
    const invites = scrapes.map((e) => valueOf(e, 'softswitch_sip_requests_received_total', { method: 'INVITE' }));
    assert.ok(scrapes.length >= 5, `only ${scrapes.length} scrapes during the calls`);
    assert.deepEqual(invites, [...invites].sort((a, b) => a - b), `INVITEs counted by successive scrapes never go down: ${invites.join(' ')}`);
    for (const e of scrapes) assert.equal(valueOf(e, 'softswitch_scrape_workers_missing'), 0, 'every worker answered every scrape');

    // The UAC's last BYE has its 200: the dialog ends with it, on the worker that holds the call.
    let last = await scrape();
    const end = Date.now() + 5000;
    while (valueOf(last, 'softswitch_dialogs_ended_total') < CALLS && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      last = await scrape();
    }
    const count = (name: string, labels: Record<string, string>): number => valueOf(last, name, labels);
    const figures = {
      // Each call: INVITE → 407 → ACK, INVITE with credentials → 180 → 200 → ACK, BYE → 200.
      invites: count('softswitch_sip_requests_received_total', { method: 'INVITE' }) - count('softswitch_sip_retransmissions_received_total', { method: 'INVITE' }),
      challenged: count('softswitch_sip_responses_sent_total', { method: 'INVITE', code: '407' }),
      answeredByUas: count('softswitch_sip_responses_received_total', { method: 'INVITE', code: '200' }),
      answeredToUac: count('softswitch_sip_responses_sent_total', { method: 'INVITE', code: '200' }),
      byes: count('softswitch_sip_requests_received_total', { method: 'BYE' }) - count('softswitch_sip_retransmissions_received_total', { method: 'BYE' }),
      byesAnswered: count('softswitch_sip_responses_sent_total', { method: 'BYE', code: '200' }),
      ended: count('softswitch_dialogs_ended_total', {}),
      endedByBye: count('softswitch_dialogs_ended_total', { cause: 'bye' }),
      active: count('softswitch_dialogs_active', {}),
      // bob's binding is on both workers (replicated): the node has one.
      registrations: count('softswitch_registrations', { transport: 'udp' }),
    };
    assert.deepEqual(figures, {
      invites: 2 * CALLS, challenged: CALLS, answeredByUas: CALLS, answeredToUac: CALLS, byes: CALLS, byesAnswered: CALLS,
      ended: CALLS, endedByBye: CALLS, active: 0, registrations: 1,
    });
    // Node's own metrics stay per worker: both workers' series are there.
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'process_cpu_user_seconds_total', 'nodejs_heap_size_used_bytes']) {
      assert.deepEqual(matching(last, name).map((s) => s.labels.worker).sort(), ['0', '1'], `${name} of each worker`);
    }
    assert.ok(matching(last, 'nodejs_gc_duration_seconds_count').some((s) => s.labels.worker === '1'), 'GC durations per worker');
    assert.equal(valueOf(last, 'softswitch_scrape_workers_missing'), 0);
    const sorted = [...timings].sort((a, b) => a - b);
    tc.diagnostic(`${sorted.length} scrapes of 2 workers: ${sorted[0]!.toFixed(1)} / ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} / ${sorted.at(-1)!.toFixed(1)} ms (min / median / max), ${bytes} bytes`);
  });
});

describe('GET /metrics of a single process (--workers 1)', { timeout: 60_000 }, () => {
  let t: TestServer;
  let token: string;

  before(async () => {
    requireTool('sipp', 'sip-tester');
    t = await startTestServer();
    token = (await t.server.store.tokens.create({ name: 'metrics-single', expiresAt: Date.now() + 600_000 })).token;
  });

  after(async () => {
    await t?.stop();
  });

  it('answers for its one worker the same way: OPTIONS pings and their 200s counted, a WebSocket connection by transport, no worker missing', async () => {
    const pings = 3;
    const r = await runSipp({ scenario: 'options.xml', target: t.addr('udp'), calls: pings });
    assert.equal(r.code, 0, r.stdout.slice(-2000) + r.stderr.slice(-2000));
    const l = t.listener('ws');
    const ws = new WebSocket(`ws://${l.address}:${l.port}`, 'sip');
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const answer = await get(t.server.http.boundTo, '/metrics', token);
      assert.equal(answer.status, 200, answer.body);
      const e = parseExposition(answer.body);
      assert.deepEqual({
        options: valueOf(e, 'softswitch_sip_requests_received_total', { method: 'OPTIONS' }) - valueOf(e, 'softswitch_sip_retransmissions_received_total', { method: 'OPTIONS' }),
        answered: valueOf(e, 'softswitch_sip_responses_sent_total', { method: 'OPTIONS', code: '200' }),
        ws: valueOf(e, 'softswitch_connections', { transport: 'ws' }),
        missing: valueOf(e, 'softswitch_scrape_workers_missing'),
      }, { options: pings, answered: pings, ws: 1, missing: 0 });
      assert.deepEqual(matching(e, 'nodejs_eventloop_lag_p99_seconds').map((s) => s.labels.worker), ['0']);
    } finally {
      ws.close();
    }
  });

  it('counts HTTP API answers by method, route template and status code, never by the path asked', async () => {
    const before = parseExposition((await get(t.server.http.boundTo, '/metrics', token)).body);
    const users = ['alice@example.com', 'bob@example.com'];
    for (const user of users) assert.equal((await get(t.server.http.boundTo, `/v1/users/${user}`, token)).status, 404);
    assert.equal((await get(t.server.http.boundTo, '/v1/users', 'not-a-token')).status, 401);
    const e = parseExposition((await get(t.server.http.boundTo, '/metrics', token)).body);
    const delta = (labels: Record<string, string>) => valueOf(e, 'softswitch_http_requests_total', labels) - valueOf(before, 'softswitch_http_requests_total', labels);
    assert.deepEqual({
      missing: delta({ method: 'GET', route: '/v1/users/:user', code: '404' }),
      refused: delta({ method: 'GET', route: '/v1/users', code: '401' }),
      scraped: delta({ method: 'GET', route: '/metrics', code: '200' }),
    }, { missing: 2, refused: 1, scraped: 1 });
    assert.equal(matching(e, 'softswitch_http_requests_total').some((s) => s.labels.route?.includes('@')), false, 'a series named a path');
  });
});
