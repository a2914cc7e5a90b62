import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log/index.js';
import { NameAddr, parseUri, type PushParams, type PushProvider } from '../../../src/sip/index.js';
import type { Binding } from '../../../registrar/index.js';
import { PushService } from '../../../push/push-service.js';
import { isSameDevice } from '../../../registrar/index.js';
import type { PushPayload, PushProviderClient, PushResult } from '../../../push/types.js';

function binding(contact: string, over: Partial<Binding> = {}): Binding {
  const uri = parseUri(contact);
  return {
    aor: 'sip:bob@example.com', contact: new NameAddr(uri), contactUri: contact, expiresAt: Date.now() + 60_000, callId: 'reg', cseq: 1,
    received: { protocol: 'wss', address: '127.0.0.1', port: 5000 }, updatedAt: Date.now(),
    push: { provider: 'apns', prid: 'device-token-1234567890' }, ...over,
  } as Binding;
}

class FakeProvider implements PushProviderClient {
  readonly sent: Array<{ device: PushParams; payload: PushPayload }> = [];
  answer: PushResult = { ok: true, status: 200 };
  constructor(readonly provider: PushProvider) {}
  async send(device: PushParams, payload: PushPayload): Promise<PushResult> {
    this.sent.push({ device, payload });
    return this.answer;
  }
  async close(): Promise<void> {}
}

function service(wakeTimeoutMs = 2000, includeContent = false) {
  const apns = new FakeProvider('apns');
  const listeners = new Set<(b: Binding) => void>();
  const forgotten: Binding[] = [];
  const push = new PushService({
    providers: new Map([['apns', apns]]),
    onBinding: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    forget: (b) => forgotten.push(b),
    sameDevice: isSameDevice,
    wakeTimeoutMs,
    includeContent,
    logger: silentLogger(),
  });
  const register = (b: Binding): void => {
    for (const l of [...listeners]) l(b);
  };
  return { push, apns, register, forgotten, listeners };
}

const call = { callId: 'call-1', aor: 'bob@example.com', from: 'sip:alice@example.com', fromName: 'Alice' };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('push call server', () => {
  it('one push per device per call: a second wake of the same device for the call joins the first', async () => {
    const { push, apns, register } = service();
    const asleep = binding('sip:bob@10.0.0.9;transport=ws');
    const signal = new AbortController().signal;
    const first = push.wake(asleep, call, signal);
    const second = push.wake(asleep, call, signal);
    await tick();
    assert.equal(apns.sent.length, 1);
    assert.equal(apns.sent[0]!.payload.kind, 'call');
    const fresh = binding('sip:bob@10.0.0.10;transport=ws');
    register(fresh);
    assert.equal(await first, fresh);
    assert.equal(await second, fresh);
    assert.equal(push.stats().woken, 1);
    assert.deepEqual(push.stats().byProvider, { apns: { ok: 1, failed: 0 } });
  });

  it('the wait ends at the first REGISTER of the same device: another device\'s REGISTER does not count, a later refresh changes nothing', async () => {
    const { push, register, listeners } = service();
    const asleep = binding('sip:bob@10.0.0.9;transport=ws');
    const waiting = push.wake(asleep, call, new AbortController().signal);
    await tick();
    register(binding('sip:bob@10.0.0.11', { push: { provider: 'apns', prid: 'another-device-token' } }));
    const fresh = binding('sip:bob@10.0.0.12;transport=ws');
    register(fresh);
    assert.equal(await waiting, fresh);
    assert.equal(listeners.size, 0, 'no longer listening');
  });


  it('a device that does not register in time: undefined after the wake timeout, then a cancel push', async () => {
    const { push, apns } = service(50);
    const result = await push.wake(binding('sip:bob@10.0.0.9'), call, new AbortController().signal);
    assert.equal(result, undefined);
    await tick();
    assert.deepEqual(apns.sent.map((s) => s.payload.kind), ['call', 'cancel']);
    assert.equal(push.stats().timedOut, 1);
  });

  it('the call decided elsewhere (abort): the pushed device gets a cancel push', async () => {
    const { push, apns } = service();
    const decided = new AbortController();
    const waiting = push.wake(binding('sip:bob@10.0.0.9'), call, decided.signal);
    await tick();
    decided.abort();
    assert.equal(await waiting, undefined);
    await tick();
    assert.deepEqual(apns.sent.map((s) => s.payload.kind), ['call', 'cancel']);
    assert.equal(apns.sent[1]!.payload.id, 'call-1');
  });

  it('a dead token (unregistered) ends the wait at once, removes the push binding and sends no cancel push', async () => {
    const { push, apns, forgotten } = service();
    apns.answer = { ok: false, status: 410, reason: 'Unregistered', unregistered: true };
    const device = binding('sip:bob@10.0.0.9');
    assert.equal(await push.wake(device, call, new AbortController().signal), undefined);
    await tick();
    assert.deepEqual(forgotten, [device]);
    assert.deepEqual(apns.sent.map((s) => s.payload.kind), ['call']);
    assert.deepEqual(push.stats().failed, { Unregistered: 1 });
    assert.deepEqual(push.stats().byProvider, { apns: { ok: 0, failed: 1 } });
  });


  it('a message push names the sender and carries the text only with push.includeContent', async () => {
    const message = { id: 'm1', aor: 'bob@example.com', from: 'sip:alice@example.com', fromName: 'Alice', body: 'see you at 8' };
    const off = service();
    await off.push.message(binding('sip:bob@10.0.0.9'), message);
    assert.deepEqual(off.apns.sent[0]!.payload, { id: 'm1', aor: 'bob@example.com', from: 'sip:alice@example.com', fromName: 'Alice', kind: 'message' });
    const on = service(2000, true);
    await on.push.message(binding('sip:bob@10.0.0.9'), message);
    assert.equal(on.apns.sent[0]!.payload.body, 'see you at 8');
  });
});
