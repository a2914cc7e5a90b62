/**
 * Meetings as data (issue 19, part 1): create or schedule, read, change and delete a meeting; who may do what.
 * Admission, rooms on Janus, moderation and history build on this record.
 *
 * - A user token owns the meetings it creates; it lists, changes and deletes only those. Any signed-in user reads a
 *   meeting's public face (title, schedule, whether a password or lobby guards it): what a join page shows. The
 *   settings and the owner are for the owner and admins.
 * - An admin token may do everything, and creates a meeting for a named owner.
 * - The lobby is on unless the owner turns it off: early arrivals wait for a moderator (jitsi-meet #7385).
 * - The password is hashed (meeting-password.ts) and never answered; `hasPassword` says there is one.
 * - A meeting's SIP URI is `sip:meet-<id>@<owner's domain>` (kept for dial-in), its join link `/console/?meeting=<id>`
 *   on the server's HTTP address.
 */
import { randomBytes } from 'node:crypto';
import { StoreError, type MeetingChange, type MeetingRecord, type MeetingRepository } from '../platform/store/index.js';
import { hashMeetingPassword } from './meeting-password.js';

/** Participants a meeting allows when its owner does not say. */
export const DEFAULT_MAX_PARTICIPANTS = 100;

export type MeetingErrorCode =
  | 'MEETING_ERR_NOT_FOUND' // no such meeting or participant (or not one the actor may see)
  | 'MEETING_ERR_FORBIDDEN' // not the owner, not a moderator, or the wrong meeting password
  | 'MEETING_ERR_INVALID' // a value that does not fit
  | 'MEETING_ERR_CONFLICT' // the participant is not in a state that allows it (admit a denied one), or the meeting is full
  | 'MEETING_ERR_RATE_LIMITED' // too many wrong meeting passwords; retryAfter says when to come back
  | 'MEETING_ERR_UNAVAILABLE'; // no Janus node is configured, or the meeting's node does not answer

export class MeetingError extends Error {
  constructor(readonly code: MeetingErrorCode, message: string, readonly retryAfter?: number) {
    super(message);
    this.name = 'MeetingError';
  }
}

/** Who asks: an admin token, or a user access token (user@domain). */
export type MeetingActor = { kind: 'admin' } | { kind: 'user'; user: string };

export interface NewMeetingInput {
  title: string;
  /** user@domain; required of an admin, and only an admin may name someone else. */
  owner?: string | undefined;
  startsAt?: number | undefined;
  endsAt?: number | undefined;
  password?: string | undefined;
  lobby?: boolean | undefined;
  maxParticipants?: number | undefined;
  recordingAllowed?: boolean | undefined;
}

export type MeetingChangeInput = Omit<MeetingChange, 'passwordHash'> & { password?: string | null };

/** A meeting as its owner and admins see it. */
export interface MeetingView {
  id: string;
  title: string;
  owner: string;
  startsAt: number | undefined;
  endsAt: number | undefined;
  hasPassword: boolean;
  lobby: boolean;
  maxParticipants: number;
  recordingAllowed: boolean;
  uri: string;
  link: string;
  createdAt: number;
  updatedAt: number;
}

/** What anyone signed in sees of someone else's meeting: enough for a join page. */
export type MeetingPublicView = Pick<MeetingView, 'id' | 'title' | 'startsAt' | 'endsAt' | 'hasPassword' | 'lobby' | 'uri' | 'link'>;

/** 12 characters of RFC 4648 base32 in lower case: 60 random bits, and a SIP user part as it is. */
export function newMeetingId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(12);
  let id = '';
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}

export function meetingView(m: MeetingRecord): MeetingView {
  const domain = m.owner.slice(m.owner.lastIndexOf('@') + 1);
  return {
    id: m.id, title: m.title, owner: m.owner, startsAt: m.startsAt, endsAt: m.endsAt, hasPassword: m.passwordHash !== undefined, lobby: m.lobby,
    maxParticipants: m.maxParticipants, recordingAllowed: m.recordingAllowed, uri: `sip:meet-${m.id}@${domain}`, link: `/console/?meeting=${m.id}`,
    createdAt: m.createdAt, updatedAt: m.updatedAt,
  };
}

export function publicView(v: MeetingView): MeetingPublicView {
  return { id: v.id, title: v.title, startsAt: v.startsAt, endsAt: v.endsAt, hasPassword: v.hasPassword, lobby: v.lobby, uri: v.uri, link: v.link };
}

export interface MeetingServiceOptions {
  repository: MeetingRepository;
  /** Whether user@domain is one of ours (an admin may create meetings for existing users only). */
  userExists(user: string): Promise<boolean>;
  newId?: () => string;
  /** Called before a meeting is deleted, to end it on Janus (Focus.end); a rejection stops the deletion. */
  ending?: ((meetingId: string) => Promise<void>) | undefined;
}

export class MeetingService {
  private readonly repo: MeetingRepository;
  private readonly newId: () => string;

