/**
 * Real media through a real Janus videoroom (issue 19's groundwork). Janus ignores loopback for ICE, so Janus runs in
 * one network namespace and the participants in another, joined by a veth pair on private addresses
 * (support/janus-netns.ts): no packet leaves the machine. The participants are libwebrtc peers (`@roamhq/wrtc`)
 * in a child process inside the peers' namespace (janus-media-runner.ts), which drives Janus through our own
 * conference/janus client (a stored token from the Admin API, VideoRoomAdmin for the room, JanusHandle.message for
 * join, publish, start and update) and prints what each subscriber received and decoded; the assertions are here.
 * JANUS_MEDIA_VERBOSE=1 prints the runner's whole report (frames, packets, timings, CPU of the runner and of Janus).
 *
 * Whatever happens, the runner is killed after RUNNER_TIMEOUT_MS, Janus is stopped and both namespaces are deleted
 * (which kills what is left in them and removes the veth pair).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runTagged } from '../helpers/runner.js';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTool } from '../../support/tools.js';
import { JanusNetns } from '../../support/janus-netns.js';
import { startJanus, type JanusServer } from '../../support/janus.js';
import type { JanusMediaResult, RunnerConfig, StreamReport, SubscriberReport } from './janus-media-runner.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'janus-media-runner.js');
const RUNNER_TIMEOUT_MS = 50_000;
/** How long media flows to the subscribers before they are measured: the bound is "within ~10 s". */
const MEASURE_MS = 6000;
const MIN_VIDEO_FRAMES = 30;
const MIN_AUDIO_PACKETS = 50;

