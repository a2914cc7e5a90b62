/**
 * The breakout rooms store's types (sql/0012_breakout_rooms.ts): a meeting's set of breakout rooms, open or closed,
 * and who is in which room. Types only; who may move whom, and Janus, are the focus's business (conference/focus.ts).
 */

export const MAX_BREAKOUT_ROOMS = 50;

export interface BreakoutRoom {
  /** 1 … N; 0 names the main room in the focus's answers, never a row. */
  readonly number: number;
  readonly name: string;
}

export interface BreakoutAssignment {
  readonly participantId: string;
  readonly room: number;
}

export interface BreakoutSet {
  readonly meetingId: string;
  readonly state: 'open' | 'closed';
  readonly allowChoose: boolean;
  readonly openedAt: number;
  readonly endsAt: number | undefined;
  readonly closedAt: number | undefined;
  readonly rooms: readonly BreakoutRoom[];
  /** While open: the participants in a breakout room (the others are in the main room). Empty once closed. */
  readonly assignments: readonly BreakoutAssignment[];
}

export interface NewBreakoutSet {
  meetingId: string;
  /** The rooms' names, in order: room 1 is the first. */
  names: readonly string[];
  allowChoose: boolean;
  endsAt: number | undefined;
}

export interface BreakoutRepository {
  /** undefined when the meeting never had breakout rooms. */
  get(meetingId: string): Promise<BreakoutSet | undefined>;
  /** Opens a set (replacing a closed one). STORE_ERR_DUPLICATE when one is open; STORE_ERR_NOT_FOUND when the meeting does not exist. */
  open(set: NewBreakoutSet): Promise<BreakoutSet>;
  /**
   * Puts the participant in room `room` of the open set, or back in the main room (0). The room it was in before (0: the
   * main room). STORE_ERR_NOT_FOUND when no set is open, the set has no such room, or the meeting no such participant.
   */
  assign(meetingId: string, participantId: string, room: number): Promise<number>;
  /** The room the participant is in while a set is open (0: the main room, or no set open). */
  roomOf(meetingId: string, participantId: string): Promise<number>;
  /**
   * Closes the open set: its assignments go (everyone is in the main room). The assignments it had, or undefined when
   * no set was open (another request closed it first: only one closer gets them).
   */
  close(meetingId: string): Promise<BreakoutAssignment[] | undefined>;
}
