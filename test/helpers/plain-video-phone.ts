/**
 * A SIP video phone on plain RTP, made of real parts, for the video tests: what baresip or a desk video
 * phone is to the softswitch, but one that decodes with libwebrtc and counts its frames and keyframes.
 *
 *   softswitch ──SIP/UDP── FakeFreeswitch (the phone's SIP side, on its own loopback address)
 *   softswitch's rtpengine ──RTP/AVP── the phone's own rtpengine ──DTLS-SRTP── libwebrtc peer (wrtc)
 *
 * The phone's own rtpengine (not the softswitch's: a second daemon the test starts) turns the libwebrtc
 * peer's ICE/DTLS-SRTP into plain RTP, the way a phone's media stack sits behind its SIP stack. Its SDP is
 * what such phones send:
 * - `feedback: true` (baresip, most video desk phones): `RTP/AVP` m-lines that carry `a=rtcp-fb`, written
 *   for every payload type as baresip does (`a=rtcp-fb:* nack pli`, `a=rtcp-fb:* ccm fir` …). Inside, the phone's rtpengine keeps its network side `RTP/AVPF`, so the peer's own feedback
 *   goes out and the PLI/FIR that arrive reach the peer's encoder: a phone that honours keyframe requests.
 * - `feedback: false` (an AVP-only phone): `RTP/AVP` without any `a=rtcp-fb`, in both directions; inside,
 *   the network side is `RTP/AVP`, so nothing asks for or honours feedback across the phone's wire.
 * The adapter drives its rtpengine with its own ng flags and SDP edits (not the media/ code under test).
 *
 * It answers INVITEs routed to it (a dialplan route to its FakeFreeswitch) and places calls to a DID
 * (its address is a trusted source), each a `WebRtcCall` whose stats are the peer's.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { NgClient, type NgDict } from '../../media/index.js';
import type { RtpengineHandle } from '../../support/rtpengine.js';
import { type FakeFreeswitch, startFakeFreeswitch } from './fake-freeswitch.js';
import { installWrtc, LocalMedia, type MediaPhone, WebRtcCall, type WrtcPeerConnection } from './webrtc-phone.js';

export interface PlainVideoPhoneOptions {
  /** The phone's own rtpengine (not the softswitch's). */
  rtpengine: RtpengineHandle;
  /** Loopback address of its SIP side. */
  host: string;
  /** The address-of-record callers dial (a number routed to this phone). */
  aor: string;
  /** The softswitch's UDP listener (`host:port`), where its calls go. */
  softswitch: string;
  toneHz: number;
  /** `a=rtcp-fb` on its RTP/AVP m-lines (and honouring PLI/FIR), or a phone without feedback. */
  feedback: boolean;
  /**
   * When it answers, its camera is on first: the 200 goes out this long after its own media is connected,
   * so its first keyframe is sent before the caller's leg is up and lost (what the issue saw with baresip:
   * only a keyframe request from the caller repairs it). 0 by default.
   */
  answerAfterMediaMs?: number;
}

/** ng flags of the phone's rtpengine towards its libwebrtc peer. */
const TO_PEER: NgDict = {
  'transport-protocol': 'UDP/TLS/RTP/SAVPF', ICE: 'force', 'rtcp-mux': ['offer', 'require'], SDES: ['off'], flags: ['generate-mid'],
  replace: ['origin', 'session-connection'],
};

export class PlainVideoPhone implements MediaPhone {
  readonly library = 'plain-rtp';
  readonly fs: FakeFreeswitch;
  /** Every SDP the phone put on the wire (offers and answers), and every one it received, oldest first. */
  readonly sent: string[] = [];
  readonly received: string[] = [];
  private readonly ng: NgClient;
  private readonly answered: Array<WebRtcCall & { invite: string }> = [];
  private readonly calls: WebRtcCall[] = [];
  private readonly sessions = new Set<string>();

