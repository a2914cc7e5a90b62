/**
 * A meeting recording with real media: Janus records a publisher's audio and video into .mjr files (the videoroom's
 * `edit` of rec_dir and `enable_recording`, as the focus sends them), and the recorder (conference/meeting-recorder.ts)
 * converts them with janus-pp-rec, seals them into the encrypted file store and lists them with their participant.
 * Same harness as janus-media.test.ts (Janus in one network namespace, libwebrtc peers in another, joined by a veth
 * pair; janus-media-runner.ts with `recording`): the softswitch's side of the room (its Janus requests through the
 * REST API) cannot reach Janus's namespace, so the focus's requests are made by the runner and the recorder's part
 * runs here on a real SQLite store; meeting-recording.test.ts drives the same through the API on a loopback Janus.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Focus, FocusSecrets, JanusPool, MeetingRecorder, newMeetingId } from '../../conference/index.js';
import { Envelope } from '../../messaging/envelope.js';
import { EncryptedFiles } from '../../messaging/file-store.js';
import { LocalBlobStore } from '../../messaging/local-blobs.js';
import type { RecordingRecord, SqlStore } from '../../platform/store/index.js';
import { silentLogger } from '../../src/log/index.js';
import { requireTool } from '../../support/tools.js';
import { runTagged } from '../helpers/runner.js';
import { JanusNetns } from '../../support/janus-netns.js';
import { startJanus, type JanusServer } from '../../support/janus.js';
import { openTempStore } from '../helpers/temp-store.js';
import type { JanusMediaResult, RunnerConfig } from './janus-media-runner.js';

const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'janus-media-runner.js');
const RUNNER_TIMEOUT_MS = 50_000;
const RECORD_MS = 3000;
const OWNER = 'alice@example.com';
/** EBML's magic (a Matroska/WebM file's first element) and a Cluster's id: the blocks that carry frames. */
const EBML = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
const CLUSTER = Buffer.from([0x1f, 0x43, 0xb6, 0x75]);

