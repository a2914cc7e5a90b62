/**
 * The meeting focus (issue 19, part 2): who may join a meeting, the lobby, admission and removal; the softswitch does
 * what Jitsi's Jicofo and Prosody's lobby module do, and Janus's videoroom carries the media.
 *
 * A join, in order:
 *   1. the meeting exists (404), and a Janus node is configured (503: meetings need meetings.janus);
 *   2. the password, unless the actor is the owner or an admin (403, AUTH_ERR_SCOPE: the token may not enter);
 *   3. a user that is already waiting or admitted gets its row back (an app that reconnects does not queue twice);
 *   4. the owner and admins (and moderators) are admitted at once, and so is everyone when the lobby is off;
 *      everyone else waits until a moderator admits or denies them. A rejoin after a kick is a new row: the lobby again.
 * Admission, on the meeting's Janus node: the participant's derived token is stored (Admin API `add_token`, videoroom
 * only) and put on the room's `allowed` list, the room being created on first admission (derived id and secret,
 * audio level events on, `publishers` = maxParticipants). Only then is the row written: if Janus fails the row is not,
 * and the token is taken back. The app gets the Janus URL, its token, the room id and its feed id; never the room's
 * secret. Leave and kick take the token back (`remove_token`, `allowed remove`, `kick` of its feed) and then end the row.
 *
 * Guests (a guest token of the `urn:softswitch:meeting-guest` grant): a guest is a participant whose id is its guest
 * id, with `user` null and the name it gave. It joins only the meeting of its token, always as a participant (the
 * lobby, unless it is off), gives the password as a user does (wrong ones counted per source address: a guest id is
 * free to get), and joins once: left, kicked or denied, it asks for a new guest token and waits again.
 *
 * The meeting's chat (issue 19 item 6): with `chat`, the first admission opens the meeting's group conversation (owned
 * by the meeting's owner) and every admitted user becomes a member, for good: the group outlives the meeting as its
 * history. The admitted user's answers carry its id. A chat failure is logged and does not undo an admission (the next
 * poll tries again). Guests have no user to be a member: while admitted, a guest reads the group from its admission
 * on and posts as `guest:<id>` through chatMessages and chatPost, which answer only whoever is admitted right now.
 */
import { randomInt } from 'node:crypto';
import { silentLogger, categoryLogger, type Logger } from '../src/log/index.js';
import { FailureLimiter } from '../platform/http/index.js';
import { StoreError, type MeetingRecord, type MeetingRepository, type ParticipantRecord, type ParticipantRepository, type ParticipantRole } from '../platform/store/index.js';
import type { MediaBlock, MediaBlocks, MediaKind, MeetingEvent, MeetingModeration, ModerationRepository, ParticipantMedia } from '../platform/store/index.js';
import type { BreakoutRepository, BreakoutSet } from '../platform/store/index.js';
import { JanusError, VIDEOROOM_ERROR, VIDEOROOM_PLUGIN } from './janus/index.js';
import type { FocusSecrets } from './focus-secrets.js';
import type { JanusNode } from './janus-node.js';
import type { JanusPool } from './nodes.js';
import type { MeetingSignals } from './meeting-signals.js';
import { verifyMeetingPassword } from './meeting-password.js';
import { type MeetingActor, MeetingError, newMeetingId } from './meetings.js';

/** What an admitted participant needs to enter the room on Janus. */
export interface JanusGrant {
  /** The Janus API (WebSocket, subprotocol janus-protocol). */
  url: string;
  /** Its Janus token: `token` of every Janus request, and of the videoroom `join` (the room's `allowed` list). */
  token: string;
  room: number;
  /** The `id` to publish with. */
  feedId: number;
  /** The `id` of its screen share (a second publisher with the same token): kicked with the camera's feed. */
  screenFeedId: number;
}

/**
 * A participant's screen-share feed: the one after its camera's. Kicks and moves take both out of a room, so a screen
 * shared under this id cannot outlive its owner's removal (an app that publishes under another id keeps it only until
 * its session, whose token is revoked, times out).
 */
export function screenFeedOf(feedId: number): number {
  return feedId + 1;
}

/** The feeds a participant may publish: its camera's and its screen's. */
const feedsOf = (feedId: number): number[] => [feedId, screenFeedOf(feedId)];

/** The answer to a join, and to a participant polling its own row. */
export interface Admission {
  participant: ParticipantRecord;
  /** Only to the participant itself, and only while admitted. */
  janus?: JanusGrant | undefined;
  /** The meeting's group conversation: to an admitted user itself, a member of it. */
  conversation?: string | undefined;
  /** The breakout room (1 …) the participant is in, `janus.room` being that room's; absent: the main room. */
  breakout?: number | undefined;
}

/** A meeting's breakout rooms as the apps see them. */
export interface BreakoutView {
  open: boolean;
  allowChoose: boolean;
  endsAt?: number | undefined;
  rooms: Array<{ number: number; name: string; room: number; participants: string[] }>;
}

export interface BreakoutInput {
  rooms: number;
  /** Names of the first rooms; the others are `Room n`. */
  names?: readonly string[] | undefined;
  allowChoose: boolean;
  /** The rooms close by themselves after this many seconds. */
  durationS?: number | undefined;
}

/** Where a move put a participant: the room number (0: the main room) and the videoroom id its app joins with the same Janus token. */
export interface BreakoutMove {
  participantId: string;
  breakout: number;
  room: number;
}

/** A message of the meeting's chat as the focus hands it on (messaging's ChatMessage has these fields). */
export interface MeetingChatMessage {
  id: string;
  kind: string;
  /** user@domain, `guest:<guest id>` for a guest, or the group's own address for its notes. */
  sender: string;
  contentType: string;
  body: string;
  createdAt: number;
}

/** Who reads or posts in the meeting's chat: a member user, or a guest (reading from its admission on). */
export type MeetingChatter = { kind: 'user'; user: string } | { kind: 'guest'; guest: string; since: number };

/** The meeting's group conversation (messaging's ChatService has it: openMeetingGroup, enterMeetingGroup, meetingMessages, postAsGuest). */
export interface MeetingChat {
  /** The group's id, the group created on first use. */
  open(meeting: { id: string; title: string; owner: string }): Promise<string>;
  /** Makes the user a member (nothing when it is one). */
  enter(groupId: string, user: string): Promise<void>;
  /** Newest first: `limit` messages older than the message `before`; `more` when older ones the reader may see exist. */
  read(groupId: string, reader: MeetingChatter, options: { before?: string | undefined; limit: number }): Promise<{ messages: MeetingChatMessage[]; more: boolean }>;
  /** Posts a text as the chatter (a user as itself, a guest as `guest:<id>`). */
  post(groupId: string, author: MeetingChatter, text: string): Promise<MeetingChatMessage>;
}

export interface JoinInput {
  displayName: string;
  password?: string | undefined;
  /** The source address: whose wrong passwords a guest's are (a user's count against the user). */
  from?: string | undefined;
}

/** A meeting guest, from its token: its meeting, and its guest id (its participant id there). */
export type GuestActor = { kind: 'guest'; meeting: string; guest: string };
/** Who asks the focus: an admin, a user or a guest. */
export type ParticipantActor = MeetingActor | GuestActor;

/** A participant's media as moderation sees it: the block of each medium and the mids its app reported. */
export interface MediaState {
  participantId: string;
  audio: MediaBlock;
  video: MediaBlock;
  audioMid: string | undefined;
  videoMid: string | undefined;
}

/** One entry of a meeting's history: from the participant rows (joined, admitted, denied, left, kicked), derived (started) or logged (moderation, ended). */
export interface HistoryEntry {
  at: number;
  kind: 'joined' | 'admitted' | 'denied' | 'left' | 'kicked' | 'started' | MeetingEvent['kind'];
  /** Who did it (user@domain), for the logged moderation actions; undefined for an admin token or a row's own move. */
  actor?: string | undefined;
  participantId?: string | undefined;
  /** The participant's user and name, for the entries of a participant. */
  user?: string | undefined;
  displayName?: string | undefined;
  detail?: string | undefined;
}

export interface HistoryPage {
  entries: HistoryEntry[];
  /** Give it as `after` for the entries that follow; absent on the last page. */
  next?: string | undefined;
}

