/**
 * The message-summary event package's body (`application/simple-message-summary`, RFC 3842 §5): the
 * message-waiting lamp of a phone. Without a voicemail backend the server says "no" (RFC 3842 §3: a
 * subscription to a mailbox with nothing in it is still answered).
 */
import type { MessageSummary } from './types.js';

export const MESSAGE_SUMMARY_CONTENT_TYPE = 'application/simple-message-summary';

/** A count as the grammar's 1*DIGIT: a non-negative integer (anything else, a bug upstream, is written 0). */
const count = (n: number | undefined): number => (n === undefined || !Number.isFinite(n) || n < 0 ? 0 : Math.trunc(n));

/** Header values cannot carry a line break (that would start a new header line: injection). */
const oneLine = (value: string): string => value.replace(/[\r\n]+/g, ' ').trim();

/**
 * The body of RFC 3842 §5.2: `Messages-Waiting: yes|no`, the `Message-Account` when known, and the voice
 * summary line `Voice-Message: new/old (urgent-new/urgent-old)`, the urgent part only when given. CRLF lines.
 */
export function buildMessageSummary(s: MessageSummary): string {
  let body = `Messages-Waiting: ${s.waiting ? 'yes' : 'no'}\r\n`;
  if (s.account !== undefined && oneLine(s.account) !== '') body += `Message-Account: ${oneLine(s.account)}\r\n`;
  if (s.voice !== undefined) {
    const urgent = s.voice.urgentNew !== undefined || s.voice.urgentOld !== undefined ? ` (${count(s.voice.urgentNew)}/${count(s.voice.urgentOld)})` : '';
    body += `Voice-Message: ${count(s.voice.new)}/${count(s.voice.old)}${urgent}\r\n`;
  }
  return body;
}

const SUMMARY_LINE = /^(\d{1,9})\s*\/\s*(\d{1,9})(?:\s*\(\s*(\d{1,9})\s*\/\s*(\d{1,9})\s*\))?\s*$/;

/**
 * Reads a message-summary body (RFC 3842 §5.2), tolerantly: header names in any case, LF or CRLF lines,
 * whitespace around the colon and numbers, unknown message classes (fax-message, …) skipped, and the
 * optional message headers after the first blank line (§5.2's `msg-summary-headers`) ignored. Undefined
 * when there is no `Messages-Waiting` line saying yes or no.
 */
export function parseMessageSummary(body: string): MessageSummary | undefined {
  let waiting: boolean | undefined;
  let account: string | undefined;
  let voice: MessageSummary['voice'];
  let seenContent = false;
  for (const raw of body.slice(0, 65_536).split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') {
      if (seenContent) break;
      continue;
    }
    seenContent = true;
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'messages-waiting') {
      const answer = value.toLowerCase();
      if (answer === 'yes' || answer === 'no') waiting = answer === 'yes';
    } else if (name === 'message-account') {
      if (value !== '') account = value;
    } else if (name === 'voice-message') {
      const m = SUMMARY_LINE.exec(value);
      if (m !== null) {
        voice = { new: Number(m[1]), old: Number(m[2]) };
        if (m[3] !== undefined) Object.assign(voice, { urgentNew: Number(m[3]), urgentOld: Number(m[4]) });
      }
    }
  }
  if (waiting === undefined) return undefined;
  return { waiting, account, voice };
}
