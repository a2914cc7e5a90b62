/** The pieces that let one cluster worker send on another's connection: flow ids that name their worker, the control frames. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { flowOwner, flowTag, flowWorker } from '../../../../server/cluster/index.js';
import {
  FRAME_MESSAGE, FRAME_SEND, FRAME_SENT, controlFrame, frameHeader, parseControlFrame, parseFrame,
} from '../../../../server/cluster/wire.js';
import { silentLogger } from '../../../../src/log/index.js';
import { TransportLayer } from '../../../../src/transport/index.js';
import type { Flow, StreamRelay } from '../../../../src/transport/types.js';

describe('flow ids of cluster workers', () => {
  it('name the worker that holds the connection: <protocol>:w<N>.…', () => {
    assert.equal(flowTag(3), 'w3');
    assert.equal(flowWorker('wss:w3.a1b2c3-17'), 3);
    assert.equal(flowWorker('tcp:w0.ffffff-1'), 0);
    assert.equal(flowWorker('tls:w12.abcdef-9'), 12);
  });

  it('tell the old and the new worker of a slot apart by generation (both up during a rolling restart)', () => {
    assert.equal(flowTag(1, 0), 'w1');
    assert.equal(flowTag(1, 2), 'w1g2');
    assert.deepEqual(flowOwner('tcp:w1.a1b2c3-4'), { index: 1, generation: 0 });
    assert.deepEqual(flowOwner('wss:w1g2.a1b2c3-4'), { index: 1, generation: 2 });
    assert.equal(flowWorker('wss:w1g2.a1b2c3-4'), 1);
    for (const id of ['tcp:wg2.x-1', 'tcp:w1g.x-1', 'tcp:w1gg2.x-1', 'tcp:w1x2.x-1']) assert.equal(flowOwner(id), undefined, id);
  });

  it('leave every other id (one process, UDP flows, garbage) to nobody', () => {
    for (const id of ['wss:a1b2c3-17', 'udp:127.0.0.1:5060>127.0.0.1:5070', 'wss:w.x-1', 'wss:wx1.y-1', 'nonsense', '']) {
      assert.equal(flowWorker(id), undefined, id);
    }
  });
});

describe('control frames between workers', () => {
  it('carry a JSON header and the payload unchanged, and are never taken for a datagram frame', () => {
    const payload = Buffer.from('INVITE sip:bob@example.com SIP/2.0\r\n\r\n');
    for (const kind of [FRAME_SEND, FRAME_SENT, FRAME_MESSAGE] as const) {
      const msg = Buffer.concat([controlFrame(kind, { id: 7, flowId: 'wss:w1.abc-1' }), payload]);
      const parsed = parseControlFrame(msg);
      assert.equal(parsed?.kind, kind);
      assert.deepEqual(parsed?.header, { id: 7, flowId: 'wss:w1.abc-1' });
      assert.deepEqual(parsed?.data, payload);
      assert.equal(parseFrame(msg), undefined);
    }
    const datagram = Buffer.concat([frameHeader({ address: '127.0.0.1', port: 5070 }, { address: '127.0.0.1', port: 5060 }), payload]);
    assert.equal(parseControlFrame(datagram), undefined);
  });

  it('refuse a truncated or garbled header', () => {
    const whole = controlFrame(FRAME_SEND, { id: 1 });
    assert.equal(parseControlFrame(whole.subarray(0, whole.length - 2)), undefined);
    const garbled = Buffer.from(whole);
    garbled[5] = 0x7b; // '{' inside the JSON
    assert.equal(parseControlFrame(garbled), undefined);
    assert.equal(parseControlFrame(Buffer.from([0xf5, 9, 0, 0])), undefined);
  });
});

describe('TransportLayer with a stream relay (cluster workers)', () => {
  it('writes the flow tag into the ids of its connections and relays a send on another worker\'s flow', async () => {
    const relayed: Array<{ flowId: string; text: string }> = [];
    const relay: StreamRelay = {
      isRemote: (id) => flowWorker(id) !== undefined && flowWorker(id) !== 1,
      send: async (data, flowId) => {
        relayed.push({ flowId, text: data.toString() });
      },
    };
    const transport = new TransportLayer({ listen: [{ protocol: 'ws', address: '127.0.0.1', port: 0 }], user: { onMessage: () => undefined }, logger: silentLogger() });
    transport.setStreamRelay(flowTag(1), relay);
    await transport.start();
    try {
      const flow: Flow = await transport.send(Buffer.from('OPTIONS'), { protocol: 'ws', address: '127.0.0.1', port: 40000, flowId: 'ws:w0.abc-3' });
      assert.deepEqual(relayed, [{ flowId: 'ws:w0.abc-3', text: 'OPTIONS' }]);
      assert.equal(flow.id, 'ws:w0.abc-3');
      assert.equal(flow.local.port, transport.listeners[0]!.port);
      // A flow of this worker's own that is gone is not relayed: the send fails here.
      await assert.rejects(transport.send(Buffer.from('x'), { protocol: 'ws', address: '127.0.0.1', port: 40000, flowId: 'ws:w1.abc-3' }), /closed/);
      await assert.rejects(transport.sendOnFlow('ws:w1.abc-3', Buffer.from('x')), /closed/);
    } finally {
      await transport.stop();
    }
  });
});
