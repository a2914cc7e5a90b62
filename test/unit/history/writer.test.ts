/**
 * The call history writer against a real SQLite store, through a target that can be switched to fail like
 * a lost database connection.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HistoryWriter, type CallSink, type HistoryOp, type HistoryTarget } from '../../../history/index.js';
import { openStore, StoreError, type CallRecord, type PersistedDialog, type SqlStore } from '../../../platform/store/index.js';
import { captureLogger } from '../../helpers/log-capture.js';

const T0 = 1_800_000_000_000;

function record(id: string, overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    id, callId: `${id}@pc33.example.com`,
    caller: { user: 'alice', domain: 'example.com', displayName: 'Alice Secretname', uri: 'sip:alice@example.com' },
    callee: { user: 'bob', domain: 'example.com', number: '5551234', uri: 'sip:5551234@example.com' },
    direction: 'user-user', disposition: 'answered', startedAt: T0, answeredAt: T0 + 1_000, endedAt: T0 + 11_000, duration: 11,
    billableSeconds: 10, finalCode: 200, hangupBy: 'callee', endCause: 'bye', mediaRelayed: false, ...overrides,
  };
}

function dialog(id: string): PersistedDialog {
  return { id, callId: `${id}@pc33.example.com`, owner: 0, data: '{"state":"early"}', updatedAt: T0 };
}

/** The store's repositories, applied in the order called (`applied`), failing like a lost connection while `down`. */
class SwitchableTarget implements HistoryTarget {
  down = false;
  readonly applied: string[] = [];
  readonly calls: HistoryTarget['calls'];
  readonly dialogs: HistoryTarget['dialogs'];

  constructor(store: SqlStore) {
    this.calls = { record: (r) => this.run(`record ${r.id}`, () => store.calls.record(r)) };
    this.dialogs = {
      save: (d) => this.run(`dialog ${d.id}`, () => store.dialogs.save(d)),
      remove: (id) => this.run(`forget ${id}`, () => store.dialogs.remove(id)),
    };
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.down) throw new StoreError('STORE_ERR_QUERY', 'recording a call failed: connect ECONNREFUSED 127.0.0.1:3306');
    const result = await fn();
    this.applied.push(what);
    return result;
  }
}

function label(op: HistoryOp): string {
  return op.op === 'record' ? `record ${op.record.id}` : op.op === 'dialog' ? `dialog ${op.dialog.id}` : `forget ${op.id}`;
}

/** A mix of every op kind, numbered from `from`. */
function ops(from: number, count: number): HistoryOp[] {
  return Array.from({ length: count }, (_, k): HistoryOp => {
    const i = from + k;
    if (i % 3 === 0) return { op: 'dialog', dialog: dialog(`d${i}`) };
    if (i % 3 === 1) return { op: 'forget', id: `d${i - 1}` };
    return { op: 'record', record: record(`r${i}`, { startedAt: T0 + i }) };
  });
}

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function spillLines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => label(JSON.parse(l) as HistoryOp));
}

