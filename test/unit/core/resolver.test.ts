import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUri } from '../../../src/sip/index.js';
import { resolve } from '../../../src/core/resolver.js';

/** A lookup that records the names asked and knows one. */
function fakeDns(): { asked: string[]; lookup: (host: string) => Promise<string | undefined> } {
  const asked: string[] = [];
  return {
    asked,
    lookup: (host) => {
      asked.push(host);
      return Promise.resolve(host === 'pbx.example.com' ? '203.0.113.50' : undefined);
    },
  };
}

describe('resolve (RFC 3263-lite)', () => {
  it('uses an IP literal as it is, UDP and port 5060 by default, without DNS', async () => {
    const dns = fakeDns();
    assert.deepEqual(await resolve(parseUri('sip:bob@203.0.113.1'), dns), { protocol: 'udp', address: '203.0.113.1', port: 5060 });
    assert.deepEqual(await resolve(parseUri('sip:bob@[2001:db8::5]:5080'), dns), { protocol: 'udp', address: '2001:db8::5', port: 5080 });
    assert.deepEqual(dns.asked, []);
  });

  it('takes the transport from the transport parameter', async () => {
    assert.deepEqual(await resolve(parseUri('sip:bob@203.0.113.1;transport=TCP')), { protocol: 'tcp', address: '203.0.113.1', port: 5060 });
    assert.deepEqual(await resolve(parseUri('sip:bob@203.0.113.1:5070;transport=tls')), { protocol: 'tls', address: '203.0.113.1', port: 5070 });
    assert.deepEqual(await resolve(parseUri('sip:bob@203.0.113.1;transport=ws')), { protocol: 'ws', address: '203.0.113.1', port: 5060 });
    assert.equal(await resolve(parseUri('sip:bob@203.0.113.1;transport=sctp')), undefined);
  });

  it('sends a sips: URI over TLS, port 5061 by default (§26.2.2)', async () => {
    assert.deepEqual(await resolve(parseUri('sips:bob@203.0.113.1')), { protocol: 'tls', address: '203.0.113.1', port: 5061 });
    assert.deepEqual(await resolve(parseUri('sips:bob@203.0.113.1;transport=ws')), { protocol: 'wss', address: '203.0.113.1', port: 5061 });
  });

  it('lets maddr win over the host', async () => {
    const dns = fakeDns();
    assert.deepEqual(await resolve(parseUri('sip:bob@unknown.example;maddr=203.0.113.9'), dns), { protocol: 'udp', address: '203.0.113.9', port: 5060 });
    assert.deepEqual(dns.asked, []);
  });

  it('returns undefined for an .invalid host without any DNS query (RFC 6761 §6.4)', async () => {
    const dns = fakeDns();
    assert.equal(await resolve(parseUri('sip:x@df7jal23ls0d.invalid;transport=ws'), dns), undefined);
    assert.deepEqual(dns.asked, []);
  });

  it('looks a host name up, and returns undefined when it does not resolve or the URI is not SIP', async () => {
    const dns = fakeDns();
    assert.deepEqual(await resolve(parseUri('sip:bob@PBX.example.com:5080'), dns), { protocol: 'udp', address: '203.0.113.50', port: 5080 });
    assert.equal(await resolve(parseUri('sip:bob@nowhere.example'), dns), undefined);
    assert.deepEqual(dns.asked, ['pbx.example.com', 'nowhere.example']);
    assert.equal(await resolve(parseUri('tel:+15551234567'), dns), undefined);
  });
});
