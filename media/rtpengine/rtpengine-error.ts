/** Stable codes of the rtpengine control layer. */
export type RtpengineErrorCode =
  | 'RTPENGINE_ERR_TIMEOUT' // no reply within the command's timeout, retransmissions included
  | 'RTPENGINE_ERR_COMMAND' // rtpengine answered `result: error`; `reason` holds its error-reason
  | 'RTPENGINE_ERR_REPLY' // the reply was not a well-formed ng dictionary
  | 'RTPENGINE_ERR_SEND' // the datagram could not be sent (socket error, name resolution, too large)
  | 'RTPENGINE_ERR_CLOSED' // the client or pool was closed
  | 'RTPENGINE_ERR_NO_NODE'; // the pool has no node that could take the command

export class RtpengineError extends Error {
  readonly code: RtpengineErrorCode;
  /** `udp:host:port` of the node concerned, when there is one. */
  readonly node: string | undefined;
  /** rtpengine's `error-reason` for RTPENGINE_ERR_COMMAND. */
  readonly reason: string | undefined;
  constructor(
    code: RtpengineErrorCode,
    message: string,
    details: { node?: string | undefined; reason?: string | undefined; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RtpengineError';
    this.code = code;
    this.node = details.node;
    this.reason = details.reason;
  }
}
