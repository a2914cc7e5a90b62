import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SipResponse } from '../../../src/sip/index.js';
import { type Binding, isAsleep, isSameDevice } from '../../../registrar/index.js';
import { NameAddr, parseUri } from '../../../src/sip/index.js';
import { fromWire, toWire } from '../../../server/cluster/wire.js';
import { Harness, MemoryPersistence, T0, flow } from './helpers.js';

const AOR = 'sip:alice@example.com';
const VAPID = 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM';
const PUSH = { providers: ['apns', 'webpush'] as Array<'apns' | 'webpush'>, vapidPublicKey: VAPID };
const APNS = 'pn-provider=apns;pn-prid=00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0;pn-param=ABCD1234.com.example.voip';
const APNS_CONTACT = `<sip:alice@203.0.113.40:50000;transport=ws;${APNS}>`;
const WEBPUSH_CONTACT = '<sip:w1@b.invalid;transport=ws;pn-provider=webpush;pn-prid=subscription-1>';
const WS_CONTACT = '<sip:k3l2@df7jal23ls0d.invalid;transport=ws>';

function pushHarness(o: { persistence?: MemoryPersistence } = {}): Harness {
  return new Harness({ options: { push: PUSH }, persistence: o.persistence });
}

function featureCaps(response: SipResponse): string[] {
  return response.getAll('feature-caps');
}

describe('push bindings (RFC 8599): what a REGISTER with pn-* parameters makes', () => {
  it('a Contact with pn-provider and pn-prid of a served provider makes a binding carrying its push data', async () => {
    const h = pushHarness();
    const response = await h.registerAuthenticated({ via: flow('wss', 50000, '203.0.113.40'), contacts: [APNS_CONTACT] });
    assert.equal(response.status, 200);
    const [b] = h.registrar.lookup(AOR);
    assert.deepEqual(b?.push, {
      provider: 'apns',
      prid: '00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0',
      param: 'ABCD1234.com.example.voip',
      purr: undefined,
    });
    assert.equal(isAsleep(b!), false);
  });

  it('the 200 carries Feature-Caps with the provider, without +sip.vapid for APNs, and promises no refresh push (+sip.pnsreg)', async () => {
    const h = pushHarness();
    const response = await h.registerAuthenticated({ via: flow('wss'), contacts: [APNS_CONTACT] });
    assert.deepEqual(featureCaps(response), ['*;+sip.pns="apns"']);
  });

  it('a Web Push binding\'s 200 carries the VAPID public key', async () => {
    const h = pushHarness();
    const response = await h.registerAuthenticated({ via: flow('wss'), contacts: [WEBPUSH_CONTACT] });
    assert.deepEqual(featureCaps(response), [`*;+sip.pns="webpush";+sip.vapid="${VAPID}"`]);
  });

  it('a REGISTER without push parameters gets no Feature-Caps', async () => {
    const h = pushHarness();
    const response = await h.registerAuthenticated({ via: flow('wss'), contacts: [WS_CONTACT] });
    assert.equal(response.status, 200);
    assert.deepEqual(featureCaps(response), []);
    assert.equal(h.registrar.lookup(AOR)[0]?.push, undefined);
  });

  it('a provider we do not serve makes an ordinary binding, without Feature-Caps, that its connection closing ends', async () => {
    const h = pushHarness();
    const ws = flow('wss');
    const response = await h.registerAuthenticated({ via: ws, contacts: ['<sip:f@c.invalid;transport=ws;pn-provider=fcm;pn-prid=tok;pn-param=proj>'] });
    assert.equal(response.status, 200);
    assert.deepEqual(featureCaps(response), []);
    assert.equal(h.registrar.lookup(AOR)[0]?.push, undefined);
    assert.equal(h.registrar.onFlowClosed(ws), 1);
    assert.deepEqual(h.registrar.lookup(AOR), []);
  });

  it('without push configured, pn-* parameters are ordinary contact parameters', async () => {
    const h = new Harness();
    const response = await h.registerAuthenticated({ via: flow('wss'), contacts: [APNS_CONTACT] });
    assert.deepEqual(featureCaps(response), []);
    assert.equal(h.registrar.lookup(AOR)[0]?.push, undefined);
  });

  it('removing a push binding (expires 0) answers without Feature-Caps and the binding goes', async () => {
    const h = pushHarness();
    const ws = flow('wss');
    await h.registerAuthenticated({ via: ws, callId: 'p', contacts: [APNS_CONTACT] });
    const response = await h.registerAuthenticated({ via: ws, callId: 'p', cseq: 5, contacts: [`${APNS_CONTACT};expires=0`] });
    assert.equal(response.status, 200);
    assert.deepEqual(featureCaps(response), []);
    assert.deepEqual(h.registrar.lookup(AOR), []);
  });
});

