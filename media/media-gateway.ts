/**
 * The WebRTC gateway as the proxy sees it: one method per SIP event that carries SDP. Each takes the
 * SDP of the message and returns the SDP to forward, rewritten by rtpengine for the leg that receives
 * it, or throws a MediaError whose `status` / `reason` is the proxy's answer.
 *
 * Forking (RFC 3261 §16.6): every branch's offer carries its Via branch, so rtpengine keeps one media
 * session per branch; when a branch wins, the proxy deletes the losers by their branch.
 */
import { categoryLogger, type Logger } from '../src/log/index.js';
import { MediaError } from './media-error.js';
import { legProfile, ngFlags, transcodeCodecs } from './media-profile.js';
import { expandFeedbackWildcards } from './rtcp-feedback.js';
import { RtpengineError, type RtpenginePool, type RtpengineNodeStats } from './rtpengine/index.js';
import type { LegInfo, MediaAnswerParams, MediaDeleteParams, MediaGatewayOptions, MediaOfferParams } from './types.js';

export class MediaGateway {
  /** The rtpengine nodes behind the gateway (for `query`, recording, stats). */
  readonly pool: RtpenginePool;
  private readonly log: Logger;
  private readonly alwaysRelay: boolean;
  private readonly deleteDelaySec: number | undefined;
  private stopped = false;

  constructor(options: MediaGatewayOptions) {
    if (options.deleteDelaySec !== undefined && (!Number.isInteger(options.deleteDelaySec) || options.deleteDelaySec < 0)) {
      throw new TypeError('MediaGateway: deleteDelaySec must be a non-negative integer');
    }
    this.pool = options.pool;
    this.log = categoryLogger(options.logger, 'media.gateway');
    this.alwaysRelay = options.alwaysRelay ?? false;
    this.deleteDelaySec = options.deleteDelaySec;
  }

  /** Whether any rtpengine node is configured. */
  get hasRelay(): boolean {
    return this.pool.size > 0;
  }

