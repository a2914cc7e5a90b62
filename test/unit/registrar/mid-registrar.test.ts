import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseNameAddrs } from '../../../src/sip/index.js';
import type { BackendChoice, BalancerApi } from '../../../balancer/types.js';
import { pickerFromBalancer } from '../../../server/balancer-picker.js';
import { ALICE, BOB, LogCapture, answer } from './helpers.js';
import { AOR, FakeBackend, ListPicker, Softswitch, contactUris, ruri, until } from './mid-helpers.js';

const running: Array<{ stop(): Promise<void> }> = [];
after(async () => {
  for (const r of running.reverse()) await r.stop();
});

async function backends(n: number, o: { challenge?: boolean; maxExpires?: number } = {}): Promise<FakeBackend[]> {
  const out: FakeBackend[] = [];
  for (let i = 0; i < n; i++) {
    const b = await new FakeBackend(o).start();
    running.push(b);
    out.push(b);
  }
  return out;
}

async function softswitch(o: Parameters<typeof Softswitch.start>[0]): Promise<Softswitch> {
  const s = await Softswitch.start(o);
  running.push(s);
  return s;
}

/** The expires parameter of the Contact in `values` whose URI starts with `prefix`. */
function expiresOf(values: string[], prefix: string): number | undefined {
  for (const v of values) {
    const na = parseNameAddrs(v, 'contact', true)[0]!;
    if (na.uri.toString().startsWith(prefix)) return na.expires;
  }
  return undefined;
}

describe('mid-registrar, mirror mode with the backend authenticating (localAuth false)', () => {
  it('relays the backend\'s 401, forwards the answer with the device\'s Authorization, and stores the binding with the backend\'s expiry', async () => {
    const [fs] = await backends(1, { maxExpires: 120 });
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: false });
    const phone = await s.phone();
    const res = await phone.register({ expires: 600 });

    assert.equal(res.status, 200);
    assert.equal(fs!.registers.length, 2, 'the challenged REGISTER and its answer both reached the backend');
    const [first, second] = fs!.registers;
    assert.equal(first!.has('authorization'), false);
    assert.equal(second!.getAll('authorization').length, 1, 'the device\'s credentials passed through (#1156)');
    assert.equal(second!.uri, 'sip:example.com', 'the Request-URI the digest was computed over');
    // A request of the softswitch's own: its Via, its Call-ID, our Contact with the ctid.
    const via = second!.topVia!;
    assert.equal(`${via.host}:${via.port}`, `${s.destination.address}:${s.destination.port}`);
    assert.equal(second!.via.length, 1);
    assert.notEqual(second!.callId, phone.callId);
    assert.equal(second!.callId, first!.callId, 'one registration per AoR at the backend');
    assert.ok(second!.cseq!.seq > first!.cseq!.seq);
    const [ours] = contactUris(second!);
    assert.equal(ours!.user, 'alice');
    assert.equal(`${ours!.host}:${ours!.port}`, `${s.destination.address}:${s.destination.port}`);
    assert.match(String(ours!.getParam('ctid')), /^[A-Za-z0-9_-]{16}$/);

    // The device sees its own Contact with the backend's 120 s, and the Registrar's lookup finds it.
    assert.equal(expiresOf(res.getAll('contact'), phone.contact.slice(1, -1)), 120);
    const bindings = s.locations.lookup(AOR);
    assert.equal(bindings.length, 1);
    assert.equal(bindings[0]!.contactUri, phone.contact.slice(1, -1));
    assert.equal(bindings[0]!.expiresAt, s.now() + 120_000);
    assert.equal(s.mid.stats.forwarded, 2);
    assert.equal(s.mid.stats.absorbed, 0);
  });

  it('stores nothing while the backend has not answered 2xx, and relays its other finals to the device', async () => {
    const [fs] = await backends(1);
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: false });
    const phone = await s.phone();
    const challenged = await phone.send();
    assert.equal(challenged.status, 401);
    assert.equal(challenged.getAll('www-authenticate').length, 2, 'both of the backend\'s challenges');
    assert.equal(s.locations.lookup(AOR).length, 0);
    fs!.behaviour = 'forbidden';
    const refused = await phone.send({ authorization: [answer(challenged, ALICE, { uri: 'sip:example.com' })] });
    assert.equal(refused.status, 403);
    assert.equal(refused.reason, 'Forbidden (backend says no)');
    assert.equal(s.locations.lookup(AOR).length, 0);
  });

  it('a device\'s de-REGISTER is forwarded and its binding goes when the backend agrees', async () => {
    const [fs] = await backends(1);
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: false });
    const phone = await s.phone();
    assert.equal((await phone.register()).status, 200);
    const res = await phone.register({ expires: 0 });
    assert.equal(res.status, 200);
    assert.equal(fs!.registers.at(-1)!.get('expires'), '0', 'mirrored as the device sent it');
    assert.equal(s.locations.lookup(AOR).length, 0);
  });
});

