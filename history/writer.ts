/**
 * The history writer: takes the dialog tracker's writes (persisted dialogs, call records) off the SIP hot
 * path. push() only appends to a memory queue; one loop applies the ops to the store in order, one at a
 * time, and waits out a store outage by trying the same op again with exponential backoff. When the queue
 * is full, ops go to a spill file on disk, and every op after them too until the file is read back, so
 * their order is kept; the file outlives a crash and the next start() replays it. Nothing is dropped
 * without an error line.
 *
 * Telling a bad op from an outage: the repositories check every value before any SQL runs and throw
 * TypeError (or RangeError) for what cannot be stored, and SqlContext turns a driver's refusal of the
 * values (constraint or type violation, platform/store isInvalidData) into StoreError STORE_ERR_INVALID.
 * Those fail the same way however often they are tried: the op is logged at error with its id and skipped.
 * Every other failure (connection lost or refused, pool timeout, lock wait, read-only server, disk full,
 * a closed store) may pass, so the op is tried again until it is written or stop() spills it.
 *
 * Replaying a spill written before a crash may apply ops that were applied already: records are
 * idempotent, and a record removes the persisted dialog even when it existed, so the ops replayed in order
 * leave the same rows as the first time.
 */
import { type CallRecord, StoreError } from '../platform/store/index.js';
import { categoryLogger, type Logger } from '../src/log/index.js';
import { SpillFile } from './spill-file.js';
import type { CallSink, HistoryOp, HistoryStats, HistoryTarget, HistoryWriterOptions } from './types.js';

const DEFAULT_QUEUE_LIMIT = 10_000;
const DEFAULT_RETRY_MIN_MS = 250;
const DEFAULT_RETRY_MAX_MS = 5_000;
/** Ops taken back from the spill file into memory at a time. */
const SPILL_BATCH = 1_000;
/** Ops written in one transaction at most (when the target takes batches: target.historyWrites). */
const BATCH_MAX = 500;
/**
 * With batches, a write waits this long for more ops to join it: at 500 calls/s a commit per 100 ms instead
 * of one per call (a commit costs more than a call's SIP work on SQLite); a record reaches the store this
 * much later.
 */
const DEFAULT_LINGER_MS = 100;
/** Consumed queue entries dropped from the front of the array once there are this many. */
const COMPACT_AFTER = 1_024;

/** The id an op is about, for the log (never its contents). */
function idOf(op: HistoryOp): string {
  switch (op.op) {
    case 'dialog': return op.dialog.id;
    case 'forget': return op.id;
    case 'record': return op.record.id;
  }
}

