import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CachedCredentialSource } from '../../../registrar/index.js';

describe('CachedCredentialSource', () => {
  it('reads a subscriber once per TTL, unknown users included, and again after the TTL', async () => {
    let now = 0;
    const reads: string[] = [];
    const cache = new CachedCredentialSource(
      {
        async getCredentials(u) {
          reads.push(u);
          return u === 'alice' ? { ha1Md5: 'a', ha1Sha256: 'b', enabled: true } : undefined;
        },
      },
      5000,
      100,
      () => now,
    );
    assert.equal((await cache.getCredentials('alice', 'example.com'))?.ha1Md5, 'a');
    assert.equal((await cache.getCredentials('alice', 'example.com'))?.ha1Md5, 'a');
    assert.equal(await cache.getCredentials('mallory', 'example.com'), undefined);
    assert.equal(await cache.getCredentials('mallory', 'example.com'), undefined);
    assert.deepEqual(reads, ['alice', 'mallory']);
    now = 5001;
    await cache.getCredentials('alice', 'example.com');
    assert.deepEqual(reads, ['alice', 'mallory', 'alice']);
  });

  it('while the store fails, a user read before is still known by what was read last (within staleMs); an unknown one gets the error', async () => {
    let now = 0;
    let down = false;
    const cache = new CachedCredentialSource(
      {
        async getCredentials(u) {
          if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:3306');
          return u === 'alice' ? { ha1Md5: 'a', ha1Sha256: 'b', enabled: true } : undefined;
        },
      },
      5000,
      100,
      () => now,
      60_000,
    );
    await cache.getCredentials('alice', 'example.com');
    down = true;
    now = 30_000;
    assert.equal((await cache.getCredentials('alice', 'example.com'))?.ha1Md5, 'a');
    await assert.rejects(cache.getCredentials('bob', 'example.com'), /ECONNREFUSED/);
    now = 66_000;
    await assert.rejects(cache.getCredentials('alice', 'example.com'), /ECONNREFUSED/, 'too old to stand in');
  });
});
