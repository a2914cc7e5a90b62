import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SipRequest, parseMessage } from '../../../src/sip/index.js';
import { forwardStateless, looseRoute } from '../../../proxy/loose-route.js';
import { RecordRoute } from '../../../proxy/record-route.js';
import { PROXY_IP, harness, request, udp } from './harness.js';

const CALL_ID = 'a84b4c76e66710@pc33.example.com';
const tokens = new RecordRoute(Buffer.from('test secret'));

function parse(text: string): SipRequest {
  return parseMessage(Buffer.from(text, 'latin1')) as SipRequest;
}

function inDialog(routes: string[], uri = 'sip:bob@203.0.113.1'): SipRequest {
  return parse(request({ method: 'BYE', uri, toTag: 'b', extra: routes.map((r) => `Route: ${r}`) }));
}

describe('looseRoute (RFC 3261 §16.4)', () => {
  it('removes every top Route that indicates this proxy, verifies its HMAC and returns the flow of the last one', async () => {
    const h = await harness();
    const wsToken = tokens.flowToken('ws:t-1');
    const req = inDialog([
      `<sip:${tokens.marker(CALL_ID)}@${PROXY_IP}:5060;transport=udp;lr>`,
      `<sip:${wsToken}@${PROXY_IP}:8080;transport=ws;lr>`,
      '<sip:next.example.net;lr>',
    ]);
    const result = looseRoute(req, h.stack, tokens);
    assert.deepEqual(result, { ours: true, verified: true, flow: 'ws:t-1', next: 'route' });
    assert.deepEqual(req.route.map(String), ['<sip:next.example.net;lr>']);
  });

  it('leaves a request whose top Route is someone else\'s alone', async () => {
    const h = await harness();
    const req = inDialog(['<sip:next.example.net;lr>']);
    assert.deepEqual(looseRoute(req, h.stack, tokens), { ours: false, verified: false, next: 'route' });
    assert.equal(req.route.length, 1);
  });

  it('removes a Route naming one of our listeners even without a token, but does not call it verified', async () => {
    const h = await harness();
    const req = inDialog([`<sip:${PROXY_IP}:5060;lr>`]);
    assert.deepEqual(looseRoute(req, h.stack, tokens), { ours: true, verified: false, next: 'ruri' });
    assert.equal(req.has('Route'), false);
  });

  it('does not verify a forged token: a wrong HMAC on our address is removed as ours but unverified', async () => {
    const h = await harness();
    const forged = Buffer.from('ws:t-666').toString('base64url') + '.AAAAAAAAAA';
    const req = inDialog([`<sip:${forged}@${PROXY_IP}:8080;transport=ws;lr>`]);
    const result = looseRoute(req, h.stack, tokens);
    assert.equal(result.verified, false);
    assert.equal(result.flow, undefined);
  });

  it('does not take a forged token on another host for ours', async () => {
    const h = await harness();
    const forged = Buffer.from('ws:t-1').toString('base64url') + '.' + tokens.flowToken('ws:t-1').split('.')[1]!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
    const req = inDialog([`<sip:${forged}@203.0.113.99;lr>`]);
    assert.equal(looseRoute(req, h.stack, tokens).ours, false);
    assert.equal(req.route.length, 1);
  });

  it('a marker signed for another dialog does not verify', async () => {
    const h = await harness();
    const req = inDialog([`<sip:${tokens.marker('another-call')}@${PROXY_IP}:5060;lr>`]);
    assert.equal(looseRoute(req, h.stack, tokens).verified, false);
  });

  it('replaces a Request-URI that a strict router set to our Record-Route with the last Route value', async () => {
    const h = await harness();
    const ours = `sip:${tokens.flowToken('ws:t-1')}@${PROXY_IP}:8080;transport=ws;lr`;
    const req = inDialog(['<sip:proxy2.example.net;lr>', '<sip:x@df7.invalid;transport=ws>'], ours);
    const result = looseRoute(req, h.stack, tokens);
    assert.equal(req.uri, 'sip:x@df7.invalid;transport=ws');
    assert.deepEqual(req.route.map(String), ['<sip:proxy2.example.net;lr>']);
    assert.deepEqual(result, { ours: true, verified: true, flow: 'ws:t-1', next: 'route' });
  });
});

describe('forwardStateless (RFC 3261 §16.11)', () => {
  it('decrements Max-Forwards, adds a Via with a stable branch, and drops a request whose Max-Forwards is 0', async () => {
    const h = await harness();
    const ack = () => parse(request({ method: 'ACK', toTag: 'b', maxForwards: 5 }));
    assert.equal(forwardStateless(ack(), udp('203.0.113.1'), h.stack), true);
    assert.equal(forwardStateless(ack(), udp('203.0.113.1'), h.stack), true);
    const [a, b] = h.requests('ACK');
    assert.equal(a!.request.get('Max-Forwards'), '4');
    assert.equal(a!.request.topVia!.branch, b!.request.topVia!.branch);
    assert.equal(forwardStateless(parse(request({ method: 'ACK', toTag: 'b', maxForwards: 0 })), udp('203.0.113.1'), h.stack), false);
    assert.equal(h.requests('ACK').length, 2);
  });
});