/** A failure that trying again cannot cure (see the module comment). */
function isRefusal(err: unknown): boolean {
  return err instanceof TypeError || err instanceof RangeError || (err instanceof StoreError && err.code === 'STORE_ERR_INVALID');
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class HistoryWriter {
  private readonly target: HistoryTarget;
  private readonly sinks: readonly CallSink[];
  private readonly log: Logger;
  private readonly spill: SpillFile;
  private readonly queueLimit: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly lingerMs: number;
  /** The memory queue: entries before `head` are done. */
  private queue: HistoryOp[] = [];
  private head = 0;
  /** Lines found in the spill file of an earlier process. */
  private leftover = 0;
  /** From an overflow (or a leftover file) until the file is read back: every new op goes to the file. */
  private spilling: boolean;
  private started = false;
  /** After stop(): the loop lets go, and ops pushed from then on go to the spill file. */
  private halted = false;
  private running = false;
  private written = 0;
  private failures = 0;
  private storeUp = true;
  private downSince = 0;
  /** Ends the current backoff wait early (stop). */
  private wake: (() => void) | undefined;
  private readonly idleWaiters = new Set<() => void>();

  constructor(opts: HistoryWriterOptions) {
    this.target = opts.target;
    this.sinks = opts.sinks ?? [];
    this.log = categoryLogger(opts.logger, 'history');
    this.spill = new SpillFile(opts.spillFile);
    this.queueLimit = opts.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    this.retryMinMs = opts.retryMinMs ?? DEFAULT_RETRY_MIN_MS;
    this.retryMaxMs = Math.max(this.retryMinMs, opts.retryMaxMs ?? DEFAULT_RETRY_MAX_MS);
    this.lingerMs = opts.lingerMs ?? DEFAULT_LINGER_MS;
    if (!Number.isInteger(this.queueLimit) || this.queueLimit < 1) throw new RangeError('queueLimit must be a positive integer');
    // Taken up at once, so that an op pushed even before start() goes behind the leftover, in the file.
    try {
      this.leftover = this.spill.adopt();
    } catch (err) {
      this.log.error({ err: reasonOf(err), file: this.spill.path }, 'cannot read the call history spill file of an earlier process');
    }
    this.spilling = this.leftover > 0;
  }

  get stats(): HistoryStats {
    return { queued: this.queue.length - this.head, spilled: this.spill.pending, written: this.written, failures: this.failures, storeUp: this.storeUp };
  }

  /** Queues the op; never throws, never waits. While the queue is full or a spill is pending, one write(2) to the spill file. */
  push(op: HistoryOp): void {
    if (!this.halted && !this.spilling) {
      if (this.queue.length - this.head < this.queueLimit) {
        this.queue.push(op);
        this.kick();
        return;
      }
      this.spilling = true;
      this.log.warn({ queueLimit: this.queueLimit, file: this.spill.path }, 'call history queue full: ops go to the spill file until the store has taken them');
    }
    this.toSpill([op]);
    this.kick();
  }

  /**
   * Starts the loop. A spill file left by an earlier process (taken up by the constructor) is written
   * first, before every op pushed to this writer. Resolves without waiting for the store; flush() waits.
   */
  async start(): Promise<void> {
    if (this.started || this.halted) return;
    if (this.leftover > 0) this.log.info({ ops: this.leftover, file: this.spill.path }, 'replaying the call history spill file of an earlier process');
    this.started = true;
    this.kick();
  }

  /** Resolves once every op pushed so far is written (memory and spill file empty), or after timeoutMs. */
  flush(timeoutMs: number): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  /** flush(), then lets go: what is not written by then is in the spill file for the next start(). */
  async stop(timeoutMs: number): Promise<void> {
    if (this.halted) return;
    await this.flush(timeoutMs);
    this.halted = true;
    this.wake?.();
    const queued = this.takeQueue();
    if (queued.length > 0 || this.spill.unread) {
      try {
        this.spill.rewrite(queued);
        this.log.warn({ pending: this.spill.pending, file: this.spill.path }, 'call history not all written at stop: the rest waits in the spill file for the next start');
      } catch (err) {
        this.failures += queued.length;
        this.log.error({ err: reasonOf(err), lost: queued.length, file: this.spill.path }, 'cannot write the call history spill file at stop: call history lost');
      }
    }
    this.spill.close();
  }

  private idle(): boolean {
    return !this.running && this.queue.length === this.head && !this.spilling;
  }

  private takeQueue(): HistoryOp[] {
    const ops = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    return ops;
  }

  private toSpill(ops: HistoryOp[]): void {
    try {
      this.spill.append(ops);
    } catch (err) {
      this.failures += ops.length;
      this.log.error({ err: reasonOf(err), file: this.spill.path, ops: ops.map((op) => ({ op: op.op, id: idOf(op) })) }, 'cannot write the call history spill file: ops lost');
    }
  }

  /** Starts the loop on a later turn of the event loop: push() returns before any SQL is built. */
  private kick(): void {
    if (this.running || !this.started || this.halted) return;
    this.running = true;
    setImmediate(() => {
      this.drain().catch((err: unknown) => this.log.error({ err: reasonOf(err) }, 'call history writer loop failed'));
    });
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        const op = await this.next();
        if (op === undefined || this.halted) break;
        // What queued up since the last write goes in one transaction (a commit per op costs more than a call).
        const batching = this.target.historyWrites !== undefined;
        if (batching && this.lingerMs > 0 && this.queue.length - this.head < BATCH_MAX) {
          await this.pause(this.lingerMs);
          if (this.halted) break;
        }
        const batch = batching ? this.queue.slice(this.head, this.head + BATCH_MAX) : [];
        // After stop() the queue is in the spill file: an op that finished late is in there too (written twice, harmless).
        const done = batch.length > 1 ? await this.applyBatchUntilDone(batch) : (await this.applyUntilDone(op)) ? 1 : 0;
        if (done === 0 || this.halted) break;
        this.head += done;
        if (this.head >= COMPACT_AFTER && this.head * 2 >= this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
      }
    } finally {
      // Synchronous with the last check of next(): an op pushed after it starts a new loop.
      this.running = false;
      if (this.idle()) for (const done of [...this.idleWaiters]) done();
    }
  }

  /** The op at the head of the queue, refilled from the spill file when the queue is empty. */
  private async next(): Promise<HistoryOp | undefined> {
    while (this.queue.length === this.head && this.spilling && !this.halted) {
      if (!this.spill.unread) {
        // Everything spilled is written: back to the memory queue.
        this.spill.remove();
        this.spilling = false;
        this.log.info({ file: this.spill.path }, 'call history spill file written and removed');
        break;
      }
      try {
        const { ops, unreadable } = await this.spill.read(Math.min(this.queueLimit, SPILL_BATCH));
        if (unreadable > 0) {
          this.failures += unreadable;
          this.log.error({ lines: unreadable, file: this.spill.path }, 'unreadable lines in the call history spill file skipped');
        }
        if (!this.halted) this.queue.push(...ops);
      } catch (err) {
        this.failures++;
        this.log.error({ err: reasonOf(err), file: this.spill.path }, 'cannot read the call history spill file; trying again');
        await this.pause(this.retryMaxMs);
      }
    }
    return this.queue.length > this.head ? this.queue[this.head] : undefined;
  }

  /** Applies the op, trying again through an outage; false when stop() let go first. */
  private async applyUntilDone(op: HistoryOp): Promise<boolean> {
    const outcome = await this.untilDone(() => this.apply(op), 1);
    if (outcome.refused !== undefined) {
      this.log.error({ op: op.op, id: idOf(op), err: reasonOf(outcome.refused) }, 'call history op refused by the store: skipped');
      return true;
    }
    return outcome.written;
  }

  /**
   * Applies the ops in one transaction, trying again through an outage; how many are done (0 when stop()
   * let go first). When the store refuses one of them, they are applied one at a time, so that only the
   * refused one is skipped.
   */
  private async applyBatchUntilDone(batch: readonly HistoryOp[]): Promise<number> {
    const outcome = await this.untilDone(async () => {
      await this.target.historyWrites!.writeAll(batch);
      for (const op of batch) if (op.op === 'record') await this.toSinks(op.record);
    }, batch.length);
    if (outcome.written) return batch.length;
    if (outcome.refused === undefined) return 0;
    for (let i = 0; i < batch.length; i++) if (!(await this.applyUntilDone(batch[i]!)) || this.halted) return i;
    return batch.length;
  }

  /** Runs `attempt` until it succeeds, the store refuses it for good, or stop() lets go. */
  private async untilDone(attempt: () => Promise<void>, ops: number): Promise<{ written: boolean; refused?: unknown }> {
    for (let delay = this.retryMinMs; ; delay = Math.min(delay * 2, this.retryMaxMs)) {
      try {
        await attempt();
        this.written += ops;
        if (!this.storeUp) {
          this.storeUp = true;
          const { queued, spilled } = this.stats;
          this.log.info({ pending: queued + spilled - ops, downMs: Date.now() - this.downSince }, 'call history store back: writing the pending ops');
        }
        return { written: true };
      } catch (err) {
        if (this.halted) return { written: false };
        this.failures++;
        if (isRefusal(err)) return { written: false, refused: err };
        if (this.storeUp) {
          this.storeUp = false;
          this.downSince = Date.now();
          const { queued, spilled } = this.stats;
          this.log.warn({ err: reasonOf(err), pending: queued + spilled }, 'call history store unavailable: holding the ops and trying again');
        }
        await this.pause(delay);
        if (this.halted) return { written: false };
      }
    }
  }

  private async apply(op: HistoryOp): Promise<void> {
    switch (op.op) {
      case 'dialog':
        await this.target.dialogs.save(op.dialog);
        return;
      case 'forget':
        await this.target.dialogs.remove(op.id);
        return;
      case 'record':
        await this.target.calls.record(op.record);
        await this.toSinks(op.record);
    }
  }

  private async toSinks(record: CallRecord): Promise<void> {
    for (const sink of this.sinks) {
      try {
        await sink.record(record);
      } catch (err) {
        if (err instanceof Error) err.message = `call sink ${sink.name}: ${err.message}`;
        throw err;
      }
    }
  }

  /** Waits `ms`, or less when stop() comes. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