export interface FocusOptions {
  meetings: MeetingRepository;
  participants: ParticipantRepository;
  /** Locks, mute-alls, streams and blocks, and the moderation event log (sql/0011_meeting_moderation.ts). */
  moderation: ModerationRepository;
  /** Breakout rooms (sql/0012_breakout_rooms.ts); without it a meeting has none (503). */
  breakouts?: BreakoutRepository | undefined;
  secrets: FocusSecrets;
  /** The Janus nodes of meetings.janus, with their placements; empty: meetings cannot be joined (503). */
  pool: JanusPool;
  /** Told of every change of a meeting's participants (the apps' event streams listen). */
  signals?: MeetingSignals | undefined;
  /** The meetings' chat; without it (messaging.enabled false) meetings have none. */
  chat?: MeetingChat | undefined;
  logger?: Logger | undefined;
  newId?: (() => string) | undefined;
  newFeedId?: (() => number) | undefined;
  /** Wrong meeting passwords a user may give within windowMs before its joins are refused (429); default 5 in 10 minutes. */
  passwordFailures?: { max: number; windowMs: number } | undefined;
  now?: (() => number) | undefined;
}

/**
 * A meeting password is guessed through join: 5 wrong ones per user in 10 minutes, then 429 until the window ends.
 * Per user, whatever the meeting (guessing many meetings at once gains nothing); per process, as the token endpoint's.
 */
const PASSWORD_FAILURES = { max: 5, windowMs: 10 * 60_000 };
/** Retry-After of a 503 for a node that did not answer: the next request connects again. */
const UNAVAILABLE_RETRY_S = 5;

/** Feed ids below 2^48, like room ids: random, so a participant cannot guess another's (its screen's is the next). */
const newFeedId = (): number => randomInt(1, 2 ** 48 - 2);

/** Moderators: an admin, the meeting's owner, or a participant admitted with the moderator (or owner) role. */
export function mayModerate(actor: ParticipantActor, meeting: MeetingRecord, own: ParticipantRecord | undefined): boolean {
  if (actor.kind === 'admin' || (actor.kind === 'user' && actor.user === meeting.owner)) return true;
  return own !== undefined && own.state === 'admitted' && (own.role === 'moderator' || own.role === 'owner');
}

/** The role a joiner gets: the owner's, a moderator's for an admin token, a participant's for everyone else (guests too). */
export function roleOf(actor: ParticipantActor, meeting: MeetingRecord): ParticipantRole {
  if (actor.kind === 'admin') return 'moderator';
  return actor.kind === 'user' && actor.user === meeting.owner ? 'owner' : 'participant';
}

