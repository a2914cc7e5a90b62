/**
 * The Prometheus metrics of one process (prom-client), read from what the modules already count: every
 * gauge and counter here is filled when scraped (its `collect`), from the stats the modules keep for
 * `/health`, so the SIP hot path does no work for it beyond the plain integer increments those stats are.
 * Only the ended dialogs are counted here, by cause, one increment per call from the tracker's event.
 *
 * Names follow the Prometheus conventions (https://prometheus.io/docs/practices/naming/): `softswitch_`
 * prefix, base units in the name (`_seconds`), `_total` on counters. Each metric says how the cluster adds
 * up its workers (`aggregator`, aggregate.ts): counters and what each worker holds for itself (transactions,
 * dialogs, connections) are summed; what every worker holds a copy of (bindings and bans, replicated) is
 * the largest copy; a node or backend is up when every worker reaches it (min), its latency the worst seen
 * (max). Node's own metrics (event-loop lag, GC, heap, CPU: prom-client's default metrics, under their
 * usual names so stock Node.js dashboards work) carry a `worker` label and stay one series per worker.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { MessageCountsView } from '../src/sip/index.js';

/** What the metrics are read from: narrow views of the modules, wired by the shell (server/app.ts). */
export interface MetricsSources {
  /** The stack's requests and responses by method and code. */
  messages(): MessageCountsView;
  /** The stack's refusals (StackStats). */
  stack(): { parseErrors: number; dropped: number; rejected: number; scanners: number; overBudget: number; droppedResponses: number };
  /** Live transactions per side. */
  transactions(): { client: number; server: number };
  /** Open TCP/TLS/WS/WSS connections by transport. */
  connections(): Partial<Record<string, number>>;
  /** Unexpired bindings by the transport they registered over. */
  registrations(): Record<string, number>;
  /** Dialogs in progress (created: INVITE forwarded, nothing back yet). */
  dialogs(): { active: number; early: number; confirmed: number };
  security(): { bans: number; banned: number; refusedTries: number };
  rtpengine(): Array<{ node: string; up: boolean; latencyMs: number | undefined; calls: number }>;
  backends(): Array<{ set: string; uri: string; up: boolean; probeMs: number | undefined; activeCalls: number }>;
  /** Undefined when push is off. */
  push(): { byProvider: Record<string, { ok: number; failed: number }>; woken: number; timedOut: number } | undefined;
  /** Undefined when chat is off. */
  chat(): { received: number; refused: number; receipts: number; delivered: number; deferred: number } | undefined;
  /** Undefined when presence is off. */
  presence(): { subscriptions: number; notifies: number; notifyFailures: number } | undefined;
  /** The Janus nodes of meetings.janus: up (this worker's checks), capacity and load (from SQL, the last check's). */
  janus(): Array<{ node: string; up: boolean; capacity: number; rooms: number; participants: number; streams: number }>;
}

/** One process's metrics as prom-client's `getMetricsAsJSON()` gives them: what crosses between workers. */
export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[];

export interface ProcessMetricsOptions {
  sources: MetricsSources;
  /** The worker slot (0 for a single process): the `worker` label of the per-process metrics. */
  worker: number;
}

/** The registry of one process; `dialogEnded` is wired to the tracker's `ended` event. */
export class ProcessMetrics {
  readonly registry = new Registry();
  private readonly ended: Counter<'cause'>;
  private readonly http: Counter<'method' | 'route' | 'code'>;

