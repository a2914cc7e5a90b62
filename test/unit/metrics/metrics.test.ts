/**
 * The metrics of one process (metrics/registry.ts), the node's answer summed over workers (metrics/aggregate.ts),
 * the cluster worker's side of a scrape (ClusterWorker.collect), and the sample Grafana dashboard.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type MetricsSources, NodeMetrics, ProcessMetrics, aggregateSnapshots } from '../../../metrics/index.js';
import { ClusterWorker, type WorkerMessage } from '../../../server/cluster/index.js';
import { MessageCounters } from '../../../src/sip/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { repoRoot } from '../../../support/paths.js';
import { captureLogger } from '../../helpers/log-capture.js';
import { parseExposition, valueOf, matching } from '../../helpers/prometheus.js';

/** Sources as a server with push, chat and presence on would give them; `counters` is the stack's. */
function sources(counters: MessageCounters, over: Partial<MetricsSources> = {}): MetricsSources {
  return {
    messages: () => counters.read(),
    stack: () => ({ parseErrors: 2, dropped: 3, rejected: 1, scanners: 0, overBudget: 0, droppedResponses: 4 }),
    transactions: () => ({ client: 1, server: 2 }),
    connections: () => ({ wss: 5, tcp: 1 }),
    registrations: () => ({ udp: 3, wss: 5 }),
    dialogs: () => ({ active: 4, early: 1, confirmed: 2 }),
    security: () => ({ bans: 2, banned: 7, refusedTries: 9 }),
    rtpengine: () => [{ node: '127.0.0.1:2223', up: true, latencyMs: 1.5, calls: 2 }],
    backends: () => [{ set: 'fs', uri: 'sip:192.0.2.5', up: true, probeMs: 12, activeCalls: 3 }],
    push: () => ({ byProvider: { apns: { ok: 4, failed: 1 } }, woken: 3, timedOut: 1 }),
    chat: () => ({ received: 10, refused: 1, receipts: 2, delivered: 9, deferred: 1 }),
    presence: () => ({ subscriptions: 6, notifies: 20, notifyFailures: 1 }),
    janus: () => [{ node: 'ws://10.0.0.7:8188', up: true, capacity: 400, rooms: 2, participants: 7, streams: 46 }],
    ...over,
  };
}

/** A call as the stack counts it: INVITE → 407, ACK, INVITE → 200, ACK, BYE → 200. */
function countCall(c: MessageCounters): void {
  c.request('INVITE');
  c.responseSent('INVITE', 407);
  c.request('ACK');
  c.request('INVITE');
  c.responseReceived('INVITE', 200);
  c.responseSent('INVITE', 200);
  c.request('ACK');
  c.request('BYE');
  c.responseSent('BYE', 200);
}

async function textOf(m: ProcessMetrics): Promise<string> {
  return m.registry.metrics();
}

describe('MessageCounters', () => {
  it('counts requests and responses by method and code, and an unknown method (extension-method, RFC 3261 §25.1) as OTHER', () => {
    const c = new MessageCounters();
    countCall(c);
    c.request('FOO');
    c.request('BAR');
    c.retransmission('INVITE');
    c.responseReceived(undefined, 503);
    const v = c.read();
    assert.deepEqual(v.requestsReceived, [{ method: 'INVITE', count: 2 }, { method: 'ACK', count: 2 }, { method: 'BYE', count: 1 }, { method: 'OTHER', count: 2 }]);
    assert.deepEqual(v.retransmissionsReceived, [{ method: 'INVITE', count: 1 }]);
    assert.deepEqual(v.responsesSent, [{ method: 'INVITE', code: 200, count: 1 }, { method: 'INVITE', code: 407, count: 1 }, { method: 'BYE', code: 200, count: 1 }]);
    assert.deepEqual(v.responsesReceived, [{ method: 'INVITE', code: 200, count: 1 }, { method: 'OTHER', code: 503, count: 1 }]);
  });

  it('ignores a status outside 100–699 (RFC 3261 §7.2) rather than counting it somewhere else', () => {
    const c = new MessageCounters();
    for (const status of [99, 700, 0, -1, Number.NaN, 200.5]) c.responseSent('INVITE', status);
    assert.deepEqual(c.read().responsesSent, [{ method: 'INVITE', code: 200, count: 1 }], 'only 200.5 → 200 (truncated)');
  });
});

