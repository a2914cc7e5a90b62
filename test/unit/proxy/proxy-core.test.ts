import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SipRequest, SipResponse, SipUri, parseMessage, parseUri, serializeMessage } from '../../../src/sip/index.js';
import type { InviteServerTransaction, ServerTransaction } from '../../../src/transaction/index.js';
import { PROXY_IP, cancelFor, flowOf, harness, request, tick, udp } from './harness.js';

const A = udp('203.0.113.1');
const B = udp('203.0.113.2');
const targetA = { uri: parseUri('sip:bob@203.0.113.1'), destination: A };
const targetB = { uri: parseUri('sip:bob@203.0.113.2'), destination: B };

/** Statuses sent upstream, 100 Trying of the server transaction included. */
function upstream(h: Awaited<ReturnType<typeof harness>>, method = 'INVITE'): number[] {
  return h.responses().filter((r) => r.cseq?.method === method).map((r) => r.status);
}

function to(h: Awaited<ReturnType<typeof harness>>, method: string, address: string) {
  return h.requests(method).filter((s) => s.destination.address === address);
}

describe('ProxyCore: forking (RFC 3261 §16.6, §16.7)', () => {
  it('forwards a copy of the request to every target in parallel, each with its Request-URI and its own branch', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    const invites = h.requests('INVITE');
    assert.equal(invites.length, 2);
    assert.equal(invites[0]!.request.uri, 'sip:bob@203.0.113.1');
    assert.equal(invites[1]!.request.uri, 'sip:bob@203.0.113.2');
    const b0 = invites[0]!.request.topVia!;
    const b1 = invites[1]!.request.topVia!;
    assert.equal(b0.host, PROXY_IP);
    assert.notEqual(b0.branch, b1.branch);
    assert.equal(invites[0]!.request.via.length, 2, 'our Via on top of the caller\'s');
  });

  it('MUST decrement Max-Forwards by one, and add 70 when it is absent (§16.6 step 3)', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.receive(request());
    assert.equal(h.requests('INVITE')[0]!.request.get('Max-Forwards'), '69');
    h.receive(request({ maxForwards: null, branch: 'z9hG4bKother', callId: 'other' }));
    assert.equal(h.requests('INVITE')[1]!.request.get('Max-Forwards'), '70');
  });

  it('answers 483 to a request with Max-Forwards 0 and does not forward it (§16.3 step 3)', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.receive(request({ method: 'MESSAGE', maxForwards: 1 }));
    const copy = h.requests('MESSAGE')[0]!.request;
    assert.equal(copy.get('Max-Forwards'), '0');
    // The stack rejects Max-Forwards 0 before any module sees it; forward() refuses it too.
    const incoming = h.stack.transactions.receiveRequest(copy, flowOf(A));
    assert.equal(incoming.kind, 'new');
    const context = h.proxy.forward(copy, (incoming as { transaction: ServerTransaction }).transaction, [targetB]);
    assert.equal(context.final?.status, 483);
    assert.equal(h.requests('MESSAGE').length, 1);
  });

  it('absorbs 100, forwards other provisional responses at once without our Via, forwards the first 2xx and CANCELs the other branch', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    const [ia, ib] = h.requests('INVITE');
    h.answer(ia!, 100);
    h.answer(ib!, 100);
    assert.deepEqual(upstream(h), [100], 'only our own 100 Trying');
    h.answer(ia!, 180);
    const ringing = h.responses().at(-1)!;
    assert.equal(ringing.status, 180);
    assert.equal(ringing.via.length, 1);
    assert.equal(ringing.topVia!.host, '198.51.100.7');
    h.answer(ib!, 200);
    assert.deepEqual(upstream(h), [100, 180, 200]);
    const cancels = h.requests('CANCEL');
    assert.equal(cancels.length, 1);
    assert.equal(cancels[0]!.destination.address, A.address);
    assert.equal(cancels[0]!.request.topVia!.branch, ia!.request.topVia!.branch, '§9.1: same branch as the INVITE');
    h.answer(ia!, 487);
    assert.deepEqual(upstream(h), [100, 180, 200], 'the 487 of the cancelled branch never goes upstream');
    assert.equal(h.proxy.size, 0);
  });

  it('forwards a later 2xx from another branch too: every 2xx of a forked INVITE goes upstream', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    const [ia, ib] = h.requests('INVITE');
    h.answer(ia!, 200, { toTag: 'a' });
    h.answer(ib!, 200, { toTag: 'b' });
    const oks = h.responses().filter((r) => r.status === 200);
    assert.deepEqual(oks.map((r) => r.to!.tag), ['a', 'b']);
  });

  it('waits for a provisional response before CANCELling a branch that has none (§9.1)', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    const [ia, ib] = h.requests('INVITE');
    h.answer(ia!, 200);
    assert.equal(h.requests('CANCEL').length, 0);
    h.answer(ib!, 100);
    assert.equal(to(h, 'CANCEL', B.address).length, 1);
  });

  it('chooses the lowest class when every branch fails: 404 over 486 (both 4xx, the lower code)', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    const [ia, ib] = h.requests('INVITE');
    h.answer(ia!, 486);
    assert.deepEqual(upstream(h), [100]);
    h.answer(ib!, 404);
    assert.deepEqual(upstream(h), [100, 404]);
  });

  it('prefers a class lower than another: 302 over 404, and a 6xx over anything', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    const [ia, ib] = h.requests('INVITE');
    h.answer(ia!, 404);
    h.answer(ib!, 302);
    assert.deepEqual(upstream(h), [100, 302]);

    const g = await harness();
    g.policy.route = () => [targetA, targetB];
    g.receive(request());
    const [ga, gb] = g.requests('INVITE');
    g.answer(ga!, 180);
    g.answer(gb!, 603);
    assert.equal(to(g, 'CANCEL', A.address).length, 1, '§16.7 step 5: a 6xx cancels the pending branches');
    g.answer(ga!, 487);
    assert.deepEqual(upstream(g), [100, 180, 603]);
  });

  it('merges the challenges of every 401 and 407 into the one response forwarded (§16.7 step 7)', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    const [ia, ib] = h.requests('INVITE');
    h.answer(ia!, 407, { headers: [['Proxy-Authenticate', 'Digest realm="a.example", nonce="1"']] });
    h.answer(ib!, 401, { headers: [['WWW-Authenticate', 'Digest realm="b.example", nonce="2"']] });
    const final = h.responses().at(-1)!;
    assert.equal(final.status, 401);
    assert.deepEqual(final.getAll('WWW-Authenticate'), ['Digest realm="b.example", nonce="2"']);
    assert.deepEqual(final.getAll('Proxy-Authenticate'), ['Digest realm="a.example", nonce="1"']);
  });

  it('converts a selected 503 into 500 (§16.7 step 6)', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.receive(request());
    h.answer(h.requests('INVITE')[0]!, 503);
    assert.deepEqual(upstream(h), [100, 500]);
  });

  it('answers 408 when every branch timed out (Timer B)', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    h.clock.tick(64 * 500);
    assert.deepEqual(upstream(h), [100, 408]);
    assert.equal(h.proxy.size, 0);
  });

  it('counts a transport error as a 503 from that branch, and a target that cannot be resolved as a 480', async () => {
    const h = await harness();
    h.policy.route = () => (h.transport.failNextSends(1), [targetA]);
    h.receive(request());
    await tick();
    assert.deepEqual(upstream(h), [100, 500], 'the 503 branch result becomes 500 upstream');

    const g = await harness();
    g.policy.route = () => [{ uri: parseUri('sip:x@df7.invalid;transport=ws') }];
    g.receive(request());
    await tick();
    assert.deepEqual(upstream(g), [100, 480]);
  });

  it('answers 480 to an empty target set', async () => {
    const h = await harness();
    h.policy.route = () => [];
    h.receive(request());
    assert.deepEqual(upstream(h), [100, 480]);
    assert.equal(h.proxy.size, 0);
  });

  it('resolves the next hop from the Request-URI when the target has no destination, and from the Route of its Path', async () => {
    const h = await harness();
    h.policy.route = () => [
      { uri: parseUri('sip:bob@203.0.113.5:5070;transport=tcp') },
      { uri: parseUri('sip:carol@10.0.0.9'), route: ['<sip:edge@203.0.113.6;lr>'] },
    ];
    h.receive(request());
    await tick();
    const invites = h.requests('INVITE');
    assert.deepEqual(invites.map((i) => i.destination), [
      { protocol: 'tcp', address: '203.0.113.5', port: 5070 },
      { protocol: 'udp', address: '203.0.113.6', port: 5060 },
    ]);
    assert.deepEqual(invites[1]!.request.route.map(String), ['<sip:edge@203.0.113.6;lr>']);
  });

  it('adds branches from the failover callback when every branch failed (serial forking)', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    const seen: number[] = [];
    h.policy.options = { failover: (best, attempt) => (seen.push(best.status, attempt), attempt === 1 ? [targetB] : undefined) };
    h.receive(request());
    h.answer(h.requests('INVITE')[0]!, 503);
    assert.deepEqual(seen, [500, 1]);
    const ib = to(h, 'INVITE', B.address)[0]!;
    h.answer(ib, 200);
    assert.deepEqual(upstream(h), [100, 200]);
  });

  it('gives the failover callback the branch\'s own status, 503, while the caller would see 500', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    const seen: number[] = [];
    h.policy.options = { failover: (best, _attempt, status) => (seen.push(best.status, status), undefined) };
    h.receive(request());
    h.answer(h.requests('INVITE')[0]!, 503);
    assert.deepEqual(seen, [500, 503]);
    assert.deepEqual(upstream(h), [100, 500]);
  });

  it('ends a branch as a 408 when nothing, not even 100 Trying, came back within responseTimeoutMs, and fails over', async () => {
    const h = await harness();
    h.policy.route = () => [{ ...targetA, responseTimeoutMs: 3000 }];
    const seen: number[] = [];
    h.policy.options = { failover: (_best, attempt, status) => (seen.push(status), attempt === 1 ? [targetB] : undefined) };
    h.receive(request());
    h.clock.tick(2999);
    assert.equal(to(h, 'INVITE', B.address).length, 0, 'still waiting for the first backend');
    h.clock.tick(1);
    assert.deepEqual(seen, [408]);
    const ib = to(h, 'INVITE', B.address)[0]!;
    h.answer(ib, 200);
    assert.deepEqual(upstream(h), [100, 200]);
  });

  it('keeps a branch that answered 100 Trying past responseTimeoutMs (only a silent next hop is given up)', async () => {
    const h = await harness();
    h.policy.route = () => [{ ...targetA, responseTimeoutMs: 3000 }];
    const seen: number[] = [];
    h.policy.options = { failover: (_best, _attempt, status) => (seen.push(status), undefined) };
    h.receive(request());
    h.answer(h.requests('INVITE')[0]!, 100);
    h.clock.tick(10_000);
    assert.deepEqual(seen, []);
    h.answer(h.requests('INVITE')[0]!, 200);
    assert.deepEqual(upstream(h), [100, 200]);
  });

  it('adds a target\'s own header fields to its copy only', async () => {
    const h = await harness();
    h.policy.route = () => [{ ...targetA, headers: [['P-Asserted-Identity', '<sip:alice@example.com>']] }, targetB];
    h.receive(request());
    assert.equal(to(h, 'INVITE', A.address)[0]!.request.get('p-asserted-identity'), '<sip:alice@example.com>');
    assert.equal(to(h, 'INVITE', B.address)[0]!.request.get('p-asserted-identity'), undefined);
  });

  it('throws ProxyError PROXY_ERR_STOPPED when asked to forward after stop()', async () => {
    const h = await harness();
    let tx: ServerTransaction | undefined;
    h.policy.route = (_req, t) => ((tx = t), [targetA]);
    h.receive(request());
    h.proxy.stop();
    assert.throws(() => h.proxy.forward(h.requests('INVITE')[0]!.request, tx!, [targetB]), { name: 'ProxyError', code: 'PROXY_ERR_STOPPED' });
  });

  it('forwards a non-INVITE request and relays its first 2xx only', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request({ method: 'MESSAGE' }));
    const [ma, mb] = h.requests('MESSAGE');
    h.answer(ma!, 200);
    h.answer(mb!, 200);
    assert.deepEqual(upstream(h, 'MESSAGE'), [200]);
    assert.equal(h.requests('CANCEL').length, 0, 'a non-INVITE request is never CANCELled');
  });
});

