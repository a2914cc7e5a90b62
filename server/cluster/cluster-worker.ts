/**
 * One worker of `softswitch start --workers N` (node:cluster). Every worker binds the same listeners:
 * node:cluster shares each UDP socket among the workers (one kernel socket, so a datagram reaches
 * whichever worker reads first) and spreads accepted TCP/TLS/WS/WSS connections over them (round robin
 * in the primary). A connection, and every transaction on it, stays with the worker that accepted it.
 *
 * For UDP that is not enough: a retransmission, the ACK, the CANCEL or the response of a transaction
 * must reach the worker that holds it. So each datagram is first given an owner (datagram-owner.ts:
 * hash of the Call-ID for requests, the worker tag in our Via branch for responses); a datagram that
 * belongs to another worker is handed to it over a loopback socket (a frame: the datagram, its source
 * and the shared listener it came in on), and the owner handles it exactly as if it had read it from the
 * shared socket, answering from that socket. Call-ID hashing was chosen over one Via/Record-Route port
 * per worker (docs/architecture.md leaves the choice open): the outside sees one address, a dialog
 * survives the restart of the worker that set it up, and no port range has to be opened per worker. The
 * price is one loopback hop for about (N−1)/N of the datagrams (bench/README.md measures it).
 *
 * Registrations are replicated: each worker reports its binding changes to the primary, which relays
 * them to the others (LocationService.setReplication / applyRemote), so that every worker finds every
 * binding. A UDP binding is then reached from any worker (the socket is shared). A connection (WS/WSS,
 * TCP, TLS) is held by the worker that accepted or opened it, and its flow id says which (`wss:w1.…`,
 * TransportLayer.setStreamRelay): another worker's send on it is relayed over the same loopback sockets
 * (a SEND frame, answered by a SENT frame with the outcome), and a response read on it that carries
 * another worker's branch tag is handed to that worker (a MESSAGE frame) with the flow it came on, so
 * that a call between a phone on one worker and a phone or trunk on another works. Requests read on a
 * connection stay with its worker. When a worker ends, the others drop the bindings that only its
 * connections reached (push bindings stay, without their flow: RFC 8599 devices are woken by a push).
 *
 * A worker that joins (the supervisor's restart of one that died, or a rolling restart) learns every
 * binding before it listens: the primary asks a running worker for all it holds (cluster:announce →
 * cluster:snapshot) and tells the joiner cluster:synced once it has them all. So a replacement relays to
 * the phones whose connections live on the other workers instead of opening new connections to their
 * ephemeral ports (the persisted copy of a binding has no flow) or not finding WebSocket phones at all.
 *
 * Rolling restart (supervisor.ts, README "Restarts without dropping calls"): slot i gets a new worker
 * (next generation) while the old one still runs. Its UDP datagrams arrive on the one shared kernel
 * socket, read by whichever worker reads first, so the question is only where each worker hands them:
 * - until the new worker has its bindings and listens, the old one owns slot i as before;
 * - then the old one drains (cluster:drain) and stays the slot's front: every worker hands slot i's
 *   datagrams (and responses read on connections) to it first, the new worker included. The old worker
 *   keeps what its live transactions claim (a retransmission, the ACK or CANCEL of its INVITE, a response
 *   to a request it forwarded: both generations tag branches `~i`, so the tag alone cannot tell) and
 *   hands everything else (new requests, in-dialog requests, stray responses) on to the new worker, which
 *   handles it without dispatching again. Requests read on the old worker's own connections stay with it.
 * - once its transactions are done (or shutdownGraceSeconds is over) it exits; the primary drops it from
 *   the table and slot i's messages go to the new worker directly.
 * No datagram is read by nobody: the shared socket is read by every worker throughout, and the table
 * always names a worker that is up. Sends on a connection go by the flow id's slot and generation.
 */
import cluster from 'node:cluster';
import { createSocket, type RemoteInfo, type Socket as DgramSocket } from 'node:dgram';
import { categoryLogger, type Logger } from '../../src/log/index.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import { TransportError, type DatagramDispatcher, type Flow, type HostPort, type ListenSpec, type StreamRelay } from '../../src/transport/types.js';
import type { Softswitch } from '../app.js';
import type { LocationService, NonceLedger } from '../../registrar/index.js';
import { branchTag, datagramOwner, flowOwner, flowTag, isResponse, textOwner } from './datagram-owner.js';
import type { DrainingPeer, PeerQuestion, PresenceChange, PrimaryMessage, WireBinding, WorkerMessage } from './types.js';
import type { DialogPeers, DialogSnapshot, HangupOutcome } from '../../src/dialog/index.js';
import type { MetricsPeers } from '../../metrics/index.js';
import { FRAME_MESSAGE, FRAME_SEND, FRAME_SENT, controlFrame, frameHeader, fromWire, parseControlFrame, parseFrame, toWire } from './wire.js';

