/**
 * Assembles a softswitch from a validated configuration: transports, the stack, and the modules on top.
 * `softswitch start` and the end-to-end tests both build the server through here.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../platform/config/index.js';
import { RedisState } from '../platform/state/index.js';
import { type DrainOptions, Stack } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import { type SqlStore, SqlRefreshTokenRepository, openStore, securePrivateDir } from '../platform/store/index.js';
import { TransportLayer, loadOrCreateCertificate } from '../src/transport/index.js';
import { API_ERRORS, HttpServer, Refusal, UserTokens, loadTokenKey } from '../platform/http/index.js';
import { type Registrar, type CredentialSource, CachedCredentialSource, NonceLedger, createRegistrar, isAsleep, isSameDevice } from '../registrar/index.js';
import { type Security, banRoutes, createSecurity } from '../security/index.js';
import { MediaHook, ProxyCore, Router, targetOf } from '../proxy/index.js';
import { type Balancer, type ReloadSummary, createBalancer, routingRoutes } from '../balancer/index.js';
import { type MidRegistrar, createMidRegistrar } from '../registrar/mid/index.js';
import { pickerFromBalancer } from './balancer-picker.js';
import { type UserRouteDeps, deviceRoutes, userRoutes } from './user-routes.js';
import { tokenRoutes } from './token-routes.js';
import {
  Focus, FocusSecrets, JanusNode, JanusPool, MeetingSignals, eventRoutes, type MeetingActor, type MeetingChat, MeetingError, meetingChatRoutes, MeetingRecorder, MeetingService,
  breakoutRoutes, loadFocusKey, meetingRoutes, moderationRoutes, participantMediaRoutes, participantRoutes,
  recordingRoutes,
} from '../conference/index.js';
import { createMediaGateway } from '../media/index.js';
import { DialogTracker } from '../src/dialog/index.js';
import { PushService, type PushProviderClient, WebPushClient, createPushProviders } from '../push/index.js';
import type { PushProvider } from '../src/sip/index.js';
import { HistoryWriter, callRecordOf, callRoutes, dialogOfRow, persistedDialog, timelineRoutes } from '../history/index.js';
import { ChatError, type Messaging, createMessaging, isGroupId, meetingGroupId } from '../messaging/index.js';
import { Envelope } from '../messaging/envelope.js';
import { EncryptedFiles } from '../messaging/file-store.js';
import { LocalBlobStore } from '../messaging/local-blobs.js';
import { fileRoutes } from '../messaging/file-routes.js';
import { CHAT_ERROR_CODE, chatRoutes } from '../messaging/routes.js';
import { createPresence, type Presence } from '../presence/index.js';
import { PresencePolicy } from '../presence/policy.js';
import { presenceRoutes } from '../presence/routes.js';
import { TurnService, iceServerRoutes } from '../turn/index.js';
import { adminRoutes, consoleSite } from '../console/index.js';
import { type MetricsPeers, NodeMetrics, ProcessMetrics, metricsRoute } from '../metrics/index.js';

export interface Softswitch {
  readonly stack: Stack;
  readonly store: SqlStore;
  readonly registrar: Registrar;
  /** Every call in progress (src/dialog): counts per user and backend, events for history and media. */
  readonly dialogs: DialogTracker;
  /** Writes call records and persisted dialogs to the store (queue, retry, spill file). */
  readonly history: HistoryWriter;
  /** Chat: MESSAGE storage and delivery, groups, receipts (undefined with messaging.enabled false). */
  readonly messaging: Messaging | undefined;
  /** Presence, busy lamps, message waiting (undefined with presence.enabled false). */
  readonly presence: Presence | undefined;
  readonly http: HttpServer;
  /** Backends, dialplan, DIDs and trusted sources. */
  readonly balancer: Balancer;
  /** The mid-registrar, when `registrar.mode` is not `local`. */
  readonly mid: MidRegistrar | undefined;
  /** Bans, flood detection, password-guessing protection. */
  readonly security: Security;
  /** TURN credentials and the embedded STUN/TURN server. */
  readonly turn: TurnService;
  /** This process's Prometheus metrics (a cluster worker sends their snapshot to the one answering `/metrics`). */
  readonly metrics: ProcessMetrics;
  /** "A meeting's participants changed": the meetings' event streams listen; a cluster worker relays it to the others. */
  readonly meetingSignals: MeetingSignals;
  /** Re-reads backends, routes, DIDs and trusted sources from the store (`softswitch reload`); calls in progress go on. */
  reload(): Promise<ReloadSummary>;
  start(): Promise<void>;
  /**
   * Graceful shutdown before stop() (SIGTERM, a rolling restart): new requests are refused with 503 +
   * Retry-After or handed off, /health answers not ok, transactions under way finish and in-dialog
   * requests still route. Resolves once idle (nothing pending, nothing for 2 s; 0.5 s with a hand-off)
   * or after `graceMs`.
   */
  drain(options: { graceMs: number; handOff?: DrainOptions['handOff'] }): Promise<void>;
  stop(): Promise<void>;
}

