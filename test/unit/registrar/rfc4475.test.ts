/**
 * The RFC 4475 messages addressed to a registrar (§3.3.4, §3.3.7, §3.3.12-14), sent through the
 * registrar for `example.com` with valid credentials of the user in their To header.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type SipRequest, type SipResponse, parseMessage, parseNameAddrs, randomToken } from '../../../src/sip/index.js';
import { conformanceDir } from '../../helpers/paths.js';
import { Harness, answer } from './helpers.js';

function load(name: string): SipRequest {
  return parseMessage(readFileSync(join(conformanceDir, `${name}.dat`))) as SipRequest;
}

/** The file's message with a branch of its own, so each send is a new transaction. */
function fresh(name: string): SipRequest {
  const req = load(name);
  const via = req.topVia!;
  via.params.set('branch', `z9hG4bK${randomToken(10)}`);
  req.replaceFirstValue('via', via.toString());
  return req;
}

/** Sends the file unauthenticated, answers the challenge as the To user, sends it again. */
async function sendAuthenticated(h: Harness, name: string, username: string, password: string): Promise<SipResponse> {
  h.credentials.add({ username, password, domain: 'example.com' });
  const challenge = await h.send(fresh(name));
  assert.equal(challenge.status, 401, `${name} unauthenticated`);
  const req = fresh(name);
  req.append('Authorization', answer(challenge, { username, password, domain: 'example.com' }, { uri: 'sip:example.com' }));
  return h.send(req);
}

describe('RFC 4475 registrar cases', () => {
  it('cparam01 (§3.3.12): "unknownparam" is a contact-param, and stays one in the 200 and later lookups', async () => {
    const h = new Harness();
    const res = await sendAuthenticated(h, 'cparam01', 'watson', 'elementary');
    assert.equal(res.status, 200);
    const listed = res.getAll('contact');
    assert.equal(listed.length, 1);
    assert.equal(listed[0], '<sip:+19725552222@gw1.example.net>;unknownparam;expires=600');
    const contact = parseNameAddrs(listed[0]!, 'contact', true)[0]!;
    assert.ok(contact.params.has('unknownparam'));
    assert.ok(!('params' in contact.uri && contact.uri.params.has('unknownparam')), 'not a URI parameter');
    const [binding] = h.registrar.lookup('sip:watson@example.com');
    assert.equal(binding?.contactUri, 'sip:+19725552222@gw1.example.net');
    assert.ok(binding.contact.params.has('unknownparam'));
  });

  it('cparam02 (§3.3.13): "unknownparam" is a URI parameter, and stays one in the 200 and later lookups', async () => {
    const h = new Harness();
    const res = await sendAuthenticated(h, 'cparam02', 'watson', 'elementary');
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('contact'), ['<sip:+19725552222@gw1.example.net;unknownparam>;expires=600']);
    const contact = parseNameAddrs(res.getAll('contact')[0]!, 'contact', true)[0]!;
    assert.ok(!contact.params.has('unknownparam'));
    assert.equal(h.registrar.lookup('sip:watson@example.com')[0]?.contactUri, 'sip:+19725552222@gw1.example.net;unknownparam');
  });

  it('regescrt (§3.3.14): the escaped Route header stays in the contact URI', async () => {
    const h = new Harness();
    const res = await sendAuthenticated(h, 'regescrt', 'user', 'secret');
    assert.equal(res.status, 200);
    assert.deepEqual(res.getAll('contact'), ['<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=600']);
    const [binding] = h.registrar.lookup('sip:user@example.com');
    assert.equal(binding?.contactUri, 'sip:user@example.com?Route=%3Csip:sip.example.com%3E');
    assert.equal(h.registrar.lookupByContact('sip:user@example.com?Route=%3Csip:sip.example.com%3E'), binding);
  });

  it('unksm2 (§3.3.4): a To that is not a SIP or SIPS URI is answered 400', async () => {
    const h = new Harness();
    const res = await h.send(fresh('unksm2'));
    assert.equal(res.status, 400);
  });

  it('regaut01 (§3.3.7): credentials of an unknown scheme get a new Digest challenge', async () => {
    const h = new Harness();
    const res = await h.send(fresh('regaut01'));
    assert.equal(res.status, 401);
    assert.equal(res.getAll('www-authenticate').length, 2);
  });
});
