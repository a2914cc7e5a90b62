/**
 * Meetings' placements on Janus nodes (sql/0014_meeting_nodes.ts) on SQLite and MariaDB: the PlacementRepository
 * contract of placement-types.ts. Every value is checked before any SQL runs, so one that cannot be stored is a TypeError.
 */
import { type SqlContext, checkText, isForeignKeyViolation, isUniqueViolation } from './sql-context.js';
import { StoreError } from './store-error.js';
import { MEETING_ID } from './sql-meeting-repository.js';
import type { NodeLoad, PlacementRepository } from './placement-types.js';

/** Published streams counted for a participant whose app has not reported its mids yet: microphone and camera. */
const UNREPORTED_STREAMS = 2;

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !MEETING_ID.test(id)) throw new TypeError('meetingId is 12 characters of a-z and 2-7');
  return id;
}

const checkNode = (node: unknown): string => checkText('node', node, 500);

interface LoadRow { node: string; meeting_id: string; participant_id: string | null; has_media: number | string | null; audio_mid: string | null; video_mid: string | null }

export class SqlPlacementRepository implements PlacementRepository {
  constructor(private readonly ctx: SqlContext, private readonly now: () => number = Date.now) {}

  async nodeOf(meetingId: string): Promise<string | undefined> {
    const id = checkId(meetingId);
    return this.ctx.run('reading a meeting\'s node', async (db) => {
      const row = (await db('meeting_nodes').where({ meeting_id: id }).first('node')) as { node: string } | undefined;
      return row?.node;
    });
  }

  async claim(meetingId: string, node: string): Promise<string> {
    const id = checkId(meetingId);
    const n = checkNode(node);
    return this.ctx.run('placing a meeting on a node', async (db) => {
      try {
        await db('meeting_nodes').insert({ meeting_id: id, node: n, placed_at: this.now() });
        return n;
      } catch (err) {
        if (isForeignKeyViolation(err)) throw new StoreError('STORE_ERR_NOT_FOUND', `no meeting ${id}`);
        if (!isUniqueViolation(err)) throw err;
      }
      // Another worker placed it first: its choice holds.
      const row = (await db('meeting_nodes').where({ meeting_id: id }).first('node')) as { node: string } | undefined;
      if (row === undefined) throw new StoreError('STORE_ERR_QUERY', `placing meeting ${id}: placed and released meanwhile`);
      return row.node;
    });
  }

  async move(meetingId: string, from: string, to: string): Promise<boolean> {
    const id = checkId(meetingId);
    const f = checkNode(from);
    const t = checkNode(to);
    return this.ctx.run('moving a meeting to another node', async (db) => {
      const changed = await db('meeting_nodes').where({ meeting_id: id, node: f }).update({ node: t, placed_at: this.now() });
      return changed === 1;
    });
  }

  async release(meetingId: string): Promise<void> {
    const id = checkId(meetingId);
    await this.ctx.run('releasing a meeting\'s node', async (db) => db('meeting_nodes').where({ meeting_id: id }).del());
  }

  async meetingsOn(node: string): Promise<string[]> {
    const n = checkNode(node);
    return this.ctx.run('listing a node\'s meetings', async (db) => {
      const rows = (await db('meeting_nodes').where({ node: n }).orderBy('placed_at').select('meeting_id')) as Array<{ meeting_id: string }>;
      return rows.map((r) => r.meeting_id);
    });
  }

  async loads(): Promise<NodeLoad[]> {
    const rows = await this.ctx.run('reading the Janus nodes\' load', async (db) => (await db('meeting_nodes as n')
      .leftJoin('meeting_participants as p', (j) => j.on('p.meeting_id', 'n.meeting_id').andOnVal('p.state', 'admitted'))
      .leftJoin('participant_media as m', 'm.participant_id', 'p.id')
      .select('n.node', 'n.meeting_id', 'p.id as participant_id', 'm.participant_id as has_media', 'm.audio_mid', 'm.video_mid')) as LoadRow[]);
    // Per meeting: its admitted participants and the streams they publish; a meeting forwards each stream to the others.
    const meetings = new Map<string, { node: string; participants: number; published: number }>();
    for (const r of rows) {
      let m = meetings.get(r.meeting_id);
      if (m === undefined) meetings.set(r.meeting_id, (m = { node: r.node, participants: 0, published: 0 }));
      if (r.participant_id === null) continue;
      m.participants++;
      m.published += r.has_media === null ? UNREPORTED_STREAMS : (r.audio_mid === null ? 0 : 1) + (r.video_mid === null ? 0 : 1);
    }
    const nodes = new Map<string, { rooms: number; participants: number; streams: number }>();
    for (const m of meetings.values()) {
      const n = nodes.get(m.node) ?? { rooms: 0, participants: 0, streams: 0 };
      n.rooms++;
      n.participants += m.participants;
      n.streams += m.published * Math.max(0, m.participants - 1);
      nodes.set(m.node, n);
    }
    return [...nodes].map(([node, n]) => ({ node, ...n })).sort((a, b) => (a.node < b.node ? -1 : 1));
  }
}
