/**
 * The web console in a real browser, run by console.test.ts inside a loopback-only network namespace:
 * `ip netns exec NS node dist/test/e2e/console-runner.js OUTDIR`. The softswitch (in this process) and headless
 * Chromium both live in the namespace, so the browsers' WebRTC media (end to end, browser to browser) never
 * leaves it.
 *
 * Alice and Bob sign in on two softphone pages; Alice watches Bob's presence, calls him, he answers; both pages
 * show the call connected and count audio packets from RTCPeerConnection.getStats; Alice holds the call and
 * resumes it, mutes and unmutes, presses a DTMF key; the admin page (an admin
 * token) lists the call; Alice sends Bob a chat message; each page is saved as a PNG in OUTDIR; Alice hangs up.
 * The runner does not judge: it prints what it saw as one line `CONSOLE-RESULT {json}` and the test asserts. A
 * step that cannot go on ends the run with `{ error }`. The browser is killed and the server stopped on every
 * path, and the runner kills itself after CONSOLE_RUNNER_TIMEOUT_MS whatever happens.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Chromium, type Page } from '../helpers/chromium.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const DOMAIN = 'example.com';
const RUNNER_TIMEOUT_MS = Number(process.env.CONSOLE_RUNNER_TIMEOUT_MS ?? 60_000);
/** Audio flows this long before the packet counts are read (50 packets a second with 20 ms frames). */
const TALK_MS = 2000;
/** How long packets are counted while held and after resuming. */
const HOLD_MS = 2000;

export interface PageReport {
  registration: string;
  callState: string;
  packetsReceived: number;
  packetsSent: number;
  screenshot: string;
}

export interface ConsoleResult {
  /** Alice's page after a sign-in with a wrong password. */
  wrongPassword?: { status: string; formShown: boolean };
  alice?: PageReport;
  bob?: PageReport;
  /** Alice's page: what it shows for Bob's presence while he is registered. */
  presence?: string;
  /** Bob's page: the chat lines shown after Alice sent hers. */
  chatOnBob?: string[];
  /** The admin page's active calls table: one row of cells per call. */
  adminCalls?: string[][];
  adminScreenshot?: string;
  /** Audio packets Alice's page received in HOLD_MS while she held the call, and in HOLD_MS after she resumed it. */
  hold?: { receivedWhileHeld: number; receivedAfterResume: number };
  /** W3C totalAudioEnergy Bob's page heard in HOLD_MS while Alice was muted, and in HOLD_MS after she unmuted. */
  mute?: { heardWhileMuted: number; heardAfterUnmute: number };
  /** Alice's status line after she pressed 5 on the keypad. */
  dtmfStatus?: string;
  /** Both pages' call state after Alice hung up. */
  afterHangup?: { alice: string; bob: string };
  /** A second call hung up with the admin page's "Hang up" button: the admin page's status line, both pages' call state. */
  adminHangup?: { status: string; alice: string; bob: string };
  error?: string;
  logs?: string;
}

const result: ConsoleResult = {};
const state = (page: Page, id: string) => page.evaluate<string>(`document.getElementById(${JSON.stringify(id)}).dataset.state`);
const statsOf = (page: Page) => page.evaluate<{ received: number; sent: number }>(
  `(() => { const d = document.getElementById('call-stats').dataset; return { received: Number(d.packetsReceived), sent: Number(d.packetsSent) }; })()`);

async function signIn(page: Page, base: string, user: string, password: string): Promise<void> {
  await page.goto(`${base}/console/`);
  await page.waitFor(`document.getElementById('status').textContent === 'Sign in'`, `${user}'s page read /console/config.json`, 10_000,
    `document.getElementById('status').textContent`);
  await page.fill('login-user', user);
  await page.fill('login-password', password);
  await page.click('login-submit');
  await page.waitFor(`document.getElementById('reg-state').dataset.state === 'registered'`, `${user} registered`, 15_000,
    `document.getElementById('status').textContent + ' / ' + document.getElementById('reg-state').textContent`);
}

async function report(page: Page, outDir: string, name: string): Promise<PageReport> {
  const stats = await statsOf(page);
  const screenshot = join(outDir, `${name}.png`);
  await page.screenshot(screenshot);
  return { registration: await state(page, 'reg-state'), callState: await state(page, 'call-state'), packetsReceived: stats.received, packetsSent: stats.sent, screenshot };
}

