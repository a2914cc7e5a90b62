/**
 * The meetings store's types (sql/0009_meetings.ts): what a meeting is before anyone joins it. Types only; who may
 * read or change a meeting is the meeting service's business (conference/).
 */

/** A meeting as stored. Times in ms since the epoch. */
export interface MeetingRecord {
  /** 12 characters of [a-z2-7]. */
  readonly id: string;
  readonly title: string;
  /** user@domain. */
  readonly owner: string;
  readonly startsAt: number | undefined;
  readonly endsAt: number | undefined;
  /** The scrypt hash of the password (conference/meeting-password.ts), undefined without one. */
  readonly passwordHash: string | undefined;
  readonly lobby: boolean;
  readonly maxParticipants: number;
  readonly recordingAllowed: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type NewMeeting = Omit<MeetingRecord, 'createdAt' | 'updatedAt'>;

/** What an update may change; `null` clears an optional field. */
export interface MeetingChange {
  title?: string;
  startsAt?: number | null;
  endsAt?: number | null;
  passwordHash?: string | null;
  lobby?: boolean;
  maxParticipants?: number;
  recordingAllowed?: boolean;
}

/** A page of meetings: newest first, after the (createdAt, id) of the last one of the page before. */
export interface MeetingQuery {
  owner?: string | undefined;
  after?: { createdAt: number; id: string } | undefined;
  limit: number;
}

export interface MeetingRepository {
  /** STORE_ERR_DUPLICATE when the id exists; TypeError for a value that does not fit. */
  create(meeting: NewMeeting): Promise<MeetingRecord>;
  get(id: string): Promise<MeetingRecord | undefined>;
  /** Newest first (createdAt, then id, descending). */
  list(query: MeetingQuery): Promise<MeetingRecord[]>;
  /** The meeting after the change; STORE_ERR_NOT_FOUND when unknown. */
  update(id: string, change: MeetingChange): Promise<MeetingRecord>;
  /** STORE_ERR_NOT_FOUND when unknown. */
  remove(id: string): Promise<void>;
  /** Deletes every meeting `owner` owns (a deleted user's: their links stop working); resolves with how many. */
  removeOwnedBy(owner: string): Promise<number>;
}
