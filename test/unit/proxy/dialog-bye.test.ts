import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SipRequest, type SipResponse, parseMessage } from '../../../src/sip/index.js';
import type { Destination } from '../../../src/transport/types.js';
import { HANGUP_REASON, byeToward, dialogLegs, sendByes } from '../../../proxy/dialog-bye.js';
import { silentLogger } from '../../../src/log/index.js';
import { harness } from './harness.js';

function parse(lines: string[]): SipRequest | SipResponse {
  return parseMessage(Buffer.from(lines.join('\r\n') + '\r\n\r\n'));
}

/**
 * Alice (WSS, behind the edge proxy P1) calls Bob (a trunk behind the proxy P3); we are P2 and Record-Routed
 * twice (RFC 5658: WSS in, UDP out). Record-Route in the 2xx: [P3, ours (out), ours (in), P1].
 */
const P1 = '<sip:p1.example.net;lr>';
const P3 = '<sip:p3.example.org;lr>';
const OURS = ['<sip:rr.aaaaaaaaaa@192.0.2.1:5060;transport=udp;lr>', '<sip:d3M6dzEuMQ.bbbbbbbbbb@192.0.2.1:443;transport=ws;lr>'];

const invite = parse([
  'INVITE sip:bob@example.org SIP/2.0',
  'Via: SIP/2.0/WSS p1.example.net;branch=z9hG4bK-p1',
  'Via: SIP/2.0/WSS df7.invalid;branch=z9hG4bK-a',
  'Record-Route: ' + P1,
  'From: "Alice" <sip:alice@example.com>;tag=a-tag',
  'To: <sip:bob@example.org>',
  'Call-ID: call-1',
  'CSeq: 2 INVITE',
  'Contact: <sip:alice@df7.invalid;transport=ws;ob>',
  'Max-Forwards: 69',
  'Content-Length: 0',
]) as SipRequest;

const sent = parse([
  'INVITE sip:bob@198.51.100.7 SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ours',
  'Via: SIP/2.0/WSS p1.example.net;branch=z9hG4bK-p1',
  'Via: SIP/2.0/WSS df7.invalid;branch=z9hG4bK-a',
  `Record-Route: ${OURS[0]}, ${OURS[1]}`,
  'Record-Route: ' + P1,
  'From: "Alice" <sip:alice@example.com>;tag=a-tag',
  'To: <sip:bob@example.org>',
  'Call-ID: call-1',
  'CSeq: 2 INVITE',
  'Contact: <sip:alice@df7.invalid;transport=ws;ob>',
  'Max-Forwards: 68',
  'Content-Length: 0',
]) as SipRequest;

const ok = parse([
  'SIP/2.0 200 OK',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ours',
  'Via: SIP/2.0/WSS p1.example.net;branch=z9hG4bK-p1',
  'Via: SIP/2.0/WSS df7.invalid;branch=z9hG4bK-a',
  'Record-Route: ' + P3,
  `Record-Route: ${OURS[0]}, ${OURS[1]}, ${P1}`,
  'From: "Alice" <sip:alice@example.com>;tag=a-tag',
  'To: "Bob" <sip:bob@example.org>;tag=b-tag',
  'Call-ID: call-1',
  'CSeq: 2 INVITE',
  'Contact: <sip:bob@198.51.100.9:5070>',
  'Content-Length: 0',
]) as SipResponse;

const inbound: Destination = { protocol: 'wss', address: '203.0.113.5', port: 40000, flowId: 'wss:w0.17' };
const outbound: Destination = { protocol: 'udp', address: '198.51.100.7', port: 5060 };

