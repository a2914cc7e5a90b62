/**
 * The media scenarios, run by media.test.ts inside a loopback-only network namespace:
 * `ip netns exec NS node dist/test/e2e/media-runner.js SCENARIO`. libwebrtc (wrtc) runs in this process,
 * so the whole call — rtpengine, the softswitch, SIPp, the WebRTC phones and the plain video phone — lives
 * in the namespace.
 *
 * The runner does not judge: it places the calls and prints what it observed as one line
 * `MEDIA-RESULT {json}` (stats, what was heard, which rtpengine held which call, sessions left), and the
 * test asserts on it. A step that cannot go on (no answer, ICE never connects) ends the scenario with
 * `{ error }`. Every process it starts is stopped before it exits; it exits with process.exit() (see
 * webrtc-phone.ts) and kills itself after RUNNER_TIMEOUT_MS whatever happens.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { NgClient, type NgReply } from '../../media/index.js';
import { startCoturn } from '../../support/coturn.js';
import { type RtpengineHandle, startRtpengine } from '../../support/rtpengine.js';
import { apnsDeviceToken, apnsPushConfig, startFakeApns } from '../../support/fake-apns.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SIPP_SCENARIOS } from '../helpers/sipp.js';
import { freePort, requireTool } from '../../support/tools.js';
import { type AudioStats, type HeardAudio, type MediaPhone, SipJsWebRtcPhone, type VideoStats, WebRtcPhone, type WebRtcCall } from '../helpers/webrtc-phone.js';
import { PlainVideoPhone } from '../helpers/plain-video-phone.js';

const DOMAIN = 'example.com';
const RUNNER_TIMEOUT_MS = Number(process.env.MEDIA_RUNNER_TIMEOUT_MS ?? 60_000);
/**
 * The namespace's one address that is not loopback (turn-calls.test.ts gives it on a dummy interface): TURN
 * relays refuse loopback peers, so the relay scenarios put rtpengine, the TURN server and the phones' relays here.
 * RFC 5737 documentation address: nobody's host.
 */
const PUBLIC_ADDRESS = '203.0.113.1';
/** How long each call carries audio before it is measured. */
const TALK_MS = 1500;
/** A video call is measured this long after ICE and DTLS are up (the first frame must be decoded by then) … */
const FIRST_FRAME_WINDOW_MS = 1000;
/** … and again this long later (the frames decoded in between show the video keeps flowing). */
const VIDEO_WINDOW_MS = 2000;

/** What one side of a call saw. */
export interface SideReport {
  stats: AudioStats;
  heard: HeardAudio;
  /** The SDP this side received (offer or answer), as far as the test needs it. */
  remoteSdp: string;
  toneHz: number;
  /** Video calls: the video stats FIRST_FRAME_WINDOW_MS after media connected, and VIDEO_WINDOW_MS later. */
  video?: { atWindow: VideoStats; end: VideoStats };
}

/** One call: both sides, and rtpengine's view of it while it was up. */
export interface CallReport {
  callId: string;
  /** The rtpengine node (`udp:127.0.0.1:PORT`) that held the call's session while it was up. */
  node: string | undefined;
  /** rtpengine's view of each party (by SIP tag), from ng `query` while the call was up. */
  legs: Record<string, RtpengineLeg>;
  caller: SideReport;
  callee?: SideReport;
  /** Sessions of this call still on any rtpengine after the call ended (live ones; deleted ones lingering are not counted). */
  leftoverSessions: string[];
  /** Milliseconds from call() to established. */
  setupMs: number;
}

export interface MediaResult {
  scenario: string;
  calls: CallReport[];
  /** SIPp UAS exit code and the tail of its output. */
  sipp?: { code: number | null; output: string };
  /** Scenario-specific facts. */
  facts: Record<string, unknown>;
  error?: string;
  logs?: string;
}

// ---- the pieces ------------------------------------------------------------------------------------

interface Env {
  ts: TestServer;
  rtpengines: RtpengineHandle[];
  cleanups: Array<() => Promise<void> | void>;
  users: number;
  sippOutput?: () => string;
}

/**
 * `push`: the server's push section, for the scenarios with an app a push wakes; `turn`: its turn section;
 * `mediaAddress`: where rtpengine relays media (default loopback).
 */
