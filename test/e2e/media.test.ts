/**
 * Real media through the WebRTC gateway (issue 5): libwebrtc phones (`@roamhq/wrtc` under JsSIP and SIP.js) that send
 * a tone and decode what they receive, SIPp as a plain PCMU phone echoing RTP, and real rtpengines.
 *
 * Video (issue 17): the phones also send a synthetic camera (VP8; libwebrtc in Node has no H.264, which is
 * proven on the SDP path in test/unit/media/video-sdp.test.ts). The plain SIP video phone is made of real
 * parts (test/helpers/plain-video-phone.ts): its SIP side is the FakeFreeswitch stand-in on 127.0.0.7 (a
 * dialplan route sends its number there; its address is trusted, so it can call a DID), its media a
 * libwebrtc peer behind a second rtpengine of its own that turns DTLS-SRTP into plain RTP. On the wire it
 * is what baresip is: `RTP/AVP` with `a=rtcp-fb:* nack pli`, `a=rtcp-fb:* ccm fir` …, or for the AVP-only
 * phone no `a=rtcp-fb` at all. Its peer decodes, counts frames and keyframes, and honours the PLI/FIR that
 * reach it. When it answers, its camera is on 300 ms before its 200 OK, so its first keyframe is lost
 * before the caller's leg is up, as the issue saw: the caller sees video only once its PLI gets through
 * (rtpengine 10.5 cannot read `a=rtcp-fb:*`; media/rtcp-feedback.ts).
 *
 * Everything that moves media runs in a network namespace with only loopback, so no packet can leave
 * the machine. libwebrtc lives in the process that makes the calls, so each scenario runs in a child
 * (`ip netns exec NS node media-runner.js SCENARIO`) that prints what it observed as one JSON line; the
 * assertions are here. A child that hangs is killed after RUNNER_TIMEOUT_MS, and whatever is left in the
 * namespace is killed by its pid before the namespace is deleted.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runTagged } from '../helpers/runner.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoopbackNamespace } from '../../support/netns.js';
import { requireTool } from '../../support/tools.js';
import type { CallReport, MediaResult, RtpengineLeg, SideReport } from './media-runner.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'media-runner.js');
const RUNNER_TIMEOUT_MS = 45_000;

let ns: LoopbackNamespace | undefined;

/** Runs one scenario inside the namespace; fails the test with the runner's own words when it could not finish. */
async function scenario(name: string, where = ns): Promise<MediaResult> {
  if (!where) throw new Error('no network namespace');
  const { result: text, code, stdout, stderr } = await runTagged(where.exec(process.execPath, ['--enable-source-maps', RUNNER, name]),
    { MEDIA_RUNNER_TIMEOUT_MS: String(RUNNER_TIMEOUT_MS - 5000) }, 'MEDIA-RESULT', RUNNER_TIMEOUT_MS);
  if (text === undefined) assert.fail(`media runner "${name}" gave no result (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}`);
  const result = JSON.parse(text) as MediaResult;
  if (result.error !== undefined) assert.fail(`media runner "${name}" failed: ${result.error}\n${result.logs ?? ''}\n${stderr}`);
  return result;
}

/** The audio one side decoded: packets arrived, samples were decoded (not concealment), and it is the expected tone. */
function assertHeard(side: SideReport, expectedHz: number, who: string, codec?: string): void {
  const { stats, heard } = side;
  assert.ok(stats.packetsReceived > 25, `${who}: inbound-rtp packetsReceived is ${stats.packetsReceived} after 1.5 s of audio`);
  assert.ok(stats.totalSamplesReceived > 0, `${who}: no samples decoded (totalSamplesReceived 0)`);
  assert.ok(stats.concealedSamples < stats.totalSamplesReceived / 4, `${who}: mostly concealment (${stats.concealedSamples} of ${stats.totalSamplesReceived} samples)`);
  assert.ok(stats.audioLevel > 0.05, `${who}: audioLevel ${stats.audioLevel}: silence`);
  if (codec !== undefined) assert.equal(stats.inboundCodec, codec, `${who}: inbound codec`);
  assert.equal(heard.dominantHz, expectedHz, `${who}: heard ${heard.dominantHz ?? 'silence'} Hz (rms ${heard.rms.toFixed(3)}), expected the ${expectedHz} Hz tone; power ${JSON.stringify(heard.power)}`);
}