export class Focus {
  private readonly log: Logger;
  private readonly newId: () => string;
  private readonly newFeedId: () => number;
  private readonly now: () => number;
  private readonly guesses: FailureLimiter;
  /** The breakout timers this process armed, by meeting (see closeExpired for the others'). */
  private readonly breakoutTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly options: FocusOptions) {
    this.log = categoryLogger(options.logger ?? silentLogger(), 'conference');
    this.newId = options.newId ?? newMeetingId;
    this.newFeedId = options.newFeedId ?? newFeedId;
    this.now = options.now ?? Date.now;
    const limits = options.passwordFailures ?? PASSWORD_FAILURES;
    this.guesses = new FailureLimiter(limits.max, limits.windowMs);
  }

  async join(actor: ParticipantActor, meetingId: string, input: JoinInput): Promise<Admission> {
    if (actor.kind === 'guest' && actor.meeting !== meetingId) throw guestElsewhere();
    const meeting = await this.meeting(meetingId);
    this.requireNodes();
    const role = roleOf(actor, meeting);
    if (meeting.passwordHash !== undefined && role === 'participant') {
      const guesser = actor.kind === 'user' ? actor.user : actor.kind === 'guest' ? `guest from ${input.from ?? '?'}` : 'admin';
      const retryAfter = this.guesses.retryAfter(guesser, this.now());
      if (retryAfter !== undefined) throw new MeetingError('MEETING_ERR_RATE_LIMITED', 'too many wrong meeting passwords; try again later', retryAfter);
      if (input.password === undefined) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'this meeting asks for a password');
      if (!(await verifyMeetingPassword(input.password, meeting.passwordHash))) {
        if (this.guesses.fail(guesser, this.now())) this.log.warn({ user: guesser, meeting: meeting.id }, 'meeting password guessing: joins refused for a while');
        throw new MeetingError('MEETING_ERR_FORBIDDEN', 'wrong meeting password');
      }
    }
    const user = actor.kind === 'user' ? actor.user : undefined;
    if (user !== undefined) {
      const current = await this.options.participants.current(meeting.id, user);
      if (current !== undefined) return this.inBreakout(meeting, await this.chatted(meeting, await this.admission(meeting, current, true)));
    }
    if (actor.kind === 'guest') {
      const row = await this.options.participants.get(meeting.id, actor.guest);
      if (row !== undefined) return this.guestAgain(meeting, row);
    }
    if (role === 'participant') await this.refuseWhenLocked(meeting);
    const id = actor.kind === 'guest' ? actor.guest : this.newId();
    if (role === 'participant' && meeting.lobby) {
      const waiting = await this.created(() => this.options.participants.create({ id, meetingId: meeting.id, user, displayName: input.displayName, role, state: 'waiting' }), meeting.id);
      this.log.info({ meeting: meeting.id, participant: id }, 'waiting in the lobby');
      this.changed(meeting.id);
      return { participant: waiting };
    }
    await this.checkRoom(meeting);
    const node = await this.place(meeting);
    const feedId = this.newFeedId();
    const janus = await this.grant(node, meeting, id, feedId);
    let admitted: ParticipantRecord;
    try {
      admitted = await this.created(() => this.options.participants.create({ id, meetingId: meeting.id, user, displayName: input.displayName, role, state: 'admitted', feedId }), meeting.id);
    } catch (err) {
      if (!(err instanceof DuplicateJoin)) await this.revokeQuietly(node, meeting, id, feedId);
      throw err;
    }
    this.log.info({ meeting: meeting.id, participant: id, role }, 'admitted on joining');
    this.changed(meeting.id);
    return this.chatted(meeting, { participant: admitted, janus });
  }

  /** Moderators see everyone (the lobby too); an admitted participant sees who is in; others are refused. */
  async participants(actor: ParticipantActor, meetingId: string): Promise<ParticipantRecord[]> {
    const meeting = await this.meeting(meetingId);
    const own = await this.own(actor, meeting);
    if (mayModerate(actor, meeting, own)) return this.options.participants.list(meeting.id);
    if (own?.state === 'admitted') return this.options.participants.list(meeting.id, ['admitted']);
    throw new MeetingError('MEETING_ERR_FORBIDDEN', 'only the meeting\'s moderators and its admitted participants see who takes part');
  }

  /** One participant: to itself (with its Janus grant while admitted: how a waiting app learns the outcome) or to a moderator. */
  async participant(actor: ParticipantActor, meetingId: string, participantId: string): Promise<Admission> {
    const meeting = await this.meeting(meetingId);
    const p = await this.existing(meeting, participantId);
    if (isSelf(actor, p)) return this.inBreakout(meeting, await this.chatted(meeting, await this.admission(meeting, p, true)));
    if (mayModerate(actor, meeting, await this.own(actor, meeting))) return { participant: p };
    // A participant's id is unguessable: to others it does not exist.
    throw notFound(participantId);
  }

  async admit(actor: ParticipantActor, meetingId: string, participantId: string): Promise<ParticipantRecord> {
    const meeting = await this.moderated(actor, meetingId);
    const p = await this.existing(meeting, participantId);
    if (p.state === 'admitted') return p;
    if (p.state !== 'waiting') throw new MeetingError('MEETING_ERR_CONFLICT', `participant ${p.id} is ${p.state}, not waiting`);
    const node = await this.place(meeting);
    await this.checkRoom(meeting);
    const feedId = this.newFeedId();
    await this.grant(node, meeting, p.id, feedId);
    const moved = await this.options.participants.transition(meeting.id, p.id, 'waiting', 'admitted', feedId);
    if (moved === undefined) {
      // Another moderator (or the participant, leaving) was first: the token just stored must not stay valid.
      await this.revokeQuietly(node, meeting, p.id, feedId);
      return this.settled(meeting, p.id, 'admitted');
    }
    this.log.info({ meeting: meeting.id, participant: p.id }, 'admitted from the lobby');
    this.changed(meeting.id);
    await this.chatted(meeting, { participant: moved });
    return moved;
  }

  async deny(actor: ParticipantActor, meetingId: string, participantId: string): Promise<ParticipantRecord> {
    const meeting = await this.moderated(actor, meetingId);
    const p = await this.existing(meeting, participantId);
    if (p.state === 'denied') return p;
    if (p.state !== 'waiting') throw new MeetingError('MEETING_ERR_CONFLICT', `participant ${p.id} is ${p.state}, not waiting`);
    const moved = await this.options.participants.transition(meeting.id, p.id, 'waiting', 'denied');
    if (moved === undefined) return this.settled(meeting, p.id, 'denied');
    this.log.info({ meeting: meeting.id, participant: p.id }, 'denied');
    this.changed(meeting.id);
    return moved;
  }

  /** The participant itself leaves (or stops waiting); a moderator kicks it. Either way its Janus token stops working. */
  async remove(actor: ParticipantActor, meetingId: string, participantId: string): Promise<ParticipantRecord> {
    const meeting = await this.meeting(meetingId);
    const p = await this.existing(meeting, participantId);
    const self = isSelf(actor, p);
    if (!self && !mayModerate(actor, meeting, await this.own(actor, meeting))) throw notFound(participantId);
    const to = self ? 'left' : 'kicked';
    if (p.state !== 'waiting' && p.state !== 'admitted') return p; // over already: removing it again changes nothing
    if (p.state === 'admitted') {
      await this.revoke(await this.place(meeting), meeting, p.id, p.feedId);
      await this.leaveBreakout(meeting, p);
    }
    const moved = await this.options.participants.transition(meeting.id, p.id, p.state, to);
    if (moved === undefined) return this.settled(meeting, p.id, to);
    this.log.info({ meeting: meeting.id, participant: p.id, from: p.state }, self ? 'left' : 'kicked');
    this.changed(meeting.id);
    return moved;
  }

  /**
   * The meeting is going (deleted, or its owner is): every admitted participant's token is revoked and the room
   * destroyed, before the rows go with the meeting. A meeting nobody is in needs no Janus.
   */
  async end(meetingId: string): Promise<void> {
    const meeting = await this.options.meetings.get(meetingId);
    if (meeting === undefined) return;
    await this.endBreakouts(meeting);
    const admitted = await this.options.participants.list(meeting.id, ['admitted']);
    if (admitted.length === 0) return;
    const node = await this.place(meeting);
    for (const p of admitted) await this.revoke(node, meeting, p.id, p.feedId);
    const { secrets } = this.options;
    await this.onJanus(node, 'destroying the room', async () => {
      await (await node.rooms()).destroy(secrets.roomId(meeting.id), { secret: secrets.roomSecret(meeting.id) }).catch(ignorePlugin(VIDEOROOM_ERROR.NO_SUCH_ROOM));
    });
    // The room is gone: the next admission places the meeting afresh (on the least-loaded node then).
    await this.options.pool.placements.release(meeting.id);
    this.log.info({ meeting: meeting.id, participants: admitted.length }, 'meeting ended: tokens revoked, room destroyed');
  }

  // ---- moderation (issue 19, item 4) and history (item 8) -------------------------------------------------------
  //
  // Mutes go through the videoroom's `moderate` (janus_videoroom.c, 1.1.2): it takes the room, its secret, the
  // publisher's feed id and the mid of one of its m-lines, and Janus refuses a mid the publisher has not published
  // (428 "No such stream"); `listparticipants` names no streams in 1.x. So the participant's app reports its mids
  // (PUT …/participants/{pid}/streams) once its publish is answered, and the focus then applies what moderation
  // decided for it (a mute-all included: how a late joiner is muted). A publisher that does not report is muted as
  // soon as it does; until then it is not (a Janus event handler reporting "published" would close that gap).
  // Blocks: `hard` (a moderator's mute: only a moderator lifts it), `soft` (a self-mute, or a mute-all that lets
  // people unmute themselves), `none`. Janus mutes for both soft and hard: the difference is who may lift it.

  /** Mutes (true) or unmutes (false) a participant's audio and/or video: a moderator, or the participant itself within its block. */
  async mute(actor: ParticipantActor, meetingId: string, participantId: string, change: Partial<Record<MediaKind, boolean>>): Promise<MediaState> {
    const meeting = await this.meeting(meetingId);
    const p = await this.existing(meeting, participantId);
    const self = isSelf(actor, p);
    const moderator = mayModerate(actor, meeting, await this.own(actor, meeting));
    if (!self && !moderator) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'only the meeting\'s moderators mute or unmute others');
    if (p.state !== 'admitted') throw new MeetingError('MEETING_ERR_CONFLICT', `participant ${p.id} is ${p.state}, not admitted`);
    const blocks = await this.blocks(meeting, p.id);
    const next: MediaBlocks = { ...blocks.blocks };
    for (const kind of MEDIA) {
      const mute = change[kind];
      if (mute === undefined) continue;
      if (mute) next[kind] = moderator && !self ? 'hard' : next[kind] === 'none' ? 'soft' : next[kind];
      else if (moderator || next[kind] !== 'hard') next[kind] = 'none';
      else throw new MeetingError('MEETING_ERR_FORBIDDEN', `your ${kind} was muted by a moderator: ask one to unmute you`);
    }
    let media = blocks.row;
    for (const kind of MEDIA) {
      if (next[kind] === blocks.blocks[kind]) continue;
      await this.moderate(meeting, p, media?.[kind === 'audio' ? 'audioMid' : 'videoMid'], next[kind] !== 'none', false);
      media = await this.options.moderation.setBlock(meeting.id, p.id, kind, next[kind], blocks.blocks);
      await this.record(actor, meeting, next[kind] === 'none' ? 'unmuted' : 'muted', p.id, kind);
      this.log.info({ meeting: meeting.id, participant: p.id, media: kind, block: next[kind] }, 'moderated');
    }
    return mediaState(p.id, next, media);
  }

  /** The participant's app reports the mids of its published audio and video: the focus applies the blocks decided for it. */
  async streams(actor: ParticipantActor, meetingId: string, participantId: string, mids: { audioMid?: string | undefined; videoMid?: string | undefined }): Promise<MediaState> {
    const meeting = await this.meeting(meetingId);
    const p = await this.existing(meeting, participantId);
    if (!isSelf(actor, p)) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'a participant reports its own streams only');
    if (p.state !== 'admitted') throw new MeetingError('MEETING_ERR_CONFLICT', `participant ${p.id} is ${p.state}, not admitted`);
    const { blocks } = await this.blocks(meeting, p.id);
    // Every reported mid goes to Janus, muted or not: Janus checks it (a mid the publisher has not published is 409
    // and nothing is stored), so an app cannot escape a later mute by reporting a mid that is not its stream's.
    await this.moderate(meeting, p, mids.audioMid, blocks.audio !== 'none', true);
    await this.moderate(meeting, p, mids.videoMid, blocks.video !== 'none', true);
    const media = await this.options.moderation.setStreams(meeting.id, p.id, { audioMid: mids.audioMid, videoMid: mids.videoMid }, blocks).catch(invalid);
    return mediaState(p.id, blocks, media);
  }

  /**
   * Mutes one medium of everyone, now and for those who join later: `allowUnmute` lets each unmute itself (soft),
   * else only a moderator unmutes (hard: "ask to unmute"). Lifting it (mute false) unmutes nobody: a microphone is
   * not turned on for its owner; everyone may unmute itself again (hard blocks become soft).
   */
  async muteAll(actor: MeetingActor, meetingId: string, media: MediaKind, mute: boolean, allowUnmute: boolean): Promise<MeetingModeration> {
    const meeting = await this.moderatedTo(actor, meetingId, 'mute everyone');
    const meetingBlock: MediaBlock = mute ? (allowUnmute ? 'soft' : 'hard') : 'none';
    const state = await this.options.moderation.get(meeting.id);
    const rows = new Map((await this.options.moderation.mediaOf(meeting.id)).map((m) => [m.participantId, m]));
    for (const p of await this.options.participants.list(meeting.id, ['admitted'])) {
      const row = rows.get(p.id);
      const was = row?.[media] ?? state[media];
      const now: MediaBlock = mute ? (was === 'hard' ? 'hard' : meetingBlock) : (was === 'none' ? 'none' : 'soft');
      // Unchanged, but read from the meeting's mute-all (no row): pinned, since that mute-all is changing.
      if (now === was && row !== undefined) continue;
      if ((now !== 'none') !== (was !== 'none')) await this.moderate(meeting, p, row?.[media === 'audio' ? 'audioMid' : 'videoMid'], now !== 'none', false);
      await this.options.moderation.setBlock(meeting.id, p.id, media, now, { audio: row?.audio ?? state.audio, video: row?.video ?? state.video });
    }
    const after = await this.options.moderation.setMuteAll(meeting.id, media, meetingBlock);
    await this.record(actor, meeting, mute ? 'mute-all' : 'unmute-all', undefined, mute && !allowUnmute ? `${media} askToUnmute` : media);
    this.log.info({ meeting: meeting.id, media, block: meetingBlock }, 'mute-all');
    return after;
  }

  /** Locks the meeting (no new participants but the owner and admins; those waiting may still be admitted) or unlocks it. */
  async lock(actor: MeetingActor, meetingId: string, locked: boolean): Promise<MeetingModeration> {
    const meeting = await this.moderatedTo(actor, meetingId, locked ? 'lock the meeting' : 'unlock the meeting');
    const state = await this.options.moderation.setLocked(meeting.id, locked);
    await this.record(actor, meeting, locked ? 'locked' : 'unlocked');
    return state;
  }

  /** The meeting's lock and mute-all: to its moderators and admitted participants (an app shows "muted by the moderator"). */
  async moderation(actor: MeetingActor, meetingId: string): Promise<MeetingModeration> {
    const meeting = await this.meeting(meetingId);
    const own = await this.own(actor, meeting);
    if (!mayModerate(actor, meeting, own) && own?.state !== 'admitted') throw new MeetingError('MEETING_ERR_FORBIDDEN', 'only the meeting\'s moderators and admitted participants see its moderation');
    return this.options.moderation.get(meeting.id);
  }

  /** Ends the meeting for everyone: tokens revoked and the room destroyed (end()), every row left, moderation reset. */
  async endForAll(actor: MeetingActor, meetingId: string): Promise<number> {
    const meeting = await this.moderatedTo(actor, meetingId, 'end the meeting');
    await this.end(meeting.id);
    let ended = 0;
    for (const p of await this.options.participants.list(meeting.id, ['waiting', 'admitted'])) {
      if ((await this.options.participants.transition(meeting.id, p.id, p.state, 'left')) !== undefined) ended++;
    }
    await this.options.moderation.reset(meeting.id);
    await this.record(actor, meeting, 'ended', undefined, `${ended} participants`);
    this.log.info({ meeting: meeting.id, participants: ended }, 'meeting ended for all by a moderator');
    this.changed(meeting.id);
    return ended;
  }

  /** Makes a participant a moderator, or takes the role back; the owner's role does not change. */
  async setRole(actor: MeetingActor, meetingId: string, participantId: string, role: 'moderator' | 'participant'): Promise<ParticipantRecord> {
    const meeting = await this.moderatedTo(actor, meetingId, 'change roles');
    const p = await this.existing(meeting, participantId);
    if (p.role === 'owner') throw new MeetingError('MEETING_ERR_CONFLICT', 'the owner\'s role does not change');
    if (p.role === role) return p;
    const changed = await this.options.participants.setRole(meeting.id, p.id, role);
    if (changed === undefined) throw new MeetingError('MEETING_ERR_CONFLICT', `participant ${p.id} is ${p.state}: its role no longer changes`);
    await this.record(actor, meeting, 'role', p.id, role);
    this.log.info({ meeting: meeting.id, participant: p.id, role }, 'role changed');
    this.changed(meeting.id);
    return changed;
  }

  /**
   * The meeting's history, oldest first: the participant rows' times (joined, admitted, denied, left, kicked), a
   * `started` before each admission into an empty room, and the logged moderation actions and ends. Moderators only.
   * The cursor is the position (time, rank, key) of the last entry given: stable while entries are added later.
   */
  async history(actor: MeetingActor, meetingId: string, page: { after?: string | undefined; limit: number }): Promise<HistoryPage> {
    const meeting = await this.moderatedTo(actor, meetingId, 'read the history');
    const after = page.after === undefined ? undefined : parseCursor(page.after);
    const keyed: Array<{ at: number; rank: number; key: string; entry: HistoryEntry }> = [];
    for (const p of await this.options.participants.list(meeting.id)) {
      const who = { participantId: p.id, user: p.user, displayName: p.displayName };
      keyed.push({ at: p.askedAt, rank: 0, key: `${p.id}:0`, entry: { at: p.askedAt, kind: 'joined', ...who } });
      if (p.decidedAt !== undefined) {
        const kind = p.state === 'denied' ? 'denied' : 'admitted';
        keyed.push({ at: p.decidedAt, rank: 2, key: `${p.id}:2`, entry: { at: p.decidedAt, kind, ...who } });
      }
      if (p.leftAt !== undefined) keyed.push({ at: p.leftAt, rank: 4, key: `${p.id}:4`, entry: { at: p.leftAt, kind: p.state === 'kicked' ? 'kicked' : 'left', ...who } });
    }
    for (const e of await this.options.moderation.events(meeting.id)) {
      keyed.push({ at: e.at, rank: 3, key: String(e.id).padStart(16, '0'), entry: { at: e.at, kind: e.kind, actor: e.actor, participantId: e.participantId, detail: e.detail } });
    }
    keyed.sort(compareKeyed);
    // `started`: an admission into a room nobody was in.
    const inRoom = new Set<string>();
    const all: typeof keyed = [];
    for (const k of keyed) {
      const pid = k.entry.participantId;
      if (k.entry.kind === 'admitted' && pid !== undefined) {
        if (inRoom.size === 0) all.push({ at: k.at, rank: 1, key: `${pid}:1`, entry: { at: k.at, kind: 'started' } });
        inRoom.add(pid);
      }
      // A row that left after its admission leaves the room; one that never was admitted was never in it.
      if ((k.entry.kind === 'left' || k.entry.kind === 'kicked') && pid !== undefined) inRoom.delete(pid);
      if (k.entry.kind === 'ended') inRoom.clear();
      all.push(k);
    }
    const rest = after === undefined ? all : all.filter((k) => compareKeyed(k, after) > 0);
    const taken = rest.slice(0, page.limit);
    const last = taken[taken.length - 1];
    return { entries: taken.map((k) => k.entry), next: rest.length > page.limit && last !== undefined ? cursorOf(last) : undefined };
  }

  // ---- breakout rooms (issue 19, item 5) -------------------------------------------------------------------------
  //
  // A set of N rooms per meeting, each its own videoroom (FocusSecrets.breakoutRoomId: meetingId#n), created on Janus
  // when its first participant is moved in and destroyed when the set closes. A participant is in one room at a time:
  // its token (the same one) is on that room's `allowed` list only, so "media follows" is the app re-joining the room
  // the answer (or its poll) names, with the token it has. A move: on the target's list first, then the assignment in
  // SQL, then off the previous room's list and its feed kicked from there (the app sees `kicked` and re-joins).
  // The timer (durationS) is a timer of the process that opened the rooms; when that process is gone, the next request
  // about the meeting's rooms (a list, a move, a participant's poll) finds the end time passed and closes them.

  /** Opens N breakout rooms (moderators); everyone stays in the main room until moved, or until it chooses (allowChoose). */
  async openBreakouts(actor: ParticipantActor, meetingId: string, input: BreakoutInput): Promise<BreakoutView> {
    const meeting = await this.moderatedTo(actor, meetingId, 'open breakout rooms');
    const repo = this.breakoutStore();
    this.requireNodes();
    await this.closeExpired(meeting);
    if ((input.names?.length ?? 0) > input.rooms) throw new MeetingError('MEETING_ERR_INVALID', `names: ${input.names!.length} names for ${input.rooms} rooms`);
    const names = Array.from({ length: input.rooms }, (_, i) => input.names?.[i] ?? `Room ${i + 1}`);
    const endsAt = input.durationS === undefined ? undefined : this.now() + input.durationS * 1000;
    let set: BreakoutSet;
    try {
      set = await repo.open({ meetingId: meeting.id, names, allowChoose: input.allowChoose, endsAt });
    } catch (err) {
      if (err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE') throw new MeetingError('MEETING_ERR_CONFLICT', 'breakout rooms are open: close them first');
      return invalid(err);
    }
    if (endsAt !== undefined) this.armBreakoutTimer(meeting.id, endsAt);
    await this.record(actor, meeting, 'breakout-open', undefined, `${input.rooms} rooms${input.allowChoose ? ' allowChoose' : ''}${input.durationS === undefined ? '' : ` ${input.durationS}s`}`);
    this.log.info({ meeting: meeting.id, rooms: input.rooms, endsAt }, 'breakout rooms opened');
    return this.breakoutView(meeting, set);
  }

  /** The meeting's breakout rooms and who is in each: to its moderators and admitted participants. */
  async breakouts(actor: ParticipantActor, meetingId: string): Promise<BreakoutView> {
    const meeting = await this.meeting(meetingId);
    const own = await this.own(actor, meeting);
    if (!mayModerate(actor, meeting, own) && own?.state !== 'admitted') throw new MeetingError('MEETING_ERR_FORBIDDEN', 'only the meeting\'s moderators and admitted participants see its breakout rooms');
    await this.closeExpired(meeting);
    return this.breakoutView(meeting, await this.breakoutStore().get(meeting.id));
  }

  /**
   * Puts a participant in breakout room `n` (0: back to the main room): a moderator moves anyone admitted; a participant
   * moves itself when the rooms were opened with allowChoose.
   */
  async moveToBreakout(actor: ParticipantActor, meetingId: string, participantId: string, n: number): Promise<BreakoutMove> {
    const meeting = await this.meeting(meetingId);
    const p = await this.existing(meeting, participantId);
    const self = isSelf(actor, p);
    const moderator = mayModerate(actor, meeting, await this.own(actor, meeting));
    if (!self && !moderator) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'only the meeting\'s moderators move others between rooms');
    const repo = this.breakoutStore();
    await this.closeExpired(meeting);
    const set = await repo.get(meeting.id);
    if (set?.state !== 'open') throw new MeetingError('MEETING_ERR_CONFLICT', 'the meeting has no breakout rooms open');
    if (!moderator && !set.allowChoose) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'the moderators assign the breakout rooms: participants do not choose');
    if (n > set.rooms.length) throw new MeetingError('MEETING_ERR_NOT_FOUND', `no breakout room ${n} (the meeting has ${set.rooms.length})`);
    if (p.state !== 'admitted') throw new MeetingError('MEETING_ERR_CONFLICT', `participant ${p.id} is ${p.state}, not admitted`);
    const move: BreakoutMove = { participantId: p.id, breakout: n, room: this.roomAt(meeting, n).room };
    if ((await repo.roomOf(meeting.id, p.id)) === n) return move;
    const node = await this.place(meeting);
    const token = this.options.secrets.participantToken(meeting.id, p.id);
    await this.allowIn(node, meeting, n, token);
    let was: number;
    try {
      was = await repo.assign(meeting.id, p.id, n);
    } catch (err) {
      await this.disallowIn(node, meeting, n, token, undefined).catch(() => undefined);
      if (err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND') throw new MeetingError('MEETING_ERR_CONFLICT', `the breakout rooms changed meanwhile: ${err.message}`);
      throw err;
    }
    if (was !== n) {
      await this.disallowIn(node, meeting, was, token, p.feedId);
      // A close (or another move) that ran meanwhile put it elsewhere, possibly the room just left: its list must say so again.
      const now = await repo.roomOf(meeting.id, p.id);
      if (now !== n) await this.allowIn(node, meeting, now, token);
    }
    await this.record(actor, meeting, 'breakout-move', p.id, n === 0 ? 'main room' : `room ${n}`);
    this.log.info({ meeting: meeting.id, participant: p.id, from: was, to: n }, 'moved between rooms');
    this.changed(meeting.id);
    return move;
  }

  /** Closes the breakout rooms (moderators): everyone back in the main room, the rooms destroyed. How many came back. */
  async closeBreakouts(actor: ParticipantActor, meetingId: string): Promise<number> {
    const meeting = await this.moderatedTo(actor, meetingId, 'close the breakout rooms');
    this.requireNodes();
    const moved = await this.closeSet(meeting, actor, 'closed');
    if (moved === undefined) throw new MeetingError('MEETING_ERR_CONFLICT', 'the meeting has no breakout rooms open');
    return moved;
  }

  /** The breakout timers of this process stop (the server is stopping; the end times stay in SQL). */
  stop(): void {
    for (const timer of this.breakoutTimers.values()) clearTimeout(timer);
    this.breakoutTimers.clear();
  }

  private breakoutStore(): BreakoutRepository {
    const repo = this.options.breakouts;
    if (repo === undefined) throw new MeetingError('MEETING_ERR_UNAVAILABLE', 'this server keeps no breakout rooms');
    return repo;
  }

  private armBreakoutTimer(meetingId: string, endsAt: number): void {
    clearTimeout(this.breakoutTimers.get(meetingId));
    const timer = setTimeout(() => {
      this.breakoutTimers.delete(meetingId);
      void this.options.meetings.get(meetingId)
        .then((meeting) => (meeting === undefined ? undefined : this.closeExpired(meeting)))
        .catch((err: unknown) => this.log.warn({ meeting: meetingId, err: (err as Error).message }, 'the breakout rooms\' timer could not close them (the next request will)'));
    }, Math.max(0, endsAt - this.now()));
    timer.unref();
    this.breakoutTimers.set(meetingId, timer);
  }

  /** An open set whose end time has passed closes now (the timer of a process that is gone, or one that is late). */
  private async closeExpired(meeting: MeetingRecord): Promise<void> {
    const repo = this.options.breakouts;
    if (repo === undefined) return;
    const set = await repo.get(meeting.id);
    if (set?.state !== 'open' || set.endsAt === undefined || set.endsAt > this.now()) return;
    await this.closeSet(meeting, undefined, 'timer');
  }

  /**
   * Everyone back in the main room and the breakout rooms destroyed; undefined when no set was open (another closer
   * was first). A participant Janus fails to move back is logged and the others still move: its poll names the main room.
   */
  private async closeSet(meeting: MeetingRecord, actor: ParticipantActor | undefined, why: 'closed' | 'timer'): Promise<number | undefined> {
    const repo = this.breakoutStore();
    const set = await repo.get(meeting.id);
    const assigned = await repo.close(meeting.id);
    if (assigned === undefined) return undefined;
    clearTimeout(this.breakoutTimers.get(meeting.id));
    this.breakoutTimers.delete(meeting.id);
    const node = await this.place(meeting);
    let moved = 0;
    for (const a of assigned) {
      const p = await this.options.participants.get(meeting.id, a.participantId);
      if (p?.state !== 'admitted') continue;
      const token = this.options.secrets.participantToken(meeting.id, p.id);
      try {
        await this.allowIn(node, meeting, 0, token);
        moved++;
      } catch (err) {
        this.log.warn({ meeting: meeting.id, participant: p.id, err: (err as Error).message }, 'a participant could not be let back into the main room');
      }
    }
    // Everyone is let back already: rooms Janus failed to destroy are logged, not a reason to keep the set open.
    await this.destroyBreakouts(node, meeting, set?.rooms.length ?? 0).catch(() => undefined);
    await this.options.moderation.record({ meetingId: meeting.id, kind: 'breakout-close', actor: actor?.kind === 'user' ? actor.user : undefined, detail: `${moved} back${why === 'timer' ? ' timer' : ''}` });
    this.log.info({ meeting: meeting.id, back: moved, why }, 'breakout rooms closed');
    this.changed(meeting.id);
    return moved;
  }

  /** The meeting ends: its breakout rooms go without letting anyone back into the main room (end() revokes every token). */
  private async endBreakouts(meeting: MeetingRecord): Promise<void> {
    const repo = this.options.breakouts;
    if (repo === undefined) return;
    const set = await repo.get(meeting.id);
    if (set?.state !== 'open') return;
    await repo.close(meeting.id);
    clearTimeout(this.breakoutTimers.get(meeting.id));
    this.breakoutTimers.delete(meeting.id);
    await this.destroyBreakouts(await this.place(meeting), meeting, set.rooms.length);
  }

  private async destroyBreakouts(node: JanusNode, meeting: MeetingRecord, count: number): Promise<void> {
    await this.onJanus(node, 'destroying the breakout rooms', async () => {
      const rooms = await node.rooms();
      for (let n = 1; n <= count; n++) {
        const { room, secret } = this.roomAt(meeting, n);
        // A room nobody was moved into was never created.
        await rooms.destroy(room, { secret }).catch(ignorePlugin(VIDEOROOM_ERROR.NO_SUCH_ROOM));
      }
    });
  }

  /** A participant leaving (or kicked) while in a breakout room: its feed goes from there too. */
  private async leaveBreakout(meeting: MeetingRecord, p: ParticipantRecord): Promise<void> {
    const repo = this.options.breakouts;
    if (repo === undefined) return;
    const n = await repo.roomOf(meeting.id, p.id);
    if (n === 0) return;
    await this.disallowIn(await this.place(meeting), meeting, n, this.options.secrets.participantToken(meeting.id, p.id), p.feedId);
  }

  /** The admission's Janus room: its breakout room's while it is in one. */
  private async inBreakout(meeting: MeetingRecord, a: Admission): Promise<Admission> {
    const repo = this.options.breakouts;
    if (repo === undefined || a.janus === undefined) return a;
    await this.closeExpired(meeting);
    const n = await repo.roomOf(meeting.id, a.participant.id);
    return n === 0 ? a : { ...a, breakout: n, janus: { ...a.janus, room: this.roomAt(meeting, n).room } };
  }

  private breakoutView(meeting: MeetingRecord, set: BreakoutSet | undefined): BreakoutView {
    if (set?.state !== 'open') return { open: false, allowChoose: false, rooms: [] };
    return {
      open: true, allowChoose: set.allowChoose, endsAt: set.endsAt,
      rooms: set.rooms.map((r) => ({ number: r.number, name: r.name, room: this.roomAt(meeting, r.number).room, participants: set.assignments.filter((a) => a.room === r.number).map((a) => a.participantId) })),
    };
  }

  /** Room n of the meeting: 0 is the main room (its derivation unchanged), 1 … the breakout rooms. */
  private roomAt(meeting: MeetingRecord, n: number): { room: number; secret: string } {
    const { secrets } = this.options;
    return n === 0 ? { room: secrets.roomId(meeting.id), secret: secrets.roomSecret(meeting.id) } : { room: secrets.breakoutRoomId(meeting.id, n), secret: secrets.breakoutRoomSecret(meeting.id, n) };
  }

  /** Puts the token on room n's `allowed` list, creating the room on first use (`allowed` at creation: never a room without the check). */
  private async allowIn(node: JanusNode, meeting: MeetingRecord, n: number, token: string): Promise<void> {
    const { room, secret } = this.roomAt(meeting, n);
    await this.onJanus(node, n === 0 ? 'letting a participant into the room' : 'letting a participant into a breakout room', async () => {
      const rooms = await node.rooms();
      try {
        await rooms.allowed({ room, action: 'add', allowed: [token], secret });
      } catch (err) {
        if (!isPluginError(err, VIDEOROOM_ERROR.NO_SUCH_ROOM)) throw err;
        try {
          const description = n === 0 ? `meeting ${meeting.id}` : `meeting ${meeting.id} breakout ${n}`;
          await rooms.create({ room, secret, description, isPrivate: true, publishers: meeting.maxParticipants, audiolevelEvent: true, allowed: [token] });
          this.log.info({ meeting: meeting.id, room, breakout: n, node: node.url }, 'room created');
        } catch (createErr) {
          // Another worker created it meanwhile: add to its list.
          if (!isPluginError(createErr, VIDEOROOM_ERROR.ROOM_EXISTS)) throw createErr;
          await rooms.allowed({ room, action: 'add', allowed: [token], secret });
        }
      }
    });
  }

  // ---- recording (issue 19, item 7): the focus says who may and drives Janus; meeting-recorder.ts does the rest ----

  /** The meeting, to one of its moderators: 404 without it, 403 to anyone else (`what` they may not do). */
  async moderatedBy(actor: MeetingActor, meetingId: string, what: string): Promise<MeetingRecord> {
    return this.moderatedTo(actor, meetingId, what);
  }

  /** Whether the actor moderates the meeting now; false for a meeting that does not exist. */
  async moderates(actor: ParticipantActor, meetingId: string): Promise<boolean> {
    const meeting = await this.options.meetings.get(meetingId);
    return meeting !== undefined && mayModerate(actor, meeting, await this.own(actor, meeting));
  }

  /** The Janus node that holds the meeting's room (503 when meetings.janus is empty). */
  async nodeOf(meeting: MeetingRecord): Promise<JanusNode> {
    return this.place(meeting);
  }

  /**
   * Janus records the meeting's room (every publisher's streams into .mjr files under `recDir`, set first with `edit`)
   * or stops. Starting needs the room (409 when nobody was admitted yet); stopping a room Janus no longer has is done.
   */
  async recordRoom(meeting: MeetingRecord, record: boolean, recDir?: string): Promise<void> {
    const node = await this.place(meeting);
    const { secrets } = this.options;
    const room = secrets.roomId(meeting.id);
    const secret = secrets.roomSecret(meeting.id);
    await this.onJanus(node, record ? 'starting a recording' : 'stopping a recording', async () => {
      const rooms = await node.rooms();
      try {
        if (recDir !== undefined) await rooms.edit(room, { secret, recDir });
        await rooms.enableRecording({ room, record, secret });
      } catch (err) {
        if (!isPluginError(err, VIDEOROOM_ERROR.NO_SUCH_ROOM)) throw err;
        if (record) throw new MeetingError('MEETING_ERR_CONFLICT', 'nobody is in the meeting yet: recording starts once a participant was admitted');
      }
    });
  }

  /** Takes the token off room n's list and its feed (when given) out of that room; a room or feed Janus has not is no error. */
  private async disallowIn(node: JanusNode, meeting: MeetingRecord, n: number, token: string, feedId: number | undefined): Promise<void> {
    const { room, secret } = this.roomAt(meeting, n);
    await this.onJanus(node, 'taking a participant out of a room', async () => {
      const rooms = await node.rooms();
      await rooms.allowed({ room, action: 'remove', allowed: [token], secret }).catch(ignorePlugin(VIDEOROOM_ERROR.NO_SUCH_ROOM));
      if (feedId !== undefined) {
        for (const id of feedsOf(feedId)) await rooms.kick({ room, id, secret }).catch(ignorePlugin(VIDEOROOM_ERROR.NO_SUCH_ROOM, VIDEOROOM_ERROR.NO_SUCH_FEED));
      }
    });
  }

  private async moderatedTo(actor: ParticipantActor, id: string, what: string): Promise<MeetingRecord> {
    const meeting = await this.meeting(id);
    if (!mayModerate(actor, meeting, await this.own(actor, meeting))) throw new MeetingError('MEETING_ERR_FORBIDDEN', `only the meeting's moderators ${what}`);
    return meeting;
  }

  private async refuseWhenLocked(meeting: MeetingRecord): Promise<void> {
    if ((await this.options.moderation.get(meeting.id)).locked) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'the meeting is locked: a moderator must unlock it before anyone new joins');
  }

  /** The participant's media row, if any, and its blocks (the meeting's mute-all for a participant without a row). */
  private async blocks(meeting: MeetingRecord, participantId: string): Promise<{ row: ParticipantMedia | undefined; blocks: MediaBlocks }> {
    const row = await this.options.moderation.media(meeting.id, participantId);
    if (row !== undefined) return { row, blocks: { audio: row.audio, video: row.video } };
    const state = await this.options.moderation.get(meeting.id);
    return { row, blocks: { audio: state.audio, video: state.video } };
  }

  /**
   * Janus's `moderate` of one stream. Without a mid (nothing reported yet) there is nothing to do now: the block is
   * applied when the app reports. A stream Janus no longer has (the publisher left Janus) is not an error, unless
   * `strict` (a reported mid that Janus does not know: 409).
   */
  private async moderate(meeting: MeetingRecord, p: ParticipantRecord, mid: string | undefined, mute: boolean, strict: boolean): Promise<void> {
    if (mid === undefined || p.feedId === undefined) return;
    const node = await this.place(meeting);
    const feedId = p.feedId;
    // The room the participant publishes in: a breakout room's while it is in one (its app reports its mids again there).
    const { room, secret } = this.roomAt(meeting, this.options.breakouts === undefined ? 0 : await this.options.breakouts.roomOf(meeting.id, p.id));
    try {
      await this.onJanus(node, 'moderating a stream', async () => {
        try {
          await (await node.rooms()).moderate({ room, id: feedId, mid, mute, secret });
        } catch (err) {
          if (isPluginError(err, VIDEOROOM_ERROR.NO_SUCH_ROOM, VIDEOROOM_ERROR.NO_SUCH_FEED)) throw new MeetingError('MEETING_ERR_CONFLICT', `Janus has no stream ${mid} published by participant ${p.id}`);
          throw err;
        }
      });
    } catch (err) {
      if (!strict && err instanceof MeetingError && err.code === 'MEETING_ERR_CONFLICT') return;
      throw err;
    }
  }

  private async record(actor: ParticipantActor, meeting: MeetingRecord, kind: MeetingEvent['kind'], participantId?: string, detail?: string): Promise<void> {
    await this.options.moderation.record({ meetingId: meeting.id, kind, actor: actor.kind === 'user' ? actor.user : undefined, participantId, detail });
  }

  // ---- the meeting and its participants ------------------------------------------------------------------------

  /** The meeting's chat, newest first, to a participant admitted right now (a guest: from its admission on). */
  async chatMessages(actor: ParticipantActor, meetingId: string, options: { before?: string | undefined; limit: number }): Promise<{ messages: MeetingChatMessage[]; more: boolean; names: Map<string, string> }> {
    const { meeting, chat, group, chatter } = await this.chatting(actor, meetingId);
    const page = await chat.read(group, chatter, options);
    return { ...page, names: await this.guestNames(meeting) };
  }

  /** Posts a text to the meeting's chat as a participant admitted right now. */
  async chatPost(actor: ParticipantActor, meetingId: string, text: string): Promise<{ message: MeetingChatMessage; names: Map<string, string> }> {
    const { meeting, chat, group, chatter } = await this.chatting(actor, meetingId);
    const message = await chat.post(group, chatter, text);
    return { message, names: await this.guestNames(meeting) };
  }

  /** The meeting, its chat and group, and the actor as a chatter: only a user or guest admitted now (waiting, denied, gone: 403). */
  private async chatting(actor: ParticipantActor, meetingId: string): Promise<{ meeting: MeetingRecord; chat: MeetingChat; group: string; chatter: MeetingChatter }> {
    if (actor.kind === 'guest' && actor.meeting !== meetingId) throw guestElsewhere();
    const meeting = await this.meeting(meetingId);
    const { chat } = this.options;
    if (chat === undefined) throw new MeetingError('MEETING_ERR_UNAVAILABLE', 'meetings have no chat here (messaging.enabled is off)');
    const own = await this.own(actor, meeting);
    if (own?.state !== 'admitted') throw new MeetingError('MEETING_ERR_FORBIDDEN', 'only the meeting\'s admitted participants read and post in its chat');
    const group = await chat.open(meeting);
    if (actor.kind === 'user') {
      // A user is a member of the group from its admission on (idempotent: mends a failed first attempt).
      await chat.enter(group, actor.user);
      return { meeting, chat, group, chatter: { kind: 'user', user: actor.user } };
    }
    return { meeting, chat, group, chatter: { kind: 'guest', guest: own.id, since: own.decidedAt ?? own.askedAt } };
  }

  /** The display names of the meeting's guests, by `guest:<id>` sender. */
  private async guestNames(meeting: MeetingRecord): Promise<Map<string, string>> {
    const rows = await this.options.participants.list(meeting.id);
    return new Map(rows.filter((p) => p.user === undefined).map((p) => [`guest:${p.id}`, p.displayName]));
  }

  private async meeting(id: string): Promise<MeetingRecord> {
    const m = await this.options.meetings.get(id);
    if (m === undefined) throw new MeetingError('MEETING_ERR_NOT_FOUND', `no meeting ${id}`);
    return m;
  }

  private async moderated(actor: ParticipantActor, id: string): Promise<MeetingRecord> {
    const meeting = await this.meeting(id);
    if (!mayModerate(actor, meeting, await this.own(actor, meeting))) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'only the meeting\'s moderators admit, deny or remove participants');
    return meeting;
  }

  private async existing(meeting: MeetingRecord, id: string): Promise<ParticipantRecord> {
    const p = await this.options.participants.get(meeting.id, id);
    if (p === undefined) throw notFound(id);
    return p;
  }

  /** The actor's own current row in the meeting (a user's or a guest's; an admin token has none). */
  private async own(actor: ParticipantActor, meeting: MeetingRecord): Promise<ParticipantRecord | undefined> {
    if (actor.kind === 'user') return this.options.participants.current(meeting.id, actor.user);
    if (actor.kind !== 'guest' || actor.meeting !== meeting.id) return undefined;
    const row = await this.options.participants.get(meeting.id, actor.guest);
    return row !== undefined && (row.state === 'waiting' || row.state === 'admitted') ? row : undefined;
  }

  /**
   * An admitted user's answer with the meeting's group, after making it a member (idempotent: a poll mends what a
   * failed attempt left). Others' answers as they are.
   */
  private async chatted(meeting: MeetingRecord, a: Admission): Promise<Admission> {
    const { chat } = this.options;
    const user = a.participant.user;
    if (chat === undefined || user === undefined || a.participant.state !== 'admitted') return a;
    try {
      const conversation = await chat.open(meeting);
      await chat.enter(conversation, user);
      return { ...a, conversation };
    } catch (err) {
      this.log.warn({ meeting: meeting.id, participant: a.participant.id, err: (err as Error).message }, 'the meeting\'s chat could not take an admitted participant');
      return a;
    }
  }

  /** A guest joining again with the same token: its row while it waits or is in; once that is over, a new token. */
  private async guestAgain(meeting: MeetingRecord, row: ParticipantRecord): Promise<Admission> {
    if (row.state === 'waiting' || row.state === 'admitted') return this.admission(meeting, row, true);
    throw new MeetingError('MEETING_ERR_CONFLICT', `guest ${row.id} is ${row.state}: a new guest token asks to join again`);
  }

  /** The row after a race was lost: what the winner made of it, when that is what this request asked for. */
  private async settled(meeting: MeetingRecord, id: string, wanted: ParticipantRecord['state']): Promise<ParticipantRecord> {
    const now = await this.existing(meeting, id);
    if (now.state === wanted) return now;
    throw new MeetingError('MEETING_ERR_CONFLICT', `participant ${id} is ${now.state} now`);
  }

  private async checkRoom(meeting: MeetingRecord): Promise<void> {
    // Counted across workers in SQL; two admissions at the same moment may pass one over (the room's `publishers` cap holds).
    if ((await this.options.participants.count(meeting.id, 'admitted')) >= meeting.maxParticipants) {
      throw new MeetingError('MEETING_ERR_CONFLICT', `the meeting is full (${meeting.maxParticipants} participants)`);
    }
  }

  private async admission(meeting: MeetingRecord, p: ParticipantRecord, self: boolean): Promise<Admission> {
    if (!self || p.state !== 'admitted' || p.feedId === undefined) return { participant: p };
    const node = await this.place(meeting);
    const { secrets } = this.options;
    return { participant: p, janus: { url: node.url, token: secrets.participantToken(meeting.id, p.id), room: secrets.roomId(meeting.id), feedId: p.feedId, screenFeedId: screenFeedOf(p.feedId) } };
  }

  private async created(create: () => Promise<ParticipantRecord>, meetingId: string): Promise<ParticipantRecord> {
    try {
      return await create();
    } catch (err) {
      if (err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND') throw new MeetingError('MEETING_ERR_NOT_FOUND', `no meeting ${meetingId}`);
      // A guest's two joins at once: the row is the other request's (and so is the token, derived from its id).
      if (err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE') throw new DuplicateJoin();
      if (err instanceof TypeError) throw new MeetingError('MEETING_ERR_INVALID', err.message);
      throw err;
    }
  }

  // ---- Janus ---------------------------------------------------------------------------------------------------

  /** 503 when meetings.janus is empty: nothing about a room can be done. */
  private requireNodes(): void {
    if (this.options.pool.size === 0) throw new MeetingError('MEETING_ERR_UNAVAILABLE', 'meetings need a Janus node (meetings.janus)');
  }

  /**
   * The node that holds the meeting's room (conference/nodes.ts): the one its placement row names while that node is
   * up; a meeting not placed yet goes to the least-loaded node (the first worker's choice wins); a meeting on a node
   * that is down (or no longer configured) moves (relocate). Every request about a room asks here, so a move made by
   * another worker or softswitch node is followed at once.
   */
  private async place(meeting: MeetingRecord): Promise<JanusNode> {
    this.requireNodes();
    const { pool } = this.options;
    const url = await pool.placements.nodeOf(meeting.id);
    if (url === undefined) {
      const chosen = await pool.choose();
      const placed = await pool.placements.claim(meeting.id, chosen.url);
      const node = pool.byUrl(placed);
      if (node !== undefined && pool.isUp(node)) return node;
      return this.relocate(meeting, placed);
    }
    const node = pool.byUrl(url);
    if (node !== undefined && pool.isUp(node)) return node;
    return this.relocate(meeting, url);
  }

  /**
   * Moves the meeting's rooms off a node that is down: Janus first — every admitted participant's token stored on the
   * new node and put on the `allowed` list of the room it is in (the main room or its breakout room, created there
   * with the same derived id and secret) — then the placement row, by compare-and-set: when another worker moved it
   * first, its choice holds and what was made here is taken down again. The participants are told (signals: their
   * event streams say `reconnect` with the new grant) and join the new node with the token and feed id they have;
   * their apps report their mids again there, which re-applies their mutes. A recording in progress stops with the node.
   */
  private async relocate(meeting: MeetingRecord, from: string): Promise<JanusNode> {
    const { pool, secrets } = this.options;
    const to = await pool.choose(from);
    const admitted = await this.options.participants.list(meeting.id, ['admitted']);
    const rooms = new Set<number>([0]);
    for (const p of admitted) {
      const token = secrets.participantToken(meeting.id, p.id);
      const n = this.options.breakouts === undefined ? 0 : await this.options.breakouts.roomOf(meeting.id, p.id);
      rooms.add(n);
      await this.onJanus(to, 'storing a participant token', async () => (await to.admin()).addToken(token, [VIDEOROOM_PLUGIN], { timeoutMs: to.timeoutMs }));
      await this.allowIn(to, meeting, n, token);
    }
    if (!(await pool.placements.move(meeting.id, from, to.url))) {
      const now = await pool.placements.nodeOf(meeting.id);
      const winner = now === undefined ? undefined : pool.byUrl(now);
      if (winner !== to) await this.takeDown(to, meeting, admitted, rooms);
      if (now === undefined) return this.place(meeting); // ended meanwhile: placed afresh
      if (winner === undefined || !pool.isUp(winner)) throw new MeetingError('MEETING_ERR_UNAVAILABLE', 'the meeting\'s Janus node is not available; try again later', UNAVAILABLE_RETRY_S);
      return winner;
    }
    await this.options.moderation.record({ meetingId: meeting.id, kind: 'node-moved', actor: undefined, detail: `${admitted.length} participants` });
    this.log.warn({ meeting: meeting.id, from, to: to.url, participants: admitted.length }, 'meeting moved to another Janus node: its participants are told to reconnect');
    this.changed(meeting.id);
    return to;
  }

  /** What a relocation that lost the race made on `node`: tokens and rooms, best effort (an orphan costs a little memory on Janus). */
  private async takeDown(node: JanusNode, meeting: MeetingRecord, admitted: readonly ParticipantRecord[], rooms: ReadonlySet<number>): Promise<void> {
    await Promise.allSettled(admitted.map(async (p) => (await node.admin()).removeToken(this.options.secrets.participantToken(meeting.id, p.id))));
    for (const n of rooms) {
      const { room, secret } = this.roomAt(meeting, n);
      await (await node.rooms()).destroy(room, { secret }).catch(() => undefined);
    }
  }

  /** The pool found a node down: its meetings move now, rather than at their next request. */
  async evacuate(node: JanusNode): Promise<void> {
    const ids = await this.options.pool.placements.meetingsOn(node.url).catch((err: unknown) => {
      this.log.warn({ node: node.url, err: (err as Error).message }, 'the meetings of a node that is down could not be listed (their next request moves them)');
      return [];
    });
    for (const id of ids) {
      try {
        const meeting = await this.options.meetings.get(id);
        if (meeting !== undefined) await this.place(meeting);
      } catch (err) {
        this.log.warn({ meeting: id, node: node.url, err: (err as Error).message }, 'a meeting could not move off a node that is down (its next request tries again)');
      }
    }
  }

  private changed(meetingId: string): void {
    this.options.signals?.changed(meetingId);
  }

  /** Stores the participant's token and puts it on the room's `allowed` list (creating the room on first use). */
  private async grant(node: JanusNode, meeting: MeetingRecord, participantId: string, feedId: number): Promise<JanusGrant> {
    const { secrets } = this.options;
    const token = secrets.participantToken(meeting.id, participantId);
    const room = secrets.roomId(meeting.id);
    await this.onJanus(node, 'storing a participant token', async () => (await node.admin()).addToken(token, [VIDEOROOM_PLUGIN], { timeoutMs: node.timeoutMs }));
    try {
      await this.allowIn(node, meeting, 0, token);
    } catch (err) {
      await this.onJanus(node, 'taking a token back', async () => (await node.admin()).removeToken(token)).catch(() => undefined);
      throw err;
    }
    return { url: node.url, token, room, feedId, screenFeedId: screenFeedOf(feedId) };
  }

  /** Takes the participant's token back: no new session or request with it, off the room's list, its feed out of the room. */
  private async revoke(node: JanusNode, meeting: MeetingRecord, participantId: string, feedId: number | undefined): Promise<void> {
    const { secrets } = this.options;
    const token = secrets.participantToken(meeting.id, participantId);
    const room = secrets.roomId(meeting.id);
    const secret = secrets.roomSecret(meeting.id);
    await this.onJanus(node, 'taking a participant token back', async () => {
      try {
        await (await node.admin()).removeToken(token);
      } catch (err) {
        // Janus no longer holds it (restarted, or removed before): what was asked is true.
        if (!(err instanceof JanusError && err.code === 'JANUS_ERR_REFUSED')) throw err;
      }
      const rooms = await node.rooms();
      await rooms.allowed({ room, action: 'remove', allowed: [token], secret }).catch(ignorePlugin(VIDEOROOM_ERROR.NO_SUCH_ROOM));
      if (feedId !== undefined) {
        for (const id of feedsOf(feedId)) await rooms.kick({ room, id, secret }).catch(ignorePlugin(VIDEOROOM_ERROR.NO_SUCH_ROOM, VIDEOROOM_ERROR.NO_SUCH_FEED));
      }
    });
  }

  private async revokeQuietly(node: JanusNode, meeting: MeetingRecord, participantId: string, feedId: number): Promise<void> {
    await this.revoke(node, meeting, participantId, feedId).catch((err: unknown) => {
      this.log.warn({ meeting: meeting.id, participant: participantId, err: (err as Error).message }, 'a token stored for an admission that failed could not be taken back');
    });
  }

  /** A Janus request whose failure is the node's: 503 with what was being done; the details go to the log. */
  private async onJanus<T>(node: JanusNode, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof MeetingError) throw err;
      this.log.warn({ node: node.url, err: (err as Error).message }, `janus: ${what} failed`);
      // The reason (a refused connection, a node without token_auth …) is the operator's business: it is in the log.
      throw new MeetingError('MEETING_ERR_UNAVAILABLE', `the meeting's Janus node is not available (${what}: ${err instanceof JanusError ? err.code : 'not usable'}); try again later`, UNAVAILABLE_RETRY_S);
    }
  }
}