describe('a meeting recording with real media: Janus\'s .mjr files become sealed, playable WebM and Ogg Opus files (two network namespaces)', () => {
  let net: JanusNetns | undefined;
  let janus: JanusServer | undefined;
  let temp: { store: SqlStore; close(): Promise<void> } | undefined;
  let blobsDir: string | undefined;
  let files: EncryptedFiles;
  let result: JanusMediaResult;
  let leftBefore: string[];
  let sealed: number;
  let recording: RecordingRecord;
  let participant: string;

  before(async () => {
    requireTool('janus', 'janus');
    requireTool('ip', 'iproute2');
    requireTool('janus-pp-rec', 'janus-tools');
    temp = await openTempStore();
    const { store } = temp;
    const secrets = new FocusSecrets(randomBytes(32));
    const meeting = await store.meetings.create({
      id: newMeetingId(), title: 'recorded', owner: OWNER, startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: false, maxParticipants: 4, recordingAllowed: true,
    });
    const feed = 1 + (randomBytes(4).readUInt32BE(0) % 1_000_000);
    participant = (await store.participants.create({ id: newMeetingId(), meetingId: meeting.id, user: OWNER, displayName: 'Alice', role: 'owner', state: 'admitted', feedId: feed })).id;

    net = JanusNetns.create('jrec');
    janus = await startJanus({ netns: net.server.name, listenAddress: net.serverAddress, iceEnforceList: JanusNetns.VETH, recordings: true });
    const dir = janus.recordingDir!;
    const config: RunnerConfig = {
      url: janus.url, adminUrl: janus.adminUrl, adminSecret: janus.adminSecret, subscribers: 0, screen: false, measureMs: 500,
      recording: { dir, ms: RECORD_MS, room: secrets.roomId(meeting.id), feed },
    };
    const { result: line, code, stdout, stderr } = await runTagged(net.peers.exec(process.execPath, ['--enable-source-maps', RUNNER]),
      { JANUS_MEDIA_CONFIG: JSON.stringify(config), JANUS_MEDIA_RUNNER_TIMEOUT_MS: String(RUNNER_TIMEOUT_MS - 5000) }, 'JANUS-MEDIA-RESULT', RUNNER_TIMEOUT_MS);
    if (line === undefined) assert.fail(`janus media runner gave no result (exit ${code}):\n${stderr}\n${stdout.slice(-4000)}\njanus:\n${janus.logTail()}`);
    result = JSON.parse(line) as JanusMediaResult;
    if (result.error !== undefined) assert.fail(`janus media runner failed: ${result.error}\n${stderr}\njanus:\n${janus.logTail()}`);
    leftBefore = readdirSync(dir).sort();

    blobsDir = mkdtempSync(join(tmpdir(), 'softswitch-recordings-'));
    files = new EncryptedFiles(new LocalBlobStore(blobsDir, silentLogger()), new Envelope(randomBytes(32)));
    const focus = new Focus({ meetings: store.meetings, participants: store.participants, moderation: store.moderation, secrets, pool: new JanusPool({ nodes: [], placements: store.placements }) });
    const recorder = new MeetingRecorder({
      focus, secrets, recordings: store.recordings, participants: store.participants, moderation: store.moderation,
      files: { store: files, index: store.messages }, recordingDirs: new Map(), convertTimeoutMs: 30_000,
    });
    await store.recordings.start({ id: newMeetingId(), meetingId: meeting.id, by: OWNER });
    const stopped = await store.recordings.stop(meeting.id, OWNER);
    assert.ok(stopped);
    sealed = await recorder.collect(stopped, meeting, dir);
    [recording] = (await store.recordings.list(meeting.id)) as [RecordingRecord];
  });

  after(async () => {
    try {
      await janus?.stop();
    } finally {
      net?.destroy();
      await temp?.close();
      if (blobsDir !== undefined) rmSync(blobsDir, { recursive: true, force: true });
    }
  });

  const plain = async (medium: 'audio' | 'video'): Promise<Buffer> => {
    const file = recording.files.find((f) => f.medium === medium);
    assert.ok(file, `a ${medium} file in ${JSON.stringify(recording)}`);
    const row = await temp!.store.messages.getFile(file.fileId);
    assert.ok(row, `the ${medium} file's row in the file store`);
    const parts: Buffer[] = [];
    for await (const part of files.read(row) as AsyncIterable<Buffer>) parts.push(part);
    return Buffer.concat(parts);
  };

  it('Janus wrote an audio and a video .mjr of the publisher while it published', () => {
    assert.ok(result.recording, JSON.stringify(result));
    assert.ok(result.recording.packetsSent > 100, `the camera sent ${result.recording.packetsSent} packets while recorded`);
    const feed = String(result.recording.feed);
    assert.deepEqual(leftBefore.map((n) => /-(audio|video)-\d+\.mjr$/.exec(n)?.[1]).sort(), ['audio', 'video'], leftBefore.join(', '));
    assert.ok(leftBefore.every((n) => n.includes(`-user-${feed}-`)), leftBefore.join(', '));
  });

  it('after stop, the recording lists an audio and a video file of the participant, sealed in the file store', () => {
    assert.equal(sealed, 2);
    assert.deepEqual(recording.files.map((f) => [f.medium, f.participantId, f.contentType]).sort(), [
      ['audio', participant, 'audio/ogg; codecs=opus'],
      ['video', participant, 'video/webm'],
    ]);
    assert.ok(recording.files.every((f) => f.size > 1000), JSON.stringify(recording.files));
  });

  it('the video decrypted from the store is a WebM with frames (EBML header, doctype webm, a Cluster)', async () => {
    const webm = await plain('video');
    assert.deepEqual(webm.subarray(0, 4), EBML);
    assert.ok(webm.subarray(0, 64).includes(Buffer.from('webm')), 'doctype webm');
    assert.ok(webm.includes(CLUSTER), 'a Cluster: frames were written');
  });

  it('the audio decrypted from the store is Ogg Opus (OggS, OpusHead)', async () => {
    const ogg = await plain('audio');
    assert.equal(ogg.subarray(0, 4).toString('latin1'), 'OggS');
    assert.ok(ogg.subarray(0, 64).includes(Buffer.from('OpusHead')), 'an Opus stream');
    assert.ok(ogg.length > 4000, `${ogg.length} bytes for ${RECORD_MS} ms`);
  });

  it('no plain file is left in the recording folder', () => {
    assert.deepEqual(readdirSync(janus!.recordingDir!), []);
  });
});
