/**
 * The mid-registrar in front of a FreeSWITCH pool (issue 6): 300 users register with SIPp through the
 * softswitch in each mode, over three stand-in backends (127.0.0.2–4, round-robin, sticky per AoR).
 * Then a backend calls a device at the Contact the softswitch registered there, and the call reaches the
 * phone on its own WebSocket.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type FakeFreeswitch, startFakeFreeswitch } from '../helpers/fake-freeswitch.js';
import { repoRoot } from '../../support/paths.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';
import { runSipp } from '../helpers/sipp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createPhone } from '../helpers/softphone.js';
import { freePort } from '../../support/tools.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const DOMAIN = 'example.com';
const USERS = 300;
/** What the softswitch asks of the backends in the throttle modes; the devices ask 3600 (register.xml). */
const OUTGOING_EXPIRES = 7200;
/** One REGISTER per call with digest auth, users and passwords from an injection file (the bench's scenario). */
const REGISTER_XML = join(repoRoot, 'bench', 'sipp', 'register.xml');

type Mode = 'mirror' | 'contact-throttle' | 'aor-throttle';

interface MidStats {
  forwarded: number;
  absorbed: number;
  expiredAtBackend: number;
  backendFailures: number;
}

async function midStats(t: TestServer): Promise<MidStats> {
  const res = await fetch(`http://127.0.0.1:${t.server.http.boundTo}/health`);
  const body = (await res.json()) as { midRegistrar?: MidStats };
  assert.ok(body.midRegistrar, '/health reports the mid-registrar');
  return body.midRegistrar;
}

