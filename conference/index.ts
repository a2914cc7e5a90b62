/**
 * The conference module (issue 19): meetings on a Janus videoroom, the softswitch being the focus. So far: meetings
 * as data (meetings.ts), their REST routes (routes.ts) and passwords (meeting-password.ts); the focus (focus.ts: join,
 * lobby, admission, leave and kick, with Janus tokens; guests; the meeting's chat group; moderation and history) and its
 * routes (participant-routes.ts, moderation-routes.ts), breakout rooms (focus.ts, breakout-routes.ts), recordings
 * (meeting-recorder.ts, recording-routes.ts), on the Janus nodes of meetings.janus (janus-node.ts) with secrets
 * derived from one server key (focus-secrets.ts); and the Janus clients
 * (janus/: the WebSocket API, its videoroom wrappers, the Admin API).
 */
export { MeetingService, MeetingError, DEFAULT_MAX_PARTICIPANTS, meetingView, newMeetingId, publicView } from './meetings.js';
export type { MeetingActor, MeetingChangeInput, MeetingErrorCode, MeetingPublicView, MeetingServiceOptions, MeetingView, NewMeetingInput } from './meetings.js';
export { meetingRoutes, MEETING_PAGE, MAX_MEETING_PAGE, type MeetingRouteOptions } from './routes.js';
export { hashMeetingPassword, verifyMeetingPassword, MAX_MEETING_PASSWORD } from './meeting-password.js';
export { Focus, mayModerate, roleOf, screenFeedOf } from './focus.js';
export type { Admission, BreakoutInput, BreakoutMove, BreakoutView, FocusOptions, GuestActor, HistoryEntry, HistoryPage, JanusGrant, JoinInput, MediaState, MeetingChat, MeetingChatMessage, MeetingChatter, ParticipantActor } from './focus.js';
export { FocusSecrets, FOCUS_KEY_FILE, loadFocusKey } from './focus-secrets.js';
export { JanusNode } from './janus-node.js';
export type { JanusNodeConfig, JanusNodeOptions } from './janus-node.js';
export { JanusPool, type JanusPoolOptions, type NodeStatus, type PoolNode } from './nodes.js';
export { MeetingSignals } from './meeting-signals.js';
export { participantRoutes } from './participant-routes.js';
export { meetingChatRoutes, CHAT_PAGE, MAX_CHAT_PAGE } from './chat-routes.js';
export { eventRoutes, STREAMS_PER_PARTICIPANT } from './event-routes.js';
export { moderationRoutes, participantMediaRoutes, HISTORY_PAGE, MAX_HISTORY_PAGE } from './moderation-routes.js';
export { breakoutRoutes, MAX_BREAKOUT_S } from './breakout-routes.js';
export { MeetingRecorder, type MeetingRecorderOptions, type RecordingSealer } from './meeting-recorder.js';
export { recordingRoutes } from './recording-routes.js';
export * from './janus/index.js';
