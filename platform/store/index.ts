export { openStore } from './store.js';
export { StoreError, type StoreErrorCode } from './store-error.js';
export { parseStoreUrl, maskStoreUrl, type StoreLocation } from './store-url.js';
export { computeHa1Set, subscriberHA1, type Ha1Set } from './subscriber-ha1.js';
export type {
  StoreDialect, OpenStoreOptions, Store, SqlStore, Domain, Subscriber, NewSubscriber, Binding, StoredBinding,
  DomainRepository, SubscriberRepository, SubscriberPage, LocationRepository, AdminToken, NewAdminToken, CreatedAdminToken, AdminTokenRepository,
} from './types.js';
export { CALL_DIRECTIONS, CALL_DISPOSITIONS, MAX_CALL_PAGE } from './sql-call-repository.js';
export { ADMIN_TOKEN_PREFIX, checkTokenName, generateAdminToken, hashAdminToken, isAdminTokenShape } from './admin-tokens.js';
export { securePrivateDir, tightenModes, type TightenedPath } from '../../src/transport/file-modes.js';
export {
  BALANCE_ALGORITHMS, checkAlgorithm, checkBackendUri, checkDidNumber, checkPattern, checkSetName, checkWeight, parseCidr,
} from './sql-routing-repository.js';
export type {
  RoutingRepository, BackendRecord, BackendSetRecord, BalanceAlgorithm, RouteRecord, DidRecord, TrustedRecord,
} from './routing-types.js';
export type {
  CallDirection, CallDisposition, CallHangupBy, CallParty, CallRecord, CallQuery, CallPage, CallRepository, DialogRepository, PersistedDialog, HistoryWrite, HistoryWriteRepository,
} from './types.js';
export { SqlRefreshTokenRepository, type RefreshTokenRecord, type RefreshTokenRepository } from './refresh-tokens.js';
export type {
  ConversationKind, MemberRole, MessageKind, ConversationRecord, MemberRecord, StoredMessage, NewMessage, InboxEntry, ConversationSummary,
  MessagePageQuery, ReceiptRecord, FileRecord, MessageRepository,
} from './message-types.js';
export { SqlMessageRepository, MAX_MESSAGE_PAGE, MAX_SEALED_BODY, PURGE_BATCH } from './sql-message-repository.js';
export type { PresenceRepository } from './presence-types.js';
export { SqlPresenceRepository, MAX_PRESENCE_USER } from './sql-presence-repository.js';
export type { MeetingRecord, NewMeeting, MeetingChange, MeetingQuery, MeetingRepository } from './meeting-types.js';
export { SqlMeetingRepository, MEETING_ID, MAX_MEETING_PARTICIPANTS } from './sql-meeting-repository.js';
export type { NewParticipant, ParticipantRecord, ParticipantRepository, ParticipantRole, ParticipantState } from './participant-types.js';
export { PARTICIPANT_ROLES, PARTICIPANT_STATES } from './participant-types.js';
export { SqlParticipantRepository } from './sql-participant-repository.js';
export type {
  MediaBlock, MediaKind, MeetingEvent, MeetingEventKind, MeetingModeration, MediaBlocks, ModerationRepository, NewMeetingEvent, ParticipantMedia,
} from './moderation-types.js';
export { MEDIA_BLOCKS, MEDIA_KINDS, MEETING_EVENT_KINDS } from './moderation-types.js';
export { SqlModerationRepository } from './sql-moderation-repository.js';
export type { BreakoutAssignment, BreakoutRepository, BreakoutRoom, BreakoutSet, NewBreakoutSet } from './breakout-types.js';
export { MAX_BREAKOUT_ROOMS } from './breakout-types.js';
export { SqlBreakoutRepository } from './sql-breakout-repository.js';
export type { RecordedMedium, RecordingFile, RecordingRecord, RecordingRepository } from './recording-types.js';
export { RECORDED_MEDIA } from './recording-types.js';
export { SqlRecordingRepository } from './sql-recording-repository.js';
export type { NodeLoad, PlacementRepository } from './placement-types.js';
export { SqlPlacementRepository } from './sql-placement-repository.js';
