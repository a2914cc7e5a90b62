/**
 * The RTCIceServer list (turn/ice-servers.ts): STUN URLs in an entry without credentials, TURN URLs with
 * them; the first server a weighted random pick (checked over many picks), the rest in order; the servers
 * of the asked region first.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type IceServerConfig, iceServers } from '../../../turn/ice-servers.js';
import { seeded } from '../../helpers/seeded-random.js';

const CRED = { username: '1796630400:alice@example.com', credential: 'c2VjcmV0LWhtYWM=' };


const server = (name: string, weight = 1, region?: string): IceServerConfig => ({
  urls: [`stun:${name}.example.com:3478`, `turn:${name}.example.com:3478?transport=udp`, `turns:${name}.example.com:5349?transport=tcp`],
  weight,
  region,
});

const hostOf = (url: string) => url.replace(/^[a-z]+:/, '').split('.')[0]!;

describe('iceServers: the RTCIceServer list', () => {
  it('puts stun: and stuns: URLs in an entry without username and credential, turn: and turns: URLs in one with them', () => {
    const list = iceServers([{ urls: ['stun:a.example.com', 'stuns:a.example.com:5349', 'turn:a.example.com?transport=tcp', 'turns:a.example.com:5349'] }], CRED);
    assert.deepEqual(list, [
      { urls: ['stun:a.example.com', 'stuns:a.example.com:5349'] },
      { urls: ['turn:a.example.com?transport=tcp', 'turns:a.example.com:5349'], username: CRED.username, credential: CRED.credential },
    ]);
    assert.ok(!('username' in list[0]!) && !('credential' in list[0]!), 'no credential keys at all on a STUN entry');
  });

  it('lists a server with only TURN URLs once, with credentials, and one with only STUN URLs once, without', () => {
    const list = iceServers([{ urls: ['turn:t.example.com'] }, { urls: ['stun:s.example.com'] }], CRED, { random: () => 0 });
    assert.deepEqual(list, [
      { urls: ['turn:t.example.com'], username: CRED.username, credential: CRED.credential },
      { urls: ['stun:s.example.com'] },
    ]);
  });

  it('picks the first server by weight over many picks (weights 1, 3, 1: the 3 first 60% of the time) and keeps the others after it in their order', () => {
    const random = seeded(17);
    const servers = [server('one', 1), server('three', 3), server('zero', 1)];
    const firsts = new Map<string, number>();
    const N = 8000;
    for (let i = 0; i < N; i++) {
      const list = iceServers(servers, CRED, { random });
      assert.equal(list.length, 6, 'two entries per server, every server listed');
      const order = list.filter((_, j) => j % 2 === 0).map((e) => hostOf(e.urls[0]!));
      const first = order[0]!;
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
      assert.deepEqual(order.slice(1), ['one', 'three', 'zero'].filter((n) => n !== first), 'the rest in configured order');
    }
    const share = (n: string) => (firsts.get(n) ?? 0) / N;
    assert.ok(Math.abs(share('three') - 0.6) < 0.03, `weight 3 of 5 first ${share('three')}`);
    assert.ok(Math.abs(share('one') - 0.2) < 0.03, `weight 1 of 5 first ${share('one')}`);
    assert.ok(Math.abs(share('zero') - 0.2) < 0.03, `weight 1 of 5 first ${share('zero')}`);
  });

  it('lists the servers of the asked region first, then the others; an unknown region changes nothing but the pick', () => {
    const servers = [server('us1', 5, 'us'), server('eu1', 1, 'eu'), server('eu2', 1, 'eu'), server('any', 1)];
    for (const r of [0, 0.49, 0.51, 0.99]) {
      const list = iceServers(servers, CRED, { region: 'eu', random: () => r });
      const order = list.filter((_, j) => j % 2 === 0).map((e) => hostOf(e.urls[0]!));
      assert.deepEqual(new Set(order.slice(0, 2)), new Set(['eu1', 'eu2']), `eu first (random ${r})`);
      assert.deepEqual(new Set(order.slice(2)), new Set(['us1', 'any']));
    }
    const unknown = iceServers(servers, CRED, { region: 'ap', random: () => 0 }).filter((_, j) => j % 2 === 0).map((e) => hostOf(e.urls[0]!));
    assert.deepEqual(unknown, ['us1', 'eu1', 'eu2', 'any']);
  });

  it('returns nothing for no servers', () => {
    assert.deepEqual(iceServers([], CRED), []);
  });
});