/** Retry-After of the 503s while draining: a client retries after a rolling restart has moved on, or on another server. */
const DRAIN_RETRY_AFTER_S = 5;
/**
 * A drain ends early once nothing has come for this long (and nothing is pending). With a successor (a
 * rolling restart) only this process's own transactions and connections count, and the successor routes
 * the dialogs' later requests: a short wait for late retransmissions is enough.
 */
const DRAIN_QUIET_MS = 2000;
const HANDOFF_QUIET_MS = 500;
/** At stop, records still queued get this long to reach the store; the rest go to the spill file. */
const HISTORY_STOP_MS = 5000;
/** How long the admin API's active calls wait for the other workers' answers (as a metrics scrape does). */
const CALLS_PEER_TIMEOUT_MS = 1000;

export interface SoftswitchOptions {
  /**
   * The secret behind Record-Route flow tokens and digest nonces; random per process when absent. The
   * workers of a cluster get the same one (CLUSTER_SECRET_ENV), so what one signs the others accept.
   */
  secret?: Buffer;
  /** This process's worker slot (`--workers N`): the owner recorded on the dialogs it holds. 0 by default. */
  workerIndex?: number;
  /**
   * Where used digest nonce-counts are kept; a cluster worker passes one with its worker index whose
   * claims for other workers' nonces go to them. A fresh local one by default.
   */
  ledger?: NonceLedger;
  /** Called after `POST /reload` has reloaded this process (a cluster worker tells the others). */
  onReloaded?: () => void;
  /** The other workers' metrics for `GET /metrics` (a cluster worker); none for a single process. */
  metricsPeers?: MetricsPeers;
}

/**
 * The chat's refusals on the meeting's chat routes, as /v1/conversations answers them (a ChatError's status and code;
 * 429 with its Retry-After, as a MeetingError): conference/ does not import messaging/ at run time.
 */
function meetingChatRefusal(err: unknown): never {
  if (!(err instanceof ChatError)) throw err;
  if (err.code === 'rate-limited') throw new MeetingError('MEETING_ERR_RATE_LIMITED', err.message, Math.max(1, Math.ceil(err.retryAfterS ?? 1)));
  const code = CHAT_ERROR_CODE[err.code];
  throw new Refusal(API_ERRORS[code].status, err.message, code);
}

