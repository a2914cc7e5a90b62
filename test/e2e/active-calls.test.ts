/**
 * `DELETE /v1/active-calls/:id`: the administrator hangs up a call answered through the softswitch (Kamailio's
 * dlg_end_dlg). A SIPp UAC over UDP calls a SIPp UAS registered over TCP; the DELETE makes the proxy send each
 * of them a BYE within the dialog (the scenarios expect it and answer 200), the call leaves the list and its
 * record says the system ended it. With `--workers 2`, the list shows the calls of both workers and a DELETE
 * answered by either worker ends a call the other holds.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SIPP_SCENARIOS, runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type TestCluster, type WssTestCluster, startTestCluster, startWssTestCluster } from '../helpers/cluster.js';
import { openStore } from '../../platform/store/index.js';
import { silentLogger } from '../../src/log/index.js';
import type { DialogSnapshot } from '../../src/dialog/index.js';
import { textOwner } from '../../server/cluster/datagram-owner.js';
import { type Softphone, type SoftphoneLibrary, createPhone } from '../helpers/softphone.js';
import { freePort, requireTool } from '../../support/tools.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';

const DOMAIN = 'example.com';

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

/** One HTTP request on a new connection (no keep-alive: the primary of a cluster deals connections to the workers in turn). */
function http(port: number, method: string, path: string, token: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: { authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: body === '' ? {} : (JSON.parse(body) as Record<string, unknown>) }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.end();
  });
}

interface ListedCall {
  id: string;
  callId: string;
  state: string;
  owner: number;
}

async function activeCalls(port: number, token: string): Promise<{ calls: ListedCall[]; workersMissing: number }> {
  const r = await http(port, 'GET', '/v1/active-calls', token);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as unknown as { calls: ListedCall[]; workersMissing: number };
}

/** Polls the list until `ok` holds for it (or 10 s pass: the last list is returned). */
async function listUntil(port: number, token: string, ok: (calls: ListedCall[]) => boolean): Promise<ListedCall[]> {
  const deadline = Date.now() + 10_000;
  let last = await activeCalls(port, token);
  while (!ok(last.calls) && Date.now() < deadline) {
    await sleep(100);
    last = await activeCalls(port, token);
  }
  return last.calls;
}

/**
 * The SIPp UAS: registers over `transport`, then answers one call and expects its BYE (reg-then-answer.xml +
 * call-uas.xml), or rings until the INVITE is CANCELled (call-uas-ringing.xml).
 */
function uas(target: string, transport: 'u1' | 't1', user: string, password: string, timeoutSeconds: number, call = 'call-uas.xml') {
  return runSipp({
    scenario: 'reg-then-answer.xml', target, transport, timeoutSeconds,
    extra: [
      '-oocsf', join(SIPP_SCENARIOS, call),
      '-key', 'aor_user', user, '-key', 'aor_domain', DOMAIN, '-au', user, '-ap', password, '-auth_uri', DOMAIN,
    ],
  });
}

/** The SIPp UAC: calls `callee` and waits for the BYE of the hang-up (call-uac-hungup.xml), or the 487 (call-uac-cancelled.xml). */
function uac(target: string, user: string, password: string, callee: string, extra: string[] = [], scenario = 'call-uac-hungup.xml') {
  return runSipp({
    scenario, target, transport: 'u1', timeoutSeconds: 20,
    extra: ['-key', 'aor_user', user, '-key', 'aor_domain', DOMAIN, '-key', 'callee', callee, '-au', user, '-ap', password, '-auth_uri', `${callee}@${DOMAIN}`, ...extra],
  });
}