describe('ProcessMetrics', () => {
  it('exports the modules\' stats at scrape time under softswitch_* names, counters with _total, seconds for latencies', async () => {
    const counters = new MessageCounters();
    countCall(counters);
    const m = new ProcessMetrics({ worker: 0, sources: sources(counters) });
    m.dialogEnded('bye');
    m.dialogEnded('cancel');
    const e = parseExposition(await textOf(m));
    assert.equal(valueOf(e, 'softswitch_sip_requests_received_total', { method: 'INVITE' }), 2);
    assert.equal(valueOf(e, 'softswitch_sip_responses_sent_total', { method: 'INVITE', code: '407' }), 1);
    assert.equal(valueOf(e, 'softswitch_sip_responses_received_total', { method: 'INVITE', code: '200' }), 1);
    assert.equal(valueOf(e, 'softswitch_sip_parse_errors_total'), 2);
    assert.equal(valueOf(e, 'softswitch_sip_messages_refused_total', { reason: 'stray_response' }), 4);
    assert.equal(valueOf(e, 'softswitch_sip_transactions', { side: 'server' }), 2);
    assert.equal(valueOf(e, 'softswitch_connections', { transport: 'wss' }), 5);
    assert.equal(valueOf(e, 'softswitch_registrations', { transport: 'udp' }), 3);
    assert.deepEqual(matching(e, 'softswitch_dialogs_active').map((s) => [s.labels.state, s.value]), [['setup', 1], ['early', 1], ['confirmed', 2]]);
    assert.equal(valueOf(e, 'softswitch_dialogs_ended_total', { cause: 'bye' }), 1);
    assert.equal(valueOf(e, 'softswitch_bans_active'), 2);
    assert.equal(valueOf(e, 'softswitch_rtpengine_latency_seconds', { node: '127.0.0.1:2223' }), 0.0015);
    assert.equal(valueOf(e, 'softswitch_backend_probe_latency_seconds', { set: 'fs', uri: 'sip:192.0.2.5' }), 0.012);
    assert.equal(valueOf(e, 'softswitch_push_sends_total', { provider: 'apns', result: 'failed' }), 1);
    assert.equal(valueOf(e, 'softswitch_chat_messages_stored_total'), 10);
    assert.equal(valueOf(e, 'softswitch_presence_notifies_total'), 20);
    for (const [name, type] of e.types) {
      if (!name.startsWith('softswitch_')) continue;
      assert.equal(name.endsWith('_total'), type === 'counter', `${name} (${type}): _total on counters only`);
      assert.doesNotMatch(name, /_(ms|milliseconds)$|latency$/, `${name}: base units in the name`);
    }
  });

  it('labels Node\'s own metrics (event-loop lag, GC, heap, CPU) with the worker and leaves them under their usual names', async () => {
    const e = parseExposition(await textOf(new ProcessMetrics({ worker: 3, sources: sources(new MessageCounters()) })));
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds', 'process_cpu_user_seconds_total', 'nodejs_heap_size_used_bytes']) {
      assert.deepEqual(matching(e, name).map((s) => s.labels.worker), ['3'], name);
    }
    assert.ok(e.types.has('nodejs_gc_duration_seconds'), 'GC durations');
  });

  it('with push, chat and presence off: no push series, their counters at 0', async () => {
    const m = new ProcessMetrics({ worker: 0, sources: sources(new MessageCounters(), { push: () => undefined, chat: () => undefined, presence: () => undefined }) });
    const e = parseExposition(await textOf(m));
    assert.deepEqual(matching(e, 'softswitch_push_sends_total'), []);
    assert.equal(valueOf(e, 'softswitch_chat_messages_stored_total'), 0);
  });
});