function sippLeg(call: CallReport): RtpengineLeg {
  const entry = Object.entries(call.legs).find(([tag]) => tag.includes('SIPpEcho'));
  assert.ok(entry, `rtpengine has no SIPp leg for ${call.callId}: ${JSON.stringify(call.legs)}`);
  return entry[1];
}

function webrtcLegs(call: CallReport): RtpengineLeg[] {
  return Object.entries(call.legs).filter(([tag]) => !tag.includes('SIPpEcho')).map(([, leg]) => leg);
}

/** At least this many frames decoded in the 2 s window after the first second (the camera sends 30 fps). */
const MIN_FRAMES_IN_WINDOW = 25;
/** The bound: video decodes within 1 s of ICE and DTLS being connected, at both ends. */
const FIRST_FRAME_BOUND_MS = 1000;

/** The video one side decoded: the first frame soon after connected, a keyframe, and frames that keep coming. */
function assertVideoDecoded(side: SideReport | undefined, who: string): void {
  const v = side?.video;
  assert.ok(v, `${who}: no video stats`);
  const { atWindow, end } = v;
  const seen = `packets ${atWindow.packetsReceived}, decoded ${atWindow.framesDecoded} (${atWindow.keyFramesDecoded} keyframes), dropped ${atWindow.framesDropped}, PLIs sent ${atWindow.pliSent}, FIRs sent ${atWindow.firSent}`;
  assert.equal(end.inboundCodec, 'video/VP8', `${who}: inbound video codec`);
  assert.ok(end.firstFrameMs !== undefined, `${who}: no frame decoded within ${FIRST_FRAME_BOUND_MS} ms of connected (${seen})`);
  assert.ok(end.firstFrameMs <= FIRST_FRAME_BOUND_MS, `${who}: first frame decoded ${end.firstFrameMs} ms after connected (${seen})`);
  assert.ok(end.keyFramesDecoded >= 1, `${who}: no keyframe decoded (${seen})`);
  const inWindow = end.framesDecoded - atWindow.framesDecoded;
  assert.ok(inWindow >= MIN_FRAMES_IN_WINDOW, `${who}: ${inWindow} frames decoded in 2 s, expected ≥ ${MIN_FRAMES_IN_WINDOW} (${end.framesDropped} dropped)`);
}

/**
 * Video RTP reached this side (after 3 s of a 30 fps camera), whether or not it could be decoded yet: an
 * AVP-only phone cannot be asked for a keyframe (RFC 4585), so a first keyframe lost while the far leg's
 * DTLS was not up yet is only made up for by its sender's next scheduled one.
 */
function assertVideoFlows(side: SideReport | undefined, who: string): void {
  const end = side?.video?.end;
  assert.ok(end, `${who}: no video stats`);
  assert.ok(end.packetsReceived >= 50, `${who}: ${end.packetsReceived} video packets received in 3 s`);
}

/** The browser's requests for a keyframe reached the phone's encoder (RFC 4585 §6.3.1 PLI, RFC 5104 §4.3.1 FIR). */
function assertKeyframeRequestsArrive(from: SideReport | undefined, to: SideReport | undefined, who: string): void {
  const asked = (from?.video?.end.pliSent ?? 0) + (from?.video?.end.firSent ?? 0);
  const got = (to?.video?.end.pliReceived ?? 0) + (to?.video?.end.firReceived ?? 0);
  assert.ok(asked === 0 || got > 0, `${who}: ${asked} PLI/FIR sent, none reached the encoder`);
}

