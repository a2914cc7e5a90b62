/**
 * Targets that come later (RFC 8599 §5.6: the proxy holds an INVITE while a push wakes a device, and forwards
 * it when the device registers again): the response context stays open for them, without a 480 at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUri } from '../../../src/sip/index.js';
import { cancelFor, harness, request, udp } from './harness.js';

const A = udp('203.0.113.1');
const B = udp('203.0.113.2');
const targetA = { uri: parseUri('sip:bob@203.0.113.1'), destination: A };
const targetB = { uri: parseUri('sip:bob@203.0.113.2'), destination: B };

const finals = (h: Awaited<ReturnType<typeof harness>>): number[] => h.responses().filter((r) => r.cseq?.method === 'INVITE' && r.status >= 200).map((r) => r.status);

describe('ProxyCore: targets awaited while their devices wake (RFC 8599 §5.6)', () => {
  it('with no target yet and one awaited, the caller hears nothing final until the device arrives; then it rings there and its 200 goes up', async () => {
    const h = await harness();
    h.policy.options = { awaiting: 1 };
    h.receive(request());
    assert.deepEqual(finals(h), [], 'no 480 while a device is waking');
    const context = h.policy.contexts[0]!;
    assert.equal(context.open, true);
    assert.equal(context.arrive([targetA]), true);
    const invite = h.requests('INVITE')[0]!;
    h.answer(invite, 200);
    assert.deepEqual(finals(h), [200]);
  });

  it('when the awaited device does not come, the caller gets 480', async () => {
    const h = await harness();
    h.policy.options = { awaiting: 1 };
    h.receive(request());
    h.policy.contexts[0]!.giveUp();
    assert.deepEqual(finals(h), [480]);
    assert.equal(h.requests('INVITE').length, 0);
  });

  it('a device awake from the start rings at once; its failure waits for the device being woken, whose answer wins', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.policy.options = { awaiting: 1 };
    h.receive(request());
    h.answer(h.requests('INVITE')[0]!, 486);
    assert.deepEqual(finals(h), [], 'the context waits for the other device');
    h.policy.contexts[0]!.arrive([targetB]);
    h.answer(h.requests('INVITE')[1]!, 200);
    assert.deepEqual(finals(h), [200]);
  });

  it('a CANCEL while only waking devices are awaited answers 487 at once, and a device arriving later is not called', async () => {
    const h = await harness();
    h.policy.options = { awaiting: 1 };
    h.receive(request());
    h.receive(cancelFor());
    assert.deepEqual(finals(h), [487]);
    const context = h.policy.contexts[0]!;
    assert.equal(context.open, false);
    assert.equal(context.arrive([targetA]), false);
    assert.equal(h.requests('INVITE').length, 0);
  });

  it('after a 2xx from the device that was awake, a woken device arriving late is not called', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.policy.options = { awaiting: 1 };
    h.receive(request());
    h.answer(h.requests('INVITE')[0]!, 200);
    assert.deepEqual(finals(h), [200]);
    assert.equal(h.policy.contexts[0]!.arrive([targetB]), false);
    assert.equal(h.requests('INVITE').length, 1);
  });
});
