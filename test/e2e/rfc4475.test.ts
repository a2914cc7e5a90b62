/**
 * Every RFC 4475 torture message, sent as one UDP datagram to a running softswitch, gets the answer
 * RFC 4475 gives for a proxy (or is dropped where it says so), and the server keeps answering after.
 * Runs inside a loopback-only network namespace: the messages name foreign hosts and a broadcast Via.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { LoopbackNamespace } from '../helpers/netns.js';
import { run } from '../helpers/tools.js';
import type { RunnerResult } from './rfc4475-runner.js';

/** Acceptable answers per message: status codes, or null for "dropped, no answer". */
const EXPECTED: Record<string, Array<number | null>> = {
  // §3.1.1 valid: handled like any request (no user here: 404; OPTIONS answered by the server; unknown method at a user: 404)
  wsinv: [404], intmeth: [404, 501], esc01: [404], escnull: [404, 401], esc02: [404, 501], lwsdisp: [200, 404],
  longreq: [404], dblreq: [404, 401], semiuri: [200, 404], transports: [200, 404], mpart01: [404], unreason: [null], noreason: [null],
  // §3.1.2 invalid: 400, or dropped for responses
  badinv01: [400], clerr: [400], ncl: [400], scalar02: [400], scalarlg: [null], quotbal: [400], ltgtruri: [400],
  lwsruri: [400], lwsstart: [400], trws: [400], escruri: [400], baddate: [400], regbadct: [400], badaspec: [400],
  baddn: [400], badvers: [505], mismatch01: [400], mismatch02: [501, 400], bigcode: [null],
  // §3.2 transaction layer: 400 or processed with RFC 2543 matching
  badbranch: [200, 400],
  // §3.3 application layer
  insuf: [400], unkscm: [416], novelsc: [416, 404], unksm2: [400, 404], bext01: [420], invut: [404, 415],
  regaut01: [401, 404], multi01: [400], mcl01: [400], bcast: [null], zeromf: [483], cparam01: [404, 401, 200],
  cparam02: [404, 401, 200], regescrt: [404, 401, 200], sdp01: [404, 406],
  // §3.4
  inv2543: [404],
};

describe('RFC 4475 messages against the running server (UDP, loopback-only namespace)', () => {
  let result: RunnerResult;

  before(async () => {
    const ns = LoopbackNamespace.create('ss4475');
    try {
      const [cmd, args] = ns.exec(process.execPath, ['--enable-source-maps', join(repoRoot, 'dist', 'test', 'e2e', 'rfc4475-runner.js')]);
      const r = await run(cmd, args, { timeoutMs: 60_000 });
      assert.equal(r.code, 0, `runner failed: ${r.stderr}`);
      result = JSON.parse(r.stdout.trim().split('\n').pop()!) as RunnerResult;
    } finally {
      ns.destroy();
    }
  });

  for (const [name, allowed] of Object.entries(EXPECTED)) {
    const what = allowed.map((s) => (s === null ? 'no answer' : String(s))).join(' or ');
    it(`${name}.dat is answered with ${what}`, () => {
      const got = result.answers[name];
      assert.ok(got !== undefined, `${name} was sent`);
      assert.ok(allowed.includes(got === null ? null : got.status), `${name}: got ${got === null ? 'no answer' : `${got.status} ${got.reason}`}`);
    });
  }

  it('covers all 49 messages', () => {
    assert.equal(Object.keys(result.answers).length, 49);
    assert.equal(Object.keys(EXPECTED).length, 49);
  });

  it('keeps answering after the torture set', () => {
    assert.equal(result.aliveAfter, true);
  });

  it('never sends to a broadcast or foreign address: responses go to the received address', () => {
    assert.ok(result.sentTo.length > 30);
    for (const d of result.sentTo) assert.match(d, /^udp:127\.0\.0\.1:\d+$/);
  });
});