const HANDOVER_BUFFER_BYTES = 4 * 1024 * 1024;
/** How long a digest answer waits for the nonce's issuer to claim its nonce-count; then it is refused (stale). */
const NONCE_CLAIM_TIMEOUT_MS = 1000;
/** How long a relayed stream send may wait for its owner's answer before it counts as failed. */
const RELAY_TIMEOUT_MS = 5000;
/** Bindings per cluster:snapshot message (IPC messages stay small). */
const SNAPSHOT_CHUNK = 200;
/** Dialogs per cluster:dialogs message. */
const DIALOG_CHUNK = 200;

/** A question of this worker (a `/metrics` scrape, the admin API's calls) waiting for the others' answers. */
interface PendingQuestion {
  answer(from: number, answer: unknown): void;
  finish(): void;
}

/** The hang-up outcomes a worker may answer (anything else reads as `unknown`). */
const HANGUP_OUTCOMES: ReadonlySet<unknown> = new Set<HangupOutcome>(['bye', 'cancel', 'unknown', 'unreachable']);

interface PendingSend {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface ClusterWorkerOptions {
  /** This worker's index, 0 … workers−1. */
  index: number;
  workers: number;
  /** How many workers of this slot came before (WORKER_GENERATION_ENV); 0 by default. */
  generation?: number;
  logger: Logger;
  /** Where messages to the primary go; process.send in a cluster worker. */
  send?: (message: WorkerMessage, sent?: () => void) => void;
}

export interface ClusterWorkerStats {
  /** Messages handed to the worker that owns them: datagrams read on a shared socket, responses read on a connection here. */
  handedOver: number;
  /** Datagrams received from another worker. */
  received: number;
  /** Sends on another worker's connection, relayed to it. */
  relayedSends: number;
  /** Binding changes applied from other workers. */
  replicated: number;
  /** Bindings received from a running worker when this one joined. */
  synced: number;
  /** Messages a draining worker passed on to its successor. */
  handedOff: number;
}

export class ClusterWorker implements DatagramDispatcher, StreamRelay, MetricsPeers, DialogPeers {
  readonly index: number;
  readonly workers: number;
  readonly generation: number;
  readonly stats: ClusterWorkerStats = { handedOver: 0, received: 0, replicated: 0, relayedSends: 0, synced: 0, handedOff: 0 };
  private readonly log: Logger;
  /** `sent`, when given, is called once the message is handed to the IPC channel (or could not be). */
  private readonly sendToPrimary: (message: WorkerMessage, sent?: () => void) => void;
  private readonly socket: DgramSocket;
  /** Hand-over port of each worker; null while it is down (its datagrams are then handled here). */
  private ports: Array<number | null>;
  /** Generation of each slot's worker, and the draining predecessor of a slot in a rolling restart. */
  private generations: number[];
  private draining: Array<DrainingPeer | null>;
  /** Set once this worker drains for a rolling restart: the hand-over port of its successor. */
  private successor: number | undefined;
  private onDrainRequested: (() => void) | undefined;
  private peersKnown: Promise<void>;
  private resolvePeers: () => void = () => undefined;
  private synced: Promise<void>;
  private resolveSynced: () => void = () => undefined;
  /** AoRs this worker has seen change (its own or replicated): what it sends a joining worker. */
  private readonly aors = new Set<string>();
  private transport: TransportLayer | undefined;
  private locations: LocationService | undefined;
  private server: Softswitch | undefined;
  /** Contacts that only one worker's connections reach, per worker (`<slot>g<generation>`): dropped when it ends. */
  private readonly connectionBound = new Map<string, Map<string, Set<string>>>();
  private readonly pendingSends = new Map<number, PendingSend>();
  /** Nonce-count claims sent to their issuer, by id. */
  private readonly pendingClaims = new Map<number, (ok: boolean) => void>();
  private nextClaim = 1;
  private readonly pendingQuestions = new Map<number, PendingQuestion>();
  private nextQuestion = 1;
  private ledger: NonceLedger | undefined;
  private nextSend = 1;
  private closed = false;

  constructor(options: ClusterWorkerOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 2) throw new TypeError(`a cluster has 2 workers or more, got ${options.workers}`);
    if (!Number.isInteger(options.index) || options.index < 0 || options.index >= options.workers) {
      throw new TypeError(`worker index ${options.index} is not in 0…${options.workers - 1}`);
    }
    this.index = options.index;
    this.workers = options.workers;
    this.generation = options.generation ?? 0;
    if (!Number.isInteger(this.generation) || this.generation < 0) throw new TypeError(`worker generation must be a whole number, got ${options.generation}`);
    this.log = categoryLogger(options.logger, 'cluster');
    this.sendToPrimary = options.send ?? ((m, sent) => {
      if (process.send === undefined) return sent?.();
      process.send(m, undefined, {}, () => sent?.());
    });
    this.ports = Array.from({ length: this.workers }, () => null);
    this.generations = Array.from({ length: this.workers }, () => 0);
    this.draining = Array.from({ length: this.workers }, () => null);
    this.peersKnown = new Promise((resolve) => (this.resolvePeers = resolve));
    this.synced = new Promise((resolve) => (this.resolveSynced = resolve));
    // exclusive: this socket is the worker's own, not shared through the primary like the SIP listeners.
    this.socket = createSocket({ type: 'udp4', recvBufferSize: HANDOVER_BUFFER_BYTES, sendBufferSize: HANDOVER_BUFFER_BYTES });
    this.socket.on('message', (msg, rinfo) => this.onFrame(msg, rinfo));
    this.socket.on('error', (err) => this.log.warn({ err: err.message }, 'hand-over socket error'));
  }

