/**
 * The Janus clients' transactions, timeouts, keepalives, routing and teardown, against a fake Janus: a ws
 * WebSocketServer on 127.0.0.1:0 whose answers each test writes.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { JanusAdmin, JanusClient, JanusError, VideoRoomAdmin, type JanusMessage } from '../../../conference/index.js';

interface Received {
  janus: string;
  transaction: string;
  session_id?: number;
  handle_id?: number;
  body?: { request: string; [key: string]: unknown };
  [key: string]: unknown;
}

interface FakeJanus {
  url: string;
  received: Received[];
  /** The server side of the latest connection. */
  socket(): WebSocket;
  close(): Promise<void>;
}

/** A fake Janus: `onRequest` sees each request and answers through `send` (or not at all). */
async function fakeJanus(onRequest: (req: Received, send: (message: Record<string, unknown>) => void) => void, options: { protocol?: string | false } = {}): Promise<FakeJanus> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (protocols) => {
      if (options.protocol === false) return false;
      const wanted = options.protocol ?? 'janus-protocol';
      return protocols.has(wanted) ? wanted : false;
    },
  });
  await once(wss, 'listening');
  const received: Received[] = [];
  let last: WebSocket | undefined;
  wss.on('connection', (ws) => {
    last = ws;
    ws.on('message', (data) => {
      const req = JSON.parse(data.toString()) as Received;
      received.push(req);
      onRequest(req, (message) => ws.send(JSON.stringify(message)));
    });
  });
  const { port } = wss.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    received,
    socket: () => {
      assert.ok(last, 'a client connected');
      return last;
    },
    close: () => new Promise<void>((resolve) => {
      for (const ws of wss.clients) ws.terminate();
      wss.close(() => resolve());
    }),
  };
}

/** Answers create, attach, keepalive, detach and destroy as Janus does; `message` is left to `onMessage`. */
function janusCore(onMessage: (req: Received, send: (m: Record<string, unknown>) => void) => void = () => {}) {
  let ids = 100;
  return (req: Received, send: (m: Record<string, unknown>) => void): void => {
    const { transaction } = req;
    switch (req.janus) {
      case 'create':
      case 'attach':
        send({ janus: 'success', transaction, data: { id: ++ids }, ...(req.session_id === undefined ? {} : { session_id: req.session_id }) });
        return;
      case 'keepalive':
        send({ janus: 'ack', transaction, session_id: req.session_id });
        return;
      case 'detach':
      case 'destroy':
        send({ janus: 'success', transaction, session_id: req.session_id });
        return;
      case 'message':
        onMessage(req, send);
        return;
      default:
        send({ janus: 'error', transaction, error: { code: 453, reason: `Unknown request '${req.janus}'` } });
    }
  };
}