describe('mid-registrar, mirror mode with the softswitch authenticating (localAuth true)', () => {
  it('challenges the device itself and forwards only authenticated REGISTERs, without credentials', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 120 });
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: true });
    const phone = await s.phone();
    const challenged = await phone.send();
    assert.equal(challenged.status, 401);
    assert.equal(fs!.registers.length, 0, 'an unauthenticated REGISTER goes nowhere');
    const res = await phone.send({ authorization: [answer(challenged, ALICE, { uri: 'sip:example.com' })] });
    assert.equal(res.status, 200);
    assert.equal(fs!.registers.length, 1);
    assert.equal(fs!.registers[0]!.has('authorization'), false);
    assert.equal(s.locations.lookup(AOR).length, 1);
  });

  it('a user registering another user\'s AoR with its own valid credentials gets 403 and nothing is forwarded', async () => {
    const [fs] = await backends(1, { challenge: false });
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: true });
    const phone = await s.phone();
    const res = await phone.register({ as: BOB });
    assert.equal(res.status, 403);
    assert.equal(fs!.registers.length, 0);
  });

  it('a backend that challenges REGISTERs the softswitch authenticated is a misconfiguration: 500, not a 401 the device cannot answer', async () => {
    const [fs] = await backends(1, { challenge: true });
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: true });
    const phone = await s.phone();
    const res = await phone.register();
    assert.equal(res.status, 500);
    assert.equal(s.locations.lookup(AOR).length, 0);
  });
});

describe('mid-registrar, backend failover and unreachable backends', () => {
  it('a backend that does not answer within backendTimeoutMs is reported and the next candidate gets the REGISTER', async () => {
    const [dead, alive] = await backends(2, { challenge: false });
    dead!.behaviour = 'silent';
    const s = await softswitch({ backends: [dead!, alive!], mode: 'mirror', localAuth: true, backendTimeoutMs: 4000 });
    const phone = await s.phone();
    const challenged = await phone.send();
    const pending = phone.send({ authorization: [answer(challenged, ALICE, { uri: 'sip:example.com' })] });
    await until(() => dead!.registers.length === 1);
    assert.equal(alive!.registers.length, 0, 'serial, not parallel');
    s.clock.tick(4000);
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(alive!.registers.length, 1);
    const picker = s.picker as ListPicker;
    assert.deepEqual(picker.failures, [['fs1', 'timeout']]);
    assert.deepEqual(picker.successes, ['fs2']);
    assert.equal(s.mid.stats.backendFailures, 1);
    assert.equal(s.mid.stats.forwarded, 1, 'one REGISTER forwarded, whatever the attempts');
  });

  it('a 503 from the first backend moves on to the second at once', async () => {
    const [busy, alive] = await backends(2);
    busy!.behaviour = 'unavailable';
    const s = await softswitch({ backends: [busy!, alive!], mode: 'mirror', localAuth: false });
    const phone = await s.phone();
    const res = await phone.register();
    assert.equal(res.status, 200);
    assert.equal(busy!.registers.length, 2);
    assert.equal(alive!.registers.length, 2);
    assert.deepEqual((s.picker as ListPicker).failures.map((f) => f[1]), ['503', '503']);
  });

  it('when no backend answers the device gets 503 with Retry-After, and one log line says so', async () => {
    const [a, b] = await backends(2);
    a!.behaviour = 'unavailable';
    b!.behaviour = 'unavailable';
    const log = new LogCapture();
    const s = await softswitch({ backends: [a!, b!], mode: 'mirror', localAuth: false, retryAfter: 45, logger: log.logger });
    const phone = await s.phone();
    const res = await phone.send();
    assert.equal(res.status, 503);
    assert.equal(res.get('retry-after'), '45');
    assert.equal(log.lines.filter((l) => l.level === 40).length, 1);
    assert.equal(s.mid.stats.backendFailures, 2);
  });

  it('with no candidate at all the device gets 503 too', async () => {
    const s = await softswitch({ backends: [], mode: 'mirror', localAuth: false });
    const phone = await s.phone();
    const res = await phone.send();
    assert.equal(res.status, 503);
    assert.ok(res.has('retry-after'));
  });

  it('pickerFromBalancer asks the balancer for the backend set with the AoR as sticky key and reports back its own choices', () => {
    const choice: BackendChoice = { id: 7, set: 'freeswitch', uri: 'sip:10.0.0.5:5060' };
    const calls: string[] = [];
    const balancer: Pick<BalancerApi, 'candidates' | 'markFailure' | 'markSuccess'> = {
      candidates: (set, key) => {
        calls.push(`candidates ${set} ${key}`);
        return [choice];
      },
      markFailure: (b, reason) => calls.push(`failure ${b.id} ${reason}`),
      markSuccess: (b) => calls.push(`success ${b.id}`),
    };
    const picker = pickerFromBalancer(balancer, 'freeswitch');
    const [first] = picker.candidates(AOR);
    picker.markFailure!(first!, 'timeout');
    picker.markSuccess!(first!);
    assert.deepEqual(calls, [`candidates freeswitch ${AOR}`, 'failure 7 timeout', 'success 7']);
  });
});

