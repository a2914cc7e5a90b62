import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseNameAddrs } from '../../../src/sip/index.js';
import { silentLogger } from '../../../src/log/index.js';
import type { Store } from '../../../platform/store/types.js';
import type { Flow, TransportProtocol } from '../../../src/transport/types.js';
import { LocationService } from '../../../registrar/index.js';
import type { Binding, LocationPersistence } from '../../../registrar/types.js';
import { LogCapture, MemoryPersistence, T0, TestClock, flow } from './helpers.js';

const AOR = 'sip:alice@example.com';

function binding(contact: string, o: Partial<Omit<Binding, 'contact'>> & { via?: Flow; now?: number } = {}): Binding {
  const na = parseNameAddrs(contact, 'contact', true)[0]!;
  const via = o.via ?? flow('udp');
  const now = o.now ?? T0;
  return {
    aor: o.aor ?? AOR,
    contact: na,
    contactUri: na.uri.toString(),
    expiresAt: o.expiresAt ?? now + 600_000,
    q: o.q ?? na.q,
    callId: o.callId ?? 'call-1',
    cseq: o.cseq ?? 1,
    flow: via,
    received: { protocol: via.protocol, address: via.remote.address, port: via.remote.port },
    path: o.path,
    instanceId: o.instanceId,
    regId: o.regId,
    userAgent: o.userAgent,
    updatedAt: o.updatedAt ?? now,
  };
}

function service(o: { persistence?: LocationPersistence; logger?: LogCapture } = {}) {
  const clock = new TestClock();
  const locations = new LocationService({ clock: clock.fn, logger: o.logger?.logger ?? silentLogger(), persistence: o.persistence });
  return { clock, locations };
}

describe('LocationService lookups', () => {
  it('lookup returns the unexpired bindings, highest q first, then the most recently updated', () => {
    const { locations, clock } = service();
    locations.update(AOR, {
      add: [
        binding('<sip:a@192.0.2.10>;q=0.2', { updatedAt: T0 }),
        binding('<sip:b@192.0.2.11>', { updatedAt: T0 + 1 }),
        binding('<sip:c@192.0.2.12>;q=0.7', { updatedAt: T0 + 2 }),
        binding('<sip:d@192.0.2.13>;q=0.7', { updatedAt: T0 + 3 }),
        binding('<sip:e@192.0.2.14>', { expiresAt: T0 + 1000 }),
      ],
    });
    clock.advance(1000);
    assert.deepEqual(locations.lookup(AOR).map((b) => b.contactUri), [
      'sip:b@192.0.2.11', 'sip:d@192.0.2.13', 'sip:c@192.0.2.12', 'sip:a@192.0.2.10',
    ]);
    assert.deepEqual(locations.lookup('sip:nobody@example.com'), []);
  });

  it('list gives every AoR\'s unexpired bindings and leaves out the expired ones not purged yet', () => {
    const { locations, clock } = service();
    locations.update(AOR, { add: [binding('<sip:a@192.0.2.10>'), binding('<sip:e@192.0.2.14>', { expiresAt: T0 + 1000 })] });
    locations.update('sip:bob@example.com', { add: [binding('<sip:b@192.0.2.11>', { aor: 'sip:bob@example.com' })] });
    clock.advance(1000);
    assert.deepEqual(locations.list().map((b) => `${b.aor} ${b.contactUri}`).sort(), [
      'sip:alice@example.com sip:a@192.0.2.10', 'sip:bob@example.com sip:b@192.0.2.11',
    ]);
  });

  it('lookupByContact finds a binding by a contact URI equal under RFC 3261 §19.1.4', () => {
    const { locations } = service();
    const b = binding('<sip:alice@PC33.example.com:5070;transport=tcp;ob>');
    locations.update(AOR, { add: [b] });
    assert.equal(locations.lookupByContact('sip:%61lice@pc33.example.com:5070;transport=TCP'), b);
    assert.equal(locations.lookupByContact('sip:alice@pc33.example.com:5070'), undefined, 'transport must match');
    assert.equal(locations.lookupByContact('sip:alice@pc33.example.com;transport=tcp'), undefined, 'port must match');
    assert.equal(locations.lookupByContact('not a uri'), undefined);
  });

  it('lookupByContact matches IPv6 contacts written differently', () => {
    const { locations } = service();
    const b = binding('<sip:alice@[2001:db8::1]:5060>');
    locations.update(AOR, { add: [b] });
    assert.equal(locations.lookupByContact('sip:alice@[2001:DB8:0:0:0:0:0:1]:5060'), b);
  });

  it('lookupByContact ignores expired bindings', () => {
    const { locations, clock } = service();
    locations.update(AOR, { add: [binding('<sip:alice@192.0.2.10>', { expiresAt: T0 + 5000 })] });
    clock.advance(5000);
    assert.equal(locations.lookupByContact('sip:alice@192.0.2.10'), undefined);
  });

  it('update removes the given bindings, adds the new ones and returns the AoR\'s bindings', () => {
    const { locations } = service();
    const a = binding('<sip:a@192.0.2.10>');
    const b = binding('<sip:b@192.0.2.11>');
    locations.update(AOR, { add: [a, b] });
    assert.equal(locations.count, 2);
    const after = locations.update(AOR, { remove: [a], add: [binding('<sip:c@192.0.2.12>')] });
    assert.deepEqual(after.map((x) => x.contactUri).sort(), ['sip:b@192.0.2.11', 'sip:c@192.0.2.12']);
    assert.equal(locations.count, 2);
    assert.equal(locations.lookupByContact('sip:a@192.0.2.10'), undefined);
  });

  it('update refuses a binding of another AoR with TypeError', () => {
    const { locations } = service();
    assert.throws(() => locations.update(AOR, { add: [binding('<sip:a@192.0.2.10>', { aor: 'sip:bob@example.com' })] }), TypeError);
  });
});

