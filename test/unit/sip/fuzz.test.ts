/**
 * Robustness: mutated RFC 4475 messages and random bytes. Whatever comes in, the parser returns a
 * message or throws SipParseError — no other exception, no hang. FUZZ_CASES sets the count
 * (100,000 in the normal run, more under `npm run fuzz`); FUZZ_SEED replays a run.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SipParseError, StreamFramer, parseMessage, serializeMessage, type SipMessage } from '../../../src/sip/index.js';
import { loadTortureCases } from '../../helpers/rfc4475.js';
import { seeded } from '../../helpers/seeded-random.js';

const CASES = Number(process.env.FUZZ_CASES ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);


const INTERESTING = Buffer.from(':;,<>"\\\r\n \t%@=?/[]\x00\xff0123456789-', 'latin1');

function mutate(src: Buffer, corpus: Buffer[], r: () => number): Buffer {
  const pick = (n: number) => Math.floor(r() * n);
  let b = Buffer.from(src);
  const rounds = 1 + pick(4);
  for (let k = 0; k < rounds; k++) {
    const at = b.length === 0 ? 0 : pick(b.length);
    switch (pick(8)) {
      case 0: // flip a bit
        if (b.length > 0) b[at] = b[at]! ^ (1 << pick(8));
        break;
      case 1: // overwrite with a character the grammar cares about
        if (b.length > 0) b[at] = INTERESTING[pick(INTERESTING.length)]!;
        break;
      case 2: // insert
        b = Buffer.concat([b.subarray(0, at), INTERESTING.subarray(pick(INTERESTING.length)).subarray(0, 1 + pick(3)), b.subarray(at)]);
        break;
      case 3: // delete a run
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + pick(16))]);
        break;
      case 4: // duplicate a run
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + pick(64)), b.subarray(at)]);
        break;
      case 5: // truncate
        b = b.subarray(0, at);
        break;
      case 6: { // splice in part of another message
        const o = corpus[pick(corpus.length)]!;
        const from = pick(o.length);
        b = Buffer.concat([b.subarray(0, at), o.subarray(from, from + pick(200)), b.subarray(at)]);
        break;
      }
      default: { // replace a digit run with a huge number
        const s = b.toString('latin1');
        const m = /\d+/g;
        m.lastIndex = at;
        const hit = m.exec(s);
        if (hit) b = Buffer.from(s.slice(0, hit.index) + '9'.repeat(1 + pick(30)) + s.slice(hit.index + hit[0].length), 'latin1');
      }
    }
  }
  return b;
}

function exercise(m: SipMessage): void {
  // Lazily parsed headers may still be malformed; they too must fail only with SipParseError.
  for (const get of [() => m.route, () => m.recordRoute, () => m.path, () => m.event, () => m.subscriptionState, () => m.require, () => m.contentType]) {
    try {
      get();
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
    }
  }
  serializeMessage(m);
  m.set('X-Fuzz', '1');
  serializeMessage(m);
}

describe(`parser fuzzing (${CASES} cases, seed ${SEED})`, () => {
  it('returns a message or throws SipParseError for every mutated or random input, quickly', () => {
    const corpus = loadTortureCases().map((c) => c.data);
    const r = seeded(SEED);
    let accepted = 0;
    let slowest = 0;
    const framer = () => new StreamFramer({ maxMessageSize: 16384 });
    for (let i = 0; i < CASES; i++) {
      let input: Buffer;
      if (i % 10 === 9) {
        input = Buffer.alloc(Math.floor(r() * 600));
        for (let k = 0; k < input.length; k++) input[k] = Math.floor(r() * 256);
      } else {
        input = mutate(corpus[i % corpus.length]!, corpus, r);
      }
      const t0 = performance.now();
      try {
        const m = parseMessage(input);
        accepted++;
        exercise(m);
      } catch (err) {
        if (!(err instanceof SipParseError) || err.message.startsWith('internal')) {
          assert.fail(`case ${i} (seed ${SEED}) threw ${String(err)} for ${JSON.stringify(input.toString('latin1'))}`);
        }
      }
      if (i % 7 === 0) {
        try {
          framer().push(input);
        } catch (err) {
          if (!(err instanceof SipParseError)) assert.fail(`framer threw ${String(err)} for case ${i} (seed ${SEED})`);
        }
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    assert.ok(slowest < 250, `slowest case took ${slowest.toFixed(1)} ms`);
    assert.ok(accepted > CASES / 100, `some mutated messages still parse (${accepted})`);
  });
});
