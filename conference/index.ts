/**
 * The conference module (issue 19): meetings on a Janus videoroom, the softswitch being the focus. So far: meetings
 * as data (meetings.ts), their REST routes (routes.ts) and passwords (meeting-password.ts), and the Janus clients
 * (janus/: the WebSocket API, its videoroom wrappers, the Admin API).
 */
export { MeetingService, MeetingError, DEFAULT_MAX_PARTICIPANTS, meetingView, newMeetingId, publicView } from './meetings.js';
export type { MeetingActor, MeetingChangeInput, MeetingErrorCode, MeetingPublicView, MeetingServiceOptions, MeetingView, NewMeetingInput } from './meetings.js';
export { meetingRoutes, MEETING_PAGE, MAX_MEETING_PAGE } from './routes.js';
export { hashMeetingPassword, verifyMeetingPassword, MAX_MEETING_PASSWORD } from './meeting-password.js';
export * from './janus/index.js';
