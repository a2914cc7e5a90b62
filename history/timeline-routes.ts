/**
 * The user's history (issue 19, item 8): its calls and the meetings it took part in, in one list, mounted with
 * `http.routes(timelineRoutes(calls, participants), { access: 'user' })` beside /v1/calls (platform/http):
 *
 *   GET /v1/history?user=&limit=&cursor=
 *       newest first, `limit` (default 50, at most 200) a page: `{ items: [...], next?: "<cursor>" }`
 *
 * An item is a call (`{ kind: "call", at, call }`, the record /v1/calls answers, `at` its start) or a participation
 * (`{ kind: "meeting", at, meeting }`, one per row of meeting_participants whose user is the user: a rejoin is a new
 * item; `at` when it asked to join). A user token reads its own (`user` someone else: 403); an admin token names the
 * user (`user` required: 400 without; an everyone's list would mix strangers' calls and meetings for no reader).
 *
 * Paging merges two keyset queries: the order is (at desc, kind: calls before meetings, id desc); a page takes up to
 * `limit` of each kind strictly after the cursor, merges them and cuts at `limit`; the cursor is the last item's
 * (at, kind, id). So a page stays right while calls end and meetings are joined before it, and the cursor holds no
 * server state. A meeting's deletion takes its participant rows, and so its items, with it.
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import { Refusal, decodeCursor, encodeCursor, errors, isoTime, jsonSchema, normalizeUser, pageQuery, parseInput, principalOf, response } from '../platform/http/index.js';
import {
  type CallRecord, type CallRepository, type ParticipantRepository, type UserParticipation, encodeCallCursor,
} from '../platform/store/index.js';
import { callJson, callToJson } from './routes.js';

export const TIMELINE_PAGE = 50;
export const MAX_TIMELINE_PAGE = 200;

const query = z.strictObject({
  user: z.string().max(511).regex(/^[^@\s]+@[^@\s]+$/, 'expected user@domain').transform(normalizeUser).optional()
    .describe('user@domain: an admin token names the user (required); a user token may name only itself'),
  ...pageQuery(TIMELINE_PAGE, MAX_TIMELINE_PAGE),
});

const participationJson = z.object({
  id: z.string().describe('the meeting id'),
  participantId: z.string().describe('the participant row: one per request to join'),
  title: z.string(),
  role: z.enum(['owner', 'moderator', 'participant']),
  state: z.enum(['waiting', 'admitted', 'denied', 'left', 'kicked']).describe('the participant\'s state now'),
  joinedAt: isoTime.optional().describe('when it was admitted (absent: it never was)'),
  leftAt: isoTime.optional().describe('when it left, was kicked or stopped waiting'),
});
const item = z.union([
  z.object({ kind: z.literal('call'), at: isoTime.describe('when the call started'), call: callJson }),
  z.object({ kind: z.literal('meeting'), at: isoTime.describe('when it asked to join'), meeting: participationJson }),
]);

const schema: FastifySchema = {
  summary: 'The user\'s history: its calls and meetings, newest first, a page at a time',
  description: 'Calls (the records of `GET /v1/calls`) and meeting participations (one item per join: a rejoin is another) in one list, newest first. '
    + 'A user token reads its own; an admin token names the user with `user`. Pass `next` back as `cursor` (same `user`) for the next page: '
    + 'keyset paging, right while items come and go.',
  tags: ['calls'],
  querystring: jsonSchema(query),
  response: {
    200: response(z.object({ items: z.array(item), next: z.string().optional().describe('the cursor of the next page, when there is one') }), 'a page of the history'),
    ...errors({ 400: 'a malformed query or cursor, or an admin token without `user`', 403: 'a user token named another user' }),
  },
};

/** An item of the merged list, with its sort key. */
type Entry = { at: number; kind: 'call'; id: string; call: CallRecord } | { at: number; kind: 'meeting'; id: string; meeting: UserParticipation };

/** Where a page ended: the last item's key. */
interface TimelineKey {
  at: number;
  kind: 'call' | 'meeting';
  id: string;
}

