/**
 * The notifier (presence/notifier.ts), alone: SUBSCRIBE/NOTIFY of RFC 6665 for the presence (RFC 3856),
 * dialog (RFC 4235) and message-summary (RFC 3842) packages over a fake stack that records what is answered
 * and sent (the test answers each NOTIFY itself), a fake policy, a fake registrar behind a PresenceState,
 * and node:test's mock timers for the throttle and the expiries.
 */
import { describe, it, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import { type EventPackage, Notifier, type NotifierLimits } from '../../../presence/notifier.js';
import { blockedPidf, buildPidf } from '../../../presence/pidf.js';
import { PresenceState } from '../../../presence/presence-state.js';
import type { Reachability, WatchPolicy } from '../../../presence/types.js';
import type { DialogSnapshot } from '../../../src/dialog/index.js';
import { silentLogger } from '../../../src/log/index.js';
import {
  type ResponseOptions, type SipRequest, SipResponse, createResponse, parseMessage, randomToken,
} from '../../../src/sip/index.js';
import type { ClientTransaction, ClientTransactionUser, ServerTransaction } from '../../../src/transaction/index.js';
import type { Destination, Flow, TransportProtocol } from '../../../src/transport/types.js';

const T0 = 1_700_000_000_000;
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const LIMITS: NotifierLimits = { minExpires: 60, maxExpires: 3600, defaultExpires: 600, notifyIntervalMs: 1000, maxPerWatcher: 3 };
const WATCHER_CONTACT = 'sip:alice@198.51.100.7:5060';

interface Answer {
  status: number;
  options: ResponseOptions;
  response: SipResponse;
}

interface Sent {
  request: SipRequest;
  destination: Destination;
  user: ClientTransactionUser;
}

/** The three calls the notifier makes on the stack, recorded; NOTIFYs are answered by the test. */
class FakeStack {
  readonly answers: Answer[] = [];
  readonly sent: Sent[] = [];
  /** When set, sendRequest throws it (a transport that cannot send at all). */
  failSend: Error | undefined;

  respond(tx: ServerTransaction, status: number, options: ResponseOptions = {}): SipResponse {
    const response = createResponse(tx.request, status, options);
    this.answers.push({ status, options, response });
    return response;
  }

  sendRequest(request: SipRequest, destination: Destination, user: ClientTransactionUser): ClientTransaction {
    this.sent.push({ request, destination, user });
    if (this.failSend !== undefined) throw this.failSend;
    return {} as ClientTransaction;
  }

  advertisedAddress(protocol: TransportProtocol): { host: string; port: number } | undefined {
    return { host: '192.0.2.1', port: protocol === 'wss' ? 8443 : protocol === 'ws' ? 8080 : 5060 };
  }
}

/** A policy that allows what the test says; `fail` makes it throw (a store that cannot answer). */
class FakePolicy implements WatchPolicy {
  readonly blocked = new Set<string>();
  fail = false;
  readonly asked: Array<[string, string]> = [];

  async mayWatch(watcher: string, presentity: string): Promise<boolean> {
    this.asked.push([watcher, presentity]);
    if (this.fail) throw new Error('store unreachable');
    return !this.blocked.has(`${watcher}>${presentity}`);
  }
}

function flowOf(protocol: TransportProtocol = 'udp', address = '198.51.100.7', port = 5060, id = `${protocol}:${address}:${port}#1`): Flow {
  return { id, protocol, local: { address: '192.0.2.1', port: 5060 }, remote: { address, port } };
}

function txOf(request: SipRequest, flow: Flow = flowOf()): ServerTransaction {
  return { request, flow } as unknown as ServerTransaction;
}

interface SubscribeOptions {
  method?: string;
  event?: string;
  expires?: number;
  callId?: string;
  fromTag?: string;
  toTag?: string;
  cseq?: number;
  contact?: string;
  recordRoute?: string[];
  presentity?: string;
}

/** A SUBSCRIBE from alice for bob's state (in a dialog when `toTag` is given), as it would arrive. */
function subscribeRequest(o: SubscribeOptions = {}): SipRequest {
  const method = o.method ?? 'SUBSCRIBE';
  const presentity = o.presentity ?? BOB;
  const lines = [
    `${method} sip:${presentity} SIP/2.0`,
    `Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK${randomToken(12)};rport`,
    'Max-Forwards: 70',
    `To: <sip:${presentity}>${o.toTag === undefined ? '' : `;tag=${o.toTag}`}`,
    `From: <sip:${ALICE}>;tag=${o.fromTag ?? 'watcher-tag'}`,
    `Call-ID: ${o.callId ?? 'sub-1@198.51.100.7'}`,
    `CSeq: ${o.cseq ?? 1} ${method}`,
    `Contact: <${o.contact ?? WATCHER_CONTACT}>`,
    ...(o.recordRoute ?? []).map((r) => `Record-Route: ${r}`),
    `Event: ${o.event ?? 'presence'}`,
    ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
    'Content-Length: 0',
    '',
    '',
  ];
  return parseMessage(Buffer.from(lines.join('\r\n'), 'utf8')) as SipRequest;
}

/** A call bob → carol through this server, as the dialog module reports it. */
function bobsCall(state: DialogSnapshot['state'], over: Partial<DialogSnapshot> = {}): DialogSnapshot {
  return {
    id: 'dlg-1', owner: 0, callId: 'call-1@198.51.100.9', fromTag: 'from-1', toTag: state === 'created' ? undefined : 'to-1',
    caller: { uri: `sip:${BOB}`, user: 'bob', domain: 'example.com' },
    callee: { uri: 'sip:carol@example.com', user: 'carol', domain: 'example.com' },
    direction: 'user-user', state, mediaRelayed: false, createdAt: T0, ...over,
  };
}

const AWAY = { basic: 'open' as const, activities: ['away'], note: 'Lunch' };
const BUSY = { basic: 'open' as const, activities: ['busy'], note: 'Busy' };

describe('Notifier', () => {
  let stack: FakeStack;
  let policy: FakePolicy;
  let reach: Map<string, Reachability>;
  let state: PresenceState;
  let destinations: Map<string, Destination>;
  let asked: string[];
  let notifier: Notifier;

  function make(limits: NotifierLimits = LIMITS): Notifier {
    return new Notifier({
      stack, state, policy, limits, logger: silentLogger(), clock: () => Date.now(),
      contactDestination: (uri) => {
        asked.push(uri);
        return destinations.get(uri);
      },
    });
  }

  interface Opened {
    answer: Answer;
    toTag: string;
    callId: string;
    fromTag: string;
  }

  /** Subscribes alice (by default) and returns the dialog's identifiers. */
  async function open(o: SubscribeOptions = {}, watcher = ALICE, flow?: Flow): Promise<Opened> {
    const req = subscribeRequest(o);
    const n = stack.answers.length;
    const event = (o.event ?? 'presence').split(';')[0] as EventPackage;
    await notifier.subscribe(req, txOf(req, flow), event, watcher, o.presentity ?? BOB);
    assert.equal(stack.answers.length, n + 1, 'the SUBSCRIBE was answered once');
    const answer = stack.answers.at(-1)!;
    return { answer, toTag: answer.response.to?.tag ?? '', callId: req.callId!, fromTag: req.from!.tag! };
  }

  /** An in-dialog request of `d`, handed to the notifier the way the routing policy does. */
  async function inDialog(d: Opened, o: SubscribeOptions = {}, flow?: Flow): Promise<Answer> {
    const req = subscribeRequest({ callId: d.callId, fromTag: d.fromTag, toTag: d.toTag, ...o });
    const n = stack.answers.length;
    notifier.inDialog(req, txOf(req, flow));
    await flush();
    assert.equal(stack.answers.length, n + 1, 'the request was answered once');
    return stack.answers.at(-1)!;
  }

  const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const last = (): Sent => {
    const s = stack.sent.at(-1);
    assert.ok(s, 'a NOTIFY was sent');
    return s;
  };
  const subState = (s: Sent): string | undefined => s.request.get('subscription-state');
  const body = (s: Sent): string => s.request.body.toString('utf8');
  const answerNotify = (s: Sent, status: number): void => s.user.onResponse(new SipResponse({ status }), {} as ClientTransaction);
  const ownsDialog = (d: Opened): boolean => notifier.owns(subscribeRequest({ callId: d.callId, fromTag: d.fromTag, toTag: d.toTag, cseq: 99 }));

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    stack = new FakeStack();
    policy = new FakePolicy();
    reach = new Map([[BOB, 'online'], [ALICE, 'online']]);
    state = new PresenceState({ reachability: (user) => reach.get(user) ?? 'offline', clock: () => Date.now() });
    destinations = new Map();
    asked = [];
    notifier = make();
  });

  afterEach(() => {
    notifier.stop();
    state.stop();
    mock.timers.reset();
  });

  describe('SUBSCRIBE (RFC 6665 §4.2.1)', () => {
    it('§4.2.1.1: 200 with a To tag, the granted Expires and our Contact', async () => {
      const d = await open({ expires: 1200 });
      assert.equal(d.answer.status, 200);
      assert.ok(d.toTag.length > 0, 'a To tag');
      assert.equal(d.answer.response.get('expires'), '1200');
      assert.equal(d.answer.response.get('contact'), '<sip:presence@192.0.2.1:5060>');
    });

    it('§4.2.1.1: an Expires above maxExpires is granted as maxExpires; none asked is defaultExpires', async () => {
      const big = await open({ expires: 86_400 });
      assert.equal(big.answer.response.get('expires'), String(LIMITS.maxExpires));
      assert.equal(subState(last()), `active;expires=${LIMITS.maxExpires}`);
      const dflt = await open({ callId: 'sub-2@198.51.100.7' });
      assert.equal(dflt.answer.response.get('expires'), String(LIMITS.defaultExpires));
    });

    it('§4.2.1.2: a NOTIFY with the current state follows at once, in the new dialog', async () => {
      state.publish(BOB, undefined, AWAY, 600);
      const d = await open({ expires: 600, event: 'presence;id=x1' });
      assert.equal(stack.sent.length, 1);
      const n = last();
      assert.equal(n.request.method, 'NOTIFY');
      assert.equal(n.request.uri.toString(), WATCHER_CONTACT);
      assert.equal(n.request.callId, d.callId);
      assert.equal(n.request.from?.tag, d.toTag);
      assert.equal(n.request.from?.uri.toString(), `sip:${BOB}`);
      assert.equal(n.request.to?.tag, d.fromTag);
      assert.equal(n.request.cseq?.seq, 1);
      assert.equal(n.request.get('event'), 'presence;id=x1');
      assert.equal(subState(n), 'active;expires=600');
      assert.equal(n.request.contentType, 'application/pidf+xml');
      assert.equal(body(n), buildPidf(state.view(BOB)));
      assert.match(body(n), /<rpid:away\/>/);
    });

    it('§4.2.1.1: an Expires below minExpires is 423 with Min-Expires, and nothing is kept or sent', async () => {
      const d = await open({ expires: 10 });
      assert.equal(d.answer.status, 423);
      assert.equal(d.answer.response.get('min-expires'), String(LIMITS.minExpires));
      assert.equal(stack.sent.length, 0);
      assert.equal(notifier.stats().subscriptions, 0);
    });

    it('§4.4.3: Expires 0 is a fetch: 200, one NOTIFY terminated;reason=timeout with the state, and nothing kept', async () => {
      state.publish(BOB, undefined, AWAY, 600);
      const d = await open({ expires: 0 });
      assert.equal(d.answer.status, 200);
      assert.equal(d.answer.response.get('expires'), '0');
      assert.equal(stack.sent.length, 1);
      assert.equal(subState(last()), 'terminated;reason=timeout');
      assert.match(body(last()), /<rpid:away\/>/);
      assert.equal(notifier.stats().subscriptions, 0);
      assert.equal(ownsDialog(d), false);
      mock.timers.tick(5000);
      state.publish(BOB, undefined, BUSY, 600);
      mock.timers.tick(5000);
      assert.equal(stack.sent.length, 1, 'a fetch hears of no later change');
    });

    it('a watcher holding maxPerWatcher subscriptions is refused 403; another watcher is not; an ended one frees a place', async () => {
      const subs: Opened[] = [];
      for (let i = 0; i < LIMITS.maxPerWatcher; i++) subs.push(await open({ callId: `cap-${i}@198.51.100.7` }));
      assert.ok(subs.every((s) => s.answer.status === 200));
      const over = await open({ callId: 'cap-x@198.51.100.7' });
      assert.equal(over.answer.status, 403);
      assert.equal((await open({ callId: 'cap-y@198.51.100.7' }, 'carol@example.com')).answer.status, 200);
      assert.equal((await inDialog(subs[0]!, { cseq: 2, expires: 0 })).status, 200);
      assert.equal((await open({ callId: 'cap-z@198.51.100.7' })).answer.status, 200);
    });

    it('owns() is true for the subscription\'s in-dialog requests only', async () => {
      const d = await open();
      assert.equal(ownsDialog(d), true);
      assert.equal(notifier.owns(subscribeRequest({ callId: 'other@198.51.100.7', fromTag: d.fromTag, toTag: d.toTag })), false);
      assert.equal(notifier.owns(subscribeRequest({ callId: d.callId, fromTag: 'other-tag', toTag: d.toTag })), false);
      assert.equal(notifier.owns(subscribeRequest({ callId: d.callId, fromTag: d.fromTag, toTag: 'not-ours' })), false);
      assert.equal(notifier.owns(subscribeRequest({ callId: d.callId, fromTag: d.fromTag })), false, 'no To tag: not in a dialog');
    });

    it('RFC 3261 §16.12.1.2: the Record-Route set of the SUBSCRIBE becomes the NOTIFY\'s Route set', async () => {
      await open({ recordRoute: ['<sip:edge.example.net;lr>'] });
      assert.deepEqual(last().request.getAll('route'), ['<sip:edge.example.net;lr>']);
    });

    it('our Contact names the transport of a connection-oriented SUBSCRIBE (wss as ws, RFC 7118 §5)', async () => {
      const d = await open({}, ALICE, flowOf('wss', '198.51.100.7', 50000));
      assert.equal(d.answer.response.get('contact'), '<sip:presence@192.0.2.1:8443;transport=ws>');
    });
  });

  describe('in-dialog SUBSCRIBE (RFC 6665 §4.2.1.2, §4.4.1)', () => {
    it('a refresh with a higher CSeq is 200 with the new Expires and a NOTIFY with the state', async () => {
      const d = await open({ expires: 600 });
      mock.timers.tick(300_000);
      const a = await inDialog(d, { cseq: 2, expires: 900 });
      assert.equal(a.status, 200);
      assert.equal(a.response.get('expires'), '900');
      assert.equal(a.response.get('contact'), '<sip:presence@192.0.2.1:5060>');
      assert.equal(stack.sent.length, 2);
      assert.equal(subState(last()), 'active;expires=900');
      assert.equal(last().request.cseq?.seq, 2);
    });

    it('the refresh moves the expiry: the subscription outlives its first Expires', async () => {
      const d = await open({ expires: 600 });
      mock.timers.tick(500_000);
      await inDialog(d, { cseq: 2, expires: 600 });
      mock.timers.tick(200_000);
      assert.equal(ownsDialog(d), true);
      assert.ok(stack.sent.every((s) => subState(s)?.startsWith('active') === true));
    });

    it('RFC 3261 §12.2.2: a CSeq not above the last one is 500, and nothing is sent', async () => {
      const d = await open({ cseq: 5 });
      assert.equal((await inDialog(d, { cseq: 4 })).status, 500);
      assert.equal((await inDialog(d, { cseq: 5 })).status, 500);
      assert.equal(stack.sent.length, 1);
      assert.equal(ownsDialog(d), true);
    });

    it('Expires 0 ends it: 200, a final NOTIFY terminated;reason=timeout, and owns() is false after', async () => {
      const d = await open();
      const a = await inDialog(d, { cseq: 2, expires: 0 });
      assert.equal(a.status, 200);
      assert.equal(a.response.get('expires'), '0');
      assert.equal(stack.sent.length, 2);
      assert.equal(subState(last()), 'terminated;reason=timeout');
      assert.equal(ownsDialog(d), false);
      assert.equal(notifier.stats().subscriptions, 0);
    });

    it('a refresh below minExpires is 423 and the subscription stays as it was', async () => {
      const d = await open({ expires: 600 });
      const a = await inDialog(d, { cseq: 2, expires: 5 });
      assert.equal(a.status, 423);
      assert.equal(ownsDialog(d), true);
      assert.equal(stack.sent.length, 1);
    });

    it('a request of an unknown dialog is 481', async () => {
      const req = subscribeRequest({ toTag: 'never-issued', cseq: 2 });
      notifier.inDialog(req, txOf(req));
      assert.equal(stack.answers.at(-1)?.status, 481);
    });

    it('another method in the dialog is 405 with Allow: SUBSCRIBE', async () => {
      const d = await open();
      const a = await inDialog(d, { method: 'INFO', cseq: 2 });
      assert.equal(a.status, 405);
      assert.equal(a.response.get('allow'), 'SUBSCRIBE');
    });

    it('§4.2.2: at its expiry the subscription ends with a final NOTIFY terminated;reason=timeout', async () => {
      const d = await open({ expires: 600 });
      mock.timers.tick(599_999);
      assert.equal(stack.sent.length, 1);
      mock.timers.tick(1);
      assert.equal(stack.sent.length, 2);
      assert.equal(subState(last()), 'terminated;reason=timeout');
      assert.equal(ownsDialog(d), false);
    });

    it('a refresh from a new connection moves the NOTIFYs there (a reconnected phone)', async () => {
      const d = await open({}, ALICE, flowOf('tcp', '198.51.100.7', 40000, 'tcp-old'));
      assert.deepEqual(last().destination, { protocol: 'tcp', address: '198.51.100.7', port: 40000, flowId: 'tcp-old' });
      await inDialog(d, { cseq: 2 }, flowOf('tcp', '198.51.100.7', 40001, 'tcp-new'));
      assert.deepEqual(last().destination, { protocol: 'tcp', address: '198.51.100.7', port: 40001, flowId: 'tcp-new' });
    });
  });

  describe('state changes and the throttle', () => {
    it('two changes within notifyIntervalMs give one NOTIFY, after the interval, with the latest state', async () => {
      await open();
      mock.timers.tick(100);
      const p = state.publish(BOB, undefined, AWAY, 600);
      mock.timers.tick(100);
      state.publish(BOB, p.etag, BUSY, 600);
      mock.timers.tick(799);
      assert.equal(stack.sent.length, 1, 'nothing before the interval');
      mock.timers.tick(1);
      assert.equal(stack.sent.length, 2);
      assert.match(body(last()), /<rpid:busy\/>/);
      assert.doesNotMatch(body(last()), /<rpid:away\/>/);
      assert.ok(notifier.stats().suppressed >= 1);
    });

    it('a change after the interval is NOTIFYed at once, with the remaining Expires', async () => {
      await open({ expires: 600 });
      mock.timers.tick(100_000);
      state.publish(BOB, undefined, AWAY, 600);
      assert.equal(stack.sent.length, 2);
      assert.equal(subState(last()), 'active;expires=500');
    });

    it('RFC 3856 §6.7: a presence document equal to the last one sent is not sent again', async () => {
      await open();
      mock.timers.tick(2000);
      state.emit('changed', BOB);
      assert.equal(stack.sent.length, 1);
      const p = state.publish(BOB, undefined, AWAY, 600);
      assert.equal(stack.sent.length, 2);
      mock.timers.tick(100);
      state.unpublish(BOB, p.etag);
      state.publish(BOB, undefined, AWAY, 600);
      mock.timers.tick(2000);
      assert.equal(stack.sent.length, 2, 'away, then away again: nothing new');
      assert.ok(notifier.stats().suppressed >= 2);
    });

    it('registration changes reach watchers: offline is closed', async () => {
      await open();
      mock.timers.tick(2000);
      reach.set(BOB, 'offline');
      state.emit('changed', BOB);
      assert.equal(stack.sent.length, 2);
      assert.match(body(last()), /<basic>closed<\/basic>/);
    });

    it('RFC 4235 §4.1.1: dialog documents count versions from 0, one more per NOTIFY', async () => {
      await open({ event: 'dialog' });
      assert.equal(last().request.contentType, 'application/dialog-info+xml');
      assert.match(body(last()), /version="0" state="full"/);
      assert.doesNotMatch(body(last()), /<dialog /);
      mock.timers.tick(1000);
      state.dialog(bobsCall('created'));
      assert.match(body(last()), /version="1" state="full"/);
      assert.match(body(last()), /<state>trying<\/state>/);
      mock.timers.tick(1000);
      state.dialog(bobsCall('confirmed'));
      assert.match(body(last()), /version="2" state="full"/);
      assert.match(body(last()), /<state>confirmed<\/state>/);
      mock.timers.tick(1000);
      state.dialog(bobsCall('ended', { endCause: 'bye', hangupBy: 'callee' }));
      assert.match(body(last()), /version="3" state="full"/);
      assert.match(body(last()), /<state event="remote-bye">terminated<\/state>/);
      assert.equal(stack.sent.length, 4);
    });

    it('RFC 3842: message-summary says no messages, and state changes do not NOTIFY it', async () => {
      await open({ event: 'message-summary', presentity: ALICE });
      assert.equal(last().request.contentType, 'application/simple-message-summary');
      assert.match(body(last()), /^Messages-Waiting: no\r\n/);
      mock.timers.tick(2000);
      state.publish(ALICE, undefined, AWAY, 600);
      mock.timers.tick(2000);
      assert.equal(stack.sent.length, 1);
      assert.deepEqual(policy.asked, [], 'a user\'s own mailbox needs no policy');
    });
  });

  describe('NOTIFY outcomes and destinations (RFC 6665 §4.2.2)', () => {
    it('a 481 answer to a NOTIFY ends the subscription: no final NOTIFY, no later one', async () => {
      const d = await open();
      answerNotify(last(), 481);
      assert.equal(ownsDialog(d), false);
      assert.equal(notifier.stats().subscriptions, 0);
      mock.timers.tick(2000);
      state.publish(BOB, undefined, AWAY, 600);
      mock.timers.tick(2000);
      assert.equal(stack.sent.length, 1);
      assert.equal(notifier.stats().notifyFailures, 1);
    });

    it('a transport error does not end it; three in a row do', async () => {
      const d = await open();
      last().user.onTransportError?.({} as ClientTransaction, new Error('connection reset'));
      assert.equal(ownsDialog(d), true);
      mock.timers.tick(2000);
      state.publish(BOB, undefined, AWAY, 600);
      last().user.onTransportError?.({} as ClientTransaction, new Error('connection reset'));
      assert.equal(ownsDialog(d), true);
      mock.timers.tick(2000);
      state.publish(BOB, undefined, BUSY, 600);
      assert.equal(stack.sent.length, 3);
      last().user.onTransportError?.({} as ClientTransaction, new Error('connection reset'));
      assert.equal(ownsDialog(d), false);
    });

    it('a 2xx in between resets the count of failures in a row', async () => {
      const d = await open();
      last().user.onTransportError?.({} as ClientTransaction, new Error('reset'));
      mock.timers.tick(2000);
      state.publish(BOB, undefined, AWAY, 600);
      last().user.onTransportError?.({} as ClientTransaction, new Error('reset'));
      const p = state.publish(BOB, undefined, BUSY, 600);
      mock.timers.tick(2000);
      answerNotify(last(), 200);
      state.unpublish(BOB, p.etag);
      mock.timers.tick(2000);
      state.publish(BOB, undefined, { basic: 'closed', activities: [], note: 'Gone' }, 600);
      last().user.onTransportError?.({} as ClientTransaction, new Error('reset'));
      assert.equal(stack.sent.length, 4);
      assert.equal(ownsDialog(d), true);
    });

    it('a send that throws counts as a transport failure, not an end', async () => {
      stack.failSend = new Error('no route');
      const d = await open();
      assert.equal(ownsDialog(d), true);
      assert.equal(notifier.stats().notifyFailures, 1);
    });

    it('a 408 answer is not final; a transaction timeout (Timer F) ends the subscription', async () => {
      const d = await open();
      answerNotify(last(), 408);
      assert.equal(ownsDialog(d), true);
      mock.timers.tick(2000);
      state.publish(BOB, undefined, AWAY, 600);
      last().user.onTimeout?.({} as ClientTransaction);
      assert.equal(ownsDialog(d), false);
    });

    it('a provisional answer changes nothing', async () => {
      const d = await open();
      answerNotify(last(), 100);
      assert.equal(ownsDialog(d), true);
      assert.equal(notifier.stats().notifyFailures, 0);
    });

    it('the NOTIFY goes where the watcher\'s Contact is registered now, when it is', async () => {
      const now: Destination = { protocol: 'wss', address: '203.0.113.5', port: 51000, flowId: 'wss-7' };
      destinations.set(WATCHER_CONTACT, now);
      await open();
      assert.deepEqual(asked, [WATCHER_CONTACT]);
      assert.deepEqual(last().destination, now);
    });

    it('else it goes where the SUBSCRIBE came from (a UDP origin without a flow id)', async () => {
      await open({}, ALICE, flowOf('udp', '198.51.100.7', 5062));
      assert.deepEqual(last().destination, { protocol: 'udp', address: '198.51.100.7', port: 5062, flowId: undefined });
    });

    it('stop() ends every subscription with terminated;reason=noresource, and nothing is sent after', async () => {
      const a = await open();
      const b = await open({ callId: 'sub-2@198.51.100.7', event: 'dialog' });
      notifier.stop();
      assert.deepEqual(stack.sent.slice(2).map(subState), ['terminated;reason=noresource', 'terminated;reason=noresource']);
      assert.equal(ownsDialog(a) || ownsDialog(b), false);
      state.publish(BOB, undefined, AWAY, 600);
      mock.timers.tick(5000);
      assert.equal(stack.sent.length, 4);
    });
  });

  describe('policy (polite blocking, RFC 5025 §3.2.1)', () => {
    it('a blocked watcher is subscribed and told what an offline user looks like', async () => {
      policy.blocked.add(`${ALICE}>${BOB}`);
      state.publish(BOB, undefined, BUSY, 600);
      const d = await open();
      assert.equal(d.answer.status, 200);
      assert.equal(body(last()), blockedPidf(`sip:${BOB}`));
      assert.deepEqual(policy.asked, [[ALICE, BOB]]);
    });

    it('a blocked watcher of the dialog package sees no dialog', async () => {
      policy.blocked.add(`${ALICE}>${BOB}`);
      state.dialog(bobsCall('confirmed'));
      await open({ event: 'dialog' });
      assert.doesNotMatch(body(last()), /<dialog /);
    });

    it('a policy that cannot answer blocks: the watcher is told nothing', async () => {
      policy.fail = true;
      state.publish(BOB, undefined, BUSY, 600);
      const d = await open();
      assert.equal(d.answer.status, 200);
      assert.equal(body(last()), blockedPidf(`sip:${BOB}`));
    });

    it('recheck() after an allow-list change NOTIFYs the new state; without a change it sends nothing', async () => {
      policy.blocked.add(`${ALICE}>${BOB}`);
      state.publish(BOB, undefined, BUSY, 600);
      await open();
      await notifier.recheck(BOB);
      assert.equal(stack.sent.length, 1, 'still blocked: nothing to say');
      policy.blocked.clear();
      await notifier.recheck(BOB);
      assert.equal(stack.sent.length, 2);
      assert.equal(body(last()), buildPidf(state.view(BOB)));
      policy.blocked.add(`${ALICE}>${BOB}`);
      await notifier.recheck(BOB);
      assert.equal(stack.sent.length, 3);
      assert.equal(body(last()), blockedPidf(`sip:${BOB}`));
    });

    it('a refresh judges the watcher again', async () => {
      policy.blocked.add(`${ALICE}>${BOB}`);
      state.publish(BOB, undefined, BUSY, 600);
      const d = await open();
      policy.blocked.clear();
      await inDialog(d, { cseq: 2 });
      assert.equal(body(last()), buildPidf(state.view(BOB)));
    });
  });
});
