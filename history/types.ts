/**
 * The call history writer's public types. The dialog tracker hands it HistoryOps; it applies them to the
 * store (and any extra CallSink) off the SIP hot path.
 */
import type { CallRecord, CallRepository, DialogRepository, HistoryWrite, HistoryWriteRepository } from '../platform/store/index.js';
import type { Logger } from '../src/log/index.js';

/**
 * One write, applied in the order pushed: `dialog` store.dialogs.save, `forget` store.dialogs.remove,
 * `record` store.calls.record (idempotent).
 */
export type HistoryOp = HistoryWrite;

/**
 * What the writer writes to: the store's call and dialog repositories (or a wrapper of them), and, when
 * given, the store's batch writes (several ops in one transaction).
 */
export interface HistoryTarget {
  calls: Pick<CallRepository, 'record'>;
  dialogs: Pick<DialogRepository, 'save' | 'remove'>;
  historyWrites?: HistoryWriteRepository;
}

/**
 * A further destination of call records (e.g. MongoDB), written after the store, with the store's contract:
 * idempotent by record id (true when written, false when it had the id already). It refuses a record for
 * good with a TypeError, a RangeError or a StoreError STORE_ERR_INVALID (the record is then skipped); any
 * other failure is taken as an outage and the record is tried again.
 */
export interface CallSink {
  readonly name: string;
  record(record: CallRecord): Promise<boolean>;
}

export interface HistoryWriterOptions {
  target: HistoryTarget;
  /** Extra destinations of the records, each written after the target. */
  sinks?: readonly CallSink[];
  /**
   * Where ops go while the memory queue is full (JSON lines, 0600, its folder created 0700). One file per
   * process: each worker of a cluster needs its own.
   */
  spillFile: string;
  logger: Logger;
  /** Ops held in memory before they go to the spill file; default 10,000. */
  queueLimit?: number;
  /** First wait before a failed op is tried again (ms), doubled up to retryMaxMs; default 250. */
  retryMinMs?: number;
  /** Default 5,000. */
  retryMaxMs?: number;
  /** With batch writes, how long a write waits for more ops to join it (ms); default 100, 0 for none. */
  lingerMs?: number;
}

export interface HistoryStats {
  /** Ops in memory, not yet written (the one being written included). */
  readonly queued: number;
  /** Ops in the spill file, not yet read back. */
  readonly spilled: number;
  /** Ops applied (a record whose id existed counts: it is done). */
  readonly written: number;
  /** Attempts that failed: each try during an outage, each op refused as invalid, each op that could not be spilled. */
  readonly failures: number;
  /** False from a failed write until the next one succeeds. */
  readonly storeUp: boolean;
}
