/**
 * Meeting recordings (issue 19, item 7): a moderator starts and stops Janus's recording of the meeting's room, when the
 * meeting allows it (`recordingAllowed`). Janus writes one .mjr file per publisher and medium into the node's
 * `recordingDir` (meetings.janus[].recordingDir: the videoroom's rec_dir, set on the room with `edit` at each start).
 * On stop, each of the room's .mjr files is converted by `janus-pp-rec` (Debian's janus-tools; a child process with a
 * time limit) into WebM (VP8 video) or Ogg Opus (audio), the output sealed into the encrypted file store (the chat's
 * `files`, owned by the meeting's owner: downloaded through /v1/files/{id} by its owner, admins and its moderators),
 * the plain files deleted, and the files recorded with their participant (sql/0013_meeting_recordings.ts). Starting
 * and stopping are `recording` entries of the meeting's history.
 *
 * The node's folder must be the softswitch's too: Janus on the same machine, or a volume shared by both at the same
 * path. A .mjr that janus-pp-rec cannot convert is logged (one line) and left in place for the operator.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type ReadStream, createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { categoryLogger, silentLogger, type Logger } from '../src/log/index.js';
import {
  StoreError, type FileRecord, type MeetingRecord, type MessageRepository, type ModerationRepository, type ParticipantRepository, type RecordedMedium,
  type RecordingRecord, type RecordingRepository,
} from '../platform/store/index.js';
import type { Focus } from './focus.js';
import type { FocusSecrets } from './focus-secrets.js';
import { type MeetingActor, MeetingError, newMeetingId } from './meetings.js';

/** What the recorder needs of the encrypted file store (messaging's EncryptedFiles): sealing a file under an id. */
export interface RecordingSealer {
  put(id: string, plaintext: ReadStream, maxSize: number): Promise<{ location: string; size: number; wrappedKey: Buffer }>;
}

export interface MeetingRecorderOptions {
  focus: Focus;
  secrets: FocusSecrets;
  recordings: RecordingRepository;
  participants: ParticipantRepository;
  /** The meeting's history (the `recording` entries). */
  moderation: ModerationRepository;
  /** The encrypted file store and its rows; without them (messaging.enabled false) nothing can be recorded (503). */
  files?: { store: RecordingSealer; index: Pick<MessageRepository, 'addFile'> } | undefined;
  /** meetings.janus[].recordingDir by node URL; a node without one records nothing (503). */
  recordingDirs: ReadonlyMap<string, string>;
  /** The converter; default `janus-pp-rec` on the PATH. */
  postProcessor?: string | undefined;
  /** The time one conversion may take; default 2 minutes. */
  convertTimeoutMs?: number | undefined;
  /** The largest file sealed; default 4 GiB. */
  maxFileSize?: number | undefined;
  logger?: Logger | undefined;
}

/**
 * janus_videoroom.c (1.x) names a publisher's recording `videoroom-<room>-user-<feed>-<µs>-<audio|video|data>-<mindex>.mjr`
 * (with `rec_dir` and no `filename` of the publisher's own).
 */
const MJR = /^videoroom-(\d+)-user-(\d+)-(\d+)-(audio|video)-(\d+)\.mjr$/;
const OUTPUT: Record<RecordedMedium, { ext: string; contentType: string }> = {
  video: { ext: 'webm', contentType: 'video/webm' },
  audio: { ext: 'opus', contentType: 'audio/ogg; codecs=opus' },
};
const CONVERT_TIMEOUT_MS = 120_000;
const MAX_FILE_SIZE = 4 * 1024 ** 3;

export class MeetingRecorder {
  private readonly log: Logger;

  constructor(private readonly options: MeetingRecorderOptions) {
    this.log = categoryLogger(options.logger ?? silentLogger(), 'conference.recording');
  }

  /** Janus records the room from now on: 403 unless the meeting allows it, 409 while it is recorded already. */
  async start(actor: MeetingActor, meetingId: string): Promise<RecordingRecord> {
    const { focus, recordings } = this.options;
    const meeting = await focus.moderatedBy(actor, meetingId, 'start a recording');
    if (!meeting.recordingAllowed) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'this meeting does not allow recording (recordingAllowed is false)');
    const dir = await this.dirOf(meeting);
    if ((await recordings.running(meeting.id)) !== undefined) throw recordingAlready();
    // Janus first: a start Janus refused leaves no session behind.
    await focus.recordRoom(meeting, true, dir);
    let started: RecordingRecord;
    try {
      started = await recordings.start({ id: newMeetingId(), meetingId: meeting.id, by: by(actor) });
    } catch (err) {
      // Another moderator started it meanwhile: Janus records once either way.
      if (err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE') throw recordingAlready();
      throw err;
    }
    await this.options.moderation.record({ meetingId: meeting.id, kind: 'recording', actor: by(actor), detail: 'started' });
    this.log.info({ meeting: meeting.id, recording: started.id }, 'recording started');
    return started;
  }