/** What the plain phone saw and sent on the wire: RTP/AVP only (never offered RTP/AVPF), with or without a=rtcp-fb. */
function assertPhoneWire(r: MediaResult, feedback: boolean): void {
  const sent = r.facts.phoneSent as string[];
  const received = r.facts.phoneReceived as string[];
  assert.ok(sent.length > 0 && received.length > 0, 'the phone exchanged SDP');
  for (const sdp of [...sent, ...received]) {
    assert.deepEqual([...sdp.matchAll(/^m=(\w+) \d+ (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`), ['audio RTP/AVP', 'video RTP/AVP'], `an SDP on the phone's wire:\n${sdp}`);
  }
  for (const sdp of sent) assert.equal(/^a=rtcp-fb:/m.test(sdp), feedback, `the phone ${feedback ? 'sends' : 'never sends'} a=rtcp-fb:\n${sdp}`);
}

/**
 * A video call between a WebRTC phone and the plain phone: both hear each other; with a phone that does
 * feedback both decode video within the bound and the keyframe requests of each side reach the other,
 * without, video RTP flows both ways; rtpengine has one RTP/AVP and one SAVPF leg; nothing is left after the BYE.
 */
function assertWebrtcPlainVideo(r: MediaResult, direction: 'webrtc-to-plain' | 'plain-to-webrtc', feedback: boolean): void {
  const [call] = r.calls;
  assert.ok(call?.callee, 'no call was made');
  const [browser, phone] = direction === 'webrtc-to-plain' ? [call.caller, call.callee] : [call.callee, call.caller];
  const video = feedback ? assertVideoDecoded : assertVideoFlows;
  video(browser, 'WebRTC phone');
  video(phone, 'plain phone');
  assertHeard(browser, 660, 'WebRTC phone (hears the plain phone)');
  assertHeard(phone, browser.toneHz, 'plain phone (hears the WebRTC phone)');
  assertPhoneWire(r, feedback);
  if (feedback) {
    assertKeyframeRequestsArrive(browser, phone, 'browser → plain phone');
    assertKeyframeRequestsArrive(phone, browser, 'plain phone → browser');
  }
  const legs = Object.values(call.legs);
  assert.deepEqual(legs.map((l) => l.protocols.join(' ')).sort(), ['RTP/AVP RTP/AVP', 'UDP/TLS/RTP/SAVPF UDP/TLS/RTP/SAVPF'], `rtpengine's legs: ${JSON.stringify(call.legs)}`);
  assertNoSessionLeft(call);
}

function assertNoSessionLeft(call: CallReport): void {
  assert.deepEqual(call.leftoverSessions, [], `rtpengine still holds a live session for ${call.callId} after the call ended`);
}

function assertSippDone(result: MediaResult): void {
  assert.ok(result.sipp, 'SIPp did not report');
  assert.equal(result.sipp.code, 0, `SIPp did not complete its calls:\n${result.sipp.output}`);
}

/**
 * A trunk's call to a DID answered on a WebRTC phone: the phone got a WebRTC offer and hears its own
 * 880 Hz tone in PCMU, echoed by the trunk, whose plain RTP leg on rtpengine is its echo port.
 */
function assertTrunkEchoHeard(r: MediaResult): void {
  const [call] = r.calls;
  assert.ok(call, 'no call was made');
  assertSippDone(r);
  assert.match(call.caller.remoteSdp, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, 'the WebRTC phone got a WebRTC offer');
  assertHeard(call.caller, 880, 'WebRTC phone (DID user)', 'audio/PCMU');
  const trunk = Object.values(call.legs).find((leg) => leg.protocol === 'RTP/AVP');
  assert.ok(trunk, `rtpengine has no plain RTP leg for the trunk: ${JSON.stringify(call.legs)}`);
  assert.equal(trunk.endpoint, `${String(r.facts.trunk)}:${String(r.facts.trunkMediaPort)}`, 'the RTP came back from the trunk\'s echo port');
  assert.ok(trunk.rtpPackets > 25, `the trunk echoed ${trunk.rtpPackets} RTP packets`);
  assertNoSessionLeft(call);
}

describe('media through rtpengine: real WebRTC audio (wrtc) and a SIPp RTP echo, in a loopback-only namespace', () => {
  before(() => {
    requireTool('rtpengine', 'rtpengine-daemon');
    requireTool('sipp', 'sip-tester');
    ns = LoopbackNamespace.create('media');
  });

  after(() => {
    ns?.destroy();
    ns = undefined;
  });

  it('a WebRTC phone calling a PCMU-only SIPp echo decodes its own tone in PCMU, SIPp received and echoed the RTP, and rtpengine keeps no session after the BYE', { timeout: 60_000 }, async () => {
    const r = await scenario('webrtc-to-sipp-echo');
    const [call] = r.calls;
    assert.ok(call, 'no call was made');
    assertSippDone(r);
    assert.match(call.caller.remoteSdp, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF 0\r?$/m, 'the WebRTC caller got a WebRTC answer with PCMU only');
    assertHeard(call.caller, 440, 'WebRTC caller', 'audio/PCMU');
    assert.equal(call.caller.stats.outboundCodec, 'audio/PCMU');
    const sipp = sippLeg(call);
    assert.equal(sipp.protocol, 'RTP/AVP', 'rtpengine speaks plain RTP to SIPp');
    assert.equal(sipp.endpoint, `127.0.0.1:${String(r.facts.sippMediaPort)}`, "the RTP rtpengine got back came from SIPp's echo port");
    assert.ok(sipp.rtpPackets > 25, `SIPp echoed ${sipp.rtpPackets} RTP packets: it received (almost) none`);
    const [webrtc] = webrtcLegs(call);
    assert.equal(webrtc?.protocol, 'UDP/TLS/RTP/SAVPF', 'rtpengine speaks DTLS-SRTP to the WebRTC phone');
    assert.ok(webrtc.rtpPackets > 25, `rtpengine got ${webrtc.rtpPackets} packets from the WebRTC phone`);
    assert.ok(!sipp.transcoding && !webrtc.transcoding, 'PCMU on both legs needs no transcoding');
    assertNoSessionLeft(call);
  });

  it('a WebRTC phone offering only opus talks to the PCMU-only SIPp echo: rtpengine transcodes opus ⇄ PCMU and the phone decodes its own tone in opus', { timeout: 60_000 }, async () => {
    const r = await scenario('webrtc-opus-to-sipp-pcmu');
    const [call] = r.calls;
    assert.ok(call, 'no call was made');
    assertSippDone(r);
    assert.doesNotMatch(call.caller.remoteSdp, /^a=rtpmap:\d+ PCMU\//m, 'the answer to the opus-only caller does not offer PCMU');
    assertHeard(call.caller, 660, 'WebRTC caller', 'audio/opus');
    const sipp = sippLeg(call);
    assert.equal(sipp.protocol, 'RTP/AVP');
    assert.ok(sipp.rtpPackets > 25, `SIPp echoed ${sipp.rtpPackets} RTP packets`);
    assert.ok(Object.values(call.legs).some((l) => l.transcoding), `rtpengine does not transcode this call: ${JSON.stringify(call.legs)}`);
    assertNoSessionLeft(call);
  });

  it('a JsSIP WebRTC phone calling a SIP.js one with media.alwaysRelay talks through rtpengine on both SAVPF legs, and each decodes the other one\'s tone', { timeout: 60_000 }, async () => {
    const r = await scenario('webrtc-to-webrtc-relayed');
    const [call] = r.calls;
    assert.ok(call?.callee, 'no call was made');
    assert.deepEqual(r.facts.libraries, { caller: 'jssip', callee: 'sip.js' });
    const ports = (r.facts.rtpenginePorts as string[]).map((a) => Number(a.split('=')[1]));
    const [min, max] = [Math.min(...ports), Math.max(...ports)];
    for (const [who, side] of [['caller', call.caller], ['callee', call.callee]] as const) {
      assert.match(side.remoteSdp, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, `the ${who} got a WebRTC SDP`);
      const port = Number(side.stats.remoteCandidate?.split(':')[1]);
      assert.ok(port >= min && port <= max, `the ${who}'s media goes to ${side.stats.remoteCandidate}, not to rtpengine (ports ${min}-${max})`);
    }
    assertHeard(call.caller, 880, 'caller (hears the callee)');
    assertHeard(call.callee, 440, 'callee (hears the caller)');
    const legs = Object.values(call.legs);
    assert.equal(legs.length, 2, `rtpengine has ${legs.length} legs for the call`);
    for (const leg of legs) {
      assert.equal(leg.protocol, 'UDP/TLS/RTP/SAVPF');
      assert.ok(leg.rtpPackets > 25, `rtpengine got ${leg.rtpPackets} packets on a leg`);
    }
    assertNoSessionLeft(call);
  });

  it('when the rtpengine carrying a call is killed, the next call goes to the other one; the restarted node is brought back by the health ping and carries calls again', { timeout: 60_000 }, async () => {
    const r = await scenario('rtpengine-failover');
    const { x, y } = r.facts as { x: string; y: string };
    assert.equal(r.calls.length, 3, 'three calls were made');
    const [first, second, third] = r.calls as [CallReport, CallReport, CallReport];
    assert.equal(first.node, x, 'call 1 was on the node that was then killed');
    assertHeard(first.caller, 440, 'call 1 (before the kill)', 'audio/PCMU');
    assert.equal(typeof r.facts.xDownAfterMs, 'number', `the killed node was not marked down: ${String(r.facts.xDownAfterMs)}`);
    assert.equal(second.node, y, 'call 2 went to the surviving node');
    assertHeard(second.caller, 440, 'call 2 (on the surviving node)', 'audio/PCMU');
    assert.equal(typeof r.facts.xBackUpAfterMs, 'number', 'the restarted node came back up');
    assert.equal(third.node, x, 'call 3 (the other node stopped) was carried by the restarted node');
    assertHeard(third.caller, 440, 'call 3 (on the restarted node)', 'audio/PCMU');
    for (const call of r.calls) assertNoSessionLeft(call);
    assertSippDone(r);
  });
  it('a trusted trunk calling a DID reaches its user\'s WebRTC phone: rtpengine bridges the trunk\'s plain RTP to DTLS-SRTP and the phone hears its own tone echoed by the trunk', { timeout: 60_000 }, async () => {
    assertTrunkEchoHeard(await scenario('pstn-did-to-webrtc'));
  });

  it('a trusted trunk calling the DID of a sleeping iOS app: one VoIP push, the woken app registers again, gets the INVITE once, answers, and hears its own tone echoed by the trunk through rtpengine', { timeout: 60_000 }, async () => {
    const r = await scenario('pstn-did-to-woken-webrtc');
    const pushes = r.facts.pushes as Array<{ token: string; pushType: string; topic: string; kind: string }>;
    assert.equal(pushes.length, 1, `the local APNs received ${pushes.length} pushes: ${JSON.stringify(pushes)}`);
    assert.deepEqual(pushes[0], { token: r.facts.token, pushType: 'voip', topic: r.facts.voipTopic, kind: 'call' }, 'one VoIP call push to the app\'s token');
    assert.equal(r.facts.invitesToWokenApp, 1, 'the woken app got the INVITE once');
    assertTrunkEchoHeard(r);
  });
  for (const [direction, feedback] of [['webrtc-to-plain', true], ['plain-to-webrtc', true], ['webrtc-to-plain', false], ['plain-to-webrtc', false]] as const) {
    const phone = feedback ? 'a plain SIP video phone (RTP/AVP with a=rtcp-fb)' : 'an AVP-only video phone (no a=rtcp-fb)';
    const title = direction === 'webrtc-to-plain' ? `a WebRTC phone calling ${phone}` : `${phone} calling a WebRTC phone`;
    const outcome = feedback
      ? 'both ends decode VP8 within 1 s of ICE/DTLS and keep decoding, each one\'s PLI/FIR reach the other\'s encoder, they hear each other'
      : 'the call works as plain RTP/AVP: they hear each other and video RTP flows both ways';
    it(`${title}: ${outcome}; the phone only ever sees RTP/AVP`, { timeout: 60_000 }, async () => {
      assertWebrtcPlainVideo(await scenario(`video-${direction}-${feedback ? 'feedback' : 'no-feedback'}`), direction, feedback);
    });
  }

  it('a JsSIP WebRTC phone calling a SIP.js one with video: media stays end to end (no relay needed), and both decode VP8 within 1 s', { timeout: 60_000 }, async () => {
    const r = await scenario('video-webrtc-to-webrtc');
    const [call] = r.calls;
    assert.ok(call?.callee, 'no call was made');
    assert.equal(call.node, undefined, 'no rtpengine session for a WebRTC ⇄ WebRTC call');
    assertVideoDecoded(call.caller, 'caller');
    assertVideoDecoded(call.callee, 'callee');
    assertHeard(call.caller, 880, 'caller (hears the callee)');
    assertHeard(call.callee, 440, 'callee (hears the caller)');
  });

  it('the same video call with media.alwaysRelay goes through rtpengine on two SAVPF legs, and both decode VP8 within 1 s', { timeout: 60_000 }, async () => {
    const r = await scenario('video-webrtc-to-webrtc-relayed');
    const [call] = r.calls;
    assert.ok(call?.callee, 'no call was made');
    assertVideoDecoded(call.caller, 'caller');
    assertVideoDecoded(call.callee, 'callee');
    const legs = Object.values(call.legs);
    assert.deepEqual(legs.map((l) => l.protocols.join(' ')), ['UDP/TLS/RTP/SAVPF UDP/TLS/RTP/SAVPF', 'UDP/TLS/RTP/SAVPF UDP/TLS/RTP/SAVPF']);
    for (const leg of legs) assert.ok(leg.rtpPackets > 25, `rtpengine got ${leg.rtpPackets} audio packets on a leg`);
    assertNoSessionLeft(call);
  });
});

/**
 * Relay-only calls (issue 17): libwebrtc phones with `iceTransportPolicy: 'relay'` (a firewall that lets only TURN
 * out) and the ICE servers GET /v1/ice-servers gives them. The namespace has one address besides loopback
 * (203.0.113.1 on a dummy interface): TURN relays refuse loopback peers, so rtpengine and the relays live there.
 */
describe('relay-only WebRTC calls through TURN (coturn with the repo\'s turnserver.conf, and the embedded server)', () => {
  let turnNs: LoopbackNamespace | undefined;
  before(() => {
    requireTool('rtpengine', 'rtpengine-daemon');
    requireTool('sipp', 'sip-tester');
    requireTool('turnserver', 'coturn');
    turnNs = LoopbackNamespace.create('turn', { publicAddress: '203.0.113.1' });
  });
  after(() => {
    turnNs?.destroy();
    turnNs = undefined;
  });

  /** Both calls of a relay scenario: each phone's media took a relay candidate, both heard each other, SIPp echoed. */
  function assertRelayedCalls(r: MediaResult, turnUrl: RegExp): void {
    const urls = r.facts.iceServerUrls as string[][];
    assert.equal(urls.length, 2, 'both phones asked GET /v1/ice-servers');
    for (const list of urls) assert.ok(list.some((u) => turnUrl.test(u)), `the ICE servers the app got name the TURN server: ${JSON.stringify(list)}`);
    const [direct, bridged] = r.calls;
    assert.ok(direct?.callee && bridged, `${r.calls.length} calls were made`);
    assert.equal(direct.caller.stats.localCandidateType, 'relay', 'the caller\'s media went through its TURN relay');
    assert.equal(direct.callee.stats.localCandidateType, 'relay', 'the callee\'s media went through its TURN relay');
    assertHeard(direct.caller, 880, 'caller (hears the callee through TURN)');
    assertHeard(direct.callee, 440, 'callee (hears the caller through TURN)');
    assert.equal(bridged.caller.stats.localCandidateType, 'relay', 'the call to SIPp went through the caller\'s TURN relay');
    assert.match(bridged.caller.stats.remoteCandidate ?? '', /^203\.0\.113\.1:/, 'the relay reached rtpengine');
    assertHeard(bridged.caller, 440, 'caller (hears its tone echoed by SIPp through TURN and rtpengine)', 'audio/PCMU');
    assert.ok(sippLeg(bridged).rtpPackets > 25, 'SIPp echoed the RTP rtpengine sent it');
    assertSippDone(r);
    for (const call of r.calls) assertNoSessionLeft(call);
  }

  it('two phones allowed only TURN relay candidates, with credentials from GET /v1/ice-servers, call each other and SIPp through coturn (the repo\'s turnserver.conf as is) and hear each other', { timeout: 60_000 }, async () => {
    assertRelayedCalls(await scenario('relay-only-coturn', turnNs), /^turn:203\.0\.113\.1:\d+\?transport=udp$/);
  });

  it('with no turn.servers the same relay-only calls go through the embedded STUN/TURN server, which relayed their media', { timeout: 60_000 }, async () => {
    const r = await scenario('relay-only-embedded', turnNs);
    assertRelayedCalls(r, /^turn:203\.0\.113\.1:\d+\?transport=udp$/);
    const stats = r.facts.embedded as { relayedBytes: number };
    assert.ok(stats.relayedBytes > 50_000, `the embedded server relayed ${stats.relayedBytes} bytes for two calls of audio`);
  });
});