describe('ProxyCore: CANCEL (§16.10) and Timer C (§16.8)', () => {
  it('CANCELs every pending branch when the caller cancels, and sends the callee\'s 487 upstream', async () => {
    const h = await harness();
    h.policy.route = () => [targetA, targetB];
    h.receive(request());
    const [ia, ib] = h.requests('INVITE');
    h.answer(ia!, 180);
    h.answer(ib!, 183);
    h.receive(cancelFor());
    assert.deepEqual(upstream(h, 'CANCEL'), [200]);
    assert.equal(h.requests('CANCEL').length, 2);
    h.answer(ia!, 487);
    assert.deepEqual(upstream(h), [100, 180, 183], 'waits until every branch ended');
    h.answer(ib!, 487);
    assert.deepEqual(upstream(h), [100, 180, 183, 487]);
  });

  it('a CANCEL before any provisional waits for one, then CANCELs that branch', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.receive(request());
    h.receive(cancelFor());
    assert.equal(h.requests('CANCEL').length, 0);
    const ia = h.requests('INVITE')[0]!;
    h.answer(ia, 100);
    assert.equal(h.requests('CANCEL').length, 1);
    h.answer(ia, 487);
    assert.deepEqual(upstream(h), [100, 487]);
  });

  it('a cancelled branch that never answers ends at its timeout, and the caller gets 487', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.receive(request());
    h.receive(cancelFor());
    h.clock.tick(64 * 500);
    assert.equal(h.requests('CANCEL').length, 0);
    assert.deepEqual(upstream(h), [100, 487]);
  });

  it('a CANCELled branch whose callee never answers the CANCEL ends after 64*T1 with 487', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.receive(request());
    h.answer(h.requests('INVITE')[0]!, 180);
    h.receive(cancelFor());
    assert.equal(h.requests('CANCEL').length, 1);
    h.clock.tick(64 * 500);
    assert.deepEqual(upstream(h), [100, 180, 487]);
  });

  it('cancel() says false for an INVITE it is no longer forwarding', async () => {
    const h = await harness();
    let tx: ServerTransaction | undefined;
    h.policy.route = (_req, t) => ((tx = t), [targetA]);
    h.receive(request());
    assert.equal(h.proxy.contextFor(tx!)?.branches.length, 1);
    h.answer(h.requests('INVITE')[0]!, 404);
    assert.equal(h.proxy.size, 0);
    assert.equal(h.proxy.cancel(tx as InviteServerTransaction), false);
  });

  it('when Timer C fires after a provisional response it MUST CANCEL the branch; the caller gets 408', async () => {
    const h = await harness({ timerCMs: 181_000 });
    h.policy.route = () => [targetA];
    h.receive(request());
    const ia = h.requests('INVITE')[0]!;
    h.answer(ia, 180);
    h.clock.tick(180_000);
    h.answer(ia, 183);
    h.clock.tick(180_000);
    assert.equal(h.requests('CANCEL').length, 0, 'each provisional response restarts Timer C');
    h.clock.tick(1_000);
    assert.equal(h.requests('CANCEL').length, 1);
    h.answer(ia, 487);
    assert.deepEqual(upstream(h), [100, 180, 183, 408]);
  });

  it('when Timer C fires without a provisional response the branch behaves as if it got a 408', async () => {
    const h = await harness({ timerCMs: 10_000 });
    h.policy.route = () => [{ uri: parseUri('sip:bob@203.0.113.1;transport=tcp'), destination: { protocol: 'tcp', address: '203.0.113.1', port: 5060 } }];
    h.receive(request());
    h.clock.tick(10_000);
    assert.equal(h.requests('CANCEL').length, 0);
    assert.deepEqual(upstream(h), [100, 408]);
  });
});