/** CPU time (user + system, ms) Janus has used so far, from /proc/PID/stat (clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

describe('media through a Janus videoroom between two network namespaces (veth pair, private /30)', () => {
  let net: JanusNetns | undefined;
  let janus: JanusServer | undefined;
  let result: JanusMediaResult;
  let janusCpuMs = 0;

  before(async () => {
    requireTool('janus', 'janus');
    requireTool('ip', 'iproute2');
    net = JanusNetns.create('jmedia');
    janus = await startJanus({ netns: net.server.name, listenAddress: net.serverAddress, iceEnforceList: JanusNetns.VETH });
    const cpuBefore = cpuMsOf(janus.pid);
    const config: RunnerConfig = { url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret, subscribers: 2, screen: true, measureMs: MEASURE_MS };
    const { result: line, code, stdout, stderr } = await runTagged(net.peers.exec(process.execPath, ['--enable-source-maps', RUNNER]),
      { JANUS_MEDIA_CONFIG: JSON.stringify(config), JANUS_MEDIA_RUNNER_TIMEOUT_MS: String(RUNNER_TIMEOUT_MS - 5000) }, 'JANUS-MEDIA-RESULT', RUNNER_TIMEOUT_MS);
    janusCpuMs = cpuMsOf(janus.pid) - cpuBefore;
    if (line === undefined) assert.fail(`janus media runner gave no result (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}\njanus:\n${janus.logTail()}`);
    result = JSON.parse(line) as JanusMediaResult;
    if (result.error !== undefined) assert.fail(`janus media runner failed: ${result.error}\n${stderr}\njanus:\n${janus.logTail()}`);
    if (process.env.JANUS_MEDIA_VERBOSE === '1') process.stderr.write(`${JSON.stringify({ ...result, janusCpuMs }, null, 1)}\n`);
  });

  after(async () => {
    try {
      await janus?.stop();
    } finally {
      net?.destroy();
    }
  });

  const subscriber = (name: string): SubscriberReport => {
    const s = result.subscribers.find((x) => x.name === name);
    assert.ok(s, `no report for ${name}: ${JSON.stringify(result.subscribers.map((x) => x.name))}`);
    return s;
  };
  const streamOf = (sub: SubscriberReport, display: string, kind: 'audio' | 'video'): StreamReport => {
    const s = sub.streams.find((x) => x.feedDisplay === display && x.kind === kind);
    assert.ok(s, `${sub.name} has no ${kind} stream of "${display}": ${JSON.stringify(sub.streams)}`);
    return s;
  };
  const seen = (s: StreamReport): string =>
    `packets ${s.packetsReceived}, decoded ${s.framesDecoded} (${s.keyFramesDecoded} keyframes, ${s.sinkFrames} at the sink, first after ${s.firstFrameMs ?? '-'} ms), ${s.frameWidth ?? '?'}x${s.frameHeight ?? '?'} ${s.codec ?? ''}`;

  it('the namespaces hold loopback and their end of the veth pair only, and Janus offers candidates on its veth address only', () => {
    assert.ok(net);
    for (const ns of [net.server, net.peers]) assert.deepEqual(net.links(ns), ['lo', JanusNetns.VETH]);
    assert.deepEqual(net.addresses(net.server), ['lo 127.0.0.1/8', `${JanusNetns.VETH} ${net.serverAddress}/30`]);
    assert.deepEqual(net.addresses(net.peers), ['lo 127.0.0.1/8', `${JanusNetns.VETH} ${net.peerAddress}/30`]);
    for (const ns of [net.server, net.peers]) {
      const routes = net.routes(ns);
      // the /30 and the kernel's local and broadcast entries of lo and the veth: no default, no gateway
      assert.ok(routes.some((r) => r.startsWith(`10.231.19.0/30 dev ${JanusNetns.VETH} `)), routes.join('\n'));
      for (const r of routes) assert.ok(!/^default|\bvia\b/.test(r) && new RegExp(`\\bdev (lo|${JanusNetns.VETH})\\b`).test(r), `route in ${ns.name}: ${r}`);
    }
    const offered = [...result.publishers.flatMap((p) => p.janusCandidates), ...result.subscribers.flatMap((s) => s.janusCandidates)];
    assert.ok(offered.length > 0, 'Janus sent SDP without candidates');
    for (const c of offered) assert.ok(c.startsWith(`${net.serverAddress}:`), `Janus offered ${c}`);
    for (const s of result.subscribers) assert.ok(s.selectedRemote?.startsWith(`${net.serverAddress}:`), `${s.name} selected ${s.selectedRemote}`);
  });

  it('the publisher\'s audio (Opus) and camera (VP8) are published, and Janus\'s PeerConnection is up', () => {
    const cam = result.publishers.find((p) => p.name === 'camera');
    assert.ok(cam, JSON.stringify(result.publishers));
    assert.deepEqual(cam.streams.map((s) => [s.type, s.codec]), [['audio', 'opus'], ['video', 'vp8']]);
    assert.ok(cam.webrtcUpMs !== undefined);
    assert.ok(cam.framesEncoded > MIN_VIDEO_FRAMES, `the camera encoded ${cam.framesEncoded} frames`);
  });

  for (const name of ['subscriber-1', 'subscriber-2']) {
    it(`${name} decodes more than ${MIN_VIDEO_FRAMES} frames of the camera and receives more than ${MIN_AUDIO_PACKETS} audio packets within ${MEASURE_MS / 1000} s`, () => {
      const sub = subscriber(name);
      assert.equal(sub.connectionState, 'connected');
      const video = streamOf(sub, 'camera', 'video');
      const audio = streamOf(sub, 'camera', 'audio');
      assert.equal(video.codec, 'video/VP8', seen(video));
      assert.ok(video.framesDecoded > MIN_VIDEO_FRAMES, `${name}, camera video: ${seen(video)}`);
      assert.ok(video.sinkFrames > MIN_VIDEO_FRAMES, `${name}, camera video: ${seen(video)}`);
      const heard = `${audio.packetsReceived} packets, ${audio.totalSamplesReceived} samples decoded, ${audio.concealedSamples} concealed`;
      assert.equal(audio.codec, 'audio/opus', `${name}, camera audio: ${heard}`);
      assert.ok(audio.packetsReceived > MIN_AUDIO_PACKETS, `${name}, camera audio: ${heard}`);
      assert.ok(audio.totalSamplesReceived > 0 && audio.concealedSamples < audio.totalSamplesReceived / 4, `${name}, camera audio: ${heard}`);
    });
  }

  it('a second publisher\'s video (a screen share) reaches subscriber-1 in the same PeerConnection as the camera (Janus 1.x multistream `streams`), and both are decoded', () => {
    const sub = subscriber('subscriber-1');
    assert.equal(sub.peerConnections, 1);
    const camera = streamOf(sub, 'camera', 'video');
    const screen = streamOf(sub, 'screen', 'video');
    assert.notEqual(camera.mid, screen.mid, 'two m-lines of one PeerConnection');
    assert.notEqual(camera.feed, screen.feed, 'two feeds');
    assert.equal(screen.codec, 'video/VP8', seen(screen));
    // the screen sends 5 fps: more than 10 frames in the window shows it keeps flowing, not just its first keyframe
    assert.ok(screen.framesDecoded > 10, `subscriber-1, screen video: ${seen(screen)}`);
    assert.ok(camera.framesDecoded > MIN_VIDEO_FRAMES, `subscriber-1, camera video: ${seen(camera)}`);
    const screenPublisher = result.publishers.find((p) => p.name === 'screen');
    assert.equal(screenPublisher?.streams[0]?.description, 'screen', JSON.stringify(screenPublisher));
  });

  it('a subscriber that adds the screen later (`update` with `subscribe`) gets it in its live PeerConnection by renegotiation, and decodes it and the camera', () => {
    const sub = subscriber('subscriber-2');
    assert.equal(sub.peerConnections, 1);
    assert.equal(sub.offers, 2, 'Janus\'s offer at join, and its new offer after the update');
    assert.equal(sub.connectionState, 'connected');
    const camera = streamOf(sub, 'camera', 'video');
    const screen = streamOf(sub, 'screen', 'video');
    assert.equal(camera.added, false);
    assert.equal(screen.added, true);
    assert.notEqual(camera.mid, screen.mid);
    assert.equal(screen.codec, 'video/VP8', seen(screen));
    assert.ok(screen.framesDecoded > 10, `subscriber-2, screen video: ${seen(screen)}`);
    assert.ok(camera.framesDecoded > MIN_VIDEO_FRAMES, `subscriber-2, camera video: ${seen(camera)}`);
  });
});
