/**
 * Meetings' placements on Janus nodes (platform/store/sql-placement-repository.ts) in the shared store suite
 * (repository-suite.ts runs it on every target: SQLite and MariaDB).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError, type SqlStore } from '../../../../platform/store/index.js';

const ONE = 'mmmmmmmmmmmm';
const TWO = 'nnnnnnnnnnnn';
const THREE = 'oooooooooooo';
const NODE_A = 'ws://10.0.0.7:8188';
const NODE_B = 'ws://10.0.0.8:8188';
const notFound = (err: unknown) => err instanceof StoreError && err.code === 'STORE_ERR_NOT_FOUND';

export function placementSuite(getStore: () => SqlStore): void {
  describe('meeting placements', () => {
    beforeEach(async () => {
      const { knex, meetings } = getStore();
      for (const table of ['meeting_nodes', 'participant_media', 'meeting_participants', 'meetings']) await knex(table).del();
      for (const id of [ONE, TWO, THREE]) {
        await meetings.create({
          id, title: 'Placed', owner: 'alice@example.com', startsAt: undefined, endsAt: undefined, passwordHash: undefined, lobby: false, maxParticipants: 10, recordingAllowed: false,
        });
      }
    });

    it('a meeting is on no node until placed; the first claim wins and a later one answers the node it is on', async () => {
      const repo = getStore().placements;
      assert.equal(await repo.nodeOf(ONE), undefined);
      assert.equal(await repo.claim(ONE, NODE_A), NODE_A);
      assert.equal(await repo.claim(ONE, NODE_B), NODE_A, 'another worker\'s later choice does not move it');
      assert.equal(await repo.nodeOf(ONE), NODE_A);
      await assert.rejects(repo.claim('zzzzzzzzzzzz', NODE_A), notFound);
      await assert.rejects(repo.claim('not-an-id', NODE_A), TypeError);
    });

    it('moves a meeting only from the node it is on (compare-and-set: of two movers one wins), and releases it', async () => {
      const repo = getStore().placements;
      await repo.claim(ONE, NODE_A);
      const moves = await Promise.all([repo.move(ONE, NODE_A, NODE_B), repo.move(ONE, NODE_A, 'ws://10.0.0.9:8188')]);
      assert.deepEqual(moves.filter(Boolean).length, 1);
      assert.equal(await repo.move(ONE, NODE_A, NODE_B), false, 'not on NODE_A any more');
      assert.notEqual(await repo.nodeOf(ONE), NODE_A);
      await repo.release(ONE);
      assert.equal(await repo.nodeOf(ONE), undefined);
      assert.equal(await repo.move(ONE, NODE_B, NODE_A), false, 'a released meeting is not moved back into place');
    });

    it('lists a node\'s meetings, and deleting a meeting takes its placement with it', async () => {
      const { placements: repo, meetings } = getStore();
      await repo.claim(ONE, NODE_A);
      await repo.claim(TWO, NODE_B);
      await repo.claim(THREE, NODE_A);
      assert.deepEqual((await repo.meetingsOn(NODE_A)).sort(), [ONE, THREE].sort());
      await meetings.remove(THREE);
      assert.deepEqual(await repo.meetingsOn(NODE_A), [ONE]);
    });

    it('counts each node\'s rooms, admitted participants and forwarded streams: reported mids (2 until reported) to every other participant', async () => {
      const { placements: repo, participants, moderation } = getStore();
      await repo.claim(ONE, NODE_A);
      await repo.claim(TWO, NODE_A);
      await repo.claim(THREE, NODE_B);
      // ONE: three admitted (one reported audio only, one reported nothing: a viewer), one waiting, one left.
      const add = async (id: string, meetingId: string, state: 'admitted' | 'waiting') =>
        participants.create({ id, meetingId, user: undefined, displayName: id, role: 'participant', state, ...(state === 'admitted' ? { feedId: 1 } : {}) });
      await add('aaaaaaaaaaaa', ONE, 'admitted');
      await add('bbbbbbbbbbbb', ONE, 'admitted');
      await add('cccccccccccc', ONE, 'admitted');
      await add('dddddddddddd', ONE, 'waiting');
      await moderation.setStreams(ONE, 'bbbbbbbbbbbb', { audioMid: '0', videoMid: undefined });
      await moderation.setStreams(ONE, 'cccccccccccc', { audioMid: undefined, videoMid: undefined });
      // TWO: one admitted alone (forwards nothing yet). THREE: nobody.
      await add('eeeeeeeeeeee', TWO, 'admitted');
      const loads = await repo.loads();
      assert.deepEqual(loads, [
        // ONE: published 2 + 1 + 0 = 3 streams, each to 2 others; TWO: 2 streams to nobody.
        { node: NODE_A, rooms: 2, participants: 4, streams: 6 },
        { node: NODE_B, rooms: 1, participants: 0, streams: 0 },
      ]);
    });
  });
}