describe('the BYEs of a hang-up by the administrator (Kamailio dlg_end_dlg)', () => {
  const legs = dialogLegs(invite, inbound, sent, outbound, ok)!;

  it('records each side as its own UA knows the dialog: Contact, From or To with its tag, the connection, the INVITE\'s CSeq', () => {
    assert.deepEqual(legs.caller, {
      identity: '"Alice" <sip:alice@example.com>;tag=a-tag', target: 'sip:alice@df7.invalid;transport=ws;ob', routeSet: [P1], destination: inbound, cseq: 2,
    });
    assert.deepEqual(legs.callee, {
      identity: '"Bob" <sip:bob@example.org>;tag=b-tag', target: 'sip:bob@198.51.100.9:5070', routeSet: [P3], destination: outbound, cseq: 0,
    });
  });

  it('takes for the callee\'s route set only the Record-Route values above ours and the caller side\'s (§16.6 step 4), nearest first', () => {
    const twoDownstream = parse([
      'SIP/2.0 200 OK', 'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ours',
      `Record-Route: <sip:far.example.org;lr>, ${P3}, ${OURS[0]}, ${OURS[1]}, ${P1}`,
      'From: <sip:alice@example.com>;tag=a-tag', 'To: <sip:bob@example.org>;tag=b-tag', 'Call-ID: call-1', 'CSeq: 2 INVITE',
      'Contact: <sip:bob@198.51.100.9:5070>', 'Content-Length: 0',
    ]) as SipResponse;
    assert.deepEqual(dialogLegs(invite, inbound, sent, outbound, twoDownstream)!.callee.routeSet, [P3, '<sip:far.example.org;lr>']);
  });

  it('records nothing when a side gave no Contact (it could not be reached within the dialog)', () => {
    const noContact = parse([
      'SIP/2.0 200 OK', 'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ours', 'From: <sip:alice@example.com>;tag=a-tag',
      'To: <sip:bob@example.org>;tag=b-tag', 'Call-ID: call-1', 'CSeq: 2 INVITE', 'Content-Length: 0',
    ]) as SipResponse;
    assert.equal(dialogLegs(invite, inbound, sent, outbound, noContact), undefined);
  });

  it('the callee-bound BYE: Request-URI the callee\'s Contact, Route its side\'s set, From the caller (tag) and To the callee (tag), CSeq above the caller\'s', () => {
    const bye = byeToward('callee', 'call-1', legs);
    assert.equal(bye.method, 'BYE');
    assert.equal(bye.uri, 'sip:bob@198.51.100.9:5070');
    assert.deepEqual(bye.route.map(String), [P3]);
    assert.equal(bye.from?.tag, 'a-tag');
    assert.equal(bye.to?.tag, 'b-tag');
    assert.equal(bye.callId, 'call-1');
    assert.deepEqual({ seq: bye.cseq?.seq, method: bye.cseq?.method }, { seq: 3, method: 'BYE' });
    assert.equal(bye.get('reason'), HANGUP_REASON);
  });

  it('the caller-bound BYE swaps the tags: From the callee (its tag), To the caller (its tag), to the caller\'s Contact through P1', () => {
    const bye = byeToward('caller', 'call-1', legs);
    assert.equal(bye.uri, 'sip:alice@df7.invalid;transport=ws;ob');
    assert.deepEqual(bye.route.map(String), [P1]);
    assert.equal(bye.from?.tag, 'b-tag');
    assert.equal(bye.from?.uri.toString(), 'sip:bob@example.org');
    assert.equal(bye.to?.tag, 'a-tag');
    assert.equal(bye.to?.uri.toString(), 'sip:alice@example.com');
    assert.equal(bye.cseq?.seq, 1, 'the callee sent no request: any CSeq will do, the first one');
  });

  it('each BYE goes above the highest CSeq the side it speaks for has used (§12.2.1.1: strictly increasing)', () => {
    const raised = structuredClone(legs);
    raised.caller.cseq = 7; // a re-INVITE and an UPDATE of Alice's passed
    raised.callee.cseq = 41; // Bob's own CSeq space
    assert.equal(byeToward('callee', 'call-1', raised).cseq?.seq, 8);
    assert.equal(byeToward('caller', 'call-1', raised).cseq?.seq, 42);
  });

  it('a side reached directly gets no Route at all', () => {
    const direct = structuredClone(legs);
    direct.caller.routeSet = [];
    assert.equal(byeToward('caller', 'call-1', direct).route.length, 0);
  });
});

describe('sendByes: the hang-up\'s BYEs through the transaction layer', () => {
  const legs = dialogLegs(invite, inbound, sent, outbound, ok)!;

  it('sends one BYE to each side, to the connection it uses (the WSS phone\'s flow), with our Via on top', async () => {
    const h = await harness();
    sendByes(h.stack, 'call-1', legs, silentLogger());
    const byes = h.requests('BYE');
    assert.deepEqual(byes.map((b) => b.request.uri), ['sip:bob@198.51.100.9:5070', 'sip:alice@df7.invalid;transport=ws;ob']);
    assert.deepEqual(byes.map((b) => b.destination), [outbound, inbound]);
    assert.match(byes[0]!.request.get('via')!, /^SIP\/2\.0\/UDP 192\.0\.2\.1:5060;branch=z9hG4bK/);
    assert.match(byes[1]!.request.get('via')!, /^SIP\/2\.0\/WSS 192\.0\.2\.1:8443;branch=z9hG4bK/);
  });

  it('over UDP a BYE that gets no answer is sent again after T1 (§17.1.2.2 Timer E); answered, it is not', async () => {
    const h = await harness();
    sendByes(h.stack, 'call-1', { ...legs, caller: { ...legs.caller, destination: { protocol: 'udp', address: '198.51.100.7', port: 5060 } } }, silentLogger());
    const [toCallee, toCaller] = h.requests('BYE');
    h.answer(toCaller!, 200);
    h.clock.tick(500);
    const after = h.requests('BYE');
    assert.equal(after.length, 3, 'the callee\'s BYE once more, the answered caller\'s not');
    assert.equal(after[2]!.request.get('via'), toCallee!.request.get('via'));
  });

  it('a BYE that cannot be sent on the side\'s old connection goes once to where its registration now is', async () => {
    const h = await harness();
    const now: Destination = { protocol: 'wss', address: '203.0.113.5', port: 40100, flowId: 'wss:w0.99' };
    const asked: string[] = [];
    h.transport.failNextSends(1); // the callee's BYE (sent first) fails; nothing else does
    sendByes(h.stack, 'call-1', { ...legs, callee: { ...legs.callee, destination: { protocol: 'wss', address: '203.0.113.9', port: 40000, flowId: 'wss:w0.1' } } },
      silentLogger(), (leg) => (asked.push(leg.target), now));
    await new Promise((r) => setImmediate(r));
    const byes = h.requests('BYE');
    assert.deepEqual(asked, ['sip:bob@198.51.100.9:5070']);
    assert.deepEqual(byes.map((b) => b.destination.flowId), ['wss:w0.1', 'wss:w0.17', 'wss:w0.99']);
    assert.equal(byes[2]!.request.cseq?.seq, byes[0]!.request.cseq?.seq, 'the same BYE, in a new transaction');
  });
});
