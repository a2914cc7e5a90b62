import { type Logger, categoryLogger } from '../src/log/index.js';
import type { SipRequest, SipResponse } from '../src/sip/index.js';
import type { Destination, Flow } from '../src/transport/types.js';
import type { MediaGateway } from '../media/index.js';
import { hasSdp } from './sdp-body.js';
import type { ProxyMedia } from './types.js';
import type { DialogTracker } from '../src/dialog/index.js';

/**
 * The WebRTC gateway as the proxy core sees it (ProxyMedia): an offer going to a leg of another profile
 * (WebRTC ⇄ plain RTP) is rewritten by rtpengine, so is the answer coming back, and the media is released
 * when the call's dialog ends (BYE, failure, maxDuration: the dialog tracker says so). What the hook knows
 * of a call (relay node, the branches whose offer went through the relay) lives on the call's dialog.
 * Calls whose legs speak the same profile keep their media end to end. Late offers (an INVITE without
 * SDP, the offer in the 200 and the answer in the ACK) are not relayed yet.
 */
export class MediaHook implements ProxyMedia {
  private readonly log: Logger;

  constructor(private readonly gateway: MediaGateway, private readonly dialogs: DialogTracker, logger: Logger) {
    this.log = categoryLogger(logger, 'media.proxy');
    // Whatever ends the call releases its relay sessions, on the process that holds the dialog.
    dialogs.on('ended', (dialog) => {
      if (dialog.mediaRelayed) this.release({ callId: dialog.callId });
    });
  }

  async outgoingRequest(copy: SipRequest, inbound: Flow, outbound: Destination, viaBranch: string): Promise<void> {
    const callId = copy.callId!;
    const fromTag = copy.from?.tag;
    if (fromTag === undefined) return;
    const from = { transport: inbound.protocol, sdp: copy.body };
    const to = { transport: outbound.protocol };
    const inDialog = copy.to?.tag !== undefined;
    const dialog = this.dialogs.get(callId);
    const known = dialog?.media;
    // In a dialog, a call relayed at its start stays relayed (hold, codec changes); a new call decides by profiles.
    if (inDialog ? known === undefined && !this.gateway.needsRelay(from, to) : !this.gateway.needsRelay(from, to)) return;
    const sdp = await this.gateway.offer({ callId, fromTag, viaBranch: inDialog ? undefined : viaBranch, sdp: copy.body, from, to });
    copy.setBody(Buffer.from(sdp, 'utf8'), 'application/sdp');
    if (dialog === undefined) return;
    if (known === undefined) dialog.media = { node: this.gateway.nodeOf(callId), branches: new Set(inDialog ? [] : [viaBranch]) };
    else if (!inDialog) known.branches.add(viaBranch);
  }

  async upstreamResponse(response: SipResponse, request: SipRequest, inbound: Flow, outbound: Destination | undefined, viaBranch: string | undefined): Promise<void> {
    const dialog = this.dialogs.get(request.callId!);
    const call = dialog?.media;
    if (dialog === undefined || call === undefined || !hasSdp(response)) return;
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
        if (other !== viaBranch) this.release({ callId: request.callId!, fromTag: dialog.fromTag, viaBranch: other });
      }
      call.branches = new Set([viaBranch]);
    }
  }

  private release(params: { callId: string; fromTag?: string; viaBranch?: string }): void {
    this.gateway.delete(params).catch((err: Error) => this.log.warn({ err: err.message, callId: params.callId }, 'media could not be released'));
  }
}
