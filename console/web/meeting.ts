/**
 * The meeting page of the softphone (README "Meetings"): the Meetings card of a signed-in user (list, create with
 * title, password and lobby, copy the join link `/console/?meeting=<id>`), the join form the link opens (a signed-in
 * user joins as itself; anyone else as a guest with a name, through the `urn:softswitch:meeting-guest` token grant),
 * the lobby (`POST …/join`, then `GET …/participants/{pid}` every second until admitted or denied), and the room:
 * with the Janus grant the page talks to Janus directly (videoroom.ts) and shows one tile per participant with its
 * name, its mute state and a highlight while it talks. Moderators see the lobby (Admit, Deny) and Mute, Kick,
 * Mute all and Lock, each a REST route of the focus that Janus enforces. Nothing a peer sends is inserted as HTML.
 */
import { ApiError, api, byId, reason } from './dom.js';
import { type JanusGrant, type Medium, type RoomView, VideoRoom } from './videoroom.js';

interface Meeting { id: string; title: string; hasPassword: boolean; lobby: boolean; link: string }
interface Participant { id: string; user?: string; displayName: string; role: string; state: string; feedId?: number }
interface Admission { participant: Participant; state: string; janus?: JanusGrant }
interface GuestToken { access_token: string; guest: string }
interface IceAnswer { iceServers: RTCIceServer[] }

const LOBBY_POLL_MS = 1000;
const PARTICIPANTS_POLL_MS = 2000;
const MODERATORS = new Set(['owner', 'moderator']);

/** What the softphone page lends this module: its status line, and the signed-in user's token while there is one. */
export interface MeetingHost {
  say(text: string, error?: boolean): void;
  token(): string | undefined;
}

interface Tile {
  el: HTMLElement;
  video: HTMLVideoElement;
  label: HTMLElement;
  stream: MediaStream;
  muted: Record<Medium, boolean>;
}

let host: MeetingHost;
/** The meeting the page was opened for (`?meeting=`), if any. */
const linked = new URLSearchParams(location.search).get('meeting') ?? undefined;
let me: string | undefined;

/** The current join: its bearer token (the user's, or a guest's), the participant, the room once admitted. */
let current: {
  meetingId: string;
  token: () => string | undefined;
  /**
   * A guest: its token does not reach the moderation routes (README "Guests"), so it reports no mids and mutes
   * only its own track; moderators cannot mute it by mid yet (they can kick it).
   */
  guest: boolean;
  participant: Participant;
  room?: VideoRoom;
  local?: MediaStream;
  screen?: MediaStreamTrack;
  pollTimer?: number;
  byFeed: Map<number, Participant>;
  locked: boolean;
} | undefined;
const tiles = new Map<number, Tile>();

const meetingState = () => byId('meeting-state');

function setState(state: string, text: string): void {
  const el = meetingState();
  el.dataset.state = state;
  el.textContent = text;
}

const path = (id: string, rest = ''): string => `/v1/meetings/${encodeURIComponent(id)}${rest}`;

function button(text: string, action: () => Promise<void> | void, className = 'small'): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = text;
  b.addEventListener('click', () => {
    Promise.resolve(action()).catch((err: unknown) => host.say(reason(err), true));
  });
  return b;
}

// ---- the Meetings card ------------------------------------------------------------------------------

async function listMeetings(): Promise<void> {
  const { meetings } = await api<{ meetings: Meeting[] }>('/v1/meetings?limit=20', host.token());
  byId('meetings').replaceChildren(...meetings.map((m) => {
    const li = document.createElement('li');
    li.dataset.meeting = m.id;
    li.dataset.link = m.link;
    const title = document.createElement('span');
    title.textContent = `${m.title}${m.hasPassword ? ' 🔒' : ''}${m.lobby ? '' : ' (no lobby)'} `;
    li.append(title,
      button('Join', () => join({ meetingId: m.id, title: m.title, token: host.token }), 'small join'),
      button('Copy link', () => copyLink(m), 'small copy'));
    return li;
  }));
}

/** The join link on the page's own origin (the server's `link` names the address it was configured with). */
async function copyLink(m: Meeting): Promise<void> {
  const link = new URL(`/console/?meeting=${encodeURIComponent(m.id)}`, location.href).href;
  try {
    await navigator.clipboard.writeText(link);
    host.say(`Copied ${link}`);
  } catch {
    host.say(`The join link: ${link}`);
  }
}