describe('ProxyCore: loops (§16.3 step 4) and stray responses (§16.7)', () => {
  it('answers 482 to a request that comes back unchanged with a Via of ours', async () => {
    const h = await harness();
    h.policy.route = (req) => [{ uri: req.ruri, destination: A }];
    h.receive(request());
    const looped = h.requests('INVITE')[0]!.request;
    h.receive(serializeMessage(looped).toString('latin1'), flowOf(A));
    const last = h.responses().at(-1)!;
    assert.equal(last.status, 482);
    assert.equal(h.requests('INVITE').length, 1);
  });

  it('forwards a spiral: the request came back but was retargeted', async () => {
    const h = await harness();
    h.policy.route = (req) => (req.uri === 'sip:bob@example.com' ? [{ uri: parseUri('sip:bob@other.example'), destination: A }] : [targetB]);
    h.receive(request());
    const spiral = h.requests('INVITE')[0]!.request;
    h.receive(serializeMessage(spiral).toString('latin1'), flowOf(A));
    assert.equal(h.requests('INVITE').length, 2);
    assert.equal(h.requests('INVITE')[1]!.destination.address, B.address);
  });

  it('forwards a stray 2xx to INVITE statelessly to the next Via, using its received and rport', async () => {
    const h = await harness();
    const text = [
      'SIP/2.0 200 OK',
      `Via: SIP/2.0/UDP ${PROXY_IP}:5060;branch=z9hG4bKgone.x;rport`,
      'Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bKcaller1;received=198.51.100.7;rport=40001',
      'To: <sip:bob@example.com>;tag=b',
      'From: <sip:alice@example.com>;tag=a',
      'Call-ID: stray',
      'CSeq: 1 INVITE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    h.receive(text, flowOf(A));
    const sent = h.transport.sent.at(-1)!;
    assert.ok(sent.message instanceof SipResponse);
    assert.equal(sent.message.status, 200);
    assert.equal(sent.message.via.length, 1);
    assert.deepEqual(sent.destination, { protocol: 'udp', address: '198.51.100.7', port: 40001 });

    const before = h.transport.sent.length;
    h.receive(text.replace('200 OK', '486 Busy Here'), flowOf(A));
    h.receive(text.replace('CSeq: 1 INVITE', 'CSeq: 1 BYE'), flowOf(A));
    assert.equal(h.transport.sent.length, before, 'anything else is dropped');
  });

  it('forwards the ACK of a 2xx statelessly with a branch that is the same for its retransmissions', async () => {
    const h = await harness();
    const ack = request({ method: 'ACK', toTag: 'b' });
    const first = parseMessage(Buffer.from(ack)) as SipRequest;
    const again = parseMessage(Buffer.from(ack)) as SipRequest;
    assert.equal(await h.proxy.forwardStateless(first, A), true);
    assert.equal(await h.proxy.forwardStateless(again, A), true);
    const acks = h.requests('ACK');
    assert.equal(acks.length, 2);
    assert.equal(acks[0]!.request.get('Max-Forwards'), '69');
    assert.equal(acks[0]!.request.topVia!.branch, acks[1]!.request.topVia!.branch);
    assert.ok(acks[0]!.request.topVia!.isRfc3261Branch);
  });
});

describe('ProxyCore: Record-Route with flow tokens (RFC 5658, RFC 5626 §5.2)', () => {
  it('inserts two Record-Route values when a WebSocket caller calls a UDP callee: the top one faces the callee', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    const ws = flowOf({ protocol: 'ws', address: '198.51.100.20', port: 50123, flowId: 'ws:t-1' });
    h.receive(request({ transport: 'WS', sentBy: 'df7jal23ls0d.invalid' }), ws);
    const rr = h.requests('INVITE')[0]!.request.recordRoute;
    assert.equal(rr.length, 2);
    const top = rr[0]!.uri as SipUri;
    const second = rr[1]!.uri as SipUri;
    assert.equal(`${top.host}:${top.port}`, `${PROXY_IP}:5060`);
    assert.equal(top.transport, 'udp');
    assert.ok(top.lr);
    assert.equal(`${second.host}:${second.port}`, `${PROXY_IP}:8080`);
    assert.equal(second.transport, 'ws');
    assert.deepEqual(h.proxy.recordRoute.check(second.user, 'a84b4c76e66710@pc33.example.com'), { valid: true, flowId: 'ws:t-1' });
    assert.equal(h.proxy.recordRoute.check(top.user, 'a84b4c76e66710@pc33.example.com').valid, true, 'a signed marker');
  });

  it('puts the outbound flow in the top value when the target is a registered binding\'s flow', async () => {
    const h = await harness();
    const binding = { protocol: 'ws' as const, address: '198.51.100.30', port: 40000, flowId: 'ws:t-9' };
    h.policy.route = () => [{ uri: parseUri('sip:x@df7.invalid;transport=ws'), destination: binding }];
    h.receive(request());
    const sent = h.requests('INVITE')[0]!;
    assert.deepEqual(sent.destination, binding);
    const [top, second] = sent.request.recordRoute.map((n) => n.uri as SipUri);
    assert.equal(h.proxy.recordRoute.check(top!.user, undefined).flowId, 'ws:t-9');
    assert.equal(second!.transport, 'udp');
    assert.equal(h.proxy.flowDestination('ws:t-9')?.flowId, 'ws:t-9');
    h.proxy.onFlowClosed(flowOf(binding));
    assert.equal(h.proxy.flowDestination('ws:t-9'), undefined);
  });

  it('inserts one Record-Route value when both legs are UDP', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.receive(request());
    const rr = h.requests('INVITE')[0]!.request.recordRoute;
    assert.equal(rr.length, 1);
    assert.equal(String(rr[0]!.uri).endsWith(`@${PROXY_IP}:5060;transport=udp;lr`), true);
  });

  it('does not Record-Route a request that cannot create a dialog, unless asked', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    h.receive(request({ method: 'MESSAGE' }));
    assert.equal(h.requests('MESSAGE')[0]!.request.recordRoute.length, 0);
    h.policy.options = { recordRoute: true };
    h.receive(request({ method: 'MESSAGE', branch: 'z9hG4bKm2', callId: 'm2' }));
    assert.equal(h.requests('MESSAGE')[1]!.request.recordRoute.length, 1);
  });

  it('routes an in-dialog request from the UDP callee to the WebSocket caller over the caller\'s connection', async () => {
    const h = await harness();
    h.policy.route = () => [targetA];
    const ws = flowOf({ protocol: 'ws', address: '198.51.100.20', port: 50123, flowId: 'ws:t-1' });
    h.receive(request({ transport: 'WS', sentBy: 'df7jal23ls0d.invalid' }), ws);
    const rr = h.requests('INVITE')[0]!.request.getAll('Record-Route');
    // The callee's route set is the Record-Route in order (§12.1.1).
    const bye = parseMessage(Buffer.from(request({
      method: 'BYE', uri: 'sip:x@df7jal23ls0d.invalid;transport=ws', sentBy: '203.0.113.1:5060', toTag: 'b', extra: rr.map((v) => `Route: ${v}`),
    }))) as SipRequest;
    const routed = h.proxy.looseRoute(bye);
    assert.deepEqual(routed, { ours: true, verified: true, flow: 'ws:t-1', next: 'ruri' });
    assert.deepEqual(h.proxy.nextHop(bye, routed).destination, { protocol: 'ws', address: '198.51.100.20', port: 50123, flowId: 'ws:t-1' });
    h.proxy.onFlowClosed(ws);
    assert.equal(h.proxy.nextHop(bye, routed).destination, undefined, 'a closed flow falls back to the Request-URI');
  });
});
