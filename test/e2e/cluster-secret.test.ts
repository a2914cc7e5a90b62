/**
 * The workers of `softswitch start --workers N` share one secret (drawn by the primary): a digest nonce
 * one of them issued is accepted by another, as a client whose next REGISTER lands on another worker
 * needs. Two servers built with the same secret stand for two workers; two with their own secrets show
 * what a worker without it would do.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { buildCredentials, parseChallenge, parseMessage, type SipResponse } from '../../src/sip/index.js';
import { NonceLedger } from '../../registrar/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const USER = 'alice';
const PASSWORD = 'alice-cluster-secret';

/** One REGISTER over UDP from a fresh socket; the final response. */
async function register(target: TestServer, cseq: number, authorization?: string): Promise<SipResponse> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  const { address, port: serverPort } = target.listener('udp');
  const text = [
    'REGISTER sip:example.com SIP/2.0',
    `Via: SIP/2.0/UDP 127.0.0.1:${port};rport;branch=z9hG4bK${randomBytes(8).toString('hex')}`,
    'Max-Forwards: 70',
    `From: <sip:${USER}@example.com>;tag=cluster`,
    `To: <sip:${USER}@example.com>`,
    'Call-ID: cluster-secret-test',
    `CSeq: ${cseq} REGISTER`,
    `Contact: <sip:${USER}@127.0.0.1:${port}>`,
    'Expires: 60',
    ...(authorization === undefined ? [] : [`Authorization: ${authorization}`]),
    'Content-Length: 0',
    '', '',
  ].join('\r\n');
  try {
    return await new Promise<SipResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no final response within 3 s')), 3000);
      socket.on('message', (data) => {
        const msg = parseMessage(data) as SipResponse;
        if (msg.status >= 200) {
          clearTimeout(timer);
          resolve(msg);
        }
      });
      socket.send(text, serverPort, address);
    });
  } finally {
    socket.close();
  }
}

/** The 401 of `first`, answered to `second`. */
async function challengeThenAnswerElsewhere(first: TestServer, second: TestServer): Promise<SipResponse> {
  const challenge = await register(first, 1);
  assert.equal(challenge.status, 401);
  const ch = parseChallenge(challenge.get('www-authenticate')!);
  const authorization = buildCredentials(ch, { username: USER, password: PASSWORD, method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'c0ffee' });
  return register(second, 2, authorization);
}

describe('one secret for the workers of a cluster', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  /**
   * Two servers standing for workers 0 and 1: the same secret or not, and nonce ledgers that claim each
   * other's nonce-counts as the cluster's IPC does (the issuer keeps the counts).
   */
  async function pair(secrets: [Buffer, Buffer]): Promise<[TestServer, TestServer]> {
    const made: TestServer[] = [];
    const ledgers = [new NonceLedger({ index: 0 }), new NonceLedger({ index: 1 })];
    for (const l of ledgers) {
      l.setRemote(async (issuer, nonce, nc, expiresAt) => {
        const owner = ledgers[issuer.index];
        return owner !== undefined && owner.self.incarnation === issuer.incarnation && owner.claimHere(nonce, nc, expiresAt);
      });
    }
    for (const [i, secret] of secrets.entries()) {
      const s = await startTestServer({}, { secret, ledger: ledgers[i]! });
      servers.push(s);
      await s.addUser(`${USER}@example.com`, PASSWORD);
      made.push(s);
    }
    return [made[0]!, made[1]!];
  }

  it('accepts on one worker the digest answer to a nonce another worker issued, when they share the secret', async () => {
    const secret = randomBytes(32);
    const [a, b] = await pair([secret, secret]);
    const res = await challengeThenAnswerElsewhere(a, b);
    assert.equal(res.status, 200);
  });

  it('refuses the same answer replayed to the worker that issued the nonce, once another worker accepted it', async () => {
    const secret = randomBytes(32);
    const [a, b] = await pair([secret, secret]);
    const challenge = await register(a, 1);
    const ch = parseChallenge(challenge.get('www-authenticate')!);
    const authorization = buildCredentials(ch, { username: USER, password: PASSWORD, method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'c0ffee' });
    assert.equal((await register(b, 2, authorization)).status, 200);
    const replay = await register(a, 3, authorization);
    assert.equal(replay.status, 401);
    assert.equal(parseChallenge(replay.get('www-authenticate')!).stale, true);
  });

  it('challenges again (401) an answer to a nonce signed with another secret', async () => {
    const [a, b] = await pair([randomBytes(32), randomBytes(32)]);
    const res = await challengeThenAnswerElsewhere(a, b);
    assert.equal(res.status, 401);
  });
});
