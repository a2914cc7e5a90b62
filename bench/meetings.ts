/**
 * Meetings on one Janus videoroom (issue 19): Janus's CPU per forwarded stream-second, its memory per subscriber, and
 * join times, for a meeting where everyone publishes and sees everyone, and a webinar (one publisher, many viewers).
 *
 * `npm run bench -- meetings [meeting|webinar|both=both] [participants=10] [viewers=50] [window s=10] [runs=1]`
 * (`BENCH_MEETINGS_VIDEO=640x360@30` sets the cameras). Each run of a scenario gets a fresh Janus (Debian `janus`,
 * test/helpers/janus.ts) in one network namespace and the peers (bench/meetings-peers.ts, libwebrtc) in another,
 * joined by the veth pair of test/helpers/janus-netns.ts (Janus ignores loopback for media); both namespaces are
 * deleted after each run, which kills whatever is left in them.
 *
 * Janus's CPU is utime+stime of its process (all its threads) from /proc between the peers' `MEETINGS-STEADY` and
 * `MEETINGS-END` lines: every subscriber has decoded a frame of each of its videos, and media has flowed `settle`
 * more seconds. A forwarded stream is one m-line Janus sends to one subscriber (audio or video). Memory is Janus's
 * RSS before the room and at the end of the window.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JanusNetns } from '../test/helpers/janus-netns.js';
import { startJanus, type JanusServer } from '../test/helpers/janus.js';
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
  const m = /^(\d+)x(\d+)@(\d+)$/.exec(text);
  if (m === null) throw new TypeError(`BENCH_MEETINGS_VIDEO must look like 640x360@30, got ${text}`);
  return { width: Number(m[1]), height: Number(m[2]), fps: Number(m[3]) };
}

interface Measured {
  janusCpuSeconds: number;
  windowSeconds: number;
  rssBeforeMiB: number;
  rssSteadyMiB: number;
  peers: PeersResult;
}

/** Janus and the peers for one scenario; the namespaces and Janus are gone when it returns or throws. */
async function runScenario(scenario: Scenario, video: PeersConfig['video'], windowMs: number): Promise<Measured> {
  const net = JanusNetns.create('bmeet');
  let janus: JanusServer | undefined;
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
    const config: PeersConfig = {
      url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret,
      publishers: scenario.publishers, subscribers: scenario.subscribers, video, settleMs: SETTLE_MS, windowMs,
    };
    return { ...(await drivePeers(net, janus, config)), rssBeforeMiB };
  } finally {
    try {
      await janus?.stop();
    } finally {
      net.destroy();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

/** Runs the peers, reading Janus's CPU and memory when they open and close the window; resolves with their result. */
function drivePeers(net: JanusNetns, janus: JanusServer, config: PeersConfig): Promise<Omit<Measured, 'rssBeforeMiB'>> {
  const [cmd, args] = net.peers.exec(process.execPath, ['--enable-source-maps', PEERS]);
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MEETINGS_PEERS_CONFIG: JSON.stringify(config), MEETINGS_PEERS_TIMEOUT_MS: String(PEERS_TIMEOUT_MS - 10_000) },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-6000)));
  let start: { cpu: number; at: bigint } | undefined;
  let end: { cpu: number; at: bigint; rss: number } | undefined;
  let result: PeersResult | undefined;
  let pending = '';
  child.stdout.on('data', (d: Buffer) => {
    pending += d.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line === 'MEETINGS-STEADY') start = { cpu: cpuSeconds(janus.pid), at: process.hrtime.bigint() };
      else if (line === 'MEETINGS-END') end = { cpu: cpuSeconds(janus.pid), at: process.hrtime.bigint(), rss: rssMiB(janus.pid) };
      else if (line.startsWith('MEETINGS-RESULT ')) result = JSON.parse(line.slice('MEETINGS-RESULT '.length)) as PeersResult;
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), PEERS_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (result?.error !== undefined || start === undefined || end === undefined || result === undefined) {
        reject(new Error(`the peers failed (exit ${code}): ${result?.error ?? 'no result'}\n${stderr}\njanus:\n${janus.logTail(20)}`));
        return;
      }
      resolve({ janusCpuSeconds: end.cpu - start.cpu, windowSeconds: Number(end.at - start.at) / 1e9, rssSteadyMiB: end.rss, peers: result });
    });
  });
}

const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);
const min = (xs: number[]): number => Math.min(...xs);