  /**
   * Before server.start(): the branch tag, the datagram dispatcher and the location replication. The
   * transport must be a TransportLayer (the one createSoftswitch builds).
   */
  attach(server: Softswitch): void {
    const transport = server.stack.transport;
    if (!(transport instanceof TransportLayer)) throw new TypeError('ClusterWorker needs the stack to run on a TransportLayer');
    this.transport = transport;
    this.server = server;
    server.stack.transactions.setBranchTag(branchTag(this.index));
    transport.setDatagramDispatcher(this);
    transport.setStreamRelay(flowTag(this.index, this.generation), this);
    const locations = server.registrar.locations;
    this.locations = locations;
    locations.setReplication({
      changed: (aor, added, removed) => {
        // A contact now held here is no longer another worker's to drop when it ends.
        this.aors.add(aor);
        for (const b of added) this.track(undefined, aor, b.contactUri);
        for (const c of removed) this.track(undefined, aor, c);
        this.sendToPrimary({ type: 'cluster:location', from: this.index, aor, added: added.map(toWire), removed: [...removed] });
      },
    });
    // A BYE over one of this worker's connections, for a call another worker forwarded, ends it there.
    server.dialogs.setRemote({
      end: (callId, fromTag, end) => this.sendToPrimary({ type: 'cluster:dialog-end', from: this.index, callId, fromTag, end }),
      seen: (callId, fromTag, cseq) => this.sendToPrimary({ type: 'cluster:dialog-cseq', from: this.index, callId, fromTag, cseq }),
    });
    // The admin API's active calls are every worker's, and a hang-up reaches the worker that holds the call.
    server.dialogs.setPeers(this);
    // A rolling restart's successor took this slot's persisted dialogs up when it started: the calls that
    // end here while draining end there too (its copy would otherwise count until maxDuration).
    server.dialogs.on('ended', (d) => {
      if (this.successor === undefined) return;
      const end = { cause: d.endCause ?? 'bye', hangupBy: d.hangupBy, at: d.endedAt };
      this.sendToPrimary({ type: 'cluster:dialog-end', from: this.index, callId: d.callId, fromTag: d.fromTag, end });
    });
    // Chat: each device is delivered to by the worker holding its connection (a UDP device: by the one its
    // key hashes to), whichever worker stored the message; so no two workers send one device its stream.
    server.messaging?.delivery.setCluster({
      owns: (b, device) => {
        const owner = b.flow !== undefined && b.flow.protocol !== 'udp' ? flowOwner(b.flow.id) : undefined;
        return owner !== undefined ? owner.index === this.index : textOwner(device, this.workers) === this.index;
      },
      announce: (users) => this.sendToPrimary({ type: 'cluster:chat', from: this.index, users }),
    });
    // Meetings: a change made here wakes the event streams other workers hold for that meeting.
    server.meetingSignals.setRemote((meeting) => this.sendToPrimary({ type: 'cluster:meeting', from: this.index, meeting }));
    // Presence: what a PUBLISH or a call here says about a user, every worker's watchers learn.
    const presence = server.presence;
    if (presence !== undefined) {
      const tell = (change: PresenceChange): void => this.sendToPrimary({ type: 'cluster:presence', from: this.index, change });
      presence.state.setReplication({
        published: (user, etag, replaces, state, expiresAt) => tell({ kind: 'publish', user, etag, replaces, state, expiresAt }),
        unpublished: (user, etag) => tell({ kind: 'unpublish', user, etag }),
      });
      for (const event of ['created', 'early', 'confirmed', 'ended'] as const) {
        // Only calls of our users make presence (a PSTN transit call has no watcher).
        server.dialogs.on(event, (d) => {
          if (d.caller.user !== undefined || d.callee.user !== undefined || d.answeredBy?.aor !== undefined) tell({ kind: 'dialog', dialog: presenceFacts(d) });
        });
      }
    }
    // Bans decided here hold on every worker (a flood's datagrams reach any of them).
    server.security.bans.setReplication({ changed: (change) => this.sendToPrimary({ type: 'cluster:ban', from: this.index, change }) });
    // A digest answer to another worker's nonce is claimed at that worker, which keeps its counts.
    this.ledger = server.registrar.authenticator.ledger;
    if (this.ledger.self.index !== this.index) throw new TypeError(`the nonce ledger is worker ${this.ledger.self.index}'s, not ${this.index}'s`);
    this.ledger.setRemote((issuer, nonce, nc, expiresAt) => this.claimAtIssuer(issuer.index, issuer.incarnation, nonce, nc, expiresAt));
  }