describe('the node\'s metrics, summed over its workers', () => {
  const worker = (index: number, over: Partial<MetricsSources> = {}): { metrics: ProcessMetrics; counters: MessageCounters } => {
    const counters = new MessageCounters();
    return { metrics: new ProcessMetrics({ worker: index, sources: sources(counters, over) }), counters };
  };

  it('sums counters and each worker\'s own gauges, keeps one copy of what every worker replicates, and one series per worker for Node\'s metrics', async () => {
    const w0 = worker(0);
    const w1 = worker(1, {
      registrations: () => ({ udp: 2, wss: 5 }), // replication lag: one binding not there yet
      rtpengine: () => [{ node: '127.0.0.1:2223', up: false, latencyMs: 9, calls: 1 }],
    });
    for (let i = 0; i < 3; i++) countCall(w0.counters);
    countCall(w1.counters);
    w0.metrics.dialogEnded('bye');
    w1.metrics.dialogEnded('bye');
    const registry = aggregateSnapshots(await w0.metrics.snapshot(), [await w1.metrics.snapshot()], silentLogger());
    const e = parseExposition(await registry.metrics());
    assert.equal(valueOf(e, 'softswitch_sip_requests_received_total', { method: 'INVITE' }), 8, 'counters: summed');
    assert.equal(valueOf(e, 'softswitch_sip_responses_sent_total', { method: 'INVITE', code: '200' }), 4);
    assert.equal(valueOf(e, 'softswitch_dialogs_ended_total', { cause: 'bye' }), 2);
    assert.equal(valueOf(e, 'softswitch_sip_transactions', { side: 'server' }), 4, 'transactions each worker holds: summed');
    assert.equal(valueOf(e, 'softswitch_registrations', { transport: 'udp' }), 3, 'replicated bindings: the largest copy');
    assert.equal(valueOf(e, 'softswitch_bans_active'), 2, 'replicated bans: the largest copy');
    assert.equal(valueOf(e, 'softswitch_rtpengine_up', { node: '127.0.0.1:2223' }), 0, 'up only when every worker reaches it');
    assert.equal(valueOf(e, 'softswitch_rtpengine_latency_seconds', { node: '127.0.0.1:2223' }), 0.009, 'the worst latency');
    assert.deepEqual(matching(e, 'nodejs_eventloop_lag_p99_seconds').map((s) => s.labels.worker).sort(), ['0', '1']);
  });

  it('shows each Janus node up only when every worker reaches it, and its capacity and load (read from SQL by each worker) once, not summed', async () => {
    const node = 'ws://10.0.0.7:8188';
    const w0 = worker(0);
    const w1 = worker(1, { janus: () => [{ node, up: false, capacity: 400, rooms: 2, participants: 7, streams: 46 }] });
    const e = parseExposition(await aggregateSnapshots(await w0.metrics.snapshot(), [await w1.metrics.snapshot()], silentLogger()).metrics());
    assert.equal(valueOf(e, 'softswitch_janus_node_up', { node }), 0, 'a node one worker cannot reach is down');
    assert.equal(valueOf(e, 'softswitch_janus_node_capacity_streams', { node }), 400);
    assert.equal(valueOf(e, 'softswitch_janus_node_streams', { node }), 46);
    assert.equal(valueOf(e, 'softswitch_janus_node_rooms', { node }), 2);
    assert.equal(valueOf(e, 'softswitch_janus_node_participants', { node }), 7);
  });

  it('answers a scrape with the workers that answered and softswitch_scrape_workers_missing for the others', async () => {
    const w0 = worker(0);
    const w1 = worker(1);
    countCall(w0.counters);
    countCall(w1.counters);
    const node = new NodeMetrics({
      local: w0.metrics,
      peers: { collect: async () => ({ snapshots: [await w1.metrics.snapshot()], missing: 1 }) },
      logger: silentLogger(),
    });
    const e = parseExposition(await node.scrape());
    assert.equal(valueOf(e, 'softswitch_scrape_workers_missing'), 1);
    assert.equal(valueOf(e, 'softswitch_sip_requests_received_total', { method: 'BYE' }), 2);
    assert.match(node.contentType, /^text\/plain; version=0\.0\.4/);
  });

  it('a single process (--workers 1) answers the same way, with no worker missing', async () => {
    const w0 = worker(0);
    countCall(w0.counters);
    const e = parseExposition(await new NodeMetrics({ local: w0.metrics, logger: silentLogger() }).scrape());
    assert.equal(valueOf(e, 'softswitch_scrape_workers_missing'), 0);
    assert.equal(valueOf(e, 'softswitch_sip_requests_received_total', { method: 'INVITE' }), 2);
  });

  it('leaves out a malformed snapshot with one log line, never failing the scrape', async () => {
    const w0 = worker(0);
    countCall(w0.counters);
    const { logger, lines } = captureLogger();
    const bad: unknown[] = [
      'garbage', null, [{ name: 'x' }], [{ name: 'softswitch_sip_transactions', type: 'gauge', values: [], aggregator: 'eval' }],
    ];
    const e = parseExposition(await aggregateSnapshots(await w0.metrics.snapshot(), bad, logger).metrics());
    assert.equal(valueOf(e, 'softswitch_sip_requests_received_total', { method: 'INVITE' }), 2);
    assert.equal(lines.filter((l) => l.includes('malformed')).length, bad.length);
  });
});

