/**
 * The softphone page: SIP.js in the browser against this softswitch.
 *
 * Sign-in takes user@domain and the SIP password: `POST /v1/auth/token` (password grant) gives the API token for
 * the chat, history and ICE-server routes; the same password answers the digest challenges of the REGISTER and
 * INVITE (RFC 3261 §22). The page registers over the server's SIP WebSocket (RFC 7118; the URL comes from
 * /console/config.json: wss for an https page, ws allowed for an http one), then:
 * - calls: a user (`bob@example.com`, or just `bob` in the page's domain) or a number; answer, decline, hang up,
 *   mute (the sender's track off, no re-INVITE), hold (a re-INVITE with sendonly/inactive, RFC 3264 §8.4), DTMF
 *   as RFC 4733 telephone-events, else SIP INFO (application/dtmf-relay);
 * - ICE servers from `GET /v1/ice-servers` (and the X-Ice-Servers header of the REGISTER's 200), fetched again
 *   before a call once half their life is gone;
 * - chat: SIP MESSAGE both ways (the server stores and delivers, one X-Message-Id each, shown once), the
 *   conversations and their messages from `GET /v1/conversations`;
 * - presence of the contacts watched (SUBSCRIBE Event: presence, PIDF);
 * - recent calls from `GET /v1/calls`;
 * - meetings (meeting.ts): the user's meetings, and the page a join link `?meeting=<id>` opens.
 * The password stays in memory only; nothing a peer or the server sends is inserted as HTML.
 */
import {
  Invitation, Inviter, Messager, Registerer, RegistererState, type Session, SessionState, Subscriber, UserAgent,
} from 'sip.js/lib/api/index.js';
import type { URI } from 'sip.js/lib/grammar/index.js';
import type { SessionDescriptionHandler, SessionDescriptionHandlerOptions } from 'sip.js/lib/platform/web/index.js';
import { api, byId, fillList, reason, timeOf } from './dom.js';
import { initMeetings, meetingsSignedIn } from './meeting.js';

interface ConsoleConfig { domain: string; webSockets: string[] }
interface TokenAnswer { access_token: string; refresh_token: string; expires_in: number; user: string }
interface IceAnswer { iceServers: RTCIceServer[]; ttl: number; expiresAt: string }
interface Conversation { id: string; kind: string; uri: string; name?: string; unread: number; last?: ChatMessage }
interface ChatMessage { id: string; sender: string; body: string; contentType: string; createdAt: string }
interface Party { user?: string; domain?: string; number?: string; uri?: string }
interface CallRecord { caller: Party; callee: Party; direction: string; disposition: string; startedAt: string; duration?: number }

const STATS_MS = 1000;
const CONTACTS_KEY = 'softswitch.contacts';
const AUDIO_ONLY = { constraints: { audio: true, video: false } };

const status = byId('status');
const regState = byId('reg-state');
const callState = byId('call-state');
const callStats = byId('call-stats');

let config: ConsoleConfig = { domain: '', webSockets: [] };
let me = '';
let token: string | undefined;
let refreshTimer: number | undefined;
let ice: { answer: IceAnswer; at: number } | undefined;
let ua: UserAgent | undefined;
let registerer: Registerer | undefined;
let session: Session | undefined;
let statsTimer: number | undefined;
let muted = false;
let held = false;
/** X-Message-Id of every message shown: delivery is at least once. */
const shown = new Set<string>();
const watchers = new Map<string, Subscriber>();
const presence = new Map<string, string>();

function say(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle('error', error);
}

function setState(el: HTMLElement, state: string, text = state): void {
  el.dataset.state = state;
  el.textContent = text;
}

/** `bob@example.com` as is; `bob` or a number in the page's domain; a `sip:` URI as is. */
function targetUri(input: string): URI | undefined {
  const t = input.trim().replace(/^sips?:/i, '');
  const number = t.replace(/[\s().-]/g, '');
  const address = t.includes('@') ? t : `${/^\+?\d+$/.test(number) ? number : t}@${config.domain}`;
  return UserAgent.makeURI(`sip:${address}`);
}

