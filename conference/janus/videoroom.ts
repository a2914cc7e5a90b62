/**
 * The videoroom requests the focus makes as the rooms' administrator, on a handle attached to janus.plugin.videoroom
 * (janus_videoroom.c, "Video Room API"): all synchronous, answered in the transaction. Rooms are never permanent:
 * the softswitch keeps the meetings' state and recreates rooms, Janus's config file stays as deployed. A refusal
 * rejects with JANUS_ERR_PLUGIN and the plugin's error_code (VIDEOROOM_ERROR: 426 no such room, 433 unauthorized …).
 * Options left undefined are not sent (JSON.stringify drops them), so Janus applies its defaults.
 */
import { JanusError } from './janus-error.js';
import type { JanusHandle } from './handle.js';
import { VIDEOROOM_PLUGIN, type JanusSession } from './session.js';
import type {
  JanusRequestOptions,
  VideoRoomAllowedAction,
  VideoRoomCreateOptions,
  VideoRoomEditOptions,
  VideoRoomInfo,
  VideoRoomParticipant,
} from './types.js';

export class VideoRoomAdmin {
  readonly handle: JanusHandle;

  constructor(handle: JanusHandle) {
    if (handle.plugin !== VIDEOROOM_PLUGIN) throw new TypeError(`VideoRoomAdmin: the handle is attached to ${handle.plugin}, not ${VIDEOROOM_PLUGIN}`);
    this.handle = handle;
  }

  /** Attaches a handle of its own to the videoroom on `session`. */
  static async attach(session: JanusSession, options: JanusRequestOptions & { opaqueId?: string } = {}): Promise<VideoRoomAdmin> {
    return new VideoRoomAdmin(await session.attach(VIDEOROOM_PLUGIN, options));
  }

  /** `create`: a room that is not permanent; resolves with its id (Janus's pick when `room` is absent). */
  async create(options: VideoRoomCreateOptions, request: JanusRequestOptions = {}): Promise<number> {
    if (options.room !== undefined) roomId(options.room);
    const body = {
      request: 'create',
      room: options.room,
      permanent: false,
      description: options.description,
      secret: options.secret,
      pin: options.pin,
      is_private: options.isPrivate,
      allowed: options.allowed,
      publishers: options.publishers,
      bitrate: options.bitrate,
      videocodec: options.videocodec,
      audiocodec: options.audiocodec,
      audiolevel_event: options.audiolevelEvent,
      record: options.record,
      rec_dir: options.recDir,
      lock_record: options.lockRecord,
      notify_joining: options.notifyJoining,
      admin_key: options.adminKey,
    };
    const { data } = await this.handle.message<{ videoroom: string; room?: unknown }>(body, request);
    if (data.videoroom !== 'created' || typeof data.room !== 'number') throw unexpected('create', data.videoroom);
    return data.room;
  }

  /** `edit`: changes what can change in a live room (description, secret, pin, caps, recording folder). */
  async edit(room: number, options: VideoRoomEditOptions, request: JanusRequestOptions = {}): Promise<void> {
    const body = {
      request: 'edit',
      room: roomId(room),
      secret: options.secret,
      new_description: options.description,
      new_secret: options.newSecret,
      new_pin: options.newPin,
      new_is_private: options.isPrivate,
      new_publishers: options.publishers,
      new_bitrate: options.bitrate,
      new_lock_record: options.lockRecord,
      new_rec_dir: options.recDir,
      permanent: false,
    };
    const { data } = await this.handle.message<{ videoroom: string }>(body, request);
    if (data.videoroom !== 'edited') throw unexpected('edit', data.videoroom);
  }

  /** `destroy`: ends the room, kicking everyone in it. */
  async destroy(room: number, options: { secret?: string | undefined } = {}, request: JanusRequestOptions = {}): Promise<void> {
    const { data } = await this.handle.message<{ videoroom: string }>({ request: 'destroy', room: roomId(room), secret: options.secret, permanent: false }, request);
    if (data.videoroom !== 'destroyed') throw unexpected('destroy', data.videoroom);
  }

  async exists(room: number, request: JanusRequestOptions = {}): Promise<boolean> {
    const { data } = await this.handle.message<{ videoroom: string; exists?: unknown }>({ request: 'exists', room: roomId(room) }, request);
    if (data.videoroom !== 'success' || typeof data.exists !== 'boolean') throw unexpected('exists', data.videoroom);
    return data.exists;
  }