async function createMeeting(): Promise<void> {
  const title = byId<HTMLInputElement>('meeting-title');
  const password = byId<HTMLInputElement>('meeting-password');
  const body = { title: title.value.trim(), lobby: byId<HTMLInputElement>('meeting-lobby').checked, ...(password.value === '' ? {} : { password: password.value }) };
  const m = await api<Meeting>('/v1/meetings', host.token(), { method: 'POST', body });
  title.value = '';
  password.value = '';
  host.say(`Meeting "${m.title}" created`);
  await listMeetings();
}

// ---- the join form of a link ---------------------------------------------------------------------------

function showJoinForm(): void {
  if (linked === undefined) return;
  byId('meeting-join').hidden = false;
  const heading = byId('join-id');
  if (heading.textContent === '') heading.textContent = linked; // the title, once the signed-in page read it
}

/** Signed in: the link's form joins as the user; the meeting's public face says whether a password is needed. */
async function describeLinked(): Promise<void> {
  if (linked === undefined) return;
  byId('join-name-label').hidden = true;
  byId('join-submit').textContent = `Join as ${me ?? 'me'}`;
  try {
    const m = await api<Meeting>(path(linked), host.token());
    byId('join-id').textContent = m.title;
    byId('join-password-label').hidden = !m.hasPassword;
  } catch (err) {
    host.say(`Cannot read the meeting: ${reason(err)}`, true);
  }
}

async function joinFromForm(): Promise<void> {
  if (linked === undefined) return;
  const password = byId<HTMLInputElement>('join-password').value;
  const options = password === '' ? {} : { password };
  const title = byId('join-id').textContent ?? linked;
  if (host.token() !== undefined) {
    await join({ meetingId: linked, title, token: host.token, ...options });
    return;
  }
  const name = byId<HTMLInputElement>('join-name').value.trim();
  if (name === '') throw new Error('Your name, please');
  // A guest token reaches this meeting's join, participant and ICE-server routes only, for an hour (README "Guests").
  const guest = await api<GuestToken>('/v1/auth/token', undefined, {
    method: 'POST', body: { grant_type: 'urn:softswitch:meeting-guest', meeting: linked, display_name: name },
  });
  await join({ meetingId: linked, title, token: () => guest.access_token, guest: true, ...options });
}

// ---- joining and the lobby -----------------------------------------------------------------------------

interface JoinRequest {
  meetingId: string;
  /** What the room's heading shows. */
  title: string;
  token: () => string | undefined;
  password?: string;
  guest?: boolean;
}

async function join({ meetingId, title, token, password, guest = false }: JoinRequest): Promise<void> {
  if (current !== undefined) throw new Error('Leave the meeting you are in first');
  byId('meeting-room').hidden = false;
  byId('meeting-join').hidden = true;
  setState('joining', 'joining…');
  let admission: Admission;
  try {
    admission = await api<Admission>(path(meetingId, '/join'), token(), { method: 'POST', body: password === undefined ? {} : { password } });
  } catch (err) {
    byId('meeting-room').hidden = true;
    showJoinForm();
    setState('idle', '');
    // 403: a wrong or missing password, or a locked meeting; the server's message says which
    if (err instanceof ApiError && err.status === 403) throw new Error(`Not let in: ${err.message}`);
    throw err;
  }
  current = { meetingId, token, guest, participant: admission.participant, byFeed: new Map(), locked: false };
  byId('room-title').textContent = title;
  if (admission.janus !== undefined) await enter(admission.janus);
  else await waitInLobby();
}

/** Polls the participant until a moderator decides; the lead's event stream will replace this. */
async function waitInLobby(): Promise<void> {
  const c = current!;
  setState('waiting', 'waiting in the lobby for a moderator to let you in…');
  for (;;) {
    await new Promise((r) => window.setTimeout(r, LOBBY_POLL_MS));
    if (current !== c) return; // left while waiting
    let a: Admission;
    try {
      a = await api<Admission>(path(c.meetingId, `/participants/${c.participant.id}`), c.token());
    } catch (err) {
      host.say(`Lobby: ${reason(err)}`, true);
      continue;
    }
    c.participant = a.participant;
    if (a.janus !== undefined) {
      await enter(a.janus);
      return;
    }
    if (a.state !== 'waiting') {
      finish(a.state, a.state === 'denied' ? 'a moderator did not let you in' : `you are no longer waiting (${a.state})`);
      return;
    }
  }
}