async function environment(options: {
  rtpengines: number; alwaysRelay: boolean; push?: Record<string, unknown>; turn?: Record<string, unknown>; mediaAddress?: string;
}): Promise<Env> {
  const env: Env = { ts: undefined as unknown as TestServer, rtpengines: [], cleanups: [], users: 0 };
  current = env;
  for (let i = 0; i < options.rtpengines; i++) {
    const r = await startRtpengine({ portMin: freshPortMin(env), mediaAddress: options.mediaAddress });
    env.rtpengines.push(r);
    env.cleanups.push(() => r.stop());
  }
  env.ts = await startTestServer({
    media: { rtpengine: env.rtpengines.map((r) => r.ng), alwaysRelay: options.alwaysRelay },
    ...(options.push === undefined ? {} : { push: options.push }),
    ...(options.turn === undefined ? {} : { turn: options.turn }),
  });
  env.cleanups.push(() => env.ts.stop());
  return env;
}

/**
 * A 200-port RTP range that no rtpengine of the scenario uses: rtpengines on one address must not share
 * ports (support/rtpengine.ts: portMin).
 */
function freshPortMin(env: Env): number {
  const used = env.rtpengines.map((r) => r.argv.find((a) => a.startsWith('--port-min='))?.split('=')[1]);
  for (;;) {
    const portMin = 20000 + Math.floor(Math.random() * 60) * 200;
    if (!used.includes(String(portMin))) return portMin;
  }
}

async function addUser(env: Env, prefix: string): Promise<{ user: string; aor: string; password: string }> {
  const user = `${prefix}${++env.users}`;
  const password = `${user}-secret`;
  await env.ts.addUser(`${user}@${DOMAIN}`, password);
  return { user, aor: `sip:${user}@${DOMAIN}`, password };
}

/** `relayOnly`: the phone asks GET /v1/ice-servers (with its user token) and uses TURN relay candidates only. */
async function webrtcPhone(
  env: Env, prefix: string, toneHz: number,
  options: { codecs?: readonly string[]; library?: 'jssip' | 'sip.js'; video?: boolean; relayOnly?: boolean } = {},
): Promise<MediaPhone> {
  const u = await addUser(env, prefix);
  const ice = options.relayOnly === true
    ? { iceServers: await iceServersFor(env, `${u.user}@${DOMAIN}`, u.password), iceTransportPolicy: 'relay' as const }
    : {};
  const phoneOptions = { uri: u.aor, password: u.password, wsUrl: `ws://${env.ts.addr('ws')}`, toneHz, codecs: options.codecs, video: options.video, ...ice };
  const phone = options.library === 'sip.js' ? await SipJsWebRtcPhone.create(phoneOptions) : await WebRtcPhone.create(phoneOptions);
  env.cleanups.push(() => phone.stop());
  await phone.register();
  return phone;
}

/** What an app does before a call: its user token (POST /v1/auth/token), then GET /v1/ice-servers with it. */
async function iceServersFor(env: Env, user: string, password: string): Promise<Array<{ urls: string[]; username?: string; credential?: string }>> {
  const base = `http://127.0.0.1:${env.ts.server.http.boundTo}/v1`;
  const auth = await fetch(`${base}/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'password', username: user, password }),
  });
  if (auth.status !== 200) throw new Error(`POST /v1/auth/token for ${user}: ${auth.status} ${await auth.text()}`);
  const token = ((await auth.json()) as { access_token: string }).access_token;
  const res = await fetch(`${base}/ice-servers`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET /v1/ice-servers for ${user}: ${res.status} ${await res.text()}`);
  const servers = ((await res.json()) as { iceServers: Array<{ urls: string[]; username?: string; credential?: string }> }).iceServers;
  iceServersSeen.push(servers.flatMap((s) => s.urls));
  return servers;
}
const iceServersSeen: string[][] = [];

interface SippUas {
  aor: string;
  /** Where SIPp's RTP echo listens (its SDP's m= port). */
  mediaPort: number;
  done: Promise<{ code: number | null; output: string }>;
}

/**
 * SIPp as a plain RTP phone: registers over UDP, answers `calls` calls with PCMU only and echoes every RTP
 * packet back to its sender (-rtp_echo). Killed by the cleanup if still running.
 */
