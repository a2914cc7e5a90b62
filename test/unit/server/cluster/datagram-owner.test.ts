/** Which worker of a cluster a datagram belongs to (server/cluster/datagram-owner.ts), and the branch tag that says it. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { branchTag, datagramOwner } from '../../../../server/cluster/index.js';
import { parseMessage, serializeMessage } from '../../../../src/sip/index.js';
import { createCancel, createAckForNon2xx } from '../../../../src/transaction/index.js';
import { RecordingUser, destination, makeRequest, makeResponse, setup } from '../../transaction/fixtures.js';

function request(callIdHeader: string): Buffer {
  return Buffer.from(`INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa~1\r\n${callIdHeader}\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nCall-ID: body\r\n`);
}

function response(via: string, callId = 'abc@host'): Buffer {
  return Buffer.from(`SIP/2.0 200 OK\r\n${via}\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKup~0\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\n\r\n`);
}

describe('datagramOwner', () => {
  it('gives every request of a Call-ID one owner, whatever the header spelling (compact i, case, spaces)', () => {
    for (const workers of [2, 3, 8]) {
      const owner = datagramOwner(request('Call-ID: abc@host'), workers);
      assert.ok(owner !== undefined && owner >= 0 && owner < workers);
      for (const h of ['call-id:abc@host', 'i: abc@host', 'CALL-ID :  abc@host  ', 'I:\tabc@host']) {
        assert.equal(datagramOwner(request(h), workers), owner, h);
      }
    }
  });

  it('spreads Call-IDs over the workers', () => {
    const seen = new Set<number | undefined>();
    for (let i = 0; i < 64; i++) seen.add(datagramOwner(request(`Call-ID: call-${i}`), 4));
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
  });

  it('sends a response to the worker whose tag ends the branch of its top Via, not a lower Via', () => {
    assert.equal(datagramOwner(response('Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx.y~1;rport=5060'), 2), 1);
    assert.equal(datagramOwner(response('v: SIP/2.0/UDP 192.0.2.1;received=1.2.3.4;BRANCH = z9hG4bKx~2'), 3), 2);
    assert.equal(datagramOwner(response('Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx~1, SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKz~0'), 2), 1);
  });

  it('falls back to the Call-ID for a response whose branch has no tag of a worker (stateless forwarding)', () => {
    const byCallId = datagramOwner(request('Call-ID: abc@host'), 2);
    assert.equal(datagramOwner(response('Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKnotag'), 2), byCallId);
    assert.equal(datagramOwner(response('Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx~7'), 2), byCallId);
    assert.equal(datagramOwner(response('Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx~'), 2), byCallId);
  });

  it('names no owner for a datagram without a Call-ID, nor for one whose Call-ID sits in the body', () => {
    assert.equal(datagramOwner(Buffer.from('INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\nCall-ID: x\r\n'), 2), undefined);
    assert.equal(datagramOwner(Buffer.from('garbage'), 2), undefined);
  });
});

describe('TransactionLayer branch tag (cluster workers)', () => {
  it('ends the branch of every client transaction with the tag, once; the CANCEL and the ACK keep it', () => {
    const { transport, layer } = setup();
    layer.setBranchTag(branchTag(1));
    const invite = makeRequest('INVITE', { branch: 'z9hG4bKclient1', sentBy: '192.0.2.1:5060' });
    const tx = layer.sendRequest(invite, destination('udp'), new RecordingUser());
    assert.equal(tx.request.topVia?.branch, 'z9hG4bKclient1~1');
    const sent = parseMessage(transport.sent[0]!.data);
    assert.equal(sent.topVia?.branch, 'z9hG4bKclient1~1');
    // The response to it names worker 1, whatever its Call-ID hashes to.
    assert.equal(datagramOwner(serializeMessage(makeResponse(tx.request, 180)), 2), 1);
    const cancel = layer.sendRequest(createCancel(tx.request), destination('udp'), new RecordingUser());
    assert.equal(cancel.request.topVia?.branch, 'z9hG4bKclient1~1');
    assert.equal(createAckForNon2xx(tx.request, makeResponse(tx.request, 486)).topVia?.branch, 'z9hG4bKclient1~1');
  });

  it('leaves branches alone without a tag, and refuses a tag that is not token characters', () => {
    const { layer } = setup();
    const tx = layer.sendRequest(makeRequest('OPTIONS', { branch: 'z9hG4bKplain', sentBy: '192.0.2.1:5060' }), destination('udp'), new RecordingUser());
    assert.equal(tx.request.topVia?.branch, 'z9hG4bKplain');
    assert.throws(() => layer.setBranchTag('~1;x'), TypeError);
  });
});