async function iceServers(token: string | undefined): Promise<RTCIceServer[]> {
  try {
    return (await api<IceAnswer>('/v1/ice-servers', token)).iceServers;
  } catch {
    return []; // none: reachable networks only
  }
}

async function enter(grant: JanusGrant): Promise<void> {
  const c = current!;
  setState('connecting', 'connecting the media…');
  try {
    c.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
    localTile(grant.feedId, c.participant.displayName, c.local);
    const room = await VideoRoom.join(grant, c.participant.displayName, c.local, await iceServers(c.token()), viewFor(c));
    if (current !== c) {
      // left while connecting: finish() ran without this room
      await room.leave();
      return;
    }
    c.room = room;
  } catch (err) {
    if (current !== c) return;
    // Not in the room after all: give the place back (the token is revoked) rather than stay admitted.
    await leave();
    finish('error', `cannot connect the media: ${reason(err)}`);
    return;
  }
  // The focus moderates by mid: it needs ours (and applies a mute-all decided before we came).
  if (!c.guest) await api(path(c.meetingId, `/participants/${c.participant.id}/streams`), c.token(), { method: 'PUT', body: c.room.publishedMids() })
    .catch((err: unknown) => host.say(`The focus did not take our streams: ${reason(err)}`, true));
  setState('in-meeting', 'in the meeting');
  byId('moderator').hidden = !MODERATORS.has(c.participant.role);
  await pollParticipants();
  c.pollTimer = window.setInterval(() => void pollParticipants(), PARTICIPANTS_POLL_MS);
}

/** The list moderators act on (the lobby, who is who by feed); an admitted participant sees who is admitted. */
async function pollParticipants(): Promise<void> {
  const c = current;
  if (c === undefined) return;
  try {
    const { participants } = await api<{ participants: Participant[] }>(path(c.meetingId, '/participants'), c.token());
    c.byFeed = new Map(participants.flatMap((p) => (p.feedId === undefined || p.state !== 'admitted' ? [] : [[p.feedId, p] as const])));
    if (MODERATORS.has(c.participant.role)) showLobby(participants.filter((p) => p.state === 'waiting'));
    for (const [feed, tile] of tiles) decorate(feed, tile);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) return; // kicked or gone: the room says so
    host.say(`Participants: ${reason(err)}`, true);
  }
}

function showLobby(waiting: Participant[]): void {
  const c = current!;
  byId('lobby').replaceChildren(...waiting.map((p) => {
    const li = document.createElement('li');
    li.dataset.participant = p.id;
    const name = document.createElement('span');
    name.textContent = `${p.displayName}${p.user === undefined ? ' (guest)' : ` <${p.user}>`} `;
    const decide = (what: 'admit' | 'deny') => async () => {
      await api(path(c.meetingId, `/participants/${p.id}/${what}`), c.token(), { method: 'POST' });
      await pollParticipants();
    };
    li.append(name, button('Admit', decide('admit'), 'small admit'), button('Deny', decide('deny'), 'small danger deny'));
    return li;
  }));
}

// ---- tiles ---------------------------------------------------------------------------------------------

function newTile(feed: number, name: string, self = false): Tile {
  const el = document.createElement('figure');
  el.className = self ? 'tile self' : 'tile remote';
  el.dataset.feed = String(feed);
  if (self) el.dataset.self = 'true';
  el.dataset.name = name;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  const label = document.createElement('figcaption');
  const stream = new MediaStream();
  video.srcObject = stream;
  el.append(video, label);
  byId('tiles').append(el);
  const tile: Tile = { el, video, label, stream, muted: { audio: false, video: false } };
  tiles.set(feed, tile);
  decorate(feed, tile);
  return tile;
}

function localTile(feed: number, name: string, local: MediaStream): Tile {
  const tile = newTile(feed, `${name} (you)`, true);
  tile.video.muted = true; // no echo of our own microphone
  tile.video.srcObject = local;
  return tile;
}