  /** A presence change another worker made. */
  private applyPresence(change: PresenceChange): void {
    const state = this.server?.presence?.state;
    if (state === undefined || typeof change !== 'object' || change === null) return;
    if (change.kind === 'publish') state.applyRemotePublish(String(change.user), String(change.etag), change.replaces, change.state, Number(change.expiresAt));
    else if (change.kind === 'unpublish') state.applyRemoteUnpublish(String(change.user), String(change.etag));
    else if (change.kind === 'dialog') state.dialog(change.dialog);
  }

  /** Asks worker `to` (through the primary) to claim a nonce-count; false when it is gone or silent for a second. */
  private claimAtIssuer(to: number, incarnation: number, nonce: string, nc: number, expiresAt: number): Promise<boolean> {
    if (this.closed || to >= this.workers) return Promise.resolve(false);
    // `to` may be this very slot: a nonce of its predecessor, which answers while it drains in a rolling
    // restart; after a crash nobody holds those counts and the primary answers false at once.
    const id = this.nextClaim++;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.pendingClaims.delete(id);
        resolve(false);
      }, NONCE_CLAIM_TIMEOUT_MS);
      timer.unref();
      this.pendingClaims.set(id, (ok) => {
        clearTimeout(timer);
        this.pendingClaims.delete(id);
        resolve(ok);
      });
      this.sendToPrimary({ type: 'cluster:nonce', from: this.index, fromIncarnation: this.ledger?.self.incarnation ?? 0, id, to, incarnation, nonce, nc, expiresAt });
    });
  }

  /**
   * Asks every other worker `question` (through the primary) and resolves with the answers that arrive within
   * `timeoutMs`. A slot whose worker is down (no hand-over port) or silent counts as missing; a second answer of
   * one slot (its draining predecessor in a rolling restart) is not waited for, and kept only when `decisive`.
   * An answer that is `decisive` ends the wait at once (the worker that held the call hung it up).
   */
  ask(question: PeerQuestion, timeoutMs: number, decisive?: (answer: unknown) => boolean): Promise<{ answers: unknown[]; missing: number }> {
    const waiting = new Set<number>();
    let down = 0;
    for (let i = 0; i < this.workers; i++) {
      if (i === this.index) continue;
      if (this.closed || this.ports[i] === null) down++;
      else waiting.add(i);
    }
    // A draining predecessor of this slot is another process too, and may hold what is asked for.
    if (waiting.size === 0 && (this.closed || (this.draining[this.index] ?? null) === null)) return Promise.resolve({ answers: [], missing: down });
    const id = this.nextQuestion++;
    return new Promise((resolve) => {
      const answers: unknown[] = [];
      const finish = (): void => {
        clearTimeout(timer);
        this.pendingQuestions.delete(id);
        resolve({ answers, missing: down + waiting.size });
      };
      const timer = setTimeout(finish, timeoutMs);
      this.pendingQuestions.set(id, {
        answer: (from, answer) => {
          const settles = decisive?.(answer) === true;
          if (!waiting.delete(from) && !settles) return;
          answers.push(answer);
          if (settles || waiting.size === 0) finish();
        },
        finish,
      });
      this.sendToPrimary({ type: 'cluster:ask', from: this.index, fromGeneration: this.generation, id, question });
    });
  }

  /** `GET /metrics` reached this worker: every other worker's snapshot (MetricsPeers). */
  async collect(timeoutMs: number): Promise<{ snapshots: unknown[]; missing: number }> {
    const { answers, missing } = await this.ask({ topic: 'metrics' }, timeoutMs);
    return { snapshots: answers, missing };
  }

  /** `GET /v1/active-calls` reached this worker: every other worker's active dialogs (DialogPeers). */
  async list(timeoutMs: number): Promise<{ dialogs: DialogSnapshot[]; missing: number }> {
    const { answers, missing } = await this.ask({ topic: 'calls' }, timeoutMs);
    const dialogs: DialogSnapshot[] = [];
    for (const a of answers) {
      if (Array.isArray(a)) for (const d of a) if (isDialogSnapshot(d)) dialogs.push(d);
    }
    return { dialogs, missing };
  }

  /** `DELETE /v1/active-calls/:id` for a call not held here: the worker that holds it hangs it up (DialogPeers). */
  async hangUp(id: string, timeoutMs: number): Promise<{ result: HangupOutcome; missing: number }> {
    const { answers, missing } = await this.ask({ topic: 'hangup', id }, timeoutMs, (a) => HANGUP_OUTCOMES.has(a) && a !== 'unknown');
    const found = answers.find((a): a is HangupOutcome => HANGUP_OUTCOMES.has(a) && a !== 'unknown');
    return { result: found ?? 'unknown', missing: found === undefined ? missing : 0 };
  }

  /** Another worker's question: this process's answer, to it through the primary. */
  private answerQuestion(to: number, toGeneration: number, id: number, question: PeerQuestion): void {
    const server = this.server;
    if (server === undefined || this.closed || question === null || typeof question !== 'object') return;
    const reply = (answer: unknown): void => this.sendToPrimary({ type: 'cluster:answer', from: this.index, to, toGeneration, id, answer });
    switch (question.topic) {
      case 'metrics':
        server.metrics.snapshot().then(reply, (err: Error) => this.log.warn({ to, err: err.message }, 'metrics snapshot for another worker\'s scrape failed'));
        return;
      case 'calls':
        // The legs (routes, connections) stay with the holder: a hang-up is asked of it.
        reply(server.dialogs.list().map((d) => ({ ...d.snapshot(), legs: undefined })));
        return;
      case 'hangup':
        reply(server.dialogs.hangUp(String(question.id)));
        return;
      default:
        // A question of a newer version (a rolling restart): not answered, the asker counts this worker missing.
        return;
    }
  }

  /**
   * Binds the hand-over socket, tells the primary its port, and resolves once every worker's port is
   * known and the bindings of the running workers are here (cluster:synced).
   */
  async open(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ address: '127.0.0.1', port: 0, exclusive: true }, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
    this.sendToPrimary({ type: 'cluster:port', index: this.index, port: this.socket.address().port });
    await this.peersKnown;
    await this.synced;
  }

  /** What to do when the primary asks this worker to drain for a rolling restart (main.ts drains and exits). */
  onDrain(callback: () => void): void {
    this.onDrainRequested = callback;
  }

  /**
   * Stack drain hand-off (DrainOptions.handOff) during a rolling restart: a datagram, or a message read on
   * another worker's connection, that none of this worker's live transactions claims goes to the
   * successor. Requests on this worker's own connections stay (their flows end with this process).
   */
  readonly handOff = (data: Buffer, flow: Flow): boolean => {
    const port = this.successor;
    if (port === undefined || this.closed) return false;
    let head: Buffer;
    if (flow.protocol === 'udp') head = frameHeader(flow.remote, flow.local);
    else if (this.isOwn(flow.id)) return false;
    else head = controlFrame(FRAME_MESSAGE, { flow });
    this.stats.handedOff++;
    this.socket.send([head, data], port, '127.0.0.1', (err) => {
      if (err !== null && err !== undefined) this.log.debug({ err: err.message }, 'hand-off to the successor failed');
    });
    return true;
  };

  /** A message from the primary (wired to process.on('message') by the caller). */
  onPrimaryMessage(message: PrimaryMessage): void {
    switch (message.type) {
      case 'cluster:peers':
        if (!Array.isArray(message.ports) || message.ports.length !== this.workers) return;
        this.ports = message.ports.map((p) => (isPort(p) ? p : null));
        if (Array.isArray(message.generations)) this.generations = this.ports.map((_, i) => Number(message.generations[i]) || 0);
        if (Array.isArray(message.draining)) {
          this.draining = this.ports.map((_, i) => {
            const d = message.draining[i];
            return d !== null && d !== undefined && isPort(d.port) ? { port: d.port, generation: Number(d.generation) || 0 } : null;
          });
        }
        if (this.ports.every((p) => p !== null)) this.resolvePeers();
        return;
      case 'cluster:announce':
        this.sendSnapshot(message.to);
        return;
      case 'cluster:snapshot':
        this.applySnapshot(message.bindings);
        return;
      case 'cluster:synced':
        this.resolveSynced();
        return;
      case 'cluster:drain':
        if (!isPort(message.successor) || this.successor !== undefined) return;
        this.successor = message.successor;
        this.log.info({ successor: message.successor }, 'draining for a rolling restart');
        this.onDrainRequested?.();
        return;
      case 'cluster:location':
        this.applyLocation(message.from, message.aor, message.added, message.removed);
        return;
      case 'cluster:ban':
        if (message.from !== this.index) this.server?.security.bans.applyRemote(message.change);
        return;
      case 'cluster:dialogs':
        if (message.to === this.index && Array.isArray(message.dialogs)) this.server?.dialogs.restore(message.dialogs);
        return;
      case 'cluster:dialog-cseq':
        if (message.from !== this.index) this.server?.dialogs.requestSeenRemotely(String(message.callId), message.fromTag, Number(message.cseq));
        return;
      case 'cluster:dialog-end':
        if (message.from !== this.index) this.server?.dialogs.endFromRemote(String(message.callId), message.fromTag, message.end);
        return;
      case 'cluster:chat':
        if (message.from !== this.index && Array.isArray(message.users)) this.server?.messaging?.delivery.kickFromPeer(message.users.map(String));
        return;
      case 'cluster:meeting':
        if (message.from !== this.index && typeof message.meeting === 'string') this.server?.meetingSignals.fromPeer(message.meeting);
        return;
      case 'cluster:presence':
        if (message.from !== this.index) this.applyPresence(message.change);
        return;
      case 'cluster:nonce': {
        // Only the process that issued the nonce answers (the other process of a slot in a rolling restart is silent).
        const ledger = this.ledger;
        if (ledger === undefined || message.incarnation !== ledger.self.incarnation) return;
        const ok = ledger.claimHere(String(message.nonce), Number(message.nc), Number(message.expiresAt));
        this.sendToPrimary({ type: 'cluster:nonce-answer', to: message.from, toIncarnation: message.fromIncarnation, id: message.id, ok });
        return;
      }
      case 'cluster:nonce-answer':
        if (message.toIncarnation === this.ledger?.self.incarnation) this.pendingClaims.get(message.id)?.(message.ok === true);
        return;
      case 'cluster:ask':
        if (message.from === this.index && message.fromGeneration === this.generation) return;
        if (typeof message.from === 'number' && typeof message.id === 'number') {
          this.answerQuestion(message.from, Number(message.fromGeneration) || 0, message.id, message.question);
        }
        return;
      case 'cluster:answer':
        if (message.to !== this.index || message.toGeneration !== this.generation || typeof message.from !== 'number') return;
        this.pendingQuestions.get(message.id)?.answer(message.from, message.answer);
        return;
      case 'cluster:down':
        this.dropConnectionsOf(workerKey(message.index, message.generation ?? 0));
        return;
      case 'cluster:reload':
        if (message.from === this.index || this.server === undefined) return;
        this.server.reload().then(
          (summary) => this.log.info({ from: message.from, ...summary }, 'routing data reloaded at another worker\'s request'),
          (err: Error) => this.log.warn({ from: message.from, err: err.message }, 'reload asked by another worker failed'),
        );
        return;
    }
  }

  /**
   * The end of a rolling restart's drain: the calls still up here (their BYE is to come) go to the new
   * worker of this slot, which releases their media and writes their records when they end. Resolves
   * once the messages are out (the process exits next).
   */
  async handDialogsOver(): Promise<void> {
    if (this.successor === undefined || this.server === undefined) return;
    const dialogs = this.server.dialogs.handOver();
    this.log.info({ dialogs: dialogs.length }, 'calls still up handed to the successor');
    for (let i = 0; i === 0 || i < dialogs.length; i += DIALOG_CHUNK) {
      const last = i + DIALOG_CHUNK >= dialogs.length;
      await new Promise<void>((resolve) => {
        this.sendToPrimary({ type: 'cluster:dialogs', to: this.index, dialogs: dialogs.slice(i, i + DIALOG_CHUNK), last }, resolve);
      });
    }
  }

  /** `softswitch reload` reached this worker: the others reload too (through the primary). */
  reloaded(): void {
    if (!this.closed) this.sendToPrimary({ type: 'cluster:reload', from: this.index });
  }

  /** Tells the primary that this worker's server is listening. */
  started(): void {
    this.sendToPrimary({ type: 'cluster:started', index: this.index });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.resolvePeers();
    this.resolveSynced();
    for (const [id, p] of this.pendingSends) this.settle(id, new TransportError('TRANSPORT_ERR_SEND', 'worker stopping'), p);
    for (const settle of [...this.pendingClaims.values()]) settle(false);
    for (const question of [...this.pendingQuestions.values()]) question.finish();
    try {
      this.socket.close();
    } catch {
      // not bound
    }
  }

  // ---- DatagramDispatcher ----------------------------------------------------------------------

  dispatch(data: Buffer, remote: HostPort, local: ListenSpec): boolean {
    // The owner could not be reached: handling it here beats losing it (a UDP client would retransmit).
    return this.handOver(data, frameHeader(remote, local), () => this.transport?.receiveDatagram(data, remote, local));
  }

  /**
   * A response read on one of this worker's connections for a request another worker forwarded over it
   * (its branch carries that worker's tag) goes to that worker. Requests stay here: their transactions
   * belong to the connection's worker.
   */
  dispatchStream(data: Buffer, flow: Flow): boolean {
    if (!isResponse(data)) return false;
    return this.handOver(data, controlFrame(FRAME_MESSAGE, { flow }), () => this.transport?.receiveFromFlow(data, flow));
  }

  /**
   * Sends the message, behind `head`, to the worker that owns it; false (handle it here) when that is
   * this worker, nobody, or a worker that is down. `here` runs if the hand-over send fails.
   */
  private handOver(data: Buffer, head: Buffer, here: () => void): boolean {
    const owner = datagramOwner(data, this.workers);
    if (owner === undefined) return false;
    const port = this.targetOf(owner);
    if (port === undefined) return false;
    this.stats.handedOver++;
    this.socket.send([head, data], port, '127.0.0.1', (err) => {
      if (err === null || err === undefined) return;
      this.log.debug({ owner, err: err.message }, 'hand-over failed; handled here');
      here();
    });
    return true;
  }

  /**
   * Where a message of slot `owner` goes: the slot's draining predecessor first during a rolling restart
   * (it keeps what its transactions claim and passes the rest on), else the slot's worker; undefined:
   * handle it here (this worker's slot and no predecessor, or this is the predecessor; or the owner is down).
   */
  private targetOf(owner: number): number | undefined {
    if (this.closed) return undefined;
    const front = this.draining[owner] ?? null;
    if (front !== null) return owner === this.index && front.generation === this.generation ? undefined : front.port;
    if (owner === this.index) return undefined;
    return this.ports[owner] ?? undefined;
  }

  /** The hand-over port of the worker that holds a flow (by slot and generation); undefined when it is not running. */
  private flowPort(flowId: string): number | undefined {
    const owner = flowOwner(flowId);
    if (owner === undefined || this.closed) return undefined;
    const front = this.draining[owner.index] ?? null;
    if (front !== null && front.generation === owner.generation) return front.port;
    return this.generations[owner.index] === owner.generation ? this.ports[owner.index] ?? undefined : undefined;
  }

  /** Whether a flow id is one of this process's connections. */
  private isOwn(flowId: string): boolean {
    const owner = flowOwner(flowId);
    return owner !== undefined && owner.index === this.index && owner.generation === this.generation;
  }

  // ---- StreamRelay -----------------------------------------------------------------------------

  isRemote(flowId: string): boolean {
    return flowOwner(flowId) !== undefined && !this.isOwn(flowId);
  }

  send(data: Buffer, flowId: string): Promise<void> {
    const port = this.flowPort(flowId);
    const owner = flowOwner(flowId)?.index;
    if (port === undefined) {
      return Promise.reject(new TransportError('TRANSPORT_ERR_FLOW_GONE', `flow ${flowId} belonged to worker ${owner ?? '?'}, which is not running`));
    }
    const id = this.nextSend++;
    this.stats.relayedSends++;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.pendingSends.get(id);
        if (p !== undefined) this.settle(id, new TransportError('TRANSPORT_ERR_SEND', `worker ${owner} did not confirm the send on ${flowId}`), p);
      }, RELAY_TIMEOUT_MS);
      timer.unref();
      this.pendingSends.set(id, { resolve, reject, timer });
      this.socket.send([controlFrame(FRAME_SEND, { id, flowId }), data], port, '127.0.0.1', (err) => {
        const p = this.pendingSends.get(id);
        if (err !== null && err !== undefined && p !== undefined) this.settle(id, new TransportError('TRANSPORT_ERR_SEND', `relay to worker ${owner}: ${err.message}`), p);
      });
    });
  }

  // ---- internals -------------------------------------------------------------------------------

  private settle(id: number, err: Error | undefined, p: PendingSend): void {
    this.pendingSends.delete(id);
    clearTimeout(p.timer);
    if (err === undefined) p.resolve();
    else p.reject(err);
  }

  /** SEND (relay this on your connection), SENT (the outcome of ours), MESSAGE (read on a connection, yours to handle). */
  private onControlFrame(kind: number, header: Record<string, unknown>, data: Buffer, replyPort: number): void {
    const transport = this.transport;
    if (transport === undefined) return;
    if (kind === FRAME_SEND) {
      const { id, flowId } = header;
      if (typeof id !== 'number' || typeof flowId !== 'string') return;
      const reply = (err?: Error): void => {
        const code = err instanceof TransportError ? err.code : err === undefined ? undefined : 'TRANSPORT_ERR_SEND';
        this.socket.send(controlFrame(FRAME_SENT, err === undefined ? { id } : { id, code, message: err.message }), replyPort, '127.0.0.1');
      };
      transport.sendOnFlow(flowId, data).then(() => reply(), (err: unknown) => reply(err instanceof Error ? err : new Error(String(err))));
    } else if (kind === FRAME_SENT) {
      const { id, code, message } = header;
      const p = typeof id === 'number' ? this.pendingSends.get(id) : undefined;
      if (p === undefined) return;
      const err = code === undefined ? undefined : new TransportError(code === 'TRANSPORT_ERR_FLOW_GONE' ? code : 'TRANSPORT_ERR_SEND', String(message));
      this.settle(id as number, err, p);
    } else if (kind === FRAME_MESSAGE) {
      const flow = header.flow as Flow | undefined;
      if (flow === undefined || typeof flow.id !== 'string' || typeof flow.protocol !== 'string') return;
      this.stats.received++;
      transport.receiveFromFlow(data, flow);
    }
  }

  private onFrame(msg: Buffer, rinfo: RemoteInfo): void {
    // Only the other workers' hand-over sockets may inject datagrams (a local process could otherwise
    // forge any source address).
    if (rinfo.address !== '127.0.0.1' || !(this.ports.includes(rinfo.port) || this.draining.some((d) => d?.port === rinfo.port))) return;
    const control = parseControlFrame(msg);
    if (control !== undefined) {
      this.onControlFrame(control.kind, control.header, control.data, rinfo.port);
      return;
    }
    const frame = parseFrame(msg);
    if (frame === undefined || this.transport === undefined) return;
    this.stats.received++;
    if (!this.transport.receiveDatagram(frame.data, frame.remote, frame.local)) {
      this.log.debug({ local: `${frame.local.address}:${frame.local.port}` }, 'handed-over datagram for an unknown listener dropped');
    }
  }

  /** Every binding held here, in chunks, for the joining worker `to` (through the primary). */
  private sendSnapshot(to: number): void {
    const locations = this.locations;
    let chunk: WireBinding[] = [];
    let sent = 0;
    if (locations !== undefined) {
      for (const aor of [...this.aors]) {
        const list = locations.lookup(aor);
        if (list.length === 0) this.aors.delete(aor);
        for (const b of list) chunk.push(toWire(b));
        if (chunk.length >= SNAPSHOT_CHUNK) {
          sent += chunk.length;
          this.sendToPrimary({ type: 'cluster:snapshot', to, bindings: chunk, last: false });
          chunk = [];
        }
      }
    }
    sent += chunk.length;
    this.sendToPrimary({ type: 'cluster:snapshot', to, bindings: chunk, last: true });
    this.log.info({ to, bindings: sent }, 'bindings sent to a joining worker');
  }

  /** Bindings from a running worker, received before this one listens. */
  private applySnapshot(bindings: WireBinding[]): void {
    if (!Array.isArray(bindings)) return;
    const perAor = new Map<string, WireBinding[]>();
    for (const w of bindings) {
      if (w === null || typeof w !== 'object' || typeof w.aor !== 'string') continue;
      const list = perAor.get(w.aor);
      if (list === undefined) perAor.set(w.aor, [w]);
      else list.push(w);
    }
    for (const [aor, added] of perAor) this.applyLocation(undefined, aor, added, []);
    this.stats.synced += bindings.length;
  }

  /** `from`: the worker that made the change (undefined: a snapshot, bindings of any worker). */
  private applyLocation(from: number | undefined, aor: string, added: WireBinding[], removed: string[]): void {
    const locations = this.locations;
    if (locations === undefined || from === this.index) return;
    try {
      const bindings = added.map(fromWire);
      locations.applyRemote(aor, bindings, removed);
      this.aors.add(aor);
      if (from !== undefined) this.stats.replicated++;
      for (const b of bindings) this.track(connectionOwner(b.flow), aor, b.contactUri);
      for (const c of removed) this.track(undefined, aor, c);
    } catch (err) {
      this.log.warn({ aor, from, err: err instanceof Error ? err.message : String(err) }, 'replicated binding change not applied');
    }
  }

  /**
   * Keeps, per worker, the replicated contacts that only that worker's connections reach: `owner` is the
   * key of the worker holding the binding's connection, undefined when no other worker's connection
   * holds it (UDP, or a binding of this worker).
   */
  private track(owner: string | undefined, aor: string, contact: string): void {
    for (const [worker, perAor] of this.connectionBound) {
      if (worker === owner) continue;
      const set = perAor.get(aor);
      if (set?.delete(contact) === true && set.size === 0) perAor.delete(aor);
    }
    if (owner === undefined) return;
    let perAor = this.connectionBound.get(owner);
    if (perAor === undefined) this.connectionBound.set(owner, (perAor = new Map()));
    let set = perAor.get(aor);
    if (set === undefined) perAor.set(aor, (set = new Set()));
    set.add(contact);
  }

  private dropConnectionsOf(worker: string): void {
    const perAor = this.connectionBound.get(worker);
    this.connectionBound.delete(worker);
    if (perAor === undefined || this.locations === undefined) return;
    let dropped = 0;
    for (const [aor, contacts] of perAor) {
      // Push bindings stay, asleep (RFC 8599): a push reaches the device wherever it connected.
      this.locations.connectionsLost(aor, contacts);
      dropped += contacts.size;
    }
    if (dropped > 0) this.log.info({ worker, dropped }, 'bindings over the connections of an ended worker dropped or put to sleep');
  }
}

