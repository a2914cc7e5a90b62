/**
 * Presence across `softswitch start --workers 2`: the primary deals WSS connections to the workers in turn,
 * so a watcher's subscription sits on one worker while the user it watches publishes, and calls, through
 * the other. What a PUBLISH or a call on one worker says reaches the watchers on every worker
 * (cluster:presence); registrations are replicated by the registrar.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type WssTestCluster, startWssTestCluster } from '../helpers/cluster.js';
import type { ReceivedNotify } from '../helpers/softphone.js';

const DOMAIN = 'example.com';
const PASSWORD = 'presence-workers-secret';

const basic = (n: ReceivedNotify): string | undefined => /<basic>(open|closed)<\/basic>/.exec(n.body)?.[1];

function pidf(entity: string, activity: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" `
    + `xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${entity}"><tuple id="t"><status><basic>open</basic></status></tuple>`
    + `<dm:person id="p"><rpid:activities><rpid:${activity}/></rpid:activities></dm:person></presence>`;
}

describe('presence across two workers (softswitch start --workers 2)', { timeout: 120_000 }, () => {
  let cluster: WssTestCluster;

  before(async () => {
    cluster = await startWssTestCluster(2, {
      domain: DOMAIN, users: ['ada', 'bo', 'cy'], password: PASSWORD, config: () => ({ presence: { notifyInterval: 0 } }), prefix: 'softswitch-presence-workers-',
    });
  });

  after(async () => {
    await cluster?.stop();
  });

  it('a watcher on one worker sees the PUBLISH and the call its contact makes through the other worker', async () => {
    const ada = await cluster.phone('ada');
    const bo = await cluster.phone('bo');
    assert.notEqual(cluster.registeredOn(`sip:ada@${DOMAIN}`).at(-1), cluster.registeredOn(`sip:bo@${DOMAIN}`).at(-1), 'watcher and watched are on different workers');
    const watch = await ada.subscribe(`sip:bo@${DOMAIN}`, 'presence');
    await watch.waitFor((n) => basic(n) === 'open');

    await bo.publish(pidf(`sip:bo@${DOMAIN}`, 'away'));
    await watch.waitFor((n) => /<rpid:away\s*\/>/.test(n.body));

    const cy = await cluster.phone('cy');
    const ringing = cy.waitForIncoming();
    const calling = bo.call(`sip:cy@${DOMAIN}`);
    const answered = await (await ringing).accept();
    const call = await calling;
    const busy = await watch.waitFor((n) => /<rpid:on-the-phone\s*\/>/.test(n.body));
    await call.hangup();
    await answered.waitForEnded();
    await watch.waitFor((n) => watch.notifies.indexOf(n) > watch.notifies.indexOf(busy) && !/on-the-phone/.test(n.body));
  });
});
