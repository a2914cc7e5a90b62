/**
 * One behavioural suite for the SQL store, run against every database in targets.ts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrations } from '../../../../sql/index.js';
import { silentLogger } from '../../../../src/log/index.js';
import { computeHA1, utf8ToWire } from '../../../../src/sip/index.js';
import { openStore, type Binding, type SqlStore } from '../../../../platform/store/index.js';
import { type Target, type TestDatabase, rejectsWith } from './targets.js';
import { callSuite } from './call-suite.js';
import { routingSuite } from './routing-suite.js';
import { tokenSuite } from './token-suite.js';
import { refreshTokenSuite } from './refresh-token-suite.js';
import { messageSuite } from './message-suite.js';
import { presenceSuite } from './presence-suite.js';
import { meetingSuite } from './meeting-suite.js';
import { participantSuite } from './participant-suite.js';
import { moderationSuite } from './moderation-suite.js';
import { breakoutSuite } from './breakout-suite.js';
import { recordingSuite } from './recording-suite.js';
import { placementSuite } from './placement-suite.js';

const TABLES = ['domains', 'subscribers', 'locations', 'backend_sets', 'backends', 'routes', 'dids', 'trusted', 'admin_tokens', 'calls', 'dialogs',
  'chat_conversations', 'chat_members', 'chat_messages', 'chat_inbox', 'chat_devices', 'chat_receipts', 'chat_files', 'chat_file_links',
  'presence_allow', 'meetings', 'meeting_participants', 'meeting_moderation', 'participant_media', 'meeting_events',
  'meeting_breakouts', 'breakout_rooms', 'breakout_assignments', 'meeting_recordings', 'meeting_recording_files', 'meeting_nodes'];


function expectedHa1(username: string, realm: string, password: string) {
  const [u, r, p] = [utf8ToWire(username), utf8ToWire(realm), utf8ToWire(password)];
  return {
    ha1Md5: computeHA1('MD5', u, r, p),
    ha1Sha256: computeHA1('SHA-256', u, r, p),
    ha1Sha512_256: computeHA1('SHA-512-256', u, r, p),
  };
}

async function tableNames(store: SqlStore): Promise<string[]> {
  if (store.dialect === 'sqlite') {
    const rows = (await store.knex.raw("select name from sqlite_master where type = 'table'")) as Array<{ name: string }>;
    return rows.map((r) => r.name);
  }
  const [rows] = (await store.knex.raw('show tables')) as [Array<Record<string, string>>];
  return rows.map((r) => Object.values(r)[0]!);
}

/** Every value of every row of every table, as text. */
async function everyValue(store: SqlStore): Promise<string[]> {
  const out: string[] = [];
  for (const table of await tableNames(store)) {
    const rows = (await store.knex(table).select()) as Array<Record<string, unknown>>;
    for (const row of rows) for (const v of Object.values(row)) out.push(Buffer.isBuffer(v) ? v.toString('latin1') : String(v));
  }
  return out;
}

function binding(overrides: Partial<Binding> = {}): Binding {
  return {
    aor: 'sip:alice@loc.example.com',
    contact: 'sip:alice@192.0.2.10:5060;transport=tcp',
    callId: 'a84b4c76e66710@pc33.example.com',
    cseq: 1,
    expiresAt: Date.now() + 3_600_000,
    received: 'tcp:192.0.2.10:50312',
    ...overrides,
  };
}