describe('push bindings outlive their flow, asleep, until they expire', () => {
  it('when its WebSocket closes a push binding stays without a flow and is asleep; a plain one on it goes', async () => {
    const h = pushHarness();
    const ws = flow('wss', 50000, '203.0.113.40');
    await h.registerAuthenticated({ via: ws, callId: 'push', contacts: [APNS_CONTACT] });
    await h.registerAuthenticated({ via: ws, callId: 'plain', contacts: [WS_CONTACT] });
    assert.equal(h.registrar.lookup(AOR).length, 2);
    h.stack.onFlowClosed(ws, 'closed');
    const left = h.registrar.lookup(AOR);
    assert.equal(left.length, 1);
    assert.equal(left[0]!.push?.provider, 'apns');
    assert.equal(left[0]!.flow, undefined);
    assert.equal(isAsleep(left[0]!), true);
  });

  it('an asleep push binding expires like any other', async () => {
    const h = pushHarness();
    const ws = flow('wss');
    await h.registerAuthenticated({ via: ws, contacts: [APNS_CONTACT], expires: 300 });
    h.registrar.onFlowClosed(ws);
    h.clock.advance(299_000);
    assert.equal(h.registrar.lookup(AOR).length, 1);
    h.clock.advance(1_000);
    assert.deepEqual(h.registrar.lookup(AOR), []);
    assert.equal(h.registrar.locations.purgeExpired(), 1);
  });

  it('the persisted row of a binding put to sleep loses its flow id and keeps its push parameters', async () => {
    const persistence = new MemoryPersistence();
    const h = pushHarness({ persistence });
    await h.registrar.start();
    const ws = flow('wss', 50000, '203.0.113.40');
    await h.registerAuthenticated({ via: ws, contacts: [APNS_CONTACT] });
    await h.registrar.locations.flush();
    const contact = h.registrar.lookup(AOR)[0]!.contactUri;
    assert.equal(persistence.rows.get(`${AOR} ${contact}`)?.flowId, ws.id);
    h.registrar.onFlowClosed(ws);
    await h.registrar.stop();
    const row = persistence.rows.get(`${AOR} ${contact}`);
    assert.ok(row);
    assert.equal(row.flowId, undefined);
    assert.match(row.contact, /pn-prid=00fc13adff78/);
  });

  it('a push binding registered over UDP is asleep although it has a flow (RFC 8599 §5.6)', async () => {
    const h = pushHarness();
    await h.registerAuthenticated({ via: flow('udp'), contacts: [`<sip:alice@198.51.100.7:5060;${APNS}>`] });
    const [b] = h.registrar.lookup(AOR);
    assert.equal(b?.flow?.protocol, 'udp');
    assert.equal(isAsleep(b!), true);
  });

  it('a binding without push data is never asleep, with or without a flow', async () => {
    const h = pushHarness();
    await h.registerAuthenticated({ via: flow('udp'), contacts: ['<sip:alice@198.51.100.7>'] });
    const [b] = h.registrar.lookup(AOR);
    assert.equal(isAsleep(b!), false);
    assert.equal(isAsleep({ ...b!, flow: undefined }), false);
  });
});

