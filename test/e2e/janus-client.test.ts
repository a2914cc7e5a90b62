/**
 * The Janus clients (conference/janus) against a real Janus 1.1 (Debian's `janus`, started by support/janus.ts
 * with token_auth, only the videoroom plugin and only the websockets transport, API and Admin API on loopback).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  JANUS_CORE_ERROR,
  JanusAdmin,
  JanusClient,
  JanusError,
  VIDEOROOM_ERROR,
  VIDEOROOM_PLUGIN,
  VideoRoomAdmin,
  type JanusClientOptions,
} from '../../conference/index.js';
import { startJanus, type JanusServer } from '../../support/janus.js';

const isJanusError = (code: string, janusCode?: number) => (err: unknown): boolean => {
  assert.ok(err instanceof JanusError, `a JanusError, not ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (janusCode !== undefined) assert.equal(err.janusCode, janusCode, err.message);
  return true;
};

const token = (): string => randomBytes(16).toString('hex');

describe('Janus API and Admin API against a real Janus (token_auth on, session_timeout 5 s)', () => {
  let janus: JanusServer;
  let admin: JanusAdmin;
  const clients: JanusClient[] = [];
  const connect = async (options: Omit<JanusClientOptions, 'url'> = {}): Promise<JanusClient> => {
    const client = await JanusClient.connect({ url: janus.url, ...options });
    clients.push(client);
    return client;
  };
  /** A client with a fresh stored token allowed to attach to the videoroom. */
  const authorized = async (options: Omit<JanusClientOptions, 'url' | 'token'> = {}): Promise<JanusClient> => {
    const t = token();
    await admin.addToken(t, [VIDEOROOM_PLUGIN]);
    return connect({ ...options, token: t });
  };

  before(async () => {
    janus = await startJanus({ sessionTimeoutSec: 5 });
    admin = await JanusAdmin.connect({ url: janus.adminUrl, adminSecret: janus.adminSecret });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await admin?.close();
    await janus?.stop();
  });

  it('the Admin API info names the videoroom plugin (and only it) and the websockets transport, with token auth on', async () => {
    const info = await admin.info();
    assert.deepEqual(Object.keys(info.plugins), [VIDEOROOM_PLUGIN], janus.logTail());
    assert.equal(info.plugins[VIDEOROOM_PLUGIN]?.name, 'JANUS VideoRoom plugin');
    assert.deepEqual(Object.keys(info.transports), ['janus.transport.websockets']);
    assert.equal(info.auth_token, true);
    assert.equal(info['session-timeout'], 5);
    assert.equal(info['server-name'], 'softswitch-test');
    assert.ok((await admin.ping()) >= 0);
  });

  it('the Admin API refuses a request with the wrong admin_secret (403)', async () => {
    const wrong = await JanusAdmin.connect({ url: janus.adminUrl, adminSecret: 'not-the-secret' });
    try {
      await assert.rejects(wrong.listTokens(), isJanusError('JANUS_ERR_REFUSED', JANUS_CORE_ERROR.UNAUTHORIZED));
    } finally {
      await wrong.close();
    }
  });

  it('with token_auth on, a session is refused without a token, accepted with one added through the Admin API, refused again after remove_token', async () => {
    const anonymous = await connect();
    // info needs no token (Janus answers it before checking one)
    assert.ok(VIDEOROOM_PLUGIN in (await anonymous.info()).plugins);
    await assert.rejects(anonymous.createSession(), isJanusError('JANUS_ERR_REFUSED', JANUS_CORE_ERROR.UNAUTHORIZED));

    const t = token();
    assert.deepEqual(await admin.addToken(t, [VIDEOROOM_PLUGIN]), [VIDEOROOM_PLUGIN]);
    assert.deepEqual((await admin.listTokens()).find((s) => s.token === t), { token: t, plugins: [VIDEOROOM_PLUGIN] });
    const withToken = await connect({ token: t });
    const session = await withToken.createSession();
    const handle = await session.attach(VIDEOROOM_PLUGIN);
    assert.ok(handle.id > 0);
    assert.ok((await admin.listSessions()).includes(session.id), 'list_sessions shows the new session');

    await admin.removeToken(t);
    assert.equal((await admin.listTokens()).find((s) => s.token === t), undefined);
    const again = await connect({ token: t });
    await assert.rejects(again.createSession(), isJanusError('JANUS_ERR_REFUSED', JANUS_CORE_ERROR.UNAUTHORIZED));
    // the token is checked on every request: the session it opened can do nothing more either
    await assert.rejects(session.keepalive(), isJanusError('JANUS_ERR_REFUSED', JANUS_CORE_ERROR.UNAUTHORIZED));
  });

  it('remove_token of a token Janus does not hold is refused', async () => {
    await assert.rejects(admin.removeToken(token()), isJanusError('JANUS_ERR_REFUSED'));
  });

  it('creates a room with secret and pin; exists, no participants, edit, list; destroy refused with a wrong secret (433), done with the right one', async () => {
    const client = await authorized();
    const session = await client.createSession();
    const rooms = await VideoRoomAdmin.attach(session);
    const room = 1000 + Math.floor(Math.random() * 1_000_000);
    const secret = token();

    assert.equal(await rooms.exists(room), false);
    assert.equal(await rooms.create({ room, description: 'standup', secret, pin: '4321', publishers: 6, bitrate: 512_000, videocodec: 'vp8,h264', audiocodec: 'opus', audiolevelEvent: true }), room);
    assert.equal(await rooms.exists(room), true);
    assert.deepEqual(await rooms.listParticipants(room), []);
    await assert.rejects(rooms.create({ room, secret }), isJanusError('JANUS_ERR_PLUGIN', VIDEOROOM_ERROR.ROOM_EXISTS));

    await assert.rejects(rooms.edit(room, { secret: 'wrong', description: 'hijacked' }), isJanusError('JANUS_ERR_PLUGIN', VIDEOROOM_ERROR.UNAUTHORIZED));
    await rooms.edit(room, { secret, description: 'standup (moved)' });
    const listed = (await rooms.list()).find((r) => r.room === room);
    assert.ok(listed, 'list shows the room');
    assert.equal(listed.description, 'standup (moved)');
    assert.equal(listed.pin_required, true);
    assert.equal(listed.max_publishers, 6);
    assert.equal(listed.bitrate, 512_000);
    assert.equal(listed.videocodec, 'vp8,h264');
    assert.equal(listed.audiocodec, 'opus');
    assert.equal(listed.audiolevel_event, true);
    assert.equal(listed.num_participants, 0);

    await assert.rejects(rooms.destroy(room, { secret: 'wrong' }), isJanusError('JANUS_ERR_PLUGIN', VIDEOROOM_ERROR.UNAUTHORIZED));
    assert.equal(await rooms.exists(room), true, 'a refused destroy leaves the room');
    await rooms.destroy(room, { secret });
    assert.equal(await rooms.exists(room), false);
    await assert.rejects(rooms.destroy(room, { secret }), isJanusError('JANUS_ERR_PLUGIN', VIDEOROOM_ERROR.NO_SUCH_ROOM));
  });

  it('a room picked by Janus, its token list (allowed), recording switched with the secret, kick and moderate of an absent participant refused (428)', async () => {
    const client = await authorized();
    const rooms = await VideoRoomAdmin.attach(await client.createSession());
    const secret = token();
    const room = await rooms.create({ secret, isPrivate: true, recDir: janus.dir });
    assert.ok(room > 0);
    assert.equal((await rooms.list()).find((r) => r.room === room), undefined, 'a private room is not listed');

    assert.deepEqual(await rooms.allowed({ room, secret, action: 'add', allowed: ['alice-token', 'bob-token'] }), ['alice-token', 'bob-token']);
    assert.deepEqual(await rooms.allowed({ room, secret, action: 'remove', allowed: ['bob-token'] }), ['alice-token']);
    await assert.rejects(rooms.allowed({ room, secret: 'wrong', action: 'enable' }), isJanusError('JANUS_ERR_PLUGIN', VIDEOROOM_ERROR.UNAUTHORIZED));

    await rooms.enableRecording({ room, secret, record: true });
    await rooms.enableRecording({ room, secret, record: false });
    await assert.rejects(rooms.kick({ room, secret, id: 424242 }), isJanusError('JANUS_ERR_PLUGIN', VIDEOROOM_ERROR.NO_SUCH_FEED));
    await assert.rejects(rooms.moderate({ room, secret, id: 424242, mid: '0', mute: true }), isJanusError('JANUS_ERR_PLUGIN', VIDEOROOM_ERROR.NO_SUCH_FEED));
    await assert.rejects(rooms.listParticipants(room + 1), isJanusError('JANUS_ERR_PLUGIN', VIDEOROOM_ERROR.NO_SUCH_ROOM));
    await rooms.destroy(room, { secret });
  });

  it('keepalives keep a session alive past session_timeout, while Janus times out a session without them', async () => {
    const kept = await (await authorized({ keepaliveMs: 1000 })).createSession();
    const idle = await (await authorized({ keepaliveMs: 0 })).createSession();
    const started = Date.now();
    const timedOut = once(idle, 'timeout');
    const destroyed = once(idle, 'destroyed');
    await Promise.race([
      timedOut,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no timeout event in 9 s\n${janus.logTail()}`)), 9000).unref()),
    ]);
    await destroyed;
    assert.ok(Date.now() - started >= 4500, `timed out after ${Date.now() - started} ms, session_timeout is 5 s`);
    assert.equal(idle.isDestroyed, true);
    await assert.rejects(idle.attach(), isJanusError('JANUS_ERR_CLOSED'));

    assert.equal(kept.isDestroyed, false);
    const handle = await kept.attach(VIDEOROOM_PLUGIN);
    assert.ok(handle.id > 0, 'the kept session still attaches after session_timeout');
    const sessions = await admin.listSessions();
    assert.ok(sessions.includes(kept.id) && !sessions.includes(idle.id), `list_sessions: ${sessions.join(', ')}`);
    await handle.detach();
    assert.equal(handle.isDetached, true);
    await kept.destroy();
    assert.ok(!(await admin.listSessions()).includes(kept.id), 'destroy removes the session from Janus');
  });
});

describe('Janus API against a real Janus that dies (api_secret on, token_auth off)', () => {
  let janus: JanusServer;
  const apiSecret = token();

  before(async () => {
    janus = await startJanus({ tokenAuth: false, apiSecret });
  });
  after(async () => {
    await janus?.stop();
  });

  it('with api_secret set, a request without it is refused (403) and one with it accepted', async () => {
    const without = await JanusClient.connect({ url: janus.url });
    const withSecret = await JanusClient.connect({ url: janus.url, apisecret: apiSecret });
    try {
      await assert.rejects(without.createSession(), isJanusError('JANUS_ERR_REFUSED', JANUS_CORE_ERROR.UNAUTHORIZED));
      const session = await withSecret.createSession();
      await session.destroy();
    } finally {
      await without.close();
      await withSecret.close();
    }
  });

  it('killing Janus rejects every pending request with JANUS_ERR_CLOSED and emits closed (and the session and handle end) promptly', async () => {
    const client = await JanusClient.connect({ url: janus.url, apisecret: apiSecret });
    const admin = await JanusAdmin.connect({ url: janus.adminUrl, adminSecret: janus.adminSecret });
    const session = await client.createSession();
    const rooms = await VideoRoomAdmin.attach(session);
    const closed = once(client, 'closed');
    const adminClosed = once(admin, 'closed');
    const sessionEnded = once(session, 'destroyed');
    const handleEnded = once(rooms.handle, 'detached');

    await janus.signal('SIGSTOP'); // frozen: the requests below stay unanswered
    const pending = [rooms.list({}, { timeoutMs: 20_000 }), session.keepalive({ timeoutMs: 20_000 }), admin.listSessions({ timeoutMs: 20_000 })];
    // settled together and watched from now: they reject while the kill is still being awaited
    const settled = Promise.allSettled(pending);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(client.inFlight, 2);
    const killed = Date.now();
    await janus.signal('SIGKILL');
    for (const result of await settled) {
      assert.equal(result.status, 'rejected');
      isJanusError('JANUS_ERR_CLOSED')(result.status === 'rejected' ? result.reason : undefined);
    }
    const [info] = await closed;
    await adminClosed;
    await sessionEnded;
    await handleEnded;
    assert.ok(Date.now() - killed < 2000, `closed ${Date.now() - killed} ms after the kill`);
    assert.equal(info.local, false);
    assert.equal(client.isClosed, true);
    await assert.rejects(client.createSession(), isJanusError('JANUS_ERR_CLOSED'));
    await assert.rejects(session.attach(), isJanusError('JANUS_ERR_CLOSED'));
    await assert.rejects(rooms.exists(1234), isJanusError('JANUS_ERR_CLOSED'));
  });
});
