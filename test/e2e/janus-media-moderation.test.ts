/**
 * A moderator's mute with real media: the videoroom `moderate` that the focus sends for a mute (conference/focus.ts)
 * stops Janus forwarding the publisher's audio to a subscriber, and lifting it lets the audio through again. Same
 * harness as janus-media.test.ts (Janus in one network namespace, libwebrtc peers in another, joined by a veth pair;
 * janus-media-runner.ts with `moderation`), one camera publisher and one subscriber. The focus's side (that a mute
 * through the API reaches Janus as `moderate` with the right feed and mid) is meeting-moderation.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTool } from '../../support/tools.js';
import { runTagged } from '../helpers/runner.js';
import { JanusNetns } from '../../support/janus-netns.js';
import { startJanus, type JanusServer } from '../../support/janus.js';
import type { JanusMediaResult, RunnerConfig } from './janus-media-runner.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'janus-media-runner.js');
const RUNNER_TIMEOUT_MS = 50_000;
/** Opus sends 50 packets a second: a 2 s window carries about 100. */
const MIN_FLOWING = 50;
/** Packets already on their way when `moderate` answered are past the settle pause; a few stragglers at most. */
const MAX_WHILE_MUTED = 5;

describe('a moderator\'s mute with real media through a Janus videoroom (two network namespaces)', () => {
  let net: JanusNetns | undefined;
  let janus: JanusServer | undefined;
  let result: JanusMediaResult;

  before(async () => {
    requireTool('janus', 'janus');
    requireTool('ip', 'iproute2');
    net = JanusNetns.create('jmod');
    janus = await startJanus({ netns: net.server.name, listenAddress: net.serverAddress, iceEnforceList: JanusNetns.VETH });
    const config: RunnerConfig = { url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret, subscribers: 1, screen: false, measureMs: 1000, moderation: true };
    const { result: line, code, stdout, stderr } = await runTagged(net.peers.exec(process.execPath, ['--enable-source-maps', RUNNER]),
      { JANUS_MEDIA_CONFIG: JSON.stringify(config), JANUS_MEDIA_RUNNER_TIMEOUT_MS: String(RUNNER_TIMEOUT_MS - 5000) }, 'JANUS-MEDIA-RESULT', RUNNER_TIMEOUT_MS);
    if (line === undefined) assert.fail(`janus media runner gave no result (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}\njanus:\n${janus.logTail()}`);
    result = JSON.parse(line) as JanusMediaResult;
    if (result.error !== undefined) assert.fail(`janus media runner failed: ${result.error}\n${stderr}\njanus:\n${janus.logTail()}`);
    if (process.env.JANUS_MEDIA_VERBOSE === '1') process.stderr.write(`${JSON.stringify(result.moderation)}\n`);
  });

  after(async () => {
    try {
      await janus?.stop();
    } finally {
      net?.destroy();
    }
  });

  it('the publisher\'s audio reaches the subscriber, stops while `moderate` mutes its mid, and flows again once the mute is lifted', () => {
    const m = result.moderation;
    assert.ok(m, JSON.stringify(result));
    const seen = `audio mid ${m.mid}: ${m.unmuted} packets unmuted, ${m.muted} muted, ${m.resumed} after the unmute`;
    assert.ok(m.unmuted > MIN_FLOWING, seen);
    assert.ok(m.muted <= MAX_WHILE_MUTED, seen);
    assert.ok(m.resumed > MIN_FLOWING, seen);
  });
});
