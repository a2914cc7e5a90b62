/**
 * The console's meeting page (issue 19: the client flow a newcomer can try): three headless Chromium pages meet
 * through a real Janus videoroom, the page talking Janus's WebSocket API itself with the grant the softswitch gave.
 *
 * Janus ignores loopback for media, so it runs in one namespace of a JanusNetns (its API and ICE on the veth
 * address), and the softswitch with Chromium in the other (console-meeting-runner.ts, started with `ip netns exec`):
 * no packet leaves the veth pair. The runner prints what the pages showed; the assertions are here. Whatever happens,
 * the runner is killed after RUNNER_TIMEOUT_MS, Janus is stopped and both namespaces are deleted. The screenshots stay
 * in a temp folder (printed) for a person to look at.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTool } from '../../support/tools.js';
import { JanusNetns } from '../../support/janus-netns.js';
import { startJanus, type JanusServer } from '../../support/janus.js';
import { runTagged } from '../helpers/runner.js';
import type { MeetingResult, RunnerJanus, TileReport } from './console-meeting-runner.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'console-meeting-runner.js');
const RUNNER_TIMEOUT_MS = 170_000;

describe('the console\'s meeting page: two users and a guest meet in headless Chromium through a real Janus', () => {
  let net: JanusNetns | undefined;
  let janus: JanusServer | undefined;
  let r: MeetingResult;
  const outDir = mkdtempSync(join(tmpdir(), 'softswitch-console-meeting-'));

  before(async () => {
    requireTool('chromium', 'chromium');
    requireTool('janus', 'janus');
    requireTool('ip', 'iproute2');
    net = JanusNetns.create('cmeet');
    janus = await startJanus({ netns: net.server.name, listenAddress: net.serverAddress, iceEnforceList: JanusNetns.VETH });
    const node: RunnerJanus = { url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret };
    console.log(`console meeting screenshots: ${outDir}`);
    const { result, code, stdout, stderr } = await runTagged(net.peers.exec(process.execPath, ['--enable-source-maps', RUNNER, outDir]),
      { MEETING_RUNNER_JANUS: JSON.stringify(node), MEETING_RUNNER_TIMEOUT_MS: String(RUNNER_TIMEOUT_MS - 10_000) }, 'MEETING-RESULT', RUNNER_TIMEOUT_MS);
    if (result === undefined) throw new Error(`the meeting runner gave no result (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}\njanus:\n${janus.logTail()}`);
    r = JSON.parse(result) as MeetingResult;
    if (r.error !== undefined) throw new Error(`the meeting runner failed: ${r.error}\n${r.logs ?? ''}\n${stderr}\njanus:\n${janus.logTail()}`);
    console.log(`console meeting tiles: ${JSON.stringify(r.tiles)}`);
    console.log(`console meeting steps (ms): ${JSON.stringify(r.steps)}`);
  }, { timeout: RUNNER_TIMEOUT_MS + 20_000 });

  after(async () => {
    try {
      await janus?.stop();
    } finally {
      net?.destroy();
    }
  });

  const playing = (who: string, tiles: TileReport[] | undefined, names: string[]): void => {
    assert.ok(tiles !== undefined, `no tiles of ${who}`);
    assert.deepEqual(tiles.map((t) => t.name).sort(), [...names].sort(), `${who}'s remote tiles`);
    for (const t of tiles) {
      // the fake camera is 640×480 (or what the sender scaled it to); decoded frames give the element a size
      assert.ok(t.width > 0 && t.height > 0, `${who}'s tile of ${t.name} has no video size: ${JSON.stringify(t)}`);
      assert.ok(t.advanced > 0.5, `${who}'s tile of ${t.name} played ${t.advanced} s of video in 1.5 s`);
    }
  };

  it('the console\'s Content-Security-Policy lets the page connect to the meeting\'s Janus node (meetings.janus url)', () => {
    const connect = String(r.csp).split('; ').find((d) => d.startsWith('connect-src '));
    // janus.url is ws://10.231.19.1:PORT, an origin as it is
    assert.ok(connect?.split(' ').includes(janus!.url), `${connect} lacks ${janus!.url}`);
  });

  it('Alice creates a meeting on her Meetings card; it is listed with its join link', () => {
    assert.match(String(r.meeting?.id), /^[a-z2-7]{12}$/);
    assert.equal(r.meeting?.listed, 'Standup');
    assert.match(String(r.meeting?.link), new RegExp(`/console/\\?meeting=${r.meeting?.id}$`));
  });

  it('the join link shows a guest\'s join form, and after Bob signs in it joins as him', () => {
    assert.deepEqual(r.joinButton, { before: 'Join as a guest', after: 'Join as bob@example.com' });
  });

  it('Bob waits in the lobby and the owner admits him from her lobby list', () => {
    assert.equal(r.bobWaiting?.state, 'waiting');
    assert.deepEqual(r.bobWaiting?.lobby, ['bob <bob@example.com>']);
  });

  it('only the owner sees the moderator controls', () => {
    assert.deepEqual(r.moderatorPanel, { alice: true, bob: false, gina: false });
  });

  it('each page shows the others\' video tiles, named, and their video plays (a user, a user, a guest)', () => {
    playing('Alice', r.tiles?.alice, ['bob', 'Gina']);
    playing('Bob', r.tiles?.bob, ['alice', 'Gina']);
    playing('Gina', r.tiles?.gina, ['alice', 'bob']);
  });

  it('Mute all (each may unmute): Bob\'s page and the owner\'s show him muted; he unmutes himself and the owner sees it', () => {
    assert.deepEqual(r.muteAll, { bobOwnTile: true, onAlice: true, unmutedBySelfOnAlice: true });
  });

  it('the owner mutes Bob from his tile: Janus tells the room, and his own page and Gina\'s show him muted', () => {
    assert.deepEqual(r.bobMuted, { ownTile: true, onGina: true });
    assert.ok(r.tiles?.gina.every((t) => !t.audioMuted), 'nobody was muted before');
  });

  it('Bob leaves: his page says so and his tile goes from the others\' pages', () => {
    assert.deepEqual(r.afterBobLeft, { alice: ['Gina'], gina: ['alice'], bobState: 'left' });
  });

  it('the owner locks the meeting: Bob, back on the join form, is refused with the server\'s reason', () => {
    assert.equal(r.locked?.button, 'Unlock');
    assert.match(String(r.locked?.bobStatus), /^Not let in: 403 the meeting is locked/);
  });


  it('the owner kicks the guest from her tile: Janus ends the meeting on Gina\'s page, and her tile goes', () => {
    assert.deepEqual(r.ginaKicked, { ginaState: 'ended', ginaSays: 'removed from the meeting by a moderator', aliceTiles: [] });
  });

  it('a tile is highlighted while its participant talks (Janus talking events from the fake microphone)', () => {
    assert.equal(r.talkingSeen, true);
  });

  it('a screenshot of each page is saved in the test\'s output folder', () => {
    assert.equal(r.screenshots?.length, 3);
    for (const file of r.screenshots ?? []) {
      assert.ok(file.startsWith(outDir), `screenshot ${file} is not in ${outDir}`);
      const png = readFileSync(file);
      assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG', `${file} is not a PNG`);
    }
  });
});
