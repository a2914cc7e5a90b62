/**
 * The media module: rtpengine over the ng protocol so a WebRTC leg (ICE, DTLS-SRTP, opus) can talk to a
 * plain RTP/AVP leg. `createMediaGateway` builds the gateway the proxy calls (offer / answer / delete /
 * needsRelay) on a pool of rtpengine nodes; with no node configured, `needsRelay` still answers and calls
 * that need bridging are refused with MEDIA_ERR_NO_RELAY (488).
 */
import { MediaGateway } from './media-gateway.js';
import { RtpenginePool } from './rtpengine/index.js';
import type { CreateMediaGatewayOptions } from './types.js';

export { MediaGateway } from './media-gateway.js';
export { MediaError, type MediaErrorCode } from './media-error.js';
export { legProfile, ngFlags, transcodeCodecs, audioCodecs, mediaProtocols } from './media-profile.js';
export { expandFeedbackWildcards } from './rtcp-feedback.js';
export * from './rtpengine/index.js';
export type * from './types.js';

export function createMediaGateway(options: CreateMediaGatewayOptions): MediaGateway {
  const pool = new RtpenginePool({
    nodes: options.nodes,
    logger: options.logger,
    timeoutMs: options.timeoutMs,
    downtimeMs: options.downtimeMs,
    pingIntervalMs: options.pingIntervalMs,
    stickyTtlMs: options.stickyTtlMs,
  });
  return new MediaGateway({ pool, logger: options.logger, alwaysRelay: options.alwaysRelay, deleteDelaySec: options.deleteDelaySec });
}