export function repositorySuite(target: Target): void {
  describe(`SQL store on ${target.name}`, () => {
    let db: TestDatabase;
    let store: SqlStore;

    before(async () => {
      db = await target.create();
      store = await openStore({ url: db.url, logger: silentLogger() });
    });

    after(async () => {
      await store?.close();
      await db?.drop();
    });

    describe('opening and migrations', () => {
      it(`opens as dialect ${target.dialect} and creates the tables ${TABLES.join(', ')}`, async () => {
        assert.equal(store.dialect, target.dialect);
        for (const t of TABLES) assert.ok(await store.knex.schema.hasTable(t), `table ${t}`);
      });

      it('records every migration of sql/index.ts once, in order', async () => {
        const rows = (await store.knex('knex_migrations').select('name').orderBy('id')) as Array<{ name: string }>;
        assert.deepEqual(rows.map((r) => r.name), migrations.map((m) => m.name));
      });

      it('opening the same database again runs no migration and keeps the data (migrations are idempotent)', async () => {
        await store.subscribers.add({ username: 'keeper', domain: 'reopen.example.com', password: 'pw-reopen' });
        const again = await openStore({ url: db.url, logger: silentLogger() });
        try {
          const rows = (await again.knex('knex_migrations').select('name')) as unknown[];
          assert.equal(rows.length, migrations.length);
          assert.equal((await again.subscribers.get('keeper', 'reopen.example.com'))?.username, 'keeper');
        } finally {
          await again.close();
        }
        // The first store is unaffected by the second one closing.
        assert.ok(await store.domains.exists('reopen.example.com'));
      });

      if (target.dialect === 'sqlite') {
        it('creates the missing parent folder, uses WAL and enforces foreign keys', async () => {
          assert.ok(existsSync(dirname(db.file!)));
          const journal = (await store.knex.raw('pragma journal_mode')) as Array<{ journal_mode: string }>;
          assert.equal(journal[0]?.journal_mode, 'wal');
          const fk = (await store.knex.raw('pragma foreign_keys')) as Array<{ foreign_keys: number }>;
          assert.equal(fk[0]?.foreign_keys, 1);
        });
      }
    });

    describe('subscribers', () => {
      it('add stores HA1 = computeHA1(alg, user, domain, password) for MD5, SHA-256 and SHA-512-256, realm = domain', async () => {
        const before = Date.now();
        const s = await store.subscribers.add({ username: 'alice', domain: 'example.com', password: 'wonderland' });
        assert.equal(s.username, 'alice');
        assert.equal(s.domain, 'example.com');
        assert.equal(s.enabled, true);
        assert.deepEqual({ ha1Md5: s.ha1Md5, ha1Sha256: s.ha1Sha256, ha1Sha512_256: s.ha1Sha512_256 }, expectedHa1('alice', 'example.com', 'wonderland'));
        assert.ok(s.createdAt >= before && s.createdAt <= Date.now());
        assert.equal(s.updatedAt, s.createdAt);
      });

      it('hashes a Unicode user name and password as their UTF-8 octets', async () => {
        const s = await store.subscribers.add({ username: 'jérôme', domain: 'example.com', password: 'пароль✓' });
        assert.deepEqual({ ha1Md5: s.ha1Md5, ha1Sha256: s.ha1Sha256, ha1Sha512_256: s.ha1Sha512_256 }, expectedHa1('jérôme', 'example.com', 'пароль✓'));
        assert.equal((await store.subscribers.get('jérôme', 'example.com'))?.username, 'jérôme');
      });

      it('get returns the stored row; an unknown user or domain gives undefined', async () => {
        const s = await store.subscribers.get('alice', 'example.com');
        assert.ok(s !== undefined);
        assert.equal(s.ha1Md5, expectedHa1('alice', 'example.com', 'wonderland').ha1Md5);
        assert.equal(await store.subscribers.get('nobody', 'example.com'), undefined);
        assert.equal(await store.subscribers.get('alice', 'nowhere.example.com'), undefined);
      });

      it('domains compare case-insensitively: EXAMPLE.COM is example.com', async () => {
        assert.equal((await store.subscribers.get('alice', 'EXAMPLE.COM'))?.domain, 'example.com');
        await rejectsWith(store.subscribers.add({ username: 'alice', domain: 'Example.Com', password: 'x' }), 'STORE_ERR_DUPLICATE', /alice@example\.com already exists/);
      });

      it('user names compare case-sensitively: Alice and alice are two subscribers', async () => {
        await store.subscribers.add({ username: 'Alice', domain: 'example.com', password: 'other' });
        assert.equal((await store.subscribers.get('Alice', 'example.com'))?.ha1Md5, expectedHa1('Alice', 'example.com', 'other').ha1Md5);
        assert.equal((await store.subscribers.get('alice', 'example.com'))?.ha1Md5, expectedHa1('alice', 'example.com', 'wonderland').ha1Md5);
        assert.equal(await store.subscribers.get('ALICE', 'example.com'), undefined);
      });

      it('a duplicate user is refused with STORE_ERR_DUPLICATE and the stored one is unchanged', async () => {
        await rejectsWith(store.subscribers.add({ username: 'alice', domain: 'example.com', password: 'hijack' }), 'STORE_ERR_DUPLICATE');
        assert.equal((await store.subscribers.get('alice', 'example.com'))?.ha1Md5, expectedHa1('alice', 'example.com', 'wonderland').ha1Md5);
      });

      it('adding a subscriber adds its domain when missing and keeps an existing one', async () => {
        assert.equal(await store.domains.exists('auto.example.com'), false);
        await store.subscribers.add({ username: 'bob', domain: 'auto.example.com', password: 'b0b' });
        assert.equal(await store.domains.exists('auto.example.com'), true);
        const created = (await store.domains.list()).find((d) => d.name === 'auto.example.com')!;
        await store.subscribers.add({ username: 'carol', domain: 'auto.example.com', password: 'c4r0l' });
        const again = (await store.domains.list()).filter((d) => d.name === 'auto.example.com');
        assert.deepEqual(again, [created]);
      });

      it('list gives every subscriber by domain then user name, or one domain only', async () => {
        const all = await store.subscribers.list();
        const keys = all.map((s) => `${s.username}@${s.domain}`);
        const sorted = [...all].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
        assert.deepEqual(keys, sorted.map((s) => `${s.username}@${s.domain}`));
        assert.ok(keys.includes('alice@example.com') && keys.includes('bob@auto.example.com'));
        assert.deepEqual((await store.subscribers.list('auto.example.com')).map((s) => s.username), ['bob', 'carol']);
        assert.deepEqual(await store.subscribers.list('empty.example.com'), []);
      });

      it('list pages by (domain, user name) after the last one seen: every subscriber once, in order, across domains', async () => {
        const all = (await store.subscribers.list()).map((s) => `${s.username}@${s.domain}`);
        const seen: string[] = [];
        let after: { domain: string; username: string } | undefined;
        for (let pages = 0; pages <= all.length; pages++) {
          const page = await store.subscribers.list(undefined, { after, limit: 2 });
          assert.ok(page.length <= 2);
          if (page.length === 0) break;
          seen.push(...page.map((s) => `${s.username}@${s.domain}`));
          const last = page[page.length - 1]!;
          after = { domain: last.domain, username: last.username };
        }
        assert.deepEqual(seen, all);
        assert.deepEqual((await store.subscribers.list('auto.example.com', { after: { domain: 'auto.example.com', username: 'bob' } })).map((s) => s.username), ['carol']);
        await assert.rejects(store.subscribers.list(undefined, { limit: 0 }), TypeError);
      });

      it('setPassword replaces every HA1 and moves updatedAt; an unknown user is STORE_ERR_NOT_FOUND', async () => {
        const old = (await store.subscribers.get('bob', 'auto.example.com'))!;
        await new Promise((r) => setTimeout(r, 2));
        await store.subscribers.setPassword('bob', 'auto.example.com', 'new-secret');
        const s = (await store.subscribers.get('bob', 'auto.example.com'))!;
        assert.deepEqual({ ha1Md5: s.ha1Md5, ha1Sha256: s.ha1Sha256, ha1Sha512_256: s.ha1Sha512_256 }, expectedHa1('bob', 'auto.example.com', 'new-secret'));
        assert.ok(s.updatedAt > old.updatedAt);
        assert.equal(s.createdAt, old.createdAt);
        await rejectsWith(store.subscribers.setPassword('nobody', 'auto.example.com', 'x'), 'STORE_ERR_NOT_FOUND', /nobody@auto\.example\.com/);
      });

      it('setEnabled disables and enables a subscriber, keeping its HA1s; an unknown user is STORE_ERR_NOT_FOUND', async () => {
        const before = (await store.subscribers.get('bob', 'auto.example.com'))!;
        await store.subscribers.setEnabled('bob', 'AUTO.example.com', false);
        const off = (await store.subscribers.get('bob', 'auto.example.com'))!;
        assert.equal(off.enabled, false);
        assert.equal(off.ha1Md5, before.ha1Md5);
        await store.subscribers.setEnabled('bob', 'auto.example.com', true);
        assert.equal((await store.subscribers.get('bob', 'auto.example.com'))!.enabled, true);
        await rejectsWith(store.subscribers.setEnabled('nobody', 'auto.example.com', false), 'STORE_ERR_NOT_FOUND', /nobody@auto\.example\.com/);
      });

      it('remove deletes the subscriber; removing it again is STORE_ERR_NOT_FOUND', async () => {
        await store.subscribers.remove('carol', 'auto.example.com');
        assert.equal(await store.subscribers.get('carol', 'auto.example.com'), undefined);
        await rejectsWith(store.subscribers.remove('carol', 'auto.example.com'), 'STORE_ERR_NOT_FOUND');
      });

      it('an empty user name, domain or password is a TypeError', async () => {
        await assert.rejects(store.subscribers.add({ username: '', domain: 'example.com', password: 'x' }), TypeError);
        await assert.rejects(store.subscribers.add({ username: 'x', domain: '', password: 'x' }), TypeError);
        await assert.rejects(store.subscribers.add({ username: 'x', domain: 'example.com', password: '' }), TypeError);
        await assert.rejects(store.subscribers.setPassword('alice', 'example.com', ''), TypeError);
      });

      it('no column of any table holds a clear password, after add and after setPassword', async () => {
        const first = 'Cl3ar-Text-Pa55word!';
        const second = 'An0ther-Clear-One?';
        await store.subscribers.add({ username: 'dave', domain: 'secret.example.com', password: first });
        await store.subscribers.setPassword('dave', 'secret.example.com', second);
        for (const value of await everyValue(store)) {
          assert.ok(!value.includes(first) && !value.includes(second), `a column holds a password: ${value}`);
        }
        if (db.file !== undefined) {
          // Nor do the bytes on disk (the main file and the write-ahead log).
          for (const f of [db.file, `${db.file}-wal`]) {
            if (!existsSync(f)) continue;
            const bytes = readFileSync(f);
            assert.equal(bytes.includes(first), false, f);
            assert.equal(bytes.includes(second), false, f);
          }
        }
      });
    });

    describe('domains', () => {
      it('add stores the name lower-case; exists and list see it', async () => {
        const d = await store.domains.add('Sip.Example.ORG');
        assert.equal(d.name, 'sip.example.org');
        assert.ok(await store.domains.exists('sip.example.org'));
        assert.ok(await store.domains.exists('SIP.example.org'));
        assert.ok((await store.domains.list()).some((x) => x.name === 'sip.example.org' && x.id === d.id));
      });

      it('list is ordered by name', async () => {
        const names = (await store.domains.list()).map((d) => d.name);
        assert.deepEqual(names, [...names].sort());
      });

      it('a duplicate domain is STORE_ERR_DUPLICATE', async () => {
        await rejectsWith(store.domains.add('sip.example.org'), 'STORE_ERR_DUPLICATE', /sip\.example\.org/);
      });

      it('a domain with subscribers cannot be removed (STORE_ERR_IN_USE)', async () => {
        await rejectsWith(store.domains.remove('example.com'), 'STORE_ERR_IN_USE', /example\.com/);
        assert.ok(await store.domains.exists('example.com'));
      });

      it('remove deletes an unused domain; an unknown one is STORE_ERR_NOT_FOUND', async () => {
        await store.domains.remove('sip.example.org');
        assert.equal(await store.domains.exists('sip.example.org'), false);
        await rejectsWith(store.domains.remove('sip.example.org'), 'STORE_ERR_NOT_FOUND');
      });
    });

    describe('locations', () => {
      const aor = 'sip:alice@loc.example.com';
      const now = Date.now();

      it('upsert stores a binding with every field, read back exactly', async () => {
        const full: Binding = binding({
          contact: 'sip:alice@[2001:db8::10]:50312;transport=ws;ob',
          instanceId: '<urn:uuid:00000000-0000-1000-8000-000A95A0E128>',
          regId: 1,
          cseq: 2_147_483_647,
          expiresAt: now + 3_600_000,
          q: 0.7,
          path: '<sip:edge1.example.com;lr;ob>,<sip:edge2.example.com;lr>',
          received: 'ws:[2001:db8::10]:50312',
          flowId: 'flow-Zm9vYmFy',
          // A wire string (one char per octet) as the SIP layer hands it over.
          userAgent: utf8ToWire('Softphone/2.0 (Jérôme)'),
          node: 'node-a',
          updatedAt: now,
        });
        await store.locations.upsert(full);
        const [b, ...rest] = await store.locations.listAor(aor, now);
        assert.equal(rest.length, 0);
        const { id, ...fields } = b!;
        assert.ok(Number.isInteger(id) && id > 0);
        assert.deepEqual(fields, full);
      });

      it('absent optional fields come back undefined and updatedAt defaults to now', async () => {
        const t0 = Date.now();
        await store.locations.upsert(binding({ aor: 'sip:min@loc.example.com' }));
        const [b] = await store.locations.listAor('sip:min@loc.example.com', t0);
        assert.ok(b !== undefined);
        for (const k of ['instanceId', 'regId', 'q', 'path', 'flowId', 'userAgent', 'node'] as const) assert.equal(b[k], undefined, k);
        assert.ok(b.updatedAt >= t0 && b.updatedAt <= Date.now());
      });

      it('upsertMany writes 1,200 bindings (more than one statement\'s worth) and replaces existing ones in place', async () => {
        const many = 'sip:many@loc.example.com';
        await store.locations.upsert(binding({ aor: many, contact: 'sip:d0@192.0.2.1', cseq: 1 }));
        const before = (await store.locations.listAor(many, now))[0]!;
        const rows = Array.from({ length: 1200 }, (_, i) => binding({ aor: many, contact: `sip:d${i}@192.0.2.1`, cseq: 2 }));
        await store.locations.upsertMany(rows);
        const after = await store.locations.listAor(many, now);
        assert.equal(after.length, 1200);
        assert.ok(after.every((b) => b.cseq === 2));
        assert.equal(after.find((b) => b.contact === 'sip:d0@192.0.2.1')!.id, before.id);
        assert.equal(await store.locations.removeAor(many), 1200);
      });

      it('upsert of the same (aor, contact) replaces the binding instead of adding one', async () => {
        const contact = 'sip:alice@192.0.2.20:5060';
        await store.locations.upsert(binding({ contact, cseq: 10, expiresAt: now + 60_000, node: 'node-a', q: 0.5 }));
        const before = (await store.locations.listAor(aor, now)).find((b) => b.contact === contact)!;
        await store.locations.upsert(binding({ contact, cseq: 11, expiresAt: now + 120_000, node: 'node-b' }));
        const matching = (await store.locations.listAor(aor, now)).filter((b) => b.contact === contact);
        assert.equal(matching.length, 1);
        assert.equal(matching[0]!.id, before.id);
        assert.equal(matching[0]!.cseq, 11);
        assert.equal(matching[0]!.expiresAt, now + 120_000);
        assert.equal(matching[0]!.node, 'node-b');
        assert.equal(matching[0]!.q, undefined);
      });

      it('listAor returns only bindings with expiresAt after now, in first-registration order', async () => {
        await store.locations.upsert(binding({ contact: 'sip:alice@192.0.2.30', expiresAt: now - 1 }));
        await store.locations.upsert(binding({ contact: 'sip:alice@192.0.2.31', expiresAt: now }));
        const live = await store.locations.listAor(aor, now);
        assert.deepEqual(live.map((b) => b.contact), ['sip:alice@[2001:db8::10]:50312;transport=ws;ob', 'sip:alice@192.0.2.20:5060']);
        assert.deepEqual((await store.locations.listAor(aor, now - 2)).length, 4);
        assert.deepEqual(await store.locations.listAor('sip:nobody@loc.example.com', now), []);
      });

      it('listAll returns every binding, expired ones too', async () => {
        const all = await store.locations.listAll();
        assert.equal(all.filter((b) => b.aor === aor).length, 4);
        assert.ok(all.some((b) => b.aor === 'sip:min@loc.example.com'));
      });

      it('purgeExpired deletes the bindings with expiresAt <= now and returns how many', async () => {
        assert.equal(await store.locations.purgeExpired(now), 2);
        assert.equal(await store.locations.purgeExpired(now), 0);
        assert.equal((await store.locations.listAll()).filter((b) => b.aor === aor).length, 2);
      });

      it('remove deletes one binding and says whether there was one', async () => {
        assert.equal(await store.locations.remove(aor, 'sip:alice@192.0.2.20:5060'), true);
        assert.equal(await store.locations.remove(aor, 'sip:alice@192.0.2.20:5060'), false);
      });

      it('removeAor deletes every binding of the AoR and returns how many', async () => {
        await store.locations.upsert(binding({ contact: 'sip:alice@192.0.2.40' }));
        assert.equal(await store.locations.removeAor(aor), 2);
        assert.deepEqual(await store.locations.listAor(aor, now), []);
        assert.equal(await store.locations.removeAor(aor), 0);
      });

      it('a binding that does not fit the columns is a TypeError', async () => {
        await assert.rejects(store.locations.upsert(binding({ q: 1.5 })), TypeError);
        await assert.rejects(store.locations.upsert(binding({ cseq: -1 })), TypeError);
        await assert.rejects(store.locations.upsert(binding({ cseq: 2 ** 31 })), TypeError);
        await assert.rejects(store.locations.upsert(binding({ contact: `sip:${'x'.repeat(600)}@example.com` })), TypeError);
        await assert.rejects(store.locations.upsert(binding({ callId: '' })), TypeError);
      });
    });

    routingSuite(() => store);

    tokenSuite(() => store);

    callSuite(() => store, () => db.url);
    refreshTokenSuite(() => store);
    messageSuite(() => store);
    presenceSuite(() => store);
    meetingSuite(() => store);
    participantSuite(() => store);
    moderationSuite(() => store);
    breakoutSuite(() => store);
    recordingSuite(() => store);
    placementSuite(() => store);

    describe('closing', () => {
      it('a closed store refuses calls with STORE_ERR_CLOSED, and closing twice is harmless', async () => {
        const other = await openStore({ url: db.url, logger: silentLogger() });
        await other.close();
        await other.close();
        await rejectsWith(other.subscribers.get('alice', 'example.com'), 'STORE_ERR_CLOSED');
        await rejectsWith(other.locations.listAll(), 'STORE_ERR_CLOSED');
      });

      it('down() of every migration, newest first, removes the schema', async () => {
        for (const m of [...migrations].reverse()) await m.down(store.knex);
        for (const t of TABLES) assert.equal(await store.knex.schema.hasTable(t), false, t);
      });
    });
  });
}
