import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage, serializeMessage, type SipRequest } from '../../../src/sip/index.js';
import { createAckForNon2xx, createCancel } from '../../../src/transaction/index.js';
import { makeRequest, makeResponse } from './fixtures.js';

function proxiedInvite(): SipRequest {
  return makeRequest('INVITE', {
    branch: 'z9hG4bKproxy1',
    sentBy: 'proxy.example.com',
    lowerVias: ['SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKuac;received=198.51.100.7'],
    extra: ['Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>', 'Authorization: Digest username="a"'],
  });
}

describe('createCancel (RFC 3261 §9.1)', () => {
  it('copies Request-URI, Call-ID, To, From and the CSeq number, with method CANCEL, one Via, the Route values and Max-Forwards 70', () => {
    const inv = proxiedInvite();
    const cancel = parseMessage(serializeMessage(createCancel(inv))) as SipRequest;
    assert.equal(cancel.method, 'CANCEL');
    assert.equal(cancel.uri, inv.uri);
    assert.equal(cancel.callId, inv.callId);
    assert.equal(cancel.get('to'), inv.get('to'));
    assert.equal(cancel.get('from'), inv.get('from'));
    assert.deepEqual(cancel.cseq, { seq: inv.cseq!.seq, method: 'CANCEL' });
    assert.equal(cancel.via.length, 1);
    assert.equal(cancel.topVia!.branch, 'z9hG4bKproxy1');
    assert.equal(cancel.topVia!.toString(), inv.topVia!.toString());
    assert.deepEqual(cancel.route.map(String), inv.route.map(String));
    assert.equal(cancel.maxForwards, 70);
    assert.equal(cancel.has('authorization'), false);
    assert.equal(cancel.has('contact'), false);
    assert.equal(cancel.body.length, 0);
  });

  it('writes the top Via alone when the INVITE carries several values in one Via field', () => {
    const inv = makeRequest('INVITE', { branch: 'z9hG4bKtop', viaParams: ', SIP/2.0/UDP 198.51.100.8;branch=z9hG4bKlow' });
    assert.equal(inv.via.length, 2);
    const cancel = parseMessage(serializeMessage(createCancel(inv))) as SipRequest;
    assert.equal(cancel.via.length, 1);
    assert.equal(cancel.topVia!.branch, 'z9hG4bKtop');
  });
});

describe('createAckForNon2xx (RFC 3261 §17.1.1.3)', () => {
  it('copies Request-URI, Call-ID, From and the CSeq number with method ACK, takes To from the response, one Via and the Route', () => {
    const inv = proxiedInvite();
    const resp = makeResponse(inv, 407, 'resp-tag');
    const ack = parseMessage(serializeMessage(createAckForNon2xx(inv, resp))) as SipRequest;
    assert.equal(ack.method, 'ACK');
    assert.equal(ack.uri, inv.uri);
    assert.equal(ack.callId, inv.callId);
    assert.equal(ack.get('from'), inv.get('from'));
    assert.equal(ack.get('to'), resp.get('to'));
    assert.equal(ack.to!.tag, 'resp-tag');
    assert.deepEqual(ack.cseq, { seq: inv.cseq!.seq, method: 'ACK' });
    assert.equal(ack.via.length, 1);
    assert.equal(ack.topVia!.branch, 'z9hG4bKproxy1', 'same branch as the INVITE, so the server transaction matches it');
    assert.deepEqual(ack.route.map(String), inv.route.map(String));
    assert.equal(ack.maxForwards, 70);
  });

  it('a request without Via or CSeq is a TypeError', () => {
    const inv = makeRequest('INVITE');
    inv.remove('cseq');
    assert.throws(() => createCancel(inv), TypeError);
    const inv2 = makeRequest('INVITE');
    inv2.remove('via');
    assert.throws(() => createAckForNon2xx(inv2, makeResponse(makeRequest('INVITE'), 404)), TypeError);
  });
});