async function sippEchoUas(env: Env, calls: number): Promise<SippUas> {
  const u = await addUser(env, 'sippecho');
  const mediaPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'sipp-media-'));
  const args = [
    env.ts.addr('udp'), '-sf', join(SIPP_SCENARIOS, 'media-uas-register.xml'), '-oocsf', join(SIPP_SCENARIOS, 'media-uas-echo.xml'),
    '-t', 'u1', '-i', '127.0.0.1', '-p', String(await freePort()), '-m', '1', '-nostdin', '-timeout', '50s', '-timeout_error',
    '-key', 'aor_user', u.user, '-key', 'aor_domain', DOMAIN,
    // digest uri: SIPp's default, the Request-URI (the server's own address)
    '-au', u.user, '-ap', u.password,
    '-set', 'calls_expected', String(calls),
    '-rtp_echo', '-mi', '127.0.0.1', '-mp', String(mediaPort),
    ...(process.env.SIPP_TRACE === '1' ? ['-trace_msg', '-message_file', join(dir, 'messages.log')] : []),
  ];
  const child = spawn(requireTool('sipp', 'sip-tester'), args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  let ended: { code: number | null; output: string } | undefined;
  const done = new Promise<{ code: number | null; output: string }>((resolve) => {
    child.on('close', (code) => resolve((ended = { code, output })));
  });
  env.cleanups.push(async () => {
    if (!ended) child.kill('SIGKILL');
    await done;
    if (process.env.SIPP_TRACE !== '1') rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 5000;
  while (env.ts.server.registrar.lookup(u.aor).length === 0) {
    if (ended) throw new Error(`SIPp ended before registering (${ended.code}): ${ended.output}`);
    if (Date.now() > deadline) throw new Error('SIPp did not register within 5 s');
    await sleep(50);
  }
  env.sippOutput = () => output;
  return { aor: u.aor, mediaPort, done: withTimeout(done, 15_000, 'SIPp to finish its calls') };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what} (${ms} ms)`)), ms)))]).finally(() => clearTimeout(timer));
}

/** rtpengine's view of one party of a call (ng `query`, under the party's SIP tag). */
export interface RtpengineLeg {
  /** RTP packets rtpengine received from this party (its RTP stream's `stats.packets`; RTCP not counted). */
  rtpPackets: number;
  /** The transport protocol rtpengine speaks with this party (`RTP/AVP`, `UDP/TLS/RTP/SAVPF`), first m-line. */
  protocol: string | undefined;
  /** The transport protocol of every m-line (audio, video). */
  protocols: Array<string | undefined>;
  /** Where this party's RTP comes from, `address:port`. */
  endpoint: string | undefined;
  /** rtpengine transcodes on this leg. */
  transcoding: boolean;
}

async function queryLegs(r: RtpengineHandle, callId: string): Promise<Record<string, RtpengineLeg>> {
  const client = new NgClient({ host: '127.0.0.1', port: r.ngPort, timeoutMs: 1000, retransmitMs: 200 });
  interface Stream { flags?: string[]; endpoint?: { address?: string; port?: number }; stats?: { packets?: number } }
  interface Media { protocol?: string; flags?: string[]; streams?: Stream[] }
  try {
    const reply: NgReply = await client.command({ command: 'query', 'call-id': callId });
    const out: Record<string, RtpengineLeg> = {};
    const text = (v: unknown): string | undefined => (Buffer.isBuffer(v) ? v.toString() : typeof v === 'string' ? v : undefined);
    for (const [tag, mono] of Object.entries((reply.tags ?? {}) as Record<string, { medias?: Media[] }>)) {
      const media = (mono.medias ?? [])[0];
      const rtp = (media?.streams ?? []).find((st) => (st.flags ?? []).map(text).includes('RTP'));
      out[tag] = {
        rtpPackets: rtp?.stats?.packets ?? 0,
        protocol: text(media?.protocol),
        protocols: (mono.medias ?? []).map((m) => text(m.protocol)),
        endpoint: rtp?.endpoint ? `${text(rtp.endpoint.address)}:${rtp.endpoint.port}` : undefined,
        transcoding: (media?.flags ?? []).map(text).includes('transcoding'),
      };
    }
    return out;
  } finally {
    client.close();
  }
}

/** The node holding a call right now (CLI `list sessions all`), or undefined. */
async function nodeOf(env: Env, callId: string): Promise<RtpengineHandle | undefined> {
  for (const r of env.rtpengines) {
    try {
      if ((await r.listSessions()).includes(callId)) return r;
    } catch {
      // a killed node has no sessions
    }
  }
  return undefined;
}

/** Live sessions of the call left on any running node, polled briefly (the BYE's delete is asynchronous). */
async function leftovers(env: Env, callId: string): Promise<string[]> {
  const deadline = Date.now() + 2000;
  for (;;) {
    const left: string[] = [];
    for (const r of env.rtpengines) {
      try {
        if ((await r.listSessions()).includes(callId)) left.push(r.ng);
      } catch {
        // not running
      }
    }
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(100);
  }
}

async function side(call: WebRtcCall, remoteSdp: string, toneHz: number, videoAtWindow?: VideoStats): Promise<SideReport> {
  const report: SideReport = { stats: await call.stats(), heard: call.heard(1000), remoteSdp, toneHz };
  if (videoAtWindow) report.video = { atWindow: videoAtWindow, end: await call.videoStats() };
  return report;
}

function remoteSdpOf(call: WebRtcCall): string {
  const pc = call.pc as unknown as { remoteDescription?: { sdp?: string } | null };
  return pc.remoteDescription?.sdp ?? '';
}

interface MeasuredCallOptions {
  callee?: { phone: MediaPhone; toneHz: number };
  beforeHangup?: (call: WebRtcCall, node: RtpengineHandle | undefined) => Promise<void>;
  /** Measure the video too (FIRST_FRAME_WINDOW_MS, then VIDEO_WINDOW_MS) instead of TALK_MS of audio. */
  video?: boolean;
}

/**
 * One call from a phone, measured: established → media connected → TALK_MS of audio (or the video
 * windows) → stats and rtpengine counters → hang-up → leftover sessions.
 */
async function measuredCall(env: Env, caller: MediaPhone, callerHz: number, target: string, options: MeasuredCallOptions = {}): Promise<CallReport> {
  const { callee, beforeHangup } = options;
  const started = performance.now();
  const answering = callee?.phone.answer();
  answering?.catch(() => undefined);
  const call = await caller.call(target);
  const setupMs = Math.round(performance.now() - started);
  const answered = answering ? await answering : undefined;
  await call.waitForMedia();
  await answered?.waitForMedia();
  let video: [VideoStats, VideoStats | undefined] | undefined;
  if (options.video) {
    await sleep(FIRST_FRAME_WINDOW_MS);
    video = [await call.videoStats(), await answered?.videoStats()];
    await sleep(VIDEO_WINDOW_MS);
  } else {
    await sleep(TALK_MS);
  }
  const node = await nodeOf(env, call.callId);
  const legs = node ? await queryLegs(node, call.callId).catch(() => ({})) : {};
  const report: CallReport = {
    callId: call.callId,
    node: node?.ng,
    legs,
    caller: await side(call, remoteSdpOf(call), callerHz, video?.[0]),
    callee: answered && callee ? { ...(await side(answered, answered.invite, callee.toneHz, video?.[1])) } : undefined,
    leftoverSessions: [],
    setupMs,
  };
  if (beforeHangup) await beforeHangup(call, node);
  await call.hangup();
  await answered?.waitForEnded();
  answered?.close();
  report.leftoverSessions = await leftovers(env, call.callId);
  return report;
}

async function healthOf(env: Env): Promise<Array<{ node: string; up: boolean; calls: number }>> {
  const res = await fetch(`http://127.0.0.1:${env.ts.server.http.boundTo}/health`);
  const body = (await res.json()) as { rtpengine: Array<{ node: string; up: boolean; calls: number }> };
  return body.rtpengine;
}

async function waitForHealth(env: Env, node: RtpengineHandle, up: boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  const id = `127.0.0.1:${node.ngPort}`;
  for (;;) {
    const h = (await healthOf(env)).find((n) => n.node === id);
    if (h?.up === up) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`rtpengine ${id} not ${up ? 'up' : 'down'} in /health after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * A trunk (SIPp on 127.0.0.5, a trusted source, PCMU only, RTP echo) calls a DID routed to `aor`; `answer`
 * gives the WebRTC phone's answered call. TALK_MS of audio is measured, then the trunk hangs up; the call
 * goes into `result` with the trunk's address and echo port as facts.
 */
async function trunkCallsDid(
  env: Env,
  result: MediaResult,
  aor: string,
  answer: () => Promise<WebRtcCall & { invite: string }>,
  toneHz: number,
): Promise<void> {
  const did = '+4930123456';
  const trunk = '127.0.0.5';
  const routing = env.ts.server.store.routing;
  await routing.addDid({ number: did, username: aor.slice('sip:'.length, aor.indexOf('@')), domain: DOMAIN });
  await routing.addTrusted({ cidr: `${trunk}/32`, description: 'PSTN trunk (SIPp)' });
  await env.ts.server.reload();
  const mediaPort = await freePort();
  const answering = answer();
  answering.catch(() => undefined);
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'sipp-trunk-'));
  const child = spawn(requireTool('sipp', 'sip-tester'), [
    env.ts.addr('udp'), '-sf', join(SIPP_SCENARIOS, 'fs-uac-trusted-call.xml'), '-t', 'u1', '-i', trunk, '-p', String(await freePort()),
    '-m', '1', '-d', String(TALK_MS + 2500), '-nostdin', '-timeout', '30s', '-timeout_error',
    '-key', 'did', did, '-key', 'did_domain', DOMAIN, '-key', 'caller', '+4915112345678',
    '-rtp_echo', '-mi', trunk, '-mp', String(mediaPort),
  ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const done = new Promise<{ code: number | null; output: string }>((resolve) => child.on('close', (code) => resolve({ code, output })));
  env.cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await done;
    rmSync(dir, { recursive: true, force: true });
  });
  env.sippOutput = () => output;
  const answered = await answering;
  const setupMs = Math.round(performance.now() - started);
  await answered.waitForMedia();
  await sleep(TALK_MS);
  const node = await nodeOf(env, answered.callId);
  const legs = node ? await queryLegs(node, answered.callId).catch(() => ({})) : {};
  const report: CallReport = {
    callId: answered.callId, node: node?.ng, legs, caller: await side(answered, answered.invite, toneHz), leftoverSessions: [], setupMs,
  };
  // The trunk hangs up after its hold time.
  await answered.waitForEnded(10_000);
  answered.close();
  result.sipp = await withTimeout(done, 15_000, 'the trunk (SIPp) to finish');
  report.leftoverSessions = await leftovers(env, answered.callId);
  result.calls.push(report);
  result.facts.trunk = trunk;
  result.facts.trunkMediaPort = mediaPort;
}

/** The plain video phone; when it answers, its first keyframe goes out 300 ms before its 200 OK (and is lost). */
const VIDEO_PHONE = { host: '127.0.0.7', number: '+493055501', toneHz: 660, answerAfterMediaMs: 300 };
const DID = '+4930123456';

/**
 * The plain-RTP video phone (plain-video-phone.ts) with its own rtpengine, on 127.0.0.7: a dialplan route
 * sends VIDEO_PHONE.number to it, and its address is a trusted source, so its calls to a DID ring the user.
 */
async function plainVideoPhone(env: Env, feedback: boolean): Promise<PlainVideoPhone> {
  const rtpengine = await startRtpengine({ portMin: freshPortMin(env) });
  env.cleanups.push(() => rtpengine.stop());
  const { host, number, toneHz } = VIDEO_PHONE;
  const phone = await PlainVideoPhone.start({
    rtpengine, host, aor: `sip:${number}@${DOMAIN}`, softswitch: env.ts.addr('udp'), toneHz, feedback, answerAfterMediaMs: VIDEO_PHONE.answerAfterMediaMs,
  });
  env.cleanups.push(() => phone.stop());
  const routing = env.ts.server.store.routing;
  await routing.addBackend({ set: 'video-phone', uri: phone.uri });
  await routing.addRoute({ pattern: number.replace('+', '\\+'), replace: '', set: 'video-phone', priority: 10, description: 'the plain video phone' });
  await routing.addTrusted({ cidr: `${host}/32`, description: 'the plain video phone' });
  await env.ts.server.reload();
  return phone;
}

/** A WebRTC phone with a camera that a DID rings (calls from the plain phone come to it). */
async function videoCallee(env: Env, library: 'jssip' | 'sip.js'): Promise<MediaPhone> {
  const bob = await webrtcPhone(env, 'bob', 880, { library, video: true });
  await env.ts.server.store.routing.addDid({ number: DID, username: bob.aor.slice('sip:'.length, bob.aor.indexOf('@')), domain: DOMAIN });
  await env.ts.server.reload();
  return bob;
}

/**
 * A video call between a WebRTC phone and the plain video phone, in the direction asked, measured with its
 * video windows; the SDPs the phone sent and received go into the facts.
 */
async function webrtcPlainVideo(result: MediaResult, direction: 'webrtc-to-plain' | 'plain-to-webrtc', feedback: boolean): Promise<void> {
  const env = await environment({ rtpengines: 1, alwaysRelay: false });
  const phone = await plainVideoPhone(env, feedback);
  if (direction === 'webrtc-to-plain') {
    const alice = await webrtcPhone(env, 'alice', 440, { video: true });
    result.calls.push(await measuredCall(env, alice, 440, phone.aor, { callee: { phone, toneHz: VIDEO_PHONE.toneHz }, video: true }));
  } else {
    const bob = await videoCallee(env, 'sip.js');
    result.calls.push(await measuredCall(env, phone, VIDEO_PHONE.toneHz, `sip:${DID}@${env.ts.addr('udp')}`, { callee: { phone: bob, toneHz: 880 }, video: true }));
  }
  result.facts.phoneSent = phone.sent;
  result.facts.phoneReceived = phone.received;
}

/** A JsSIP phone with a camera calls a SIP.js one, with or without media.alwaysRelay. */
async function webrtcVideo(result: MediaResult, alwaysRelay: boolean): Promise<void> {
  const env = await environment({ rtpengines: 1, alwaysRelay });
  const alice = await webrtcPhone(env, 'alice', 440, { video: true });
  const bob = await videoCallee(env, 'sip.js');
  result.calls.push(await measuredCall(env, alice, 440, bob.aor, { callee: { phone: bob, toneHz: 880 }, video: true }));
}

// ---- the scenarios ---------------------------------------------------------------------------------

const scenarios: Record<string, (result: MediaResult) => Promise<void>> = {
  /** Video between a browser (JsSIP, VP8) and a plain phone that sends a=rtcp-fb on RTP/AVP, both directions. */
  'video-webrtc-to-plain-feedback': (result) => webrtcPlainVideo(result, 'webrtc-to-plain', true),
  'video-plain-to-webrtc-feedback': (result) => webrtcPlainVideo(result, 'plain-to-webrtc', true),
  /** The same with an AVP-only phone (no a=rtcp-fb at all). */
  'video-webrtc-to-plain-no-feedback': (result) => webrtcPlainVideo(result, 'webrtc-to-plain', false),
  'video-plain-to-webrtc-no-feedback': (result) => webrtcPlainVideo(result, 'plain-to-webrtc', false),

  /** Browser ⇄ browser video (JsSIP calls SIP.js): media end to end (needsRelay), or through rtpengine with alwaysRelay. */
  'video-webrtc-to-webrtc': (result) => webrtcVideo(result, false),
  'video-webrtc-to-webrtc-relayed': (result) => webrtcVideo(result, true),

  /** A WebRTC phone calls SIPp (PCMU only, RTP echo): the browser leg is bridged to RTP/AVP by rtpengine. */
  async 'webrtc-to-sipp-echo'(result) {
    const env = await environment({ rtpengines: 1, alwaysRelay: false });
    const sipp = await sippEchoUas(env, 1);
    const alice = await webrtcPhone(env, 'alice', 440);
    result.calls.push(await measuredCall(env, alice, 440, sipp.aor));
    result.sipp = await sipp.done;
    result.facts.sippMediaPort = sipp.mediaPort;
  },

  /** The same with the browser's offer trimmed to opus: rtpengine transcodes opus ⇄ PCMU. */
  async 'webrtc-opus-to-sipp-pcmu'(result) {
    const env = await environment({ rtpengines: 1, alwaysRelay: false });
    const sipp = await sippEchoUas(env, 1);
    const alice = await webrtcPhone(env, 'alice', 660, { codecs: ['opus'] });
    result.calls.push(await measuredCall(env, alice, 660, sipp.aor));
    result.sipp = await sipp.done;
    result.facts.sippMediaPort = sipp.mediaPort;
  },

  /** Two WebRTC phones (JsSIP calls SIP.js) with media.alwaysRelay: both legs SAVPF through rtpengine. */
  async 'webrtc-to-webrtc-relayed'(result) {
    const env = await environment({ rtpengines: 1, alwaysRelay: true });
    const alice = await webrtcPhone(env, 'alice', 440);
    const bob = await webrtcPhone(env, 'bob', 880, { library: 'sip.js' });
    result.facts.libraries = { caller: alice.library, callee: bob.library };
    result.calls.push(await measuredCall(env, alice, 440, bob.aor, { callee: { phone: bob, toneHz: 880 } }));
    result.facts.rtpenginePorts = env.rtpengines[0]!.argv.filter((a) => a.startsWith('--port-'));
  },

  /**
   * PSTN → user: a trunk (SIPp on 127.0.0.5, a trusted source, PCMU only, RTP echo) calls a DID; the DID's
   * user answers on a SIP.js WebRTC phone over WS. rtpengine bridges RTP/AVP ⇄ DTLS-SRTP; the phone hears
   * its own tone echoed by the trunk; the trunk hangs up.
   */
  async 'pstn-did-to-webrtc'(result) {
    const env = await environment({ rtpengines: 1, alwaysRelay: false });
    const bob = await webrtcPhone(env, 'bob', 880, { library: 'sip.js' });
    await trunkCallsDid(env, result, bob.aor, () => bob.answer(), 880);
  },

  /**
   * The same DID call to an iOS app that is asleep (RFC 8599): it registered with pn-provider/pn-prid/pn-param
   * and an instance id, then its connection died without an un-REGISTER. The trunk's call makes the server
   * send one VoIP push to the local APNs; on it a new instance of the app (same instance id and push token)
   * connects, registers, gets the INVITE and answers, and hears its own tone echoed by the trunk.
   */
  async 'pstn-did-to-woken-webrtc'(result) {
    const apns = await startFakeApns();
    const keys = mkdtempSync(join(tmpdir(), 'softswitch-apns-'));
    const env = await environment({ rtpengines: 1, alwaysRelay: false, push: { wakeTimeout: 5, ...apnsPushConfig(apns, keys) } });
    env.cleanups.unshift(async () => {
      await apns.close();
      rmSync(keys, { recursive: true, force: true });
    });
    const u = await addUser(env, 'bob');
    const app = {
      uri: u.aor, password: u.password, wsUrl: `ws://${env.ts.addr('ws')}`, toneHz: 880, instanceId: randomUUID(),
      contactParams: { 'pn-provider': 'apns', 'pn-prid': apnsDeviceToken(), 'pn-param': `${apns.teamId}.${apns.bundleId}.voip` },
    };
    const asleep = await SipJsWebRtcPhone.create(app);
    env.cleanups.push(() => asleep.stop());
    await asleep.register();
    await asleep.sleep();
    const pushed = once(apns, 'push');
    let woken: SipJsWebRtcPhone | undefined;
    await trunkCallsDid(env, result, u.aor, async () => {
      await withTimeout(pushed, 10_000, 'the VoIP push');
      // iOS starts the app: a new phone with the same instance id and push token connects and registers
      const phone = await SipJsWebRtcPhone.create(app);
      env.cleanups.push(() => phone.stop());
      woken = phone;
      await phone.register();
      return phone.answer();
    }, 880);
    result.facts.pushes = apns.pushes.map((p) => ({ token: p.token, pushType: p.headers['apns-push-type'], topic: p.headers['apns-topic'], kind: p.payload.kind }));
    result.facts.token = app.contactParams['pn-prid'];
    result.facts.voipTopic = `${apns.bundleId}.voip`;
    result.facts.invitesToWokenApp = woken?.invitesReceived;
  },

  /**
   * Behind a firewall that lets only TURN out (issue 17): phones with `iceTransportPolicy: 'relay'` and the ICE
   * servers GET /v1/ice-servers gives them, here coturn from Debian run with the repo's turn/turnserver.conf as
   * is (its peer deny rules included). A JsSIP phone calls a SIP.js phone (media end to end, relay to relay), then
   * calls SIPp (rtpengine bridges it to plain RTP: its ICE meets the relay candidates).
   */
  async 'relay-only-coturn'(result) {
    const secret = randomBytes(24).toString('hex');
    const coturn = await startCoturn({ secret, realm: DOMAIN, address: PUBLIC_ADDRESS });
    try {
      const env = await environment({
        rtpengines: 1, alwaysRelay: false, mediaAddress: PUBLIC_ADDRESS,
        turn: { secret, servers: [{ urls: [`turn:${PUBLIC_ADDRESS}:${coturn.port}?transport=udp`] }] },
      });
      env.cleanups.unshift(() => coturn.stop());
      await relayOnlyCalls(env, result);
    } catch (err) {
      (err as Error).message += `\ncoturn:\n${coturn.logTail()}`;
      throw err;
    }
  },

  /** The same with no turn.servers: the softswitch's embedded STUN/TURN server (turn.listen) relays. */
  async 'relay-only-embedded'(result) {
    const env = await environment({
      rtpengines: 1, alwaysRelay: false, mediaAddress: PUBLIC_ADDRESS, turn: { listen: `${PUBLIC_ADDRESS}:${await freePort()}` },
    });
    await relayOnlyCalls(env, result);
    result.facts.embedded = env.ts.server.turn.stats();
  },

  /**
   * Two rtpengines. Call 1 lands on one (X); X is killed mid-call; call 2 must go to the other (Y).
   * X is restarted on its port; the pool's health ping brings it back; Y is then stopped, and call 3
   * must be carried by X again.
   */
  async 'rtpengine-failover'(result) {
    const env = await environment({ rtpengines: 2, alwaysRelay: false });
    const sipp = await sippEchoUas(env, 3);
    const alice = await webrtcPhone(env, 'alice', 440);
    let x: RtpengineHandle | undefined;
    const first = await measuredCall(env, alice, 440, sipp.aor, { beforeHangup: async (_call, node) => {
      if (!node) throw new Error('call 1 is on no rtpengine');
      x = node;
      node.kill();
      await sleep(200);
    } });
    result.calls.push(first);
    if (!x) throw new Error('no node took call 1');
    const y = env.rtpengines.find((r) => r !== x)!;
    result.facts.x = x.ng;
    result.facts.y = y.ng;
    // the BYE's delete to the dead node timed out and marked it down (or the next offer will)
    result.facts.xDownAfterMs = await waitForHealth(env, x, false, 5000).catch((err: Error) => err.message);

    result.calls.push(await measuredCall(env, alice, 440, sipp.aor));

    await x.restart();
    result.facts.xBackUpAfterMs = await waitForHealth(env, x, true, 15_000);
    await y.stop();
    result.calls.push(await measuredCall(env, alice, 440, sipp.aor));
    result.facts.health = await healthOf(env);
    result.sipp = await sipp.done;
  },
};

