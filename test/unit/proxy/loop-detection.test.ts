import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAGIC_COOKIE, type SipRequest, parseMessage } from '../../../src/sip/index.js';
import { isLoop, loopBranch, loopHash } from '../../../proxy/loop-detection.js';
import { looseRoute } from '../../../proxy/loose-route.js';
import { RecordRoute } from '../../../proxy/record-route.js';
import { PROXY_IP, harness, request } from './harness.js';

function parse(text: string): SipRequest {
  return parseMessage(Buffer.from(text, 'latin1')) as SipRequest;
}

/** The request as it comes back after one trip: our Via (with the branch we made) on top. */
function cameBack(original: string, branch: string, change: (text: string) => string = (t) => t): SipRequest {
  const text = change(original).replace('Via: ', `Via: SIP/2.0/UDP ${PROXY_IP}:5060;branch=${branch}\r\nVia: `);
  return parse(text);
}

describe('loop detection (RFC 3261 §16.3 step 4)', () => {
  it('makes branches of magic cookie + hash + "." + random, the hash the same for the same request', () => {
    const a = loopBranch(parse(request()));
    const b = loopBranch(parse(request()));
    assert.ok(a.startsWith(MAGIC_COOKIE));
    assert.equal(a.split('.')[0], b.split('.')[0]);
    assert.notEqual(a, b);
  });

  it('detects a loop: the request is back with a Via of ours whose hash is the hash of the request now', async () => {
    const h = await harness();
    const branch = loopBranch(parse(request()));
    assert.equal(isLoop(cameBack(request(), branch), h.stack), true);
  });

  it('a spiral is not a loop: a changed Request-URI, CSeq, Route or Proxy-Authorization changes the hash', async () => {
    const h = await harness();
    const branch = loopBranch(parse(request()));
    assert.equal(isLoop(cameBack(request(), branch, (t) => t.replace('INVITE sip:bob@example.com', 'INVITE sip:bob@198.51.100.99')), h.stack), false);
    assert.equal(isLoop(cameBack(request(), branch, (t) => t.replace('CSeq: 314159', 'CSeq: 314160')), h.stack), false);
    assert.equal(isLoop(cameBack(request({ extra: ['Route: <sip:elsewhere.example;lr>'] }), branch), h.stack), false);
    assert.equal(isLoop(cameBack(request({ extra: ['Proxy-Authorization: Digest username="a"'] }), branch), h.stack), false);
  });

  it('ignores a Via with the same branch that is not ours', async () => {
    const h = await harness();
    const branch = loopBranch(parse(request()));
    const text = request().replace('Via: ', `Via: SIP/2.0/UDP 203.0.113.77:5060;branch=${branch}\r\nVia: `);
    assert.equal(isLoop(parse(text), h.stack), false);
  });

  it('hashes the request as received, before loose routing removed our Route', async () => {
    const h = await harness();
    const tokens = new RecordRoute(Buffer.from('s'));
    const text = request({ extra: [`Route: <sip:${PROXY_IP}:5060;lr>`] });
    const first = parse(text);
    const received = loopHash(parse(text));
    looseRoute(first, h.stack, tokens);
    assert.equal(first.has('Route'), false);
    assert.equal(loopHash(first), received);
  });
});