const userOf = (uri: URI): string => `${uri.user ?? ''}@${uri.host}`;
const partyText = (p: Party): string => (p.user !== undefined ? `${p.user}@${p.domain ?? ''}` : p.number ?? p.uri ?? '?');

// ---- API token and ICE servers --------------------------------------------------------------------

/** Keeps the access token fresh with the refresh token (RFC 6749 §6), a little before it expires. */
function scheduleRefresh(answer: TokenAnswer): void {
  window.clearTimeout(refreshTimer);
  refreshTimer = window.setTimeout(() => {
    api<TokenAnswer>('/v1/auth/token', undefined, { method: 'POST', body: { grant_type: 'refresh_token', refresh_token: answer.refresh_token } })
      .then((next) => {
        token = next.access_token;
        scheduleRefresh(next);
      })
      .catch((err: unknown) => say(`Cannot refresh the API token: ${reason(err)}`, true));
  }, Math.max(10, answer.expires_in * 0.8) * 1000);
}

function useIce(answer: IceAnswer): void {
  ice = { answer, at: Date.now() };
  // SIP.js reads these options each time it makes a peer connection.
  if (ua !== undefined) ua.configuration.sessionDescriptionHandlerFactoryOptions = { peerConnectionConfiguration: { iceServers: answer.iceServers } };
}

/** Fresh ICE servers when half the credential's life is gone (README: NAT traversal); none is not an error. */
async function freshIce(): Promise<void> {
  if (ice !== undefined && Date.now() - ice.at < (ice.answer.ttl * 1000) / 2) return;
  try {
    useIce(await api<IceAnswer>('/v1/ice-servers', token));
  } catch (err) {
    say(`No ICE servers (${reason(err)}): calls work on reachable networks only`, true);
  }
}

// ---- sign-in and registration -----------------------------------------------------------------------

function webSocketUrl(): string | undefined {
  const secure = config.webSockets.find((u) => u.startsWith('wss:'));
  // An https page may only open wss (mixed content); an http one prefers ws, whose certificate needs no trust.
  if (location.protocol === 'https:') return secure;
  return config.webSockets.find((u) => u.startsWith('ws:')) ?? secure;
}

async function signIn(user: string, password: string): Promise<void> {
  const address = user.includes('@') ? user : `${user}@${config.domain}`;
  say('Signing in…');
  const answer = await api<TokenAnswer>('/v1/auth/token', undefined, { method: 'POST', body: { grant_type: 'password', username: address, password } });
  token = answer.access_token;
  me = answer.user;
  scheduleRefresh(answer);
  const server = webSocketUrl();
  const uri = UserAgent.makeURI(`sip:${me}`);
  if (server === undefined || uri === undefined) throw new Error('the server has no SIP WebSocket listener this page can use');
  ua = new UserAgent({
    uri,
    transportOptions: { server },
    authorizationUsername: me.slice(0, me.lastIndexOf('@')),
    authorizationPassword: password,
    userAgentString: 'softswitch-console',
    logBuiltinEnabled: false,
    delegate: {
      onInvite: (invitation) => incoming(invitation),
      onMessage: (message) => {
        void message.accept();
        const r = message.request;
        receive(r.getHeader('X-Message-Id'), userOf(r.from.uri), userOf(r.to.uri), r.body);
      },
      onDisconnect: (err) => {
        setState(regState, 'disconnected', 'disconnected');
        if (err !== undefined) say(`SIP connection lost: ${err.message}`, true);
      },
    },
  });
  await freshIce();
  try {
    await register(ua);
  } catch (err) {
    // A failed sign-in leaves nothing running: the next try starts afresh.
    await ua.stop().catch(() => {});
    ua = undefined;
    window.clearTimeout(refreshTimer);
    throw err;
  }
  byId('login').hidden = true;
  byId('phone').hidden = false;
  byId('me').textContent = me;
  say(`Signed in as ${me}`);
  for (const contact of savedContacts()) watch(contact);
  void loadConversations();
  void loadHistory();
  meetingsSignedIn(me);
}

