/**
 * Who may watch whom (presence/policy.ts) over a real temporary SQLite store: the same-domain and contacts
 * rules, a user watching themself, the allow-list cache (its ttl bounds what a change made elsewhere takes
 * to be seen, a change made through the policy is seen at once), and a store failure never read as a yes.
 */
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { PresencePolicy, watchIdentity } from '../../../presence/policy.js';
import type { PresenceRepository } from '../../../platform/store/index.js';
import { openTempStore } from '../../helpers/temp-store.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const MALLORY = 'mallory@other.example';

/** The real repository, counting the allow-list reads the policy makes. */
function counted(repo: PresenceRepository): PresenceRepository & { reads: number } {
  const out = {
    reads: 0,
    allowed: (user: string) => {
      out.reads += 1;
      return repo.allowed(user);
    },
    isAllowed: (user: string, watcher: string) => repo.isAllowed(user, watcher),
    allow: (user: string, watcher: string) => repo.allow(user, watcher),
    disallow: (user: string, watcher: string) => repo.disallow(user, watcher),
    forget: (user: string) => repo.forget(user),
  };
  return out;
}

describe('presence policy', () => {
  let temp: Awaited<ReturnType<typeof openTempStore>>;

  before(async () => {
    temp = await openTempStore();
  });

  after(async () => {
    await temp?.close();
  });

  beforeEach(async () => {
    await temp.store.knex('presence_allow').del();
  });

  describe('watchIdentity', () => {
    it('takes user@domain or a sip:/sips: URI, lower-cases the host only, and has no identity without a user part', () => {
      assert.equal(watchIdentity('Alice@Example.COM'), 'Alice@example.com');
      assert.equal(watchIdentity('sip:Alice@Example.COM'), 'Alice@example.com');
      assert.equal(watchIdentity('SIPS:bob@example.com'), BOB);
      assert.equal(watchIdentity('sip:10.0.0.5'), undefined);
      assert.equal(watchIdentity('@example.com'), undefined);
      assert.equal(watchIdentity('alice@'), undefined);
    });
  });

  describe('same-domain', () => {
    it('a user of the presentity\'s domain may watch, the host compared case-insensitively', async () => {
      const policy = new PresencePolicy({ mode: 'same-domain', repo: temp.store.presence });
      assert.equal(await policy.mayWatch(BOB, ALICE), true);
      assert.equal(await policy.mayWatch('bob@EXAMPLE.com', 'sip:alice@Example.Com'), true);
    });

    it('a user of another domain, or a From without a user part, may not', async () => {
      const policy = new PresencePolicy({ mode: 'same-domain', repo: temp.store.presence });
      assert.equal(await policy.mayWatch(MALLORY, ALICE), false);
      assert.equal(await policy.mayWatch('bob@sub.example.com', ALICE), false);
      assert.equal(await policy.mayWatch('sip:example.com', ALICE), false);
    });

    it('the allow list plays no part: it neither lets a foreign user in nor is read', async () => {
      const repo = counted(temp.store.presence);
      const policy = new PresencePolicy({ mode: 'same-domain', repo });
      await temp.store.presence.allow(ALICE, MALLORY);
      assert.equal(await policy.mayWatch(MALLORY, ALICE), false);
      assert.equal(await policy.mayWatch(BOB, ALICE), true);
      assert.equal(repo.reads, 0);
    });
  });

  describe('contacts', () => {
    it('only watchers on the presentity\'s allow list may watch, whatever their domain', async () => {
      const policy = new PresencePolicy({ mode: 'contacts', repo: temp.store.presence });
      assert.equal(await policy.mayWatch(BOB, ALICE), false, 'same domain is not enough');
      await policy.allow(ALICE, MALLORY);
      assert.equal(await policy.mayWatch(MALLORY, ALICE), true);
      assert.equal(await policy.mayWatch(BOB, ALICE), false);
      assert.equal(await policy.mayWatch(ALICE, MALLORY), false, 'a list is not symmetric');
    });

    it('the watcher\'s user part is case-sensitive, its host is not (RFC 3261 §19.1.4)', async () => {
      const policy = new PresencePolicy({ mode: 'contacts', repo: temp.store.presence });
      await policy.allow('alice@EXAMPLE.com', 'bob@Example.com');
      assert.deepEqual(await temp.store.presence.allowed(ALICE), [BOB]);
      assert.equal(await policy.mayWatch('sip:bob@EXAMPLE.COM', 'sip:alice@example.com'), true);
      assert.equal(await policy.mayWatch('Bob@example.com', ALICE), false);
    });

    it('a user always watches themself, in either mode, with no list read', async () => {
      const repo = counted(temp.store.presence);
      for (const mode of ['contacts', 'same-domain'] as const) {
        const policy = new PresencePolicy({ mode, repo });
        assert.equal(await policy.mayWatch('sip:alice@EXAMPLE.com', ALICE), true, mode);
      }
      assert.equal(repo.reads, 0);
      // Another user part is another user: under contacts, Alice is not alice and needs the list.
      const contacts = new PresencePolicy({ mode: 'contacts', repo });
      assert.equal(await contacts.mayWatch('Alice@example.com', ALICE), false);
      assert.equal(repo.reads, 1);
    });

    it('an allow list is read once per cacheMs however many checks; concurrent first checks share one read', async () => {
      let now = 1_000_000;
      const repo = counted(temp.store.presence);
      const policy = new PresencePolicy({ mode: 'contacts', repo, cacheMs: 5000, clock: () => now });
      await temp.store.presence.allow(ALICE, BOB);
      const answers = await Promise.all([policy.mayWatch(BOB, ALICE), policy.mayWatch(BOB, ALICE), policy.mayWatch(MALLORY, ALICE)]);
      assert.deepEqual(answers, [true, true, false]);
      assert.equal(repo.reads, 1);
      now += 4999;
      assert.equal(await policy.mayWatch(BOB, ALICE), true);
      assert.equal(repo.reads, 1);
      now += 1;
      assert.equal(await policy.mayWatch(BOB, ALICE), true);
      assert.equal(repo.reads, 2);
    });

    it('a change made elsewhere (another worker, the store) is seen once the cached list expires, not before', async () => {
      let now = 1_000_000;
      const policy = new PresencePolicy({ mode: 'contacts', repo: temp.store.presence, cacheMs: 5000, clock: () => now });
      await temp.store.presence.allow(ALICE, BOB);
      assert.equal(await policy.mayWatch(BOB, ALICE), true);
      await temp.store.presence.disallow(ALICE, BOB);
      assert.equal(await policy.mayWatch(BOB, ALICE), true, 'within the ttl the cached list answers');
      now += 5000;
      assert.equal(await policy.mayWatch(BOB, ALICE), false, 'stale for at most cacheMs');
    });

    it('allow and disallow through the policy are seen at once and announced to onChange listeners', async () => {
      const now = 1_000_000;
      const policy = new PresencePolicy({ mode: 'contacts', repo: temp.store.presence, cacheMs: 60_000, clock: () => now });
      const changed: string[] = [];
      const stop = policy.onChange((presentity) => changed.push(presentity));
      assert.equal(await policy.mayWatch(BOB, ALICE), false);
      assert.equal(await policy.allow(ALICE, BOB), true);
      assert.equal(await policy.mayWatch(BOB, ALICE), true);
      assert.equal(await policy.allow(ALICE, BOB), false);
      assert.equal(await policy.disallow('alice@Example.com', BOB), true);
      assert.equal(await policy.mayWatch(BOB, ALICE), false);
      assert.equal(await policy.disallow(ALICE, BOB), false);
      assert.deepEqual(changed, [ALICE, ALICE, ALICE, ALICE]);
      stop();
      await policy.allow(ALICE, BOB);
      assert.equal(changed.length, 4);
    });

    it('forget drops a deleted user from every list, cached ones too', async () => {
      const policy = new PresencePolicy({ mode: 'contacts', repo: temp.store.presence, cacheMs: 60_000 });
      await policy.allow(ALICE, BOB);
      await policy.allow(MALLORY, BOB);
      assert.equal(await policy.mayWatch(BOB, ALICE), true);
      assert.equal(await policy.mayWatch(BOB, MALLORY), true);
      assert.equal(await policy.forget(BOB), 2);
      assert.equal(await policy.mayWatch(BOB, ALICE), false);
      assert.equal(await policy.mayWatch(BOB, MALLORY), false);
    });

    it('cacheMs 0 reads the list on every check', async () => {
      const repo = counted(temp.store.presence);
      const policy = new PresencePolicy({ mode: 'contacts', repo, cacheMs: 0 });
      await policy.mayWatch(BOB, ALICE);
      await policy.mayWatch(BOB, ALICE);
      assert.equal(repo.reads, 2);
    });

    it('at most maxCached lists are kept, the oldest dropped first', async () => {
      const repo = counted(temp.store.presence);
      const policy = new PresencePolicy({ mode: 'contacts', repo, maxCached: 2 });
      await policy.mayWatch(BOB, 'a@example.com');
      await policy.mayWatch(BOB, 'b@example.com');
      await policy.mayWatch(BOB, 'c@example.com');
      assert.equal(repo.reads, 3);
      await policy.mayWatch(BOB, 'c@example.com');
      await policy.mayWatch(BOB, 'b@example.com');
      assert.equal(repo.reads, 3, 'b and c are cached');
      await policy.mayWatch(BOB, 'a@example.com');
      assert.equal(repo.reads, 4, 'a was dropped');
    });

    it('a store that fails rejects the check (never a yes), and the failure is not cached', async () => {
      let failing = true;
      const repo: PresenceRepository = {
        ...counted(temp.store.presence),
        allowed: (user) => (failing ? Promise.reject(new Error('database unreachable')) : temp.store.presence.allowed(user)),
      };
      const policy = new PresencePolicy({ mode: 'contacts', repo, cacheMs: 60_000 });
      await temp.store.presence.allow(ALICE, BOB);
      await assert.rejects(policy.mayWatch(BOB, ALICE), /database unreachable/);
      failing = false;
      assert.equal(await policy.mayWatch(BOB, ALICE), true);
    });

    it('a malformed or too long user is a TypeError on allow and disallow, and nothing is stored', async () => {
      const policy = new PresencePolicy({ mode: 'contacts', repo: temp.store.presence });
      await assert.rejects(policy.allow('alice', BOB), TypeError);
      await assert.rejects(policy.allow(ALICE, 'sip:example.com'), TypeError);
      await assert.rejects(policy.allow(ALICE, `${'b'.repeat(250)}@example.com`), TypeError);
      await assert.rejects(policy.disallow(ALICE, ''), TypeError);
      assert.deepEqual(await policy.allowed(ALICE), []);
    });
  });
});