  constructor(options: ProcessMetricsOptions) {
    const { sources: s } = options;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, labels: { worker: String(options.worker) } });

    // ---- SIP ----------------------------------------------------------------------------------------
    const byMethod = (name: string, help: string, read: (v: MessageCountsView) => Array<{ method: string; count: number }>): void => {
      new Counter({
        name, help, labelNames: ['method'], registers,
        collect() {
          this.reset();
          for (const c of read(s.messages())) this.inc({ method: c.method }, c.count);
        },
      });
    };
    byMethod('softswitch_sip_requests_received_total', 'SIP requests read, by method (retransmissions included; methods outside RFC 3261 and its extensions count as OTHER).', (v) => v.requestsReceived);
    byMethod('softswitch_sip_retransmissions_received_total', 'SIP request retransmissions absorbed by their transaction, by method.', (v) => v.retransmissionsReceived);
    const byCode = (name: string, help: string, read: (v: MessageCountsView) => Array<{ method: string; code: number; count: number }>): void => {
      new Counter({
        name, help, labelNames: ['method', 'code'], registers,
        collect() {
          this.reset();
          for (const c of read(s.messages())) this.inc({ method: c.method, code: String(c.code) }, c.count);
        },
      });
    };
    byCode('softswitch_sip_responses_received_total', 'SIP responses read, by the method of their CSeq and their status code.', (v) => v.responsesReceived);
    byCode('softswitch_sip_responses_sent_total', 'SIP responses sent (own and forwarded; first transmissions), by the method of their CSeq and their status code.', (v) => v.responsesSent);
    counter(registers, 'softswitch_sip_parse_errors_total', 'SIP messages that did not parse (answered 400 or 513 when possible).', () => s.stack().parseErrors);
    new Counter({
      name: 'softswitch_sip_messages_refused_total',
      help: 'SIP messages refused before routing, by reason: banned or flooding source (gate), invalid request (invalid), scanner User-Agent (scanner), transaction memory full (over_budget), response not for us (stray_response).',
      labelNames: ['reason'], registers,
      collect() {
        const st = s.stack();
        this.reset();
        this.inc({ reason: 'gate' }, st.dropped);
        this.inc({ reason: 'invalid' }, st.rejected);
        this.inc({ reason: 'scanner' }, st.scanners);
        this.inc({ reason: 'over_budget' }, st.overBudget);
        this.inc({ reason: 'stray_response' }, st.droppedResponses);
      },
    });
    new Gauge({
      name: 'softswitch_sip_transactions', help: 'Live SIP transactions, by side (client, server).', labelNames: ['side'], registers,
      collect() {
        const t = s.transactions();
        this.set({ side: 'client' }, t.client);
        this.set({ side: 'server' }, t.server);
      },
    });
    new Gauge({
      name: 'softswitch_connections', help: 'Open SIP connections, by transport (tcp, tls, ws, wss).', labelNames: ['transport'], registers,
      collect() {
        this.reset();
        for (const [transport, n] of Object.entries(s.connections())) this.set({ transport }, n ?? 0);
      },
    });

    // ---- registrations, calls -----------------------------------------------------------------------
    new Gauge({
      name: 'softswitch_registrations', help: 'Registered contacts (bindings), by the transport they registered over. Replicated to every worker: the cluster shows the largest copy.',
      labelNames: ['transport'], registers, aggregator: 'max',
      collect() {
        this.reset();
        for (const [transport, n] of Object.entries(s.registrations())) this.set({ transport }, n);
      },
    });
    new Gauge({
      name: 'softswitch_dialogs_active', help: 'Calls in progress, by state (setup: INVITE forwarded, nothing back yet; early; confirmed).', labelNames: ['state'], registers,
      collect() {
        const d = s.dialogs();
        this.set({ state: 'setup' }, d.active - d.early - d.confirmed);
        this.set({ state: 'early' }, d.early);
        this.set({ state: 'confirmed' }, d.confirmed);
      },
    });
    this.ended = new Counter({
      name: 'softswitch_dialogs_ended_total',
      help: 'Calls ended, by cause (bye, cancel, failure: no 2xx, timeout: maxDuration or no ACK, keepalive, shutdown).',
      labelNames: ['cause'], registers,
    });

    // ---- HTTP API -----------------------------------------------------------------------------------
    // The route's template (`/v1/users/:user`), never the path itself: one series per route and code, whatever the
    // callers send; a path no route matched counts as `unmatched`.
    this.http = new Counter({
      name: 'softswitch_http_requests_total',
      help: 'HTTP API requests answered, by method, route template (unmatched: no route) and status code.',
      labelNames: ['method', 'route', 'code'], registers,
    });

    // ---- security -----------------------------------------------------------------------------------
    gauge(registers, 'softswitch_bans_active', 'Source addresses banned now. Replicated to every worker: the cluster shows the largest copy.', () => s.security().bans, 'max');
    counter(registers, 'softswitch_bans_total', 'Bans decided (floods and password guessing).', () => s.security().banned);
    counter(registers, 'softswitch_auth_refused_total', 'Authentication attempts refused by the password-guessing guard.', () => s.security().refusedTries);

    // ---- rtpengine, backends ------------------------------------------------------------------------
    new Gauge({
      name: 'softswitch_rtpengine_up', help: '1 when the rtpengine node answers the ng protocol (every worker reaches it), else 0.', labelNames: ['node'], registers, aggregator: 'min',
      collect() {
        this.reset();
        for (const n of s.rtpengine()) this.set({ node: n.node }, n.up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'softswitch_rtpengine_latency_seconds', help: 'Round trip of the last successful ng command or ping to the node (the worst worker).', labelNames: ['node'], registers, aggregator: 'max',
      collect() {
        this.reset();
        for (const n of s.rtpengine()) if (n.latencyMs !== undefined) this.set({ node: n.node }, n.latencyMs / 1000);
      },
    });
    new Gauge({
      name: 'softswitch_rtpengine_calls', help: 'Calls whose media the node relays.', labelNames: ['node'], registers,
      collect() {
        this.reset();
        for (const n of s.rtpengine()) this.set({ node: n.node }, n.calls);
      },
    });
    new Gauge({
      name: 'softswitch_backend_up', help: '1 when the backend (load balancer) is up for every worker, else 0.', labelNames: ['set', 'uri'], registers, aggregator: 'min',
      collect() {
        this.reset();
        for (const b of s.backends()) this.set({ set: b.set, uri: b.uri }, b.up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'softswitch_backend_probe_latency_seconds', help: 'Round trip of the last answered OPTIONS probe to the backend (the worst worker).', labelNames: ['set', 'uri'], registers, aggregator: 'max',
      collect() {
        this.reset();
        for (const b of s.backends()) if (b.probeMs !== undefined) this.set({ set: b.set, uri: b.uri }, b.probeMs / 1000);
      },
    });
    new Gauge({
      name: 'softswitch_backend_calls', help: 'Calls in progress through the backend.', labelNames: ['set', 'uri'], registers,
      collect() {
        this.reset();
        for (const b of s.backends()) this.set({ set: b.set, uri: b.uri }, b.activeCalls);
      },
    });

    // ---- meetings: the Janus nodes (the load is read from SQL: every worker has the same, hence max) ---
    const byNode = (name: string, help: string, read: (n: ReturnType<MetricsSources['janus']>[number]) => number, aggregator: Aggregator): void => {
      new Gauge({
        name, help, labelNames: ['node'], registers, aggregator,
        collect() {
          this.reset();
          for (const n of s.janus()) this.set({ node: n.node }, read(n));
        },
      });
    };
    byNode('softswitch_janus_node_up', '1 when the Janus node answers (every worker reaches it), else 0: a node down takes no room and its meetings move.', (n) => (n.up ? 1 : 0), 'min');
    byNode('softswitch_janus_node_capacity_streams', 'Forwarded streams the node may carry (meetings.janus[].capacity).', (n) => n.capacity, 'max');
    byNode('softswitch_janus_node_streams', 'Forwarded streams on the node, estimated: each admitted participant\'s published streams to each other participant of its meeting.', (n) => n.streams, 'max');
    byNode('softswitch_janus_node_rooms', 'Meetings whose rooms are on the node.', (n) => n.rooms, 'max');
    byNode('softswitch_janus_node_participants', 'Participants admitted in the node\'s meetings.', (n) => n.participants, 'max');

    // ---- push, chat, presence -----------------------------------------------------------------------
    new Counter({
      name: 'softswitch_push_sends_total', help: 'Pushes sent to the providers (RFC 8599), by provider (apns, fcm, webpush) and result (ok, failed).',
      labelNames: ['provider', 'result'], registers,
      collect() {
        this.reset();
        for (const [provider, c] of Object.entries(s.push()?.byProvider ?? {})) {
          this.inc({ provider, result: 'ok' }, c.ok);
          this.inc({ provider, result: 'failed' }, c.failed);
        }
      },
    });
    counter(registers, 'softswitch_push_wakes_total', 'Sleeping devices that registered after a call\'s push.', () => s.push()?.woken ?? 0);
    counter(registers, 'softswitch_push_wake_timeouts_total', 'Call pushes after which the device did not register in time.', () => s.push()?.timedOut ?? 0);
    counter(registers, 'softswitch_chat_messages_stored_total', 'Chat MESSAGEs stored (answered 202).', () => s.chat()?.received ?? 0);
    counter(registers, 'softswitch_chat_messages_refused_total', 'Chat MESSAGEs refused.', () => s.chat()?.refused ?? 0);
    counter(registers, 'softswitch_chat_messages_delivered_total', 'Stored chat messages delivered to a device (answered 2xx).', () => s.chat()?.delivered ?? 0);
    counter(registers, 'softswitch_chat_deliveries_deferred_total', 'Chat deliveries that found the device unreachable (the message waits).', () => s.chat()?.deferred ?? 0);
    counter(registers, 'softswitch_chat_receipts_total', 'Chat delivery and read receipts (IMDN) received.', () => s.chat()?.receipts ?? 0);
    gauge(registers, 'softswitch_presence_subscriptions', 'Presence, dialog and message-summary subscriptions held.', () => s.presence()?.subscriptions ?? 0);
    counter(registers, 'softswitch_presence_notifies_total', 'NOTIFYs sent to watchers.', () => s.presence()?.notifies ?? 0);
    counter(registers, 'softswitch_presence_notify_failures_total', 'NOTIFYs that failed (timeout, error answer, transport).', () => s.presence()?.notifyFailures ?? 0);
  }

  /** A call ended (the dialog tracker's `ended` event). */
  dialogEnded(cause: string): void {
    this.ended.inc({ cause });
  }

  /** An HTTP request was answered (the server's onResponse hook, metrics/routes.ts). */
  httpAnswered(method: string, route: string | undefined, code: number): void {
    this.http.inc({ method, route: route ?? 'unmatched', code: String(code) });
  }

  /** This process's metrics, as they travel to the worker that answers a scrape. */
  snapshot(): Promise<MetricsSnapshot> {
    return this.registry.getMetricsAsJSON() as Promise<MetricsSnapshot>;
  }
}

type Aggregator = 'sum' | 'max' | 'min';

/** A counter read whole from a module's stats at scrape time. */
function counter(registers: Registry[], name: string, help: string, read: () => number): void {
  new Counter({
    name, help, registers,
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

function gauge(registers: Registry[], name: string, help: string, read: () => number, aggregator: Aggregator = 'sum'): void {
  new Gauge({
    name, help, registers, aggregator,
    collect() {
      this.set(read());
    },
  });
}