const isJanusError = (code: string, janusCode?: number) => (err: unknown): boolean => {
  assert.ok(err instanceof JanusError, `a JanusError, not ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (janusCode !== undefined) assert.equal(err.janusCode, janusCode);
  return true;
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('JanusClient against a fake Janus', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const setup = async (
    handler: (req: Received, send: (m: Record<string, unknown>) => void) => void,
    options: Parameters<typeof JanusClient.connect>[0] extends infer O ? Omit<O, 'url'> : never = {},
  ): Promise<{ server: FakeJanus; client: JanusClient }> => {
    const server = await fakeJanus(handler);
    const client = await JanusClient.connect({ url: server.url, ...options });
    cleanups.push(async () => {
      await client.close();
      await server.close();
    });
    return { server, client };
  };

  it('speaks subprotocol janus-protocol and sends the token and apisecret with every request, each with a new random transaction', async () => {
    const { server, client } = await setup(janusCore(), { token: 'tok-1', apisecret: 'sec-1' });
    const session = await client.createSession();
    const handle = await session.attach('janus.plugin.videoroom');
    await session.keepalive();
    await handle.detach();
    await session.destroy();
    assert.deepEqual(server.received.map((r) => r.janus), ['create', 'attach', 'keepalive', 'detach', 'destroy']);
    for (const r of server.received) {
      assert.equal(r.token, 'tok-1');
      assert.equal(r.apisecret, 'sec-1');
      assert.match(r.transaction, /^[A-Za-z0-9_-]{16,}$/);
    }
    assert.equal(new Set(server.received.map((r) => r.transaction)).size, 5);
    assert.equal(server.received[1]?.plugin, 'janus.plugin.videoroom');
    assert.equal(server.received[1]?.session_id, session.id);
    assert.equal(server.received[3]?.handle_id, handle.id);
    assert.equal(server.socket().protocol, 'janus-protocol');
  });

  it('an answer reaches the request whose transaction it echoes, whatever the order of the answers', async () => {
    const held: { req: Received; send: (m: Record<string, unknown>) => void }[] = [];
    const { client } = await setup(janusCore((req, send) => {
      held.push({ req, send });
      if (held.length < 2) return;
      for (const { req: r, send: s } of held.reverse()) {
        s({ janus: 'success', transaction: r.transaction, sender: r.handle_id, plugindata: { plugin: 'janus.plugin.videoroom', data: { videoroom: 'success', echo: r.body?.request } } });
      }
    }));
    const handle = await (await client.createSession()).attach();
    const [a, b] = await Promise.all([handle.message({ request: 'first' }), handle.message({ request: 'second' })]);
    assert.equal(a.data.echo, 'first');
    assert.equal(b.data.echo, 'second');
  });

  it('a request unanswered within its timeout rejects with JANUS_ERR_TIMEOUT; its late answer is dropped and the client goes on', async () => {
    let late: (() => void) | undefined;
    const { client } = await setup(janusCore((req, send) => {
      if (req.body?.request === 'slow') {
        late = () => send({ janus: 'success', transaction: req.transaction, plugindata: { plugin: 'p', data: { late: true } } });
        return;
      }
      send({ janus: 'success', transaction: req.transaction, plugindata: { plugin: 'p', data: { ok: true } } });
    }));
    const handle = await (await client.createSession()).attach();
    const started = Date.now();
    await assert.rejects(handle.message({ request: 'slow' }, { timeoutMs: 100 }), (err: unknown) => {
      isJanusError('JANUS_ERR_TIMEOUT')(err);
      assert.equal((err as JanusError).request, 'message:slow');
      return true;
    });
    assert.ok(Date.now() - started >= 95);
    assert.equal(client.inFlight, 0, 'a timed-out request is forgotten');
    const unsolicited = once(client, 'message');
    late?.();
    assert.equal(((await unsolicited)[0] as JanusMessage).plugindata?.data.late, true, 'the late answer answers nothing');
    assert.deepEqual((await handle.message({ request: 'fast' })).data, { ok: true });
  });

  it('an async plugin request waits past the ack and resolves with the event of its transaction, jsep included', async () => {
    const jsep = { type: 'answer', sdp: 'v=0\r\n' };
    const { client } = await setup(janusCore((req, send) => {
      send({ janus: 'ack', transaction: req.transaction, session_id: req.session_id });
      setTimeout(() => send({
        janus: 'event', transaction: req.transaction, session_id: req.session_id, sender: req.handle_id,
        plugindata: { plugin: 'janus.plugin.videoroom', data: { videoroom: 'joined', room: 7 } }, jsep,
      }), 50);
    }));
    const handle = await (await client.createSession()).attach();
    const result = await handle.message({ request: 'joinandconfigure', room: 7 }, { jsep: { type: 'offer', sdp: 'v=0\r\n' } });
    assert.deepEqual(result, { data: { videoroom: 'joined', room: 7 }, jsep });
  });

  it('a plugin error_code rejects with JANUS_ERR_PLUGIN and Janus\'s `janus: error` with JANUS_ERR_REFUSED, each with its code and reason', async () => {
    const { client } = await setup(janusCore((req, send) => {
      if (req.body?.request === 'destroy') {
        send({ janus: 'success', transaction: req.transaction, plugindata: { plugin: 'janus.plugin.videoroom', data: { videoroom: 'event', error_code: 433, error: 'Unauthorized (wrong secret)' } } });
      } else {
        send({ janus: 'error', transaction: req.transaction, error: { code: 459, reason: 'No such handle' } });
      }
    }));
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    await assert.rejects(rooms.destroy(1234, { secret: 'x' }), (err: unknown) => {
      isJanusError('JANUS_ERR_PLUGIN', 433)(err);
      assert.equal((err as JanusError).reason, 'Unauthorized (wrong secret)');
      return true;
    });
    await assert.rejects(rooms.exists(1234), (err: unknown) => {
      isJanusError('JANUS_ERR_REFUSED', 459)(err);
      assert.equal((err as JanusError).reason, 'No such handle');
      return true;
    });
  });

  it('the videoroom wrappers send Janus\'s member names, never permanent rooms, and refuse a bad room id before sending', async () => {
    const { server, client } = await setup(janusCore((req, send) => {
      send({ janus: 'success', transaction: req.transaction, plugindata: { plugin: 'janus.plugin.videoroom', data: { videoroom: 'created', room: req.body?.room } } });
    }));
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    assert.equal(await rooms.create({ room: 42, description: 'd', secret: 's', pin: 'p', publishers: 4, bitrate: 300_000, videocodec: 'vp8', audiocodec: 'opus', audiolevelEvent: true, record: true, recDir: '/tmp/rec' }), 42);
    assert.deepEqual(server.received.at(-1)?.body, {
      request: 'create', room: 42, permanent: false, description: 'd', secret: 's', pin: 'p', publishers: 4, bitrate: 300_000,
      videocodec: 'vp8', audiocodec: 'opus', audiolevel_event: true, record: true, rec_dir: '/tmp/rec',
    });
    const sent = server.received.length;
    await assert.rejects(rooms.create({ room: -1 }), TypeError);
    await assert.rejects(rooms.kick({ room: 42, id: 1.5 }), TypeError);
    await assert.rejects(rooms.allowed({ room: 42, action: 'add', allowed: [] }), TypeError);
    assert.equal(server.received.length, sent, 'nothing was sent');
  });

  it('a session sends a keepalive every keepaliveMs with its id, and none once destroyed', async () => {
    const { server, client } = await setup(janusCore(), { keepaliveMs: 50 });
    const session = await client.createSession();
    await sleep(280);
    const keepalives = server.received.filter((r) => r.janus === 'keepalive');
    assert.ok(keepalives.length >= 3, `${keepalives.length} keepalives in 280 ms`);
    assert.ok(keepalives.every((k) => k.session_id === session.id));
    await session.destroy();
    const count = server.received.filter((r) => r.janus === 'keepalive').length;
    await sleep(150);
    assert.equal(server.received.filter((r) => r.janus === 'keepalive').length, count);
  });

  it('events go to the handle they name; a listener that throws stops neither the next listener nor the routing', async () => {
    const { server, client } = await setup(janusCore());
    const session = await client.createSession();
    const handle = await session.attach();
    const seen: unknown[] = [];
    handle.on('event', () => {
      throw new Error('a broken listener');
    });
    handle.on('event', (e) => seen.push(e.data));
    const hangup = once(handle, 'hangup');
    const send = (m: Record<string, unknown>): void => server.socket().send(JSON.stringify(m));
    send({ janus: 'event', session_id: session.id, sender: handle.id, plugindata: { plugin: 'janus.plugin.videoroom', data: { videoroom: 'event', leaving: 5 } } });
    send({ janus: 'event', session_id: session.id, sender: 999_999, plugindata: { plugin: 'janus.plugin.videoroom', data: { for: 'nobody' } } });
    send({ janus: 'hangup', session_id: session.id, sender: handle.id, reason: 'DTLS alert' });
    assert.deepEqual(await hangup, ['DTLS alert']);
    assert.deepEqual(seen, [{ videoroom: 'event', leaving: 5 }]);
    const detached = once(handle, 'detached');
    send({ janus: 'detached', session_id: session.id, sender: handle.id });
    await detached;
    assert.equal(handle.isDetached, true);
    assert.deepEqual(session.handleIds, []);
  });

  it('Janus\'s timeout of a session ends the session and its handles; their methods then reject with JANUS_ERR_CLOSED', async () => {
    const { server, client } = await setup(janusCore());
    const session = await client.createSession();
    const handle = await session.attach();
    const timeout = once(session, 'timeout');
    const detached = once(handle, 'detached');
    server.socket().send(JSON.stringify({ janus: 'timeout', session_id: session.id }));
    await timeout;
    await detached;
    assert.equal(session.isDestroyed, true);
    assert.deepEqual(client.sessionIds, []);
    await assert.rejects(session.keepalive(), isJanusError('JANUS_ERR_CLOSED'));
    await assert.rejects(handle.message({ request: 'list' }), isJanusError('JANUS_ERR_CLOSED'));
  });

  it('when the connection drops, every pending request rejects with JANUS_ERR_CLOSED, then closed is emitted once and the sessions end', async () => {
    const { server, client } = await setup(janusCore(() => {})); // messages are never answered
    const session = await client.createSession();
    const handle = await session.attach();
    const settled = Promise.allSettled([handle.message({ request: 'a' }), handle.message({ request: 'b' })]);
    let closedCount = 0;
    let inFlightAtClosed = -1;
    client.on('closed', () => {
      closedCount++;
      inFlightAtClosed = client.inFlight;
    });
    const ended = once(session, 'destroyed');
    await sleep(30);
    assert.equal(client.inFlight, 2);
    server.socket().terminate();
    for (const r of await settled) {
      assert.equal(r.status, 'rejected');
      isJanusError('JANUS_ERR_CLOSED')(r.status === 'rejected' ? r.reason : undefined);
    }
    await ended;
    await sleep(20);
    assert.equal(closedCount, 1);
    assert.equal(inFlightAtClosed, 0, 'the pending requests were rejected before closed was emitted');
    await assert.rejects(client.createSession(), isJanusError('JANUS_ERR_CLOSED'));
    await client.close(); // closing a closed client is harmless
  });

  it('close() rejects pending requests with JANUS_ERR_CLOSED and reports a local close', async () => {
    const { client } = await setup(janusCore(() => {}));
    const handle = await (await client.createSession()).attach();
    const pending = handle.message({ request: 'never' });
    const closed = once(client, 'closed');
    await client.close();
    await assert.rejects(pending, isJanusError('JANUS_ERR_CLOSED'));
    assert.equal((await closed)[0].local, true);
  });

  it('connecting where nothing listens, or to a server that refuses janus-protocol, rejects with JANUS_ERR_CONNECT', async () => {
    const server = await fakeJanus(() => {}, { protocol: false });
    try {
      await assert.rejects(JanusClient.connect({ url: server.url }), isJanusError('JANUS_ERR_CONNECT'));
    } finally {
      await server.close();
    }
    await assert.rejects(JanusClient.connect({ url: server.url, timeoutMs: 1000 }), isJanusError('JANUS_ERR_CONNECT'));
    await assert.rejects(JanusClient.connect({ url: 'http://127.0.0.1:1' }), TypeError);
  });
});

describe('JanusAdmin against a fake Janus', () => {
  it('speaks janus-admin-protocol, sends admin_secret with every request and reads tokens and sessions', async () => {
    const server = await fakeJanus((req, send) => {
      const { transaction } = req;
      if (req.janus === 'add_token') send({ janus: 'success', transaction, data: { plugins: req.plugins } });
      else if (req.janus === 'list_tokens') send({ janus: 'success', transaction, data: { tokens: [{ token: 't1', allowed_plugins: ['janus.plugin.videoroom'] }] } });
      else if (req.janus === 'list_sessions') send({ janus: 'success', transaction, sessions: [11, 12] });
      else if (req.janus === 'remove_token') send({ janus: 'error', transaction, error: { code: 490, reason: 'Error removing token' } });
      else if (req.janus === 'ping') send({ janus: 'pong', transaction });
    }, { protocol: 'janus-admin-protocol' });
    const admin = await JanusAdmin.connect({ url: server.url, adminSecret: 'overlord' });
    try {
      assert.deepEqual(await admin.addToken('t1', ['janus.plugin.videoroom']), ['janus.plugin.videoroom']);
      assert.deepEqual(await admin.listTokens(), [{ token: 't1', plugins: ['janus.plugin.videoroom'] }]);
      assert.deepEqual(await admin.listSessions(), [11, 12]);
      assert.ok((await admin.ping()) >= 0);
      await assert.rejects(admin.removeToken('t1'), isJanusError('JANUS_ERR_REFUSED', 490));
      await assert.rejects(admin.addToken(''), TypeError);
      assert.ok(server.received.every((r) => r.admin_secret === 'overlord'));
      assert.equal(server.socket().protocol, 'janus-admin-protocol');
      const closed = once(admin, 'closed');
      const pending = admin.info({ timeoutMs: 5000 });
      server.socket().terminate();
      await assert.rejects(pending, isJanusError('JANUS_ERR_CLOSED'));
      await closed;
    } finally {
      await admin.close();
      await server.close();
    }
  });
});
