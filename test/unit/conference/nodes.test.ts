/**
 * The Janus node pool (conference/nodes.ts): which node a new meeting's room goes to, and when a node that does not
 * answer is down. The loads come from a PlacementRepository stand-in (the SQL one is tested in the store suites);
 * the nodes are JanusNode objects whose health checks really connect (to a port nothing listens on, for a dead one).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { JanusNode, JanusPool, MeetingError } from '../../../conference/index.js';
import type { NodeLoad, PlacementRepository } from '../../../platform/store/index.js';

function node(url: string, adminUrl = url): JanusNode {
  return new JanusNode({ node: { url, adminUrl, adminSecret: 'x' }, focusToken: 'focus', timeoutMs: 500 });
}

/** Placements whose loads are what the test says. */
function placements(loads: NodeLoad[]): PlacementRepository {
  return {
    nodeOf: async () => undefined, claim: async (_m, n) => n, move: async () => true, release: async () => undefined, meetingsOn: async () => [],
    loads: async () => loads,
  };
}
const load = (n: string, streams: number, rooms = 1): NodeLoad => ({ node: n, rooms, participants: 0, streams });

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the Janus node pool', () => {
  // Names only: these nodes are never checked (nothing connects to them).
  const A = 'ws://127.0.0.1:18188';
  const B = 'ws://127.0.0.2:18188';
  const C = 'ws://127.0.0.3:18188';

  it('places a new room on the node with the smallest share of its capacity, not the fewest streams', async () => {
    const [a, b] = [node(A), node(B)];
    const pool = new JanusPool({ nodes: [{ node: a, capacity: 100 }, { node: b, capacity: 1000 }], placements: placements([load(A, 30), load(B, 200)]) });
    assert.equal(await pool.choose(), b, '20 % of B beats 30 % of A');
  });

  it('breaks a tie by fewer rooms, then by the order of meetings.janus', async () => {
    const [a, b, c] = [node(A), node(B), node(C)];
    const nodes = [{ node: a, capacity: 100 }, { node: b, capacity: 100 }, { node: c, capacity: 100 }];
    assert.equal(await new JanusPool({ nodes, placements: placements([load(A, 0, 2), load(B, 0, 1), load(C, 0, 1)]) }).choose(), b);
    assert.equal(await new JanusPool({ nodes, placements: placements([]) }).choose(), a, 'all empty: the first listed');
  });

  it('skips a node at its capacity and the node a meeting is leaving; with none left it answers 503 saying why', async () => {
    const [a, b] = [node(A), node(B)];
    const nodes = [{ node: a, capacity: 10 }, { node: b, capacity: 10 }];
    assert.equal(await new JanusPool({ nodes, placements: placements([load(A, 10)]) }).choose(), b, 'A is full');
    assert.equal(await new JanusPool({ nodes, placements: placements([]) }).choose(A), b, 'leaving A');
    await assert.rejects(new JanusPool({ nodes, placements: placements([load(A, 10), load(B, 12)]) }).choose(),
      (err) => err instanceof MeetingError && err.code === 'MEETING_ERR_UNAVAILABLE' && /at its capacity/.test(err.message) && err.retryAfter === 5);
    await assert.rejects(new JanusPool({ nodes: [], placements: placements([]) }).choose(), (err) => err instanceof MeetingError && /meetings\.janus/.test(err.message));
  });

  it('marks a node that does not answer downAfter checks in a row down (once, with a `down` event), and places nothing there', async () => {
    const port = await deadPort();
    const dead = node(`ws://127.0.0.1:${port}`);
    const pool = new JanusPool({ nodes: [{ node: dead, capacity: 10 }], placements: placements([]), downAfter: 2, healthIntervalMs: 100_000 });
    const downs: string[] = [];
    pool.on('down', (n) => downs.push(n.url));
    try {
      await pool.check();
      assert.equal(pool.isUp(dead), true, 'one failed check is not enough');
      assert.equal(await pool.choose(), dead);
      await pool.check();
      assert.equal(pool.isUp(dead), false);
      await pool.check();
      assert.deepEqual(downs, [dead.url], 'told once');
      await assert.rejects(pool.choose(), (err) => err instanceof MeetingError && /no Janus node is available/.test(err.message));
      assert.deepEqual(pool.status(), [{ node: dead.url, up: false, capacity: 10, rooms: 0, participants: 0, streams: 0 }], '/metrics says so');
    } finally {
      pool.stop();
      await dead.close();
    }
  });
});
