/** Janus (videoroom) as the conference module drives it: the Janus API client, the videoroom admin requests, the Admin API. */
export { JanusClient } from './client.js';
export { JanusSession, VIDEOROOM_PLUGIN } from './session.js';
export { JanusHandle } from './handle.js';
export { VideoRoomAdmin } from './videoroom.js';
export { JanusAdmin } from './admin.js';
export { JanusError, JANUS_CORE_ERROR, VIDEOROOM_ERROR, type JanusErrorCode } from './janus-error.js';
export type * from './types.js';