describe('mid-registrar, resolveIncoming for requests from the backend', () => {
  it('an INVITE to the Contact we registered at the backend reaches the device binding; other URIs are not ours', async () => {
    const [fs] = await backends(1);
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: false });
    const phone = await s.phone();
    assert.equal((await phone.register()).status, 200);
    const ours = contactUris(fs!.registers.at(-1)!)[0]!;

    const devices = s.mid.resolveIncoming(ruri(ours.toString()));
    assert.equal(devices?.length, 1);
    assert.equal(devices![0]!.contactUri, phone.contact.slice(1, -1));
    assert.equal(devices![0], s.locations.lookup(AOR)[0], 'the very binding the proxy routes user calls to');

    // A backend that dropped the parameter: our address and the user part still say who.
    assert.equal(s.mid.resolveIncoming(ruri(`sip:alice@${ours.host}:${ours.port}`))?.length, 1);
    assert.equal(s.mid.resolveIncoming(ruri(`sip:alice@${ours.host}:${ours.port};ctid=nosuchid`)), undefined);
    assert.equal(s.mid.resolveIncoming(ruri(`sip:carol@${ours.host}:${ours.port}`)), undefined);
    assert.equal(s.mid.resolveIncoming(ruri('sip:alice@203.0.113.9:5060')), undefined);
    assert.equal(s.mid.resolveIncoming(ruri('tel:+4930123456')), undefined);
  });

  for (const mode of ['mirror', 'contact-throttle', 'aor-throttle'] as const) {
    it(`${mode}: a ctid this process did not hand out (another worker took the REGISTER, or a restart) still leads to its device alone`, async () => {
      const [fs] = await backends(1, { challenge: false });
      const s = await softswitch({ backends: [fs!], mode, localAuth: true });
      const phones = [await s.phone(), await s.phone()];
      for (const p of phones) assert.equal((await p.register()).status, 200);
      const other = s.sibling({ backends: [fs!], mode, localAuth: true });
      const ours = fs!.registers.flatMap(contactUris);
      assert.ok(ours.length > 0);
      for (const uri of ours) {
        const mine = s.mid.resolveIncoming(uri);
        const theirs = other.resolveIncoming(uri);
        assert.ok(mine !== undefined && mine.length > 0, uri.toString());
        assert.deepEqual(theirs?.map((b) => b.contactUri), mine.map((b) => b.contactUri), `${uri} on the other worker`);
      }
      if (mode !== 'aor-throttle') {
        // One device each, not every device of alice: a backend's INVITE to one Contact rings one phone.
        assert.deepEqual(new Set(ours.map((u) => other.resolveIncoming(u)![0]!.contactUri)), new Set(phones.map((p) => p.contact.slice(1, -1))));
        for (const u of ours) assert.equal(other.resolveIncoming(u)!.length, 1);
      }
      assert.equal(other.resolveIncoming(ruri(`sip:alice@${ours[0]!.host}:${ours[0]!.port};ctid=nosuchid`)), undefined);
    });
  }

  it('the Contact parameter is named by contactIdParam', async () => {
    const [fs] = await backends(1);
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: false, contactIdParam: 'fsid' });
    const phone = await s.phone();
    await phone.register();
    const ours = contactUris(fs!.registers.at(-1)!)[0]!;
    assert.equal(ours.getParam('ctid'), undefined);
    assert.equal(typeof ours.getParam('fsid'), 'string');
    assert.equal(s.mid.resolveIncoming(ours)?.length, 1);
  });

  it('once the device de-registered, our Contact leads nowhere any more', async () => {
    const [fs] = await backends(1);
    const s = await softswitch({ backends: [fs!], mode: 'mirror', localAuth: false });
    const phone = await s.phone();
    await phone.register();
    const ours = contactUris(fs!.registers.at(-1)!)[0]!;
    await phone.register({ expires: 0 });
    assert.equal(s.mid.resolveIncoming(ours), undefined);
  });
});