/** Connects the WebSocket and registers; resolves on the 200 (whose X-Ice-Servers it takes), rejects on a refusal. */
async function register(agent: UserAgent): Promise<void> {
  await agent.start();
  const r = new Registerer(agent, { expires: 300 });
  registerer = r;
  r.stateChange.addListener((s) => {
    if (s === RegistererState.Registered) setState(regState, 'registered', `registered as ${me}`);
    else setState(regState, s.toLowerCase());
  });
  await new Promise<void>((resolve, reject) => {
    r.register({
      requestDelegate: {
        onAccept: (response) => {
          const header = response.message.getHeader('X-Ice-Servers');
          if (header !== undefined) {
            try {
              useIce(JSON.parse(header) as IceAnswer);
            } catch {
              // a malformed header: keep the ones from /v1/ice-servers
            }
          }
          resolve();
        },
        onReject: (response) => reject(new Error(`REGISTER refused: ${response.message.statusCode} ${response.message.reasonPhrase}`)),
      },
    }).catch(reject);
  });
}

async function signOut(): Promise<void> {
  window.clearTimeout(refreshTimer);
  hangUp();
  for (const w of watchers.values()) w.dispose().catch(() => {});
  watchers.clear();
  try {
    await registerer?.unregister();
    await ua?.stop();
  } catch {
    // the connection may be gone already
  }
  // Ends this session on the server: the access token and its refresh token stop working (DELETE /v1/auth/token).
  if (token !== undefined) await api('/v1/auth/token', token, { method: 'DELETE' }).catch(() => {});
  token = undefined;
  location.reload();
}

// ---- calls ------------------------------------------------------------------------------------------

function sdhOf(s: Session): SessionDescriptionHandler | undefined {
  return s.sessionDescriptionHandler as SessionDescriptionHandler | undefined;
}

/** Shows a call and follows its state until it ends. */
function track(s: Session, peer: string): void {
  session = s;
  muted = false;
  held = false;
  byId('mute').setAttribute('aria-pressed', 'false');
  byId('hold').setAttribute('aria-pressed', 'false');
  byId('call-peer').textContent = peer;
  byId('in-call').hidden = false;
  setState(callState, 'calling', s instanceof Inviter ? 'calling…' : 'answering…');
  s.stateChange.addListener((state) => {
    if (state === SessionState.Established) {
      setState(callState, 'connected');
      const sdh = sdhOf(s);
      const audio = byId<HTMLAudioElement>('remote-audio');
      if (sdh?.remoteMediaStream !== undefined) {
        audio.srcObject = sdh.remoteMediaStream;
        audio.play().catch(() => say('Click the page to hear the call (the browser blocked autoplay)'));
      }
      statsTimer = window.setInterval(() => void showStats(s), STATS_MS);
    } else if (state === SessionState.Terminated) {
      window.clearInterval(statsTimer);
      if (session === s) session = undefined;
      setState(callState, 'ended', 'ended');
      byId('in-call').hidden = true;
      byId('incoming').hidden = true;
      void loadHistory();
    }
  });
}

