/**
 * Meeting recordings under `/v1/meetings/:id` (issue 19, item 7; mounted with
 * `http.routes(recordingRoutes(recorder), { access: 'user' })`): moderators only (meeting-recorder.ts).
 *
 *   POST   /meetings/:id/recording    Janus records the room (403 unless the meeting's recordingAllowed; 409 recording already)
 *   DELETE /meetings/:id/recording    stops; the files are converted and sealed before the answer (409 when not recording)
 *   GET    /meetings/:id/recordings   { recordings }  every session with its files; each file's id downloads at /v1/files/{id}
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { errors, isoTime, jsonSchema, parseInput, response } from '../platform/http/index.js';
import type { RecordingRecord } from '../platform/store/index.js';
import type { MeetingRecorder } from './meeting-recorder.js';
import { answerMeetingErrors, meetingActorOf } from './routes.js';

const inputs = { meeting: z.strictObject({ id: z.string().regex(/^[a-z2-7]{12}$/, 'not a meeting id') }) };

const fileOut = z.object({
  fileId: z.string().describe('its id in the encrypted file store: GET /v1/files/{fileId} (the meeting\'s owner, its moderators and admins)'),
  participantId: z.string().optional().describe('whose feed it is'),
  feedId: z.number().int(),
  medium: z.enum(['audio', 'video']),
  contentType: z.string().describe('video/webm (VP8) or audio/ogg; codecs=opus'),
  size: z.number().int(),
  createdAt: isoTime,
});
const recordingOut = z.object({
  id: z.string(),
  startedAt: isoTime,
  startedBy: z.string().optional().describe('user@domain; absent for an admin token'),
  stoppedAt: isoTime.optional().describe('absent while Janus records'),
  stoppedBy: z.string().optional(),
  files: z.array(fileOut).describe('one per participant and medium, once the session stopped'),
});

const tags = ['meetings'];
const params = jsonSchema(z.object({ id: z.string().describe('the meeting id') }));
const MODERATORS = 'Moderators only: the meeting\'s owner, an admin, or a participant with the moderator role.';
const docs: Record<'start' | 'stop' | 'list', FastifySchema> = {
  start: {
    summary: 'Start recording a meeting', tags, params,
    description: `${MODERATORS} Janus records every publisher of the room (.mjr files in the node's meetings.janus[].recordingDir); a \`recording\` entry in the history. `
      + 'The meeting must allow it (recordingAllowed) and someone must have been admitted (the room exists).',
    response: {
      200: response(recordingOut, 'the session, recording'),
      ...errors({
        400: 'a malformed id', 403: 'not a moderator, or the meeting does not allow recording', 404: 'no such meeting', 409: 'recording already, or nobody in the meeting yet',
        503: 'the Janus node is not available, or has no recordingDir, or there is no encrypted file store',
      }),
    },
  },
  stop: {
    summary: 'Stop recording a meeting', tags, params,
    description: `${MODERATORS} Each participant's audio and video become an Ogg Opus and a WebM file (janus-pp-rec), sealed in the encrypted file store before the answer; `
      + 'the plain files are deleted. A `recording` entry in the history.',
    response: {
      200: response(recordingOut, 'the session, stopped, with its files'),
      ...errors({ 400: 'a malformed id', 403: 'not a moderator of the meeting', 404: 'no such meeting', 409: 'the meeting is not being recorded', 503: 'the Janus node is not available' }),
    },
  },
  list: {
    summary: 'A meeting\'s recordings and their files', tags, params,
    description: `${MODERATORS} Oldest first. A file's id downloads through GET /v1/files/{id}.`,
    response: {
      200: response(z.object({ recordings: z.array(recordingOut) }), 'the sessions'),
      ...errors({ 400: 'a malformed id', 403: 'not a moderator of the meeting', 404: 'no such meeting' }),
    },
  },
};

const iso = (t: number) => new Date(t).toISOString();
export function recordingJson(r: RecordingRecord) {
  return {
    id: r.id, startedAt: iso(r.startedAt), ...(r.startedBy === undefined ? {} : { startedBy: r.startedBy }),
    ...(r.stoppedAt === undefined ? {} : { stoppedAt: iso(r.stoppedAt) }), ...(r.stoppedBy === undefined ? {} : { stoppedBy: r.stoppedBy }),
    files: r.files.map((f) => ({
      fileId: f.fileId, ...(f.participantId === undefined ? {} : { participantId: f.participantId }), feedId: f.feedId, medium: f.medium,
      contentType: f.contentType, size: f.size, createdAt: iso(f.createdAt),
    })),
  };
}

export function recordingRoutes(recorder: MeetingRecorder): (app: FastifyInstance) => void {
  const actorOf = meetingActorOf;

  return (app) => {
    answerMeetingErrors(app);

    app.post('/meetings/:id/recording', { schema: docs.start }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return recordingJson(await recorder.start(actorOf(req), id));
    });

    app.delete('/meetings/:id/recording', { schema: docs.stop }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return recordingJson(await recorder.stop(actorOf(req), id));
    });

    app.get('/meetings/:id/recordings', { schema: docs.list }, async (req) => {
      const { id } = parseInput(inputs.meeting, req.params, 'id');
      return { recordings: (await recorder.list(actorOf(req), id)).map(recordingJson) };
    });
  };
}
