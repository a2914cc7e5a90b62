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
});