/** RTCPeerConnection.getStats: audio packets received and sent, shown and kept in data attributes. */
async function showStats(s: Session): Promise<void> {
  const pc = sdhOf(s)?.peerConnection;
  if (pc === undefined) return;
  let received = 0;
  let sent = 0;
  let energy = 0;
  (await pc.getStats()).forEach((r: { type: string; kind?: string; packetsReceived?: number; packetsSent?: number; totalAudioEnergy?: number }) => {
    if (r.kind !== 'audio') return;
    if (r.type === 'inbound-rtp') {
      received += r.packetsReceived ?? 0;
      energy += r.totalAudioEnergy ?? 0;
    }
    if (r.type === 'outbound-rtp') sent += r.packetsSent ?? 0;
  });
  callStats.dataset.packetsReceived = String(received);
  callStats.dataset.packetsSent = String(sent);
  // What was heard (W3C webrtc-stats: the sum of squared levels × duration): it stops growing while the other side is muted.
  callStats.dataset.audioEnergy = String(energy);
  callStats.textContent = `audio: ${received} packets in, ${sent} out`;
}

async function call(input: string): Promise<void> {
  if (ua === undefined || session !== undefined) return;
  const target = targetUri(input);
  if (target === undefined) {
    say(`${input} is not an address or a number`, true);
    return;
  }
  await freshIce();
  const inviter = new Inviter(ua, target, { sessionDescriptionHandlerOptions: AUDIO_ONLY });
  track(inviter, userOf(target));
  await inviter.invite({
    requestDelegate: {
      onReject: (r) => say(`Call refused: ${r.message.statusCode} ${r.message.reasonPhrase}`, true),
    },
  });
}

function incoming(invitation: Invitation): void {
  if (session !== undefined) {
    void invitation.reject({ statusCode: 486 });
    return;
  }
  const from = userOf(invitation.remoteIdentity.uri);
  byId('incoming-from').textContent = invitation.remoteIdentity.displayName ? `${invitation.remoteIdentity.displayName} <${from}>` : from;
  byId('incoming').hidden = false;
  track(invitation, from);
  setState(callState, 'ringing', 'ringing');
}

async function answer(): Promise<void> {
  if (!(session instanceof Invitation)) return;
  byId('incoming').hidden = true;
  await freshIce();
  await session.accept({ sessionDescriptionHandlerOptions: AUDIO_ONLY });
}

function hangUp(): void {
  const s = session;
  if (s === undefined) return;
  const done = (p: Promise<unknown>) => p.catch((err: unknown) => say(`Hang-up failed: ${reason(err)}`, true));
  if (s.state === SessionState.Established) void done(s.bye());
  else if (s instanceof Inviter) void done(s.cancel());
  else if (s instanceof Invitation && s.state === SessionState.Initial) void done(s.reject());
}

function toggleMute(): void {
  const pc = session === undefined ? undefined : sdhOf(session)?.peerConnection;
  if (pc === undefined) return;
  muted = !muted;
  for (const sender of pc.getSenders()) if (sender.track !== null) sender.track.enabled = !muted;
  byId('mute').setAttribute('aria-pressed', String(muted));
}

async function toggleHold(): Promise<void> {
  const s = session;
  if (s === undefined || s.state !== SessionState.Established) return;
  held = !held;
  const options: SessionDescriptionHandlerOptions = { hold: held };
  s.sessionDescriptionHandlerOptionsReInvite = options;
  await s.invite({ requestDelegate: { onReject: () => (held = !held) } });
  byId('hold').setAttribute('aria-pressed', String(held));
  setState(callState, held ? 'held' : 'connected', held ? 'on hold' : 'connected');
}

/** RFC 4733 through the audio sender's RTCDTMFSender; SIP INFO when the call has none (e.g. no telephone-event). */
function dtmf(tone: string): void {
  const s = session;
  if (s === undefined || s.state !== SessionState.Established) return;
  if (sdhOf(s)?.sendDtmf(tone) === true) {
    say(`DTMF ${tone} sent (RFC 4733)`);
    return;
  }
  s.info({ requestOptions: { body: { contentDisposition: 'render', contentType: 'application/dtmf-relay', content: `Signal=${tone}\r\nDuration=160` } } })
    .then(() => say(`DTMF ${tone} sent (SIP INFO)`))
    .catch((err: unknown) => say(`DTMF ${tone} not sent: ${reason(err)}`, true));
}

