import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { parse } from 'sdp-transform';
import { createLogger, silentLogger } from '../../../src/log/index.js';
import { MediaError, audioCodecs, createMediaGateway, type MediaGateway } from '../../../media/index.js';
import { startRtpengine, type RtpengineHandle } from '../../../support/rtpengine.js';
import { plainAnswer, plainOffer, webrtcAnswer, webrtcOffer } from './sdp-fixtures.js';

/** The audio m-line of an SDP, as sdp-transform reads it, with the attributes the tests look at. */
function audio(sdp: string) {
  const m = parse(sdp).media.find((x) => x.type === 'audio');
  assert.ok(m, 'an audio m-line');
  return m;
}

function assertPlain(sdp: string): void {
  const m = audio(sdp);
  assert.equal(m.protocol, 'RTP/AVP');
  for (const attr of ['a=ice-ufrag', 'a=ice-pwd', 'a=candidate', 'a=fingerprint', 'a=setup', 'a=crypto', 'a=rtcp-mux']) {
    assert.ok(!sdp.includes(attr), `no ${attr} towards the plain leg`);
  }
}

function assertWebrtc(sdp: string): void {
  const m = audio(sdp);
  assert.equal(m.protocol, 'UDP/TLS/RTP/SAVPF');
  assert.ok(m.iceUfrag && m.icePwd, 'ICE credentials');
  assert.ok((m.candidates ?? []).length > 0, 'ICE candidates');
  assert.equal(m.candidates![0]!.ip, '127.0.0.1');
  assert.match(m.fingerprint?.hash ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(m.rtcpMux, 'rtcp-mux');
  assert.ok(!sdp.includes('a=crypto'), 'no SDES towards a browser');
}

const wss = { transport: 'wss' } as const;
const udp = { transport: 'udp' } as const;

describe('MediaGateway with a real rtpengine', () => {
  let rtp: RtpengineHandle;
  let gw: MediaGateway;
  before(async () => {
    rtp = await startRtpengine();
    gw = createMediaGateway({ nodes: [rtp.ng], logger: silentLogger() });
    gw.start();
  });
  after(async () => {
    gw?.stop();
    await rtp?.stop();
  });

  it('WebRTC (opus only) → plain G.711 phone: RTP/AVP without ICE/DTLS out, SAVPF with ICE and fingerprint back, opus ⇄ PCMU transcoded', async () => {
    const callId = 'webrtc-to-plain@test';
    const browserOffer = webrtcOffer();
    assert.equal(gw.needsRelay({ ...wss, sdp: browserOffer }, udp), true);

    const toPhone = await gw.offer({ callId, fromTag: 'alice', viaBranch: 'z9hG4bK-a1', sdp: browserOffer, from: { ...wss, sdp: browserOffer }, to: udp });
    assertPlain(toPhone);
    const offered = audioCodecs(toPhone);
    assert.ok(offered.includes('PCMU') && offered.includes('PCMA'), `G.711 added for the phone: ${offered.join(' ')}`);
    assert.equal(audio(toPhone).port >= 20000, true);
    assert.notEqual(audio(toPhone).port, 50000);

    // the phone answers PCMU only, with the offered telephone-event payload type
    const phoneAnswer = plainAnswer(40010, { dtmf: 126 });
    const toBrowser = await gw.answer({ callId, fromTag: 'alice', toTag: 'bob', viaBranch: 'z9hG4bK-a1', sdp: phoneAnswer, from: { ...wss, sdp: browserOffer }, to: { ...udp, sdp: phoneAnswer } });
    assertWebrtc(toBrowser);
    const m = audio(toBrowser);
    assert.deepEqual(audioCodecs(toBrowser).filter((c) => c !== 'telephone-event'), ['opus'], 'the browser keeps opus');
    assert.notEqual(m.setup, 'passive', 'never DTLS passive in the answer to a WebRTC caller');

    const query = await gw.pool.query({ 'call-id': callId });
    const flags = mediaFlags(query, 'alice');
    assert.ok(flags.includes('transcoding'), `rtpengine transcodes for the browser leg: ${flags.join(', ')}`);
    assert.ok(flags.includes('DTLS-SRTP') && flags.includes('ICE'), flags.join(', '));

    assert.deepEqual(await rtp.listSessions(), [callId]);
    await gw.delete({ callId, fromTag: 'alice', toTag: 'bob' });
    assert.deepEqual(await rtp.listSessions({ includeDeleted: true }), [], 'no session left after delete');
  });

  it('a WebRTC offer that has G.711 reaches the phone without transcoding', async () => {
    const callId = 'webrtc-g711@test';
    const browserOffer = webrtcOffer(50020, { withG711: true });
    const toPhone = await gw.offer({ callId, fromTag: 'alice', sdp: browserOffer, from: wss, to: udp });
    assertPlain(toPhone);
    const phoneAnswer = plainAnswer(40030, { dtmf: 126 });
    const toBrowser = await gw.answer({ callId, fromTag: 'alice', toTag: 'bob', sdp: phoneAnswer, from: wss, to: udp });
    assertWebrtc(toBrowser);
    assert.deepEqual(audioCodecs(toBrowser).filter((c) => c !== 'telephone-event'), ['PCMU']);
    assert.ok(!mediaFlags(await gw.pool.query({ 'call-id': callId }), 'alice').includes('transcoding'));
    await gw.delete({ callId });
    assert.deepEqual(await rtp.listSessions({ includeDeleted: true }), []);
  });

  it('plain phone → WebRTC: the browser gets SAVPF with ICE, fingerprint and actpass; the phone gets RTP/AVP back', async () => {
    const callId = 'plain-to-webrtc@test';
    const toBrowser = await gw.offer({ callId, fromTag: 'desk', sdp: plainOffer(40040), from: udp, to: wss });
    assertWebrtc(toBrowser);
    assert.equal(audio(toBrowser).setup, 'actpass');
    const toPhone = await gw.answer({ callId, fromTag: 'desk', toTag: 'browser', sdp: webrtcAnswer(), from: { ...udp, sdp: plainOffer(40040) }, to: wss });
    assertPlain(toPhone);
    assert.equal(audioCodecs(toPhone)[0], 'PCMU');
    await gw.delete({ callId, fromTag: 'desk', toTag: 'browser' });
    assert.deepEqual(await rtp.listSessions({ includeDeleted: true }), []);
  });

  it('a forked call gets one media session per branch; the loser is deleted by its branch, the winner stays', async () => {
    const callId = 'forked@test';
    const browserOffer = webrtcOffer(50040);
    const branch1 = await gw.offer({ callId, fromTag: 'alice', viaBranch: 'z9hG4bK-f1', sdp: browserOffer, from: wss, to: udp });
    const branch2 = await gw.offer({ callId, fromTag: 'alice', viaBranch: 'z9hG4bK-f2', sdp: browserOffer, from: wss, to: udp });
    assert.notEqual(audio(branch1).port, audio(branch2).port, 'each branch has its own ports');

    await gw.answer({ callId, fromTag: 'alice', toTag: 'phone-1', viaBranch: 'z9hG4bK-f1', sdp: plainAnswer(40050, { dtmf: 126 }), from: wss, to: udp });
    await gw.delete({ callId, fromTag: 'alice', viaBranch: 'z9hG4bK-f2' });
    // rtpengine 10.5 keeps a deleted branch in `query` until the call goes, with its ports released
    const ports = branchPorts(await gw.pool.query({ 'call-id': callId }));
    assert.equal(ports.get('z9hG4bK-f1')!.length, 2, 'the winner keeps its RTP and RTCP ports');
    assert.deepEqual(ports.get('z9hG4bK-f2'), [], 'the loser\'s ports are released');
    assert.equal(gw.pool.nodeOf(callId), rtp.ng, 'the call keeps its node after a branch is deleted');

    await gw.delete({ callId, fromTag: 'alice', toTag: 'phone-1' });
    assert.deepEqual(await rtp.listSessions({ includeDeleted: true }), []);
  });

  it('rtpengine refusing an SDP is MEDIA_ERR_RELAY_REFUSED (488)', async () => {
    const broken = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio xx RTP/AVP 0\r\n';
    await assert.rejects(gw.offer({ callId: 'broken@test', fromTag: 'a', sdp: broken, from: udp, to: wss }), (err: unknown) => {
      assert.ok(err instanceof MediaError);
      assert.equal(err.code, 'MEDIA_ERR_RELAY_REFUSED');
      assert.equal(err.status, 488);
      return true;
    });
  });

  it('refuses a missing SDP or Call-ID with TypeError', async () => {
    await assert.rejects(gw.offer({ callId: 'x', fromTag: 'a', sdp: '', from: udp, to: wss }), TypeError);
    await assert.rejects(gw.offer({ callId: '', fromTag: 'a', sdp: plainOffer(), from: udp, to: wss }), TypeError);
  });
});

describe('MediaGateway without rtpengine', () => {
  it('needsRelay answers: only WebRTC ⇄ plain needs a relay, unless alwaysRelay', () => {
    const gw = createMediaGateway({ nodes: [], logger: silentLogger() });
    assert.equal(gw.hasRelay, false);
    assert.equal(gw.needsRelay(wss, udp), true);
    assert.equal(gw.needsRelay(udp, { transport: 'ws' }), true);
    assert.equal(gw.needsRelay(wss, wss), false, 'WebRTC ⇄ WebRTC keeps media end to end');
    assert.equal(gw.needsRelay(udp, { transport: 'tls' }), false);
    assert.equal(gw.needsRelay({ transport: 'tcp', sdp: webrtcOffer() }, udp), true, 'a WebRTC SDP over TCP is WebRTC');
    const always = createMediaGateway({ nodes: [], logger: silentLogger(), alwaysRelay: true });
    assert.equal(always.needsRelay(wss, wss), true);
  });

  it('offer throws MEDIA_ERR_NO_RELAY (488) and logs a line naming the missing rtpengine', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } });
    const gw = createMediaGateway({ nodes: [], logger: createLogger({ level: 'info', destination: sink }) });
    gw.start();
    await assert.rejects(gw.offer({ callId: 'c', fromTag: 'a', sdp: webrtcOffer(), from: wss, to: udp }), (err: unknown) => {
      assert.ok(err instanceof MediaError);
      assert.equal(err.code, 'MEDIA_ERR_NO_RELAY');
      assert.equal(err.status, 488);
      assert.match(err.message, /^no rtpengine configured: /);
      return true;
    });
    await gw.delete({ callId: 'c' }); // nothing to delete, no error
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; cat: string; level: number });
    const line = logged.find((l) => l.msg.startsWith('no rtpengine configured: the webrtc leg (wss) and the plain leg (udp)'));
    assert.ok(line, lines.join(''));
    assert.equal(line.cat, 'media.gateway');
    assert.equal(line.level, 50);
    gw.stop();
  });

  it('an rtpengine that does not answer is MEDIA_ERR_RELAY_UNAVAILABLE (503)', async () => {
    const gw = createMediaGateway({ nodes: ['udp:127.0.0.1:9'], logger: silentLogger(), timeoutMs: 200 });
    try {
      await assert.rejects(gw.offer({ callId: 'c', fromTag: 'a', sdp: webrtcOffer(), from: wss, to: udp }), (err: unknown) => {
        assert.ok(err instanceof MediaError);
        assert.equal(err.code, 'MEDIA_ERR_RELAY_UNAVAILABLE');
        assert.equal(err.status, 503);
        return true;
      });
      assert.equal(gw.stats()[0]!.up, false);
    } finally {
      gw.stop();
    }
  });

  it('a stopped gateway throws MEDIA_ERR_STOPPED', async () => {
    const gw = createMediaGateway({ nodes: [], logger: silentLogger() });
    gw.stop();
    await assert.rejects(gw.offer({ callId: 'c', fromTag: 'a', sdp: plainOffer(), from: udp, to: wss }), (err: unknown) => err instanceof MediaError && err.code === 'MEDIA_ERR_STOPPED');
  });
});

/** Per via-branch of a `query` reply: the local ports the branch still holds. */
function branchPorts(query: Record<string, unknown>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const tags = query.tags as Record<string, { 'via-branch'?: string; medias?: Array<{ streams?: Array<{ 'local port'?: number }> }> }>;
  for (const t of Object.values(tags)) {
    if (t['via-branch'] === undefined) continue;
    const ports = (t.medias?.[0]?.streams ?? []).map((s) => s['local port']).filter((p): p is number => typeof p === 'number' && p > 0);
    out.set(t['via-branch'], ports);
  }
  return out;
}

/** The flags rtpengine reports for the first medium of one tag in a `query` reply. */
function mediaFlags(query: Record<string, unknown>, tag: string): string[] {
  const tags = query.tags as Record<string, { medias?: Array<{ flags?: string[] }> }>;
  return tags[tag]?.medias?.[0]?.flags ?? [];
}