describe('a woken push device re-registering on a new connection replaces its binding', () => {
  it('matched by +sip.instance and reg-id: one binding, on the new flow, awake', async () => {
    const h = pushHarness();
    const inst = ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1';
    const old = flow('wss', 50000, '203.0.113.40');
    await h.registerAuthenticated({ via: old, callId: 'c1', contacts: [`<sip:one@a.invalid;transport=ws;${APNS}>${inst}`] });
    h.registrar.onFlowClosed(old);
    const fresh = flow('wss', 50001, '203.0.113.41');
    await h.registerAuthenticated({ via: fresh, callId: 'c2', contacts: [`<sip:two@b.invalid;transport=ws;${APNS}>${inst}`] });
    const bindings = h.registrar.lookup(AOR);
    assert.equal(bindings.length, 1);
    assert.match(bindings[0]!.contactUri, /^sip:two@b\.invalid/);
    assert.equal(bindings[0]!.flow?.id, fresh.id);
    assert.equal(isAsleep(bindings[0]!), false);
  });

  it('matched by pn-provider and pn-prid when the contact URI and Call-ID changed', async () => {
    const h = pushHarness();
    const old = flow('wss', 50000, '203.0.113.40');
    await h.registerAuthenticated({ via: old, callId: 'c1', contacts: [`<sip:one@a.invalid;transport=ws;${APNS}>`] });
    h.registrar.onFlowClosed(old);
    const fresh = flow('wss', 50001, '203.0.113.41');
    await h.registerAuthenticated({ via: fresh, callId: 'c2', contacts: [`<sip:two@b.invalid;transport=ws;${APNS}>`] });
    const bindings = h.registrar.lookup(AOR);
    assert.equal(bindings.length, 1);
    assert.match(bindings[0]!.contactUri, /^sip:two@b\.invalid/);
    assert.equal(bindings[0]!.flow?.id, fresh.id);
  });

  it('another device of the same user (another pn-prid) keeps its own binding', async () => {
    const h = pushHarness();
    await h.registerAuthenticated({ via: flow('wss'), callId: 'c1', contacts: [`<sip:one@a.invalid;transport=ws;${APNS}>`] });
    const other = '<sip:two@b.invalid;transport=ws;pn-provider=apns;pn-prid=ffff;pn-param=ABCD1234.com.example.voip>';
    await h.registerAuthenticated({ via: flow('wss'), callId: 'c2', contacts: [other] });
    assert.equal(h.registrar.lookup(AOR).length, 2);
  });
});

