/**
 * Where meetings' rooms are (sql/0014_meeting_nodes.ts): a meeting's Janus node, and each node's load as the SQL rows
 * tell it. Types only; which node is chosen, and what "down" means, are the focus's business (conference/nodes.ts).
 */

/** A node's load, counted from the rows every worker shares. */
export interface NodeLoad {
  /** The node's Janus API URL (meetings.janus[].url). */
  readonly node: string;
  /** Meetings whose rooms are on it. */
  readonly rooms: number;
  /** Participants admitted in those meetings now. */
  readonly participants: number;
  /**
   * Streams it forwards, estimated: each admitted participant's published streams (the mids its app reported, or 2 —
   * microphone and camera — until it reports) to each other participant of its meeting.
   */
  readonly streams: number;
}

export interface PlacementRepository {
  /** The node holding the meeting's room; undefined when it is on none. */
  nodeOf(meetingId: string): Promise<string | undefined>;
  /** Puts the meeting on `node` unless it is placed already; answers the node it is on (another worker's choice wins). */
  claim(meetingId: string, node: string): Promise<string>;
  /** Moves the meeting from `from` to `to` if it is still on `from` (compare-and-set): true when this call moved it. */
  move(meetingId: string, from: string, to: string): Promise<boolean>;
  /** The meeting's room is gone (ended, destroyed): its placement too. */
  release(meetingId: string): Promise<void>;
  /** The meetings whose rooms are on `node`. */
  meetingsOn(node: string): Promise<string[]>;
  /** The load of every node that holds a room (a node without rooms is absent: its load is nil). */
  loads(): Promise<NodeLoad[]>;
}