describe('mid-registrar, contact-throttle mode', () => {
  it('forwards with outgoingExpires, answers the device\'s refreshes locally while the backend registration outlives them, and counts them', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'contact-throttle', localAuth: true, outgoingExpires: 3600 });
    const phone = await s.phone();
    const res = await phone.register({ expires: 300 });
    assert.equal(res.status, 200);
    assert.equal(expiresOf(res.getAll('contact'), phone.contact.slice(1, -1)), 300);
    assert.equal(fs!.registers.length, 1);
    assert.equal(expiresOf(fs!.registers[0]!.getAll('contact'), 'sip:alice@'), 3600);

    for (let i = 0; i < 3; i++) {
      s.clock.tick(250_000);
      const refresh = await phone.register({ expires: 300 });
      assert.equal(refresh.status, 200);
      assert.equal(expiresOf(refresh.getAll('contact'), phone.contact.slice(1, -1)), 300);
    }
    assert.equal(fs!.registers.length, 1, 'the refreshes never reached the backend');
    assert.equal(s.mid.stats.absorbed, 3);
    assert.equal(s.mid.stats.forwarded, 1);
    assert.equal(s.locations.lookup(AOR)[0]!.expiresAt, s.now() + 300_000);
  });

  it('a refresh that would outlive the backend registration is forwarded, and the device never gets longer than the backend has left', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 120 });
    const s = await softswitch({ backends: [fs!], mode: 'contact-throttle', localAuth: true, outgoingExpires: 3600 });
    const phone = await s.phone();
    const res = await phone.register({ expires: 300 });
    assert.equal(expiresOf(res.getAll('contact'), phone.contact.slice(1, -1)), 120, 'capped to the backend\'s 120 s');
    s.clock.tick(100_000);
    await phone.register({ expires: 300 });
    assert.equal(fs!.registers.length, 2);
    assert.equal(s.mid.stats.absorbed, 0);
  });

  it('when the device\'s binding expires without a refresh the softswitch de-REGISTERs its Contact at the backend', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'contact-throttle', localAuth: true, outgoingExpires: 3600 });
    const phone = await s.phone();
    await phone.register({ expires: 300 });
    const ours = contactUris(fs!.registers[0]!)[0]!;
    s.clock.tick(300_000);
    await until(() => fs!.registers.length === 2);
    const dereg = fs!.registers[1]!;
    assert.equal(dereg.get('expires'), '0');
    assert.equal(contactUris(dereg)[0]!.toString(), ours.toString());
    assert.equal(dereg.callId, fs!.registers[0]!.callId);
    assert.ok(dereg.cseq!.seq > fs!.registers[0]!.cseq!.seq);
    assert.equal(s.mid.stats.expiredAtBackend, 1);
    assert.equal(s.locations.lookup(AOR).length, 0);
    assert.deepEqual(s.mid.resolveIncoming(ours), undefined);
  });

  it('a device whose connection closed and whose binding the Registrar dropped is de-REGISTERed at the backend at once', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'contact-throttle', localAuth: true, outgoingExpires: 3600 });
    const phone = await s.phone();
    await phone.register({ expires: 300 });
    const binding = s.locations.lookup(AOR)[0]!;
    assert.equal(s.mid.onFlowClosed(binding.flow!), 0, 'a UDP binding survives its flow');
    // What registrar.onFlowClosed does to a WebSocket device's binding.
    s.locations.update(AOR, { remove: [binding] });
    assert.equal(s.mid.onFlowClosed(binding.flow!), 1);
    await until(() => fs!.registers.length === 2);
    assert.equal(fs!.registers[1]!.get('expires'), '0');
    assert.equal(s.mid.stats.expiredAtBackend, 1);
    s.clock.tick(300_000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(fs!.registers.length, 2, 'and not again when its expiry would have run out');
  });

  it('a device\'s de-REGISTER is forwarded as Expires 0, and a REGISTER after it is forwarded again (OpenSIPS #1804)', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'contact-throttle', localAuth: true, outgoingExpires: 3600 });
    const phone = await s.phone();
    await phone.register({ expires: 300 });
    const bye = await phone.register({ expires: 0 });
    assert.equal(bye.status, 200);
    assert.equal(fs!.registers.length, 2);
    assert.equal(expiresOf(fs!.registers[1]!.getAll('contact'), 'sip:alice@'), 0);
    assert.equal(s.locations.lookup(AOR).length, 0);
    const again = await phone.register({ expires: 300 });
    assert.equal(again.status, 200);
    assert.equal(fs!.registers.length, 3, 'not absorbed: the backend no longer has the registration');
    assert.equal(expiresOf(fs!.registers[2]!.getAll('contact'), 'sip:alice@'), 3600);
    assert.equal(s.mid.stats.absorbed, 0);
  });

  it('with the backend authenticating, a refresh carrying credentials is forwarded though the backend has time left (OpenSIPS #1156); one without is absorbed', async () => {
    const [fs] = await backends(1, { challenge: true, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'contact-throttle', localAuth: false, outgoingExpires: 3600 });
    const phone = await s.phone();
    const challenge = await phone.send({ expires: 300 });
    assert.equal(challenge.status, 401);
    const uri = 'sip:example.com';
    assert.equal((await phone.send({ expires: 300, authorization: [answer(challenge, ALICE, { uri, nc: 1 })] })).status, 200);
    assert.equal(fs!.registers.length, 2);

    // A phone that keeps sending its credentials with the next nonce-count on every refresh.
    const withCredentials = await phone.send({ expires: 300, authorization: [answer(challenge, ALICE, { uri, nc: 2 })] });
    assert.equal(withCredentials.status, 200);
    assert.equal(fs!.registers.length, 3, 'forwarded for the backend to check');
    assert.equal(fs!.registers[2]!.getAll('authorization').length, 1);

    const plain = await phone.send({ expires: 300 });
    assert.equal(plain.status, 200);
    assert.equal(fs!.registers.length, 3);
    assert.equal(s.mid.stats.absorbed, 1);
  });

  it('with the backend authenticating, a REGISTER from an unknown Call-ID is forwarded, not absorbed', async () => {
    const [fs] = await backends(1, { challenge: true, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'contact-throttle', localAuth: false, outgoingExpires: 3600 });
    const phone = await s.phone();
    await phone.register({ expires: 300 });
    const stranger = await phone.send({ expires: 300, callId: 'someone-else@attacker' });
    assert.equal(stranger.status, 401, 'the backend challenged it');
    assert.equal(s.mid.stats.absorbed, 0);
  });
});

