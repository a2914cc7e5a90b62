/**
 * Call history (issue 13): the writer that applies the dialog tracker's persisted dialogs and call records
 * to the store off the SIP hot path, with a spill file for outages.
 */
export { HistoryWriter } from './writer.js';
export type { CallSink, HistoryOp, HistoryStats, HistoryTarget, HistoryWriterOptions } from './types.js';