describe('onBinding: the hook a held INVITE waits on', () => {
  it('is called once per binding added by a REGISTER, after its 200 was sent', async () => {
    const h = pushHarness();
    const seen: Array<{ binding: Binding; lastSent: number | undefined }> = [];
    h.registrar.onBinding((binding) => {
      const last = h.transport.sent.at(-1)?.message;
      seen.push({ binding, lastSent: last === undefined || last.isRequest ? undefined : (last as SipResponse).status });
    });
    const ws = flow('wss');
    await h.registerAuthenticated({ via: ws, contacts: [APNS_CONTACT] });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.lastSent, 200);
    assert.equal(seen[0]!.binding.flow?.id, ws.id);
    assert.equal(seen[0]!.binding.push?.provider, 'apns');
    assert.equal(h.registrar.lookup(AOR)[0], seen[0]!.binding);
  });

  it('is called for a refresh too, a UDP push device\'s included, but not for a challenge, a removal or a binding put to sleep', async () => {
    const h = pushHarness();
    const seen: Binding[] = [];
    h.registrar.onBinding((b) => seen.push(b));
    const udpContact = `<sip:alice@198.51.100.7:5060;${APNS}>`;
    await h.registerAuthenticated({ via: flow('udp'), callId: 'u', contacts: [udpContact] });
    await h.registerAuthenticated({ via: flow('udp'), callId: 'u', cseq: 3, contacts: [udpContact] });
    assert.equal(seen.length, 2, 'the first REGISTER\'s 401 announced nothing; the two 200s did');
    const ws = flow('wss');
    await h.registerAuthenticated({ via: ws, callId: 'w', contacts: [WEBPUSH_CONTACT] });
    assert.equal(seen.length, 3);
    h.registrar.onFlowClosed(ws);
    await h.registerAuthenticated({ via: flow('udp'), callId: 'u', cseq: 5, contacts: [udpContact], expires: 0 });
    assert.equal(seen.length, 3);
  });

  it('stops calling a listener that unsubscribed, and a throwing listener does not stop the others', async () => {
    const h = pushHarness();
    let calls = 0;
    const unsubscribe = h.registrar.onBinding(() => {
      calls++;
    });
    h.registrar.onBinding(() => {
      throw new Error('listener bug');
    });
    const response = await h.registerAuthenticated({ via: flow('wss'), callId: 'a', contacts: [APNS_CONTACT] });
    assert.equal(response.status, 200);
    unsubscribe();
    await h.registerAuthenticated({ via: flow('wss'), callId: 'b', contacts: [APNS_CONTACT] });
    assert.equal(calls, 1);
  });

  it('is called for a binding replicated from another worker (applyRemote), with its push data read from the contact', async () => {
    const origin = pushHarness();
    const ws = flow('wss', 50000, '203.0.113.40', 'wss:w1g0.203.0.113.40:50000#abc');
    await origin.registerAuthenticated({ via: ws, contacts: [APNS_CONTACT] });
    const sent = origin.registrar.lookup(AOR)[0]!;
    const here = pushHarness();
    const seen: Binding[] = [];
    here.registrar.onBinding((b) => seen.push(b));
    // What cluster:location carries: the wire form, which has the contact text but not the parsed push data.
    here.registrar.locations.applyRemote(AOR, [fromWire(structuredClone(toWire(sent)))], []);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.flow?.id, ws.id);
    assert.deepEqual(seen[0]!.push, sent.push);
    assert.equal(here.registrar.lookup(AOR)[0], seen[0]);
    here.registrar.locations.applyRemote(AOR, [], [sent.contactUri]);
    assert.equal(seen.length, 1);
    assert.deepEqual(here.registrar.lookup(AOR), []);
  });

  it('is not called for a replicated binding put to sleep, which replaces the awake copy on the other worker', async () => {
    const origin = pushHarness();
    const ws = flow('wss');
    await origin.registerAuthenticated({ via: ws, contacts: [APNS_CONTACT] });
    const here = pushHarness();
    here.registrar.locations.applyRemote(AOR, [fromWire(toWire(origin.registrar.lookup(AOR)[0]!))], []);
    const replicated: Array<{ added: readonly Binding[]; removed: readonly string[] }> = [];
    origin.registrar.locations.setReplication({ changed: (_aor, added, removed) => replicated.push({ added, removed }) });
    origin.registrar.onFlowClosed(ws);
    assert.equal(replicated.length, 1);
    assert.deepEqual(replicated[0]!.removed, []);
    const seen: Binding[] = [];
    here.registrar.onBinding((b) => seen.push(b));
    here.registrar.locations.applyRemote(AOR, replicated[0]!.added.map((b) => fromWire(toWire(b))), []);
    assert.deepEqual(seen, []);
    const [b] = here.registrar.lookup(AOR);
    assert.equal(b?.flow, undefined);
    assert.equal(isAsleep(b!), true);
  });
});

