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
 * history. The admitted user's answers carry its id. Guests have no user to be a member: they have no chat yet.
 * A chat failure is logged and does not undo an admission (the next poll tries again).
 */
import { randomInt } from 'node:crypto';
import { silentLogger, categoryLogger, type Logger } from '../src/log/index.js';
import { FailureLimiter } from '../platform/http/index.js';
import { StoreError, type MeetingRecord, type MeetingRepository, type ParticipantRecord, type ParticipantRepository, type ParticipantRole } from '../platform/store/index.js';
import { JanusError, VIDEOROOM_ERROR, VIDEOROOM_PLUGIN } from './janus/index.js';
import type { FocusSecrets } from './focus-secrets.js';
import type { JanusNode } from './janus-node.js';
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
}

/** The answer to a join, and to a participant polling its own row. */
export interface Admission {
  participant: ParticipantRecord;
  /** Only to the participant itself, and only while admitted. */
  janus?: JanusGrant | undefined;
  /** The meeting's group conversation: to an admitted user itself, a member of it. */
  conversation?: string | undefined;
}

/** The meeting's group conversation (messaging's ChatService has it: openMeetingGroup, enterMeetingGroup). */
export interface MeetingChat {
  /** The group's id, the group created on first use. */
  open(meeting: { id: string; title: string; owner: string }): Promise<string>;
  /** Makes the user a member (nothing when it is one). */
  enter(groupId: string, user: string): Promise<void>;
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

export interface FocusOptions {
  meetings: MeetingRepository;
  participants: ParticipantRepository;
  secrets: FocusSecrets;
  /** The Janus nodes of meetings.janus; empty: meetings cannot be joined (503). */
  nodes: readonly JanusNode[];
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

/** Feed ids below 2^48, like room ids: random, so a participant cannot guess another's. */
const newFeedId = (): number => randomInt(1, 2 ** 48 - 1);

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
    const node = this.place(meeting);
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
      if (current !== undefined) return this.chatted(meeting, this.admission(meeting, current, true));
    }
    if (actor.kind === 'guest') {
      const row = await this.options.participants.get(meeting.id, actor.guest);
      if (row !== undefined) return this.guestAgain(meeting, row);
    }
    const id = actor.kind === 'guest' ? actor.guest : this.newId();
    if (role === 'participant' && meeting.lobby) {
      const waiting = await this.created(() => this.options.participants.create({ id, meetingId: meeting.id, user, displayName: input.displayName, role, state: 'waiting' }), meeting.id);
      this.log.info({ meeting: meeting.id, participant: id }, 'waiting in the lobby');
      return { participant: waiting };
    }
    await this.checkRoom(meeting);
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
    if (isSelf(actor, p)) return this.chatted(meeting, this.admission(meeting, p, true));
    if (mayModerate(actor, meeting, await this.own(actor, meeting))) return { participant: p };
    // A participant's id is unguessable: to others it does not exist.
    throw notFound(participantId);
  }

  async admit(actor: ParticipantActor, meetingId: string, participantId: string): Promise<ParticipantRecord> {
    const meeting = await this.moderated(actor, meetingId);
    const p = await this.existing(meeting, participantId);
    if (p.state === 'admitted') return p;
    if (p.state !== 'waiting') throw new MeetingError('MEETING_ERR_CONFLICT', `participant ${p.id} is ${p.state}, not waiting`);
    const node = this.place(meeting);
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
    if (p.state === 'admitted') await this.revoke(this.place(meeting), meeting, p.id, p.feedId);
    const moved = await this.options.participants.transition(meeting.id, p.id, p.state, to);
    if (moved === undefined) return this.settled(meeting, p.id, to);
    this.log.info({ meeting: meeting.id, participant: p.id, from: p.state }, self ? 'left' : 'kicked');
    return moved;
  }

  /**
   * The meeting is going (deleted, or its owner is): every admitted participant's token is revoked and the room
   * destroyed, before the rows go with the meeting. A meeting nobody is in needs no Janus.
   */
  async end(meetingId: string): Promise<void> {
    const meeting = await this.options.meetings.get(meetingId);
    if (meeting === undefined) return;
    const admitted = await this.options.participants.list(meeting.id, ['admitted']);
    if (admitted.length === 0) return;
    const node = this.place(meeting);
    for (const p of admitted) await this.revoke(node, meeting, p.id, p.feedId);
    const { secrets } = this.options;
    await this.onJanus(node, 'destroying the room', async () => {
      await (await node.rooms()).destroy(secrets.roomId(meeting.id), { secret: secrets.roomSecret(meeting.id) }).catch(ignorePlugin(VIDEOROOM_ERROR.NO_SUCH_ROOM));
    });
    this.log.info({ meeting: meeting.id, participants: admitted.length }, 'meeting ended: tokens revoked, room destroyed');
  }

  // ---- the meeting and its participants ------------------------------------------------------------------------

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
  private guestAgain(meeting: MeetingRecord, row: ParticipantRecord): Admission {
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

  private admission(meeting: MeetingRecord, p: ParticipantRecord, self: boolean): Admission {
    if (!self || p.state !== 'admitted' || p.feedId === undefined) return { participant: p };
    const node = this.place(meeting);
    const { secrets } = this.options;
    return { participant: p, janus: { url: node.url, token: secrets.participantToken(meeting.id, p.id), room: secrets.roomId(meeting.id), feedId: p.feedId } };
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

  /**
   * The node that holds the meeting's room. The first configured one for now; the seam for placement on the
   * least-loaded node (and moving rooms off a node that is down) is here, and only here.
   */
  private place(meeting: MeetingRecord): JanusNode {
    const node = this.options.nodes[0];
    if (node === undefined) throw new MeetingError('MEETING_ERR_UNAVAILABLE', 'meetings need a Janus node (meetings.janus)');
    void meeting; // the placement will read it (its node, its load); the first node takes every meeting for now
    return node;
  }

  /** Stores the participant's token and puts it on the room's `allowed` list (creating the room on first use). */
  private async grant(node: JanusNode, meeting: MeetingRecord, participantId: string, feedId: number): Promise<JanusGrant> {
    const { secrets } = this.options;
    const token = secrets.participantToken(meeting.id, participantId);
    const room = secrets.roomId(meeting.id);
    const secret = secrets.roomSecret(meeting.id);
    await this.onJanus(node, 'storing a participant token', async () => (await node.admin()).addToken(token, [VIDEOROOM_PLUGIN], { timeoutMs: node.timeoutMs }));
    try {
      await this.onJanus(node, 'letting a participant into the room', async () => {
        const rooms = await node.rooms();
        try {
          await rooms.allowed({ room, action: 'add', allowed: [token], secret });
        } catch (err) {
          if (!isPluginError(err, VIDEOROOM_ERROR.NO_SUCH_ROOM)) throw err;
          try {
            // `allowed` at creation turns the room's token check on with this one token: no moment without the check.
            await rooms.create({ room, secret, description: `meeting ${meeting.id}`, isPrivate: true, publishers: meeting.maxParticipants, audiolevelEvent: true, allowed: [token] });
            this.log.info({ meeting: meeting.id, room, node: node.url }, 'room created');
          } catch (createErr) {
            // Another worker created it meanwhile: add to its list.
            if (!isPluginError(createErr, VIDEOROOM_ERROR.ROOM_EXISTS)) throw createErr;
            await rooms.allowed({ room, action: 'add', allowed: [token], secret });
          }
        }
      });
    } catch (err) {
      await this.onJanus(node, 'taking a token back', async () => (await node.admin()).removeToken(token)).catch(() => undefined);
      throw err;
    }
    return { url: node.url, token, room, feedId };
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
      if (feedId !== undefined) await rooms.kick({ room, id: feedId, secret }).catch(ignorePlugin(VIDEOROOM_ERROR.NO_SUCH_ROOM, VIDEOROOM_ERROR.NO_SUCH_FEED));
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