/** The caption: name and mute state; a moderator's Mute and Kick on the others' tiles. */
function decorate(feed: number, tile: Tile): void {
  const c = current;
  const name = document.createElement('span');
  name.textContent = `${tile.el.dataset.name ?? ''}${tile.muted.audio ? ' 🔇' : ''}${tile.muted.video ? ' 📷✕' : ''}`;
  tile.el.dataset.audioMuted = String(tile.muted.audio);
  tile.el.dataset.videoMuted = String(tile.muted.video);
  const parts: HTMLElement[] = [name];
  const p = c?.byFeed.get(feed);
  if (c !== undefined && p !== undefined && MODERATORS.has(c.participant.role) && tile.el.dataset.self !== 'true') {
    parts.push(
      button(tile.muted.audio ? 'Unmute' : 'Mute', () => moderate(p, !tile.muted.audio), 'small mute'),
      button('Kick', () => kick(p), 'small danger kick'),
    );
  }
  tile.label.replaceChildren(...parts);
}

function play(tile: Tile): void {
  tile.video.play().catch(() => host.say('Click the page to hear the meeting (the browser blocked autoplay)'));
}

/** What the room shows, for as long as `c` is the current meeting (a late event of an old room changes nothing). */
function viewFor(c: NonNullable<typeof current>): RoomView {
  const live = (): boolean => current === c;
  return {
    feed(feed, display) {
      if (live() && !tiles.has(feed)) newTile(feed, display);
    },
    track(feed, track) {
      if (!live()) return;
      const tile = tiles.get(feed) ?? newTile(feed, String(feed));
      for (const old of tile.stream.getTracks()) if (old.kind === track.kind && old !== track) tile.stream.removeTrack(old);
      if (!tile.stream.getTracks().includes(track)) tile.stream.addTrack(track);
      play(tile);
    },
    gone(feed) {
      if (!live()) return;
      tiles.get(feed)?.el.remove();
      tiles.delete(feed);
    },
    muted(feed, medium, muted) {
      const tile = live() ? tiles.get(feed) : undefined;
      if (tile === undefined) return;
      tile.muted[medium] = muted;
      decorate(feed, tile);
      // our own button: muted by a moderator, or still off here after a moderator's unmute (nobody's microphone is
      // turned on for them)
      const off = c.local?.getAudioTracks().some((t) => !t.enabled) ?? false;
      if (tile.el.dataset.self === 'true' && medium === 'audio') showSelfMute(muted || off);
    },
    talking(feed, talking) {
      if (live()) tiles.get(feed)?.el.classList.toggle('talking', talking);
    },
    ended(why) {
      if (live()) finish('ended', why);
    },
  };
}

// ---- this participant's own buttons ----------------------------------------------------------------

function showSelfMute(muted: boolean): void {
  byId('meeting-mute').setAttribute('aria-pressed', String(muted));
  byId('meeting-mute').textContent = muted ? 'Unmute' : 'Mute';
}

/** A soft mute through the focus (others see it; Janus stops forwarding), and the track off here too; a guest's track only. */
async function toggleMute(): Promise<void> {
  const c = current;
  if (c?.room === undefined) return;
  const muted = byId('meeting-mute').getAttribute('aria-pressed') !== 'true';
  if (c.guest) {
    for (const t of c.local?.getAudioTracks() ?? []) t.enabled = !muted;
    showSelfMute(muted);
    return;
  }
  try {
    await api(path(c.meetingId, `/participants/${c.participant.id}/mute`), c.token(), { method: 'POST', body: { audio: muted } });
  } catch (err) {
    if (err instanceof ApiError && err.status === 403 && !muted) throw new Error('A moderator muted you: only a moderator may unmute you');
    throw err;
  }
  for (const t of c.local?.getAudioTracks() ?? []) t.enabled = !muted;
  showSelfMute(muted);
}

function toggleCamera(): void {
  const b = byId('meeting-camera');
  const off = b.getAttribute('aria-pressed') !== 'true';
  for (const t of current?.local?.getVideoTracks() ?? []) t.enabled = !off;
  b.setAttribute('aria-pressed', String(off));
}

/**
 * The screen instead of the camera on our one video feed. The focus grants each participant one feed id (its
 * moderation and kick act on it), so the screen is not a second publisher: the camera comes back when it stops.
 */