const KIND_RANK = { call: 0, meeting: 1 } as const;

/** The list's order: newest first; at one instant calls before meetings; then ids descending. */
function compare(a: TimelineKey, b: TimelineKey): number {
  return b.at - a.at || KIND_RANK[a.kind] - KIND_RANK[b.kind] || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function parseKey(cursor: string): TimelineKey {
  const [at, kind, id] = decodeCursor(cursor, 3) as [string, string, string];
  const ms = Number(at);
  if (!/^\d{1,16}$/.test(at) || !Number.isSafeInteger(ms) || (kind !== 'call' && kind !== 'meeting') || id.length === 0 || id.length > 64) {
    throw new Refusal(400, 'cursor: not a cursor this list made (pass back `next` as it was answered)');
  }
  return { at: ms, kind, id };
}

function itemJson(e: Entry): Record<string, unknown> {
  const at = new Date(e.at).toISOString();
  if (e.kind === 'call') return { kind: 'call', at, call: callToJson(e.call) };
  const p = e.meeting;
  const joinedAt = p.state === 'denied' || p.decidedAt === undefined || p.feedId === undefined ? undefined : new Date(p.decidedAt).toISOString();
  return {
    kind: 'meeting', at,
    meeting: {
      id: p.meetingId, participantId: p.id, title: p.meetingTitle, role: p.role, state: p.state,
      ...(joinedAt === undefined ? {} : { joinedAt }), ...(p.leftAt === undefined ? {} : { leftAt: new Date(p.leftAt).toISOString() }),
    },
  };
}

export function timelineRoutes(calls: CallRepository, participants: ParticipantRepository): (app: FastifyInstance) => void {
  /** Up to `limit` calls strictly after `after`, and whether more follow them. */
  const callsAfter = async (user: string, after: TimelineKey | undefined, limit: number): Promise<{ entries: Entry[]; more: boolean }> => {
    // After a call: the calls repository's own keyset. After a meeting at `at`: every call of that instant came before it.
    const page = await calls.list({
      user, limit,
      ...(after === undefined ? {} : after.kind === 'call' ? { cursor: encodeCallCursor({ startedAt: after.at, id: after.id }) } : { until: after.at }),
    });
    return { entries: page.calls.map((call) => ({ at: call.startedAt, kind: 'call', id: call.id, call })), more: page.next !== undefined };
  };
  /** Up to `limit + 1` participations strictly after `after` (the extra one says more follow). */
  const meetingsAfter = async (user: string, after: TimelineKey | undefined, limit: number): Promise<Entry[]> => {
    // After a call at `at`: every participation of that instant follows it (ids 12 characters: '~' sorts after them).
    const key = after === undefined ? undefined : after.kind === 'meeting' ? { askedAt: after.at, id: after.id } : { askedAt: after.at, id: '~' };
    const rows = await participants.ofUser(user, { after: key, limit: limit + 1 });
    return rows.map((meeting) => ({ at: meeting.askedAt, kind: 'meeting', id: meeting.id, meeting }));
  };

  return (app) => {
    app.get('/history', { schema }, async (req) => {
      const q = parseInput(query, req.query, 'query');
      const principal = principalOf(req);
      let user = q.user;
      if (principal.kind === 'user') {
        if (user !== undefined && user !== principal.user) throw new Refusal(403, 'a user token reads only its own history');
        user = principal.user;
      }
      if (user === undefined) throw new Refusal(400, 'user: an admin token names the user whose history it reads');
      const after = q.cursor === undefined ? undefined : parseKey(q.cursor);
      const [fromCalls, fromMeetings] = await Promise.all([callsAfter(user, after, q.limit), meetingsAfter(user, after, q.limit)]);
      const merged = [...fromCalls.entries, ...fromMeetings].sort(compare);
      const page = merged.slice(0, q.limit);
      const last = page[page.length - 1];
      const more = merged.length > q.limit || fromCalls.more;
      return { items: page.map(itemJson), ...(more && last !== undefined ? { next: encodeCursor([String(last.at), last.kind, last.id]) } : {}) };
    });
  };
}
