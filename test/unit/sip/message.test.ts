import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  SipParseError, SipRequest, SipResponse, StreamFramer, createResponse, parseMessage, serializeMessage,
} from '../../../src/sip/index.js';

const SDP = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', ''].join('\r\n');

function invite(extra = ''): Buffer {
  return Buffer.from(
    'INVITE sip:bob@example.com SIP/2.0\r\n' +
      'Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7;rport\r\n' +
      'Max-Forwards: 70\r\n' +
      'To: Bob <sip:bob@example.com>\r\n' +
      'From: "Alice" <sip:alice@example.com>;tag=1928301774\r\n' +
      'Call-ID: a84b4c76e66710\r\n' +
      'CSeq: 314159 INVITE\r\n' +
      'Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws;ob>\r\n' +
      'X-Custom:   kept   as is  \r\n' +
      extra +
      'Content-Type: application/sdp\r\n' +
      `Content-Length: ${SDP.length}\r\n` +
      '\r\n' +
      SDP,
    'latin1',
  );
}

describe('SIP message model', () => {
  it('parses a request into typed headers', () => {
    const m = parseMessage(invite()) as SipRequest;
    assert.ok(m instanceof SipRequest);
    assert.equal(m.method, 'INVITE');
    assert.equal(m.uri, 'sip:bob@example.com');
    assert.equal(m.topVia?.transport, 'WSS');
    assert.equal(m.topVia?.branch, 'z9hG4bKnashds7');
    assert.equal(m.topVia?.rport, null);
    assert.ok(m.topVia?.isRfc3261Branch);
    assert.equal(m.from?.displayName, 'Alice');
    assert.equal(m.from?.tag, '1928301774');
    assert.equal(m.to?.tag, undefined);
    assert.equal(m.callId, 'a84b4c76e66710');
    assert.deepEqual(m.cseq, { seq: 314159, method: 'INVITE' });
    assert.equal(m.contentType, 'application/sdp');
    assert.equal(m.body.toString('latin1'), SDP);
    assert.equal(m.get('x-custom'), 'kept   as is');
  });

  it('serialises an unmodified message to the exact bytes it was parsed from', () => {
    const buf = invite();
    assert.ok(serializeMessage(parseMessage(buf)).equals(buf));
  });

  it('lets a proxy add a Via and Record-Route, pop a Route and decrement Max-Forwards, keeping untouched headers byte for byte', () => {
    const m = parseMessage(invite('Route: <sip:proxy.example.com;lr>, <sip:next.example.com;lr>\r\n')) as SipRequest;
    m.prepend('Via', 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKproxy1');
    m.set('Max-Forwards', String(m.maxForwards! - 1));
    m.removeFirstValue('route');
    m.prepend('Record-Route', '<sip:127.0.0.1:5060;lr>');
    const out = serializeMessage(m).toString('latin1');
    assert.match(out, /^INVITE sip:bob@example.com SIP\/2.0\r\nRecord-Route: <sip:127.0.0.1:5060;lr>\r\nVia: SIP\/2.0\/UDP 127.0.0.1:5060;branch=z9hG4bKproxy1\r\nVia: SIP\/2.0\/WSS /);
    assert.match(out, /\r\nMax-Forwards: 69\r\n/);
    assert.match(out, /\r\nRoute: <sip:next.example.com;lr>\r\n/);
    assert.match(out, /\r\nX-Custom:   kept   as is  \r\n/);
    const again = parseMessage(Buffer.from(out, 'latin1'));
    assert.equal(again.via.length, 2);
    assert.equal(again.route.length, 1);
    assert.equal(again.recordRoute.length, 1);
    assert.equal(again.body.toString('latin1'), SDP);
  });

  it('pops the top Via of a response, whether it stands alone or first in a list', () => {
    const r = parseMessage(Buffer.from(
      'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n' +
        'Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n',
      'latin1',
    ));
    r.removeFirstValue('via');
    assert.deepEqual(r.via.map((v) => v.host), ['b.example.com', 'c.example.com']);
    r.removeFirstValue('via');
    assert.deepEqual(r.via.map((v) => v.host), ['c.example.com']);
  });

  it('keeps Content-Length truthful when the body changes', () => {
    const m = parseMessage(invite());
    m.setBody('v=0\r\n', 'application/sdp');
    const again = parseMessage(serializeMessage(m));
    assert.equal(again.contentLength, 5);
    assert.equal(again.body.toString(), 'v=0\r\n');
  });

  it('adds a Content-Length to a message that had none when it is re-serialised', () => {
    const m = parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\n\r\n', 'latin1'));
    m.set('Max-Forwards', '70');
    assert.match(serializeMessage(m).toString('latin1'), /Content-Length: 0\r\n\r\n$/);
  });

  it('accepts bare LF line ends', () => {
    const m = parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\nCall-ID: 1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n', 'latin1'));
    assert.equal(m.callId, '1');
    assert.match(serializeMessage((m.set('X-A', '1'), m)).toString('latin1'), /\r\nCall-ID: 1\r\n/);
  });

  it('builds a response that copies Via, From, Call-ID and CSeq and adds a To tag (RFC 3261 §8.2.6.2)', () => {
    const req = parseMessage(invite()) as SipRequest;
    const res = createResponse(req, 180, { toTag: 'xyz' });
    const back = parseMessage(serializeMessage(res)) as SipResponse;
    assert.equal(back.status, 180);
    assert.equal(back.reason, 'Ringing');
    assert.equal(back.topVia?.branch, 'z9hG4bKnashds7');
    assert.equal(back.to?.tag, 'xyz');
    assert.equal(back.from?.tag, '1928301774');
    assert.deepEqual(back.cseq, { seq: 314159, method: 'INVITE' });
    assert.equal(createResponse(req, 100).to?.tag, undefined, '100 Trying gets no To tag');
  });

  it('throws SipParseError, never another error, for a header line without a colon', () => {
    assert.throws(() => parseMessage(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia\r\n\r\n')), SipParseError);
  });

  it('refuses a response status outside 100-699', () => {
    assert.throws(() => parseMessage(Buffer.from('SIP/2.0 700 Big\r\nContent-Length: 0\r\n\r\n')), SipParseError);
    assert.throws(() => parseMessage(Buffer.from('SIP/2.0 099 Small\r\nContent-Length: 0\r\n\r\n')), SipParseError);
  });

  it('refuses a message over the maximum size before parsing it', () => {
    assert.throws(() => parseMessage(invite(), { maxMessageSize: 100 }), (e: unknown) => e instanceof SipParseError && e.code === 'SIP_ERR_TOO_LARGE');
  });
});

describe('StreamFramer (RFC 3261 §18.3 stream framing)', () => {
  it('cuts messages by Content-Length however the bytes are chunked', () => {
    const one = invite();
    const stream = Buffer.concat([one, one, one]);
    for (const size of [1, 7, 100, stream.length]) {
      const f = new StreamFramer({ maxMessageSize: 65535 });
      const got: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) {
        for (const item of f.push(stream.subarray(i, i + size))) if (item.kind === 'message') got.push(item.data);
      }
      assert.equal(got.length, 3, `chunk size ${size}`);
      for (const g of got) assert.ok(g.equals(one));
      assert.equal(f.buffered, 0);
    }
  });

  it('reports a double CRLF between messages as an RFC 5626 ping and a single one as a pong', () => {
    const f = new StreamFramer({ maxMessageSize: 65535 });
    assert.deepEqual(f.push(Buffer.from('\r\n\r\n')), [{ kind: 'keepalive', crlfs: 2 }]);
    assert.deepEqual(f.push(Buffer.from('\r\n')), [{ kind: 'keepalive', crlfs: 1 }]);
    const items = f.push(Buffer.concat([Buffer.from('\r\n\r\n'), invite()]));
    assert.equal(items.length, 2);
    assert.equal(items[1]!.kind, 'message');
  });

  it('treats a missing Content-Length on a stream as an empty body', () => {
    const f = new StreamFramer({ maxMessageSize: 65535 });
    const items = f.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\nOPTIONS'));
    assert.equal(items.length, 1);
    assert.equal(f.buffered, 7);
  });

  it('fails the stream on a negative or conflicting Content-Length (RFC 4475 §3.1.2.3, §3.3.9)', () => {
    assert.throws(() => new StreamFramer({ maxMessageSize: 65535 }).push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n')), SipParseError);
    assert.throws(() => new StreamFramer({ maxMessageSize: 65535 }).push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab')), SipParseError);
  });

  it('fails the stream when a message grows past the maximum size, even before its head ends', () => {
    const f = new StreamFramer({ maxMessageSize: 1000 });
    assert.throws(() => f.push(Buffer.alloc(2000, 0x41)), (e: unknown) => e instanceof SipParseError && e.code === 'SIP_ERR_TOO_LARGE');
    const g = new StreamFramer({ maxMessageSize: 1000 });
    assert.throws(() => g.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n')), SipParseError);
  });
});