describe('mid-registrar, aor-throttle mode', () => {
  it('registers one Contact per AoR at the backend, absorbs the second device, and resolves our Contact to every device', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'aor-throttle', localAuth: true, outgoingExpires: 3600 });
    const desk = await s.phone();
    const mobile = await s.phone();
    assert.equal((await desk.register({ expires: 300 })).status, 200);
    const res = await mobile.register({ expires: 300 });
    assert.equal(res.status, 200);
    assert.equal(res.getAll('contact').length, 2, 'the 200 lists both devices');
    assert.equal(fs!.registers.length, 1);
    assert.equal(contactUris(fs!.registers[0]!).length, 1);
    assert.equal(s.mid.stats.absorbed, 1);

    const ours = contactUris(fs!.registers[0]!)[0]!;
    const devices = s.mid.resolveIncoming(ours);
    assert.deepEqual(devices?.map((b) => b.contactUri).sort(), [desk.contact.slice(1, -1), mobile.contact.slice(1, -1)].sort());
  });

  it('a second device of the same AoR is authenticated, not waved through (OpenSIPS #3193)', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'aor-throttle', localAuth: true, outgoingExpires: 3600 });
    const desk = await s.phone();
    await desk.register({ expires: 300 });
    const intruder = await s.phone();
    const challenged = await intruder.send({ expires: 300 });
    assert.equal(challenged.status, 401);
    const wrong = await intruder.send({ expires: 300, authorization: [answer(challenged, ALICE, { uri: 'sip:example.com', password: 'guess' })] });
    assert.equal(wrong.status, 401);
    const otherUser = await intruder.register({ expires: 300, as: BOB });
    assert.equal(otherUser.status, 403);
    assert.equal(s.locations.lookup(AOR).length, 1, 'only the desk phone');
    assert.equal(s.mid.stats.absorbed, 0);
  });

  it('with the backend authenticating, a second device goes to the backend and must answer its challenge (OpenSIPS #3193)', async () => {
    const [fs] = await backends(1, { challenge: true, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'aor-throttle', localAuth: false, outgoingExpires: 3600 });
    const desk = await s.phone();
    await desk.register({ expires: 300 });
    const mobile = await s.phone();
    const challenged = await mobile.send({ expires: 300 });
    assert.equal(challenged.status, 401);
    assert.equal(s.locations.lookup(AOR).length, 1);
    const ok = await mobile.send({ expires: 300, authorization: [answer(challenged, ALICE, { uri: 'sip:example.com' })] });
    assert.equal(ok.status, 200);
    assert.equal(s.locations.lookup(AOR).length, 2);
    const ctids = new Set(fs!.registers.map((r) => String(contactUris(r)[0]!.getParam('ctid'))));
    assert.equal(ctids.size, 1, 'still one Contact for the AoR at the backend');
  });

  it('de-REGISTERs at the backend only when the AoR\'s last device goes', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'aor-throttle', localAuth: true, outgoingExpires: 3600 });
    const desk = await s.phone();
    const mobile = await s.phone();
    await desk.register({ expires: 300 });
    await mobile.register({ expires: 300 });
    assert.equal((await desk.register({ expires: 0 })).status, 200);
    assert.equal(fs!.registers.length, 1, 'the mobile is still there: absorbed');
    assert.equal(s.locations.lookup(AOR).length, 1);
    assert.equal((await mobile.register({ expires: 0 })).status, 200);
    assert.equal(fs!.registers.length, 2);
    assert.equal(expiresOf(fs!.registers[1]!.getAll('contact'), 'sip:alice@'), 0);
    assert.equal(s.locations.lookup(AOR).length, 0);
  });

  it('when the last device\'s binding expires the AoR\'s Contact is de-REGISTERed, not before', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'aor-throttle', localAuth: true, outgoingExpires: 3600 });
    const desk = await s.phone();
    const mobile = await s.phone();
    await desk.register({ expires: 300 });
    s.clock.tick(100_000);
    await mobile.register({ expires: 300 });
    s.clock.tick(200_000);
    assert.equal(s.locations.lookup(AOR).length, 1);
    assert.equal(s.mid.stats.expiredAtBackend, 0);
    s.clock.tick(100_000);
    await until(() => fs!.registers.length === 2);
    assert.equal(fs!.registers[1]!.get('expires'), '0');
    assert.equal(s.mid.stats.expiredAtBackend, 1);
  });
});

describe('mid-registrar lifecycle', () => {
  it('stop() clears the expiry timers and de-registers nothing', async () => {
    const [fs] = await backends(1, { challenge: false, maxExpires: 3600 });
    const s = await softswitch({ backends: [fs!], mode: 'contact-throttle', localAuth: true, outgoingExpires: 3600 });
    const phone = await s.phone();
    await phone.register({ expires: 300 });
    await s.mid.stop();
    s.clock.tick(600_000);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fs!.registers.length, 1);
    assert.equal(s.mid.stats.expiredAtBackend, 0);
  });

  it('refuses the local mode and other methods', async () => {
    await assert.rejects(Softswitch.start({ backends: [], mode: 'local' }), TypeError);
    const s = await softswitch({ backends: [], mode: 'mirror', localAuth: false });
    const phone = await s.phone();
    const invite = phone.request();
    invite.method = 'INVITE';
    await assert.rejects(s.mid.handle(invite, {} as never), TypeError);
  });
});
