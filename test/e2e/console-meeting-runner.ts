/**
 * The console's meeting page in real browsers through a real Janus, run by console-meeting.test.ts inside the
 * peers' namespace of a JanusNetns: `ip netns exec PEERS node dist/test/e2e/console-meeting-runner.js OUTDIR`, with
 * the Janus node (in the other namespace, across the veth pair) in MEETING_RUNNER_JANUS. The softswitch (in this
 * process, on loopback) and headless Chromium (fake camera and microphone) live here; the pages talk to Janus on
 * its veth address, where its media is.
 *
 * Alice signs in and creates a meeting on the Meetings card, joins it (the owner: admitted at once); Bob opens the
 * join link, signs in and joins: he waits in the lobby until Alice admits him; a guest, Gina, opens the link without
 * an account and joins with her name: admitted too. Each page must show the others' tiles playing video; Alice mutes
 * Bob from his tile; Bob leaves. The runner does not judge: it prints what it saw as one line
 * `MEETING-RESULT {json}` and the test asserts. A step that cannot go on ends the run with `{ error }`. The browser is
 * killed and the server stopped on every path, and the runner kills itself after MEETING_RUNNER_TIMEOUT_MS.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Chromium, type Page } from '../helpers/chromium.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const DOMAIN = 'example.com';
const RUNNER_TIMEOUT_MS = Number(process.env.MEETING_RUNNER_TIMEOUT_MS ?? 150_000);
/** How long one step may take (the machine may be busy: a 2-core CI runner with other suites). */
const WAIT_MS = 20_000;
/** How long a tile's video is watched to see it advance. */
const PLAY_MS = 1500;

export interface RunnerJanus {
  url: string;
  adminUrl: string;
  adminSecret: string;
}

/** A remote tile as a page shows it, and how its video played. */
export interface TileReport {
  name: string;
  width: number;
  height: number;
  /** Seconds the video element's currentTime advanced in PLAY_MS. */
  advanced: number;
  audioMuted: boolean;
}

export interface MeetingResult {
  /** The Content-Security-Policy of /console/: its connect-src must let the page reach the Janus node. */
  csp?: string;
  meeting?: { id: string; link: string; listed: string };
  /** Bob's join form before and after he signed in (its button). */
  joinButton?: { before: string; after: string };
  /** Bob's meeting state after he asked to join, and the names Alice's lobby listed. */
  bobWaiting?: { state: string; lobby: string[] };
  /** Whether each page shows the moderator controls. */
  moderatorPanel?: { alice: boolean; bob: boolean; gina: boolean };
  /** Each page's remote tiles once everyone is in. */
  tiles?: Record<'alice' | 'bob' | 'gina', TileReport[]>;
  /** After Alice muted Bob from his tile: what Bob's own tile and Gina's tile of Bob say. */
  bobMuted?: { ownTile: boolean; onGina: boolean };
  /** After Bob left: the remote tiles' names on Alice's and Gina's pages, and Bob's meeting state. */
  afterBobLeft?: { alice: string[]; gina: string[]; bobState: string };
  /** Whether Alice's page highlighted a tile while its participant talked (the fake microphone beeps). */
  talkingSeen?: boolean;
  /** Alice locked the meeting: her Lock button's text, and Bob's status line when he tries to join again. */
  locked?: { button: string; bobStatus: string };
  /** Alice kicked Gina: Gina's meeting state and what her page says, and Alice's remote tiles after. */
  ginaKicked?: { ginaState: string; ginaSays: string; aliceTiles: string[] };
  /** Alice pressed Mute all: Bob's own tile and Alice's tile of Bob; then Bob unmuted himself, seen on Alice's page. */
  muteAll?: { bobOwnTile: boolean; onAlice: boolean; unmutedBySelfOnAlice: boolean };
  screenshots?: string[];
  /** ms from the start of the scenario at the end of each step, for a slow run's diagnosis. */
  steps?: Record<string, number>;
  error?: string;
  logs?: string;
}