  /** Janus stops; the room's .mjr files become sealed WebM and Opus files of this session. 409 when nothing is recorded. */
  async stop(actor: MeetingActor, meetingId: string): Promise<RecordingRecord> {
    const { focus, recordings } = this.options;
    const meeting = await focus.moderatedBy(actor, meetingId, 'stop a recording');
    if ((await recordings.running(meeting.id)) === undefined) throw notRecording();
    // Janus before the row: a stop Janus refused (503) leaves the session running, and a retry stops it.
    await focus.recordRoom(meeting, false);
    const stopped = await recordings.stop(meeting.id, by(actor));
    if (stopped === undefined) throw notRecording(); // another moderator stopped it meanwhile, and collects the files
    const dir = this.options.recordingDirs.get((await focus.nodeOf(meeting)).url);
    const sealed = dir === undefined ? 0 : await this.collect(stopped, meeting, dir);
    await this.options.moderation.record({ meetingId: meeting.id, kind: 'recording', actor: by(actor), detail: `stopped: ${sealed} files` });
    this.log.info({ meeting: meeting.id, recording: stopped.id, files: sealed }, 'recording stopped');
    return (await recordings.get(stopped.id)) ?? stopped;
  }

  /** The meeting's recording sessions with their files, oldest first: to its moderators. */
  async list(actor: MeetingActor, meetingId: string): Promise<RecordingRecord[]> {
    const meeting = await this.options.focus.moderatedBy(actor, meetingId, 'see its recordings');
    return this.options.recordings.list(meeting.id);
  }

  /** /v1/files: a recording file is also the meeting's moderators' to read (its owner reads it as the file's owner). */
  async mayRead(user: string, file: FileRecord): Promise<boolean> {
    const recorded = await this.options.recordings.file(file.id);
    return recorded !== undefined && this.options.focus.moderates({ kind: 'user', user }, recorded.meetingId);
  }

  /**
   * Converts, seals and records every .mjr of the meeting's room in `dir` as files of `recording`; deletes the plain
   * files. Resolves with how many were sealed. One file's failure is logged and does not stop the others.
   */
  async collect(recording: RecordingRecord, meeting: MeetingRecord, dir: string): Promise<number> {
    const files = this.options.files;
    if (files === undefined) return 0;
    const room = String(this.options.secrets.roomId(meeting.id));
    const feeds = new Map<number, string>();
    for (const p of await this.options.participants.list(meeting.id)) if (p.feedId !== undefined) feeds.set(p.feedId, p.id);
    let sealed = 0;
    for (const name of (await readdir(dir)).sort()) {
      const m = MJR.exec(name);
      if (m === null || m[1] !== room) continue;
      const feedId = Number(m[2]);
      const medium = m[4] as RecordedMedium;
      const mjr = join(dir, name);
      const out = OUTPUT[medium];
      const converted = `${mjr.slice(0, -'.mjr'.length)}.${out.ext}`;
      try {
        await this.convert(mjr, converted);
        const fileId = randomBytes(16).toString('base64url');
        const stored = await files.store.put(fileId, createReadStream(converted), this.options.maxFileSize ?? MAX_FILE_SIZE);
        const participantId = feeds.get(feedId);
        await files.index.addFile({
          id: fileId, owner: meeting.owner, contentType: out.contentType, size: stored.size, wrappedKey: stored.wrappedKey, location: stored.location,
          name: `meeting-${meeting.id}-${participantId ?? feedId}-${medium}-${m[3]}.${out.ext}`, createdAt: Date.now(),
        });
        await this.options.recordings.addFile({ fileId, recordingId: recording.id, meetingId: meeting.id, participantId, feedId, medium, contentType: out.contentType, size: stored.size });
        await rm(mjr, { force: true });
        sealed++;
      } catch (err) {
        this.log.warn({ meeting: meeting.id, recording: recording.id, file: mjr, err: (err as Error).message }, 'a recording could not be converted and sealed: its .mjr is left in place');
      } finally {
        await rm(converted, { force: true });
      }
    }
    return sealed;
  }

  private async convert(mjr: string, output: string): Promise<void> {
    const timeout = this.options.convertTimeoutMs ?? CONVERT_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      execFile(this.options.postProcessor ?? 'janus-pp-rec', [mjr, output], { timeout, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
        if (err === null) resolve();
        else reject(new Error(`janus-pp-rec failed (${err.killed ? `over ${timeout} ms` : `exit ${String(err.code)}`}): ${lastLine(stderr)}`));
      });
    });
    // janus-pp-rec exits 0 for a .mjr without a frame it could write: an empty output is no recording.
    if ((await stat(output)).size === 0) throw new Error('janus-pp-rec wrote nothing');
  }

  private async dirOf(meeting: MeetingRecord): Promise<string> {
    const node = await this.options.focus.nodeOf(meeting);
    const dir = this.options.recordingDirs.get(node.url);
    if (dir === undefined || this.options.files === undefined) {
      throw new MeetingError('MEETING_ERR_UNAVAILABLE', 'recording needs the Janus node\'s meetings.janus[].recordingDir and the encrypted file store (messaging.enabled)');
    }
    return dir;
  }
}

const by = (actor: MeetingActor): string | undefined => (actor.kind === 'user' ? actor.user : undefined);
const recordingAlready = () => new MeetingError('MEETING_ERR_CONFLICT', 'the meeting is being recorded already');
const notRecording = () => new MeetingError('MEETING_ERR_CONFLICT', 'the meeting is not being recorded');

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 300);
}