/** A running softswitch in `mode` with three backends and USERS subscribers. */
async function pool(mode: Mode, rtpengine?: RtpengineHandle): Promise<{ t: TestServer; backends: FakeFreeswitch[]; inf: string; dir: string; stop(): Promise<void> }> {
  const backends = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((host) =>
    // The softswitch authenticates (registrar.localAuth): the pool trusts its address, as a FreeSWITCH
    // profile with an ACL for the softswitch does.
    startFakeFreeswitch({ host, challengeRegister: false, registerExpires: OUTGOING_EXPIRES })));
  const t = await startTestServer({
    registrar: { mode, backendSet: 'freeswitch', outgoingExpires: OUTGOING_EXPIRES, localAuth: true },
    ...(rtpengine === undefined ? {} : { media: { rtpengine: [rtpengine.ng] } }),
    balancer: { reloadInterval: 0 },
  });
  for (const b of backends) await t.server.store.routing.addBackend({ set: 'freeswitch', uri: b.uri });
  const dir = mkdtempSync(join(tmpdir(), 'midreg-'));
  const lines = ['SEQUENTIAL'];
  for (let i = 0; i < USERS; i++) {
    const user = `u${i}`;
    await t.addUser(`${user}@${DOMAIN}`, `${user}-secret`);
    lines.push(`${user};${user}-secret`);
  }
  const inf = join(dir, 'users.csv');
  writeFileSync(inf, lines.join('\n') + '\n');
  await t.server.reload();
  return {
    t, backends, inf, dir,
    async stop() {
      await t.stop();
      await Promise.all(backends.map((b) => b.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every user registers once from `port` (one SIPp process, so every Contact is 127.0.0.1:port). */
async function registerAll(t: TestServer, inf: string, port: number): Promise<void> {
  const r = await runSipp({
    scenario: REGISTER_XML, target: t.addr('udp'), calls: USERS, rate: 200, timeoutSeconds: 30,
    extra: ['-inf', inf, '-key', 'aor_domain', DOMAIN, '-p', String(port), '-l', '50'],
  });
  assert.equal(r.code, 0, r.stdout.slice(-2000) + r.stderr);
}

/** AoR → the backend index it is registered on; asserts each AoR is on exactly one. */
function placement(backends: FakeFreeswitch[]): Map<string, number> {
  const where = new Map<string, number>();
  backends.forEach((b, i) => {
    for (const aor of b.registeredAors()) {
      assert.equal(where.get(aor), undefined, `${aor} registered on two backends`);
      where.set(aor, i);
    }
  });
  return where;
}

function spread(where: Map<string, number>, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (const i of where.values()) counts[i]!++;
  return counts;
}

describe('mid-registrar mode mirror: every REGISTER is forwarded to the sticky backend, the binding kept on its 2xx', () => {
  let p: Awaited<ReturnType<typeof pool>>;
  let rtpengine: RtpengineHandle;
  before(async () => {
    // The backend's call to a WebRTC phone is bridged plain RTP ⇄ WebRTC.
    rtpengine = await startRtpengine();
    p = await pool('mirror', rtpengine);
  });
  after(async () => {
    await p?.stop();
    await rtpengine?.stop();
  });

  it('spreads 300 users round-robin over three backends (100 each), each AoR on one backend, with the Contact rewritten to the softswitch', async () => {
    await registerAll(p.t, p.inf, await freePort());
    const where = placement(p.backends);
    assert.equal(where.size, USERS);
    assert.deepEqual(spread(where, 3), [100, 100, 100]);
    const reg = p.backends[0]!.registers.at(-1)!;
    const softswitch = p.t.listener('udp');
    assert.ok(reg.contact[0]!.includes(`${softswitch.address}:${softswitch.port}`), `Contact points at the softswitch: ${reg.contact[0]}`);
    assert.match(reg.contact[0]!, /;ctid=/);
    assert.equal((await midStats(p.t)).absorbed, 0);
  });

  it('keeps each AoR on its backend when it registers again (stickiness), and forwards the refresh', async () => {
    const first = placement(p.backends);
    const before = (await midStats(p.t)).forwarded;
    await registerAll(p.t, p.inf, await freePort());
    assert.deepEqual([...placement(p.backends)].sort(), [...first].sort());
    const stats = await midStats(p.t);
    assert.equal(stats.forwarded - before, USERS);
    assert.equal(stats.absorbed, 0);
  });

  it('lets a backend call a device at the Contact it holds: the call reaches the softphone on its own WebSocket', async () => {
    const user = 'u7';
    const phone = await createPhone('sip.js', { uri: `sip:${user}@${DOMAIN}`, password: `${user}-secret`, wsUrl: `wss://${p.t.addr('wss')}` });
    try {
      await phone.register();
      const aor = `${user}@${DOMAIN}`;
      const backend = p.backends.find((b) => b.registrations(aor).some((r) => r.contact.includes('transport=udp') || r.contact.includes('ctid')))!;
      assert.ok(backend, 'the phone is registered at a backend');
      const newest = backend.registrations(aor).at(-1)!;
      const incoming = phone.waitForIncoming(5000);
      const calling = backend.call(newest.contact, { via: p.t.addr('udp'), from: 'sip:+4930555@pstn.invalid' });
      const call = await incoming;
      const answered = await call.accept();
      const result = await calling;
      assert.equal(result.status, 200);
      await result.hangup();
      await answered.waitForEnded(5000);
    } finally {
      await phone.stop();
    }
  });
});

describe('mid-registrar mode contact-throttle: long registrations at the backend, device refreshes absorbed', () => {
  let p: Awaited<ReturnType<typeof pool>>;
  before(async () => (p = await pool('contact-throttle')));
  after(async () => p?.stop());

  it('forwards the first REGISTER of each of 300 users with outgoing_expires (7200 s, the devices ask 3600), 100 per backend', async () => {
    await registerAll(p.t, p.inf, await freePort());
    const where = placement(p.backends);
    assert.deepEqual(spread(where, 3), [100, 100, 100]);
    for (const b of p.backends) for (const r of b.registers) assert.equal(r.expires ?? Number(/expires=(\d+)/.exec(r.contact[0]!)?.[1]), OUTGOING_EXPIRES);
  });

  it('answers the devices\' refreshes itself and counts them absorbed; the backends see none', async () => {
    // A new SIPp port is a new Contact for every AoR: a change the backend hears of. The same port again
    // is a plain refresh of an unchanged Contact: absorbed.
    const port = await freePort();
    await registerAll(p.t, p.inf, port);
    const atBackends = p.backends.reduce((n, b) => n + b.registers.length, 0);
    const before = await midStats(p.t);
    await registerAll(p.t, p.inf, port);
    const stats = await midStats(p.t);
    assert.equal(stats.absorbed - before.absorbed, USERS, 'every refresh of an unchanged Contact is absorbed');
    assert.equal(stats.forwarded, before.forwarded);
    assert.equal(p.backends.reduce((n, b) => n + b.registers.length, 0), atBackends, 'no refresh reached a backend');
  });
});

describe('mid-registrar mode aor-throttle: one Contact per AoR at the backend, the softswitch forks to the devices', () => {
  let p: Awaited<ReturnType<typeof pool>>;
  before(async () => (p = await pool('aor-throttle')));
  after(async () => p?.stop());

  it('registers one Contact per AoR at the backends, and a second device of each AoR only locally, authenticated', async () => {
    await registerAll(p.t, p.inf, await freePort());
    const where = placement(p.backends);
    assert.deepEqual(spread(where, 3), [100, 100, 100]);
    const atBackends = p.backends.reduce((n, b) => n + b.registers.length, 0);
    const before = await midStats(p.t);
    // A second device per AoR. register.xml insists on a 401 before its authenticated REGISTER: SIPp
    // succeeding means every second device was challenged, not waved through (OpenSIPS #3193).
    await registerAll(p.t, p.inf, await freePort());
    const stats = await midStats(p.t);
    assert.equal(stats.absorbed - before.absorbed, USERS);
    assert.equal(p.backends.reduce((n, b) => n + b.registers.length, 0), atBackends, 'the backends still hold one Contact per AoR');
    for (const b of p.backends) for (const aor of b.registeredAors()) assert.equal(b.registrations(aor).length, 1);
    assert.equal(p.t.server.registrar.lookup(`sip:u1@${DOMAIN}`).length, 2, 'both devices of an AoR are bound at the softswitch');
  });
});
