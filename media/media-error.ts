/** Stable codes of the media gateway, each with the SIP answer the proxy gives the INVITE. */
export type MediaErrorCode =
  | 'MEDIA_ERR_NO_RELAY' // the legs need bridging and no rtpengine is configured
  | 'MEDIA_ERR_RELAY_UNAVAILABLE' // rtpengine is configured but no node answered
  | 'MEDIA_ERR_RELAY_REFUSED' // rtpengine refused the SDP (its error-reason is in the message)
  | 'MEDIA_ERR_STOPPED'; // the gateway was used after stop()

const SIP_ANSWER: Readonly<Record<MediaErrorCode, { status: number; reason: string }>> = {
  MEDIA_ERR_NO_RELAY: { status: 488, reason: 'Not Acceptable Here' },
  MEDIA_ERR_RELAY_UNAVAILABLE: { status: 503, reason: 'Media Relay Unavailable' },
  MEDIA_ERR_RELAY_REFUSED: { status: 488, reason: 'Not Acceptable Here' },
  MEDIA_ERR_STOPPED: { status: 500, reason: 'Server Internal Error' },
};

export class MediaError extends Error {
  readonly code: MediaErrorCode;
  /** The SIP status the proxy answers the request with. */
  readonly status: number;
  readonly reason: string;
  constructor(code: MediaErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MediaError';
    this.code = code;
    this.status = SIP_ANSWER[code].status;
    this.reason = SIP_ANSWER[code].reason;
  }
}
