/**
 * Chat delivery per device (messaging/delivery.ts) on a real SQLite store, with the stack's sendRequest
 * played by the test (the unit under test is the delivery layer): order, once per device, the device that
 * is not reachable now, the message a device refuses for good, the sender's own device, sleeping devices
 * and a cluster's ownership of devices.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log/index.js';
import { SipResponse, parseUri, type SipRequest } from '../../../src/sip/index.js';
import type { ClientTransactionUser } from '../../../src/transaction/index.js';
import type { Binding } from '../../../registrar/index.js';
import type { SqlStore } from '../../../platform/store/index.js';
import { Delivery } from '../../../messaging/delivery.js';
import { type DeviceDirectory, deviceKey } from '../../../messaging/devices.js';
import { openTempStore } from '../../helpers/temp-store.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

function binding(aor: string, contact: string, extra: Partial<Binding> = {}): Binding {
  return {
    aor: `sip:${aor}`,
    contact: { uri: parseUri(contact) } as Binding['contact'],
    contactUri: contact,
    expiresAt: Date.now() + 3_600_000,
    callId: 'c',
    cseq: 1,
    received: { protocol: 'udp', address: '127.0.0.1', port: 5070 },
    updatedAt: Date.now(),
    ...extra,
  } as Binding;
}

interface Sent {
  request: SipRequest;
  contact: string;
}

describe('chat delivery to devices', () => {
  let store: SqlStore;
  let close: () => Promise<void>;
  let sent: Sent[];
  /** The status each device answers with (by contact URI); 200 by default. */
  let answer: Map<string, number>;
  let bindings: Binding[];
  let asleep: Set<Binding>;
  let pushes: string[];
  let listeners: Array<(b: Binding) => void>;
  let delivery: Delivery;
  let conversation: string;

  const devices = (): DeviceDirectory => ({
    lookup: (aor) => bindings.filter((b) => b.aor === aor),
    isAsleep: (b) => asleep.has(b),
    target: (b) => ({ uri: b.contact.uri, destination: { protocol: 'udp', address: '127.0.0.1', port: 5070 } }),
    onBinding: (l) => {
      listeners.push(l);
      return () => undefined;
    },
    push: (b, payload) => {
      pushes.push(`${b.contactUri} ${payload.id}`);
      return Promise.resolve();
    },
  });

  function makeDelivery(): Delivery {
    const d = new Delivery({
      stack: {
        sendRequest: (request: SipRequest, _destination: unknown, user: ClientTransactionUser) => {
          const contact = request.uri;
          sent.push({ request, contact });
          const status = answer.get(contact) ?? 200;
          setImmediate(() => user.onResponse(new SipResponse({ status, reason: 'x' }), undefined as never));
          return undefined as never;
        },
      },
      repo: store.messages,
      devices: devices(),
      render: (entry) => Promise.resolve({ from: `sip:${entry.message.sender}`, to: `sip:${entry.user}`, contentType: 'text/plain', body: entry.message.body }),
      timeoutMs: 1000,
      logger: silentLogger(),
    });
    d.start();
    return d;
  }

  async function post(text: string, sender = ALICE, originDevice?: string): Promise<void> {
    await store.messages.addMessage({
      id: `id${text.replace(/\W/g, '')}`, conversationId: conversation, kind: 'text', sender, contentType: 'text/plain', body: Buffer.from(text), originDevice, createdAt: Date.now(),
    }, [BOB, ALICE]);
  }

  const bodies = (contact: string): string[] => sent.filter((s) => s.contact === contact).map((s) => s.request.body.toString());

  beforeEach(async () => {
    ({ store, close } = await openTempStore());
    sent = [];
    answer = new Map();
    bindings = [];
    asleep = new Set();
    pushes = [];
    listeners = [];
    conversation = 'd-aaaaaaaaaaaaaaaaaaaaaa';
    await store.messages.createConversation({ id: conversation, kind: 'direct', createdBy: ALICE, createdAt: Date.now() }, [{ user: ALICE, role: 'member' }, { user: BOB, role: 'member' }]);
    delivery = makeDelivery();
  });
  afterEach(async () => {
    delivery.stop();
    await close();
  });

  it('every device of the user gets the rows in order, once each, one at a time', async () => {
    bindings = [binding(BOB, 'sip:bob@127.0.0.1:5071'), binding(BOB, 'sip:bob@127.0.0.1:5072')];
    for (const t of ['one', 'two', 'three']) await post(t);
    delivery.kick(BOB);
    await delivery.idle();
    assert.deepEqual(bodies('sip:bob@127.0.0.1:5071'), ['one', 'two', 'three']);
    assert.deepEqual(bodies('sip:bob@127.0.0.1:5072'), ['one', 'two', 'three']);
    delivery.kick(BOB);
    await delivery.idle();
    assert.equal(sent.length, 6, 'a second kick sends nothing again');
    const m = sent[0]!.request;
    assert.equal(m.method, 'MESSAGE');
    assert.equal(m.get('x-message-id'), 'idone');
    assert.ok(m.get('date') !== undefined);
  });

  it('a device answering 480 stops its stream there; its next REGISTER sends the rest from that row', async () => {
    const phone = binding(BOB, 'sip:bob@127.0.0.1:5071');
    bindings = [phone];
    answer.set(phone.contactUri, 480);
    await post('first');
    await post('second');
    delivery.kick(BOB);
    await delivery.idle();
    assert.deepEqual(bodies(phone.contactUri), ['first']);
    answer.delete(phone.contactUri);
    for (const l of listeners) l(phone);
    await delivery.idle();
    assert.deepEqual(bodies(phone.contactUri), ['first', 'first', 'second']);
  });

  it('a row a device refuses for good (415) is passed over: the rows after it still arrive', async () => {
    const phone = binding(BOB, 'sip:bob@127.0.0.1:5071');
    bindings = [phone];
    await post('first');
    answer.set(phone.contactUri, 415);
    delivery.kick(BOB);
    await delivery.idle();
    answer.delete(phone.contactUri);
    await post('second');
    delivery.kick(BOB);
    await delivery.idle();
    assert.deepEqual(bodies(phone.contactUri), ['first', 'second']);
    assert.deepEqual((await store.messages.receipts(1)).length, 0, 'a refused row is not delivered');
    assert.equal((await store.messages.receipts(2))[0]?.user, BOB);
  });

  it('the sender\'s own device gets no copy of its message; its other devices do', async () => {
    const desk = binding(ALICE, 'sip:alice@127.0.0.1:5081');
    const mobile = binding(ALICE, 'sip:alice@127.0.0.1:5082');
    bindings = [desk, mobile];
    await post('from the desk', ALICE, deviceKey(desk));
    delivery.kick(ALICE);
    await delivery.idle();
    assert.deepEqual(bodies(desk.contactUri), []);
    assert.deepEqual(bodies(mobile.contactUri), ['from the desk']);
  });

  it('a sleeping push device is pushed, not sent to; it gets the row when it registers again', async () => {
    const app = binding(BOB, 'sip:bob@127.0.0.1:5091', { instanceId: '<urn:uuid:1>' });
    bindings = [app];
    asleep.add(app);
    await post('wake up');
    delivery.kick(BOB, { id: 'idwakeup', from: `sip:${ALICE}` });
    await delivery.idle();
    assert.deepEqual(pushes, [`${app.contactUri} idwakeup`]);
    assert.equal(sent.length, 0);
    const woken = binding(BOB, 'sip:bob@127.0.0.1:6000', { instanceId: '<urn:uuid:1>' });
    bindings = [woken];
    for (const l of listeners) l(woken);
    await delivery.idle();
    assert.deepEqual(bodies(woken.contactUri), ['wake up']);
  });

  it('in a cluster a worker delivers only to the devices it owns, and tells the others what it stored', async () => {
    const mine = binding(BOB, 'sip:bob@127.0.0.1:5071');
    const theirs = binding(BOB, 'sip:bob@127.0.0.1:5072');
    bindings = [mine, theirs];
    const announced: string[][] = [];
    delivery.setCluster({ owns: (b) => b === mine, announce: (users) => announced.push(users) });
    await post('hello');
    delivery.announce([BOB]);
    delivery.kick(BOB);
    await delivery.idle();
    assert.deepEqual(bodies(mine.contactUri), ['hello']);
    assert.deepEqual(bodies(theirs.contactUri), []);
    assert.deepEqual(announced, [[BOB]]);
  });
});
