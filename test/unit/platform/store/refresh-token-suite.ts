/**
 * The refresh tokens of the user tokens (platform/store/refresh-tokens.ts), in the shared store suite
 * (repository-suite.ts runs it on every target): only hashes stored, single use even when two refreshes
 * race, expired ones purged, sessions ended by a sign-out.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SqlRefreshTokenRepository, type SqlStore } from '../../../../platform/store/index.js';

export function refreshTokenSuite(getStore: () => SqlStore): void {
  describe('user refresh tokens', () => {
    const record = (subject: string, expiresAt: number) => ({ subject, fingerprint: '0123456789abcdef', createdAt: 1_000, expiresAt });

    it('issue returns 32 random bytes in base64url and stores only their SHA-256 with the record', async () => {
      const store = getStore();
      const tokens = new SqlRefreshTokenRepository(store);
      const token = await tokens.issue(record('alice@example.com', Date.now() + 60_000));
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(Buffer.from(token, 'base64url').length, 32);
      const rows = (await store.knex('user_refresh_tokens').select()) as Array<Record<string, unknown>>;
      assert.equal(rows.length, 1);
      assert.match(String(rows[0]!.hash), /^[0-9a-f]{64}$/);
      for (const v of Object.values(rows[0]!)) assert.ok(!String(v).includes(token.slice(0, 16)), 'no part of the token is stored');
    });

    it('consume gives the record once; a second use, an altered or a malformed token gives undefined', async () => {
      const tokens = new SqlRefreshTokenRepository(getStore());
      const expiresAt = Date.now() + 60_000;
      const token = await tokens.issue(record('bob@example.com', expiresAt));
      const altered = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
      assert.equal(await tokens.consume(altered), undefined);
      assert.deepEqual(await tokens.consume(token), record('bob@example.com', expiresAt));
      for (const bad of [token, '', 'short', token + 'x']) assert.equal(await tokens.consume(bad), undefined, bad);
    });

    it('two refreshes racing with the same token: exactly one gets it', async () => {
      const tokens = new SqlRefreshTokenRepository(getStore());
      const token = await tokens.issue(record('carol@example.com', Date.now() + 60_000));
      const results = await Promise.all([tokens.consume(token), tokens.consume(token), tokens.consume(token)]);
      assert.equal(results.filter((r) => r !== undefined).length, 1);
    });

    it('purgeExpired deletes the expired tokens only', async () => {
      const store = getStore();
      const tokens = new SqlRefreshTokenRepository(store);
      await store.knex('user_refresh_tokens').del();
      const now = Date.now();
      await tokens.issue(record('dave@example.com', now - 1));
      const live = await tokens.issue(record('dave@example.com', now + 60_000));
      assert.equal(await tokens.purgeExpired(now), 1);
      assert.equal((await tokens.consume(live))?.subject, 'dave@example.com');
    });

    it('a token keeps its session; ending the session deletes its tokens only and records it as ended until the given time', async () => {
      const tokens = new SqlRefreshTokenRepository(getStore());
      const now = Date.now();
      const inSession = { ...record('erin@example.com', now + 60_000), session: 'S'.repeat(22) };
      const first = await tokens.issue(inSession);
      const second = await tokens.issue(inSession);
      const other = await tokens.issue({ ...inSession, session: 'T'.repeat(22) });
      const older = await tokens.issue(record('erin@example.com', now + 60_000));
      assert.deepEqual(await tokens.endedSessions('erin@example.com', now), []);
      assert.equal(await tokens.endSession('erin@example.com', inSession.session, now + 10_000), 2);
      assert.equal(await tokens.endSession('erin@example.com', inSession.session, now + 10_000), 0, 'ending it again changes nothing');
      assert.equal(await tokens.consume(first), undefined);
      assert.equal(await tokens.consume(second), undefined);
      assert.deepEqual(await tokens.consume(other), { ...inSession, session: 'T'.repeat(22) });
      assert.deepEqual(await tokens.consume(older), record('erin@example.com', now + 60_000), 'a token without a session has none');
      assert.deepEqual(await tokens.endedSessions('erin@example.com', now), [inSession.session]);
      assert.deepEqual(await tokens.endedSessions('frank@example.com', now), [], 'another subject\'s sessions are its own');
      assert.deepEqual(await tokens.endedSessions('erin@example.com', now + 10_000), [], 'not past its time');
    });

    it('purgeExpired deletes the ended-session records past their time', async () => {
      const store = getStore();
      const tokens = new SqlRefreshTokenRepository(store);
      const now = Date.now();
      await tokens.endSession('gina@example.com', 'A'.repeat(22), now - 1);
      await tokens.endSession('gina@example.com', 'B'.repeat(22), now + 60_000);
      await tokens.purgeExpired(now);
      const rows = (await store.knex('user_sessions_ended').where({ subject: 'gina@example.com' }).select('session')) as Array<{ session: string }>;
      assert.deepEqual(rows.map((r) => r.session), ['B'.repeat(22)]);
    });
  });
}
