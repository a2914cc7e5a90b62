/** Stable codes of the Janus client layer. */
export type JanusErrorCode =
  | 'JANUS_ERR_CONNECT' // the WebSocket to Janus could not be opened (refused, wrong subprotocol, handshake timeout)
  | 'JANUS_ERR_TIMEOUT' // no answer within the request's timeout
  | 'JANUS_ERR_CLOSED' // the connection closed (or the client, session or handle was closed) before an answer
  | 'JANUS_ERR_REFUSED' // Janus answered `janus: error`; `janusCode` and `reason` hold its error.code and error.reason
  | 'JANUS_ERR_PLUGIN' // the plugin answered with an `error_code` (videoroom 426 no such room, 433 unauthorized …)
  | 'JANUS_ERR_REPLY'; // the answer was not what the request expects (no plugindata, no session id …)

export class JanusError extends Error {
  readonly code: JanusErrorCode;
  /** The request concerned (`create`, `attach`, `message:destroy`, `add_token` …), when there is one. */
  readonly request: string | undefined;
  /** Janus's numeric code: the core's error.code (403, 458 …) or the plugin's error_code (426, 433 …). */
  readonly janusCode: number | undefined;
  /** Janus's error.reason, or the plugin's `error` text. */
  readonly reason: string | undefined;
  constructor(
    code: JanusErrorCode,
    message: string,
    details: { request?: string | undefined; janusCode?: number | undefined; reason?: string | undefined; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'JanusError';
    this.code = code;
    this.request = details.request;
    this.janusCode = details.janusCode;
    this.reason = details.reason;
  }
}

/** Janus core error codes (apierror.h) the client and its callers test for. */
export const JANUS_CORE_ERROR = {
  UNAUTHORIZED: 403,
  UNAUTHORIZED_PLUGIN: 405,
  UNKNOWN: 490,
  SESSION_NOT_FOUND: 458,
  HANDLE_NOT_FOUND: 459,
  PLUGIN_NOT_FOUND: 460,
  TOKEN_NOT_FOUND: 470,
} as const;

/** Videoroom plugin error codes (janus_videoroom.c, JANUS_VIDEOROOM_ERROR_*). */
export const VIDEOROOM_ERROR = {
  UNKNOWN_ERROR: 499,
  NO_MESSAGE: 421,
  INVALID_JSON: 422,
  INVALID_REQUEST: 423,
  JOIN_FIRST: 424,
  ALREADY_JOINED: 425,
  NO_SUCH_ROOM: 426,
  ROOM_EXISTS: 427,
  NO_SUCH_FEED: 428,
  MISSING_ELEMENT: 429,
  INVALID_ELEMENT: 430,
  INVALID_SDP_TYPE: 431,
  PUBLISHERS_FULL: 432,
  UNAUTHORIZED: 433,
  ALREADY_PUBLISHED: 434,
  NOT_PUBLISHED: 435,
  ID_EXISTS: 436,
  INVALID_SDP: 437,
} as const;
