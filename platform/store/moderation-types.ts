/**
 * The meeting moderation store's types (sql/0011_meeting_moderation.ts): a meeting's lock and mute-all, each
 * participant's published streams and media blocks, and the meeting's event log. Types only; who may moderate is the
 * focus's business (conference/focus.ts).
 */

export type MediaKind = 'audio' | 'video';
/** none: not muted by moderation; soft: muted, the participant may unmute itself; hard: muted until a moderator lifts it. */
export type MediaBlock = 'none' | 'soft' | 'hard';
export type MeetingEventKind = 'muted' | 'unmuted' | 'mute-all' | 'unmute-all' | 'locked' | 'unlocked' | 'role' | 'ended' | 'breakout-open' | 'breakout-move' | 'breakout-close' | 'recording' | 'node-moved';

export const MEDIA_KINDS: readonly MediaKind[] = ['audio', 'video'];
export const MEDIA_BLOCKS: readonly MediaBlock[] = ['none', 'soft', 'hard'];
export const MEETING_EVENT_KINDS: readonly MeetingEventKind[] = ['muted', 'unmuted', 'mute-all', 'unmute-all', 'locked', 'unlocked', 'role', 'ended',
  'breakout-open', 'breakout-move', 'breakout-close', 'recording', 'node-moved'];

/** A meeting's moderation state (the defaults when no moderator touched it). */
export interface MeetingModeration {
  readonly meetingId: string;
  readonly locked: boolean;
  /** The block every publisher of that medium gets, late joiners included. */
  readonly audio: MediaBlock;
  readonly video: MediaBlock;
}

/** A participant's streams (as its app reported them) and blocks. */
export interface ParticipantMedia {
  readonly participantId: string;
  readonly meetingId: string;
  readonly audioMid: string | undefined;
  readonly videoMid: string | undefined;
  readonly audio: MediaBlock;
  readonly video: MediaBlock;
}

export interface MediaBlocks {
  audio: MediaBlock;
  video: MediaBlock;
}

export interface NewMeetingEvent {
  meetingId: string;
  kind: MeetingEventKind;
  /** user@domain; undefined for an admin token. */
  actor: string | undefined;
  participantId?: string | undefined;
  detail?: string | undefined;
}

export interface MeetingEvent extends Readonly<Required<Omit<NewMeetingEvent, 'participantId' | 'detail'>>> {
  readonly id: number;
  readonly at: number;
  readonly participantId: string | undefined;
  readonly detail: string | undefined;
}

export interface ModerationRepository {
  get(meetingId: string): Promise<MeetingModeration>;
  /** STORE_ERR_NOT_FOUND when the meeting does not exist. */
  setLocked(meetingId: string, locked: boolean): Promise<MeetingModeration>;
  setMuteAll(meetingId: string, media: MediaKind, block: MediaBlock): Promise<MeetingModeration>;
  /** Back to the defaults (the meeting ended): unlocked, nobody muted, streams forgotten. */
  reset(meetingId: string): Promise<void>;
  /** undefined when the participant has no media row (nothing reported, never muted): the meeting's mute-all applies. */
  media(meetingId: string, participantId: string): Promise<ParticipantMedia | undefined>;
  /** Every participant of the meeting that has a media row. */
  mediaOf(meetingId: string): Promise<ParticipantMedia[]>;
  /** STORE_ERR_NOT_FOUND when the participant does not exist. */
  /**
   * STORE_ERR_NOT_FOUND when the meeting has no such participant. A participant's first row starts from `initial`
   * (the meeting's mute-all: what moderation had decided for it before it had a row), default none.
   */
  setStreams(meetingId: string, participantId: string, mids: { audioMid: string | undefined; videoMid: string | undefined }, initial?: MediaBlocks): Promise<ParticipantMedia>;
  setBlock(meetingId: string, participantId: string, media: MediaKind, block: MediaBlock, initial?: MediaBlocks): Promise<ParticipantMedia>;
  /** Appends to the meeting's event log; STORE_ERR_NOT_FOUND when the meeting does not exist. */
  record(event: NewMeetingEvent): Promise<MeetingEvent>;
  /** The meeting's events, oldest first. */
  events(meetingId: string): Promise<MeetingEvent[]>;
}