describe('ClusterWorker as the scraped worker', () => {
  /** Worker 0 of 3 with every peer up; the messages it sends the primary are kept. */
  function member(): { worker: ClusterWorker; sent: WorkerMessage[] } {
    const sent: WorkerMessage[] = [];
    const worker = new ClusterWorker({ index: 0, workers: 3, logger: silentLogger(), send: (m) => sent.push(m) });
    worker.onPrimaryMessage({ type: 'cluster:peers', ports: [40001, 40002, 40003], generations: [0, 0, 0], draining: [null, null, null] });
    return { worker, sent };
  }

  it('asks the others through the primary and resolves as soon as every other worker has answered', async () => {
    const { worker, sent } = member();
    const collecting = worker.collect(5000);
    const ask = sent.find((m) => m.type === 'cluster:ask');
    assert.ok(ask !== undefined && ask.type === 'cluster:ask');
    for (const from of [1, 2]) worker.onPrimaryMessage({ type: 'cluster:answer', from, to: 0, toGeneration: 0, id: ask.id, answer: [`worker ${from}`] });
    const started = Date.now();
    assert.deepEqual(await collecting, { snapshots: [['worker 1'], ['worker 2']], missing: 0 });
    assert.ok(Date.now() - started < 1000);
    worker.close();
  });

  it('counts a worker that does not answer within the timeout as missing, and ignores answers to other scrapes', async () => {
    const { worker, sent } = member();
    const collecting = worker.collect(200);
    const ask = sent.find((m) => m.type === 'cluster:ask');
    assert.ok(ask !== undefined && ask.type === 'cluster:ask');
    worker.onPrimaryMessage({ type: 'cluster:answer', from: 2, to: 0, toGeneration: 0, id: ask.id + 1, answer: ['another scrape'] });
    worker.onPrimaryMessage({ type: 'cluster:answer', from: 2, to: 0, toGeneration: 1, id: ask.id, answer: ['a later generation of slot 0'] });
    worker.onPrimaryMessage({ type: 'cluster:answer', from: 1, to: 0, toGeneration: 0, id: ask.id, answer: ['worker 1'] });
    assert.deepEqual(await collecting, { snapshots: [['worker 1']], missing: 1 });
    worker.close();
  });

  it('counts a worker that is down (no hand-over port) as missing without waiting for it', async () => {
    const { worker } = member();
    worker.onPrimaryMessage({ type: 'cluster:peers', ports: [40001, null, null], generations: [0, 0, 0], draining: [null, null, null] });
    assert.deepEqual(await worker.collect(5000), { snapshots: [], missing: 2 });
    worker.close();
  });
});

describe('metrics/grafana-dashboard.json', () => {
  it('is valid JSON whose every expression names only metrics the registry exports', async () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, 'metrics', 'grafana-dashboard.json'), 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
      templating: { list: Array<{ definition?: string }> };
    };
    const e = parseExposition(await new NodeMetrics({ local: new ProcessMetrics({ worker: 0, sources: sources(new MessageCounters()) }), logger: silentLogger() }).scrape());
    // A histogram family's series are <name>_bucket, _sum and _count (a labelled one has none before its first observation).
    const exported = new Set([...e.types].flatMap(([name, type]) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name])));
    const expressions = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: p.title, expr: t.expr }))),
      ...dashboard.templating.list.map((v) => ({ where: 'variable', expr: v.definition ?? '' })),
    ];
    assert.ok(dashboard.panels.length >= 6);
    const named = expressions.flatMap(({ where, expr }) => [...expr.matchAll(/\b(?:softswitch|nodejs|process)_[a-z0-9_]+/g)].map((m) => ({ where, name: m[0] })));
    assert.ok(named.length >= dashboard.panels.length);
    assert.deepEqual(named.filter((n) => !exported.has(n.name)), []);
    for (const wanted of ['softswitch_dialogs_active', 'softswitch_registrations', 'softswitch_sip_responses_sent_total', 'softswitch_rtpengine_up', 'softswitch_backend_up', 'nodejs_eventloop_lag_p99_seconds']) {
      assert.ok(named.some((n) => n.name === wanted), `the dashboard shows ${wanted}`);
    }
  });
});
