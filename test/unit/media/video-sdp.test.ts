/**
 * Audio + video calls through the WebRTC gateway and a real rtpengine: the SDP each side gets, for VP8 and
 * H.264 (libwebrtc in Node has no H.264 encoder, so H.264 is proven here, on the SDP path; the e2e video
 * tests decode VP8).
 *
 * Keyframe requests: rtpengine (since 7.4, "honour a=rtcp-fb in SDP even if transport is advertised as
 * RTP/(S)AVP") forwards RTCP feedback (PLI, FIR, NACK) to an `RTP/AVP` leg whose own SDP carries
 * `a=rtcp-fb`, and strips it (`rtcp_avpf2avp_filter`) towards an `RTP/AVP` leg without; the gateway writes
 * a phone's `a=rtcp-fb:*` per payload type, which rtpengine 10.5 cannot parse (media/rtcp-feedback.ts).
 * So what matters is that the `a=rtcp-fb` lines go through in both directions, and that a phone is never
 * offered `RTP/AVPF` (RFC 4585 §5: an AVP-only endpoint rejects it). That the PLIs then reach the phone
 * is proven end to end (test/e2e/media.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'sdp-transform';
import { silentLogger } from '../../../src/log/index.js';
import { createMediaGateway, mediaProtocols, type MediaGateway } from '../../../media/index.js';
import { startRtpengine, type RtpengineHandle } from '../../../support/rtpengine.js';
import { plainVideoSdp, webrtcVideoAnswer, webrtcVideoOffer, type VideoCodec } from './sdp-fixtures.js';

const wss = { transport: 'wss' } as const;
const udp = { transport: 'udp' } as const;

/** The video m-line of an SDP as sdp-transform reads it. */
function video(sdp: string) {
  const m = parse(sdp).media.find((x) => x.type === 'video');
  assert.ok(m, `a video m-line in:\n${sdp}`);
  return m;
}

function videoCodecs(sdp: string): string[] {
  return video(sdp).rtp.map((r) => r.codec);
}

/** The keyframe requests an SDP's video m-line allows: `nack pli` (RFC 4585 §6.3.1) and `ccm fir` (RFC 5104 §4.3.1). */
function keyframeFeedback(sdp: string): string[] {
  return (video(sdp).rtcpFb ?? [])
    .map((f) => `${f.type}${f.subtype ? ` ${f.subtype}` : ''}`)
    .filter((f) => f === 'nack pli' || f === 'ccm fir')
    .filter((f, i, all) => all.indexOf(f) === i)
    .sort();
}