describe('history writer', () => {
  let dir: string;
  let store: SqlStore;
  let target: SwitchableTarget;
  let spillFile: string;
  const writers: HistoryWriter[] = [];

  function writer(options: { queueLimit?: number; sinks?: CallSink[] } = {}) {
    const { logger, lines } = captureLogger();
    const w = new HistoryWriter({ target, spillFile, logger, retryMinMs: 2, retryMaxMs: 10, ...options });
    writers.push(w);
    const logged = (level: number) => lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === level);
    return { w, lines, logged };
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'softswitch-history-'));
    store = await openStore({ url: `sqlite:${join(dir, 'store.db')}`, logger: captureLogger().logger });
    target = new SwitchableTarget(store);
    // A folder that does not exist yet: the writer creates it 0700.
    spillFile = join(dir, 'spill', 'history.jsonl');
  });

  afterEach(async () => {
    for (const w of writers.splice(0)) await w.stop(1_000);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('push returns before anything is written; the ops are applied in the order pushed', async () => {
    const { w } = writer();
    await w.start();
    const pushed = ops(0, 30);
    for (const op of pushed) w.push(op);
    assert.deepEqual(target.applied, [], 'nothing written inside push');
    await w.flush(5_000);
    assert.deepEqual(target.applied, pushed.map(label));
    assert.deepEqual(w.stats, { queued: 0, spilled: 0, written: 30, failures: 0, storeUp: true });
    assert.equal((await store.calls.list({ limit: 500 })).calls.length, 10);
    assert.deepEqual(await store.dialogs.listOwned(0), []);
  });

  it('a store outage loses nothing: one warning, the same op tried again, one info line with the pending count when it is back', async () => {
    const { w, lines, logged } = writer();
    await w.start();
    target.down = true;
    const pushed = ops(0, 12);
    for (const op of pushed) w.push(op);
    await until('several failed tries', () => w.stats.failures >= 3);
    assert.equal(w.stats.storeUp, false);
    assert.equal(w.stats.written, 0);
    assert.equal(w.stats.queued, 12);
    target.down = false;
    await w.flush(5_000);
    assert.deepEqual(target.applied, pushed.map(label));
    assert.equal(w.stats.storeUp, true);
    const warnings = logged(40);
    assert.equal(warnings.length, 1, 'one warning per outage');
    assert.match(JSON.stringify(warnings[0]), /ECONNREFUSED/);
    const back = logged(30).filter((l) => /back/.test(l.msg));
    assert.equal(back.length, 1);
    assert.equal((back[0] as unknown as { pending: number }).pending, 11);
    assert.ok(lines.every((l) => !l.includes('Secretname') && !l.includes('5551234')), 'no record contents in the log');
  });

  it('past queueLimit the ops go to a 0600 spill file (folder 0700), every later op too, and are replayed in order once the store is back', async () => {
    const { w } = writer({ queueLimit: 5 });
    await w.start();
    target.down = true;
    const first = ops(0, 12);
    for (const op of first) w.push(op);
    assert.deepEqual({ queued: w.stats.queued, spilled: w.stats.spilled }, { queued: 5, spilled: 7 });
    assert.equal(statSync(spillFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'spill')).mode & 0o777, 0o700);
    assert.deepEqual(spillLines(spillFile), first.slice(5).map(label));
    await until('a failed try', () => w.stats.failures > 0);
    target.down = false;
    // Pushed while the spill is being replayed: behind it, in the file.
    const more = ops(12, 9);
    for (const op of more) w.push(op);
    await w.flush(5_000);
    assert.deepEqual(target.applied, [...first, ...more].map(label));
    assert.equal(existsSync(spillFile), false, 'the spill file is removed once written');
    assert.deepEqual({ queued: w.stats.queued, spilled: w.stats.spilled }, { queued: 0, spilled: 0 });
    // Back to the memory queue.
    w.push(ops(21, 1)[0]!);
    assert.equal(existsSync(spillFile), false);
    await w.flush(5_000);
    assert.equal(target.applied.length, 22);
  });

  it('stop() writes what the store did not take to the spill file, in order; ops pushed after stop go there too', async () => {
    const { w, logged } = writer({ queueLimit: 4 });
    await w.start();
    target.down = true;
    const pushed = ops(0, 7);
    for (const op of pushed) w.push(op);
    await until('a failed try', () => w.stats.failures > 0);
    await w.stop(30);
    const late = ops(7, 1)[0]!;
    w.push(late);
    assert.deepEqual(spillLines(spillFile), [...pushed, late].map(label));
    assert.equal(statSync(spillFile).mode & 0o777, 0o600);
    assert.ok(logged(40).some((l) => /spill file/.test(l.msg) && (l as unknown as { pending: number }).pending === 7));
    assert.deepEqual(target.applied, []);
  });

  it('an op still in flight when stop() gives up is spilled too, and its late end leaves the writer consistent', async () => {
    let release: () => void = () => {};
    const hanging: HistoryTarget = {
      calls: target.calls,
      dialogs: {
        save: (d) => new Promise<void>((resolve) => { release = resolve; }).then(() => target.dialogs.save(d)),
        remove: target.dialogs.remove,
      },
    };
    const w = new HistoryWriter({ target: hanging, spillFile, logger: captureLogger().logger, retryMinMs: 2, retryMaxMs: 10 });
    writers.push(w);
    await w.start();
    w.push({ op: 'dialog', dialog: dialog('slow') });
    w.push({ op: 'forget', id: 'slow' });
    await until('the first op in flight', () => target.applied.length === 0 && w.stats.queued === 2);
    await sleep(5);
    await w.stop(10);
    assert.deepEqual(spillLines(spillFile), ['dialog slow', 'forget slow']);
    release();
    await until('the late write', () => target.applied.length === 1);
    await sleep(5);
    assert.deepEqual(target.applied, ['dialog slow'], 'nothing after stop but the op in flight');
    assert.equal(w.stats.queued, 0);
    assert.equal(w.stats.spilled, 2);
  });

  it('start() replays the spill file of an earlier process before the ops pushed since', async () => {
    const before = writer({ queueLimit: 2 });
    await before.w.start();
    target.down = true;
    const leftover = ops(0, 6);
    for (const op of leftover) before.w.push(op);
    await before.w.stop(20);
    assert.equal(spillLines(spillFile).length, 6);

    target.down = false;
    const { w, logged } = writer();
    const early = ops(6, 2);
    for (const op of early) w.push(op);
    await w.start();
    const later = ops(8, 2);
    for (const op of later) w.push(op);
    await w.flush(5_000);
    assert.deepEqual(target.applied, [...leftover, ...early, ...later].map(label));
    assert.equal(existsSync(spillFile), false);
    assert.ok(logged(30).some((l) => /earlier process/.test(l.msg) && (l as unknown as { ops: number }).ops === 6));
  });

  it('ops pushed before start() wait for it, those past queueLimit in the spill file, and are written in order', async () => {
    const { w } = writer({ queueLimit: 2 });
    const pushed = ops(0, 5);
    for (const op of pushed) w.push(op);
    await sleep(20);
    assert.deepEqual(target.applied, []);
    assert.deepEqual({ queued: w.stats.queued, spilled: w.stats.spilled }, { queued: 2, spilled: 3 });
    await w.start();
    await w.flush(5_000);
    assert.deepEqual(target.applied, pushed.map(label));
    assert.equal(existsSync(spillFile), false);
  });

  it('a spill file cut short by a crash: the broken line is skipped with an error, the rest written, new ops not glued to it', async () => {
    const good: HistoryOp = { op: 'record', record: record('survivor') };
    mkdirSync(join(dir, 'spill'));
    writeFileSync(spillFile, `${JSON.stringify(good)}\n{"op":"record","record":{"id":"cut`, { mode: 0o644 });
    const { w, logged } = writer({ queueLimit: 1 });
    await w.start();
    assert.equal(statSync(spillFile).mode & 0o777, 0o600, 'tightened');
    w.push({ op: 'forget', id: 'after-crash' });
    await w.flush(5_000);
    assert.deepEqual(target.applied, ['record survivor', 'forget after-crash']);
    assert.equal(logged(50).filter((l) => /unreadable/.test(l.msg)).length, 1);
  });

  /** The switchable target plus the store's batch writes, counted, failing while the target is `down`. */
  function batching(): { target: HistoryTarget; batches: number[] } {
    const batches: number[] = [];
    return {
      batches,
      target: {
        calls: target.calls,
        dialogs: target.dialogs,
        historyWrites: {
          writeAll: async (writes) => {
            if (target.down) throw new StoreError('STORE_ERR_QUERY', 'writing the call history failed: connect ECONNREFUSED 127.0.0.1:3306');
            await store.historyWrites.writeAll(writes);
            batches.push(writes.length);
          },
        },
      },
    };
  }

  it('what queued up since the last write goes to the store in one transaction, in order, through an outage too', async () => {
    const { target: batched, batches } = batching();
    const w = new HistoryWriter({ target: batched, spillFile, logger: captureLogger().logger, retryMinMs: 2, retryMaxMs: 10 });
    writers.push(w);
    const pushed = ops(0, 300);
    for (const op of pushed) w.push(op);
    target.down = true;
    await w.start();
    await until('a failed try', () => w.stats.failures > 0);
    target.down = false;
    await w.flush(5_000);
    assert.deepEqual(batches, [300], 'one transaction for the 300 ops that were waiting');
    assert.equal(w.stats.written, 300);
    const { calls } = await store.calls.list({ limit: 500 });
    assert.deepEqual(calls.map((c) => c.id).reverse(), pushed.filter((o) => o.op === 'record').map((o) => (o.op === 'record' ? o.record.id : '')));
    // Every dialog saved was forgotten by the next op: none is left.
    assert.deepEqual(await store.dialogs.listOwned(0), []);
  });

  it('a batch with an op the store refuses is written one op at a time: only the refused one is skipped', async () => {
    const { target: batched } = batching();
    const w = new HistoryWriter({ target: batched, spillFile, logger: captureLogger().logger, retryMinMs: 2, retryMaxMs: 10 });
    writers.push(w);
    w.push({ op: 'record', record: record('ok-1') });
    w.push({ op: 'record', record: record('bad-values', { disposition: 'lost' as never }) });
    w.push({ op: 'record', record: record('ok-2', { startedAt: T0 + 1 }) });
    await w.start();
    await w.flush(5_000);
    const { calls } = await store.calls.list({ limit: 10 });
    assert.deepEqual(calls.map((c) => c.id), ['ok-2', 'ok-1']);
    assert.equal(w.stats.written, 2);
  });

  it('a record id pushed twice is written once; the first one stays', async () => {
    const { w } = writer();
    await w.start();
    w.push({ op: 'record', record: record('twice', { disposition: 'answered' }) });
    w.push({ op: 'record', record: record('twice', { disposition: 'busy', finalCode: 486 }) });
    await w.flush(5_000);
    assert.equal(w.stats.written, 2);
    const { calls } = await store.calls.list({ limit: 10 });
    assert.deepEqual(calls.map((c) => [c.id, c.disposition]), [['twice', 'answered']]);
  });

  it('an op the store refuses (bad values, a constraint) is logged at error with its id and skipped; the queue goes on', async () => {
    const { w, lines, logged } = writer();
    const refusing: HistoryTarget = {
      calls: target.calls,
      dialogs: {
        save: async (d) => {
          if (d.id === 'constraint') throw new StoreError('STORE_ERR_INVALID', 'saving a dialog failed: SQLITE_CONSTRAINT_NOTNULL: NOT NULL constraint failed');
          return target.dialogs.save(d);
        },
        remove: target.dialogs.remove,
      },
    };
    const w2 = new HistoryWriter({ target: refusing, spillFile: `${spillFile}.2`, logger: captureLogger().logger, retryMinMs: 2, retryMaxMs: 10 });
    writers.push(w2);
    await w.start();
    await w2.start();
    w.push({ op: 'record', record: record('ok-1') });
    w.push({ op: 'record', record: record('bad-values', { disposition: 'lost' as never }) });
    w.push({ op: 'record', record: record('ok-2') });
    w2.push({ op: 'dialog', dialog: dialog('constraint') });
    w2.push({ op: 'dialog', dialog: dialog('fine') });
    await w.flush(5_000);
    await w2.flush(5_000);
    assert.deepEqual(target.applied, ['record ok-1', 'record ok-2', 'dialog fine']);
    const errors = logged(50);
    assert.equal(errors.length, 1);
    assert.match(JSON.stringify(errors[0]), /"id":"bad-values"/);
    assert.ok(lines.every((l) => !l.includes('Secretname')));
    assert.equal(w2.stats.failures, 1);
    assert.equal(w2.stats.written, 1);
  });

  it('extra call sinks get every record after the store; a failing sink holds the op until it takes it', async () => {
    const got: string[] = [];
    let failing = true;
    const sink: CallSink = {
      name: 'archive',
      record: async (r) => {
        if (failing) throw new Error('archive unreachable');
        got.push(r.id);
        return true;
      },
    };
    const { w, logged } = writer({ sinks: [sink] });
    await w.start();
    w.push({ op: 'record', record: record('s-1') });
    w.push({ op: 'record', record: record('s-2') });
    await until('a failed try', () => w.stats.failures > 0);
    assert.match(JSON.stringify(logged(40)[0]), /call sink archive: archive unreachable/);
    failing = false;
    await w.flush(5_000);
    assert.deepEqual(got, ['s-1', 's-2']);
    assert.equal((await store.calls.list({ limit: 10 })).calls.length, 2);
  });
});
