import { type Logger, categoryLogger } from '../src/log/index.js';
import type { SipRequest, SipResponse } from '../src/sip/index.js';
import type { Destination, Flow } from '../src/transport/types.js';
import type { MediaGateway } from '../media/index.js';
import { hasSdp } from './sdp-body.js';
import type { ProxyMedia } from './types.js';

/** What the hook remembers of a call whose media goes through rtpengine. */
interface CallMedia {
  fromTag: string;
  /** Branches (our Via branch) of the initial INVITE whose offer was relayed: one rtpengine session each. */
  branches: Set<string>;
}

/**
 * The WebRTC gateway as the proxy core sees it (ProxyMedia): an offer going to a leg of another profile
 * (WebRTC ⇄ plain RTP) is rewritten by rtpengine, so is the answer coming back, and the media is released
 * when the call fails or ends. Calls whose legs speak the same profile keep their media end to end.
 * Late offers (an INVITE without SDP, the offer in the 200 and the answer in the ACK) are not relayed yet.
 */
export class MediaHook implements ProxyMedia {
  private readonly calls = new Map<string, CallMedia>();
  private readonly log: Logger;
  private readonly releaseUnknownCalls: boolean;

  /**
   * `releaseUnknownCalls`: a BYE for a call this process did not relay still releases its media (cluster
   * workers: the INVITE may have gone through another worker); rtpengine answers an error for a call it
   * does not have, which is then logged at debug only.
   */
  constructor(private readonly gateway: MediaGateway, logger: Logger, options: { releaseUnknownCalls?: boolean } = {}) {
    this.log = categoryLogger(logger, 'media.proxy');
    this.releaseUnknownCalls = options.releaseUnknownCalls === true;
  }

  /** Calls with relayed media right now. */
  get size(): number {
    return this.calls.size;
  }

  async outgoingRequest(copy: SipRequest, inbound: Flow, outbound: Destination, viaBranch: string): Promise<void> {
    const callId = copy.callId!;
    const fromTag = copy.from?.tag;
    if (fromTag === undefined) return;
    const from = { transport: inbound.protocol, sdp: copy.body };
    const to = { transport: outbound.protocol };
    const inDialog = copy.to?.tag !== undefined;
    const known = this.calls.get(callId);
    // In a dialog, a call relayed at its start stays relayed (hold, codec changes); a new call decides by profiles.
    if (inDialog ? known === undefined && !this.gateway.needsRelay(from, to) : !this.gateway.needsRelay(from, to)) return;
    const sdp = await this.gateway.offer({ callId, fromTag, viaBranch: inDialog ? undefined : viaBranch, sdp: copy.body, from, to });
    copy.setBody(Buffer.from(sdp, 'utf8'), 'application/sdp');
    if (known === undefined) this.calls.set(callId, { fromTag, branches: new Set(inDialog ? [] : [viaBranch]) });
    else if (!inDialog) known.branches.add(viaBranch);
  }

  async upstreamResponse(response: SipResponse, request: SipRequest, inbound: Flow, outbound: Destination | undefined, viaBranch: string | undefined): Promise<void> {
    const call = this.calls.get(request.callId!);
    if (call === undefined || !hasSdp(response)) return;
    const inDialog = request.to?.tag !== undefined;
    if (!inDialog && (viaBranch === undefined || !call.branches.has(viaBranch))) return;
    const toTag = response.to?.tag;
    const fromTag = request.from?.tag;
    if (toTag === undefined || fromTag === undefined) return;
    const sdp = await this.gateway.answer({
      callId: request.callId!,
      fromTag,
      toTag,
      viaBranch: inDialog ? undefined : viaBranch,
      sdp: response.body,
      from: { transport: inbound.protocol, sdp: request.body },
      to: { transport: outbound?.protocol ?? 'udp', sdp: response.body },
    });
    response.setBody(Buffer.from(sdp, 'utf8'), 'application/sdp');
    // A 2xx picks the winner of a fork: every other branch's media goes (RFC 3261 §16.7 step 10 cancels them).
    if (!inDialog && response.status >= 200 && viaBranch !== undefined) {
      for (const other of call.branches) {
        if (other !== viaBranch) this.release({ callId: request.callId!, fromTag: call.fromTag, viaBranch: other });
      }
      call.branches = new Set([viaBranch]);
    }
  }

  finished(request: SipRequest, status: number): void {
    // Only the initial INVITE decides the call's fate: a failed re-INVITE leaves the call as it was.
    if (request.method !== 'INVITE' || request.to?.tag !== undefined || status < 300) return;
    this.end(request.callId!);
  }

  /** The call ended (BYE) or failed: its media sessions go. */
  end(callId: string): void {
    if (this.calls.delete(callId)) this.release({ callId });
    else if (this.releaseUnknownCalls) this.release({ callId }, true);
  }

  private release(params: { callId: string; fromTag?: string; viaBranch?: string }, unknown = false): void {
    this.gateway.delete(params).catch((err: Error) => {
      if (unknown) this.log.debug({ err: err.message, callId: params.callId }, 'no media to release for a call relayed elsewhere (or never)');
      else this.log.warn({ err: err.message, callId: params.callId }, 'media could not be released');
    });
  }
}
