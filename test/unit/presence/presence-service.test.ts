/**
 * The presence agent's front (presence/presence-service.ts), alone: PUBLISH handled as RFC 3903 §6 says
 * (entity-tags, conditional refresh, expiry, removal) into a PresenceState with a fake registrar, and
 * SUBSCRIBE handed to a fake notifier or refused with 489 (RFC 6665 §8.2.1). Responses go to a fake stack
 * that records them; requests are parsed from text like the wire's.
 */
import { describe, it, beforeEach, afterEach, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { Notifier } from '../../../presence/notifier.js';
import { PresenceService } from '../../../presence/presence-service.js';
import { PresenceState } from '../../../presence/presence-state.js';
import type { Reachability } from '../../../presence/types.js';
import { silentLogger } from '../../../src/log/index.js';
import { type ResponseOptions, type SipRequest, type SipResponse, createResponse, parseMessage, randomToken } from '../../../src/sip/index.js';
import type { ServerTransaction } from '../../../src/transaction/index.js';
import type { Flow } from '../../../src/transport/types.js';

const T0 = 1_700_000_000_000;
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const LIMITS = { minExpires: 60, maxPublishExpires: 3600, defaultPublishExpires: 3600 };

const PIDF_AWAY = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"',
  '    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">',
  '  <tuple id="t1"><status><basic>open</basic></status></tuple>',
  '  <dm:person id="p1"><rpid:activities><rpid:away/></rpid:activities><dm:note>Lunch</dm:note></dm:person>',
  '</presence>',
].join('\r\n');

const PIDF_BUSY = PIDF_AWAY.replace('<rpid:away/>', '<rpid:busy/>').replace('Lunch', 'Busy');

interface Answer {
  status: number;
  options: ResponseOptions;
  response: SipResponse;
}

/** The stack's respond(), recorded; the response is built as the real stack builds it. */
class FakeStack {
  readonly answers: Answer[] = [];

  respond(tx: ServerTransaction, status: number, options: ResponseOptions = {}): SipResponse {
    const response = createResponse(tx.request, status, options);
    this.answers.push({ status, options, response });
    return response;
  }

  get last(): Answer {
    const a = this.answers.at(-1);
    assert.ok(a, 'an answer was sent');
    return a;
  }
}

/** The notifier's subscribe(), recorded. */
class FakeNotifier {
  readonly subscribed: Array<{ event: string; watcher: string; presentity: string }> = [];

  async subscribe(_req: SipRequest, _tx: ServerTransaction, event: string, watcher: string, presentity: string): Promise<void> {
    this.subscribed.push({ event, watcher, presentity });
  }
}

const FLOW: Flow = { id: 'udp:198.51.100.7:5060', protocol: 'udp', local: { address: '192.0.2.1', port: 5060 }, remote: { address: '198.51.100.7', port: 5060 } };

function txOf(request: SipRequest): ServerTransaction {
  return { request, flow: FLOW } as unknown as ServerTransaction;
}

interface RequestOptions {
  method?: 'PUBLISH' | 'SUBSCRIBE';
  user?: string;
  event?: string | undefined;
  expires?: number;
  ifMatch?: string;
  body?: string;
  contentType?: string;
}

/** A PUBLISH (or SUBSCRIBE) for alice as it would arrive. */
function request(o: RequestOptions = {}): SipRequest {
  const method = o.method ?? 'PUBLISH';
  const user = o.user ?? ALICE;
  const body = o.body ?? '';
  const event = 'event' in o ? o.event : 'presence';
  const lines = [
    `${method} sip:${user} SIP/2.0`,
    `Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK${randomToken(12)};rport`,
    'Max-Forwards: 70',
    `To: <sip:${user}>`,
    `From: <sip:${ALICE}>;tag=${randomToken(8)}`,
    `Call-ID: ${randomToken(10)}@198.51.100.7`,
    `CSeq: 1 ${method}`,
    ...(method === 'SUBSCRIBE' ? ['Contact: <sip:alice@198.51.100.7:5060>'] : []),
    ...(event === undefined ? [] : [`Event: ${event}`]),
    ...(o.expires === undefined ? [] : [`Expires: ${o.expires}`]),
    ...(o.ifMatch === undefined ? [] : [`SIP-If-Match: ${o.ifMatch}`]),
    ...(body === '' ? [] : [`Content-Type: ${o.contentType ?? 'application/pidf+xml'}`]),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ];
  return parseMessage(Buffer.from(lines.join('\r\n'), 'utf8')) as SipRequest;
}

