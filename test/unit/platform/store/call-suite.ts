/**
 * The call history and persisted dialog repositories' part of the shared store suite (repository-suite.ts
 * runs it on every target).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type CallRecord, type CallQuery, type PersistedDialog, type SqlStore } from '../../../../platform/store/index.js';
import { isInvalidData } from '../../../../platform/store/sql-context.js';

const T0 = 1_800_000_000_000;

function call(id: string, overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    id,
    callId: `${id}@pc33.example.com`,
    caller: { user: 'alice', domain: 'example.com', displayName: 'Alice', uri: 'sip:alice@example.com' },
    callee: { user: 'bob', domain: 'example.com', number: '1002', uri: 'sip:1002@example.com' },
    direction: 'user-user',
    disposition: 'answered',
    startedAt: T0,
    answeredAt: T0 + 4_000,
    endedAt: T0 + 64_500,
    duration: 64,
    billableSeconds: 61,
    finalCode: 200,
    finalReason: 'OK',
    hangupBy: 'caller',
    endCause: 'bye',
    answeredDevice: 'sip:bob@192.0.2.20:5060;transport=tcp',
    answeredAor: 'bob@example.com',
    mediaRelayed: false,
    ...overrides,
  };
}

function dialog(id: string, owner: number, data = '{"state":"confirmed"}'): PersistedDialog {
  return { id, callId: `${id}@pc33.example.com`, owner, data, updatedAt: T0 };
}

/**
 * A second process with its own store on the same database: it opens the store, says "ready", and records
 * what it is sent at once, answering with record()'s results.
 */
