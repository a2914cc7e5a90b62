/**
 * Types of the Janus client layer: the JSON messages of the Janus API and Admin API, the options and event maps of
 * the client, its sessions and handles, and the videoroom requests. Types only, so callers and fakes can depend on
 * them without the classes.
 */
import type { Logger } from '../../src/log/index.js';

// ---- wire messages ---------------------------------------------------------------------------------

/** A session description as Janus carries it beside a plugin message or event. */
export interface Jsep {
  type: 'offer' | 'answer';
  sdp: string;
  trickle?: boolean;
  e2ee?: boolean;
}

/** Any message Janus sends: `janus` names it (success, error, ack, event, webrtcup, media, hangup, timeout …). */
export interface JanusMessage {
  janus: string;
  transaction?: string;
  session_id?: number;
  /** The handle an event is about. */
  sender?: number;
  data?: Record<string, unknown>;
  plugindata?: { plugin: string; data: Record<string, unknown> };
  jsep?: Jsep;
  error?: { code: number; reason?: string };
  [key: string]: unknown;
}

/** What a plugin answered (sync `success`) or sent later (an async `event`). */
export interface PluginResult<T = Record<string, unknown>> {
  data: T;
  jsep: Jsep | undefined;
}

// ---- the socket shared by both APIs -----------------------------------------------------------------

export interface JanusRequestOptions {
  /** This request's timeout; default the client's. */
  timeoutMs?: number | undefined;
}

/** Why a client closed: the WebSocket close code and reason, or `local` when close() was called. */
export interface JanusClosedInfo {
  code: number;
  reason: string;
  local: boolean;
}

// ---- Janus API client ------------------------------------------------------------------------------

export interface JanusClientOptions {
  /** `ws://host:port` of Janus's WebSocket transport. */
  url: string;
  /** A token for Janus's token_auth (stored tokens, added through the Admin API), sent with every request. */
  token?: string | undefined;
  /** Janus's api_secret, when it has one, sent with every request. */
  apisecret?: string | undefined;
  /** How long a request waits for its answer (an async plugin request: for its event); default 10 s. */
  timeoutMs?: number | undefined;
  /**
   * How often a session sends a keepalive; default 25 s, well under Janus's default session_timeout of 60 s.
   * 0 sends none (the session then dies after session_timeout without other requests).
   */
  keepaliveMs?: number | undefined;
  logger?: Logger | undefined;
}

export type JanusClientEvents = {
  /** The connection is gone (every pending request was rejected with JANUS_ERR_CLOSED first); emitted once. */
  closed: [JanusClosedInfo];
  /** Every message that answers no pending request (events, webrtcup, hangup, timeout …), before it is routed. */
  message: [JanusMessage];
};

export type JanusSessionEvents = {
  /** Janus timed the session out (no request for session_timeout seconds); the session is gone. */
  timeout: [];
  /** The session is gone: destroyed, timed out, or its connection closed; emitted once. */
  destroyed: [];
};

export type JanusHandleEvents = {
  /** An async plugin event that answers no pending request (a publisher joined, a participant was kicked …). */
  event: [PluginResult];
  webrtcup: [];
  /** Janus started or stopped receiving a medium on this handle. */
  media: [{ type: string; receiving: boolean; mid: string | undefined }];
  slowlink: [{ uplink: boolean; lost: number; mid: string | undefined }];
  hangup: [reason: string | undefined];
  /** The handle is gone (detached by us or by Janus, or its session went); emitted once. */
  detached: [];
};

// ---- Admin API client ------------------------------------------------------------------------------

export interface JanusAdminOptions {
  /** `ws://host:port` of the websockets transport's admin listener (admin_ws). */
  url: string;
  /** Janus's admin_secret, sent with every request. */
  adminSecret: string;
  /** Default 10 s. */
  timeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

export type JanusAdminEvents = {
  closed: [JanusClosedInfo];
};

/** The parts of the `info` answer callers use; the rest is there as Janus sent it. */
export interface JanusServerInfo {
  name: string;
  version: number;
  version_string: string;
  'server-name'?: string;
  /** Seconds without a request after which Janus destroys a session. */
  'session-timeout'?: number;
  'local-ip'?: string;
  api_secret?: boolean;
  auth_token?: boolean;
  /** Loaded plugins by package name (`janus.plugin.videoroom` …). */
  plugins: Record<string, { name: string; version: number; version_string: string; description?: string; author?: string }>;
  transports: Record<string, { name: string; version: number }>;
  [key: string]: unknown;
}

export interface JanusStoredToken {
  token: string;
  /** The plugins (package names) the token may attach to. */
  plugins: string[];
}

// ---- videoroom -------------------------------------------------------------------------------------

/** `create`: the room's settings as the focus sets them; the room is never permanent (the focus keeps the state). */
export interface VideoRoomCreateOptions {
  /** A unique positive id; Janus picks one when absent. */
  room?: number | undefined;
  description?: string | undefined;
  /** Needed to edit, destroy, kick, moderate or record the room. */
  secret?: string | undefined;
  /** Needed to join the room. */
  pin?: string | undefined;
  /** Left out of `list` unless the list carries the admin key. */
  isPrivate?: boolean | undefined;
  /** Tokens a participant must present in `join` (the room's ACL). */
  allowed?: string[] | undefined;
  /** Concurrent WebRTC publishers; Janus's default is 3. */
  publishers?: number | undefined;
  /** A video bitrate cap (bit/s) forced on publishers. */
  bitrate?: number | undefined;
  /** Comma-separated codecs in order of preference: `vp8,vp9,h264` … */
  videocodec?: string | undefined;
  /** Comma-separated codecs in order of preference: `opus,pcmu` … */
  audiocodec?: string | undefined;
  /** Emit talking / stopped-talking events from the ssrc-audio-level extension. */
  audiolevelEvent?: boolean | undefined;
  /** Record every publisher (.mjr files in `recDir`). */
  record?: boolean | undefined;
  recDir?: string | undefined;
  /** Recording can be switched only with the room secret. */
  lockRecord?: boolean | undefined;
  /** Tell the participants when anyone joins, not only publishers. */
  notifyJoining?: boolean | undefined;
  /** The plugin's admin_key, when its config sets one (then only keyed `create`s pass). */
  adminKey?: string | undefined;
}

/** `edit`: what can change in a live room; `secret` is the current one. */
export interface VideoRoomEditOptions {
  secret?: string | undefined;
  description?: string | undefined;
  newSecret?: string | undefined;
  newPin?: string | undefined;
  isPrivate?: boolean | undefined;
  publishers?: number | undefined;
  bitrate?: number | undefined;
  lockRecord?: boolean | undefined;
  recDir?: string | undefined;
}

/** A room as `list` describes it (the keys Janus sends, snake_case). */
export interface VideoRoomInfo {
  room: number;
  description: string;
  pin_required: boolean;
  is_private: boolean;
  max_publishers: number;
  bitrate: number;
  audiocodec: string;
  videocodec: string;
  record: boolean;
  rec_dir?: string;
  num_participants: number;
  audiolevel_event?: boolean;
  [key: string]: unknown;
}

/** A participant as `listparticipants` describes it. */
export interface VideoRoomParticipant {
  id: number;
  display?: string;
  publisher: boolean;
  talking?: boolean;
  [key: string]: unknown;
}

export type VideoRoomAllowedAction = 'enable' | 'disable' | 'add' | 'remove';
