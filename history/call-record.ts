/**
 * From an ended dialog to its call record (CDR): the disposition the apps show, the durations billed.
 * One record per call: a forked call that one device answers is `answered` for the callee user (every
 * device of theirs shows the same record), never `missed` on the devices that did not pick up.
 */
import { type DialogSnapshot, snapshotOf } from '../src/dialog/index.js';
import type { CallDisposition, CallRecord, PersistedDialog } from '../platform/store/index.js';

/**
 * §22.2/§22.3: a 401/407 asks the caller to send the INVITE again with credentials (a backend or trunk
 * that authenticates): not a call of its own. The INVITE sent again is the call and gets its record.
 */
const CHALLENGES = new Set([401, 407]);

/** The record of an ended dialog; undefined for a dialog that was only a challenge (401/407). */
export function callRecordOf(d: Readonly<DialogSnapshot>): CallRecord | undefined {
  if (d.endedAt === undefined || d.endCause === undefined) throw new TypeError(`dialog ${d.id} has not ended`);
  const answered = d.answeredAt !== undefined;
  const code = d.finalCode ?? (answered ? 200 : 500);
  if (!answered && CHALLENGES.has(code)) return undefined;
  return {
    id: d.id,
    callId: d.callId,
    caller: d.caller,
    callee: d.callee,
    direction: d.direction,
    disposition: dispositionOf(d, code),
    startedAt: d.createdAt,
    answeredAt: d.answeredAt,
    endedAt: d.endedAt,
    duration: Math.max(0, Math.floor((d.endedAt - d.createdAt) / 1000)),
    // Billed per started second, as carriers do.
    billableSeconds: answered ? Math.max(0, Math.ceil((d.endedAt - d.answeredAt!) / 1000)) : 0,
    finalCode: code,
    finalReason: d.finalReason,
    hangupBy: d.hangupBy,
    endCause: d.endCause,
    answeredDevice: d.answeredBy?.instance ?? d.answeredBy?.contact,
    answeredAor: d.answeredBy?.aor,
    backend: d.backend?.uri,
    mediaRelayed: d.mediaRelayed,
    mediaNode: d.mediaNode,
  };
}

/**
 * answered: a 2xx. cancelled: the caller hung up first (CANCEL). busy: 486 Busy Here, 600 Busy
 * Everywhere. rejected: the callee declined (603 Decline, 403 Forbidden, 607/608). no-answer: nobody
 * picked up in time (408, 480 Temporarily Unavailable, a 487 the proxy made after Timer C, maxDuration
 * before an answer). failed: everything else (404, 488, 5xx…).
 */
function dispositionOf(d: Readonly<DialogSnapshot>, code: number): CallDisposition {
  if (d.answeredAt !== undefined) return 'answered';
  if (d.endCause === 'cancel') return 'cancelled';
  if (code === 486 || code === 600) return 'busy';
  if (code === 603 || code === 403 || code === 607 || code === 608) return 'rejected';
  if (code === 408 || code === 480 || code === 487 || d.endCause === 'timeout') return 'no-answer';
  return 'failed';
}

/** A confirmed dialog as the store keeps it until its record is written (the next process takes it up). */
export function persistedDialog(d: Readonly<DialogSnapshot>, at: number): PersistedDialog {
  return { id: d.id, callId: d.callId, owner: d.owner, data: JSON.stringify(snapshotOf(d)), updatedAt: at };
}

/** The dialog a persisted row holds (what `persistedDialog` wrote). */
export function dialogOfRow(row: PersistedDialog): DialogSnapshot {
  return JSON.parse(row.data) as DialogSnapshot;
}