async function toggleShare(): Promise<void> {
  const c = current;
  if (c?.room === undefined || c.local === undefined) return;
  const camera = c.local.getVideoTracks()[0];
  if (c.screen !== undefined) {
    c.screen.stop();
    c.screen = undefined;
    if (camera !== undefined) await c.room.replaceVideo(camera);
    byId('meeting-share').setAttribute('aria-pressed', 'false');
    return;
  }
  const display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const screen = display.getVideoTracks()[0];
  if (screen === undefined) return;
  c.screen = screen;
  await c.room.replaceVideo(screen);
  byId('meeting-share').setAttribute('aria-pressed', 'true');
  // the browser's own "Stop sharing" ends the track: the camera again
  screen.addEventListener('ended', () => {
    if (c.screen === screen) void toggleShare();
  });
}

// ---- moderation ------------------------------------------------------------------------------------

async function moderate(p: Participant, mute: boolean): Promise<void> {
  const c = current!;
  await api(path(c.meetingId, `/participants/${p.id}/mute`), c.token(), { method: 'POST', body: { audio: mute } });
}

async function kick(p: Participant): Promise<void> {
  const c = current!;
  await api(path(c.meetingId, `/participants/${p.id}`), c.token(), { method: 'DELETE' });
  await pollParticipants();
}

async function muteAll(): Promise<void> {
  const c = current!;
  await api(path(c.meetingId, '/mute-all'), c.token(), { method: 'POST', body: { media: 'audio', allowUnmute: true } });
  host.say('Everyone is muted (each may unmute)');
}

async function toggleLock(): Promise<void> {
  const c = current!;
  const { locked } = await api<{ locked: boolean }>(path(c.meetingId, '/lock'), c.token(), { method: c.locked ? 'DELETE' : 'POST' });
  c.locked = locked;
  byId('meeting-lock').setAttribute('aria-pressed', String(locked));
  byId('meeting-lock').textContent = locked ? 'Unlock' : 'Lock';
}

// ---- leaving ---------------------------------------------------------------------------------------

/**
 * Hangs up here, then leaves on the server (its Janus token revoked, its feed kicked): in that order, so that the
 * kick Janus then sends is not taken for a moderator's. `keepalive` lets the request outlive a closing page.
 */
async function leave(): Promise<void> {
  const c = current;
  if (c === undefined) return;
  finish('left', 'you left the meeting');
  const token = c.token();
  const res = await fetch(path(c.meetingId, `/participants/${c.participant.id}`), {
    method: 'DELETE', keepalive: true, headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  }).catch(() => undefined);
  if (res !== undefined && !res.ok) host.say(`Leaving: the server answered ${res.status}`, true);
}

/** Everything of the current meeting stopped: room, tracks, timers, tiles. */
function finish(state: string, why: string): void {
  const c = current;
  current = undefined;
  if (c !== undefined) {
    window.clearInterval(c.pollTimer);
    void c.room?.leave();
    for (const t of c.local?.getTracks() ?? []) t.stop();
    c.screen?.stop();
  }
  for (const tile of tiles.values()) tile.el.remove();
  tiles.clear();
  byId('moderator').hidden = true;
  byId('lobby').replaceChildren();
  showSelfMute(false);
  setState(state, why);
  host.say(`Meeting: ${why}`, state === 'denied' || state === 'ended');
  showJoinForm(); // the link's page may join again
}

// ---- wiring ----------------------------------------------------------------------------------------

function on(id: string, event: 'click' | 'submit', action: () => Promise<void> | void): void {
  byId(id).addEventListener(event, (e) => {
    e.preventDefault();
    Promise.resolve(action()).catch((err: unknown) => host.say(reason(err), true));
  });
}

/** Wires the meeting elements of the page; a `?meeting=` link shows its join form at once. */
export function initMeetings(h: MeetingHost): void {
  host = h;
  on('meeting-create', 'submit', createMeeting);
  on('meetings-refresh', 'click', listMeetings);
  on('join-form', 'submit', joinFromForm);
  on('meeting-mute', 'click', toggleMute);
  on('meeting-camera', 'click', toggleCamera);
  on('meeting-share', 'click', toggleShare);
  on('meeting-leave', 'click', leave);
  on('mute-all', 'click', muteAll);
  on('meeting-lock', 'click', toggleLock);
  byId('meeting-share').hidden = navigator.mediaDevices?.getDisplayMedia === undefined;
  window.addEventListener('pagehide', () => void leave());
  showJoinForm();
}

/** The user signed in: its meetings, and the link's form joins as the user. */
export function meetingsSignedIn(user: string): void {
  me = user;
  listMeetings().catch((err: unknown) => host.say(`Cannot list the meetings: ${reason(err)}`, true));
  void describeLinked();
}