describe('DELETE /v1/active-calls/:id on one process', { timeout: 60_000 }, () => {
  let t: TestServer;
  let admin: string;
  let port: number;

  before(async () => {
    requireTool('sipp', 'sip-tester');
    t = await startTestServer({ sip: { domain: [DOMAIN] }, auth: { algorithms: ['MD5'] } });
    admin = (await t.server.store.tokens.create({ name: 'hangup-admin', expiresAt: Date.now() + 600_000 })).token;
    port = t.server.http.boundTo;
    await t.addUser(`caller@${DOMAIN}`, 'caller-secret');
    await t.addUser(`callee@${DOMAIN}`, 'callee-secret');
  });
  after(async () => t?.stop());

  it('is for operators: 401 without a token, 403 with a user\'s', async () => {
    const path = '/v1/active-calls/0b7e6a8e-0000-4000-8000-000000000000';
    assert.equal((await http(port, 'DELETE', path, 'not-a-token')).status, 401);
    const r = await fetch(`http://127.0.0.1:${port}/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: `caller@${DOMAIN}`, password: 'caller-secret' }),
    });
    const { access_token: user } = (await r.json()) as { access_token: string };
    assert.equal((await http(port, 'DELETE', path, user)).status, 403);
  });

  it('an unknown id is 404 with a code; a malformed one 400', async () => {
    const unknown = await http(port, 'DELETE', '/v1/active-calls/0b7e6a8e-0000-4000-8000-000000000000', admin);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.code, 'API_ERR_NOT_FOUND');
    const bad = await http(port, 'DELETE', '/v1/active-calls/not%20an%20id', admin);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 'API_ERR_INVALID');
  });

  it('an answered call is hung up: the caller (UDP) and the callee (TCP) each get a BYE and answer 200, the call leaves the list, history says the system ended it', async () => {
    const callee = uas(t.addr('tcp'), 't1', 'callee', 'callee-secret', 20);
    const deadline = Date.now() + 5000;
    while (t.server.registrar.lookup(`sip:callee@${DOMAIN}`).length === 0 && Date.now() < deadline) await sleep(50);
    const caller = uac(t.addr('udp'), 'caller', 'caller-secret', 'callee');

    const calls = await listUntil(port, admin, (c) => c.some((x) => x.state === 'confirmed'));
    assert.equal(calls.length, 1, JSON.stringify(calls));
    const [call] = calls;
    assert.equal(call!.state, 'confirmed');
    await sleep(300); // the ACK reaches the UAS before its BYE does

    const hangup = await http(port, 'DELETE', `/v1/active-calls/${call!.id}`, admin);
    assert.equal(hangup.status, 202, JSON.stringify(hangup.json));
    assert.deepEqual(hangup.json, { id: call!.id, action: 'bye' });

    const [uacRun, uasRun] = await Promise.all([caller, callee]);
    assert.equal(uacRun.code, 0, `the caller did not get its BYE:\n${uacRun.stdout.slice(-3000)}${uacRun.stderr}`);
    assert.equal(uasRun.code, 0, `the callee did not get its BYE:\n${uasRun.stdout.slice(-3000)}${uasRun.stderr}`);
    assert.deepEqual((await activeCalls(port, admin)).calls, []);
    assert.equal((await http(port, 'DELETE', `/v1/active-calls/${call!.id}`, admin)).status, 404, 'an ended call is not there to hang up');

    let record = await http(port, 'GET', `/v1/calls/${call!.id}`, admin);
    const until = Date.now() + 5000;
    while (record.status === 404 && Date.now() < until) {
      await sleep(100);
      record = await http(port, 'GET', `/v1/calls/${call!.id}`, admin);
    }
    assert.equal(record.status, 200, JSON.stringify(record.json));
    assert.deepEqual(
      { disposition: record.json.disposition, endCause: record.json.endCause, hangupBy: record.json.hangupBy },
      { disposition: 'answered', endCause: 'bye', hangupBy: 'system' },
    );
  });

  it('a ringing call is hung up: its INVITE is CANCELled towards the callee, the caller gets 487, history says the system cancelled it', async () => {
    await t.addUser(`ringing@${DOMAIN}`, 'ringing-secret');
    const callee = uas(t.addr('tcp'), 't1', 'ringing', 'ringing-secret', 20, 'call-uas-ringing.xml');
    const deadline = Date.now() + 5000;
    while (t.server.registrar.lookup(`sip:ringing@${DOMAIN}`).length === 0 && Date.now() < deadline) await sleep(50);
    const caller = uac(t.addr('udp'), 'caller', 'caller-secret', 'ringing', [], 'call-uac-cancelled.xml');

    const [call] = await listUntil(port, admin, (c) => c.some((x) => x.state === 'early'));
    assert.equal(call?.state, 'early');
    const hangup = await http(port, 'DELETE', `/v1/active-calls/${call!.id}`, admin);
    assert.equal(hangup.status, 202, JSON.stringify(hangup.json));
    assert.deepEqual(hangup.json, { id: call!.id, action: 'cancel' });

    const [uacRun, uasRun] = await Promise.all([caller, callee]);
    assert.equal(uacRun.code, 0, `the caller did not get its 487:\n${uacRun.stdout.slice(-3000)}${uacRun.stderr}`);
    assert.equal(uasRun.code, 0, `the callee did not get the CANCEL:\n${uasRun.stdout.slice(-3000)}${uasRun.stderr}`);
    assert.deepEqual((await activeCalls(port, admin)).calls, []);
    let record = await http(port, 'GET', `/v1/calls/${call!.id}`, admin);
    const until = Date.now() + 5000;
    while (record.status === 404 && Date.now() < until) {
      await sleep(100);
      record = await http(port, 'GET', `/v1/calls/${call!.id}`, admin);
    }
    assert.deepEqual(
      { disposition: record.json.disposition, endCause: record.json.endCause, hangupBy: record.json.hangupBy, finalCode: record.json.finalCode },
      { disposition: 'cancelled', endCause: 'cancel', hangupBy: 'system', finalCode: 487 },
    );
  });

  /** A registered phone of a new user over a WebSocket, stopped when the test ends. */
  async function phone(tc: { after(fn: () => Promise<void>): void }, library: SoftphoneLibrary, protocol: 'ws' | 'wss', user: string): Promise<Softphone> {
    await t.addUser(`${user}@${DOMAIN}`, `${user}-secret`);
    const p = await createPhone(library, { uri: `sip:${user}@${DOMAIN}`, password: `${user}-secret`, wsUrl: `${protocol}://${t.addr(protocol)}` });
    tc.after(() => p.stop());
    await p.register();
    return p;
  }

  it('WebSocket phones are reached over their own connections, and each BYE goes above the CSeq of the re-INVITEs (hold) either side sent', async (tc) => {
    const caller = await phone(tc, 'sip.js', 'wss', 'wsscaller');
    const callee = await phone(tc, 'jssip', 'ws', 'wscallee');
    const calling = caller.call(callee.aor);
    const incoming = await callee.waitForIncoming();
    const [answered, established] = await Promise.all([incoming.accept(), calling]);
    // Both sides' CSeqs move on: a BYE with a lower one would be refused (RFC 3261 §12.2.2: 500).
    await established.hold();
    await established.unhold();
    await answered.hold();

    const [call] = await listUntil(port, admin, (c) => c.length === 1);
    // The persisted dialog follows the CSeqs: a process taking the call up after a crash would hang it up right.
    const persisted = async () => {
      const row = (await t.server.store.dialogs.listOwned(0)).find((r) => r.id === call!.id);
      return row === undefined ? undefined : (JSON.parse(row.data) as DialogSnapshot).legs;
    };
    const until = Date.now() + 5000;
    while (((await persisted())?.callee.cseq ?? 0) === 0 && Date.now() < until) await sleep(50);
    const legs = await persisted();
    assert.ok(legs !== undefined && legs.callee.cseq > 0 && legs.caller.cseq >= 3, `persisted legs: ${JSON.stringify(legs)}`);
    const hangup = await http(port, 'DELETE', `/v1/active-calls/${call!.id}`, admin);
    assert.equal(hangup.status, 202, JSON.stringify(hangup.json));
    const [callerEnd, calleeEnd] = await Promise.all([established.waitForEnded(5000), answered.waitForEnded(5000)]);
    assert.deepEqual({ originator: callerEnd.originator, cause: callerEnd.cause }, { originator: 'remote', cause: 'bye' });
    assert.deepEqual({ originator: calleeEnd.originator, cause: calleeEnd.cause }, { originator: 'remote', cause: 'bye' });
    const byes = [caller, callee].map((p) => p.sockets.flatMap((x) => x.messages).filter((m) => m.dir === 'in' && m.text.startsWith('BYE ')).map((m) => m.text));
    assert.deepEqual(byes.map((b) => b.length), [1, 1], 'one BYE each, over its own connection');
    assert.match(byes[0]![0]!, /^Reason: SIP;text="Call ended by the administrator"\r?$/im);
    assert.deepEqual((await activeCalls(port, admin)).calls, []);
  });
});

describe('DELETE /v1/active-calls/:id of a call whose media rtpengine relays', { timeout: 60_000 }, () => {
  let t: TestServer;
  let rtpengine: RtpengineHandle;
  let admin: string;

  before(async () => {
    requireTool('sipp', 'sip-tester');
    rtpengine = await startRtpengine();
    t = await startTestServer({ sip: { domain: [DOMAIN] }, auth: { algorithms: ['MD5'] }, media: { rtpengine: [rtpengine.ng], alwaysRelay: true } });
    admin = (await t.server.store.tokens.create({ name: 'hangup-media', expiresAt: Date.now() + 600_000 })).token;
    await t.addUser(`mcaller@${DOMAIN}`, 'mcaller-secret');
    await t.addUser(`mcallee@${DOMAIN}`, 'mcallee-secret');
  });
  after(async () => {
    await t?.stop();
    await rtpengine?.stop();
  });

  it('the relay session is deleted with the call, as for a BYE from a phone', async () => {
    const port = t.server.http.boundTo;
    const callee = uas(t.addr('udp'), 'u1', 'mcallee', 'mcallee-secret', 20);
    const deadline = Date.now() + 5000;
    while (t.server.registrar.lookup(`sip:mcallee@${DOMAIN}`).length === 0 && Date.now() < deadline) await sleep(50);
    const caller = uac(t.addr('udp'), 'mcaller', 'mcaller-secret', 'mcallee');
    const [call] = await listUntil(port, admin, (c) => c.some((x) => x.state === 'confirmed'));
    assert.equal(call?.state, 'confirmed');
    assert.ok((await rtpengine.listSessions()).includes(call!.callId), `rtpengine relays the call: ${rtpengine.logTail()}`);
    await sleep(300);

    assert.equal((await http(port, 'DELETE', `/v1/active-calls/${call!.id}`, admin)).status, 202);
    const runs = await Promise.all([caller, callee]);
    for (const r of runs) assert.equal(r.code, 0, `a side did not get its BYE:\n${r.stdout.slice(-3000)}${r.stderr}`);
    const until = Date.now() + 5000;
    while ((await rtpengine.listSessions()).includes(call!.callId) && Date.now() < until) await sleep(100);
    assert.deepEqual((await rtpengine.listSessions()).filter((c) => c === call!.callId), [], 'the media session is gone');
  });
});

describe('DELETE /v1/active-calls/:id on softswitch start --workers 2', { timeout: 120_000 }, () => {
  let cluster: TestCluster;
  let sipPort: number;
  let httpPort: number;
  let admin: string;

  before(async () => {
    requireTool('sipp', 'sip-tester');
    sipPort = await freePort();
    httpPort = await freePort();
    cluster = await startTestCluster(2, () => ({
      sip: { listen: [`udp:127.0.0.1:${sipPort}`], domain: [DOMAIN] },
      auth: { algorithms: ['MD5'] },
      http: { listen: `127.0.0.1:${httpPort}` },
    }), 'softswitch-hangup-');
    await cluster.addUsers([
      { username: 'caller', domain: DOMAIN, password: 'caller-secret' },
      ...[1, 2, 3, 4].map((n) => ({ username: `callee${n}`, domain: DOMAIN, password: `callee${n}-secret` })),
    ]);
    const store = await openStore({ url: cluster.storeUrl, logger: silentLogger() });
    try {
      admin = (await store.tokens.create({ name: 'hangup-cluster', expiresAt: Date.now() + 600_000 })).token;
    } finally {
      await store.close();
    }
  });
  after(async () => cluster?.stop());

  it('the list shows the calls held by both workers, and each DELETE, whichever worker answers it, makes both sides of its call get a BYE', async () => {
    // Call-IDs chosen so that two calls fall to each worker (UDP datagrams go to the worker their Call-ID hashes to).
    const callIds: string[] = [];
    for (let i = 0; callIds.filter((c) => textOwner(c, 2) === 0).length < 2 || callIds.filter((c) => textOwner(c, 2) === 1).length < 2; i++) {
      const id = `hangup-${i}@test`;
      if (callIds.filter((c) => textOwner(c, 2) === textOwner(id, 2)).length < 2) callIds.push(id);
    }
    const target = `127.0.0.1:${sipPort}`;
    const callees = callIds.map((_, i) => uas(target, 'u1', `callee${i + 1}`, `callee${i + 1}-secret`, 40));
    await sleep(1500); // the four REGISTERs are answered and replicated
    const callers = callIds.map((callId, i) => uac(target, 'caller', 'caller-secret', `callee${i + 1}`, ['-cid_str', callId]));

    const calls = await listUntil(httpPort, admin, (c) => c.filter((x) => x.state === 'confirmed').length === 4);
    assert.equal(calls.filter((c) => c.state === 'confirmed').length, 4, JSON.stringify(calls));
    assert.deepEqual(calls.map((c) => c.owner).sort(), [0, 0, 1, 1], 'each worker holds two of the calls, and both are listed');
    for (const c of calls) assert.equal(c.owner, textOwner(c.callId, 2));
    await sleep(300);

    // Worker 0's calls first, then worker 1's: the primary deals the connections in turn, so each worker gets
    // a DELETE for a call the other holds.
    const ordered = [...calls].sort((a, b) => a.owner - b.owner);
    for (const c of ordered) {
      const r = await http(httpPort, 'DELETE', `/v1/active-calls/${c.id}`, admin);
      assert.equal(r.status, 202, `${c.callId} (worker ${c.owner}): ${JSON.stringify(r.json)}`);
      assert.equal(r.json.action, 'bye');
    }
    const runs = await Promise.all([...callers, ...callees]);
    for (const r of runs) assert.equal(r.code, 0, `a side did not get its BYE:\n${r.stdout.slice(-3000)}${r.stderr}`);
    const after = await activeCalls(httpPort, admin);
    assert.deepEqual(after, { workersMissing: 0, calls: [] });
    assert.match(cluster.out, /"msg":"call hung up at the worker that holds it"/, 'a DELETE crossed workers');
  });
});

describe('DELETE /v1/active-calls/:id for WebSocket phones on two workers', { timeout: 120_000 }, () => {
  let cluster: WssTestCluster;
  let httpPort: number;
  let admin: string;

  before(async () => {
    httpPort = await freePort();
    cluster = await startWssTestCluster(2, {
      domain: DOMAIN, users: ['wa', 'wb'], password: 'ws-secret', config: () => ({ http: { listen: `127.0.0.1:${httpPort}` } }), prefix: 'softswitch-hangup-wss-',
    });
    const store = await openStore({ url: cluster.storeUrl, logger: silentLogger() });
    try {
      admin = (await store.tokens.create({ name: 'hangup-wss', expiresAt: Date.now() + 600_000 })).token;
    } finally {
      await store.close();
    }
  });
  after(async () => cluster?.stop());

  it('the callee\'s re-INVITE over the other worker\'s connection raises its CSeq at the worker holding the call: the caller accepts the BYE', async () => {
    const caller = await cluster.phone('wa', 'jssip');
    const callee = await cluster.phone('wb', 'jssip');
    const [callerWorker] = cluster.registeredOn(`sip:wa@${DOMAIN}`).slice(-1);
    const [calleeWorker] = cluster.registeredOn(`sip:wb@${DOMAIN}`).slice(-1);
    assert.notEqual(callerWorker, calleeWorker, 'caller and callee are connected to different workers');
    const calling = caller.call(callee.aor);
    const incoming = await callee.waitForIncoming();
    const [answered, established] = await Promise.all([incoming.accept(), calling]);
    // JsSIP refuses an in-dialog request below the CSeq it last saw from its peer (RFC 3261 §12.2.2).
    await answered.hold();

    const [call] = await listUntil(httpPort, admin, (c) => c.length === 1);
    assert.equal(call!.owner, callerWorker, 'the worker that forwarded the INVITE holds the call');
    const hangup = await http(httpPort, 'DELETE', `/v1/active-calls/${call!.id}`, admin);
    assert.equal(hangup.status, 202, JSON.stringify(hangup.json));
    const [callerEnd, calleeEnd] = await Promise.all([established.waitForEnded(5000), answered.waitForEnded(5000)]);
    assert.deepEqual([callerEnd.originator, callerEnd.cause, calleeEnd.originator, calleeEnd.cause], ['remote', 'bye', 'remote', 'bye']);
    assert.deepEqual(await activeCalls(httpPort, admin), { workersMissing: 0, calls: [] });
  });
});