describe('LocationService flows and expiry', () => {
  for (const protocol of ['ws', 'wss'] as TransportProtocol[]) {
    it(`removeFlow drops the bindings registered over a closed ${protocol.toUpperCase()} connection`, () => {
      const { locations } = service();
      const ws = flow(protocol, 50000);
      locations.update(AOR, { add: [binding('<sip:x@a.invalid;transport=ws>', { via: ws }), binding('<sip:alice@192.0.2.10>')] });
      locations.update('sip:bob@example.com', { add: [binding('<sip:y@b.invalid;transport=ws>', { via: ws, aor: 'sip:bob@example.com' })] });
      assert.equal(locations.removeFlow(ws.id), 2);
      assert.deepEqual(locations.lookup(AOR).map((b) => b.contactUri), ['sip:alice@192.0.2.10']);
      assert.deepEqual(locations.lookup('sip:bob@example.com'), []);
      assert.equal(locations.count, 1);
    });
  }

  it('removeFlow keeps plain TCP and UDP bindings (they can be reached by a new connection)', () => {
    const { locations } = service();
    const tcp = flow('tcp', 40000);
    const udp = flow('udp', 5060);
    locations.update(AOR, { add: [binding('<sip:alice@192.0.2.10;transport=tcp>', { via: tcp }), binding('<sip:alice@192.0.2.11>', { via: udp })] });
    assert.equal(locations.removeFlow(tcp.id), 0);
    assert.equal(locations.removeFlow(udp.id), 0);
    assert.equal(locations.lookup(AOR).length, 2);
  });

  it('removeFlow drops RFC 5626 bindings (+sip.instance and reg-id) over a closed TCP or TLS flow', () => {
    const { locations } = service();
    const tls = flow('tls', 40000);
    locations.update(AOR, { add: [binding('<sip:alice@192.0.2.10;transport=tls>', { via: tls, instanceId: '<urn:uuid:1>', regId: 1 })] });
    assert.equal(locations.removeFlow(tls.id), 1);
  });

  it('purgeExpired drops expired bindings and keeps the others', () => {
    const { locations, clock } = service();
    locations.update(AOR, { add: [binding('<sip:a@192.0.2.10>', { expiresAt: T0 + 60_000 }), binding('<sip:b@192.0.2.11>', { expiresAt: T0 + 120_000 })] });
    clock.advance(60_000);
    assert.equal(locations.purgeExpired(), 1);
    assert.equal(locations.count, 1);
    clock.advance(60_000);
    assert.equal(locations.purgeExpired(), 1);
    assert.equal(locations.count, 0);
    assert.equal(locations.purgeExpired(), 0);
  });
});

