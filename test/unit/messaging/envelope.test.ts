/**
 * The encryption envelope (messaging/envelope.ts): AES-256-GCM under a fresh data key wrapped by the master
 * key; every mismatch (a flipped byte, another aad, another master key, a truncated value) is detected; the
 * master key is the configured one or a 0600 file created once and read again on later starts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENVELOPE_VERSION, Envelope, EnvelopeError, MASTER_KEY_FILE, SEAL_OVERHEAD, WRAPPED_KEY_BYTES } from '../../../messaging/envelope.js';
import { silentLogger } from '../../../src/log/index.js';
import { captureLogger } from '../../helpers/log-capture.js';

const tamperedError = (err: unknown) => err instanceof EnvelopeError && err.code === 'MESSAGING_ERR_TAMPERED';

describe('Envelope: seal and open', () => {
  const envelope = new Envelope(randomBytes(32));
  const plain = Buffer.from('meet me at the usual place at 8', 'utf8');

  it('opens what it sealed, with the same aad', () => {
    const sealed = envelope.seal(plain, 'msg-1');
    assert.deepEqual(envelope.open(sealed, 'msg-1'), plain);
    assert.deepEqual(envelope.open(envelope.seal(Buffer.alloc(0), 'empty'), 'empty'), Buffer.alloc(0));
  });

  it('writes the documented layout: version, master key id, wrapped key, nonce, ciphertext, tag — never the plaintext', () => {
    const sealed = envelope.seal(plain, 'msg-1');
    assert.equal(sealed.length, plain.length + SEAL_OVERHEAD);
    assert.equal(sealed[0], ENVELOPE_VERSION);
    assert.equal(sealed.subarray(1, 5).toString('hex'), envelope.keyId);
    assert.equal(sealed.indexOf(plain), -1);
    assert.equal(sealed.indexOf(Buffer.from('usual place')), -1);
  });

  it('uses a fresh data key and nonce each time: the same text seals to different bytes', () => {
    const a = envelope.seal(plain, 'msg-1');
    const b = envelope.seal(plain, 'msg-1');
    assert.notDeepEqual(a, b);
    assert.notDeepEqual(a.subarray(0, WRAPPED_KEY_BYTES), b.subarray(0, WRAPPED_KEY_BYTES));
  });

  it('detects a flipped bit in every byte of the sealed value', () => {
    const sealed = envelope.seal(plain, 'msg-1');
    for (let i = 0; i < sealed.length; i++) {
      const copy = Buffer.from(sealed);
      copy[i] = copy[i]! ^ 0x01;
      assert.throws(() => envelope.open(copy, 'msg-1'), tamperedError, `byte ${i}`);
    }
  });

  it('refuses another aad: a body copied into another message row does not open', () => {
    const sealed = envelope.seal(plain, 'msg-1');
    assert.throws(() => envelope.open(sealed, 'msg-2'), tamperedError);
    assert.throws(() => envelope.open(sealed, ''), tamperedError);
  });

  it('refuses what another master key sealed', () => {
    const other = new Envelope(randomBytes(32));
    assert.notEqual(other.keyId, envelope.keyId);
    assert.throws(() => other.open(envelope.seal(plain, 'msg-1'), 'msg-1'), tamperedError);
  });

  it('refuses a truncated or extended value', () => {
    const sealed = envelope.seal(plain, 'msg-1');
    for (const cut of [0, 1, 5, WRAPPED_KEY_BYTES, SEAL_OVERHEAD - 1, sealed.length - 1]) {
      assert.throws(() => envelope.open(sealed.subarray(0, cut), 'msg-1'), tamperedError, `cut at ${cut}`);
    }
    assert.throws(() => envelope.open(Buffer.concat([sealed, Buffer.from([0])]), 'msg-1'), tamperedError);
  });

  it('newKey() gives a key that unwrap() recovers from its wrapped form, and only under the same master key', () => {
    const { key, wrapped } = envelope.newKey();
    assert.equal(key.length, 32);
    assert.equal(wrapped.length, WRAPPED_KEY_BYTES);
    assert.equal(wrapped.indexOf(key), -1);
    assert.deepEqual(envelope.unwrap(wrapped), key);
    assert.throws(() => new Envelope(randomBytes(32)).unwrap(wrapped), tamperedError);
    const flipped = Buffer.from(wrapped);
    flipped[30] = flipped[30]! ^ 0x80;
    assert.throws(() => envelope.unwrap(flipped), tamperedError);
  });
});

describe('Envelope.load: the master key', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'softswitch-envelope-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes storage.masterKey as 64 hex characters or base64, the same key either way, and logs only its id', () => {
    const key = randomBytes(32);
    const { logger, lines } = captureLogger();
    const hex = Envelope.load({ masterKey: key.toString('hex'), dataDir: join(dir, 'unused'), logger });
    const b64 = Envelope.load({ masterKey: key.toString('base64'), dataDir: join(dir, 'unused'), logger });
    assert.equal(hex.keyId, b64.keyId);
    assert.match(hex.keyId, /^[0-9a-f]{8}$/);
    assert.deepEqual(b64.open(hex.seal(Buffer.from('x'), 'a'), 'a'), Buffer.from('x'));
    const log = lines.join('');
    assert.ok(log.includes(hex.keyId));
    assert.ok(!log.includes(key.toString('hex')) && !log.includes(key.toString('base64')), 'the key is never logged');
    assert.throws(() => statSync(join(dir, 'unused')), /ENOENT/, 'a configured key writes no file');
  });

  it('refuses a configured key of the wrong size', () => {
    assert.throws(
      () => Envelope.load({ masterKey: 'ab'.repeat(31), dataDir: dir, logger: silentLogger() }),
      (err: unknown) => err instanceof EnvelopeError && err.code === 'MESSAGING_ERR_MASTER_KEY' && /storage\.masterKey/.test(err.message),
    );
  });

  it('creates dataDir/storage/master.key once (file 0600, folder 0700) and reads it again on the next start', () => {
    const dataDir = join(dir, 'data');
    const { logger, lines } = captureLogger();
    const first = Envelope.load({ dataDir, logger });
    const path = join(dataDir, MASTER_KEY_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dataDir, 'storage')).mode & 0o777, 0o700);
    const text = readFileSync(path, 'utf8');
    assert.match(text, /^[0-9a-f]{64}\n$/);
    const sealed = first.seal(Buffer.from('kept across restarts'), 'm');

    const second = Envelope.load({ dataDir, logger });
    assert.equal(second.keyId, first.keyId);
    assert.equal(readFileSync(path, 'utf8'), text, 'the file is not rewritten');
    assert.deepEqual(second.open(sealed, 'm'), Buffer.from('kept across restarts'));
    const log = lines.join('');
    assert.ok(log.includes(first.keyId));
    assert.ok(!log.includes(text.trim()), 'the key is never logged');
  });

  it('tightens a key file an older setup left readable by others', () => {
    const dataDir = join(dir, 'loose');
    const first = Envelope.load({ dataDir, logger: silentLogger() });
    chmodSync(join(dataDir, MASTER_KEY_FILE), 0o644);
    const again = Envelope.load({ dataDir, logger: silentLogger() });
    assert.equal(again.keyId, first.keyId);
    assert.equal(statSync(join(dataDir, MASTER_KEY_FILE)).mode & 0o777, 0o600);
  });

  it('stops the start on a key file of the wrong size or format, naming the file but not its content', () => {
    for (const content of ['0123abcd\n', 'z'.repeat(64), randomBytes(32).toString('hex') + 'ff', '']) {
      const dataDir = join(dir, `bad-${randomBytes(3).toString('hex')}`);
      mkdirSync(join(dataDir, 'storage'), { recursive: true, mode: 0o700 });
      const path = join(dataDir, MASTER_KEY_FILE);
      writeFileSync(path, content, { mode: 0o600 });
      assert.throws(
        () => Envelope.load({ dataDir, logger: silentLogger() }),
        (err: unknown) => err instanceof EnvelopeError && err.code === 'MESSAGING_ERR_MASTER_KEY' && err.message.includes(path) && (content.trim() === '' || !err.message.includes(content.trim())),
        JSON.stringify(content),
      );
      assert.equal(readFileSync(path, 'utf8'), content, 'a bad key file is never replaced');
    }
  });
});
