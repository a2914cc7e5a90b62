import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DialogSnapshot } from '../../../src/dialog/index.js';
import { callRecordOf } from '../../../history/call-record.js';

const base: DialogSnapshot = {
  id: 'd1', owner: 0, callId: 'c1', fromTag: 'ft', state: 'ended', direction: 'user-user',
  caller: { uri: 'sip:alice@example.com', user: 'alice', domain: 'example.com' },
  callee: { uri: 'sip:bob@example.com', user: 'bob', domain: 'example.com' },
  mediaRelayed: false, createdAt: 1_000_000, endedAt: 1_030_500,
};

const ended = (over: Partial<DialogSnapshot>): DialogSnapshot => ({ ...base, ...over });

describe('call record of an ended dialog', () => {
  it('an answered call bills from the answer to the end, per started second, and names who answered', () => {
    const r = callRecordOf(ended({
      answeredAt: 1_010_000, endCause: 'bye', hangupBy: 'callee', finalCode: 200, finalReason: 'OK',
      answeredBy: { aor: 'bob@example.com', contact: 'sip:bob@10.0.0.2;transport=ws' },
    }))!;
    assert.equal(r.disposition, 'answered');
    assert.equal(r.duration, 30);
    assert.equal(r.billableSeconds, 21);
    assert.equal(r.answeredAor, 'bob@example.com');
    assert.equal(r.answeredDevice, 'sip:bob@10.0.0.2;transport=ws');
    assert.equal(r.hangupBy, 'callee');
  });

  it('dispositions: the caller\'s CANCEL is cancelled, 486/600 busy, 603/403 rejected, 408/480/timeout no-answer, others failed', () => {
    const cases: Array<[Partial<DialogSnapshot>, string]> = [
      [{ endCause: 'cancel', finalCode: 487 }, 'cancelled'],
      [{ endCause: 'failure', finalCode: 486 }, 'busy'],
      [{ endCause: 'failure', finalCode: 600 }, 'busy'],
      [{ endCause: 'failure', finalCode: 603 }, 'rejected'],
      [{ endCause: 'failure', finalCode: 403 }, 'rejected'],
      [{ endCause: 'failure', finalCode: 408 }, 'no-answer'],
      [{ endCause: 'failure', finalCode: 480 }, 'no-answer'],
      [{ endCause: 'timeout', finalCode: 408 }, 'no-answer'],
      [{ endCause: 'failure', finalCode: 404 }, 'failed'],
      [{ endCause: 'failure', finalCode: 500 }, 'failed'],
    ];
    for (const [over, disposition] of cases) {
      const r = callRecordOf(ended(over))!;
      assert.equal(r.disposition, disposition, JSON.stringify(over));
      assert.equal(r.billableSeconds, 0);
    }
  });

  it('a dialog that was only a 401/407 challenge makes no record (the INVITE sent again is the call)', () => {
    assert.equal(callRecordOf(ended({ endCause: 'failure', finalCode: 407 })), undefined);
    assert.equal(callRecordOf(ended({ endCause: 'failure', finalCode: 401 })), undefined);
  });

  it('a dialog that has not ended has no record', () => {
    assert.throws(() => callRecordOf({ ...base, endedAt: undefined, endCause: undefined }), TypeError);
  });
});
