/**
 * Call history: the record of each ended dialog (call-record.ts), the writer that applies persisted
 * dialogs and call records to the store off the SIP hot path, with a spill file for outages (writer.ts),
 * and the read side, GET /v1/calls (routes.ts) and the user's history of calls and meetings, GET /v1/history
 * (timeline-routes.ts).
 */
export { HistoryWriter } from './writer.js';
export type { CallSink, HistoryOp, HistoryStats, HistoryTarget, HistoryWriterOptions } from './types.js';
export { callRecordOf, dialogOfRow, persistedDialog } from './call-record.js';
export { callRoutes, callToJson, parseInstant } from './routes.js';
export { timelineRoutes, TIMELINE_PAGE, MAX_TIMELINE_PAGE } from './timeline-routes.js';
