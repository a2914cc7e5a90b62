import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClusterWorker, type WorkerMessage } from '../../../../server/cluster/index.js';
import { silentLogger } from '../../../../src/log/index.js';

/** Worker 0 of 3 with every peer up; the messages it sends the primary are kept. */
function member(): { worker: ClusterWorker; sent: WorkerMessage[] } {
  const sent: WorkerMessage[] = [];
  const worker = new ClusterWorker({ index: 0, workers: 3, logger: silentLogger(), send: (m) => sent.push(m) });
  worker.onPrimaryMessage({ type: 'cluster:peers', ports: [40001, 40002, 40003], generations: [0, 0, 0], draining: [null, null, null] });
  return { worker, sent };
}

function lastAsk(sent: WorkerMessage[]): Extract<WorkerMessage, { type: 'cluster:ask' }> {
  const ask = [...sent].reverse().find((m) => m.type === 'cluster:ask');
  assert.ok(ask !== undefined && ask.type === 'cluster:ask');
  return ask;
}

const dialog = (id: string, owner: number) => ({
  id, owner, callId: `call-${id}`, fromTag: 'f', state: 'confirmed', direction: 'user-user', mediaRelayed: false, createdAt: 1,
  caller: { uri: 'sip:alice@example.com' }, callee: { uri: 'sip:bob@example.com' },
});

describe('ClusterWorker: the admin API\'s calls across workers (cluster:ask / cluster:answer)', () => {
  it('lists every other worker\'s calls, leaving out what is not a dialog, and counts a silent worker as missing', async () => {
    const { worker, sent } = member();
    const listing = worker.list(200);
    const ask = lastAsk(sent);
    assert.deepEqual(ask.question, { topic: 'calls' });
    worker.onPrimaryMessage({ type: 'cluster:answer', from: 1, to: 0, toGeneration: 0, id: ask.id, answer: [dialog('a', 1), { id: 3 }, null] });
    const { dialogs, missing } = await listing;
    assert.deepEqual(dialogs.map((d) => d.id), ['a']);
    assert.equal(missing, 1);
    worker.close();
  });

  it('a hang-up is settled by the worker that holds the call, without waiting for the others', async () => {
    const { worker, sent } = member();
    const hanging = worker.hangUp('a', 5000);
    const ask = lastAsk(sent);
    assert.deepEqual(ask.question, { topic: 'hangup', id: 'a' });
    worker.onPrimaryMessage({ type: 'cluster:answer', from: 2, to: 0, toGeneration: 0, id: ask.id, answer: 'bye' });
    const started = Date.now();
    assert.deepEqual(await hanging, { result: 'bye', missing: 0 });
    assert.ok(Date.now() - started < 1000);
    worker.close();
  });

  it('a call nobody holds is unknown once every worker has said so; a worker that stays silent is counted', async () => {
    const { worker, sent } = member();
    const both = worker.hangUp('zz', 5000);
    let ask = lastAsk(sent);
    for (const from of [1, 2]) worker.onPrimaryMessage({ type: 'cluster:answer', from, to: 0, toGeneration: 0, id: ask.id, answer: 'unknown' });
    assert.deepEqual(await both, { result: 'unknown', missing: 0 });
    const one = worker.hangUp('zz', 200);
    ask = lastAsk(sent);
    worker.onPrimaryMessage({ type: 'cluster:answer', from: 1, to: 0, toGeneration: 0, id: ask.id, answer: 'unknown' });
    worker.onPrimaryMessage({ type: 'cluster:answer', from: 2, to: 0, toGeneration: 0, id: ask.id, answer: 'a made-up outcome' });
    assert.deepEqual(await one, { result: 'unknown', missing: 0 }, 'an answer of another version is no hang-up');
    worker.close();
  });
});