  static async start(options: PlainVideoPhoneOptions): Promise<PlainVideoPhone> {
    let phone: PlainVideoPhone | undefined;
    const fs = await startFakeFreeswitch({
      host: options.host,
      answerSdp: (offer, callId): Promise<string | undefined> => phone?.answerOffer(offer, callId) ?? Promise.resolve(undefined),
    });
    phone = new PlainVideoPhone(options, fs);
    return phone;
  }

  private constructor(private readonly options: PlainVideoPhoneOptions, fs: FakeFreeswitch) {
    this.fs = fs;
    this.ng = new NgClient({ host: '127.0.0.1', port: options.rtpengine.ngPort, timeoutMs: 2000, retransmitMs: 200 });
  }

  get aor(): string {
    return this.options.aor;
  }

  /** Its SIP side's URI (`sip:host:port`), for the softswitch's backend set. */
  get uri(): string {
    return this.fs.uri;
  }

  /** Reached by a dialplan route, never registered. */
  register(): Promise<void> {
    return Promise.resolve();
  }

  /** Resolves with the next call this phone answered, once the caller's ACK came; bounded. */
  async answer(timeoutMs = 10_000): Promise<WebRtcCall & { invite: string }> {
    const deadline = Date.now() + timeoutMs;
    while (this.answered.length === 0) {
      if (Date.now() > deadline) throw new Error(`${this.aor}: no call answered within ${timeoutMs} ms`);
      await sleep(20);
    }
    const call = this.answered.shift()!;
    while (!this.fs.calls.some((c) => c.callId === call.callId && c.state !== 'answered')) {
      if (Date.now() > deadline) throw new Error(`${this.aor}: no ACK for ${call.callId} within ${timeoutMs} ms`);
      await sleep(20);
    }
    return call;
  }

  /** Calls `target` through the softswitch; resolves once the 2xx is ACKed. */
  async call(target: string, timeoutMs = 10_000): Promise<WebRtcCall> {
    const session = randomUUID();
    const { pc, media } = this.peer();
    await pc.setLocalDescription(await pc.createOffer());
    const offer = await this.command('offer', { 'call-id': session, 'from-tag': 'phone', sdp: await gathered(pc), ...this.toNetwork() });
    this.sessions.add(session);
    const sip = await Promise.race([
      this.fs.call(target, { via: this.options.softswitch, sdp: this.onWire(offer), from: `sip:+4930777000@${this.options.host}` }),
      sleep(timeoutMs).then(() => undefined),
    ]);
    if (sip?.answerSdp === undefined) {
      pc.close();
      media.stop();
      throw new Error(`${this.aor} calling ${target}: ${sip ? `${sip.status} ${sip.reason}` : `no answer within ${timeoutMs} ms`}`);
    }
    const call = this.track(sip.callId, session, pc, media);
    const answer = await this.command('answer', { 'call-id': session, 'from-tag': 'phone', 'to-tag': 'net', sdp: this.fromWire(sip.answerSdp), ...TO_PEER });
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    call.listen();
    return call;
  }

  async stop(): Promise<void> {
    for (const c of this.calls) c.dispose();
    await Promise.race([this.fs.close(), sleep(3000)]);
    for (const session of this.sessions) await this.command('delete', { 'call-id': session }).catch(() => undefined);
    this.ng.close();
  }

  /** The INVITE's offer → the peer's answer, as the phone puts it on the wire. */
  private async answerOffer(offer: string, callId: string): Promise<string> {
    const session = `phone-${callId}`;
    const toPeer = await this.command('offer', { 'call-id': session, 'from-tag': 'net', sdp: this.fromWire(offer), ...TO_PEER });
    const { pc, media } = this.peer();
    const call = Object.assign(this.track(callId, session, pc, media), { invite: offer });
    await pc.setRemoteDescription({ type: 'offer', sdp: toPeer });
    call.listen();
    await pc.setLocalDescription(await pc.createAnswer());
    const answer = await this.command('answer', { 'call-id': session, 'from-tag': 'net', 'to-tag': 'phone', sdp: await gathered(pc), ...this.toNetwork() });
    if (this.options.answerAfterMediaMs) {
      await call.waitForMedia();
      await sleep(this.options.answerAfterMediaMs);
    }
    this.answered.push(call);
    return this.onWire(answer);
  }