/** The two relay-only calls of the TURN scenarios: WebRTC ⇄ WebRTC end to end, then WebRTC → plain SIPp through rtpengine. */
async function relayOnlyCalls(env: Env, result: MediaResult): Promise<void> {
  const sipp = await sippEchoUas(env, 1);
  const alice = await webrtcPhone(env, 'alice', 440, { relayOnly: true });
  const bob = await webrtcPhone(env, 'bob', 880, { library: 'sip.js', relayOnly: true });
  result.calls.push(await measuredCall(env, alice, 440, bob.aor, { callee: { phone: bob, toneHz: 880 } }));
  result.calls.push(await measuredCall(env, alice, 440, sipp.aor));
  result.sipp = await sipp.done;
  result.facts.iceServerUrls = iceServersSeen;
}

let current: Env | undefined;

async function cleanup(): Promise<void> {
  const env = current;
  current = undefined;
  if (!env) return;
  for (const fn of env.cleanups.reverse()) {
    try {
      await Promise.race([fn(), sleep(6000)]);
    } catch {
      // best effort: the namespace goes with the test
    }
  }
}

async function main(): Promise<void> {
  const name = process.argv[2] ?? '';
  const result: MediaResult = { scenario: name, calls: [], facts: {} };
  const killer = setTimeout(() => {
    result.error = `the runner did not finish within ${RUNNER_TIMEOUT_MS} ms`;
    result.logs = [...(current?.rtpengines.map((r) => `${r.ng}:\n${r.logTail()}`) ?? []), `SIPp:\n${current?.sippOutput?.() ?? ''}`].join('\n');
    void Promise.race([cleanup(), sleep(3000)]).finally(() => {
      process.stdout.write(`MEDIA-RESULT ${JSON.stringify(result)}\n`, () => process.exit(3));
    });
  }, RUNNER_TIMEOUT_MS);
  const scenario = scenarios[name];
  try {
    if (!scenario) throw new Error(`unknown scenario "${name}" (known: ${Object.keys(scenarios).join(', ')})`);
    await scenario(result);
  } catch (err) {
    result.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    result.logs = [...(current?.rtpengines.map((r) => `${r.ng}:\n${r.logTail()}`) ?? []), `SIPp:\n${current?.sippOutput?.() ?? ''}`].join('\n');
  }
  await cleanup();
  clearTimeout(killer);
  process.stdout.write(`MEDIA-RESULT ${JSON.stringify(result)}\n`, () => process.exit(result.error ? 1 : 0));
}

void main();
