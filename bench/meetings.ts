/**
 * Meetings on one Janus videoroom (issue 19): Janus's CPU per forwarded stream-second, its memory per subscriber, and
 * join times, for a meeting where everyone publishes and sees everyone, and a webinar (one publisher, many viewers).
 *
 * `npm run bench -- meetings [meeting|webinar|both=both] [participants=10] [viewers=50] [window s=10] [runs=1]`;
 * `BENCH_MEETINGS_VIDEO=640x360@30:1000` sets the cameras (size, frame rate, kbit/s), `BENCH_MEETINGS_PROCESSES=4` how many processes share the
 * peers, `BENCH_MEETINGS_DECODE=1` has the subscribers decode the video (two cores cannot for more than a few: by
 * default they receive everything and decode no video, see bench/meetings-peers.ts).
 *
 * Each run of a scenario gets a fresh Janus (Debian `janus`, support/janus.ts) in one network namespace and the
 * peers (bench/meetings-peers.ts, libwebrtc) in another, joined by the veth pair of support/janus-netns.ts
 * (Janus ignores loopback for media); both namespaces are deleted after each run, which kills whatever is left.
 *
 * Janus's CPU is utime+stime of its process (all its threads) from /proc over a window that opens SETTLE_MS after
 * the last subscriber has its first frames. A forwarded stream is one m-line Janus sends to one subscriber (audio or
 * video). Memory is Janus's RSS before the room and at the end of the window.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JanusNetns } from '../support/janus-netns.js';
import { startJanus, type JanusServer } from '../support/janus.js';
import { requireTool } from '../support/tools.js';
import { cpuSeconds, fmt, loadAverage, percentile, rssMiB, sleep } from './lib.js';
import type { PeersConfig, PeersResult, SubscribedStream } from './meetings-peers.js';

const PEERS = join(dirname(fileURLToPath(import.meta.url)), 'meetings-peers.js');
const PEERS_TIMEOUT_MS = 240_000;
/** Media flowing to everyone before the window opens (encoders ramping up their bitrate). */
const SETTLE_MS = 5000;

interface Scenario {
  name: string;
  publishers: number;
  subscribers: number[][];
}

/** Everyone publishes and receives the others: n × (n − 1) audio+video pairs. */
function meeting(participants: number): Scenario {
  const all = Array.from({ length: participants }, (_, i) => i);
  return { name: `meeting of ${participants}`, publishers: participants, subscribers: all.map((i) => all.filter((j) => j !== i)) };
}

/** One publisher, `viewers` subscribers of its audio and video. */
function webinar(viewers: number): Scenario {
  return { name: `webinar 1 → ${viewers}`, publishers: 1, subscribers: Array.from({ length: viewers }, () => [0]) };
}

function parseVideo(text: string): PeersConfig['video'] {
  const m = /^(\d+)x(\d+)@(\d+):(\d+)$/.exec(text);
  if (m === null) throw new TypeError(`BENCH_MEETINGS_VIDEO must look like 640x360@30:1000 (kbit/s), got ${text}`);
  return { width: Number(m[1]), height: Number(m[2]), fps: Number(m[3]), kbps: Number(m[4]) };
}

interface Measured {
  janusCpuSeconds: number;
  windowSeconds: number;
  rssBeforeMiB: number;
  rssSteadyMiB: number;
  /** Datagrams the kernel dropped in the window for want of room in a socket's receive buffer, per namespace. */
  udpDrops: { janus: number; peers: number };
  /** The peers' results merged: publishers and subscribers in index order, CPU summed, the longest window. */
  peers: PeersResult;
}