function isSelf(actor: ParticipantActor, p: ParticipantRecord): boolean {
  if (actor.kind === 'guest') return p.user === undefined && p.id === actor.guest && p.meetingId === actor.meeting;
  return actor.kind === 'user' && p.user === actor.user;
}

class DuplicateJoin extends MeetingError {
  constructor() {
    super('MEETING_ERR_CONFLICT', 'this guest is joining already');
  }
}

/** A guest token names one meeting: every other is refused as the wrong token (403), whether it exists or not. */
export function guestElsewhere(): MeetingError {
  return new MeetingError('MEETING_ERR_FORBIDDEN', 'a guest token is for another meeting');
}

function notFound(id: string): MeetingError {
  return new MeetingError('MEETING_ERR_NOT_FOUND', `no participant ${id}`);
}

function isPluginError(err: unknown, ...codes: number[]): boolean {
  return err instanceof JanusError && err.code === 'JANUS_ERR_PLUGIN' && err.janusCode !== undefined && codes.includes(err.janusCode);
}

function ignorePlugin(...codes: number[]): (err: unknown) => void {
  return (err) => {
    if (!isPluginError(err, ...codes)) throw err;
  };
}

const MEDIA: readonly MediaKind[] = ['audio', 'video'];

function mediaState(participantId: string, blocks: MediaBlocks, row: ParticipantMedia | undefined): MediaState {
  return { participantId, audio: blocks.audio, video: blocks.video, audioMid: row?.audioMid, videoMid: row?.videoMid };
}

/** A mid that does not fit the store (TypeError): the request's fault. */
function invalid(err: unknown): never {
  if (err instanceof TypeError) throw new MeetingError('MEETING_ERR_INVALID', err.message);
  throw err;
}

interface Keyed { at: number; rank: number; key: string }

function compareKeyed(a: Keyed, b: Keyed): number {
  return a.at - b.at || a.rank - b.rank || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

function cursorOf(k: Keyed): string {
  return Buffer.from(JSON.stringify([k.at, k.rank, k.key])).toString('base64url');
}

function parseCursor(cursor: string): Keyed {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
    if (Array.isArray(v) && v.length === 3 && Number.isSafeInteger(v[0]) && Number.isSafeInteger(v[1]) && typeof v[2] === 'string') return { at: v[0] as number, rank: v[1] as number, key: v[2] };
  } catch {
    // not JSON: the same answer as a JSON that is not a cursor
  }
  throw new MeetingError('MEETING_ERR_INVALID', 'after: not a cursor of this history');
}
