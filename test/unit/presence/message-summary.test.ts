/**
 * message-summary (presence/message-summary.ts): the RFC 3842 §5.2 body written and read, tolerantly.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildMessageSummary, parseMessageSummary } from '../../../presence/message-summary.js';

/** RFC 3842 §5.2: two new and eight old voice messages, none new urgent, two old urgent. */
const RFC3842_EXAMPLE = 'Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\nVoice-Message: 2/8 (0/2)\r\n';

describe('message-summary bodies (RFC 3842 §5.2)', () => {
  it('writes the §5.2 example byte for byte', () => {
    assert.equal(buildMessageSummary({ waiting: true, account: 'sip:alice@vmail.example.com', voice: { new: 2, old: 8, urgentNew: 0, urgentOld: 2 } }), RFC3842_EXAMPLE);
  });

  it('reads the §5.2 example', () => {
    assert.deepEqual(parseMessageSummary(RFC3842_EXAMPLE), {
      waiting: true, account: 'sip:alice@vmail.example.com', voice: { new: 2, old: 8, urgentNew: 0, urgentOld: 2 },
    });
  });

  it('without a voicemail backend: "Messages-Waiting: no" alone; the urgent part only when given', () => {
    assert.equal(buildMessageSummary({ waiting: false }), 'Messages-Waiting: no\r\n');
    assert.equal(buildMessageSummary({ waiting: true, voice: { new: 1, old: 0 } }), 'Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n');
    assert.deepEqual(parseMessageSummary('Messages-Waiting: no\r\n'), { waiting: false, account: undefined, voice: undefined });
  });

  it('a line break in the account cannot start a header of its own; bad counts are written 0', () => {
    const body = buildMessageSummary({ waiting: true, account: 'sip:a@example.com\r\nVoice-Message: 99/99', voice: { new: -3, old: Number.NaN } });
    assert.equal(body.split('\r\n').filter((l) => l.startsWith('Voice-Message')).length, 1);
    assert.deepEqual(parseMessageSummary(body)?.voice, { new: 0, old: 0 });
  });

  it('reads tolerantly: any case, LF lines, spaces, other message classes, and the optional message headers after a blank line', () => {
    const body = '\nmessages-waiting :  YES\nFax-Message: 1/0\nvoice-message:3 / 4 ( 1 / 0 )\n\nTo: <sip:alice@example.com>\nVoice-Message: 9/9\n';
    assert.deepEqual(parseMessageSummary(body), { waiting: true, account: undefined, voice: { new: 3, old: 4, urgentNew: 1, urgentOld: 0 } });
  });

  it('undefined when there is no Messages-Waiting yes or no; a malformed summary line is skipped', () => {
    assert.equal(parseMessageSummary(''), undefined);
    assert.equal(parseMessageSummary('Voice-Message: 2/8\r\n'), undefined);
    assert.equal(parseMessageSummary('Messages-Waiting: maybe\r\n'), undefined);
    assert.equal(parseMessageSummary('Messages-Waiting: yes\r\nVoice-Message: two/8\r\n')?.voice, undefined);
  });
});
