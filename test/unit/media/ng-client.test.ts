import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { NgClient, RtpengineError, bdecode, bencode, type BencodeInput } from '../../../media/index.js';
import { startRtpengine, type RtpengineHandle } from '../../../support/rtpengine.js';
import { plainAnswer, plainOffer } from './sdp-fixtures.js';

/** A UDP "rtpengine" in the test: it hands each datagram to `onRequest`, which may answer or not. */
async function fakeNg(onRequest: (req: { cookie: string; dict: Record<string, unknown>; raw: Buffer; n: number; from: RemoteInfo }, reply: (dict: BencodeInput | Buffer, cookie?: string) => void) => void): Promise<{ port: number; received: Buffer[]; socket: Socket; close(): Promise<void> }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    received.push(msg);
    const space = msg.indexOf(0x20);
    const cookie = msg.toString('latin1', 0, space);
    const dict = bdecode(msg.subarray(space + 1)) as Record<string, unknown>;
    onRequest({ cookie, dict, raw: msg, n: received.length, from: rinfo }, (body, c = cookie) => {
      const payload = Buffer.isBuffer(body) ? body : bencode(body);
      socket.send(Buffer.concat([Buffer.from(`${c} `), payload]), rinfo.port, rinfo.address);
    });
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, received, socket, close: () => new Promise((r) => socket.close(() => r())) };
}

const isCode = (code: string) => (err: unknown) => err instanceof RtpengineError && err.code === code;

describe('NgClient against a fake ng server', () => {
  it('retransmits the same datagram, same cookie, until it is answered', async () => {
    const server = await fakeNg((req, reply) => {
      if (req.n === 2) reply({ result: 'pong' }); // the first datagram is "lost"
    });
    const client = new NgClient({ host: '127.0.0.1', port: server.port, retransmitMs: 100 });
    try {
      const started = Date.now();
      assert.deepEqual(await client.command({ command: 'ping' }), { result: 'pong' });
      assert.ok(Date.now() - started >= 90, 'answered only after a retransmission');
      assert.equal(server.received.length, 2);
      assert.deepEqual(server.received[1], server.received[0], 'a retransmission is byte for byte the first send');
    } finally {
      client.close();
      await server.close();
    }
  });

  it('uses a new random cookie for each command', async () => {
    const cookies: string[] = [];
    const server = await fakeNg((req, reply) => {
      cookies.push(req.cookie);
      reply({ result: 'pong' });
    });
    const client = new NgClient({ host: '127.0.0.1', port: server.port });
    try {
      for (let i = 0; i < 5; i++) await client.command({ command: 'ping' });
      assert.equal(new Set(cookies).size, 5);
      for (const c of cookies) assert.match(c, /^[0-9a-f]{16}$/);
    } finally {
      client.close();
      await server.close();
    }
  });

  it('rejects with RTPENGINE_ERR_TIMEOUT when nothing answers within the timeout, after retransmitting', async () => {
    const server = await fakeNg(() => {});
    const client = new NgClient({ host: '127.0.0.1', port: server.port, retransmitMs: 50, timeoutMs: 400 });
    try {
      const started = Date.now();
      await assert.rejects(client.command({ command: 'ping' }), isCode('RTPENGINE_ERR_TIMEOUT'));
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 390 && elapsed < 1500, `timed out after ${elapsed} ms`);
      // sends at 0, 50, 150, 350 ms (intervals doubling); a loaded machine may lose the last one to the deadline
      assert.ok(server.received.length >= 3 && server.received.length <= 4, `${server.received.length} sends`);
      assert.equal(client.inFlight, 0);
    } finally {
      client.close();
      await server.close();
    }
  });

  it('matches replies by cookie, whatever order they come in', async () => {
    const held: Array<() => void> = [];
    const server = await fakeNg((req, reply) => {
      if (req.dict.command !== 'query') return;
      held.push(() => reply({ result: 'ok', 'call-id': req.dict['call-id'] as string }));
      if (held.length === 3) for (const send of held.reverse()) send();
    });
    const client = new NgClient({ host: '127.0.0.1', port: server.port, retransmitMs: 2000 });
    try {
      const replies = await Promise.all(['a', 'b', 'c'].map((id) => client.command({ command: 'query', 'call-id': id })));
      assert.deepEqual(replies.map((r) => r['call-id']), ['a', 'b', 'c']);
    } finally {
      client.close();
      await server.close();
    }
  });

  it('rejects a result: error reply with RTPENGINE_ERR_COMMAND carrying the error-reason', async () => {
    const server = await fakeNg((_req, reply) => reply({ result: 'error', 'error-reason': 'Unknown call-id' }));
    const client = new NgClient({ host: '127.0.0.1', port: server.port });
    try {
      await assert.rejects(client.command({ command: 'query', 'call-id': 'nope' }), (err: unknown) => {
        assert.ok(err instanceof RtpengineError);
        assert.equal(err.code, 'RTPENGINE_ERR_COMMAND');
        assert.equal(err.message, 'Unknown call-id');
        assert.equal(err.reason, 'Unknown call-id');
        assert.equal(err.node, `udp:127.0.0.1:${server.port}`);
        return true;
      });
    } finally {
      client.close();
      await server.close();
    }
  });

  it('rejects a malformed reply with RTPENGINE_ERR_REPLY', async () => {
    const server = await fakeNg((req, reply) => reply(req.dict.command === 'ping' ? Buffer.from('d6:result4:pon') : { no: 'result' }));
    const client = new NgClient({ host: '127.0.0.1', port: server.port });
    try {
      await assert.rejects(client.command({ command: 'ping' }), isCode('RTPENGINE_ERR_REPLY'));
      await assert.rejects(client.command({ command: 'list' }), isCode('RTPENGINE_ERR_REPLY'));
    } finally {
      client.close();
      await server.close();
    }
  });

  it('ignores a reply with the right cookie from another address', async () => {
    const intruder = createSocket('udp4');
    await new Promise<void>((r) => intruder.bind(0, '127.0.0.1', r));
    const server = await fakeNg((req) => {
      // the answer comes from a socket that is not the one the client sent to
      intruder.send(Buffer.concat([Buffer.from(`${req.cookie} `), bencode({ result: 'pong' })]), req.from.port, req.from.address);
    });
    const client = new NgClient({ host: '127.0.0.1', port: server.port, timeoutMs: 300, retransmitMs: 1000 });
    try {
      await assert.rejects(client.command({ command: 'ping' }), isCode('RTPENGINE_ERR_TIMEOUT'));
    } finally {
      client.close();
      intruder.close();
      await server.close();
    }
  });

  it('close() rejects pending commands with RTPENGINE_ERR_CLOSED, and later commands too', async () => {
    const server = await fakeNg(() => {});
    const client = new NgClient({ host: '127.0.0.1', port: server.port });
    try {
      const pending = client.command({ command: 'ping' });
      await new Promise((r) => setTimeout(r, 20));
      client.close();
      await assert.rejects(pending, isCode('RTPENGINE_ERR_CLOSED'));
      await assert.rejects(client.command({ command: 'ping' }), isCode('RTPENGINE_ERR_CLOSED'));
    } finally {
      await server.close();
    }
  });

  it('refuses bad arguments with TypeError', async () => {
    assert.throws(() => new NgClient({ host: '', port: 1 }), TypeError);
    assert.throws(() => new NgClient({ host: '127.0.0.1', port: 70000 }), TypeError);
    assert.throws(() => new NgClient({ host: '127.0.0.1', port: 2223, timeoutMs: 0 }), TypeError);
    const client = new NgClient({ host: '127.0.0.1', port: 2223 });
    await assert.rejects(client.command({ command: '' }), TypeError);
    client.close();
  });
});