// ---- chat -------------------------------------------------------------------------------------------

function appendChat(peer: string, sender: string, body: string): void {
  const li = document.createElement('li');
  const mine = sender === me;
  li.className = mine ? 'mine' : 'theirs';
  li.dataset.peer = peer;
  li.textContent = mine ? `to ${peer}: ${body}` : `${sender}: ${body}`;
  byId('chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

/** A MESSAGE the server delivered: from another user, or our own sent from another device (its carbon copy). */
function receive(id: string | undefined, from: string, to: string, body: string | undefined): void {
  if (id !== undefined) {
    if (shown.has(id)) return;
    shown.add(id);
  }
  const peer = from === me || to.startsWith('group-') ? to : from;
  const replyTo = byId<HTMLInputElement>('chat-to');
  if (replyTo.value === '') replyTo.value = peer;
  appendChat(peer, from, body ?? '');
  void loadConversations();
}

async function send(to: string, text: string): Promise<void> {
  const target = targetUri(to);
  if (ua === undefined || target === undefined) return;
  // Shown once the server took it (202 Accepted: stored, RFC 3428 §7), not before.
  await new Messager(ua, target, text, 'text/plain').message({
    requestDelegate: {
      onAccept: () => {
        appendChat(userOf(target), me, text);
        void loadConversations();
      },
      onReject: (r) => say(`Message refused: ${r.message.statusCode} ${r.message.reasonPhrase}`, true),
    },
  });
}

async function loadConversations(): Promise<void> {
  try {
    const { conversations } = await api<{ conversations: Conversation[] }>('/v1/conversations?limit=20', token);
    fillList(byId('conversations'), conversations, (c) => {
      const name = c.name ?? c.uri.replace(/^sip:/, '');
      return `${name}${c.unread > 0 ? ` (${c.unread})` : ''}${c.last === undefined ? '' : ` — ${c.last.body.slice(0, 60)}`}`;
    }, (li, c) => li.addEventListener('click', () => void openConversation(c)));
  } catch (err) {
    say(`Cannot read the conversations: ${reason(err)}`, true);
  }
}

async function openConversation(c: Conversation): Promise<void> {
  byId<HTMLInputElement>('chat-to').value = c.uri.replace(/^sip:/, '');
  const { messages } = await api<{ messages: ChatMessage[] }>(`/v1/conversations/${encodeURIComponent(c.id)}/messages?limit=50`, token);
  byId('chat-log').replaceChildren();
  for (const m of messages) appendChat(c.uri.replace(/^sip:/, ''), m.sender, m.body);
  const last = messages.at(-1);
  if (last !== undefined) await api(`/v1/conversations/${encodeURIComponent(c.id)}/read`, token, { method: 'POST', body: { messageId: last.id } }).catch(() => {});
}

// ---- presence ---------------------------------------------------------------------------------------

function savedContacts(): string[] {
  try {
    const all = JSON.parse(localStorage.getItem(CONTACTS_KEY) ?? '{}') as Record<string, string[]>;
    return Array.isArray(all[me]) ? all[me] : [];
  } catch {
    return [];
  }
}

function saveContacts(): void {
  let all: Record<string, string[]> = {};
  try {
    all = JSON.parse(localStorage.getItem(CONTACTS_KEY) ?? '{}') as Record<string, string[]>;
  } catch {
    // start over
  }
  all[me] = [...watchers.keys()];
  localStorage.setItem(CONTACTS_KEY, JSON.stringify(all));
}

/** What a PIDF document (RFC 3863, RPID activities RFC 4480) says: open/closed, the activities, the note. */
function pidfText(body: string): string {
  const doc = new DOMParser().parseFromString(body, 'application/xml');
  const basic = doc.getElementsByTagNameNS('*', 'basic')[0]?.textContent?.trim();
  const activities = [...doc.getElementsByTagNameNS('*', 'activities')].flatMap((a) => [...a.children].map((c) => c.localName));
  const note = doc.getElementsByTagNameNS('*', 'note')[0]?.textContent?.trim();
  return [basic === 'open' ? 'online' : 'offline', ...activities, ...(note ? [`“${note}”`] : [])].join(' · ');
}

function showPresence(): void {
  fillList(byId('contacts'), [...watchers.keys()], (c) => `${c}: ${presence.get(c) ?? '…'}`, (li, c) => {
    li.dataset.contact = c;
    li.dataset.presence = presence.get(c) ?? '';
  });
}

function watch(contact: string): void {
  const target = targetUri(contact);
  if (ua === undefined || target === undefined) return;
  const key = userOf(target);
  if (watchers.has(key)) return;
  const subscriber = new Subscriber(ua, target, 'presence', { expires: 600 });
  subscriber.delegate = {
    onNotify: (notification) => {
      void notification.accept();
      presence.set(key, notification.request.body ? pidfText(notification.request.body) : 'unknown');
      showPresence();
    },
  };
  watchers.set(key, subscriber);
  saveContacts();
  showPresence();
  subscriber.subscribe().catch((err: unknown) => say(`Cannot watch ${key}: ${reason(err)}`, true));
}

// ---- history ----------------------------------------------------------------------------------------

async function loadHistory(): Promise<void> {
  try {
    const { calls } = await api<{ calls: CallRecord[] }>('/v1/calls?limit=20', token);
    fillList(byId('history'), calls, (c) =>
      `${timeOf(c.startedAt)}  ${partyText(c.caller)} → ${partyText(c.callee)}  ${c.disposition}${c.duration === undefined ? '' : ` ${c.duration} s`}`);
  } catch (err) {
    say(`Cannot read the call history: ${reason(err)}`, true);
  }
}

// ---- wiring -----------------------------------------------------------------------------------------

function form(id: string, action: () => Promise<void> | void): void {
  byId<HTMLFormElement>(id).addEventListener('submit', (e) => {
    e.preventDefault();
    Promise.resolve(action()).catch((err: unknown) => say(reason(err), true));
  });
}

function click(id: string, action: () => Promise<void> | void): void {
  byId(id).addEventListener('click', () => {
    Promise.resolve(action()).catch((err: unknown) => say(reason(err), true));
  });
}

form('login', async () => {
  const password = byId<HTMLInputElement>('login-password');
  try {
    await signIn(byId<HTMLInputElement>('login-user').value.trim(), password.value);
  } finally {
    password.value = '';
  }
});
form('dial', () => call(byId<HTMLInputElement>('dial-target').value));
form('chat', async () => {
  const text = byId<HTMLInputElement>('chat-text');
  await send(byId<HTMLInputElement>('chat-to').value, text.value);
  text.value = '';
});
form('watch', () => {
  const input = byId<HTMLInputElement>('watch-user');
  watch(input.value);
  input.value = '';
});
click('answer', answer);
click('decline', () => {
  if (session instanceof Invitation) void session.reject({ statusCode: 603 });
});
click('hangup', hangUp);
click('mute', toggleMute);
click('hold', toggleHold);
click('history-refresh', loadHistory);
click('logout', signOut);
const keypad = byId('keypad');
for (const tone of '123456789*0#') {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = tone;
  b.dataset.dtmf = tone;
  b.addEventListener('click', () => dtmf(tone));
  keypad.append(b);
}

initMeetings({ say, token: () => token });

api<ConsoleConfig>('/console/config.json', undefined)
  .then((c) => {
    config = c;
    byId<HTMLInputElement>('login-user').placeholder = `alice@${c.domain}`;
    say(c.webSockets.length === 0 ? 'This server has no SIP WebSocket listener (sip.listen ws:/wss:)' : 'Sign in', c.webSockets.length === 0);
  })
  .catch((err: unknown) => say(`Cannot read /console/config.json: ${reason(err)}`, true));