  start(): void {
    this.assertRunning();
    this.pool.start();
    if (!this.hasRelay) {
      this.log.warn('no rtpengine configured: WebRTC ⇄ WebRTC calls keep media end to end, calls that need bridging get 488');
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.pool.stop();
  }

  /**
   * Whether the call's media must go through rtpengine: when the two legs speak different profiles
   * (WebRTC ⇄ plain RTP), or always with `alwaysRelay`. WebRTC ⇄ WebRTC and plain ⇄ plain otherwise keep
   * media end to end. Answers whether or not a relay is configured.
   */
  /** The relay node (host:port) that holds the call's media, once its offer went through. */
  nodeOf(callId: string): string | undefined {
    return this.pool.nodeOf(callId);
  }

  needsRelay(from: LegInfo, to: LegInfo): boolean {
    return this.alwaysRelay || legProfile(from) !== legProfile(to);
  }

  /** An INVITE (or re-INVITE) with an offer going from `from` to `to`: returns the offer for `to`. */
  async offer(params: MediaOfferParams): Promise<string> {
    this.assertRunning();
    requireText(params.callId, 'callId');
    requireText(params.fromTag, 'fromTag');
    const sdp = sdpText(params.sdp);
    const receiver = legProfile(params.to);
    if (!this.hasRelay) {
      const caller = legProfile({ transport: params.from.transport, sdp });
      const message =
        `no rtpengine configured: the ${caller} leg (${params.from.transport}) and the ${receiver} leg (${params.to.transport}) ` +
        'need a media relay; configure rtpengine nodes (udp:host:port) to bridge them';
      this.log.error({ callId: params.callId, from: params.from.transport, to: params.to.transport }, message);
      throw new MediaError('MEDIA_ERR_NO_RELAY', message);
    }
    const transcode = transcodeCodecs({ offerSdp: sdp, receiver, receiverSdp: params.to.sdp });
    try {
      const reply = await this.pool.offer({
        'call-id': params.callId,
        'from-tag': params.fromTag,
        'via-branch': params.viaBranch,
        // rtpengine 10.5 cannot read a=rtcp-fb:* and would strip the keyframe requests (rtcp-feedback.ts)
        sdp: expandFeedbackWildcards(sdp),
        ...ngFlags(receiver, { transcode }),
      });
      this.log.info(
        { callId: params.callId, viaBranch: params.viaBranch, to: receiver, transcode, node: this.pool.nodeOf(params.callId) },
        'media offer relayed',
      );
      return reply.sdp;
    } catch (err) {
      throw this.failure('offer', params.callId, err);
    }
  }

  /** A response with the answer from `to`: returns the answer for the caller (`from`). */
  async answer(params: MediaAnswerParams): Promise<string> {
    this.assertRunning();
    requireText(params.callId, 'callId');
    requireText(params.fromTag, 'fromTag');
    requireText(params.toTag, 'toTag');
    const sdp = sdpText(params.sdp);
    if (!this.hasRelay) {
      throw new MediaError('MEDIA_ERR_NO_RELAY', `no rtpengine configured: cannot relay the answer of call ${params.callId}`);
    }
    const receiver = legProfile(params.from);
    try {
      const reply = await this.pool.answer({
        'call-id': params.callId,
        'from-tag': params.fromTag,
        'to-tag': params.toTag,
        'via-branch': params.viaBranch,
        sdp: expandFeedbackWildcards(sdp),
        ...ngFlags(receiver),
      });
      this.log.info({ callId: params.callId, viaBranch: params.viaBranch, to: receiver }, 'media answer relayed');
      return reply.sdp;
    } catch (err) {
      throw this.failure('answer', params.callId, err);
    }
  }

  /**
   * Ends media: the whole call (callId alone, or with its tags after a BYE) or one losing branch of a
   * fork (fromTag + viaBranch). Without a relay there is nothing to delete.
   */
  async delete(params: MediaDeleteParams): Promise<void> {
    this.assertRunning();
    requireText(params.callId, 'callId');
    if (!this.hasRelay) return;
    try {
      const reply = await this.pool.delete({
        'call-id': params.callId,
        'from-tag': params.fromTag,
        'to-tag': params.toTag,
        'via-branch': params.viaBranch,
        'delete delay': this.deleteDelaySec,
      });
      this.log.info({ callId: params.callId, viaBranch: params.viaBranch, warning: reply.warning }, 'media deleted');
    } catch (err) {
      throw this.failure('delete', params.callId, err);
    }
  }

  /** Per rtpengine node: up, failures, last latency, calls. */
  stats(): RtpengineNodeStats[] {
    return this.pool.stats();
  }

  private failure(what: string, callId: string, err: unknown): Error {
    if (!(err instanceof RtpengineError)) return err as Error;
    this.log.error({ callId, code: err.code, node: err.node, err: err.message }, `rtpengine ${what} failed`);
    if (err.code === 'RTPENGINE_ERR_COMMAND') {
      return new MediaError('MEDIA_ERR_RELAY_REFUSED', `rtpengine refused the ${what}: ${err.message}`, { cause: err });
    }
    return new MediaError('MEDIA_ERR_RELAY_UNAVAILABLE', `rtpengine ${what} failed: ${err.message}`, { cause: err });
  }

  private assertRunning(): void {
    if (this.stopped) throw new MediaError('MEDIA_ERR_STOPPED', 'the media gateway is stopped');
  }
}

function requireText(value: unknown, name: string): void {
  if (typeof value !== 'string' || value === '') throw new TypeError(`media: ${name} must be a non-empty string`);
}

function sdpText(sdp: unknown): string {
  const text = Buffer.isBuffer(sdp) ? sdp.toString('utf8') : sdp;
  if (typeof text !== 'string' || !text.startsWith('v=')) throw new TypeError('media: sdp must be an SDP body (starting with "v=")');
  return text;
}