/**
 * A loud 440 Hz tone (half of full scale, 48 kHz mono 16-bit PCM), a second long, that the fake microphone loops:
 * its beep is silent most of the time, and Janus calls a publisher talking only when the average audio level of
 * its packets over two seconds is loud enough (the room's audio-level events, README "Joining and the lobby").
 */
function toneWav(): Buffer {
  const rate = 48_000;
  const pcm = Buffer.alloc(rate * 2);
  for (let i = 0; i < rate; i++) pcm.writeInt16LE(Math.round(16_000 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28); // bytes a second
  header.writeUInt16LE(2, 32); // bytes a frame
  header.writeUInt16LE(16, 34); // bits a sample
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

const result: MeetingResult = {};
const pages: Array<[string, Page]> = [];
let current: Chromium | undefined;

const text = (id: string): string => `document.getElementById(${JSON.stringify(id)}).textContent`;
const meetingState = (page: Page) => page.evaluate<string>(`document.getElementById('meeting-state').dataset.state`);
const remoteNames = (page: Page) => page.evaluate<string[]>(`[...document.querySelectorAll('#tiles .tile.remote')].map((t) => t.dataset.name)`);

async function signIn(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.goto(url);
  await page.waitFor(`${text('status')} === 'Sign in'`, `${user}'s page read /console/config.json`, WAIT_MS, text('status'));
  await page.fill('login-user', user);
  await page.fill('login-password', password);
  await page.click('login-submit');
  await page.waitFor(`document.getElementById('reg-state').dataset.state === 'registered'`, `${user} registered`, 15_000,
    `${text('status')} + ' / ' + ${text('reg-state')}`);
}

async function waitState(page: Page, who: string, state: string, timeoutMs = WAIT_MS): Promise<void> {
  await page.waitFor(`document.getElementById('meeting-state').dataset.state === ${JSON.stringify(state)}`, `${who}'s meeting state is ${state}`, timeoutMs,
    `${text('meeting-state')} + ' / ' + ${text('status')}`);
}

/** Admits the one waiting in Alice's lobby under `name`. */
async function admit(alice: Page, name: string): Promise<string[]> {
  const lobby = await alice.waitFor<string[]>(
    `(() => { const items = [...document.querySelectorAll('#lobby li')]; return items.some((li) => li.textContent.startsWith(${JSON.stringify(name)})) && items.map((li) => li.querySelector('span').textContent.trim()); })()`,
    `${name} listed in Alice's lobby`, WAIT_MS, text('lobby'));
  await alice.evaluate(`[...document.querySelectorAll('#lobby li')].find((li) => li.textContent.startsWith(${JSON.stringify(name)})).querySelector('button.admit').click()`);
  return lobby;
}

/**
 * Waits until the page shows a playing tile for each name (video decoded: videoWidth > 0), then measures how far
 * each tile's currentTime advances in PLAY_MS.
 */
async function playingTiles(page: Page, who: string, names: string[]): Promise<TileReport[]> {
  await page.waitFor(
    `(() => { const tiles = [...document.querySelectorAll('#tiles .tile.remote')];
      return ${JSON.stringify(names)}.every((n) => tiles.some((t) => t.dataset.name === n && t.querySelector('video').videoWidth > 0)); })()`,
    `${who}'s page plays the video of ${names.join(', ')}`, 30_000,
    `[...document.querySelectorAll('#tiles .tile')].map((t) => t.dataset.name + ':' + t.querySelector('video').videoWidth + ':' + t.querySelector('video').readyState).join(' ') + ' / ' + ${text('status')}`);
  const read = `[...document.querySelectorAll('#tiles .tile.remote')].map((t) => { const v = t.querySelector('video');
    return { name: t.dataset.name, width: v.videoWidth, height: v.videoHeight, time: v.currentTime, audioMuted: t.dataset.audioMuted === 'true' }; })`;
  type Seen = { name: string; width: number; height: number; time: number; audioMuted: boolean };
  const first = await page.evaluate<Seen[]>(read);
  await sleep(PLAY_MS);
  const second = await page.evaluate<Seen[]>(read);
  return second.map((s) => ({
    name: s.name, width: s.width, height: s.height, audioMuted: s.audioMuted,
    advanced: Math.round((s.time - (first.find((f) => f.name === s.name)?.time ?? s.time)) * 1000) / 1000,
  }));
}

async function scenario(ts: TestServer, browser: Chromium, outDir: string): Promise<void> {
  const started = performance.now();
  const steps: Record<string, number> = {};
  result.steps = steps;
  const mark = (step: string): void => {
    steps[step] = Math.round(performance.now() - started);
  };
  const base = `http://127.0.0.1:${ts.server.http.boundTo}`;
  result.csp = (await fetch(`${base}/console/`)).headers.get('content-security-policy') ?? '';
  await ts.addUser(`alice@${DOMAIN}`, 'alice-secret');
  await ts.addUser(`bob@${DOMAIN}`, 'bob-secret');
  const alice = await browser.newPage();
  const bob = await browser.newPage();
  const gina = await browser.newPage();
  pages.push(['alice', alice], ['bob', bob], ['gina', gina]);

  // Alice creates a meeting on her Meetings card (the lobby on, as by default) and joins it: the owner goes in.
  await signIn(alice, `${base}/console/`, `alice@${DOMAIN}`, 'alice-secret');
  await alice.fill('meeting-title', 'Standup');
  await alice.click('meeting-create-submit');
  const listed = await alice.waitFor<{ id: string; link: string; listed: string }>(
    `(() => { const li = document.querySelector('#meetings li'); return li && { id: li.dataset.meeting, link: li.dataset.link, listed: li.querySelector('span').textContent.trim() }; })()`,
    'the meeting listed on Alice\'s Meetings card', WAIT_MS, text('status'));
  result.meeting = listed;
  await alice.evaluate(`document.querySelector('#meetings li button.join').click()`);
  await waitState(alice, 'Alice', 'in-meeting', 30_000);
  mark('alice-in');

  // Bob opens the join link: a guest's form first; signed in, the form joins as him and he waits in the lobby.
  const link = `${base}/console/?meeting=${listed.id}`;
  await bob.goto(link);
  const before = await bob.waitFor<string>(`!document.getElementById('meeting-join').hidden && ${text('join-submit')}`, 'Bob\'s page shows the join form', WAIT_MS, text('status'));
  await signIn(bob, link, `bob@${DOMAIN}`, 'bob-secret');
  const after = await bob.waitFor<string>(`(() => { const t = ${text('join-submit')}; return t !== 'Join as a guest' && t; })()`, 'Bob\'s join form names him', WAIT_MS, text('join-submit'));
  result.joinButton = { before, after };
  await bob.click('join-submit');
  await waitState(bob, 'Bob', 'waiting', WAIT_MS);
  const lobby = await admit(alice, 'bob');
  result.bobWaiting = { state: 'waiting', lobby };
  await waitState(bob, 'Bob', 'in-meeting', 30_000);
  mark('bob-in');

  // Gina has no account: a guest token for this meeting, her name, the lobby, admitted.
  await gina.goto(link);
  await gina.waitFor(`!document.getElementById('meeting-join').hidden`, 'Gina\'s page shows the join form', WAIT_MS, text('status'));
  await gina.fill('join-name', 'Gina');
  await gina.click('join-submit');
  await waitState(gina, 'Gina', 'waiting', WAIT_MS);
  await admit(alice, 'Gina');
  await waitState(gina, 'Gina', 'in-meeting', 30_000);
  mark('gina-in');

  // A tile is highlighted while its participant talks (Janus's talking / stopped-talking): watched from now on.
  // (Janus says `talking` once when the level rises and `stopped-talking` when it falls: the tone may have started
  // before the observer.)
  await alice.evaluate(`(() => { const seen = () => { if (document.querySelector('#tiles .tile.talking')) document.body.dataset.talkingSeen = 'true'; };
    seen(); new MutationObserver(seen).observe(document.getElementById('tiles'), { subtree: true, attributes: true, attributeFilter: ['class'] }); })()`);
  const panel = (page: Page) => page.evaluate<boolean>(`!document.getElementById('moderator').hidden`);
  result.moderatorPanel = { alice: await panel(alice), bob: await panel(bob), gina: await panel(gina) };
  result.tiles = {
    alice: await playingTiles(alice, 'Alice', ['bob', 'Gina']),
    bob: await playingTiles(bob, 'Bob', ['alice', 'Gina']),
    gina: await playingTiles(gina, 'Gina', ['alice', 'bob']),
  };
  mark('tiles-playing');
  // before anyone is muted: everyone's tone is loud
  result.talkingSeen = await alice.waitFor<boolean>(`document.body.dataset.talkingSeen === 'true'`, 'a tile highlighted while talking', WAIT_MS)
    .catch(() => false);
  mark('talking');
  result.screenshots = [];
  for (const [name, page] of pages) {
    const file = join(outDir, `meeting-${name}.png`);
    await page.screenshot(file);
    result.screenshots.push(file);
  }

  // Mute all, each may unmute: Janus tells the room; Bob unmutes himself (a soft mute), and the others see it.
  const bobMutedOn = (page: Page, what: string, muted: boolean) => page.waitFor<boolean>(
    `(() => { const t = document.querySelector('#tiles .tile[data-name="bob"]'); return t !== null && t.dataset.audioMuted === '${muted}'; })()`,
    what, WAIT_MS, `${text('tiles')} + ' / ' + ${text('status')}`);
  const bobOwnMuted = (muted: boolean) => bob.waitFor<boolean>(`document.querySelector('#tiles .tile.self').dataset.audioMuted === '${muted}'`,
    `Bob's own tile shows him ${muted ? 'muted' : 'unmuted'}`, WAIT_MS, `document.querySelector('#tiles .tile.self').dataset.audioMuted + ' / ' + ${text('status')}`);
  await alice.click('mute-all');
  const allOwn = await bobOwnMuted(true);
  mark('mute-all-bob-own');
  const allOnAlice = await bobMutedOn(alice, 'Alice\'s page shows Bob muted by Mute all', true);
  mark('mute-all-on-alice');
  await bob.click('meeting-mute');
  await bobOwnMuted(false);
  mark('bob-self-unmuted');
  const unmutedOnAlice = await bobMutedOn(alice, 'Alice\'s page shows Bob unmuted by himself', false);
  result.muteAll = { bobOwnTile: allOwn, onAlice: allOnAlice, unmutedBySelfOnAlice: unmutedOnAlice };
  mark('mute-all');

  // Alice mutes Bob from his tile (a moderator's hard mute): Janus tells the room, every page shows it.
  await alice.waitFor(`(() => { const b = document.querySelector('#tiles .tile[data-name="bob"] button.mute'); return b !== null && (b.click(), true); })()`,
    'Alice\'s page shows a Mute button on Bob\'s tile', WAIT_MS, text('tiles'));
  const ownTile = await bob.waitFor<boolean>(`document.querySelector('#tiles .tile.self').dataset.audioMuted === 'true'`,
    'Bob\'s own tile shows him muted', WAIT_MS, `document.querySelector('#tiles .tile.self').dataset.audioMuted + ' / ' + ${text('status')}`);
  const onGina = await gina.waitFor<boolean>(`document.querySelector('#tiles .tile[data-name="bob"]').dataset.audioMuted === 'true'`,
    'Gina\'s page shows Bob muted', WAIT_MS, text('tiles'));
  result.bobMuted = { ownTile, onGina };
  mark('bob-muted');

  // Bob leaves: his tile goes from the others' pages.
  await bob.click('meeting-leave');
  await waitState(bob, 'Bob', 'left', WAIT_MS);
  for (const [name, page] of [['Alice', alice], ['Gina', gina]] as const) {
    await page.waitFor(`![...document.querySelectorAll('#tiles .tile.remote')].some((t) => t.dataset.name === 'bob')`, `Bob's tile gone from ${name}'s page`, WAIT_MS,
      `[...document.querySelectorAll('#tiles .tile.remote')].map((t) => t.dataset.name).join(' ')`);
  }
  result.afterBobLeft = { alice: await remoteNames(alice), gina: await remoteNames(gina), bobState: await meetingState(bob) };
  mark('bob-left');

  // Alice locks the meeting: Bob, back on the join form, is refused.
  await alice.click('meeting-lock');
  const button = await alice.waitFor<string>(`(() => { const t = ${text('meeting-lock')}; return t === 'Unlock' && t; })()`, 'Alice\'s Lock button turns to Unlock', WAIT_MS, text('meeting-lock'));
  await bob.waitFor(`!document.getElementById('meeting-join').hidden`, 'Bob\'s page shows the join form again', WAIT_MS, text('status'));
  await bob.click('join-submit');
  const bobStatus = await bob.waitFor<string>(`(() => { const s = document.getElementById('status'); return s.classList.contains('error') && s.textContent.startsWith('Not let in') && s.textContent; })()`,
    'Bob\'s page says the locked meeting refused him', WAIT_MS, text('status'));
  result.locked = { button, bobStatus };
  mark('locked');

  // Alice kicks Gina from her tile: Janus tells Gina's page, which ends the meeting there; her tile goes from Alice's.
  await alice.waitFor(`(() => { const b = document.querySelector('#tiles .tile[data-name="Gina"] button.kick'); return b !== null && (b.click(), true); })()`,
    'Alice\'s page shows a Kick button on Gina\'s tile', WAIT_MS, text('tiles'));
  await waitState(gina, 'Gina', 'ended', WAIT_MS);
  await alice.waitFor(`document.querySelectorAll('#tiles .tile.remote').length === 0`, 'Gina\'s tile gone from Alice\'s page', WAIT_MS,
    `[...document.querySelectorAll('#tiles .tile.remote')].map((t) => t.dataset.name).join(' ')`);
  result.ginaKicked = { ginaState: await meetingState(gina), ginaSays: await gina.evaluate<string>(text('meeting-state')), aliceTiles: await remoteNames(alice) };
  mark('gina-kicked');

}

async function main(): Promise<void> {
  const outDir = process.argv[2];
  const janus = JSON.parse(process.env.MEETING_RUNNER_JANUS ?? 'null') as RunnerJanus | null;
  if (outDir === undefined || janus === null) throw new Error('usage: MEETING_RUNNER_JANUS={url,adminUrl,adminSecret} console-meeting-runner.js OUTDIR');
  const suicide = setTimeout(() => {
    result.error = `the runner did not finish in ${RUNNER_TIMEOUT_MS} ms`;
    finish(1);
  }, RUNNER_TIMEOUT_MS);
  suicide.unref();
  let ts: TestServer | undefined;
  let browser: Chromium | undefined;
  let tone: string | undefined;
  try {
    ts = await startTestServer({ meetings: { janus: [janus] } });
    tone = join(outDir, 'tone.wav');
    writeFileSync(tone, toneWav());
    browser = await Chromium.launch({ fakeAudioFile: tone });
    current = browser;
    await scenario(ts, browser, outDir);
  } catch (err) {
    result.error = (err as Error).stack ?? String(err);
    result.logs = [
      ...pages.flatMap(([name, p]) => p.logs.map((l) => `[${name}] ${l}`)),
      ...(browser === undefined ? [] : [`[chromium stderr] ${browser.stderr().slice(-2000)}`]),
    ].join('\n');
  } finally {
    browser?.close();
    current = undefined;
    await ts?.stop().catch(() => {});
    if (tone !== undefined) rmSync(tone, { force: true });
  }
  finish(result.error === undefined ? 0 : 1);
}

function finish(code: number): void {
  current?.close();
  process.stdout.write(`MEETING-RESULT ${JSON.stringify(result)}\n`);
  process.exit(code);
}

void main();