describe('LocationService persistence', () => {
  it('the store\'s location repository fits LocationPersistence as it is', () => {
    // A compile-time check: this file does not build if the two drift apart.
    const adapt = (store: Store): LocationPersistence => store.locations;
    assert.equal(typeof adapt, 'function');
  });

  it('writes the newest state of each changed contact, and a removed AoR with one call', async () => {
    const persistence = new MemoryPersistence();
    const { locations } = service({ persistence });
    const a = binding('<sip:a@192.0.2.10>;q=0.5', { path: ['<sip:edge.example.com;lr>'], userAgent: 'UA/1' });
    const b = binding('<sip:b@[2001:db8::1]>', { via: flow('udp', 5062, '2001:db8::1') });
    locations.update(AOR, { add: [a, b] });
    locations.update(AOR, { remove: [a] });
    await locations.flush();
    // a was added and removed before the write: only its removal is written (a row may predate this process).
    assert.deepEqual(persistence.calls, [`remove ${AOR} sip:a@192.0.2.10`, `upsert ${AOR} sip:b@[2001:db8::1]`]);
    const row = persistence.rows.get(`${AOR} sip:b@[2001:db8::1]`)!;
    assert.equal(row.received, 'udp:[2001:db8::1]:5062');
    assert.equal(row.flowId, b.flow!.id);
    locations.update(AOR, { remove: locations.lookup(AOR) });
    await locations.flush();
    assert.equal(persistence.calls.at(-1), `removeAor ${AOR}`);
    assert.equal(persistence.rows.size, 0);
  });

  it('a refresh of the same contact is one upsert, not a remove and an upsert', async () => {
    const persistence = new MemoryPersistence();
    const { locations } = service({ persistence });
    const a = binding('<sip:a@192.0.2.10>');
    locations.update(AOR, { add: [a] });
    locations.update(AOR, { remove: [a], add: [binding('<sip:a@192.0.2.10>', { cseq: 2 })] });
    await locations.flush();
    assert.deepEqual(persistence.calls, [`upsert ${AOR} sip:a@192.0.2.10`]);
    assert.equal(persistence.rows.get(`${AOR} sip:a@192.0.2.10`)!.cseq, 2);
  });

  it('changes made while a write is in flight are coalesced into one batch, upsertMany when the persistence has it', async () => {
    const persistence = new MemoryPersistence();
    const batches: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: LocationPersistence = {
      upsert: (row) => persistence.upsert(row),
      upsertMany: async (rows) => {
        batches.push(rows.length);
        if (batches.length === 1) await gate;
        for (const row of rows) await persistence.upsert(row);
      },
      remove: (aor, contact) => persistence.remove(aor, contact),
      removeAor: (aor) => persistence.removeAor(aor),
      listAll: () => persistence.listAll(),
    };
    const { locations } = service({ persistence: slow });
    locations.update(AOR, { add: [binding('<sip:a@192.0.2.10>')] });
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 50; i++) locations.update(`sip:u${i}@example.com`, { add: [binding(`<sip:u${i}@192.0.2.11>`, { aor: `sip:u${i}@example.com` })] });
    locations.update(AOR, { remove: locations.lookup(AOR), add: [binding('<sip:a@192.0.2.10>', { cseq: 9 })] });
    release();
    await locations.flush();
    assert.deepEqual(batches, [1, 51]);
    assert.equal(persistence.rows.size, 51);
    assert.equal(persistence.rows.get(`${AOR} sip:a@192.0.2.10`)!.cseq, 9);
  });

  it('a failing write is logged and does not affect the bindings in memory', async () => {
    const persistence = new MemoryPersistence();
    const log = new LogCapture();
    const { locations } = service({ persistence, logger: log });
    persistence.failNext = true;
    locations.update(AOR, { add: [binding('<sip:a@192.0.2.10>')] });
    await locations.flush();
    assert.equal(locations.lookup(AOR).length, 1);
    assert.ok(log.lines.some((l) => l['msg'] === 'location persistence failed' && l['level'] === 40));
  });

  it('start loads the persisted bindings that are unexpired and not over a WebSocket', async () => {
    const persistence = new MemoryPersistence([
      {
        aor: AOR, contact: 'sip:alice@192.0.2.10;transport=tcp', callId: 'c', cseq: 7, expiresAt: T0 + 60_000, q: 0.5,
        path: '<sip:edge1.example.com;lr>, <sip:edge2.example.com;lr>', received: 'tcp:192.0.2.10:40000',
        instanceId: '<urn:uuid:abc>', regId: 2, flowId: 'tcp:old', userAgent: 'Phone/1', updatedAt: T0 - 1000,
      },
      { aor: AOR, contact: 'sip:x@a.invalid;transport=ws', callId: 'w', cseq: 1, expiresAt: T0 + 60_000, received: 'wss:[2001:db8::2]:50000' },
      { aor: AOR, contact: 'sip:alice@192.0.2.11', callId: 'old', cseq: 1, expiresAt: T0 - 1, received: 'udp:192.0.2.11:5060' },
      { aor: AOR, contact: 'sip:broken@192.0.2.12', callId: 'b', cseq: 1, expiresAt: T0 + 60_000, received: 'carrier-pigeon' },
    ]);
    const { locations } = service({ persistence });
    await locations.start();
    try {
      const bindings = locations.lookup(AOR);
      assert.equal(bindings.length, 1);
      const b = bindings[0]!;
      assert.equal(b.contactUri, 'sip:alice@192.0.2.10;transport=tcp');
      assert.equal(b.contact.toString(), '<sip:alice@192.0.2.10;transport=tcp>;q=0.5;+sip.instance="<urn:uuid:abc>";reg-id=2');
      assert.deepEqual(b.path, ['<sip:edge1.example.com;lr>', '<sip:edge2.example.com;lr>']);
      assert.deepEqual(b.received, { protocol: 'tcp', address: '192.0.2.10', port: 40000 });
      assert.equal(b.flow, undefined);
      assert.equal(b.regId, 2);
      assert.equal(b.cseq, 7);
      assert.equal(locations.lookupByContact('sip:alice@192.0.2.10;transport=tcp'), b);
    } finally {
      await locations.stop();
    }
  });
});