/** One table row and the figures behind it. */
function report(scenario: Scenario, m: Measured, load: number): string {
  const { peers } = m;
  const streams = peers.subscribers.flatMap((s) => s.streams);
  const forwarded = streams.length;
  const cpuMs = m.janusCpuSeconds * 1000;
  const perStream = cpuMs / (forwarded * m.windowSeconds);
  const subs = scenario.subscribers.length;
  const joins = peers.subscribers.map((s) => s.joinMs ?? Number.NaN).sort((a, b) => a - b);
  const connected = peers.subscribers.map((s) => s.connectedMs ?? Number.NaN);
  // keeping up: what each subscriber got of what its publisher sent in the same window
  const ratio = (s: SubscribedStream, sent: (p: PeersResult['publishers'][number]) => number, got: number): number => got / Math.max(1, sent(peers.publishers[s.publisher]!));
  const videoRatios = streams.filter((s) => s.kind === 'video').map((s) => ratio(s, (p) => p.video.frames, s.counts.frames));
  const audioRatios = streams.filter((s) => s.kind === 'audio').map((s) => ratio(s, (p) => p.audio.packets, s.counts.packets));
  const sent = peers.publishers;
  const w = peers.windowMs / 1000;
  const fps = median(sent.map((p) => p.video.frames / w));
  const kbps = median(sent.map((p) => (p.video.bytes * 8) / w / 1000));
  const videoPps = median(sent.map((p) => p.video.packets / w));
  const resolution = [...new Set(sent.map((p) => `${p.frameWidth}×${p.frameHeight}`))].join(', ');
  const pct = (x: number): string => `${fmt(x * 100, 1)} %`;
  return [
    `| ${scenario.name} | ${fmt(forwarded)} | ${fmt(m.windowSeconds, 1)} | ${fmt(m.janusCpuSeconds / m.windowSeconds, 2)} | ${fmt(perStream, 3)} | ${fmt(perStream * 2, 3)}`,
    `| ${fmt(m.rssBeforeMiB, 1)} → ${fmt(m.rssSteadyMiB, 1)} | ${fmt((m.rssSteadyMiB - m.rssBeforeMiB) / subs, 2)}`,
    `| ${fmt(percentile(joins, 50))} / ${fmt(percentile(joins, 95))} / ${fmt(joins[joins.length - 1] ?? Number.NaN)} | ${fmt(median(connected))}`,
    `| ${pct(min(videoRatios))} / ${pct(median(videoRatios))} | ${pct(min(audioRatios))} / ${pct(median(audioRatios))}`,
    `| ${resolution} ${fmt(fps, 1)} fps, ${fmt(kbps)} kbit/s, ${fmt(videoPps)} pkt/s | ${fmt(median(sent.map((p) => p.publishMs)))} | ${fmt(peers.peersCpuMs / peers.windowMs, 2)} | ${fmt(load, 2)} |`,
  ].join(' ');
}

const HEADER = [
  '| scenario | forwarded streams | window s | Janus cores | Janus CPU ms per stream-second | per audio+video pair-second',
  '| Janus RSS MiB before → steady | MiB per subscriber | join → all videos decoded p50 / p95 / max ms | join → connected p50 ms',
  '| video frames decoded / sent min / median | audio packets received / sent min / median',
  '| publishers sent (median) | publish → webrtcup p50 ms | peers cores | load avg before |',
].join(' ');

async function main(): Promise<void> {
  requireTool('janus', 'janus');
  requireTool('ip', 'iproute2');
  const [which = 'both', participantsArg = '10', viewersArg = '50', windowArg = '10', runsArg = '1'] = process.argv.slice(2);
  if (!['meeting', 'webinar', 'both'].includes(which)) throw new TypeError(`scenario must be meeting, webinar or both, got ${which}`);
  const video = parseVideo(process.env.BENCH_MEETINGS_VIDEO ?? '640x360@30');
  const scenarios = [
    ...(which !== 'webinar' ? [meeting(Number(participantsArg))] : []),
    ...(which !== 'meeting' ? [webinar(Number(viewersArg))] : []),
  ];
  console.log(`Janus videoroom, VP8 ${video.width}×${video.height} @ ${video.fps} fps + Opus, window ${windowArg} s after ${SETTLE_MS / 1000} s of settling`);
  const rows: string[] = [];
  for (let run = 1; run <= Number(runsArg); run++) {
    for (const scenario of scenarios) {
      const load = loadAverage();
      const measured = await runScenario(scenario, video, Number(windowArg) * 1000);
      rows.push(report(scenario, measured, load));
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
