/**
 * Meeting recordings through the REST API of a whole softswitch whose focus drives a real Janus (support/janus.ts,
 * with a recording folder as meetings.janus[].recordingDir): who may start and stop, what Janus is asked, the list,
 * the history, and who downloads a recording's files. Participants publish without media (test/helpers/janus-publisher.ts),
 * so Janus records no frame here; the files of a recording with real media are janus-media-recording.test.ts's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { JanusClient, type JanusGrant } from '../../conference/index.js';
import { publishWithoutMedia } from '../helpers/janus-publisher.js';
import { API_DOMAIN, type ApiAnswer, type ApiServer } from '../helpers/api-client.js';
import { type MeetingTestbed, ok, refused, startMeetingTestbed } from '../helpers/meeting-testbed.js';

type Who = 'alice' | 'bob' | 'carol';
interface Admission { participant: { id: string }; state: string; janus?: JanusGrant }
interface RecordingFile { fileId: string; participantId?: string; medium: string }
interface Recording { id: string; startedAt: string; startedBy?: string; stoppedAt?: string; stoppedBy?: string; files: RecordingFile[] }
interface Entry { kind: string; actor?: string; detail?: string }

describe('meeting recordings on a real Janus: start and stop by moderators, the list, the history, the files', { timeout: 60_000 }, () => {
  let bed: MeetingTestbed;
  let api: ApiServer;
  const tokens: Record<Who, string> = { alice: '', bob: '', carol: '' };
  const clients: JanusClient[] = [];
  let meeting = '';
  let unrecordable = '';
  const pids: Partial<Record<Who, string>> = {};

  const call = (who: Who, method: string, url: string, operation: string, json?: unknown): Promise<ApiAnswer> => bed.call(tokens[who], method, url, operation, json);
  const start = (who: Who, id = meeting) => call(who, 'POST', `/v1/meetings/${id}/recording`, 'POST /v1/meetings/{id}/recording');
  const stop = (who: Who, id = meeting) => call(who, 'DELETE', `/v1/meetings/${id}/recording`, 'DELETE /v1/meetings/{id}/recording');
  const list = (who: Who) => call(who, 'GET', `/v1/meetings/${meeting}/recordings`, 'GET /v1/meetings/{id}/recordings');
  const enter = async (who: Who): Promise<void> => {
    const admission = ok<Admission>(await call(who, 'POST', `/v1/meetings/${meeting}/join`, 'POST /v1/meetings/{id}/join', {}));
    assert.equal(admission.state, 'admitted');
    assert.ok(admission.janus);
    clients.push((await publishWithoutMedia(admission.janus, who)).client);
    pids[who] = admission.participant.id;
  };

  before(async () => {
    bed = await startMeetingTestbed(Object.keys(tokens), { recordings: true });
    ({ api } = bed);
    Object.assign(tokens, bed.tokens);
    const create = async (recordingAllowed: boolean) => {
      const created = await call('alice', 'POST', '/v1/meetings', 'POST /v1/meetings', { title: 'recording test', lobby: false, recordingAllowed });
      assert.equal(created.status, 201, created.bytes.toString());
      return String((created.json as { id: string }).id);
    };
    meeting = await create(true);
    unrecordable = await create(false);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await bed?.stop();
  });

  it('a meeting that does not allow recording refuses its start 403 AUTH_ERR_SCOPE, to its owner too', async () => {
    assert.match(refused(await start('alice', unrecordable), 403, 'AUTH_ERR_SCOPE'), /does not allow recording/);
  });

  it('stop without a start is refused 409 API_ERR_CONFLICT; a start before anyone was admitted (no room on Janus) too', async () => {
    assert.match(refused(await stop('alice'), 409, 'API_ERR_CONFLICT'), /not being recorded/);
    assert.match(refused(await start('alice'), 409, 'API_ERR_CONFLICT'), /nobody is in the meeting/);
    assert.deepEqual(ok<{ recordings: Recording[] }>(await list('alice')).recordings, [], 'a refused start leaves no session');
  });

  it('a participant that is not a moderator may not start, stop or list recordings (403)', async () => {
    await enter('alice');
    await enter('bob');
    refused(await start('bob'), 403, 'AUTH_ERR_SCOPE');
    refused(await stop('bob'), 403, 'AUTH_ERR_SCOPE');
    refused(await list('bob'), 403, 'AUTH_ERR_SCOPE');
  });

  it('the owner starts: the session is running (listed without stoppedAt); a second start is refused 409', async () => {
    const started = ok<Recording>(await start('alice'));
    assert.equal(started.startedBy, `alice@${API_DOMAIN}`);
    assert.equal(started.stoppedAt, undefined);
    assert.match(refused(await start('alice'), 409, 'API_ERR_CONFLICT'), /recorded already/);
    const { recordings } = ok<{ recordings: Recording[] }>(await list('alice'));
    assert.deepEqual(recordings.map((r) => [r.id, r.stoppedAt]), [[started.id, undefined]]);
  });

  it('a participant made moderator stops it: the session is stopped by her, and a second stop is refused 409', async () => {
    await enter('carol');
    ok(await call('alice', 'PUT', `/v1/meetings/${meeting}/participants/${pids.carol!}/role`, 'PUT /v1/meetings/{id}/participants/{pid}/role', { role: 'moderator' }));
    const stopped = ok<Recording>(await stop('carol'));
    assert.equal(stopped.stoppedBy, `carol@${API_DOMAIN}`);
    assert.ok(stopped.stoppedAt !== undefined && Date.parse(stopped.stoppedAt) >= Date.parse(stopped.startedAt));
    refused(await stop('carol'), 409, 'API_ERR_CONFLICT');
    const { recordings } = ok<{ recordings: Recording[] }>(await list('carol'));
    assert.deepEqual(recordings.map((r) => [r.id, r.stoppedBy]), [[stopped.id, `carol@${API_DOMAIN}`]]);
  });

  it('a meeting ended while recorded: its session stays running until a moderator stops it (Janus\'s room is gone: no error), and a new one may start', async () => {
    ok(await start('alice'));
    ok(await call('alice', 'POST', `/v1/meetings/${meeting}/end`, 'POST /v1/meetings/{id}/end'));
    const stopped = ok<Recording>(await stop('alice'));
    assert.ok(stopped.stoppedAt !== undefined);
    await enter('alice');
    ok(await start('alice'));
    ok(await stop('alice'));
    assert.equal(ok<{ recordings: Recording[] }>(await list('alice')).recordings.length, 3);
  });

  it('the history has the start and the stop, with who did them', async () => {
    const { entries } = ok<{ entries: Entry[] }>(await call('alice', 'GET', `/v1/meetings/${meeting}/history`, 'GET /v1/meetings/{id}/history'));
    const recorded = entries.filter((e) => e.kind === 'recording');
    const alice = `alice@${API_DOMAIN}`;
    assert.deepEqual(recorded.map((e) => [e.actor, e.detail?.split(':')[0]]), [
      [alice, 'started'], [`carol@${API_DOMAIN}`, 'stopped'], [alice, 'started'], [alice, 'stopped'], [alice, 'started'], [alice, 'stopped'],
    ]);
  });

  it('a recording\'s file downloads through /v1/files/{id} for the meeting\'s moderators, and is not there for a participant', async () => {
    // A file of alice's (the meeting's owner owns its recordings) recorded as this session's video: the access rule, not janus-pp-rec, is under test here.
    const upload = await api.send('http', { method: 'POST', url: '/v1/files?name=rec.webm', token: tokens.alice, raw: { contentType: 'video/webm', data: Buffer.from('webm bytes') } });
    assert.equal(upload.status, 201, upload.bytes.toString());
    const fileId = String((upload.json as { id: string }).id);
    // carol's role went with the end: she is made a moderator again
    await enter('carol');
    ok(await call('alice', 'PUT', `/v1/meetings/${meeting}/participants/${pids.carol!}/role`, 'PUT /v1/meetings/{id}/participants/{pid}/role', { role: 'moderator' }));
    const [session] = ok<{ recordings: Recording[] }>(await list('alice')).recordings;
    await api.t.server.store.recordings.addFile({ fileId, recordingId: session!.id, meetingId: meeting, participantId: pids.bob, feedId: 1, medium: 'video', contentType: 'video/webm', size: 10 });
    assert.deepEqual(ok<{ recordings: Recording[] }>(await list('carol')).recordings[0]!.files.map((f) => [f.fileId, f.participantId, f.medium]), [[fileId, pids.bob, 'video']]);
    const download = (who: Who) => api.send('http', { method: 'GET', url: `/v1/files/${fileId}`, token: tokens[who] });
    assert.equal((await download('carol')).bytes.toString(), 'webm bytes');
    assert.equal((await download('alice')).status, 200);
    assert.equal((await download('bob')).status, 404);
  });
});
