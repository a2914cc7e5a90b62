/**
 * The meeting recordings store's types (sql/0013_meeting_recordings.ts): a meeting's recording sessions and the
 * files each produced. Types only; who may record is the focus's business, the files' bytes the encrypted file store's.
 */

export type RecordedMedium = 'audio' | 'video';
export const RECORDED_MEDIA: readonly RecordedMedium[] = ['audio', 'video'];

/** One file of a recording: a participant's audio or video, sealed in the encrypted file store under `fileId`. */
export interface RecordingFile {
  readonly fileId: string;
  readonly recordingId: string;
  readonly meetingId: string;
  /** undefined when no participant row names the feed. */
  readonly participantId: string | undefined;
  readonly feedId: number;
  readonly medium: RecordedMedium;
  readonly contentType: string;
  /** Plaintext bytes. */
  readonly size: number;
  readonly createdAt: number;
}

export interface RecordingRecord {
  readonly id: string;
  readonly meetingId: string;
  readonly startedAt: number;
  /** user@domain; undefined for an admin token. */
  readonly startedBy: string | undefined;
  /** undefined while Janus records. */
  readonly stoppedAt: number | undefined;
  readonly stoppedBy: string | undefined;
  readonly files: readonly RecordingFile[];
}

export interface RecordingRepository {
  /**
   * A new session, recording now. STORE_ERR_DUPLICATE when the meeting has one running already, STORE_ERR_NOT_FOUND
   * when the meeting does not exist.
   */
  start(recording: { id: string; meetingId: string; by: string | undefined }): Promise<RecordingRecord>;
  /** The meeting's running session, if any. */
  running(meetingId: string): Promise<RecordingRecord | undefined>;
  /** Marks the running session stopped; undefined when none runs (never started, or another request stopped it first). */
  stop(meetingId: string, by: string | undefined): Promise<RecordingRecord | undefined>;
  /** Throws a STORE_ERR_NOT_FOUND when the recording does not exist. */
  addFile(file: Omit<RecordingFile, 'createdAt'>): Promise<RecordingFile>;
  get(recordingId: string): Promise<RecordingRecord | undefined>;
  /** The meeting's sessions, oldest first, with their files. */
  list(meetingId: string): Promise<RecordingRecord[]>;
  /** The recording file with this file id, if it is one. */
  file(fileId: string): Promise<RecordingFile | undefined>;
}