async function recorderProcess(url: string): Promise<{ record(records: CallRecord[]): Promise<boolean[]>; close(): Promise<void> }> {
  const storeModule = new URL('../../../../platform/store/index.js', import.meta.url).href;
  const logModule = new URL('../../../../src/log/index.js', import.meta.url).href;
  const script = `
    const { openStore } = await import(${JSON.stringify(storeModule)});
    const { silentLogger } = await import(${JSON.stringify(logModule)});
    const store = await openStore({ url: ${JSON.stringify(url)}, logger: silentLogger() });
    process.stdout.write('ready\\n');
    const { createInterface } = await import('node:readline');
    for await (const line of createInterface({ input: process.stdin })) {
      const results = await Promise.all(JSON.parse(line).map((r) => store.calls.record(r)));
      process.stdout.write(JSON.stringify(results) + '\\n');
    }
    await store.close();
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const line = await lines.next();
    if (line.done === true) throw new Error('the recorder process exited');
    return line.value;
  };
  assert.equal(await next(), 'ready');
  return {
    async record(records) {
      child.stdin.write(`${JSON.stringify(records)}\n`);
      return JSON.parse(await next()) as boolean[];
    },
    close() {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin.end();
      return exited;
    },
  };
}

async function ids(store: SqlStore, query: Omit<CallQuery, 'limit'>): Promise<string[]> {
  return (await store.calls.list({ limit: 500, ...query })).calls.map((c) => c.id);
}

export function callSuite(getStore: () => SqlStore, getUrl: () => string): void {
  describe('call history', () => {
    beforeEach(async () => {
      await getStore().knex('calls').del();
      await getStore().knex('dialogs').del();
    });

    it('record writes the call once and get reads it back as written; a second record of the id returns false and keeps the first', async () => {
      const store = getStore();
      const first = call('c-1', { caller: { number: '+15551234567', displayName: 'PSTN', uri: 'sip:+15551234567@trunk.example.net' }, direction: 'pstn-user', mediaRelayed: true, mediaNode: '127.0.0.1:2223', backend: 'sip:fs1.example.net' });
      assert.equal(await store.calls.record(first), true);
      assert.deepEqual(await store.calls.get('c-1'), first);
      assert.equal(await store.calls.record(call('c-1', { disposition: 'busy', finalCode: 486 })), false);
      assert.deepEqual(await store.calls.get('c-1'), first);
      assert.equal((await store.knex('calls').count({ n: '*' }))[0]!.n, 1);
    });

    it('a call that was not answered keeps answeredAt, hangupBy and the other optional fields absent', async () => {
      const store = getStore();
      const missed: CallRecord = {
        id: 'c-missed', callId: 'm@example.com', caller: { uri: 'sip:anonymous@anonymous.invalid' }, callee: { user: 'bob', domain: 'Example.COM', uri: 'sip:bob@example.com' },
        direction: 'user-user', disposition: 'no-answer', startedAt: T0, endedAt: T0 + 30_000, duration: 30, billableSeconds: 0, finalCode: 480,
        endCause: 'failure', mediaRelayed: false,
      };
      assert.equal(await store.calls.record(missed), true);
      // Domains compare case-insensitively: stored lower-case, as in the domains table.
      assert.deepEqual(await store.calls.get('c-missed'), { ...missed, callee: { ...missed.callee, domain: 'example.com' } });
    });

    it('get of an unknown id is undefined', async () => {
      assert.equal(await getStore().calls.get('no-such-call'), undefined);
    });

    it('record removes the persisted dialog of the same id, in the same transaction, and leaves the others', async () => {
      const store = getStore();
      await store.dialogs.save(dialog('c-2', 0));
      await store.dialogs.save(dialog('c-3', 0));
      assert.equal(await store.calls.record(call('c-2')), true);
      assert.deepEqual((await store.dialogs.listOwned(0)).map((d) => d.id), ['c-3']);
      // A dialog saved again (a spill replayed after a crash) goes with the second record too.
      await store.dialogs.save(dialog('c-2', 0));
      assert.equal(await store.calls.record(call('c-2')), false);
      assert.deepEqual((await store.dialogs.listOwned(0)).map((d) => d.id), ['c-3']);
    });

    it('the same id recorded at once by this process (twice) and by another process gives exactly one row and no error', async () => {
      const store = getStore();
      const raceIds = [0, 1, 2, 3, 4].map((i) => `race-${i}`);
      for (const id of raceIds) await store.dialogs.save(dialog(id, 1));
      const other = await recorderProcess(getUrl());
      try {
        const records = raceIds.map((id) => call(id, { finalReason: `writer ${process.pid}` }));
        const [theirs, ...ours] = await Promise.all([other.record(records), ...[0, 1].map(() => Promise.all(records.map((r) => store.calls.record(r))))]);
        for (const [i, id] of raceIds.entries()) {
          const wins = [theirs[i], ...ours.map((o) => o[i])].filter((won) => won === true).length;
          assert.equal(wins, 1, `${id}: exactly one writer wrote it`);
          assert.equal((await store.knex('calls').where({ id }).count({ n: '*' }))[0]!.n, 1);
        }
        assert.deepEqual(await store.dialogs.listOwned(1), []);
      } finally {
        await other.close();
      }
    });

    it('list filters by user (caller or callee), number (caller or callee), direction, disposition, since and until', async () => {
      const store = getStore();
      const rows = [
        call('u1', { startedAt: T0 + 1 }),
        call('u2', { startedAt: T0 + 2, caller: { user: 'bob', domain: 'example.com', uri: 'sip:bob@example.com' }, callee: { user: 'carol', domain: 'example.com', uri: 'sip:carol@example.com' }, disposition: 'busy', finalCode: 486 }),
        call('u3', { startedAt: T0 + 3, caller: { user: 'carol', domain: 'example.com', uri: 'sip:carol@example.com' }, callee: { number: '+15550001111', uri: 'sip:+15550001111@trunk.example.net' }, direction: 'user-pstn' }),
        call('u4', { startedAt: T0 + 4, caller: { number: '+15550001111', uri: 'sip:+15550001111@trunk.example.net' }, callee: { user: 'alice', domain: 'example.com', uri: 'sip:alice@example.com' }, direction: 'pstn-user', disposition: 'cancelled', finalCode: 487 }),
        call('u5', { startedAt: T0 + 5, caller: { user: 'alice', domain: 'other.example.org', uri: 'sip:alice@other.example.org' }, callee: { user: 'bob', domain: 'other.example.org', uri: 'sip:bob@other.example.org' } }),
      ];
      for (const r of rows) assert.equal(await store.calls.record(r), true);
      assert.deepEqual(await ids(store, {}), ['u5', 'u4', 'u3', 'u2', 'u1']);
      assert.deepEqual(await ids(store, { user: 'alice@example.com' }), ['u4', 'u1']);
      assert.deepEqual(await ids(store, { user: 'alice@EXAMPLE.com' }), ['u4', 'u1'], 'the domain of the filter is case-insensitive');
      assert.deepEqual(await ids(store, { user: 'bob@example.com' }), ['u2', 'u1']);
      assert.deepEqual(await ids(store, { user: 'alice@other.example.org' }), ['u5']);
      assert.deepEqual(await ids(store, { user: 'dave@example.com' }), []);
      assert.deepEqual(await ids(store, { number: '+15550001111' }), ['u4', 'u3']);
      assert.deepEqual(await ids(store, { number: '1002' }), ['u1']);
      assert.deepEqual(await ids(store, { direction: 'user-pstn' }), ['u3']);
      assert.deepEqual(await ids(store, { direction: 'pstn-user' }), ['u4']);
      assert.deepEqual(await ids(store, { disposition: 'busy' }), ['u2']);
      assert.deepEqual(await ids(store, { disposition: 'answered' }), ['u5', 'u3', 'u1']);
      assert.deepEqual(await ids(store, { since: T0 + 3 }), ['u5', 'u4', 'u3']);
      assert.deepEqual(await ids(store, { until: T0 + 3 }), ['u2', 'u1']);
      assert.deepEqual(await ids(store, { since: T0 + 2, until: T0 + 5, user: 'alice@example.com' }), ['u4']);
      assert.deepEqual(await ids(store, { user: 'bob@example.com', disposition: 'answered', number: '1002', direction: 'user-user' }), ['u1']);
    });

    it('pages of equal startedAt are ordered by id, newest first, and three pages give every row exactly once', async () => {
      const store = getStore();
      const all = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id, i) => call(`p-${id}`, { startedAt: i < 6 ? T0 : T0 + 10 }));
      for (const r of [...all].reverse()) await store.calls.record(r);
      const first = await store.calls.list({ limit: 3 });
      assert.deepEqual(first.calls.map((c) => c.id), ['p-h', 'p-g', 'p-f']);
      assert.ok(first.next !== undefined);
      const second = await store.calls.list({ limit: 3, cursor: first.next });
      assert.deepEqual(second.calls.map((c) => c.id), ['p-e', 'p-d', 'p-c']);
      const third = await store.calls.list({ limit: 3, cursor: second.next });
      assert.deepEqual(third.calls.map((c) => c.id), ['p-b', 'p-a']);
      assert.equal(third.next, undefined);
      assert.equal('next' in third, false, 'no next key on the last page');
      // A page that ends exactly on the last row has no next either.
      const exact = await store.calls.list({ limit: 2, cursor: second.next });
      assert.equal(exact.next, undefined);
      // The cursor keeps the filters' order: a user's calls page the same way.
      const byUser = await store.calls.list({ limit: 5, user: 'alice@example.com' });
      const rest = await store.calls.list({ limit: 5, user: 'alice@example.com', cursor: byUser.next });
      assert.deepEqual([...byUser.calls, ...rest.calls].map((c) => c.id), all.map((c) => c.id).reverse());
    });

    it('a cursor that list did not hand out is a TypeError; a limit outside 1..500 a RangeError, a fractional one a TypeError', async () => {
      const store = getStore();
      const bad = ['not base64!', '', Buffer.from('x:y').toString('base64url'), Buffer.from(`${T0}`).toString('base64url'),
        Buffer.from(`${T0}:ab`).toString('base64'), Buffer.from(`0${T0}:a`).toString('base64url'), Buffer.from(`${T0}:${'x'.repeat(65)}`).toString('base64url')];
      for (const cursor of bad) await assert.rejects(store.calls.list({ limit: 10, cursor }), { name: 'TypeError', message: /cursor/ }, cursor);
      await assert.rejects(store.calls.list({ limit: 0 }), RangeError);
      await assert.rejects(store.calls.list({ limit: 501 }), RangeError);
      await assert.rejects(store.calls.list({ limit: 1.5 }), TypeError);
      await assert.rejects(store.calls.list({ limit: 10, user: 'no-domain' }), TypeError);
      await assert.rejects(store.calls.list({ limit: 10, direction: 'sideways' as never }), TypeError);
      assert.deepEqual(await store.calls.list({ limit: 500 }), { calls: [] });
    });

    it('writeAll applies dialog saves, forgets and records in order in one transaction; a record already there stays as it was', async () => {
      const store = getStore();
      await store.calls.record(call('kept'));
      await store.historyWrites.writeAll([
        { op: 'dialog', dialog: dialog('a', 0) },
        { op: 'dialog', dialog: dialog('b', 1) },
        { op: 'record', record: call('a', { startedAt: call('a').startedAt + 1 }) },
        { op: 'dialog', dialog: dialog('c', 0) },
        { op: 'forget', id: 'c' },
        { op: 'record', record: call('kept', { disposition: 'busy', finalCode: 486 }) },
      ]);
      assert.deepEqual((await store.calls.list({ limit: 10 })).calls.map((c) => [c.id, c.disposition]), [['a', 'answered'], ['kept', 'answered']]);
      assert.deepEqual(await store.dialogs.listOwned(0), [], 'a went with its record, c was forgotten');
      assert.deepEqual((await store.dialogs.listOwned(1)).map((d) => d.id), ['b']);
    });

    it('writeAll with one value that does not fit is a TypeError and writes none of the batch', async () => {
      const store = getStore();
      await assert.rejects(store.historyWrites.writeAll([
        { op: 'dialog', dialog: dialog('d', 0) },
        { op: 'record', record: call('bad', { disposition: 'lost' as never }) },
      ]), TypeError);
      assert.deepEqual(await store.dialogs.listOwned(0), []);
    });

    it('a record that does not fit the columns is a TypeError and writes nothing', async () => {
      const store = getStore();
      await store.dialogs.save(dialog('bad', 0));
      for (const r of [call(''), call('x'.repeat(65)), call('bad', { disposition: 'lost' as never }), call('bad', { startedAt: -1 }),
        call('bad', { finalCode: 99 }), call('bad', { caller: { uri: '' } }), call('bad', { mediaRelayed: 'yes' as never })]) {
        await assert.rejects(store.calls.record(r), TypeError);
      }
      assert.deepEqual((await store.dialogs.listOwned(0)).map((d) => d.id), ['bad']);
      assert.equal(await store.calls.get('bad'), undefined);
    });

    it('isInvalidData tells a constraint violation of the driver from other failures', async () => {
      const store = getStore();
      const refusal = await store.knex('calls').insert({ id: 'only-an-id' }).then(() => undefined, (err: unknown) => err);
      assert.ok(refusal !== undefined && isInvalidData(refusal), String(refusal));
      const broken = await store.knex.raw('select * from no_such_table').then(() => undefined, (err: unknown) => err);
      assert.ok(broken !== undefined && !isInvalidData(broken), String(broken));
    });
  });

  describe('persisted dialogs', () => {
    it('save inserts or replaces by id, listOwned gives one worker\'s dialogs by id, remove deletes', async () => {
      const store = getStore();
      await store.dialogs.save(dialog('d-2', 1));
      await store.dialogs.save(dialog('d-1', 1));
      await store.dialogs.save(dialog('d-3', 2));
      const big = JSON.stringify({ sdp: 'v=0\r\n'.repeat(20_000) });
      await store.dialogs.save({ ...dialog('d-1', 1, big), updatedAt: T0 + 5 });
      const owned = await store.dialogs.listOwned(1);
      assert.deepEqual(owned, [{ ...dialog('d-1', 1, big), updatedAt: T0 + 5 }, dialog('d-2', 1)]);
      // A dialog taken over by another worker moves with the upsert.
      await store.dialogs.save(dialog('d-2', 2));
      assert.deepEqual((await store.dialogs.listOwned(2)).map((d) => d.id), ['d-2', 'd-3']);
      await store.dialogs.remove('d-2');
      await store.dialogs.remove('d-unknown');
      assert.deepEqual((await store.dialogs.listOwned(2)).map((d) => d.id), ['d-3']);
      assert.deepEqual(await store.dialogs.listOwned(7), []);
      await assert.rejects(store.dialogs.save(dialog('d-4', -1)), TypeError);
    });
  });
}