describe('push bindings across workers and restarts', () => {
  it('when the worker holding their connections ends, push bindings stay asleep and the others go (connectionsLost)', async () => {
    const origin = pushHarness();
    const ws = flow('wss', 50000, '203.0.113.40', 'wss:w1g0.203.0.113.40:50000#abc');
    await origin.registerAuthenticated({ via: ws, callId: 'push', contacts: [APNS_CONTACT] });
    await origin.registerAuthenticated({ via: ws, callId: 'plain', contacts: [WS_CONTACT] });
    const here = pushHarness();
    const wire = origin.registrar.lookup(AOR).map((b) => fromWire(toWire(b)));
    here.registrar.locations.applyRemote(AOR, wire, []);
    assert.equal(here.registrar.lookup(AOR).length, 2);
    here.registrar.locations.connectionsLost(AOR, new Set(wire.map((b) => b.contactUri)));
    const left = here.registrar.lookup(AOR);
    assert.equal(left.length, 1);
    assert.equal(left[0]!.push?.provider, 'apns');
    assert.equal(isAsleep(left[0]!), true);
  });

  it('a binding loaded from persistence keeps its push data and is asleep; a plain WebSocket binding is not loaded', async () => {
    const received = 'wss:203.0.113.40:50000';
    const row = (contact: string) => ({
      aor: AOR, contact, callId: 'c', cseq: 1, expiresAt: T0 + 600_000, received, flowId: 'wss:203.0.113.40:50000#old', updatedAt: T0,
    });
    const apnsUri = APNS_CONTACT.slice(1, -1);
    const persistence = new MemoryPersistence([row(apnsUri), row('sip:k3l2@df7jal23ls0d.invalid;transport=ws')]);
    const h = pushHarness({ persistence });
    await h.registrar.start();
    const loaded = h.registrar.lookup(AOR);
    assert.deepEqual(loaded.map((b) => b.contactUri), [apnsUri]);
    assert.equal(loaded[0]!.push?.prid, '00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0');
    assert.equal(loaded[0]!.flow, undefined);
    assert.equal(isAsleep(loaded[0]!), true);
    await h.registrar.stop();
  });
});

describe('isSameDevice: the refresh rule the push call server waits on for a woken device', () => {
  const device = (contact: string, over: Partial<Binding> = {}): Binding => ({
    aor: AOR, contact: new NameAddr(parseUri(contact)), contactUri: contact, expiresAt: T0 + 60_000, callId: 'c', cseq: 1,
    received: { protocol: 'wss', address: '127.0.0.1', port: 5000 }, updatedAt: T0, push: { provider: 'apns', prid: 'token-1' }, ...over,
  });

  it('the same instance and reg-id on a new contact is the same device; another instance with another token is not', () => {
    const before = device('sip:a@10.0.0.1;transport=ws', { instanceId: '<urn:uuid:1>', regId: 1 });
    assert.ok(isSameDevice(before, device('sip:b@10.0.0.2;transport=ws', { instanceId: '<urn:uuid:1>', regId: 1, push: { provider: 'apns', prid: 'token-2' } })));
    assert.ok(!isSameDevice(before, device('sip:c@10.0.0.3;transport=ws', { instanceId: '<urn:uuid:2>', regId: 1, push: { provider: 'apns', prid: 'token-3' } })));
  });

  it('without an instance: the same contact, or the same push token on a new contact (RFC 8599 §5.6)', () => {
    assert.ok(isSameDevice(device('sip:a@10.0.0.1'), device('sip:a@10.0.0.1', { push: undefined })));
    assert.ok(isSameDevice(device('sip:a@10.0.0.1'), device('sip:b@10.0.0.9')));
    assert.ok(!isSameDevice(device('sip:a@10.0.0.1'), device('sip:b@10.0.0.9', { push: { provider: 'apns', prid: 'token-2' } })));
  });

  it('never a binding of another AoR', () => {
    assert.ok(!isSameDevice(device('sip:a@10.0.0.1'), device('sip:a@10.0.0.1', { aor: 'sip:carol@example.com' })));
  });
});