  private peer(): { pc: WrtcPeerConnection; media: LocalMedia } {
    const w = installWrtc();
    const pc = new w.RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-compat' });
    const media = new LocalMedia(w, this.options.toneHz, true);
    const stream = media.stream();
    for (const track of media.tracks) pc.addTrack(track, stream);
    return { pc, media };
  }

  /** A call of this phone: BYE through its SIP side; when the dialog ends, the peer and the relay session go. */
  private track(callId: string, session: string, pc: WrtcPeerConnection, media: LocalMedia): WebRtcCall {
    this.sessions.add(session);
    let ended = false;
    const over = new Promise<string>((resolve) => {
      const onEnded = (c: { callId: string; endedBy?: string }): void => {
        if (c.callId !== callId) return;
        this.fs.off('ended', onEnded);
        resolve(`ended by ${c.endedBy ?? '?'}`);
      };
      this.fs.on('ended', onEnded);
    });
    const call = new WebRtcCall(installWrtc(), {
      pc: () => pc,
      ended: over.then((how) => {
        ended = true;
        pc.close();
        this.sessions.delete(session);
        void this.command('delete', { 'call-id': session }).catch(() => undefined);
        return how;
      }),
      isEnded: () => ended,
      terminate: () => void this.fs.hangup(callId).catch(() => undefined),
    }, callId, media);
    this.calls.push(call);
    return call;
  }

  /** ng flags towards the network side: RTP/AVPF inside when the phone does feedback (see the header). */
  private toNetwork(): NgDict {
    return {
      'transport-protocol': this.options.feedback ? 'RTP/AVPF' : 'RTP/AVP', ICE: 'remove', DTLS: 'off', 'rtcp-mux': ['demux'],
      replace: ['origin', 'session-connection'],
    };
  }

  /** What the phone sends: `RTP/AVP` m-lines, with its `a=rtcp-fb` (wildcard) or without any. */
  private onWire(sdp: string): string {
    const wire = this.options.feedback ? wildcard(sdp.replace(/^(m=\S+ \S+ )RTP\/AVPF /gm, '$1RTP/AVP ')) : withoutFeedback(sdp);
    this.sent.push(wire);
    return wire;
  }

  /** What the phone reads of the SDP it receives: feedback on every RTP/AVP stream, or none at all. */
  private fromWire(sdp: string): string {
    this.received.push(sdp);
    return this.options.feedback ? sdp.replace(/^(m=\S+ [1-9]\d* )RTP\/AVP /gm, '$1RTP/AVPF ') : withoutFeedback(sdp);
  }

  private async command(command: string, dict: NgDict): Promise<string> {
    const reply = await this.ng.command({ command, ...dict });
    const sdp = reply.sdp;
    return Buffer.isBuffer(sdp) ? sdp.toString('utf8') : String(sdp ?? '');
  }
}

function withoutFeedback(sdp: string): string {
  return sdp.replace(/^a=rtcp-fb:.*\r?\n/gm, '');
}

/** The local description once ICE gathering is complete (host candidates on loopback: milliseconds); bounded. */
async function gathered(pc: WrtcPeerConnection, timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (pc.iceGatheringState !== 'complete') {
    if (Date.now() > deadline) throw new Error(`ICE gathering still "${pc.iceGatheringState}" after ${timeoutMs} ms`);
    await sleep(10);
  }
  return pc.localDescription?.sdp ?? '';
}

/** Each m-section's `a=rtcp-fb:<pt> <value>` lines as one `a=rtcp-fb:* <value>` per value (RFC 4585 §4.2). */
function wildcard(sdp: string): string {
  return sdp.split(/(?=^m=)/m).map((section) => {
    const seen = new Set<string>();
    return section.replace(/^a=rtcp-fb:\d+ (.*)\r?\n/gm, (_l, fb: string) => {
      if (seen.has(fb)) return '';
      seen.add(fb);
      return `a=rtcp-fb:* ${fb}\r\n`;
    });
  }).join('');
}
