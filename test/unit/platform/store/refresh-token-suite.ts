/**
 * The refresh tokens of the user tokens (platform/store/refresh-tokens.ts), in the shared store suite
 * (repository-suite.ts runs it on every target): only hashes stored, single use even when two refreshes
 * race, expired ones purged.
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
  });
}
