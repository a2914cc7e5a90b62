/**
 * Chat across `softswitch start --workers 2`, as an operator runs it: the primary deals WSS connections to
 * the workers in turn, so a user's devices sit on both workers and the sender on one of them. Each device
 * must get each message once and in order, whichever worker stored it: only the worker holding a device's
 * connection delivers to it, and the worker that stored a message tells the other (cluster:chat).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type WssTestCluster, startWssTestCluster } from '../helpers/cluster.js';
import type { Softphone } from '../helpers/softphone.js';

const DOMAIN = 'example.com';
const PASSWORD = 'chat-workers-secret';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('chat across two workers (softswitch start --workers 2)', { timeout: 120_000 }, () => {
  let cluster: WssTestCluster;

  /** A registered phone of `user`, SIP.js and JsSIP in turn. */
  const phone = (user: string): Promise<Softphone> => cluster.phone(user, cluster.phones.length % 2 === 0 ? 'sip.js' : 'jssip');

  before(async () => {
    cluster = await startWssTestCluster(2, { domain: DOMAIN, users: ['carol', 'dan', 'eve'], password: PASSWORD, prefix: 'softswitch-chat-workers-' });
  });

  after(async () => {
    await cluster?.stop();
  });

  it('a user\'s four devices on both workers each get every message once, in order, whichever worker stored it', async () => {
    const carol = await phone('carol');
    const dan = [await phone('dan'), await phone('dan'), await phone('dan'), await phone('dan')];
    assert.equal(new Set(cluster.registeredOn(`sip:dan@${DOMAIN}`)).size, 2, 'dan\'s devices are on both workers');
    const texts = [1, 2, 3, 4, 5].map((i) => `across workers ${i}`);
    for (const text of texts) assert.equal((await carol.sendMessage(`sip:dan@${DOMAIN}`, text)).status, 202);
    for (const d of dan) assert.deepEqual((await d.waitForMessages(5)).map((m) => m.body), texts);
    // A device's own message goes to its three other devices only.
    assert.equal((await dan[1]!.sendMessage(`sip:carol@${DOMAIN}`, 'reply')).status, 202);
    for (const [i, d] of dan.entries()) if (i !== 1) await d.waitForMessages(6);
    await carol.waitForMessages(1);
    await sleep(500);
    assert.deepEqual(dan.map((d) => d.received.length), [6, 5, 6, 6], 'no device got anything twice');
    assert.equal(carol.received.length, 1);
  });

  it('messages stored while a user was offline reach the device that registers, on whichever worker, once', async () => {
    const carol = cluster.phones[0]!;
    for (const text of ['while away 1', 'while away 2']) assert.equal((await carol.sendMessage(`sip:eve@${DOMAIN}`, text)).status, 202);
    const eve = await phone('eve');
    assert.deepEqual((await eve.waitForMessages(2)).map((m) => m.body), ['while away 1', 'while away 2']);
    await sleep(500);
    assert.equal(eve.received.length, 2);
  });
});
