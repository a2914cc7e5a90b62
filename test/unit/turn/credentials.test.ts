/**
 * TURN REST credentials (turn/credentials.ts): coturn's `use-auth-secret` formula, username
 * `<expiry>:<user>` and password base64(HMAC-SHA1(secret, username)), checked against values computed here
 * with node:crypto; expiry as coturn applies it; rotation (a previous secret still verifies, only the current
 * one issues); and the secret file dataDir/turn/secret created once 0600 in a 0700 folder, read again, refused
 * when bad, and never logged.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TURN_SECRET_FILE, TurnCredentials, TurnError, restUser } from '../../../turn/credentials.js';
import { silentLogger } from '../../../src/log/index.js';
import { captureLogger } from '../../helpers/log-capture.js';

const SECRET = 'north-secret-0123456789abcdefghijklmnop';
const OLD_SECRET = 'older-secret-0123456789abcdefghijklmnop';
const T0 = Date.parse('2026-12-07T08:00:00Z');

/** coturn's password for a REST username, written out independently of the unit under test. */
const coturnPassword = (secret: string, username: string) => createHmac('sha1', secret).update(username).digest('base64');

describe('TurnCredentials: the coturn use-auth-secret scheme', () => {
  const turn = new TurnCredentials([SECRET, OLD_SECRET]);

  it('makes the username "<expiry unix seconds>:<user>" and the credential base64(HMAC-SHA1(secret, username))', () => {
    const c = turn.issue('alice@example.com', 3600, T0 + 999);
    const expiry = T0 / 1000 + 3600;
    assert.equal(c.username, `${expiry}:alice@example.com`);
    assert.equal(c.credential, coturnPassword(SECRET, `${expiry}:alice@example.com`));
    assert.equal(c.expiresAt, expiry * 1000);
    assert.equal(Buffer.from(c.credential, 'base64').length, 20, 'a SHA-1 digest, standard base64 with padding');
  });

  it('verifies its own credential until the expiry second, and refuses it after (coturn refuses ts < now)', () => {
    const c = turn.issue('alice@example.com', 600, T0);
    assert.equal(turn.verify(c.username, c.credential, T0), true);
    assert.equal(turn.verify(c.username, c.credential, c.expiresAt), true);
    assert.equal(turn.verify(c.username, c.credential, c.expiresAt + 1000), false);
  });

  it('issues with the current secret only, and still accepts a credential of a previous secret during a rotation', () => {
    const before = new TurnCredentials([OLD_SECRET]);
    const old = before.issue('bob@example.com', 3600, T0);
    assert.equal(turn.verify(old.username, old.credential, T0), true, 'a credential made before the rotation still works');
    assert.notEqual(turn.issue('bob@example.com', 3600, T0).credential, old.credential);
    assert.deepEqual(turn.secrets, [SECRET, OLD_SECRET], 'current first, for coturn\'s static-auth-secret lines');
    const after = new TurnCredentials([SECRET]);
    assert.equal(after.verify(old.username, old.credential, T0), false, 'once the old secret is dropped, its credentials stop');
  });

  it('refuses a wrong HMAC, another user\'s username with this credential, a changed expiry, and a malformed username', () => {
    const c = turn.issue('alice@example.com', 3600, T0);
    const wrong = createHmac('sha1', 'not-the-secret-0123456789abcdefghijkl').update(c.username).digest('base64');
    assert.equal(turn.verify(c.username, wrong, T0), false);
    assert.equal(turn.verify(c.username.replace('alice', 'mallory'), c.credential, T0), false);
    const later = `${T0 / 1000 + 86_400}:alice@example.com`;
    assert.equal(turn.verify(later, c.credential, T0), false, 'the expiry cannot be pushed back');
    assert.equal(turn.verify('alice@example.com', c.credential, T0), false);
    assert.equal(turn.verify(c.username, '', T0), false);
  });

  it('gives the long-term passwords of a username, one per secret with the current first, and none when it is expired or malformed', () => {
    const c = turn.issue('alice@example.com', 600, T0);
    assert.deepEqual(turn.passwords(c.username, T0), [c.credential, coturnPassword(OLD_SECRET, c.username)]);
    assert.deepEqual(turn.passwords(c.username, c.expiresAt + 1000), []);
    assert.deepEqual(turn.passwords('alice@example.com', T0), []);
    assert.deepEqual(turn.passwords(`${T0 / 1000 + 60}:`, T0), [], 'no user');
    assert.equal(restUser(c.username), 'alice@example.com');
    assert.equal(restUser(`${T0 / 1000}:a:b`), 'a:b');
    assert.equal(restUser('alice'), undefined);
  });

  it('refuses a lifetime beyond 24 hours, a non-integer one, and an empty user', () => {
    const bad = (err: unknown) => err instanceof TurnError && err.code === 'TURN_ERR_REQUEST';
    assert.throws(() => turn.issue('alice@example.com', 86_401, T0), bad);
    assert.throws(() => turn.issue('alice@example.com', 0, T0), bad);
    assert.throws(() => turn.issue('alice@example.com', 1.5, T0), bad);
    assert.throws(() => turn.issue('', 60, T0), bad);
    assert.equal(turn.issue('alice@example.com', 86_400, T0).expiresAt, T0 + 86_400_000);
  });
});

