/**
 * Where `softswitch user add|passwd` takes the password from, besides `--password` (which every user of
 * the machine sees in `ps` and which lands in shell history): the first line of standard input
 * (`--password-stdin`), the environment (SOFTSWITCH_USER_PASSWORD), or the terminal without echo.
 */
import { CliError } from './cli-error.js';

export const USER_PASSWORD_ENV = 'SOFTSWITCH_USER_PASSWORD';
/** A password line longer than this is refused rather than buffered without end. */
const MAX_LINE = 4096;

export interface PasswordSources {
  /** The first line of standard input (`--password-stdin`), without its line end. */
  readStdin?: () => Promise<string>;
  /** The value of SOFTSWITCH_USER_PASSWORD, when set. */
  env?: string;
  /** Asks on the terminal without echo; absent when standard input is not a terminal. */
  prompt?: (question: string) => Promise<string>;
}

/** The first line of `stream` (up to "\n", a "\r" before it dropped), or all of it when it has no line end. */
export function readFirstLine(stream: NodeJS.ReadableStream = process.stdin): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (err: Error | undefined, line?: string): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.pause();
      if (err !== undefined) reject(err);
      else resolve(line!.endsWith('\r') ? line!.slice(0, -1) : line!);
    };
    const onData = (chunk: Buffer | string): void => {
      text += chunk.toString();
      const nl = text.indexOf('\n');
      if (nl !== -1) done(undefined, text.slice(0, nl));
      else if (text.length > MAX_LINE) done(new CliError('CLI_ERR_INVALID', `the password on standard input is longer than ${MAX_LINE} characters`));
    };
    const onEnd = (): void => done(undefined, text);
    const onError = (err: Error): void => done(new CliError('CLI_ERR_INVALID', `cannot read the password from standard input: ${err.message}`));
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    stream.resume();
  });
}

/** Asks `question` on stderr and reads a line from the terminal in raw mode, echoing nothing. */
export function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  const output = process.stderr;
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(text);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && text === '')) {
          finish();
          reject(new CliError('CLI_ERR_INVALID', 'cancelled: no password typed'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') text = Array.from(text).slice(0, -1).join('');
        else if (ch >= ' ') text += ch;
      }
    };
    // Raw mode (no echo) before the question shows: whoever types after seeing it is never echoed.
    input.setRawMode(true);
    output.write(question);
    input.on('data', onData);
    input.resume();
  });
}
