/**
 * Meetings (issue 19): the meeting focus. So far: meetings as data (meetings.ts), their REST routes (routes.ts) and
 * their passwords (meeting-password.ts).
 */
export { MeetingService, MeetingError, DEFAULT_MAX_PARTICIPANTS, meetingView, newMeetingId, publicView } from './meetings.js';
export type { MeetingActor, MeetingChangeInput, MeetingErrorCode, MeetingPublicView, MeetingServiceOptions, MeetingView, NewMeetingInput } from './meetings.js';
export { meetingRoutes, MEETING_PAGE, MAX_MEETING_PAGE } from './routes.js';
export { hashMeetingPassword, verifyMeetingPassword, MAX_MEETING_PASSWORD } from './meeting-password.js';