describe('video through the WebRTC gateway and a real rtpengine: plain phones get RTP/AVP, keyframe feedback is kept both ways', () => {
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

  for (const codec of ['VP8', 'H264'] as const satisfies readonly VideoCodec[]) {
    it(`WebRTC → phone (${codec}): the phone is offered RTP/AVP with the browser's PLI/FIR feedback, the browser's answer keeps ${codec} and the phone's feedback`, async () => {
      const callId = `webrtc-to-phone-${codec}@test`;
      const offer = webrtcVideoOffer();
      const toPhone = await gw.offer({ callId, fromTag: 'browser', viaBranch: 'z9hG4bK-v1', sdp: offer, from: { ...wss, sdp: offer }, to: udp });
      assert.deepEqual(mediaProtocols(toPhone), ['RTP/AVP', 'RTP/AVP'], 'never RTP/AVPF to a phone that did not ask for it');
      assert.ok(videoCodecs(toPhone).includes(codec), `${codec} offered to the phone: ${videoCodecs(toPhone).join(' ')}`);
      assert.deepEqual(keyframeFeedback(toPhone), ['ccm fir', 'nack pli'], 'the phone learns the browser asks for keyframes');

      const answer = plainVideoSdp({ codec });
      const toBrowser = await gw.answer({ callId, fromTag: 'browser', toTag: 'phone', viaBranch: 'z9hG4bK-v1', sdp: answer, from: { ...wss, sdp: offer }, to: { ...udp, sdp: answer } });
      assert.deepEqual(mediaProtocols(toBrowser), ['UDP/TLS/RTP/SAVPF', 'UDP/TLS/RTP/SAVPF']);
      assert.deepEqual(videoCodecs(toBrowser), [codec]);
      assert.deepEqual(keyframeFeedback(toBrowser), ['ccm fir', 'nack pli'], 'the browser may ask the phone for keyframes');
      await gw.delete({ callId });
    });

    it(`phone → WebRTC (${codec}): the browser is offered SAVPF with ${codec} and the phone's feedback, the phone gets RTP/AVP back`, async () => {
      const callId = `phone-to-webrtc-${codec}@test`;
      const offer = plainVideoSdp({ codec });
      const toBrowser = await gw.offer({ callId, fromTag: 'phone', viaBranch: 'z9hG4bK-v2', sdp: offer, from: { ...udp, sdp: offer }, to: wss });
      assert.deepEqual(mediaProtocols(toBrowser), ['UDP/TLS/RTP/SAVPF', 'UDP/TLS/RTP/SAVPF']);
      assert.deepEqual(videoCodecs(toBrowser), [codec]);
      assert.deepEqual(keyframeFeedback(toBrowser), ['ccm fir', 'nack pli']);
      const answer = webrtcVideoAnswer(50110, codec);
      const toPhone = await gw.answer({ callId, fromTag: 'phone', toTag: 'browser', viaBranch: 'z9hG4bK-v2', sdp: answer, from: { ...udp, sdp: offer }, to: { ...wss, sdp: answer } });
      assert.deepEqual(mediaProtocols(toPhone), ['RTP/AVP', 'RTP/AVP'], 'the phone gets the protocol it offered');
      assert.deepEqual(videoCodecs(toPhone), [codec]);
      assert.ok(!/a=candidate|a=fingerprint|a=rtcp-mux|a=ice-/.test(toPhone), 'a plain answer');
      await gw.delete({ callId });
    });
  }

  it('a phone writing its feedback for every payload type (a=rtcp-fb:* as baresip does) is answered to the browser with that feedback, per payload type', async () => {
    const callId = 'wildcard@test';
    const offer = webrtcVideoOffer();
    await gw.offer({ callId, fromTag: 'browser', sdp: offer, from: { ...wss, sdp: offer }, to: udp });
    const answer = plainVideoSdp({ feedback: 'wildcard' });
    const toBrowser = await gw.answer({ callId, fromTag: 'browser', toTag: 'phone', sdp: answer, from: { ...wss, sdp: offer }, to: { ...udp, sdp: answer } });
    assert.deepEqual(keyframeFeedback(toBrowser), ['ccm fir', 'nack pli']);
    assert.deepEqual([...new Set((video(toBrowser).rtcpFb ?? []).map((f) => String(f.payload)))], [String(video(toBrowser).payloads)], 'written for its payload type');
    await gw.delete({ callId });
  });

  it('a phone without a=rtcp-fb stays plain RTP/AVP in both call directions, and the browser is not told it may send feedback to it', async () => {
    const offer = webrtcVideoOffer();
    const plain = plainVideoSdp({ feedback: false });
    assert.deepEqual(mediaProtocols(await gw.offer({ callId: 'nofb-1@test', fromTag: 'browser', sdp: offer, from: { ...wss, sdp: offer }, to: udp })), ['RTP/AVP', 'RTP/AVP']);
    const toBrowser = await gw.answer({ callId: 'nofb-1@test', fromTag: 'browser', toTag: 'phone', sdp: plain, from: { ...wss, sdp: offer }, to: { ...udp, sdp: plain } });
    assert.deepEqual(keyframeFeedback(toBrowser), []);

    const toBrowser2 = await gw.offer({ callId: 'nofb-2@test', fromTag: 'phone', sdp: plain, from: { ...udp, sdp: plain }, to: wss });
    assert.deepEqual(keyframeFeedback(toBrowser2), []);
    const back = await gw.answer({ callId: 'nofb-2@test', fromTag: 'phone', toTag: 'browser', sdp: webrtcVideoAnswer(), from: { ...udp, sdp: plain }, to: wss });
    assert.deepEqual(mediaProtocols(back), ['RTP/AVP', 'RTP/AVP']);
    await gw.delete({ callId: 'nofb-1@test' });
    await gw.delete({ callId: 'nofb-2@test' });
  });

  it('a phone that declines the video (port 0) gets it declined to the browser; the audio goes on', async () => {
    const callId = 'video-declined@test';
    const offer = webrtcVideoOffer();
    await gw.offer({ callId, fromTag: 'browser', sdp: offer, from: { ...wss, sdp: offer }, to: udp });
    const answer = plainVideoSdp({ videoPort: 0 });
    const toBrowser = await gw.answer({ callId, fromTag: 'browser', toTag: 'phone', sdp: answer, from: { ...wss, sdp: offer }, to: { ...udp, sdp: answer } });
    assert.equal(video(toBrowser).port, 0, 'video declined towards the browser');
    assert.ok(parse(toBrowser).media[0]!.port > 0, 'audio accepted');
    await gw.delete({ callId });
  });

  it('re-INVITEs from either side keep RTP/AVP towards the phone, SAVPF towards the browser, and the keyframe feedback', async () => {
    const callId = 'reinvite@test';
    const offer = webrtcVideoOffer();
    const phoneSdp = plainVideoSdp();
    await gw.offer({ callId, fromTag: 'browser', sdp: offer, from: { ...wss, sdp: offer }, to: udp });
    await gw.answer({ callId, fromTag: 'browser', toTag: 'phone', sdp: phoneSdp, from: { ...wss, sdp: offer }, to: { ...udp, sdp: phoneSdp } });

    // the phone re-INVITEs (its From tag is the dialog's To tag)
    const phoneReoffer = plainVideoSdp().replace('a=sendrecv\r\n', 'a=sendonly\r\n');
    const toBrowser = await gw.offer({ callId, fromTag: 'phone', sdp: phoneReoffer, from: { ...udp, sdp: phoneReoffer }, to: wss });
    assert.deepEqual(mediaProtocols(toBrowser), ['UDP/TLS/RTP/SAVPF', 'UDP/TLS/RTP/SAVPF']);
    assert.deepEqual(keyframeFeedback(toBrowser), ['ccm fir', 'nack pli']);
    const browserReanswer = webrtcVideoAnswer();
    const toPhone = await gw.answer({ callId, fromTag: 'phone', toTag: 'browser', sdp: browserReanswer, from: { ...udp, sdp: phoneReoffer }, to: { ...wss, sdp: browserReanswer } });
    assert.deepEqual(mediaProtocols(toPhone), ['RTP/AVP', 'RTP/AVP']);

    // the browser re-INVITEs
    const toPhone2 = await gw.offer({ callId, fromTag: 'browser', sdp: offer, from: { ...wss, sdp: offer }, to: udp });
    assert.deepEqual(mediaProtocols(toPhone2), ['RTP/AVP', 'RTP/AVP']);
    assert.deepEqual(keyframeFeedback(toPhone2), ['ccm fir', 'nack pli']);
    const toBrowser2 = await gw.answer({ callId, fromTag: 'browser', toTag: 'phone', sdp: phoneSdp, from: { ...wss, sdp: offer }, to: { ...udp, sdp: phoneSdp } });
    assert.deepEqual(keyframeFeedback(toBrowser2), ['ccm fir', 'nack pli']);
    await gw.delete({ callId });
    assert.deepEqual(await rtp.listSessions({ includeDeleted: true }), []);
  });
});