describe('NgClient against a real rtpengine', () => {
  let rtp: RtpengineHandle;
  let client: NgClient;
  before(async () => {
    rtp = await startRtpengine();
    client = new NgClient({ host: '127.0.0.1', port: rtp.ngPort });
  });
  after(async () => {
    client?.close();
    await rtp?.stop();
  });

  it('ping → pong', async () => {
    assert.deepEqual(await client.command({ command: 'ping' }), { result: 'pong' });
  });

  it('offer/answer/delete of a plain RTP/AVP call; query and list show it, then show it gone', async () => {
    const callId = `plain-${Date.now()}@test`;
    const offer = await client.command({ command: 'offer', 'call-id': callId, 'from-tag': 'alice-tag', sdp: plainOffer(40000), 'transport-protocol': 'RTP/AVP', ICE: 'remove' });
    assert.equal(offer.result, 'ok');
    const offerSdp = offer.sdp as string;
    assert.match(offerSdp, /^m=audio (\d+) RTP\/AVP 0 8 101\r?$/m);
    assert.match(offerSdp, /^c=IN IP4 127\.0\.0\.1\r?$/m);
    assert.doesNotMatch(offerSdp, /^m=audio 40000 /m, 'rtpengine put its own port in the offer');

    const answer = await client.command({ command: 'answer', 'call-id': callId, 'from-tag': 'alice-tag', 'to-tag': 'bob-tag', sdp: plainAnswer(40010) });
    assert.equal(answer.result, 'ok');
    assert.match(answer.sdp as string, /^m=audio \d+ RTP\/AVP 0/m);

    const query = await client.command({ command: 'query', 'call-id': callId });
    assert.equal(query.result, 'ok');
    assert.deepEqual(Object.keys(query.tags as object).sort(), ['alice-tag', 'bob-tag']);
    const list = await client.command({ command: 'list' });
    assert.ok((list.calls as string[]).includes(callId));
    assert.deepEqual(await rtp.listSessions(), [callId]);

    const del = await client.command({ command: 'delete', 'call-id': callId, 'from-tag': 'alice-tag', 'to-tag': 'bob-tag' });
    assert.equal(del.result, 'ok');
    assert.equal(del.warning, undefined);

    await assert.rejects(client.command({ command: 'query', 'call-id': callId }), (err: unknown) => err instanceof RtpengineError && err.reason === 'Unknown call-id');
    assert.ok(!((await client.command({ command: 'list' })).calls as string[]).includes(callId));
    assert.deepEqual(await rtp.listSessions({ includeDeleted: true }), []);
  });

  it('an answer for a call rtpengine never saw is RTPENGINE_ERR_COMMAND', async () => {
    await assert.rejects(
      client.command({ command: 'answer', 'call-id': 'never-offered', 'from-tag': 'a', 'to-tag': 'b', sdp: plainAnswer(40020) }),
      (err: unknown) => err instanceof RtpengineError && err.code === 'RTPENGINE_ERR_COMMAND' && /call-id/i.test(err.message),
    );
  });
});