describe('PresenceService', () => {
  let stack: FakeStack;
  let notifier: FakeNotifier;
  let state: PresenceState;
  let service: PresenceService;
  let changes: string[];

  /** Hands a request to the service as the authenticated `watcher` (alice by default). */
  async function take(req: SipRequest, watcher = ALICE, trusted = false, forwardVoicemail?: () => void): Promise<Answer | undefined> {
    const n = stack.answers.length;
    await service.take(req, txOf(req), watcher, req.uri.toString().replace(/^sip:/, ''), trusted, forwardVoicemail);
    return stack.answers.length > n ? stack.last : undefined;
  }

  const header = (a: Answer | undefined, name: string): string | undefined => a?.response.get(name);

  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    stack = new FakeStack();
    notifier = new FakeNotifier();
    const reach: (user: string) => Reachability = () => 'online';
    state = new PresenceState({ reachability: reach, clock: () => Date.now() });
    changes = [];
    state.on('changed', (user) => changes.push(user));
    service = new PresenceService({ stack, state, notifier: notifier as unknown as Notifier, limits: LIMITS, logger: silentLogger() });
  });

  afterEach(() => {
    state.stop();
    mock.timers.reset();
  });

  describe('PUBLISH (RFC 3903 §6)', () => {
    it('an initial PUBLISH with a PIDF is 200 with a SIP-ETag and Expires, and becomes the user\'s published state', async () => {
      const a = await take(request({ body: PIDF_AWAY, expires: 600 }));
      assert.equal(a?.status, 200);
      const etag = header(a, 'sip-etag');
      assert.ok(etag !== undefined && etag !== '');
      assert.equal(header(a, 'expires'), '600');
      assert.deepEqual(state.publication(ALICE, etag)?.state, { basic: 'open', activities: ['away'], note: 'Lunch' });
      assert.deepEqual(changes, [ALICE]);
      assert.equal(service.counters.publishes, 1);
    });

    it('without Expires the default is granted; above the maximum it is clamped', async () => {
      assert.equal(header(await take(request({ body: PIDF_AWAY })), 'expires'), String(LIMITS.defaultPublishExpires));
      assert.equal(header(await take(request({ body: PIDF_AWAY, expires: 999_999 })), 'expires'), String(LIMITS.maxPublishExpires));
    });

    it('step 3: an initial PUBLISH without a body is 400', async () => {
      const a = await take(request({ expires: 600 }));
      assert.equal(a?.status, 400);
      assert.equal(state.publicationCount(ALICE), 0);
    });

    it('a body that is not application/pidf+xml is 415 with Accept: application/pidf+xml', async () => {
      const a = await take(request({ body: 'status: away', contentType: 'text/plain' }));
      assert.equal(a?.status, 415);
      assert.equal(header(a, 'accept'), 'application/pidf+xml');
      assert.equal(state.publicationCount(ALICE), 0);
    });

    it('a PIDF content type with parameters is still a PIDF', async () => {
      const a = await take(request({ body: PIDF_AWAY, contentType: 'application/pidf+xml; charset=UTF-8' }));
      assert.equal(a?.status, 200);
    });

    it('a malformed PIDF is 400 and stores nothing', async () => {
      const a = await take(request({ body: '<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple>' }));
      assert.equal(a?.status, 400);
      assert.equal(state.publicationCount(ALICE), 0);
      assert.deepEqual(changes, []);
    });

    it('a PIDF whose root is not presence is 400', async () => {
      const a = await take(request({ body: '<?xml version="1.0"?><note xmlns="urn:example">hi</note>' }));
      assert.equal(a?.status, 400);
    });

    it('publishing someone else\'s presence is 403; a trusted source may', async () => {
      const a = await take(request({ user: BOB, body: PIDF_AWAY }), ALICE);
      assert.equal(a?.status, 403);
      assert.equal(state.publicationCount(BOB), 0);
      const t = await take(request({ user: BOB, body: PIDF_AWAY }), 'gateway@example.com', true);
      assert.equal(t?.status, 200);
      assert.equal(state.publicationCount(BOB), 1);
    });

    it('step 4: a SIP-If-Match the server does not hold is 412', async () => {
      const a = await take(request({ ifMatch: 'not-a-tag-of-ours', expires: 600 }));
      assert.equal(a?.status, 412);
    });

    it('step 4: a SIP-If-Match of an expired publication is 412', async () => {
      const first = await take(request({ body: PIDF_AWAY, expires: 60 }));
      mock.timers.tick(61_000);
      const a = await take(request({ ifMatch: header(first, 'sip-etag')!, expires: 60 }));
      assert.equal(a?.status, 412);
    });

    it('a refresh without a body keeps the state and returns a new SIP-ETag; the old tag no longer matches', async () => {
      const first = await take(request({ body: PIDF_AWAY, expires: 600 }));
      const etag = header(first, 'sip-etag')!;
      changes.length = 0;
      mock.timers.tick(300_000);
      const refresh = await take(request({ ifMatch: etag, expires: 600 }));
      assert.equal(refresh?.status, 200);
      const next = header(refresh, 'sip-etag')!;
      assert.notEqual(next, etag);
      assert.deepEqual(state.publication(ALICE, next)?.state, { basic: 'open', activities: ['away'], note: 'Lunch' });
      assert.equal(state.publication(ALICE, etag), undefined);
      assert.equal(state.publicationCount(ALICE), 1);
      assert.deepEqual(changes, [], 'a refresh changes nothing watchers are told');
      // The refresh moved the expiry: the publication outlives its first Expires.
      mock.timers.tick(400_000);
      assert.ok(state.publication(ALICE, next));
      assert.equal(stack.answers.filter((x) => x.status === 412).length, 0);
      assert.equal((await take(request({ ifMatch: etag, expires: 600 })))?.status, 412);
    });

    it('a modification (SIP-If-Match and a body) replaces the state and emits changed', async () => {
      const first = await take(request({ body: PIDF_AWAY, expires: 600 }));
      changes.length = 0;
      const mod = await take(request({ ifMatch: header(first, 'sip-etag')!, body: PIDF_BUSY, expires: 600 }));
      assert.equal(mod?.status, 200);
      assert.deepEqual(state.publication(ALICE, header(mod, 'sip-etag')!)?.state, { basic: 'open', activities: ['busy'], note: 'Busy' });
      assert.equal(state.publicationCount(ALICE), 1);
      assert.deepEqual(changes, [ALICE]);
    });

    it('Expires 0 with SIP-If-Match removes the publication: 200 with that SIP-ETag and Expires 0', async () => {
      const first = await take(request({ body: PIDF_AWAY, expires: 600 }));
      const etag = header(first, 'sip-etag')!;
      changes.length = 0;
      const a = await take(request({ ifMatch: etag, expires: 0 }));
      assert.equal(a?.status, 200);
      assert.equal(header(a, 'sip-etag'), etag);
      assert.equal(header(a, 'expires'), '0');
      assert.equal(state.publicationCount(ALICE), 0);
      assert.deepEqual(changes, [ALICE]);
      assert.deepEqual(state.view(ALICE).activities, []);
    });

    it('Expires 0 without SIP-If-Match is 400', async () => {
      const a = await take(request({ body: PIDF_AWAY, expires: 0 }));
      assert.equal(a?.status, 400);
      assert.equal(state.publicationCount(ALICE), 0);
    });

    it('an Expires below the minimum is 423 with Min-Expires', async () => {
      const a = await take(request({ body: PIDF_AWAY, expires: 30 }));
      assert.equal(a?.status, 423);
      assert.equal(header(a, 'min-expires'), String(LIMITS.minExpires));
      assert.equal(state.publicationCount(ALICE), 0);
    });

    it('an Event other than presence is 489 Bad Event with Allow-Events', async () => {
      const a = await take(request({ event: 'dialog', body: PIDF_AWAY }));
      assert.equal(a?.status, 489);
      assert.equal(header(a, 'allow-events'), 'presence, dialog, message-summary');
      const none = await take(request({ event: undefined, body: PIDF_AWAY }));
      assert.equal(none?.status, 489);
      assert.equal(state.publicationCount(ALICE), 0);
    });

    it('a publication expires: it is removed and changed is emitted', async () => {
      const a = await take(request({ body: PIDF_AWAY, expires: 60 }));
      const etag = header(a, 'sip-etag')!;
      changes.length = 0;
      mock.timers.tick(60_000);
      assert.equal(state.publication(ALICE, etag), undefined);
      assert.equal(state.publicationCount(ALICE), 0);
      assert.deepEqual(changes, [ALICE]);
    });

    it('a user holds at most 16 publications at once: the 17th new one is 403, a refresh still passes', async () => {
      const tags: string[] = [];
      for (let i = 0; i < 16; i++) tags.push(header(await take(request({ body: PIDF_AWAY, expires: 600 })), 'sip-etag')!);
      assert.equal((await take(request({ body: PIDF_AWAY, expires: 600 })))?.status, 403);
      assert.equal(state.publicationCount(ALICE), 16);
      assert.equal((await take(request({ ifMatch: tags[0]!, expires: 600 })))?.status, 200);
    });
  });

  describe('SUBSCRIBE', () => {
    it('presence and dialog go to the notifier with the watcher and presentity', async () => {
      assert.equal(await take(request({ method: 'SUBSCRIBE', user: BOB, event: 'presence' })), undefined);
      await take(request({ method: 'SUBSCRIBE', user: BOB, event: 'dialog' }));
      assert.deepEqual(notifier.subscribed, [
        { event: 'presence', watcher: ALICE, presentity: BOB },
        { event: 'dialog', watcher: ALICE, presentity: BOB },
      ]);
      assert.equal(service.counters.subscribes, 2);
    });

    it('RFC 6665 §8.2.1: an unknown package, or no Event header, is 489 with Allow-Events, and nothing is subscribed', async () => {
      const a = await take(request({ method: 'SUBSCRIBE', user: BOB, event: 'reg' }));
      assert.equal(a?.status, 489);
      assert.equal(header(a, 'allow-events'), 'presence, dialog, message-summary');
      const none = await take(request({ method: 'SUBSCRIBE', user: BOB, event: undefined }));
      assert.equal(none?.status, 489);
      assert.deepEqual(notifier.subscribed, []);
      assert.equal(service.counters.refused, 2);
    });

    it('message-summary goes to the voicemail backends when they are configured, else to the notifier', async () => {
      let forwarded = 0;
      await take(request({ method: 'SUBSCRIBE', event: 'message-summary' }), ALICE, false, () => { forwarded++; });
      assert.equal(forwarded, 1);
      assert.deepEqual(notifier.subscribed, []);
      assert.equal(service.counters.forwarded, 1);
      await take(request({ method: 'SUBSCRIBE', event: 'message-summary' }));
      assert.deepEqual(notifier.subscribed, [{ event: 'message-summary', watcher: ALICE, presentity: ALICE }]);
    });
  });
});
