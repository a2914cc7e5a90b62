/**
 * The routing repository's part of the shared store suite (repository-suite.ts runs it on every target).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { SqlStore } from '../../../../platform/store/index.js';
import { rejectsWith } from './targets.js';


async function rejectsType(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof TypeError, `expected a TypeError, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

export function routingSuite(getStore: () => SqlStore): void {
  describe('routing: backend sets and backends', () => {
    it('addBackend stores the backend with weight 1, enabled, and creates its set as round-robin', async () => {
      const store = getStore();
      const before = Date.now();
      const b = await store.routing.addBackend({ set: 'freeswitch', uri: 'sip:10.0.0.5:5060;transport=udp' });
      assert.ok(Number.isInteger(b.id) && b.id > 0);
      assert.deepEqual({ ...b, createdAt: 0 }, { id: b.id, set: 'freeswitch', uri: 'sip:10.0.0.5:5060;transport=udp', weight: 1, enabled: true, createdAt: 0 });
      assert.ok(b.createdAt >= before && b.createdAt <= Date.now());
      assert.deepEqual(await store.routing.listSets(), [{ name: 'freeswitch', algorithm: 'round-robin' }]);
    });

    it('addBackend keeps a given weight and enabled flag; listBackends returns them by id', async () => {
      const store = getStore();
      const b2 = await store.routing.addBackend({ set: 'freeswitch', uri: 'sip:10.0.0.6', weight: 1000, enabled: false });
      const b3 = await store.routing.addBackend({ set: 'trunk-eu', uri: 'sips:[2001:db8::5]:5061', weight: 3 });
      const all = await store.routing.listBackends();
      assert.deepEqual(all.map((b) => [b.set, b.uri, b.weight, b.enabled]), [
        ['freeswitch', 'sip:10.0.0.5:5060;transport=udp', 1, true],
        ['freeswitch', 'sip:10.0.0.6', 1000, false],
        ['trunk-eu', 'sips:[2001:db8::5]:5061', 3, true],
      ]);
      assert.ok(b2.id < b3.id);
    });

    it('the same URI twice in one set is STORE_ERR_DUPLICATE; in another set it is a second backend', async () => {
      const store = getStore();
      await rejectsWith(store.routing.addBackend({ set: 'freeswitch', uri: 'sip:10.0.0.6' }), 'STORE_ERR_DUPLICATE', /sip:10\.0\.0\.6.*freeswitch/);
      const other = await store.routing.addBackend({ set: 'trunk-eu', uri: 'sip:10.0.0.6' });
      await store.routing.removeBackend(other.id);
    });

    it('putSet changes an algorithm and creates a new set; listSets is by name', async () => {
      const store = getStore();
      await store.routing.putSet({ name: 'freeswitch', algorithm: 'weighted' });
      await store.routing.putSet({ name: 'empty', algorithm: 'least-calls' });
      assert.deepEqual(await store.routing.listSets(), [
        { name: 'empty', algorithm: 'least-calls' },
        { name: 'freeswitch', algorithm: 'weighted' },
        { name: 'trunk-eu', algorithm: 'round-robin' },
      ]);
      // Adding a backend to an existing set leaves its algorithm alone.
      const b = await store.routing.addBackend({ set: 'freeswitch', uri: 'sip:10.0.0.7' });
      assert.equal((await store.routing.listSets()).find((s) => s.name === 'freeswitch')?.algorithm, 'weighted');
      await store.routing.removeBackend(b.id);
    });

    it('setBackendEnabled flips the flag (also when unchanged); an unknown id is STORE_ERR_NOT_FOUND', async () => {
      const store = getStore();
      const b = (await store.routing.listBackends()).find((x) => x.uri === 'sip:10.0.0.6')!;
      await store.routing.setBackendEnabled(b.id, true);
      await store.routing.setBackendEnabled(b.id, true);
      assert.equal((await store.routing.listBackends()).find((x) => x.id === b.id)?.enabled, true);
      await store.routing.setBackendEnabled(b.id, false);
      assert.equal((await store.routing.listBackends()).find((x) => x.id === b.id)?.enabled, false);
      await rejectsWith(store.routing.setBackendEnabled(999_999, true), 'STORE_ERR_NOT_FOUND', /999999/);
    });

    it('removeBackend deletes it; removing it again is STORE_ERR_NOT_FOUND', async () => {
      const store = getStore();
      const b = await store.routing.addBackend({ set: 'freeswitch', uri: 'sip:gone.example.com' });
      await store.routing.removeBackend(b.id);
      assert.equal((await store.routing.listBackends()).some((x) => x.id === b.id), false);
      await rejectsWith(store.routing.removeBackend(b.id), 'STORE_ERR_NOT_FOUND');
    });

    it('a URI that is not sip:/sips:, a weight outside 1–1000, a bad set name or algorithm is a TypeError', async () => {
      const store = getStore();
      await rejectsType(store.routing.addBackend({ set: 'freeswitch', uri: 'http://10.0.0.9' }), /not a sip: or sips: URI/);
      await rejectsType(store.routing.addBackend({ set: 'freeswitch', uri: 'sip:' }), /not a sip: or sips: URI/);
      await rejectsType(store.routing.addBackend({ set: 'freeswitch', uri: 'sip:10.0.0.9', weight: 0 }), /weight must be a whole number from 1 to 1000/);
      await rejectsType(store.routing.addBackend({ set: 'freeswitch', uri: 'sip:10.0.0.9', weight: 1001 }), /weight/);
      await rejectsType(store.routing.addBackend({ set: 'freeswitch', uri: 'sip:10.0.0.9', weight: 1.5 }), /weight/);
      await rejectsType(store.routing.addBackend({ set: 'bad set', uri: 'sip:10.0.0.9' }), /set "bad set"/);
      await rejectsType(store.routing.addBackend({ set: '', uri: 'sip:10.0.0.9' }), /set must be a non-empty string/);
      await rejectsType(store.routing.putSet({ name: 'freeswitch', algorithm: 'random' as never }), /algorithm must be one of round-robin, weighted, least-calls/);
      assert.equal((await store.routing.listBackends()).some((b) => b.uri === 'sip:10.0.0.9'), false);
    });
  });

  describe('routing: dialplan routes', () => {
    it('addRoute stores the route (and its set when new); listRoutes is by priority then id', async () => {
      const store = getStore();
      const a = await store.routing.addRoute({ pattern: '0(\\d{9,10})', replace: '+49$1', set: 'freeswitch', priority: 10, description: 'German national' });
      const b = await store.routing.addRoute({ pattern: '\\+.*', replace: '', set: 'pstn', priority: 20, description: '' });
      const c = await store.routing.addRoute({ pattern: '112|110', replace: '', set: 'emergency', priority: 0, description: 'emergency' });
      assert.deepEqual(a, { id: a.id, pattern: '0(\\d{9,10})', replace: '+49$1', set: 'freeswitch', priority: 10, description: 'German national' });
      assert.deepEqual((await store.routing.listRoutes()).map((r) => r.id), [c.id, a.id, b.id]);
      assert.ok((await store.routing.listSets()).some((s) => s.name === 'pstn' && s.algorithm === 'round-robin'));
      assert.ok(b.id > a.id);
    });

    it('a pattern that does not compile as a RegExp, or an empty one, is a TypeError', async () => {
      const store = getStore();
      await rejectsType(store.routing.addRoute({ pattern: '0(\\d+', replace: '', set: 'pstn', priority: 0, description: '' }), /pattern "0\(\\\\d\+" is not a regular expression/);
      await rejectsType(store.routing.addRoute({ pattern: '', replace: '', set: 'pstn', priority: 0, description: '' }), /pattern must be a non-empty string/);
      await rejectsType(store.routing.addRoute({ pattern: '1', replace: '', set: 'pstn', priority: 0.5, description: '' }), /priority/);
    });

    it('removeRoute deletes it; an unknown id is STORE_ERR_NOT_FOUND', async () => {
      const store = getStore();
      const r = await store.routing.addRoute({ pattern: '9.*', replace: '', set: 'pstn', priority: 5, description: 'temp' });
      await store.routing.removeRoute(r.id);
      assert.equal((await store.routing.listRoutes()).some((x) => x.id === r.id), false);
      await rejectsWith(store.routing.removeRoute(r.id), 'STORE_ERR_NOT_FOUND', /route/);
    });
  });

  describe('routing: DIDs', () => {
    it('addDid stores the number and the user (domain lower-cased); listDids is by number', async () => {
      const store = getStore();
      await store.routing.addDid({ number: '+4930123456', username: 'alice', domain: 'Example.COM' });
      await store.routing.addDid({ number: '4930999', username: 'Bob', domain: 'example.com' });
      assert.deepEqual(await store.routing.listDids(), [
        { number: '+4930123456', username: 'alice', domain: 'example.com' },
        { number: '4930999', username: 'Bob', domain: 'example.com' },
      ]);
    });

    it('a number twice is STORE_ERR_DUPLICATE; a number with other characters is a TypeError', async () => {
      const store = getStore();
      await rejectsWith(store.routing.addDid({ number: '+4930123456', username: 'carol', domain: 'example.com' }), 'STORE_ERR_DUPLICATE', /\+4930123456/);
      await rejectsType(store.routing.addDid({ number: '+49 30 1', username: 'carol', domain: 'example.com' }), /digits with an optional leading "\+"/);
      await rejectsType(store.routing.addDid({ number: '+4930', username: '', domain: 'example.com' }), /username/);
    });

    it('removeDid deletes it; an unknown number is STORE_ERR_NOT_FOUND', async () => {
      const store = getStore();
      await store.routing.removeDid('4930999');
      assert.deepEqual((await store.routing.listDids()).map((d) => d.number), ['+4930123456']);
      await rejectsWith(store.routing.removeDid('4930999'), 'STORE_ERR_NOT_FOUND', /4930999/);
    });
  });

  describe('routing: trusted sources', () => {
    it('addTrusted takes an IPv4 address, an IPv4 block, an IPv6 address (brackets too) and block', async () => {
      const store = getStore();
      const a = await store.routing.addTrusted({ cidr: '10.0.0.5', description: 'fs1' });
      await store.routing.addTrusted({ cidr: '192.0.2.0/24', description: '' });
      await store.routing.addTrusted({ cidr: '[2001:db8::7]', description: 'v6 host' });
      await store.routing.addTrusted({ cidr: '2001:db8:1::/48', description: '' });
      assert.deepEqual(a, { id: a.id, cidr: '10.0.0.5', description: 'fs1' });
      assert.deepEqual((await store.routing.listTrusted()).map((t) => t.cidr), ['10.0.0.5', '192.0.2.0/24', '2001:db8::7', '2001:db8:1::/48']);
    });

    it('the same CIDR twice is STORE_ERR_DUPLICATE; a name or a bad prefix is a TypeError', async () => {
      const store = getStore();
      await rejectsWith(store.routing.addTrusted({ cidr: '10.0.0.5', description: '' }), 'STORE_ERR_DUPLICATE', /10\.0\.0\.5/);
      await rejectsType(store.routing.addTrusted({ cidr: 'fs1.example.com', description: '' }), /not an IPv4\/IPv6 address or CIDR block/);
      await rejectsType(store.routing.addTrusted({ cidr: '10.0.0.0/33', description: '' }), /prefix length must be 0 to 32/);
      await rejectsType(store.routing.addTrusted({ cidr: '2001:db8::/129', description: '' }), /0 to 128/);
      await rejectsType(store.routing.addTrusted({ cidr: '10.0.0.0/', description: '' }), /prefix/);
    });

    it('removeTrusted deletes it; an unknown id is STORE_ERR_NOT_FOUND', async () => {
      const store = getStore();
      const t = (await store.routing.listTrusted()).find((x) => x.cidr === '192.0.2.0/24')!;
      await store.routing.removeTrusted(t.id);
      assert.equal((await store.routing.listTrusted()).some((x) => x.id === t.id), false);
      await rejectsWith(store.routing.removeTrusted(t.id), 'STORE_ERR_NOT_FOUND');
    });
  });
}
