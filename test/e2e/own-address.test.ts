/**
 * Requests addressed to the server itself (a Request-URI without a user part naming its address or a
 * domain it serves), sent as UDP datagrams to a running softswitch: routing step 5 answers OPTIONS 200,
 * a method it proxies for its users 405 and an unknown method 501, each with the Allow of its own address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type Socket, createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { ALLOWED_METHODS } from '../../src/core/index.js';
import { type SipResponse, parseMessage } from '../../src/sip/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('requests to the server\'s own address (routing step 5)', () => {
  let t: TestServer;
  let socket: Socket;

  before(async () => {
    t = await startTestServer();
    socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  });
  after(async () => {
    socket.close();
    await t.stop();
  });

  /** Sends `method` to `ruri` and resolves with the final response (provisional ones are skipped). */
  function finalAnswer(method: string, ruri: string): Promise<SipResponse> {
    const server = t.listener('udp');
    const callId = randomBytes(8).toString('hex');
    const request = [
      `${method} ${ruri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${socket.address().port};rport;branch=z9hG4bK${callId}`, 'Max-Forwards: 70',
      `From: <sip:alice@example.com>;tag=${callId}`, `To: <${ruri}>`, `Call-ID: ${callId}`, `CSeq: 1 ${method}`, 'Content-Length: 0', '', '',
    ].join('\r\n');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no final answer to ${method} ${ruri}`)), 3000);
      const onMessage = (data: Buffer): void => {
        const m = parseMessage(data) as SipResponse;
        if (m.callId === callId && m.status >= 200) done(undefined, m);
      };
      const done = (err: Error | undefined, res?: SipResponse): void => {
        clearTimeout(timer);
        socket.off('message', onMessage);
        if (err !== undefined) reject(err);
        else resolve(res!);
      };
      socket.on('message', onMessage);
      socket.send(request, server.port, server.address);
    });
  }

  const allowed = ALLOWED_METHODS.join(', ');

  it('answers OPTIONS 200 with Allow listing what it serves there', async () => {
    const res = await finalAnswer('OPTIONS', 'sip:example.com');
    assert.equal(res.status, 200);
    assert.equal(res.get('Allow'), allowed);
  });

  it('answers INVITE, MESSAGE and SUBSCRIBE to its address or its domain 405 with the same Allow, not 404', async () => {
    const own = `sip:${t.addr('udp')}`;
    for (const [method, ruri] of [['INVITE', own], ['MESSAGE', 'sip:example.com'], ['SUBSCRIBE', own]] as const) {
      const res = await finalAnswer(method, ruri);
      assert.equal(res.status, 405, `${method} ${ruri}`);
      assert.equal(res.get('Allow'), allowed, `${method} ${ruri}`);
    }
  });

  it('answers a method it does not recognise 501', async () => {
    const res = await finalAnswer('FOO', `sip:${t.addr('udp')}`);
    assert.equal(res.status, 501);
    assert.equal(res.get('Allow'), allowed);
  });
});