  /** `list`: the rooms (the private ones too when `adminKey` is the plugin's admin_key). */
  async list(options: { adminKey?: string | undefined } = {}, request: JanusRequestOptions = {}): Promise<VideoRoomInfo[]> {
    const { data } = await this.handle.message<{ videoroom: string; list?: unknown }>({ request: 'list', admin_key: options.adminKey }, request);
    if (data.videoroom !== 'success' || !Array.isArray(data.list)) throw unexpected('list', data.videoroom);
    return data.list as VideoRoomInfo[];
  }

  /** `listparticipants`: who is in the room (publishers, active or not). */
  async listParticipants(room: number, request: JanusRequestOptions = {}): Promise<VideoRoomParticipant[]> {
    const { data } = await this.handle.message<{ videoroom: string; participants?: unknown }>({ request: 'listparticipants', room: roomId(room) }, request);
    if (data.videoroom !== 'participants' || !Array.isArray(data.participants)) throw unexpected('listparticipants', data.videoroom);
    return data.participants as VideoRoomParticipant[];
  }

  /** `moderate`: mutes (or lifts the moderator's mute of) the stream of participant `id` whose m-line is `mid`. */
  async moderate(options: { room: number; id: number; mid: string; mute: boolean; secret?: string | undefined }, request: JanusRequestOptions = {}): Promise<void> {
    if (typeof options.mid !== 'string' || options.mid === '') throw new TypeError('videoroom moderate: mid must be a non-empty string');
    const body = { request: 'moderate', room: roomId(options.room), id: participantId(options.id), mid: options.mid, mute: options.mute, secret: options.secret };
    await this.success('moderate', body, request);
  }

  /** `kick`: puts participant `id` out of the room (it may join again unless its token leaves `allowed`). */
  async kick(options: { room: number; id: number; secret?: string | undefined }, request: JanusRequestOptions = {}): Promise<void> {
    await this.success('kick', { request: 'kick', room: roomId(options.room), id: participantId(options.id), secret: options.secret }, request);
  }

  /** `enable_recording`: starts or stops recording every participant of the room. */
  async enableRecording(options: { room: number; record: boolean; secret?: string | undefined }, request: JanusRequestOptions = {}): Promise<void> {
    await this.success('enable_recording', { request: 'enable_recording', room: roomId(options.room), record: options.record, secret: options.secret }, request);
  }

  /**
   * `allowed`: the room's token list. `enable` / `disable` switch the check on or off; `add` / `remove` change the
   * list. Resolves with the complete list after the change (empty for `disable`, where Janus sends none).
   */
  async allowed(
    options: { room: number; action: VideoRoomAllowedAction; allowed?: string[] | undefined; secret?: string | undefined },
    request: JanusRequestOptions = {},
  ): Promise<string[]> {
    if (!['enable', 'disable', 'add', 'remove'].includes(options.action)) throw new TypeError(`videoroom allowed: unknown action ${String(options.action)}`);
    if ((options.action === 'add' || options.action === 'remove') && !(Array.isArray(options.allowed) && options.allowed.length > 0)) {
      throw new TypeError(`videoroom allowed: ${options.action} needs a non-empty list of tokens`);
    }
    const body = { request: 'allowed', room: roomId(options.room), action: options.action, allowed: options.allowed, secret: options.secret };
    const data = await this.success('allowed', body, request);
    return Array.isArray(data.allowed) ? data.allowed.filter((t): t is string => typeof t === 'string') : [];
  }

  private async success(name: string, body: Record<string, unknown> & { request: string }, request: JanusRequestOptions): Promise<Record<string, unknown>> {
    const { data } = await this.handle.message(body, request);
    if (data.videoroom !== 'success') throw unexpected(name, data.videoroom);
    return data;
  }
}

function roomId(room: number): number {
  if (!Number.isSafeInteger(room) || room <= 0) throw new TypeError(`videoroom: room ${String(room)} is not a positive integer`);
  return room;
}

function participantId(id: number): number {
  if (!Number.isSafeInteger(id) || id <= 0) throw new TypeError(`videoroom: participant id ${String(id)} is not a positive integer`);
  return id;
}

function unexpected(request: string, answer: unknown): JanusError {
  return new JanusError('JANUS_ERR_REPLY', `videoroom ${request}: unexpected answer "${String(answer)}"`, { request: `message:${request}` });
}
