/**
 * The BYEs of a call the administrator hangs up (Kamailio's dlg_end_dlg): the proxy, which Record-Routed
 * the dialog, sends each side a BYE as if the other side had sent it. To do so it records, when the 2xx goes
 * upstream, what each side's own UA keeps of the dialog (RFC 3261 §12.1.1, §12.1.2) as seen from the proxy's
 * seat in the route: its Contact, the Record-Route values between the proxy and it, the connection it uses,
 * its From/To with tag, and its CSeq (raised as its in-dialog requests pass).
 */
import { SipRequest, headerKey, makeField } from '../src/sip/index.js';
import type { SipResponse } from '../src/sip/index.js';
import type { Stack } from '../src/core/index.js';
import type { Logger } from '../src/log/index.js';
import type { Destination } from '../src/transport/types.js';
import type { DialogLeg, DialogLegs } from '../src/dialog/index.js';

/** RFC 3326: why the call ended, for the phones' logs and their users. */
export const HANGUP_REASON = 'SIP;text="Call ended by the administrator"';

/**
 * Both sides of the call a 2xx confirms, or undefined when a side gave no Contact (it could not be reached).
 * `invite` is the INVITE as received (its Record-Route: the proxies between the caller and us, nearest first),
 * `inbound` the connection it came on; `sent` the branch's copy as sent (our Record-Route values on top of
 * whatever it still carried), `outbound` where it went; `answer` the 2xx as the callee's side sent it.
 */
export function dialogLegs(invite: SipRequest, inbound: Destination, sent: SipRequest, outbound: Destination, answer: SipResponse): DialogLegs | undefined {
  const callerContact = invite.contact[0]?.uri;
  const calleeContact = answer.contact[0]?.uri;
  const from = invite.get('from');
  const to = answer.get('to');
  if (callerContact === undefined || calleeContact === undefined || from === undefined || to === undefined) return undefined;
  // §16.6 step 4 / §16.7: the 2xx's Record-Route is [callee side…, what `sent` carried (ours, then the caller side's)].
  const rr = answer.recordRoute.map(String);
  const calleeSide = rr.slice(0, Math.max(0, rr.length - sent.recordRoute.length)).reverse();
  const caller: DialogLeg = {
    identity: from, target: callerContact.toString(), routeSet: invite.recordRoute.map(String), destination: { ...inbound }, cseq: invite.cseq?.seq ?? 0,
  };
  const callee: DialogLeg = { identity: to, target: calleeContact.toString(), routeSet: calleeSide, destination: { ...outbound }, cseq: 0 };
  return { caller, callee };
}

/**
 * The BYE to one side (`toward`), sent as the other side within the dialog (§12.2.1.1): Request-URI its
 * Contact, Route its route set from here, To its own identity and From the other side's (so the caller-bound
 * BYE carries the callee's tag in From), and a CSeq above every one the other side has used. The stack adds
 * our Via when it sends it.
 */
export function byeToward(toward: 'caller' | 'callee', callId: string, legs: DialogLegs): SipRequest {
  const to = legs[toward];
  const from = toward === 'caller' ? legs.callee : legs.caller;
  const fields: Array<[string, string]> = [['Max-Forwards', '70']];
  for (const r of to.routeSet) fields.push(['Route', r]);
  fields.push(
    ['From', from.identity],
    ['To', to.identity],
    ['Call-ID', callId],
    ['CSeq', `${from.cseq + 1} BYE`],
    ['Reason', HANGUP_REASON],
    ['Content-Length', '0'],
  );
  return new SipRequest({ method: 'BYE', uri: to.target, headers: fields.map(([n, v]) => makeField(headerKey(n), n, v)) });
}

/**
 * Sends both BYEs, the callee's first, each through a client transaction of its own (§17.1.2: retransmitted over
 * UDP) to the side's connection or address. When that cannot be sent on (the phone's connection closed: it
 * reconnected, or the call was taken over from a restarted worker), `reroute` may name where the side is now
 * (its registration's new connection) and the BYE goes there once. What the phones answer changes nothing here:
 * the call has ended.
 */
export function sendByes(stack: Stack, callId: string, legs: DialogLegs, log: Logger, reroute?: (leg: DialogLeg) => Destination | undefined): void {
  for (const toward of ['callee', 'caller'] as const) {
    const leg = legs[toward];
    const send = (destination: Destination, again: boolean): void => {
      const fail = (why: string, transport: boolean): void => {
        const next = transport && !again ? reroute?.(leg) : undefined;
        if (next !== undefined && !sameHop(next, destination)) return send(next, true);
        log.info({ callId, toward, why }, 'the BYE of a hang-up failed');
      };
      try {
        stack.sendRequest(byeToward(toward, callId, legs), destination, {
          onResponse: (res) => {
            if (res.status >= 300) fail(String(res.status), false);
          },
          onTimeout: () => fail('timeout', false),
          onTransportError: (_tx, err) => fail(err.message, true),
        });
      } catch (err) {
        fail((err as Error).message, true);
      }
    };
    send(leg.destination, false);
  }
}

function sameHop(a: Destination, b: Destination): boolean {
  return a.flowId === b.flowId && a.protocol === b.protocol && a.address === b.address && a.port === b.port;
}
