import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { responseDestination } from '../../../src/transaction/index.js';
import { flow, makeRequest } from './fixtures.js';

const via = (transport: string, sentBy: string, params = '') => makeRequest('OPTIONS', { transport, sentBy, viaParams: params }).topVia!;

describe('responseDestination (RFC 3261 §18.2.2, RFC 3581 §4)', () => {
  it('UDP: to received and the rport value, on the request flow when that is where it came from', () => {
    const f = flow('udp', { address: '198.51.100.7', port: 40000 });
    assert.deepEqual(responseDestination(via('UDP', '10.0.0.2:5060', ';received=198.51.100.7;rport=40000'), f), {
      protocol: 'udp', address: '198.51.100.7', port: 40000, flowId: f.id,
    });
  });

  it('UDP: without an rport value, to received and the sent-by port, or 5060', () => {
    const f = flow('udp', { address: '198.51.100.7', port: 40000 });
    assert.deepEqual(responseDestination(via('UDP', '10.0.0.2:5070', ';received=198.51.100.7;rport'), f), {
      protocol: 'udp', address: '198.51.100.7', port: 5070,
    });
    assert.deepEqual(responseDestination(via('UDP', '10.0.0.2', ';received=198.51.100.7'), f), {
      protocol: 'udp', address: '198.51.100.7', port: 5060,
    });
  });

  it('UDP: maddr wins, with the sent-by port or 5060', () => {
    const f = flow('udp');
    assert.deepEqual(responseDestination(via('UDP', 'host.example.com:5080', ';maddr=239.255.255.1;received=198.51.100.7;rport=1'), f), {
      protocol: 'udp', address: '239.255.255.1', port: 5080,
    });
  });

  it('UDP: without received, the sent-by host; IPv6 references lose their brackets', () => {
    const f = flow('udp', { address: '2001:db8::9', port: 5060 });
    assert.deepEqual(responseDestination(via('UDP', '[2001:db8::9]:5060'), f), {
      protocol: 'udp', address: '2001:db8::9', port: 5060, flowId: f.id,
    });
  });

  it('reliable transports reuse the flow, with received and the sent-by port (default 5060, 5061 for TLS) as fallback', () => {
    const tcp = flow('tcp', { address: '198.51.100.7', port: 51000 });
    assert.deepEqual(responseDestination(via('TCP', '10.0.0.2', ';received=198.51.100.7;rport=51000'), tcp), {
      protocol: 'tcp', address: '198.51.100.7', port: 5060, flowId: tcp.id,
    });
    const tls = flow('tls', { address: '198.51.100.7', port: 51000 });
    assert.deepEqual(responseDestination(via('TLS', 'client.example.com', ';received=198.51.100.7'), tls), {
      protocol: 'tls', address: '198.51.100.7', port: 5061, flowId: tls.id,
    });
    const ws = flow('wss', { address: '198.51.100.7', port: 51000 });
    assert.equal(responseDestination(via('WSS', 'df7jal23ls0d.invalid', ';received=198.51.100.7;rport=51000'), ws).flowId, ws.id);
  });

  it('without a Via it answers to where the request came from', () => {
    const f = flow('udp', { address: '198.51.100.7', port: 40000 });
    assert.deepEqual(responseDestination(undefined, f), { protocol: 'udp', address: '198.51.100.7', port: 40000, flowId: f.id });
  });
});
