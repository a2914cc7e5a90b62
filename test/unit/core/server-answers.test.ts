import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Stack } from '../../../src/core/index.js';
import { ALLOWED_METHODS, OPTIONS_HEADERS, answerAtOwnAddress } from '../../../src/core/server-answers.js';
import type { ServerTransaction } from '../../../src/transaction/index.js';

interface Answer {
  status: number;
  headers: Array<[string, string]>;
}

/** Answers `method` as the server at its own address, through a stack that only records what it is asked to send. */
function answerTo(method: string): Answer {
  const answers: Answer[] = [];
  const stack = { respond: (_tx: ServerTransaction, status: number, o: { headers?: Array<[string, string]> } = {}) => answers.push({ status, headers: o.headers ?? [] }) };
  answerAtOwnAddress(stack as unknown as Stack, {} as ServerTransaction, method);
  assert.equal(answers.length, 1, `one answer to ${method}`);
  return answers[0]!;
}

function allowOf(answer: Answer): string[] | undefined {
  return answer.headers.find(([name]) => name === 'Allow')?.[1].split(', ');
}

/** Every method the proxy forwards for its users (calls, chat, presence) and does not serve as itself. */
const PROXIED = ['INVITE', 'BYE', 'PRACK', 'UPDATE', 'INFO', 'MESSAGE', 'REFER', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH'];

describe('what the server answers at its own address (RFC 3261 §20.5, §21.4.6, §21.5.2)', () => {
  it('advertises in Allow the methods it serves there, ACK and CANCEL included, and none it only proxies', () => {
    for (const method of ['ACK', 'CANCEL', 'OPTIONS', 'REGISTER']) assert.ok(ALLOWED_METHODS.includes(method), method);
    for (const method of PROXIED) assert.ok(!ALLOWED_METHODS.includes(method), method);
  });

  it('answers OPTIONS 200 with that Allow', () => {
    const answer = answerTo('OPTIONS');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.headers, OPTIONS_HEADERS);
    assert.deepEqual(allowOf(answer), [...ALLOWED_METHODS]);
  });

  it('answers a method it proxies for its users 405 Method Not Allowed, with the Allow of its own address', () => {
    for (const method of PROXIED) {
      const answer = answerTo(method);
      assert.equal(answer.status, 405, method);
      assert.deepEqual(allowOf(answer), [...ALLOWED_METHODS], method);
    }
  });

  it('answers a method it does not recognise 501 Not Implemented, with the same Allow', () => {
    for (const method of ['FOO', 'NEWMETHOD', 'RE%47IST%45R', 'invite']) {
      const answer = answerTo(method);
      assert.equal(answer.status, 501, method);
      assert.deepEqual(allowOf(answer), [...ALLOWED_METHODS], method);
    }
  });
});
