/**
 * Every RFC 4475 torture message, sent as one UDP datagram to a running softswitch, gets the answer
 * RFC 4475 gives for a proxy (or is dropped where it says so), and the server keeps answering after.
 * Runs inside a loopback-only network namespace: the messages name foreign hosts and a broadcast Via.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot } from '../../support/paths.js';
import { LoopbackNamespace } from '../../support/netns.js';
import { run } from '../../support/tools.js';
import type { RunnerResult } from './rfc4475-runner.js';

/** Acceptable answers per message: status codes, or null for "dropped, no answer". */
const EXPECTED: Record<string, Array<number | null>> = {
  // §3.1.1 valid: handled like any request of the domains served (example.com …): requests from their
  // users are challenged (407 proxy, 401 registrar); an unknown method at the server itself gets 501.
  // wsinv has a To tag and a Route to another proxy: an in-dialog request this proxy never
  // Record-Routed, which it refuses rather than relay (403).
  wsinv: [403], intmeth: [407], esc01: [407], escnull: [401], esc02: [501], lwsdisp: [407],
  longreq: [407], dblreq: [401], semiuri: [407], transports: [407], mpart01: [407], unreason: [null], noreason: [null],
  // §3.1.2 invalid: 400, or dropped for responses
  badinv01: [400], clerr: [400], ncl: [400], scalar02: [400], scalarlg: [null], quotbal: [400], ltgtruri: [400],
  lwsruri: [400], lwsstart: [400], trws: [400], escruri: [400], baddate: [400], regbadct: [400], badaspec: [400],
  baddn: [400], badvers: [505], mismatch01: [400], mismatch02: [501, 400], bigcode: [null],
  // §3.2 transaction layer: 400, or processed with RFC 2543 matching (then challenged like any request)
  badbranch: [407, 400],
  // §3.3 application layer
  insuf: [400], unkscm: [416], novelsc: [416], unksm2: [400], bext01: [420], invut: [407],
  regaut01: [401], multi01: [400], mcl01: [400], bcast: [null], zeromf: [483], cparam01: [401],
  cparam02: [401], regescrt: [401], sdp01: [407],
  // §3.4: accepted and processed; its caller's domain is not served here, so it is refused (no open relay)
  inv2543: [403],
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