function isPort(p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p > 0 && p < 65536;
}

/** The key under which the contacts of one worker's connections are kept (slot and generation). */
function workerKey(index: number, generation: number): string {
  return `${index}g${generation}`;
}

/** The key of the worker whose connection a binding's flow is; undefined for UDP and unknown flows. */
function connectionOwner(flow: Flow | undefined): string | undefined {
  if (flow === undefined || flow.protocol === 'udp') return undefined;
  const owner = flowOwner(flow.id);
  return owner === undefined ? undefined : workerKey(owner.index, owner.generation);
}

/** Whether this process is a worker forked by the supervisor. */
export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** Enough of a DialogSnapshot that the admin API can list it (another worker's answer, maybe of another version). */
function isDialogSnapshot(d: unknown): d is DialogSnapshot {
  if (d === null || typeof d !== 'object') return false;
  const { id, callId, state, caller, callee } = d as Record<string, unknown>;
  return typeof id === 'string' && typeof callId === 'string' && typeof state === 'string' && typeof caller === 'object' && caller !== null
    && typeof callee === 'object' && callee !== null;
}

/** The facts of a dialog presence needs, as plain JSON (the tracker's Dialog holds a Set and timers). */
function presenceFacts(d: Readonly<DialogSnapshot>): DialogSnapshot {
  return {
    id: d.id, owner: d.owner, callId: d.callId, fromTag: d.fromTag, toTag: d.toTag, caller: d.caller, callee: d.callee, direction: d.direction,
    state: d.state, answeredBy: d.answeredBy, mediaRelayed: false, createdAt: d.createdAt, endedAt: d.endedAt, endCause: d.endCause, hangupBy: d.hangupBy,
  };
}