export async function createSoftswitch(config: Config, logger: Logger, options: SoftswitchOptions = {}): Promise<Softswitch> {
  // One key per use, derived from the one secret.
  const derive = (use: string): Buffer | undefined => options.secret && createHmac('sha256', options.secret).update(use).digest();
  // The data folder holds the SQLite file (HA1s) and the generated TLS key: owner only (0700).
  securePrivateDir(resolve(config.dataDir), logger);
  const needsTls = config.http.tls || config.sip.listen.some((l) => l.protocol === 'tls' || l.protocol === 'wss');
  const tls = needsTls
    ? await loadOrCreateCertificate({
        certFile: config.tls.cert,
        keyFile: config.tls.key,
        dataDir: resolve(config.dataDir),
        hostnames: [...config.sip.domain, ...(config.sip.advertise ? [config.sip.advertise] : [])],
        logger,
      })
    : undefined;
  // Bans, flood and password-guessing protection; trusted sources and backends are asked lazily (the
  // balancer's routing data is built below).
  let isTrusted: (address: string) => boolean = () => false;
  const security = createSecurity({ options: config.security, logger, isTrusted: (a) => isTrusted(a) });
  const ledger = options.ledger ?? new NonceLedger();
  let transport: TransportLayer | undefined;
  const stack = new Stack({
    logger,
    gate: security.gate,
    advertise: config.sip.advertise,
    maxMessageSize: config.sip.maxMessageSize,
    serverHeader: config.sip.serverHeader,
    limits: config.limits,
    createTransport: (user) =>
      transport = new TransportLayer({
        listen: config.sip.listen,
        user,
        logger,
        tls: tls && { cert: tls.cert, key: tls.key },
        maxMessageSize: config.sip.maxMessageSize,
        maxConnections: config.sip.maxConnections,
        idleTimeoutMs: config.sip.idleTimeout * 1000,
        maxConnectionsPerIp: config.sip.maxConnectionsPerIp,
        messageTimeoutMs: config.sip.messageTimeout * 1000,
        handshakeTimeoutMs: config.sip.handshakeTimeout * 1000,
      }),
  });
  const store = await openStore({ url: config.store.url, logger });
  // The registrar and the router see subscribers only through this narrow interface.
  const subscribers: CredentialSource = new CachedCredentialSource({
    async getCredentials(username, domain) {
      const s = await store.subscribers.get(username, domain);
      return s && { ha1Md5: s.ha1Md5, ha1Sha256: s.ha1Sha256, enabled: s.enabled };
    },
  });
  // The push call server (RFC 8599): the providers configured, the registrar keeps their devices' bindings asleep.
  const pushProviders = config.push.enabled
    ? createPushProviders(config.push, { dataDir: resolve(config.dataDir), logger, ca: config.push.caFile === undefined ? undefined : readCaFile(config.push.caFile) })
    : new Map<PushProvider, PushProviderClient>();
  const webPush = pushProviders.get('webpush');
  // NAT traversal: TURN credentials, the embedded STUN/TURN server (single process or worker 0), X-Ice-Servers.
  const turn = new TurnService({
    settings: config.turn, domain: config.sip.domain[0]!, dataDir: resolve(config.dataDir), logger,
    runsEmbedded: (options.workerIndex ?? 0) === 0, waitForPort: options.ledger !== undefined,
  });
  const registrar = createRegistrar({
    stack,
    credentials: subscribers,
    persistence: store.locations,
    nonceSecret: derive('digest nonce'),
    ledger,
    guard: security.guard,
    logger,
    options: {
      domains: config.sip.domain,
      authAlgorithms: config.auth.algorithms,
      allowNoQop: config.auth.allowNoQop,
      nonceTtlMs: config.auth.nonceTtl * 1000,
      registerNonceTtlMs: config.auth.registerNonceTtl * 1000,
      push: { providers: [...pushProviders.keys()], vapidPublicKey: webPush instanceof WebPushClient ? webPush.publicKey : undefined },
      okHeaders: turn.registerHeaders,
    },
  });
  const push = new PushService({
    providers: pushProviders,
    onBinding: (listener) => registrar.onBinding(listener),
    // A dead token: the device's binding as it is now (asleep, a new object) goes.
    forget: (dead) => {
      const current = registrar.lookup(dead.aor).filter((b) => isSameDevice(dead, b));
      if (current.length > 0) registrar.locations.update(dead.aor, { remove: current });
    },
    sameDevice: isSameDevice,
    wakeTimeoutMs: config.push.wakeTimeout * 1000,
    includeContent: config.push.includeContent,
    logger,
  });
  const balancer = createBalancer({
    stack,
    repository: store.routing,
    logger,
    options: {
      probeIntervalMs: config.balancer.probeInterval * 1000,
      probeTimeoutMs: config.balancer.probeTimeout * 1000,
      failureThreshold: config.balancer.failureThreshold,
      recoveryThreshold: config.balancer.recoveryThreshold,
      reloadIntervalMs: config.balancer.reloadInterval * 1000,
    },
  });
  isTrusted = (address) => balancer.routing.isTrusted(address);
  const mid = config.registrar.mode === 'local'
    ? undefined
    : createMidRegistrar({
      stack,
      registrar,
      picker: pickerFromBalancer(balancer, config.registrar.backendSet),
      logger,
      domains: config.sip.domain,
      options: {
        mode: config.registrar.mode,
        backendSet: config.registrar.backendSet,
        outgoingExpires: config.registrar.outgoingExpires,
        localAuth: config.registrar.localAuth,
        okHeaders: turn.registerHeaders,
      },
    });
  const gateway = createMediaGateway({ nodes: config.media.rtpengine, logger, alwaysRelay: config.media.alwaysRelay });
  // One dialog per forwarded call; the balancer's least-calls counter follows them.
  const dialogs = new DialogTracker({ logger, owner: options.workerIndex ?? 0, maxDurationMs: config.dialog.maxDuration * 1000 });
  dialogs.on('ended', (d) => d.backend !== undefined && balancer.callEnded(d.backend));
  dialogs.on('restored', (d) => d.backend !== undefined && balancer.callStarted(d.backend));
  // Call history, off the hot path: an answered call's dialog is persisted (a restarted worker takes it
  // up), every ended one becomes its record (which removes the persisted dialog), through one writer.
  const owner = options.workerIndex ?? 0;
  const history = new HistoryWriter({
    target: store,
    spillFile: join(resolve(config.dataDir), 'history', `spill-${owner}.jsonl`),
    logger,
    queueLimit: config.history.queueLimit,
  });
  dialogs.on('confirmed', (d) => history.push({ op: 'dialog', dialog: persistedDialog(d, Date.now()) }));
  // Its CSeqs too: a process that takes the call up after a crash hangs it up with a BYE above them.
  dialogs.on('updated', (d) => history.push({ op: 'dialog', dialog: persistedDialog(d, Date.now()) }));
  dialogs.on('ended', (d) => {
    const record = config.history.enabled ? callRecordOf(d) : undefined;
    if (record !== undefined) history.push({ op: 'record', record });
    else if (d.answeredAt !== undefined) history.push({ op: 'forget', id: d.id });
  });
  /** Whether `user@domain` is a subscriber (chat recipients and group members, presence allow lists). */
  const userExists = async (user: string): Promise<boolean> => {
    const at = user.lastIndexOf('@');
    return (await subscribers.getCredentials(user.slice(0, at), user.slice(at + 1))) !== undefined;
  };
  // Chat: bodies and files sealed with the master key (storage.masterKey or dataDir/storage/master.key).
  const envelope = config.messaging.enabled ? Envelope.load({ masterKey: config.storage.masterKey, dataDir: resolve(config.dataDir), logger }) : undefined;
  const blobs = envelope && new LocalBlobStore(resolve(config.storage.path ?? join(config.dataDir, 'files')), logger);
  const files = envelope && blobs && new EncryptedFiles(blobs, envelope);
  const messaging = envelope === undefined ? undefined : createMessaging({
    stack,
    repo: store.messages,
    sealer: envelope,
    devices: {
      lookup: (aor) => registrar.lookup(aor),
      isAsleep,
      target: targetOf,
      onBinding: (listener) => registrar.onBinding(listener),
      push: pushProviders.size === 0 ? undefined : (b, payload) => push.message(b, payload),
    },
    domains: config.sip.domain.map((d) => d.toLowerCase()),
    userExists,
    removeFile: blobs && ((location) => blobs.remove(location)),
    options: {
      maxBodySize: config.messaging.maxBodySize,
      ratePerMinute: config.messaging.ratePerMinute,
      floodPer10s: config.messaging.floodPer10s,
      maxGroupMembers: config.messaging.maxGroupMembers,
      retentionDays: config.messaging.retentionDays,
      deliveryTimeoutMs: config.messaging.deliveryTimeout * 1000,
    },
    logger,
  });
  // Presence: the server is its users' presence agent; state from PUBLISH, registrations and dialogs.
  const presencePolicy = config.presence.enabled ? new PresencePolicy({ mode: config.presence.policy, repo: store.presence }) : undefined;
  const presence = presencePolicy === undefined ? undefined : createPresence({
    stack,
    lookup: (aor) => registrar.lookup(aor),
    isAsleep,
    onRegistrationChange: (listener) => registrar.onChange(listener),
    onDialog: (listener) => {
      for (const event of ['created', 'early', 'confirmed', 'ended', 'restored'] as const) dialogs.on(event, listener);
    },
    contactDestination: (uri) => {
      const binding = registrar.lookupByContact(uri);
      return binding === undefined ? undefined : targetOf(binding).destination;
    },
    policy: presencePolicy,
    onPolicyChange: (listener) => presencePolicy.onChange(listener),
    options: {
      minExpires: config.presence.minExpires,
      maxExpires: config.presence.maxExpires,
      defaultExpires: config.presence.defaultExpires,
      maxPublishExpires: config.presence.maxPublishExpires,
      notifyIntervalMs: config.presence.notifyInterval,
      maxSubscriptionsPerWatcher: config.presence.maxSubscriptionsPerWatcher,
    },
    logger,
  });
  const media = new MediaHook(gateway, dialogs, logger);
  const proxy = new ProxyCore({
    stack, logger, media, secret: derive('record-route'),
    topologyHiding: config.proxy.topologyHiding ? { isTrusted: (address) => balancer.routing.isTrusted(address) } : undefined,
  });
  const router = new Router({
    stack, proxy, recordRoute: proxy.recordRoute, registrar, subscribers, dialogs, domains: config.sip.domain, logger, mid,
    messaging: messaging && { take: (req, tx, sender, recipient) => messaging.sip.take(req, tx, sender, recipient), isGroup: isGroupId },
    presence: presence && {
      owns: (req) => presence.notifier.owns(req),
      inDialog: (req, tx) => presence.notifier.inDialog(req, tx),
      take: (req, tx, watcher, presentity, trusted, forward) => presence.service.take(req, tx, watcher, presentity, trusted, forward),
      // Voicemail lives on the FreeSWITCH pool behind the mid-registrar.
      voicemailSet: config.registrar.mode === 'local' ? undefined : config.registrar.backendSet,
    },
    push: pushProviders.size === 0 ? undefined : {
      isAsleep,
      wake: (b, call, signal) => push.wake(b, call, signal),
      ringingWhileWaking: config.push.ringingWhileWaking,
    },
    pstn: {
      balancer,
      data: balancer.routing,
      failoverTimeoutMs: config.balancer.failoverTimeout * 1000,
      userToUserSet: config.routing.userToUserVia,
    },
  });
  stack.setUser(router);
  // DELETE /v1/active-calls/:id: the proxy, which knows the calls' routes and connections, ends them.
  dialogs.setHangup(router);
  // Routing data changed in the store (the CLI's `softswitch reload`, the /v1 routing resources): the balancer swaps
  // its tables in without dropping a call, and the other workers of the node are told to do the same.
  const reloadRouting = async (): Promise<unknown> => {
    const summary = await balancer.reload();
    options.onReloaded?.();
    return summary;
  };
  // Apps sign in with their SIP password (POST /v1/auth/token) and read their own resources.
  const userTokens = new UserTokens({
    subscribers: store.subscribers,
    refreshTokens: new SqlRefreshTokenRepository(store),
    key: loadTokenKey({ dataDir: resolve(config.dataDir), secret: config.http.tokenSecret, logger }),
    domains: config.sip.domain,
    accessTtlSeconds: config.http.userTokenTtl,
    refreshTtlSeconds: config.http.refreshTokenTtl,
    // Meeting guests (grant urn:softswitch:meeting-guest): a token for a meeting that exists; the focus decides at join.
    meetings: { exists: async (id) => (await store.meetings.get(id)) !== undefined },
    guestTtlSeconds: config.http.guestTokenTtl,
  });
  const http = new HttpServer({
    listen: config.http.listen,
    // http.tls: HTTPS with the SIP TLS certificate (the apps send their SIP password to /v1/auth/token).
    tls: config.http.tls && tls !== undefined ? { cert: tls.cert, key: tls.key } : undefined,
    bodyLimit: config.http.bodyLimit,
    corsOrigins: config.http.corsOrigins,
    logger,
    // Every route but GET /health needs an admin token (softswitch token create); /health details too
    // unless http.listen is a loopback address.
    tokens: store.tokens,
    userTokens,
    source: {
      health: () => ({
        ok: started && !stack.draining,
        listeners: stack.listeners.map((l) => `${l.protocol}:${l.address}:${l.port}`),
        transactions: stack.transactions.stats,
        registrations: registrar.locations.count,
        dialogs: dialogs.stats(),
        push: push.stats(),
        ...(messaging === undefined ? {} : { messaging: messaging.stats() }),
        ...(presence === undefined ? {} : { presence: presence.stats() }),
        rtpengine: gateway.stats().map((n) => ({ node: `${n.host}:${n.port}`, up: n.up, calls: n.calls })),
        messages: stack.stats,
        security: security.stats(),
        backends: balancer.states(),
        ...(mid === undefined ? {} : { midRegistrar: { mode: config.registrar.mode, ...mid.stats } }),
      }),
      // `softswitch reload`: the CLI edits the store; this swaps the tables in without dropping a call.
      reload: reloadRouting,
    },
  });
  // Prometheus metrics, read from the stats above at scrape time; the ended calls are counted by cause.
  const metrics = new ProcessMetrics({
    worker: owner,
    sources: {
      messages: () => stack.counters.read(),
      stack: () => stack.stats,
      transactions: () => stack.transactions.stats,
      connections: () => transport?.connectionCounts() ?? {},
      registrations: () => registrar.locations.countByTransport(),
      dialogs: () => dialogs.stats(0),
      security: () => security.stats(),
      rtpengine: () => gateway.stats().map((n) => ({ node: `${n.host}:${n.port}`, up: n.up, latencyMs: n.lastLatencyMs, calls: n.calls })),
      backends: () => balancer.states().map((b) => ({ set: b.set, uri: b.uri, up: b.health === 'up', probeMs: b.probeMs, activeCalls: b.activeCalls })),
      push: () => (pushProviders.size === 0 ? undefined : push.stats()),
      chat: () => messaging?.stats(),
      presence: () => presence?.stats(),
      janus: () => janusPool.status(),
    },
  });
  dialogs.on('ended', (d) => metrics.dialogEnded(d.endCause ?? 'bye'));
  metricsRoute(http.fastify, new NodeMetrics({ local: metrics, peers: options.metricsPeers, logger }), metrics);
  http.routes(banRoutes(security.bans));
  http.routes(routingRoutes({ routing: store.routing, states: () => balancer.states(), reload: reloadRouting }));
  http.routes(callRoutes(store.calls), { access: 'user' });
  // The user's history: its calls and its meeting participations in one list (GET /v1/history).
  http.routes(timelineRoutes(store.calls, store.participants), { access: 'user' });
  if (presencePolicy !== undefined) http.routes(presenceRoutes(presencePolicy, userExists), { access: 'user' });
  // Meetings on Janus: the focus admits, and hands out Janus tokens derived from dataDir/meetings.key. Without a node
  // configured, joining answers 503; the connections open on the first join.
  const focusSecrets = new FocusSecrets(loadFocusKey({ dataDir: resolve(config.dataDir), logger }));
  const janusNodes = config.meetings.janus.map((node) => new JanusNode({ node, focusToken: focusSecrets.focusToken(), logger: categoryLogger(logger, 'conference.janus') }));
  // The meeting's chat: a group opened on first admission, every admitted user a member (messaging's groups).
  // Guests, not members, read it from their admission on and post as guest:<id>.
  const meetingChat: MeetingChat | undefined = messaging === undefined ? undefined : {
    open: (meeting) => messaging.chat.openMeetingGroup(meeting).catch(meetingChatRefusal),
    enter: (group, user) => messaging.chat.enterMeetingGroup(group, user).catch(meetingChatRefusal),
    read: (group, reader, options) => messaging.chat.meetingMessages(group, reader.kind === 'user' ? reader : { kind: 'guest', since: reader.since }, options)
      .catch(meetingChatRefusal),
    post: (group, author, text) => (author.kind === 'user'
      ? messaging.chat.send(author, group, { contentType: 'text/plain', body: text })
      : messaging.chat.postAsGuest(group, author.guest, text)).catch(meetingChatRefusal),
  };
  // Several nodes: rooms placed by load, nodes checked, a node's meetings moved when it is down (conference/nodes.ts).
  const janusPool = new JanusPool({
    nodes: janusNodes.map((node, i) => ({ node, capacity: config.meetings.janus[i]!.capacity })), placements: store.placements,
    healthIntervalMs: config.meetings.healthIntervalMs, downAfter: config.meetings.downAfter, logger: categoryLogger(logger, 'conference.janus'),
  });
  // Several nodes (cluster.redis): the meetings' changes also go through Redis; unset, the signal stays in-process.
  const sharedState = config.cluster.redis === undefined ? undefined : await RedisState.open({ url: config.cluster.redis, logger: categoryLogger(logger, 'state') });
  const meetingSignals = new MeetingSignals(sharedState === undefined ? undefined : { state: sharedState, processId: randomUUID() });
  await meetingSignals.listening;
  const focus = new Focus({
    meetings: store.meetings, participants: store.participants, moderation: store.moderation, breakouts: store.breakouts, secrets: focusSecrets,
    pool: janusPool, signals: meetingSignals, chat: meetingChat, logger,
  });
  janusPool.on('down', (node) => void focus.evacuate(node));
  const conversationOf = async (actor: MeetingActor, meetingId: string): Promise<string | undefined> => {
    if (messaging === undefined) return undefined;
    const group = meetingGroupId(meetingId);
    if (actor.kind === 'admin') return (await messaging.chat.conversation(group)) === undefined ? undefined : group;
    return (await messaging.chat.isMember(group, actor.user)) ? group : undefined;
  };
  http.routes(meetingRoutes(new MeetingService({ repository: store.meetings, userExists, ending: (id) => focus.end(id) }), { conversationOf }), { access: 'user' });
  // Open to meeting guests too: their token reaches only its own meeting's join and participant routes.
  http.routes(participantRoutes(focus), { access: 'guest' });
  http.routes(eventRoutes(focus, meetingSignals), { access: 'guest' });
  // The meeting's chat for whoever is admitted now, guests included (the same group users read in /v1/conversations).
  http.routes(meetingChatRoutes(focus), { access: 'guest' });
  http.routes(moderationRoutes(focus), { access: 'user' });
  // A guest's own media too: its reported mids are what a mute (a mute-all included) acts on in Janus.
  http.routes(participantMediaRoutes(focus), { access: 'guest' });
  http.routes(breakoutRoutes(focus), { access: 'guest' });
  // Recordings: Janus writes .mjr files into the node's recordingDir (a folder the softswitch reads too); a stop seals
  // them into the chat's encrypted file store, so without messaging nothing is recorded (503).
  const recorder = new MeetingRecorder({
    focus, secrets: focusSecrets, recordings: store.recordings, participants: store.participants, moderation: store.moderation,
    files: files && { store: files, index: store.messages },
    recordingDirs: new Map(config.meetings.janus.flatMap((node) => (node.recordingDir === undefined ? [] : [[node.url, resolve(node.recordingDir)] as const]))),
    logger,
  });
  http.routes(recordingRoutes(recorder), { access: 'user' });
  /** A deleted user's meetings go with it; their participants are put out first, as far as Janus answers. */
  const forgetMeetings = async (user: string): Promise<number> => {
    for (let after: { createdAt: number; id: string } | undefined; ;) {
      const page = await store.meetings.list({ owner: user, after, limit: 200 });
      for (const m of page) {
        await focus.end(m.id).catch((err: Error) => categoryLogger(logger, 'conference').warn({ meeting: m.id, err: err.message }, 'a deleted user\'s meeting could not be ended on Janus'));
      }
      if (page.length < 200) break;
      after = { createdAt: page[page.length - 1]!.createdAt, id: page[page.length - 1]!.id };
    }
    return store.meetings.removeOwnedBy(user);
  };
  // STUN/TURN for the apps: short-lived credentials in coturn's use-auth-secret scheme (GET /v1/ice-servers).
  // A meeting guest's WebRTC needs TURN as much as a user's: open to guest tokens (credentials for the guest itself).
  http.routes(iceServerRoutes(turn.routeDeps), { access: 'guest' });
  if (messaging !== undefined && files !== undefined) {
    http.routes(chatRoutes(messaging.chat), { access: 'user' });
    http.routes(fileRoutes({
      files,
      index: store.messages,
      mayRead: async (user, file) => (await messaging.chat.mayReadFile(user, file)) || (await recorder.mayRead(user, file)),
      mayPost: (user, conversationId) => messaging.chat.isMember(conversationId, user),
      maxFileSize: config.messaging.maxFileSize,
      fileTypes: config.messaging.fileTypes,
      logger,
    }), { access: 'user' });
  }
  // The web console: its pages (public, they ask for credentials) and the admin lists they read.
  http.routes(tokenRoutes(store.tokens));
  const userDeps: UserRouteDeps = {
    subscribers: store.subscribers, forgetPresence: (user) => store.presence.forget(user), forgetMeetings, bindings: (aor) => registrar.lookup(aor),
    unbind: (aor, bindings) => registrar.locations.update(aor, { remove: bindings }), isAsleep, forgetTokens: (user) => userTokens.forget(user),
  };
  http.routes(userRoutes(userDeps));
  // An app lists its own user's devices and signs a lost one out.
  http.routes(deviceRoutes(userDeps), { access: 'user' });
  http.routes(adminRoutes({
    registrations: () => registrar.locations.list(),
    isAsleep,
    activeCalls: async () => {
      const { dialogs: calls, missing } = await dialogs.listAll(CALLS_PEER_TIMEOUT_MS);
      return { calls, workersMissing: missing };
    },
    hangUp: async (id) => {
      const { result, missing } = await dialogs.hangUpAnywhere(id, CALLS_PEER_TIMEOUT_MS);
      return { result, workersMissing: missing };
    },
  }));
  consoleSite(http.fastify, {
    webSockets: () => stack.listeners.flatMap((l) => (l.protocol === 'ws' || l.protocol === 'wss' ? [{ protocol: l.protocol, port: l.port }] : [])),
    domain: config.sip.domain[0]!,
    janusUrls: config.meetings.janus.map((node) => node.url),
    logger: categoryLogger(logger, 'console'),
  });
  let started = false;
  return {
    stack,
    store,
    registrar,
    dialogs,
    history,
    messaging,
    presence,
    http,
    balancer,
    mid,
    security,
    turn,
    meetingSignals,
    metrics,
    reload: () => balancer.reload(),
    async start() {
      gateway.start();
      await history.start();
      // Answered calls an earlier process of this slot held (a crash, a restart): their BYE is still to come.
      try {
        dialogs.restore((await store.dialogs.listOwned(owner)).map(dialogOfRow));
      } catch (err) {
        categoryLogger(logger, 'dialog').warn({ err: (err as Error).message }, 'the persisted dialogs could not be read: calls in progress before this start end without a record');
      }
      await registrar.start();
      messaging?.start();
      janusPool.start();
      void blobs?.sweep().catch((err: Error) => categoryLogger(logger, 'messaging').warn({ err: err.message }, 'the chat files folder could not be swept'));
      await stack.start();
      // After the stack: the first probes go out at once.
      await balancer.start();
      await mid?.start();
      await turn.start();
      await http.start();
      started = true;
    },
    async drain({ graceMs, handOff }) {
      if (!started || graceMs <= 0) return;
      stack.drain({ retryAfter: DRAIN_RETRY_AFTER_S, handOff });
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'grace'>((resolveGrace) => (timer = setTimeout(() => resolveGrace('grace'), graceMs)));
      const ended = await Promise.race([stack.whenIdle(Math.min(handOff === undefined ? DRAIN_QUIET_MS : HANDOFF_QUIET_MS, graceMs)).then(() => 'idle' as const), grace]);
      clearTimeout(timer);
      categoryLogger(logger, 'server').info({ ended, pending: stack.transactions.pending }, ended === 'idle' ? 'drained' : 'grace period over');
    },
    async stop() {
      if (started) {
        started = false;
        await http.stop();
        await turn.stop();
        await mid?.stop();
        balancer.stop();
        // Before the stack: the watchers get their final NOTIFY (terminated;reason=noresource).
        presence?.stop();
        await stack.stop();
        dialogs.stop();
        messaging?.stop();
        await push.close();
        await history.stop(HISTORY_STOP_MS);
        await registrar.stop();
        gateway.stop();
      }
      // The breakout timers stop; their end times are in SQL (the next request after one closes those rooms).
      focus.stop();
      meetingSignals.close();
      await sharedState?.close();
      janusPool.stop();
      await Promise.allSettled(janusNodes.map((node) => node.close()));
      await store.close();
    },
  };
}

/** The CA file of push.caFile, or a configuration error naming the key. */
function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`configuration key push.caFile: ${file} cannot be read: ${(err as Error).message}`);
  }
}