/** Janus and the peers for one scenario; the namespaces and Janus are gone when it returns or throws. */
async function runScenario(scenario: Scenario, video: PeersConfig['video'], decode: boolean, processes: number, windowMs: number): Promise<Measured> {
  const net = JanusNetns.create('bmeet');
  let janus: JanusServer | undefined;
  const peers: PeersProcess[] = [];
  const onSignal = (): void => {
    net.destroy();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // one bundled PeerConnection per publisher and per subscriber, each on a port of Janus's range
    const peerConnections = scenario.publishers + scenario.subscribers.length;
    janus = await startJanus({ netns: net.server.name, listenAddress: net.serverAddress, iceEnforceList: JanusNetns.VETH, rtpPortCount: peerConnections + 20 });
    await sleep(1000);
    const rssBeforeMiB = rssMiB(janus.pid);
    const base = {
      url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret, video, decode,
      room: 1 + randomInt(1_000_000_000), secret: randomBytes(8).toString('hex'), roomPublishers: scenario.publishers,
    };
    // participant i (its publisher and its subscriber) in process i mod N; the first process creates the room
    const count = Math.min(processes, Math.max(scenario.publishers, scenario.subscribers.length));
    const configs: PeersConfig[] = range(count).map((p) => ({
      ...base,
      createRoom: p === 0,
      publishers: range(scenario.publishers).filter((i) => i % count === p),
      subscribers: scenario.subscribers.map((feeds, index) => ({ index, feeds })).filter(({ index }) => index % count === p),
    }));
    peers.push(new PeersProcess(net, configs[0]!));
    await peers[0]!.next('MEETINGS-READY');
    for (const config of configs.slice(1)) peers.push(new PeersProcess(net, config));
    await Promise.all(peers.slice(1).map((p) => p.next('MEETINGS-READY')));
    await step(peers, 'publish', 'MEETINGS-PUBLISHED');
    await step(peers, 'subscribe', 'MEETINGS-SUBSCRIBED');
    await sleep(SETTLE_MS);
    await step(peers, 'snapshot', 'MEETINGS-SNAPPED');
    const drops = (): { janus: number; peers: number } => ({ janus: udpRcvbufErrors(janus!.pid), peers: udpRcvbufErrors(peers[0]!.pid) });
    const start = { cpu: cpuSeconds(janus.pid), at: process.hrtime.bigint(), drops: drops() };
    await sleep(windowMs);
    const end = { cpu: cpuSeconds(janus.pid), at: process.hrtime.bigint(), rss: rssMiB(janus.pid), drops: drops() };
    await step(peers, 'snapshot', 'MEETINGS-SNAPPED');
    // the room's creator last: the others leave their handles before the room goes
    const results = await Promise.all(peers.slice(1).map((p) => p.finish()));
    results.unshift(await peers[0]!.finish());
    return {
      janusCpuSeconds: end.cpu - start.cpu,
      windowSeconds: Number(end.at - start.at) / 1e9,
      rssBeforeMiB,
      rssSteadyMiB: end.rss,
      udpDrops: { janus: end.drops.janus - start.drops.janus, peers: end.drops.peers - start.drops.peers },
      peers: {
        publishers: results.flatMap((r) => r.publishers).sort((a, b) => a.index - b.index),
        subscribers: results.flatMap((r) => r.subscribers).sort((a, b) => a.index - b.index),
        windowMs: Math.max(...results.map((r) => r.windowMs)),
        peersCpuMs: results.reduce((sum, r) => sum + r.peersCpuMs, 0),
      },
    };
  } catch (err) {
    throw new Error(`${(err as Error).message}\njanus:\n${janus?.logTail(20) ?? ''}`);
  } finally {
    try {
      for (const p of peers) p.kill();
      await janus?.stop();
    } finally {
      net.destroy();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Sends a command to every peers process and waits for each one's answer. */
async function step(peers: PeersProcess[], command: string, answer: string): Promise<void> {
  for (const p of peers) p.send(command);
  await Promise.all(peers.map((p) => p.next(answer)));
}

/** One process of peers (bench/meetings-peers.ts) in the peers' namespace: commands on its stdin, answers on its stdout. */
class PeersProcess {
  readonly pid: number;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private stderr = '';
  private closed = false;

  constructor(net: JanusNetns, config: PeersConfig) {
    const [cmd, args] = net.peers.exec(process.execPath, ['--enable-source-maps', PEERS]);
    this.child = spawn(cmd, args, {
      env: { ...process.env, MEETINGS_PEERS_CONFIG: JSON.stringify(config), MEETINGS_PEERS_TIMEOUT_MS: String(PEERS_TIMEOUT_MS) },
    });
    this.pid = this.child.pid!;
    let pending = '';
    this.child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith('MEETINGS-')) this.lines.push(line);
      }
      this.waiter?.();
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-6000)));
    this.child.once('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  send(command: string): void {
    if (!this.closed) this.child.stdin.write(`${command}\n`);
  }

  /** The next line the process says, which must start with `tag`; its failure (with its error) otherwise. */
  async next(tag: string, timeoutMs = PEERS_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error(`the peers (pid ${this.pid}) exited before "${tag}":\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`the peers (pid ${this.pid}) said nothing within ${timeoutMs} ms waiting for "${tag}"`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 1000);
      });
    }
    const line = this.lines.shift()!;
    if (line.startsWith('MEETINGS-RESULT ')) {
      const result = JSON.parse(line.slice('MEETINGS-RESULT '.length)) as PeersResult;
      if (result.error !== undefined) throw new Error(`the peers (pid ${this.pid}) failed: ${result.error}\n${this.stderr}`);
    }
    if (!line.startsWith(tag)) throw new Error(`the peers (pid ${this.pid}) said "${line.slice(0, 200)}", not "${tag}"`);
    return line;
  }

  async finish(): Promise<PeersResult> {
    this.send('finish');
    const line = await this.next('MEETINGS-RESULT ');
    return JSON.parse(line.slice('MEETINGS-RESULT '.length)) as PeersResult;
  }

  kill(): void {
    if (!this.closed) this.child.kill('SIGKILL');
  }
}

/** UDP datagrams dropped for a full receive buffer in the network namespace of process `pid` (/proc/PID/net/snmp). */
function udpRcvbufErrors(pid: number): number {
  const [names, values] = readFileSync(`/proc/${pid}/net/snmp`, 'utf8').split('\n').filter((l) => l.startsWith('Udp: ')).map((l) => l.split(/\s+/));
  return Number(values?.[names?.indexOf('RcvbufErrors') ?? -1] ?? 0);
}

const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);
const min = (xs: number[]): number => Math.min(...xs);

/** One table row and the figures behind it. */
function report(scenario: Scenario, m: Measured, decode: boolean, load: number): string {
  const { peers } = m;
  const streams = peers.subscribers.flatMap((s) => s.streams);
  const forwarded = streams.length;
  const cpuMs = m.janusCpuSeconds * 1000;
  const perStream = cpuMs / (forwarded * m.windowSeconds);
  // what Janus had to send: each connected subscriber's streams at the rate their publishers sent them (publishers
  // starved of CPU send fewer frames, which a per-stream figure would hide)
  const owed = peers.subscribers.filter((s) => s.connectionState === 'connected').flatMap((s) => s.streams)
    .reduce((n, s) => n + (s.kind === 'video' ? peers.publishers[s.publisher]!.video.packets : peers.publishers[s.publisher]!.audio.packets), 0)
    * (m.windowSeconds * 1000 / peers.windowMs);
  const perPacketUs = (cpuMs * 1000) / owed;
  const subs = scenario.subscribers.length;
  const joins = peers.subscribers.map((s) => s.joinMs ?? Number.NaN).sort((a, b) => a - b);
  const connected = peers.subscribers.map((s) => s.connectedMs ?? Number.NaN);
  // keeping up: what each subscriber got of what its publisher sent in the same window
  const ratio = (s: SubscribedStream, sent: (p: PeersResult['publishers'][number]) => number, got: number): number => got / Math.max(1, sent(peers.publishers[s.publisher]!));
  const videoRatios = streams.filter((s) => s.kind === 'video')
    .map((s) => (decode ? ratio(s, (p) => p.video.frames, s.counts.frames) : ratio(s, (p) => p.video.packets, s.counts.packets)));
  // without decoding, none should be: a subscriber that decoded would mean Janus rewrote the payload type
  const decoded = streams.reduce((n, s) => n + s.counts.frames, 0);
  const audioRatios = streams.filter((s) => s.kind === 'audio').map((s) => ratio(s, (p) => p.audio.packets, s.counts.packets));
  const sent = peers.publishers;
  const w = peers.windowMs / 1000;
  const fps = median(sent.map((p) => p.video.frames / w));
  const kbps = median(sent.map((p) => (p.video.bytes * 8) / w / 1000));
  const videoPps = median(sent.map((p) => p.video.packets / w));
  const resolution = [...new Set(sent.map((p) => `${p.frameWidth}×${p.frameHeight}`))].join(', ');
  const pct = (x: number): string => `${fmt(x * 100, 1)} %`;
  return [
    `| ${scenario.name} | ${fmt(forwarded)} | ${fmt(m.windowSeconds, 1)} | ${fmt(m.janusCpuSeconds / m.windowSeconds, 2)} | ${fmt(perStream, 3)} | ${fmt(perStream * 2, 3)} | ${fmt(perPacketUs, 1)}`,
    `| ${fmt(m.rssBeforeMiB, 1)} → ${fmt(m.rssSteadyMiB, 1)} | ${fmt((m.rssSteadyMiB - m.rssBeforeMiB) / subs, 2)}`,
    `| ${peers.subscribers.filter((s) => s.connectionState === 'connected').length} of ${subs} | ${fmt(m.udpDrops.janus)} / ${fmt(m.udpDrops.peers)}`,
    `| ${fmt(percentile(joins, 50))} / ${fmt(percentile(joins, 95))} / ${fmt(joins[joins.length - 1] ?? Number.NaN)} | ${fmt(median(connected))}`,
    `| ${pct(min(videoRatios))} / ${pct(median(videoRatios))}${decode ? '' : ` (${fmt(decoded)} frames decoded)`} | ${pct(min(audioRatios))} / ${pct(median(audioRatios))}`,
    `| ${resolution} ${fmt(fps, 1)} fps, ${fmt(kbps)} kbit/s, ${fmt(videoPps)} pkt/s; ${fmt(median(sent.map((p) => p.keyFrames)))} keyframes, ${fmt(median(sent.map((p) => p.plis)))} PLIs`,
    `| ${fmt(median(sent.map((p) => p.publishMs)))} | ${fmt(peers.peersCpuMs / peers.windowMs, 2)} | ${fmt(load, 2)} |`,
  ].join(' ');
}

const HEADER = [
  '| scenario | forwarded streams | window s | Janus cores | Janus CPU ms per stream-second | per audio+video pair-second | Janus CPU µs per packet owed to connected subscribers',
  '| Janus RSS MiB before → steady | MiB per subscriber | subscribers connected at the end | UDP datagrams dropped in the window (receive buffers full) Janus / peers | join → all videos decoded p50 / p95 / max ms | join → connected p50 ms',
  '| video frames decoded (without decoding: packets received) / sent min / median | audio packets received / sent min / median',
  '| each publisher sent in the window (median) | publish → webrtcup p50 ms | peers cores | load avg before |',
].join(' ');

async function main(): Promise<void> {
  requireTool('janus', 'janus');
  requireTool('ip', 'iproute2');
  const [which = 'both', participantsArg = '10', viewersArg = '50', windowArg = '10', runsArg = '1'] = process.argv.slice(2);
  if (!['meeting', 'webinar', 'both'].includes(which)) throw new TypeError(`scenario must be meeting, webinar or both, got ${which}`);
  const video = parseVideo(process.env.BENCH_MEETINGS_VIDEO ?? '640x360@30:1000');
  // BENCH_MEETINGS_DECODE=1: the subscribers decode every video (too much for 2 cores beyond a few subscribers)
  const decode = process.env.BENCH_MEETINGS_DECODE === '1';
  const processes = Number(process.env.BENCH_MEETINGS_PROCESSES ?? 4);
  if (!Number.isInteger(processes) || processes < 1) throw new TypeError(`BENCH_MEETINGS_PROCESSES must be a whole number ≥ 1, got ${process.env.BENCH_MEETINGS_PROCESSES}`);
  const scenarios = [
    ...(which !== 'webinar' ? [meeting(Number(participantsArg))] : []),
    ...(which !== 'meeting' ? [webinar(Number(viewersArg))] : []),
  ];
  console.log(`Janus videoroom, VP8 ${video.width}×${video.height} @ ${video.fps} fps ${video.kbps} kbit/s + Opus, subscribers ${decode ? 'decoding' : 'not decoding'} video, peers in ${processes} processes, window ${windowArg} s after ${SETTLE_MS / 1000} s of settling`);
  const rows: string[] = [];
  for (let run = 1; run <= Number(runsArg); run++) {
    for (const scenario of scenarios) {
      const load = loadAverage();
      const measured = await runScenario(scenario, video, decode, processes, Number(windowArg) * 1000);
      rows.push(report(scenario, measured, decode, load));
      console.log(rows[rows.length - 1]);
      await sleep(2000);
    }
  }
  console.log(`\n${HEADER}\n${HEADER.replace(/[^|]+/g, '---')}\n${rows.join('\n')}`);
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