describe('TurnCredentials.load: the configured secret or dataDir/turn/secret', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'turn-secret-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('uses turn.secret and turn.previousSecrets as given, writes no file and logs neither', () => {
    const { logger, lines } = captureLogger();
    const turn = TurnCredentials.load({ secret: SECRET, previousSecrets: [OLD_SECRET], dataDir: join(dir, 'unused'), logger });
    assert.deepEqual(turn.secrets, [SECRET, OLD_SECRET]);
    const c = turn.issue('alice@example.com', 3600, T0);
    assert.equal(c.credential, coturnPassword(SECRET, c.username));
    assert.throws(() => statSync(join(dir, 'unused')), /ENOENT/, 'a configured secret writes no file');
    const log = lines.join('');
    assert.ok(log.includes('TURN secret loaded'));
    assert.ok(!log.includes(SECRET) && !log.includes(OLD_SECRET) && !log.includes(c.credential), 'no secret and no credential in the logs');
  });

  it('refuses a configured secret shorter than 32 characters, naming the key', () => {
    assert.throws(
      () => TurnCredentials.load({ secret: 'short', dataDir: dir, logger: silentLogger() }),
      (err: unknown) => err instanceof TurnError && err.code === 'TURN_ERR_SECRET' && /turn\.secret/.test(err.message) && !err.message.includes('short'),
    );
    assert.throws(
      () => TurnCredentials.load({ secret: SECRET, previousSecrets: ['tiny'], dataDir: dir, logger: silentLogger() }),
      (err: unknown) => err instanceof TurnError && /turn\.previousSecrets\.0/.test(err.message),
    );
  });

  it('creates dataDir/turn/secret once (32 random bytes as base64url, file 0600, folder 0700) and reads it again on the next start', () => {
    const dataDir = join(dir, 'data');
    const { logger, lines } = captureLogger();
    const first = TurnCredentials.load({ dataDir, logger });
    const path = join(dataDir, TURN_SECRET_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dataDir, 'turn')).mode & 0o777, 0o700);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^[A-Za-z0-9_-]{43}\n$/);
    assert.equal(Buffer.from(text.trim(), 'base64url').length, 32);
    assert.deepEqual(first.secrets, [text.trim()]);

    const second = TurnCredentials.load({ dataDir, previousSecrets: [OLD_SECRET], logger });
    assert.equal(readFileSync(path, 'utf8'), text, 'the file is not rewritten');
    assert.deepEqual(second.secrets, [text.trim(), OLD_SECRET]);
    const c = first.issue('alice@example.com', 3600, T0);
    assert.equal(c.credential, coturnPassword(text.trim(), c.username));
    assert.equal(second.verify(c.username, c.credential, T0), true, 'a restart keeps the credentials valid');
    const log = lines.join('');
    assert.ok(log.includes(path), 'the log names the file');
    assert.ok(!log.includes(text.trim()), 'the secret is never logged');
  });

  it('tightens a secret file and folder an older setup left readable by others', () => {
    const dataDir = join(dir, 'loose');
    const first = TurnCredentials.load({ dataDir, logger: silentLogger() });
    chmodSync(join(dataDir, TURN_SECRET_FILE), 0o644);
    chmodSync(join(dataDir, 'turn'), 0o755);
    const again = TurnCredentials.load({ dataDir, logger: silentLogger() });
    assert.deepEqual(again.secrets, first.secrets);
    assert.equal(statSync(join(dataDir, TURN_SECRET_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(join(dataDir, 'turn')).mode & 0o777, 0o700);
  });

  it('stops the start on a bad secret file, naming the file but not its content, and never replaces it', () => {
    for (const content of ['too-short-secret\n', 'has spaces in it and is long enough to pass the length', 'x'.repeat(600), '', `${'a'.repeat(40)}#comment`]) {
      const dataDir = join(dir, `bad-${randomBytes(3).toString('hex')}`);
      mkdirSync(join(dataDir, 'turn'), { recursive: true, mode: 0o700 });
      const path = join(dataDir, TURN_SECRET_FILE);
      writeFileSync(path, content, { mode: 0o600 });
      assert.throws(
        () => TurnCredentials.load({ dataDir, logger: silentLogger() }),
        (err: unknown) => err instanceof TurnError && err.code === 'TURN_ERR_SECRET' && err.message.includes(path) && (content.trim() === '' || !err.message.includes(content.trim())),
        JSON.stringify(content),
      );
      assert.equal(readFileSync(path, 'utf8'), content, 'a bad secret file is never replaced');
    }
  });
});
