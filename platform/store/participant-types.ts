/**
 * The meeting participants store's types (sql/0010_meeting_participants.ts): one row per request to join, kept after
 * the participant leaves (the meeting's join/leave history). Types only; who may join, admit or kick is the focus's
 * business (conference/focus.ts).
 */

export type ParticipantRole = 'owner' | 'moderator' | 'participant';
export type ParticipantState = 'waiting' | 'admitted' | 'denied' | 'left' | 'kicked';

export const PARTICIPANT_ROLES: readonly ParticipantRole[] = ['owner', 'moderator', 'participant'];
export const PARTICIPANT_STATES: readonly ParticipantState[] = ['waiting', 'admitted', 'denied', 'left', 'kicked'];

/** A participant as stored. Times in ms since the epoch. */
export interface ParticipantRecord {
  /** 12 characters of [a-z2-7]. */
  readonly id: string;
  readonly meetingId: string;
  /** user@domain; undefined for a guest or an admin token. */
  readonly user: string | undefined;
  readonly displayName: string;
  readonly role: ParticipantRole;
  readonly state: ParticipantState;
  /** The videoroom feed id, from admission on. */
  readonly feedId: number | undefined;
  /** When the participant asked to join. */
  readonly askedAt: number;
  /** When it was admitted or denied (at once for a direct admission). */
  readonly decidedAt: number | undefined;
  /** When it left, was kicked, or gave up waiting. */
  readonly leftAt: number | undefined;
}

/** A new row: waiting in the lobby, or admitted at once (with its feed id). */
export interface NewParticipant {
  id: string;
  meetingId: string;
  user: string | undefined;
  displayName: string;
  role: ParticipantRole;
  state: 'waiting' | 'admitted';
  feedId?: number | undefined;
}

/** One of a user's participations, with its meeting's title (the user's history: GET /v1/history). */
export interface UserParticipation extends ParticipantRecord {
  readonly meetingTitle: string;
}

/** Where a page of a user's participations ends: the (askedAt, id) of its last row; the next page is strictly older. */
export interface ParticipationKey {
  askedAt: number;
  id: string;
}

export interface ParticipantRepository {
  /** TypeError for a value that does not fit; STORE_ERR_DUPLICATE when the id exists; STORE_ERR_NOT_FOUND when the meeting does not. */
  create(participant: NewParticipant): Promise<ParticipantRecord>;
  get(meetingId: string, id: string): Promise<ParticipantRecord | undefined>;
  /** A meeting's participants in the order they asked (all states, or those listed). */
  list(meetingId: string, states?: readonly ParticipantState[]): Promise<ParticipantRecord[]>;
  /** The user's row that is still waiting or admitted, if any (the newest). */
  current(meetingId: string, user: string): Promise<ParticipantRecord | undefined>;
  /** How many of the meeting's participants are in `state`. */
  count(meetingId: string, state: ParticipantState): Promise<number>;
  /**
   * Moves the participant from `from` to `to` (and sets its feed id, for an admission) only if it is still in `from`:
   * the row after the move, or undefined when it was not in `from` (another worker moved it first) or is unknown.
   * Sets decidedAt on admitted/denied, leftAt on left/kicked.
   */
  transition(meetingId: string, id: string, from: ParticipantState, to: ParticipantState, feedId?: number): Promise<ParticipantRecord | undefined>;
  /**
   * The rows whose user is `user`, in every meeting, newest asked first ((askedAt, id) descending), at most `limit`,
   * strictly after `after` in that order (keyset paging: a page stays right while rows come and go). TypeError for a
   * `user` or `limit` that does not fit.
   */
  ofUser(user: string, options: { after?: ParticipationKey | undefined; limit: number }): Promise<UserParticipation[]>;
  /** Changes the role of a participant still waiting or admitted: the row after, or undefined when it is neither (or unknown). */
  setRole(meetingId: string, id: string, role: ParticipantRole): Promise<ParticipantRecord | undefined>;
}
