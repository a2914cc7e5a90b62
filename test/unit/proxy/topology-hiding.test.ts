/**
 * Topology hiding (proxy.topologyHiding): a trusted backend's Contact, Record-Route and Via values never
 * reach an untrusted phone, and the phone's in-dialog requests are restored before they go on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SipRequest, type SipResponse, SipUri, parseMessage, parseUri, serializeMessage } from '../../../src/sip/index.js';
import { RecordRoute } from '../../../proxy/record-route.js';
import { PROXY_IP, flowOf, harness, request, tick, udp } from './harness.js';

const BACKEND = '10.0.0.2';
const POOL_RR = '<sip:10.0.0.9;lr>';
const trusted = { isTrusted: (address: string) => address === BACKEND };

function text(m: SipRequest | SipResponse): string {
  return serializeMessage(m).toString('latin1');
}

describe('topology hiding: responses from a backend to a phone', () => {
  it('replaces the backend\'s Contact by a URI of ours and removes the pool\'s Record-Route, so no backend address reaches the phone', async () => {
    const h = await harness({ topologyHiding: trusted });
    h.policy.route = () => [{ uri: parseUri(`sip:+4930123@${BACKEND}:5080`), destination: udp(BACKEND, 5080) }];
    h.receive(request());
    const [sent] = h.requests('INVITE');
    const ours = sent!.request.getAll('record-route');
    assert.equal(ours.length, 1);
    h.answer(sent!, 200, { toTag: 'fs', headers: [['Contact', `<sip:mod_sofia@${BACKEND}:5080;transport=udp>`], ['Record-Route', `${POOL_RR}, ${ours[0]}`]] });
    const ok = h.responses().find((r) => r.status === 200)!;
    assert.doesNotMatch(text(ok), /10\.0\.0\./, 'no address of the backend side in the 200 OK');
    const contact = ok.contact[0]!.uri as SipUri;
    assert.equal(contact.host, PROXY_IP);
    assert.match(contact.user!, /^th\./);
    assert.deepEqual(ok.getAll('record-route'), [ours[0]]);

    // The phone's BYE: to that Contact, through our Record-Route; restored before it goes on.
    const bye = parseMessage(Buffer.from(request({ method: 'BYE', uri: contact.toString(), toTag: 'fs', branch: 'z9hG4bKbye1', extra: [`Route: ${ours[0]}`] }))) as SipRequest;
    const routed = h.proxy.looseRoute(bye);
    assert.deepEqual({ ours: routed.ours, verified: routed.verified, next: routed.next }, { ours: true, verified: true, next: 'route' });
    assert.equal(bye.uri, `sip:mod_sofia@${BACKEND}:5080;transport=udp`);
    assert.deepEqual(bye.getAll('route'), [POOL_RR]);
  });

  it('leaves responses alone when it is off (the default), and between two untrusted peers', async () => {
    const off = await harness();
    off.policy.route = () => [{ uri: parseUri(`sip:+4930123@${BACKEND}:5080`), destination: udp(BACKEND, 5080) }];
    off.receive(request());
    off.answer(off.requests('INVITE')[0]!, 200, { headers: [['Contact', `<sip:mod_sofia@${BACKEND}:5080>`]] });
    assert.match(text(off.responses().find((r) => r.status === 200)!), /Contact: <sip:mod_sofia@10\.0\.0\.2:5080>/);

    const phones = await harness({ topologyHiding: trusted });
    phones.policy.route = () => [{ uri: parseUri('sip:bob@203.0.113.5'), destination: udp('203.0.113.5') }];
    phones.receive(request());
    phones.answer(phones.requests('INVITE')[0]!, 200, { headers: [['Contact', '<sip:bob@203.0.113.5>']] });
    assert.equal(phones.responses().find((r) => r.status === 200)!.get('contact'), '<sip:bob@203.0.113.5>');
  });

  it('leaves the Contact of a REGISTER\'s 200 alone: it is the phone\'s own binding, not a remote target', async () => {
    const h = await harness({ topologyHiding: trusted });
    h.policy.route = () => [{ uri: parseUri(`sip:${BACKEND}:5080`), destination: udp(BACKEND, 5080) }];
    h.receive(request({ method: 'REGISTER', uri: 'sip:example.com' }));
    h.answer(h.requests('REGISTER')[0]!, 200, { headers: [['Contact', '<sip:alice@198.51.100.7>;expires=3600']] });
    assert.equal(h.responses().find((r) => r.status === 200)!.get('contact'), '<sip:alice@198.51.100.7>;expires=3600');
  });
});

describe('topology hiding: requests from a backend to a phone', () => {
  it('sends the phone only our Via, our Record-Route and a Contact of ours; the response upstream gets the backend\'s Vias back', async () => {
    const h = await harness({ topologyHiding: trusted });
    h.policy.route = () => [{ uri: parseUri('sip:alice@198.51.100.7'), destination: udp('198.51.100.7') }];
    const invite = [
      'INVITE sip:alice@example.com SIP/2.0',
      `Via: SIP/2.0/UDP ${BACKEND}:5080;branch=z9hG4bKfs1;rport`,
      'Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKpool1',
      'Max-Forwards: 69',
      `Record-Route: ${POOL_RR}`,
      'From: <sip:+4930999@pstn.invalid>;tag=fs',
      'To: <sip:alice@example.com>',
      'Call-ID: did-1@fs',
      'CSeq: 1 INVITE',
      `Contact: <sip:mod_sofia@${BACKEND}:5080>`,
      'Content-Length: 0', '', '',
    ].join('\r\n');
    h.receive(invite, flowOf({ protocol: 'udp', address: BACKEND, port: 5080 }));
    const [sent] = h.requests('INVITE');
    assert.doesNotMatch(text(sent!.request), /10\.0\.0\./, 'no address of the backend side in the INVITE to the phone');
    assert.equal(sent!.request.via.length, 1);
    const contact = sent!.request.contact[0]!.uri as SipUri;
    assert.match(contact.user!, /^th\./);

    h.answer(sent!, 200, { toTag: 'ph', headers: [['Contact', '<sip:alice@198.51.100.7>']] });
    await tick();
    const up = h.transport.sent.find((s) => !s.message.isRequest && (s.message as SipResponse).status === 200)!;
    assert.equal(up.destination.address, BACKEND);
    assert.deepEqual((up.message as SipResponse).via.map((v) => v.branch), ['z9hG4bKfs1', 'z9hG4bKpool1']);

    // The phone's in-dialog request (UAS: route set in Record-Route order) is restored towards the pool.
    const rr = sent!.request.getAll('record-route');
    const bye = parseMessage(Buffer.from(request({ method: 'BYE', uri: contact.toString(), toTag: 'fs', extra: [`Route: ${rr.join(', ')}`] }))) as SipRequest;
    h.proxy.looseRoute(bye);
    assert.equal(bye.uri, `sip:mod_sofia@${BACKEND}:5080`);
    assert.deepEqual(bye.getAll('route'), [POOL_RR]);
  });
});

describe('topology hiding: the ACK of a 2xx from a backend', () => {
  it('goes to the phone statelessly with our Via alone (§16.11), and to a trusted peer with every Via', async () => {
    const h = await harness({ topologyHiding: trusted });
    const rr = h.proxy.recordRoute.values(h.stack, { inbound: flowOf({ protocol: 'udp', address: BACKEND, port: 5080 }), outbound: udp('198.51.100.7') }, 'ack-1@fs');
    const ack = (source: string) => parseMessage(Buffer.from([
      'ACK sip:alice@198.51.100.7 SIP/2.0',
      `Via: SIP/2.0/UDP ${source}:5080;branch=z9hG4bKack1;received=${source}`,
      'Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKpool2',
      'Max-Forwards: 69',
      `Route: ${rr.join(', ')}`,
      'From: <sip:+4930999@pstn.invalid>;tag=fs',
      'To: <sip:alice@example.com>;tag=ph',
      'Call-ID: ack-1@fs',
      'CSeq: 1 ACK',
      'Content-Length: 0', '', '',
    ].join('\r\n'))) as SipRequest;
    const fromBackend = ack(BACKEND);
    assert.equal(h.proxy.looseRoute(fromBackend).verified, true);
    assert.equal(await h.proxy.forwardStateless(fromBackend, udp('198.51.100.7')), true);
    const sent = h.transport.sent.at(-1)!.message as SipRequest;
    assert.equal(sent.via.length, 1);
    assert.doesNotMatch(text(sent), /10\.0\.0\./);

    const fromPhone = ack('198.51.100.8');
    h.proxy.looseRoute(fromPhone);
    await h.proxy.forwardStateless(fromPhone, udp(BACKEND, 5080));
    assert.equal((h.transport.sent.at(-1)!.message as SipRequest).via.length, 3);
  });
});

describe('topology hiding: the sealed Contact', () => {
  it('cannot be read or forged without the secret, and is the same for the same Contact', () => {
    const a = new RecordRoute(Buffer.from('secret a'));
    const b = new RecordRoute(Buffer.from('secret b'));
    const sealed = a.seal(['sip:fs@10.0.0.2:5080', '<sip:10.0.0.9;lr>']);
    assert.doesNotMatch(Buffer.from(sealed.slice(3), 'base64url').toString('latin1'), /10\.0\.0/);
    assert.deepEqual(a.unseal(sealed), ['sip:fs@10.0.0.2:5080', '<sip:10.0.0.9;lr>']);
    assert.equal(a.seal(['sip:fs@10.0.0.2:5080', '<sip:10.0.0.9;lr>']), sealed, 'the same Contact seals to the same URI (180, 200, retransmissions)');
    assert.notEqual(a.seal(['sip:fs@10.0.0.2:5081']), sealed);
    assert.equal(b.unseal(sealed), undefined);
    const flipped = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'B' : 'A') + sealed.slice(-1);
    assert.equal(a.unseal(flipped), undefined);
    assert.equal(a.unseal('th.'), undefined);
  });
});
