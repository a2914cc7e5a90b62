/**
 * Headless Chromium (Debian's `chromium`) driven over the DevTools protocol with `ws`: no browser download, no
 * extra dependency. One browser per test; each page gets its own browser context (its own storage, like a
 * separate profile). Fake camera and microphone (`--use-fake-device-for-media-stream`: a beep) with the
 * permission prompt answered yes (`--use-fake-ui-for-media-stream`), and loopback allowed for WebRTC
 * (`--allow-loopback-in-peer-connection`): the tests run it in a namespace whose only interface is loopback.
 *
 * The browser runs in its own process group and `close()` kills that group and removes the profile, whatever
 * state it is in; every wait has a timeout whose message says what was seen.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { requireTool } from '../../support/tools.js';

const LAUNCH_TIMEOUT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 15_000;

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

type EventListener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

export class Chromium {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }>();
  private readonly eventListeners: Array<{ method: string; fn: EventListener }> = [];

  private constructor(private readonly child: ChildProcess, private readonly ws: WebSocket, private readonly profile: string, readonly stderr: () => string) {
    ws.on('message', (data) => this.dispatch(JSON.parse(data.toString()) as CdpMessage));
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error(`the browser closed the DevTools connection during ${p.method}`));
      this.pending.clear();
    });
  }

  /**
   * Starts Chromium headless and connects to it; fails with its stderr when it does not come up in time.
   * `fakeAudioFile`: a WAV file the fake microphone plays in a loop instead of its beep.
   */
  static async launch(options: { fakeAudioFile?: string } = {}): Promise<Chromium> {
    const bin = requireTool('chromium', 'chromium');
    const profile = mkdtempSync(join(tmpdir(), 'softswitch-chromium-'));
    const args = [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-extensions',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--metrics-recording-only', '--mute-audio',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required', '--window-size=1280,900',
      ...(options.fakeAudioFile === undefined ? [] : [`--use-file-for-fake-audio-capture=${options.fakeAudioFile}`]),
      `--user-data-dir=${profile}`, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', 'about:blank',
    ];
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chromium gave no DevTools address in ${LAUNCH_TIMEOUT_MS} ms:\n${stderr.slice(-3000)}`)), LAUNCH_TIMEOUT_MS);
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-20_000);
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`chromium exited (${code ?? signal}) before it listened:\n${stderr.slice(-3000)}`));
      });
    }).catch((err: Error) => {
      killGroup(child);
      rmSync(profile, { recursive: true, force: true });
      throw err;
    });
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
    } catch (err) {
      killGroup(child);
      rmSync(profile, { recursive: true, force: true });
      throw err;
    }
    return new Chromium(child, ws, profile, () => stderr);
  }

  /** One DevTools command (to the browser, or to a page's session), with a time limit. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`DevTools ${method} got no answer in ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, {
        method,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
    });
  }

  on(method: string, fn: EventListener): void {
    this.eventListeners.push({ method, fn });
  }

  /** A new tab in a browser context of its own. */
  async newPage(): Promise<Page> {
    const { browserContextId } = await this.send('Target.createBrowserContext');
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank', browserContextId });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId as string);
    await page.init();
    return page;
  }

  /** Kills the browser's process group and removes its profile. Never throws. */
  close(): void {
    try {
      this.ws.terminate();
    } catch {
      // closed already
    }
    killGroup(this.child);
    rmSync(this.profile, { recursive: true, force: true });
  }

  private dispatch(msg: CdpMessage): void {
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      if (p === undefined) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`DevTools ${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result ?? {});
      return;
    }
    for (const l of this.eventListeners) if (l.method === msg.method) l.fn(msg.params ?? {}, msg.sessionId);
  }
}

/** One tab: navigate, evaluate script, wait for a condition, take a screenshot; its console is kept for failure messages. */
export class Page {
  /** The page's console messages and uncaught exceptions (the last 200). */
  readonly logs: string[] = [];
  private loaded = 0;

  constructor(private readonly browser: Chromium, readonly sessionId: string) {}

  async init(): Promise<void> {
    this.browser.on('Runtime.consoleAPICalled', (p, s) => {
      if (s !== this.sessionId) return;
      const args = (p.args as Array<{ value?: unknown; description?: string }>).map((a) => (a.value !== undefined ? String(a.value) : a.description ?? ''));
      this.log(`console.${String(p.type)}: ${args.join(' ')}`);
    });
    this.browser.on('Runtime.exceptionThrown', (p, s) => {
      if (s !== this.sessionId) return;
      const d = p.exceptionDetails as { text: string; exception?: { description?: string } };
      this.log(`uncaught: ${d.exception?.description ?? d.text}`);
    });
    this.browser.on('Page.loadEventFired', (_p, s) => {
      if (s === this.sessionId) this.loaded++;
    });
    await this.send('Page.enable');
    await this.send('Runtime.enable');
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.browser.send(method, params, this.sessionId);
  }

  /** Loads a URL and waits for its load event. */
  async goto(url: string, timeoutMs = 15_000): Promise<void> {
    const before = this.loaded;
    const { errorText } = await this.send('Page.navigate', { url });
    if (typeof errorText === 'string' && errorText !== '') throw new Error(`loading ${url} failed: ${errorText}`);
    const end = Date.now() + timeoutMs;
    while (this.loaded === before) {
      if (Date.now() > end) throw new Error(`${url} did not finish loading in ${timeoutMs} ms; console:\n${this.logs.join('\n')}`);
      await sleep(50);
    }
  }

  /** Evaluates an expression in the page (awaiting a promise), returning its JSON value; a page exception throws. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    const ex = r.exceptionDetails as { text: string; exception?: { description?: string } } | undefined;
    if (ex !== undefined) throw new Error(`in the page: ${ex.exception?.description ?? ex.text} (evaluating ${expression.slice(0, 200)})`);
    return (r.result as { value?: T }).value as T;
  }

  /**
   * Polls `expression` until it is truthy and returns that value; after `timeoutMs` fails naming `what`, the last
   * value of `observe` (what the page shows instead) and the page's console.
   */
  async waitFor<T>(expression: string, what: string, timeoutMs: number, observe = expression): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.evaluate<T>(expression);
      if (value) return value;
      if (Date.now() > end) {
        const seen = await this.evaluate(observe).catch((err: Error) => err.message);
        throw new Error(`${what}: not after ${timeoutMs} ms; the page showed ${JSON.stringify(seen)}; console:\n${this.logs.slice(-30).join('\n')}`);
      }
      await sleep(100);
    }
  }

  /** Sets an input's value as typing would (an `input` event follows). */
  async fill(id: string, value: string): Promise<void> {
    await this.evaluate(`(() => { const el = document.getElementById(${JSON.stringify(id)}); if (!el) throw new Error('no #${id}');
      el.value = ${JSON.stringify(value)}; el.dispatchEvent(new Event('input', { bubbles: true })); })()`);
  }

  /** Clicks an element by id (a real mouse click through the element's own click()). */
  async click(id: string): Promise<void> {
    await this.evaluate(`(() => { const el = document.getElementById(${JSON.stringify(id)}); if (!el) throw new Error('no #${id}'); el.click(); })()`);
  }

  /** A PNG of the whole page, written to `path`. */
  async screenshot(path: string): Promise<void> {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    writeFileSync(path, Buffer.from(data as string, 'base64'));
  }

  private log(line: string): void {
    this.logs.push(line);
    if (this.logs.length > 200) this.logs.shift();
  }
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