  constructor(private readonly options: MeetingServiceOptions) {
    this.repo = options.repository;
    this.newId = options.newId ?? newMeetingId;
  }

  async create(actor: MeetingActor, input: NewMeetingInput): Promise<MeetingView> {
    let owner: string;
    if (actor.kind === 'user') {
      if (input.owner !== undefined && input.owner !== actor.user) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'a user creates meetings of its own only');
      owner = actor.user;
    } else {
      if (input.owner === undefined) throw new MeetingError('MEETING_ERR_INVALID', 'owner: an admin names the meeting\'s owner (user@domain)');
      if (!(await this.options.userExists(input.owner))) throw new MeetingError('MEETING_ERR_INVALID', `owner: no such user ${input.owner}`);
      owner = input.owner;
    }
    checkSchedule(input.startsAt, input.endsAt);
    const record = {
      title: input.title, owner, startsAt: input.startsAt, endsAt: input.endsAt,
      passwordHash: input.password === undefined ? undefined : await hashMeetingPassword(input.password),
      lobby: input.lobby ?? true, maxParticipants: input.maxParticipants ?? DEFAULT_MAX_PARTICIPANTS, recordingAllowed: input.recordingAllowed ?? false,
    };
    // 60 random bits: a clash is a curiosity, but one more try costs nothing.
    for (let attempt = 0; ; attempt++) {
      try {
        return meetingView(await this.repo.create({ id: this.newId(), ...record }));
      } catch (err) {
        if (!(err instanceof StoreError && err.code === 'STORE_ERR_DUPLICATE') || attempt >= 2) throw invalid(err);
      }
    }
  }

  /** The whole meeting for its owner or an admin, its public face for other users. */
  async get(actor: MeetingActor, id: string): Promise<MeetingView | MeetingPublicView> {
    const m = await this.existing(id);
    return mayManage(actor, m) ? meetingView(m) : publicView(meetingView(m));
  }

  /** A page of meetings, newest first: a user's own; an admin's every meeting or one owner's. */
  async list(actor: MeetingActor, query: { owner?: string | undefined; after?: { createdAt: number; id: string } | undefined; limit: number }): Promise<MeetingView[]> {
    if (actor.kind === 'user' && query.owner !== undefined && query.owner !== actor.user) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'a user lists its own meetings only');
    const owner = actor.kind === 'user' ? actor.user : query.owner;
    return (await this.repo.list({ owner, after: query.after, limit: query.limit })).map(meetingView);
  }

  async update(actor: MeetingActor, id: string, change: MeetingChangeInput): Promise<MeetingView> {
    const m = await this.managed(actor, id);
    const { password, ...rest } = change;
    checkSchedule(change.startsAt === undefined ? m.startsAt : change.startsAt ?? undefined, change.endsAt === undefined ? m.endsAt : change.endsAt ?? undefined);
    const stored: MeetingChange = { ...rest };
    if (password !== undefined) stored.passwordHash = password === null ? null : await hashMeetingPassword(password);
    try {
      return meetingView(await this.repo.update(id, stored));
    } catch (err) {
      throw notFound(err, id);
    }
  }

  async remove(actor: MeetingActor, id: string): Promise<void> {
    await this.managed(actor, id);
    // Tokens first: once the rows are gone nobody knows whose tokens to revoke.
    await this.options.ending?.(id);
    await this.repo.remove(id).catch((err: unknown) => {
      throw notFound(err, id);
    });
  }

  private async existing(id: string): Promise<MeetingRecord> {
    const m = await this.repo.get(id);
    if (m === undefined) throw new MeetingError('MEETING_ERR_NOT_FOUND', `no meeting ${id}`);
    return m;
  }

  /** The meeting, when the actor owns it or is an admin; another user's is 403 (the meeting exists: it has a join page). */
  private async managed(actor: MeetingActor, id: string): Promise<MeetingRecord> {
    const m = await this.existing(id);
    if (!mayManage(actor, m)) throw new MeetingError('MEETING_ERR_FORBIDDEN', 'only the meeting\'s owner (or an admin) may change it');
    return m;
  }
}

function mayManage(actor: MeetingActor, m: MeetingRecord): boolean {
  return actor.kind === 'admin' || actor.user === m.owner;
}

function checkSchedule(startsAt: number | undefined, endsAt: number | undefined): void {
  if (startsAt !== undefined && endsAt !== undefined && endsAt <= startsAt) throw new MeetingError('MEETING_ERR_INVALID', 'endsAt: must be after startsAt');
}

/** The store's TypeError (a value it will not take) in the API's words. */
function invalid(err: unknown): unknown {
  return err instanceof TypeError ? new MeetingError('MEETING_ERR_INVALID', err.message) : err;
}

function notFound(err: unknown, id: string): unknown {
  if (err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND') return new MeetingError('MEETING_ERR_NOT_FOUND', `no meeting ${id}`);
  return invalid(err);
}
