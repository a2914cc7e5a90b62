/**
 * SIPp's message log (`-trace_msg -message_file <file>`) read back: what a SIPp device sent and received, for the
 * suites that check what arrived at a desk-phone stand-in.
 */

/** One SIP message as SIPp's -trace_msg log shows it. */
export interface Traced {
  direction: 'sent' | 'received';
  startLine: string;
  header(name: string): string | undefined;
  body: string;
}

/** A SIPp run with its message log. */
export interface SippRun {
  code: number | null;
  /** Why it failed, for assertion messages. */
  detail: string;
  traced: Traced[];
}

/**
 * Each log entry starts with a dashed line and a timestamp, then "UDP message received [n] bytes :" or "UDP
 * message sent (n bytes):", a blank line, and the message.
 */
export function parseTrace(text: string): Traced[] {
  const out: Traced[] = [];
  for (const chunk of text.split(/^-{20,}.*$/m)) {
    const m = /^\s*\S+ message (sent|received) (?:\[\d+\] bytes :|\(\d+ bytes\):)\s*\n\n?([\s\S]*)$/.exec(chunk);
    if (m === null) continue;
    const message = m[2]!.replace(/\r\n/g, '\n');
    const split = message.indexOf('\n\n');
    const head = split < 0 ? message : message.slice(0, split);
    const [startLine, ...lines] = head.split('\n');
    const headers = lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const);
    out.push({
      direction: m[1] as 'sent' | 'received',
      startLine: startLine!.trim(),
      header: (name) => headers.find(([k]) => k === name.toLowerCase())?.[1],
      body: split < 0 ? '' : message.slice(split + 2).trim(),
    });
  }
  return out;
}
