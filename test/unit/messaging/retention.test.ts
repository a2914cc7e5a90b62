/**
 * messaging.retentionDays (messaging/index.ts `purge`): messages and files older than the retention go, their
 * file bytes with them; newer ones stay; 0 keeps everything. A real SQLite store, envelope and file store.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger } from '../../../src/log/index.js';
import { createMessaging, type Messaging } from '../../../messaging/index.js';
import { Envelope } from '../../../messaging/envelope.js';
import { EncryptedFiles } from '../../../messaging/file-store.js';
import { LocalBlobStore } from '../../../messaging/local-blobs.js';
import { openTempStore } from '../../helpers/temp-store.js';

const DAY = 86_400_000;
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

describe('chat retention', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setUp(retentionDays: number) {
    const { store, close } = await openTempStore();
    const dir = mkdtempSync(join(tmpdir(), 'softswitch-retention-'));
    cleanups.push(close, () => rmSync(dir, { recursive: true, force: true }));
    const envelope = new Envelope(randomBytes(32));
    const blobs = new LocalBlobStore(dir, silentLogger());
    const files = new EncryptedFiles(blobs, envelope);
    let now = Date.parse('2026-01-01T00:00:00Z');
    const messaging: Messaging = createMessaging({
      stack: { sendRequest: () => undefined as never, respond: () => undefined as never },
      repo: store.messages,
      sealer: envelope,
      devices: { lookup: () => [], isAsleep: () => false, target: () => { throw new Error('no devices'); }, onBinding: () => () => undefined },
      domains: ['example.com'],
      userExists: () => Promise.resolve(true),
      removeFile: (location) => blobs.remove(location),
      options: { maxBodySize: 4096, ratePerMinute: 100, floodPer10s: 100, maxGroupMembers: 10, retentionDays, deliveryTimeoutMs: 1000 },
      logger: silentLogger(),
      clock: () => now,
    });
    const upload = async (id: string) => {
      const put = await files.put(id, Readable.from([Buffer.from('a voice note')]), 1024);
      await store.messages.addFile({ id, owner: ALICE, contentType: 'audio/ogg', size: put.size, wrappedKey: put.wrappedKey, location: put.location, createdAt: now });
      return join(dir, put.location);
    };
    return { store, messaging, upload, advance: (ms: number) => (now += ms) };
  }

  it('deletes the messages and files older than retentionDays, and the files\' bytes; newer ones stay', async () => {
    const { store, messaging, upload, advance } = await setUp(30);
    const conversation = await messaging.chat.directConversation(ALICE, BOB);
    const oldFile = await upload('oldfileoldfileoldfile0');
    const old = await messaging.chat.post({ conversation, sender: ALICE, kind: 'text', contentType: 'text/plain', body: Buffer.from('old news') });
    advance(20 * DAY);
    const newFile = await upload('newfilenewfilenewfile0');
    const fresh = await messaging.chat.post({ conversation, sender: ALICE, kind: 'text', contentType: 'text/plain', body: Buffer.from('fresh news') });
    advance(15 * DAY);
    assert.deepEqual(await messaging.purge(), { messages: 1, files: 1 });
    assert.equal(await store.messages.getMessage(old.id), undefined);
    assert.ok((await store.messages.getMessage(fresh.id)) !== undefined);
    assert.equal(existsSync(oldFile), false, 'the expired file\'s bytes are gone');
    assert.equal(existsSync(newFile), true);
  });

  it('retentionDays 0 keeps everything', async () => {
    const { store, messaging, advance } = await setUp(0);
    const conversation = await messaging.chat.directConversation(ALICE, BOB);
    const m = await messaging.chat.post({ conversation, sender: ALICE, kind: 'text', contentType: 'text/plain', body: Buffer.from('kept') });
    advance(3650 * DAY);
    assert.deepEqual(await messaging.purge(), { messages: 0, files: 0 });
    assert.ok((await store.messages.getMessage(m.id)) !== undefined);
  });
});
