import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RoutingData, type BackendRecord, type RouteRecord } from '../../../balancer/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { MemoryRoutingRepository } from './helpers.js';

function route(id: number, pattern: string, replace: string, set: string, priority = 0): RouteRecord {
  return { id, pattern, replace, set, priority, description: '' };
}

function backend(id: number, uri: string, enabled = true): BackendRecord {
  return { id, set: 'fs', uri, weight: 1, enabled, createdAt: 0 };
}

const NONE = { routes: [], dids: [], trusted: [], backends: [] };

describe('RoutingData', () => {
  describe('dialplan', () => {
    it('rewrites a national number to E.164: 0(\\d{9,10}) with +49$1', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, routes: [route(1, '0(\\d{9,10})', '+49$1', 'pstn')] });
      const m = data.matchRoute('0301234567');
      assert.deepEqual([m?.set, m?.number], ['pstn', '+49301234567']);
      assert.equal(data.matchRoute('03012345678')?.number, '+493012345678');
    });

    it('the pattern must match the whole number, not a part of it', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, routes: [route(1, '0(\\d{9,10})', '+49$1', 'pstn'), route(2, '110|112', '', 'emergency')] });
      assert.equal(data.matchRoute('030123'), undefined);
      assert.equal(data.matchRoute('x0301234567'), undefined);
      assert.equal(data.matchRoute('03012345678901'), undefined);
      // The alternation is anchored as a whole: "1120" matches neither branch.
      assert.equal(data.matchRoute('1120'), undefined);
      assert.equal(data.matchRoute('112')?.set, 'emergency');
    });

    it('an empty replace keeps the number as dialled; $& and $$ work as in String.replace', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, routes: [route(1, '\\+\\d+', '', 'pstn'), route(2, '9(\\d+)', 'sip-$&-$$-$1', 'odd')] });
      assert.equal(data.matchRoute('+4930123')?.number, '+4930123');
      assert.equal(data.matchRoute('9123')?.number, 'sip-9123-$-123');
    });

    it('the first route by priority (then id) wins when several match', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, routes: [route(3, '\\+49.*', '', 'de', 10), route(1, '\\+.*', '', 'any', 20), route(2, '\\+4930.*', '', 'berlin', 10)] });
      assert.deepEqual([data.matchRoute('+4930123')?.route.id, data.matchRoute('+4930123')?.set], [2, 'berlin']);
      assert.equal(data.matchRoute('+4940123')?.set, 'de');
      assert.equal(data.matchRoute('+33123')?.set, 'any');
    });

    it('a pattern that does not compile (written around the repository) is skipped, the others work', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, routes: [route(1, '(', '', 'bad'), route(2, '\\d+', '', 'good')] });
      assert.equal(data.matchRoute('123')?.set, 'good');
    });
  });

  describe('DIDs', () => {
    it('finds a DID as given and with or without its leading +', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, dids: [{ number: '+4930123456', username: 'alice', domain: 'example.com' }, { number: '4940999', username: 'bob', domain: 'example.com' }] });
      assert.equal(data.did('+4930123456')?.username, 'alice');
      assert.equal(data.did('4930123456')?.username, 'alice');
      assert.equal(data.did('4940999')?.username, 'bob');
      assert.equal(data.did('+4940999')?.username, 'bob');
      assert.equal(data.did('+49301234567'), undefined);
      assert.equal(data.did(''), undefined);
    });

    it('an exact entry wins over one that differs only by the +', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, dids: [{ number: '+4930', username: 'plus', domain: 'example.com' }, { number: '4930', username: 'bare', domain: 'example.com' }] });
      assert.equal(data.did('+4930')?.username, 'plus');
      assert.equal(data.did('4930')?.username, 'bare');
    });
  });

  describe('trusted sources', () => {
    it('trusts addresses inside an IPv4 CIDR, a single IPv4 address, and nothing else', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, trusted: [{ id: 1, cidr: '192.0.2.0/24', description: '' }, { id: 2, cidr: '198.51.100.7', description: '' }] });
      assert.equal(data.isTrusted('192.0.2.1'), true);
      assert.equal(data.isTrusted('192.0.2.255'), true);
      assert.equal(data.isTrusted('192.0.3.1'), false);
      assert.equal(data.isTrusted('198.51.100.7'), true);
      assert.equal(data.isTrusted('198.51.100.8'), false);
      assert.equal(data.isTrusted('not an address'), false);
    });

    it('answers for the tables now loaded: a source trusted before a reload is not after it, and the other way round', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, trusted: [{ id: 1, cidr: '192.0.2.0/24', description: '' }] });
      assert.equal(data.isTrusted('192.0.2.1'), true);
      assert.equal(data.isTrusted('203.0.113.5'), false);
      await data.load({ ...NONE, trusted: [{ id: 2, cidr: '203.0.113.5', description: '' }] });
      assert.equal(data.isTrusted('192.0.2.1'), false);
      assert.equal(data.isTrusted('203.0.113.5'), true);
    });

    it('trusts IPv6 blocks and addresses, bracketed or not, and IPv4-mapped IPv6 peers as their IPv4 address', async () => {
      const data = new RoutingData({ logger: silentLogger() });
      await data.load({ ...NONE, trusted: [{ id: 1, cidr: '2001:db8:1::/48', description: '' }, { id: 2, cidr: '2001:db8::7', description: '' }, { id: 3, cidr: '10.0.0.0/8', description: '' }] });
      assert.equal(data.isTrusted('2001:db8:1:ffff::1'), true);
      assert.equal(data.isTrusted('[2001:db8:1::5]'), true);
      assert.equal(data.isTrusted('2001:db8:2::1'), false);
      assert.equal(data.isTrusted('2001:DB8:0::7'), true);
      assert.equal(data.isTrusted('2001:db8::8'), false);
      assert.equal(data.isTrusted('::ffff:10.1.2.3'), true);
      assert.equal(data.isTrusted('::ffff:11.1.2.3'), false);
    });

    it('trusts the IP address of every backend URI (IPv4, IPv6, maddr, disabled ones too) and resolved backend names', async () => {
      const looked: string[] = [];
      const data = new RoutingData({
        logger: silentLogger(),
        lookup: async (host) => {
          looked.push(host);
          if (host === 'fs1.example.com') return ['203.0.113.10', '2001:db8:f5::1'];
          throw new Error('ENOTFOUND');
        },
      });
      await data.load({
        ...NONE,
        backends: [
          backend(1, 'sip:10.0.0.5:5060;transport=udp'),
          backend(2, 'sips:[2001:db8::5]:5061', false),
          backend(3, 'sip:fs1.example.com'),
          backend(4, 'sip:gone.example.com'),
          backend(5, 'sip:trunk.example.net;maddr=198.51.100.99'),
          backend(6, 'sip:fs1.example.com:5080'),
        ],
      });
      for (const a of ['10.0.0.5', '2001:db8::5', '203.0.113.10', '2001:db8:f5::1', '198.51.100.99']) assert.equal(data.isTrusted(a), true, a);
      assert.equal(data.isTrusted('10.0.0.6'), false);
      // One lookup per name, however many backends carry it; a failure only skips that name.
      assert.deepEqual(looked.sort(), ['fs1.example.com', 'gone.example.com']);
    });

    it('reload() reads the repository and replaces the old tables whole', async () => {
      const repo = new MemoryRoutingRepository();
      const data = new RoutingData({ logger: silentLogger(), repository: repo });
      await repo.addTrusted({ cidr: '192.0.2.0/24', description: '' });
      await repo.addDid({ number: '+4930', username: 'alice', domain: 'example.com' });
      await data.reload();
      assert.equal(data.isTrusted('192.0.2.5'), true);
      repo.trusted = [];
      repo.dids = [];
      await repo.addBackend({ set: 'fs', uri: 'sip:10.0.0.9' });
      await data.reload();
      assert.equal(data.isTrusted('192.0.2.5'), false);
      assert.equal(data.isTrusted('10.0.0.9'), true);
      assert.equal(data.did('+4930'), undefined);
    });
  });
});