async function scenario(ts: TestServer, browser: Chromium, outDir: string): Promise<void> {
  const base = `http://127.0.0.1:${ts.server.http.boundTo}`;
  await ts.addUser(`alice@${DOMAIN}`, 'alice-secret');
  await ts.addUser(`bob@${DOMAIN}`, 'bob-secret');
  const { token } = await ts.server.store.tokens.create({ name: 'console-test', expiresAt: Date.now() + 600_000 });
  const alice = await browser.newPage();
  const bob = await browser.newPage();
  pages.push(['alice', alice], ['bob', bob]);
  // A wrong password first: the page says why and stays on the sign-in form.
  await alice.goto(`${base}/console/`);
  await alice.waitFor(`document.getElementById('status').textContent === 'Sign in'`, 'Alice\'s page read /console/config.json', 10_000,
    `document.getElementById('status').textContent`);
  await alice.fill('login-user', `alice@${DOMAIN}`);
  await alice.fill('login-password', 'not-her-password');
  await alice.click('login-submit');
  result.wrongPassword = await alice.waitFor<{ status: string; formShown: boolean }>(
    `document.getElementById('status').classList.contains('error') && { status: document.getElementById('status').textContent, formShown: !document.getElementById('login').hidden }`,
    'Alice\'s page reports the refused password', 10_000, `document.getElementById('status').textContent`);
  await signIn(alice, base, `alice@${DOMAIN}`, 'alice-secret');
  await signIn(bob, base, `bob@${DOMAIN}`, 'bob-secret');

  // Presence: Alice watches Bob, who is registered.
  await alice.fill('watch-user', `bob@${DOMAIN}`);
  await alice.click('watch-add');
  result.presence = await alice.waitFor<string>(
    `(() => { const li = document.querySelector('#contacts li[data-contact="bob@${DOMAIN}"]'); return li && li.dataset.presence; })()`,
    'Bob\'s presence shown on Alice\'s page', 10_000, `document.getElementById('contacts').textContent`);

  // The call: Alice dials, Bob's page rings and he answers.
  await alice.fill('dial-target', `bob@${DOMAIN}`);
  await alice.click('dial-call');
  await bob.waitFor(`!document.getElementById('incoming').hidden`, 'Bob\'s page shows the incoming call', 15_000,
    `document.getElementById('status').textContent`);
  await bob.click('answer');
  for (const [name, page] of [['Alice', alice], ['Bob', bob]] as const) {
    await page.waitFor(`document.getElementById('call-state').dataset.state === 'connected'`, `${name}'s page shows the call connected`, 15_000,
      `document.getElementById('call-state').textContent + ' / ' + document.getElementById('status').textContent`);
  }
  await sleep(TALK_MS);
  for (const [name, page] of [['Alice', alice], ['Bob', bob]] as const) {
    await page.waitFor(`Number(document.getElementById('call-stats').dataset.packetsReceived) > 25`, `${name}'s page counts audio packets received`, 10_000,
      `document.getElementById('call-stats').textContent`);
  }

  // Hold (a re-INVITE with sendonly, answered recvonly): Bob stops sending, Alice's page stops receiving; resume.
  const received = async () => (await statsOf(alice)).received;
  await alice.click('hold');
  await alice.waitFor(`document.getElementById('call-state').dataset.state === 'held'`, 'Alice\'s page shows the call on hold', 10_000,
    `document.getElementById('call-state').textContent + ' / ' + document.getElementById('status').textContent`);
  await sleep(1500);
  const heldFrom = await received();
  await sleep(HOLD_MS);
  const heldDelta = (await received()) - heldFrom;
  await alice.click('hold');
  await alice.waitFor(`document.getElementById('call-state').dataset.state === 'connected'`, 'Alice\'s page shows the call resumed', 10_000,
    `document.getElementById('call-state').textContent + ' / ' + document.getElementById('status').textContent`);
  await sleep(1000);
  const resumedFrom = await received();
  await sleep(HOLD_MS);
  result.hold = { receivedWhileHeld: heldDelta, receivedAfterResume: (await received()) - resumedFrom };

  // Mute: Alice's microphone track is disabled (no re-INVITE); what Bob hears stops, and comes back on unmute.
  const heard = async () => Number(await bob.evaluate<string>(`document.getElementById('call-stats').dataset.audioEnergy`));
  // The page reads getStats once a second: 1.5 s lets the reading before the window be one taken after the change.
  const energyOver = async (): Promise<number> => {
    await sleep(1500);
    const from = await heard();
    await sleep(HOLD_MS);
    return (await heard()) - from;
  };
  await alice.click('mute');
  const mutedEnergy = await energyOver();
  await alice.click('mute');
  result.mute = { heardWhileMuted: mutedEnergy, heardAfterUnmute: await energyOver() };

  // DTMF from the keypad: RFC 4733 telephone-events on the audio sender.
  await alice.evaluate(`document.querySelector('#keypad button[data-dtmf="5"]').click()`);
  result.dtmfStatus = await alice.evaluate<string>(`document.getElementById('status').textContent`);

  // The admin page lists the call.
  const admin = await browser.newPage();
  pages.push(['admin', admin]);
  await admin.goto(`${base}/console/admin.html`);
  await admin.fill('token', token);
  await admin.click('token-submit');
  result.adminCalls = await admin.waitFor<string[][]>(
    `(() => { const rows = [...document.querySelectorAll('#calls tr')].map((tr) => [...tr.children].map((td) => td.textContent));
      return rows.length > 0 && rows; })()`,
    'the admin page lists an active call', 10_000, `document.getElementById('status').textContent`);
  result.adminScreenshot = join(outDir, 'admin.png');
  await admin.screenshot(result.adminScreenshot);

  // Chat: Alice writes to Bob; the server stores it and delivers a MESSAGE to Bob's page.
  await alice.fill('chat-to', `bob@${DOMAIN}`);
  await alice.fill('chat-text', 'Hello Bob, from the console');
  await alice.click('chat-send');
  result.chatOnBob = await bob.waitFor<string[]>(
    `(() => { const lines = [...document.querySelectorAll('#chat-log li')].map((li) => li.textContent); return lines.length > 0 && lines; })()`,
    'Alice\'s message shown on Bob\'s page', 10_000, `document.getElementById('status').textContent`);

  result.alice = await report(alice, outDir, 'alice');
  result.bob = await report(bob, outDir, 'bob');

  await alice.click('hangup');
  for (const [name, page] of [['Alice', alice], ['Bob', bob]] as const) {
    await page.waitFor(`document.getElementById('call-state').dataset.state === 'ended'`, `${name}'s page shows the call ended`, 10_000,
      `document.getElementById('call-state').textContent`);
  }
  result.afterHangup = { alice: await state(alice, 'call-state'), bob: await state(bob, 'call-state') };

  // A second call, hung up by the administrator: the admin page's "Hang up" button (DELETE /v1/active-calls/:id).
  // The first call leaves the admin page's list first (its polls), so the row that comes next is the second call's.
  await admin.waitFor(`document.querySelectorAll('#calls tr').length === 0`, 'the admin page no longer lists the first call', 10_000,
    `document.getElementById('calls').textContent`);
  await alice.click('dial-call');
  await bob.waitFor(`!document.getElementById('incoming').hidden`, 'Bob\'s page shows the second incoming call', 15_000,
    `document.getElementById('status').textContent`);
  await bob.click('answer');
  for (const [name, page] of [['Alice', alice], ['Bob', bob]] as const) {
    await page.waitFor(`document.getElementById('call-state').dataset.state === 'connected'`, `${name}'s page shows the second call connected`, 15_000,
      `document.getElementById('call-state').textContent + ' / ' + document.getElementById('status').textContent`);
  }
  await admin.waitFor(`(() => { const b = document.querySelector('#calls button[data-hangup]'); return b !== null && (b.click(), true); })()`,
    'the admin page lists the second call with a Hang up button', 10_000, `document.getElementById('calls').textContent`);
  const hungUp = await admin.waitFor<string>(`(() => { const t = document.getElementById('call-action').textContent; return t.startsWith('Hung up') && t; })()`,
    'the admin page says the call was hung up', 10_000, `document.getElementById('call-action').textContent`);
  for (const [name, page] of [['Alice', alice], ['Bob', bob]] as const) {
    await page.waitFor(`document.getElementById('call-state').dataset.state === 'ended'`, `${name}'s page shows the call the administrator ended`, 10_000,
      `document.getElementById('call-state').textContent`);
  }
  result.adminHangup = { status: hungUp, alice: await state(alice, 'call-state'), bob: await state(bob, 'call-state') };
}

const pages: Array<[string, Page]> = [];

async function main(): Promise<void> {
  const outDir = process.argv[2];
  if (outDir === undefined) throw new Error('usage: console-runner.js OUTDIR');
  const suicide = setTimeout(() => {
    result.error = `the runner did not finish in ${RUNNER_TIMEOUT_MS} ms`;
    finish(1);
  }, RUNNER_TIMEOUT_MS);
  suicide.unref();
  let ts: TestServer | undefined;
  let browser: Chromium | undefined;
  try {
    ts = await startTestServer();
    browser = await Chromium.launch();
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
  }
  finish(result.error === undefined ? 0 : 1);
}

let current: Chromium | undefined;

function finish(code: number): void {
  current?.close();
  process.stdout.write(`CONSOLE-RESULT ${JSON.stringify(result)}\n`);
  process.exit(code);
}

void main();
