/**
 * A FreeSWITCH of the pool dies while SIPp runs calls through the softswitch (issue 6): three stand-in
 * backends in their own processes (127.0.0.2–4), one SIGKILLed in the middle of a run. Calls that were up
 * on it at that moment die with it (as with a real crash); every call placed after the kill completes on
 * the other two (serial failover covers the detection window); once the box is back and answers its
 * OPTIONS probes it takes calls again.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FakeFreeswitchProcess, startFakeFreeswitchProcess } from '../helpers/fake-freeswitch.js';
import { runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const DOMAIN = 'example.com';
const ALICE = { user: 'alice', password: 'alice-failover-secret' };

/** The cumulative "Failed call" count of SIPp's final screen. */
function failedCalls(stdout: string): number {
  const lines = stdout.split('\n').filter((l) => /^\s*Failed call\b/.test(l));
  const last = lines.at(-1);
  if (last === undefined) throw new Error(`no SIPp statistics in:\n${stdout.slice(-1500)}`);
  return Number(last.match(/\d+/g)!.at(-1));
}

interface BackendHealth {
  uri: string;
  health: string;
}

describe('load balancer: a backend killed under load', () => {
  let t: TestServer;
  const boxes: FakeFreeswitchProcess[] = [];

  async function health(uri: string): Promise<string | undefined> {
    const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/health`);
    const body = (await res.json()) as { backends: BackendHealth[] };
    return body.backends.find((b) => b.uri === uri)?.health;
  }

  async function waitHealth(uri: string, want: string, timeoutMs: number): Promise<number> {
    const started = Date.now();
    while ((await health(uri)) !== want) {
      if (Date.now() - started > timeoutMs) throw new Error(`${uri} not ${want} after ${timeoutMs} ms`);
      await sleep(100);
    }
    return Date.now() - started;
  }

  function calls(count: number, rate: number, holdMs: number) {
    return runSipp({
      scenario: 'fs-uac-pstn-call.xml', target: t.addr('udp'), calls: count, rate, timeoutSeconds: 30,
      extra: ['-key', 'aor_user', ALICE.user, '-key', 'aor_domain', DOMAIN, '-key', 'callee', '+4930123456',
        '-au', ALICE.user, '-ap', ALICE.password, '-auth_uri', `+4930123456@${DOMAIN}`,
        '-d', String(holdMs), '-l', '100',
        // A call whose box died under it (its BYE goes unanswered) is counted failed after 5 s, not 32.
        '-recv_timeout', '5000'],
    });
  }

  const invitesTo = (box: FakeFreeswitchProcess, since = 0): number =>
    box.events.slice(since).filter((e) => e.event === 'invite').length;

  before(async () => {
    for (const host of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) boxes.push(await startFakeFreeswitchProcess({ host }));
    t = await startTestServer({ balancer: { probeInterval: 0.5, failoverTimeout: 1, failureThreshold: 2, recoveryThreshold: 2, reloadInterval: 0 } });
    await t.addUser(`${ALICE.user}@${DOMAIN}`, ALICE.password);
    for (const b of boxes) await t.server.store.routing.addBackend({ set: 'pstn', uri: b.uri });
    await t.server.store.routing.addRoute({ pattern: '\\+[1-9][0-9]{6,14}', replace: '', set: 'pstn', priority: 10, description: 'E.164' });
    await t.server.reload();
    for (const b of boxes) await waitHealth(b.uri, 'up', 5000);
  });

  after(async () => {
    await t?.stop();
    await Promise.all(boxes.map((b) => (b.exited ? undefined : b.kill())));
  });

  it('loses only the calls that were up on the killed box; every call placed after the kill completes on the others; the box is used again when it is back', async () => {
    const victim = boxes[1]!;
    const others = [boxes[0]!, boxes[2]!];

    // Run 1: 150 calls at 30/s, each held 300 ms; the box dies 2 s in.
    const run1 = calls(150, 30, 300);
    await sleep(2000);
    const upOnVictim = victim.events.filter((e) => e.event === 'answered').length - victim.events.filter((e) => e.event === 'ended').length;
    await victim.kill();
    const killedAt = Date.now();

    // Run 2 starts at once, inside the detection window: nothing may fail.
    const marks = others.map((b) => b.events.length);
    const run2 = await calls(60, 30, 0);
    assert.equal(run2.code, 0, `every call after the kill completes:\n${run2.stdout.slice(-1500)}`);
    assert.ok(others.every((b, i) => invitesTo(b, marks[i]) > 0));

    const r1 = await run1;
    const failed1 = failedCalls(r1.stdout);
    assert.ok(failed1 <= Math.max(upOnVictim, 0) + 1, `run 1 lost ${failed1} calls, ${upOnVictim} were up on the killed box`);

    const downAfter = await waitHealth(victim.uri, 'down', 5000);
    assert.ok(Date.now() - killedAt < 10_000, `marked down ${downAfter} ms after we started looking`);

    // The box comes back on the same port; the probes bring it back; it takes calls again.
    const revived = await startFakeFreeswitchProcess({ host: '127.0.0.3', port: victim.port });
    boxes[1] = revived;
    await waitHealth(revived.uri, 'up', 10_000);
    const run3 = await calls(30, 30, 0);
    assert.equal(run3.code, 0, run3.stdout.slice(-1500));
    assert.ok(invitesTo(revived) >= 5, `the revived box got ${invitesTo(revived)} of 30 calls`);
  });
});
