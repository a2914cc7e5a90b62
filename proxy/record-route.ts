/**
 * Record-Route with flow tokens. A softphone on a WebSocket has a Contact like
 * `sip:x@df7.invalid;transport=ws` that only its connection reaches, so the proxy remembers the
 * connection of each leg inside the Record-Route values it inserts, where the dialog's requests bring it
 * back (RFC 5626 §5.2 flow tokens; RFC 5658 double Record-Route).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { KeyedMac, equalText } from '../src/sip/index.js';
import type { Stack } from '../src/core/index.js';
import type { SipRequest } from '../src/sip/index.js';
import { type Destination, type Flow, type TransportProtocol, isConnectionOriented } from '../src/transport/types.js';
import type { TokenCheck } from './types.js';
import type { TopologyHiding } from './topology-hiding.js';

/** Characters of the MAC kept in a token: 60 bits, enough that guessing is hopeless for a dialog's life. */
const MAC_LENGTH = 10;
/** User part of a Record-Route value that carries no flow: `rr.` + MAC of the Call-ID. */
const MARKER_PREFIX = 'rr.';
/** User part of a Contact that stands in for a hidden one (topology hiding): `th.` + the sealed original. */
const HIDDEN_PREFIX = 'th.';
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

/** The two legs of a forwarded request, as Record-Route needs them. */
export interface RecordRouteLegs {
  /** The flow the request arrived on (the server transaction's). */
  inbound: Flow;
  /** Where this branch goes. */
  outbound: Destination;
}

/**
 * Builds and checks the user parts this proxy writes into Record-Route: a flow token
 * `base64url(flowId) + '.' + base64url(MAC(secret, flowId)).slice(0, 10)`, unforgeable without
 * the secret (RFC 5626 §5.2), or, for a leg with no flow to remember, a signed marker
 * `rr.` + MAC of the Call-ID, so that a Route naming this proxy can still be told to be genuine.
 * The MAC is `KeyedMac` (NMAC over SHA-256, src/sip/fast-hash.ts).
 */
export class RecordRoute {
  private readonly keyed: KeyedMac;
  /** AES-256-GCM key of the hidden Contacts, derived from the same secret (one secret per cluster). */
  private readonly sealKey: Buffer;
  /** HMAC key of the synthetic IVs (a key of its own: one key, one use). */
  private readonly ivKey: Buffer;
  /** Topology hiding, when configured (set by ProxyCore): looseRoute and forwardStateless consult it. */
  hiding: TopologyHiding | undefined;

  constructor(secret: Buffer = randomBytes(32)) {
    if (!Buffer.isBuffer(secret) || secret.length === 0) throw new TypeError('RecordRoute needs a non-empty secret Buffer');
    this.keyed = new KeyedMac(secret);
    this.sealKey = createHmac('sha256', secret).update('topology hiding').digest();
    this.ivKey = createHmac('sha256', secret).update('topology hiding iv').digest();
    this.hiding = undefined;
  }

  /**
   * Topology hiding: a URI user part that carries `parts` (a Contact URI and the Route values behind it)
   * encrypted and authenticated (AES-256-GCM), so the phone that gets it learns no address of ours and
   * cannot forge one. `th.` + base64url(iv | ciphertext | tag). The IV is synthetic (an HMAC of the text):
   * the same Contact seals to the same URI in the 180, the 200 and its retransmissions, and two different
   * texts get different IVs (a collision is a 2^-96 chance), which GCM needs.
   */
  seal(parts: string[]): string {
    const text = parts.join('\n');
    const iv = createHmac('sha256', this.ivKey).update(text).digest().subarray(0, IV_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', this.sealKey, iv);
    const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return HIDDEN_PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** What `seal` put in a user part; undefined for anything else (not ours, altered, another secret). */
  unseal(user: string | undefined): string[] | undefined {
    if (user === undefined || !user.startsWith(HIDDEN_PREFIX) || user.length > 4096) return undefined;
    const raw = Buffer.from(user.slice(HIDDEN_PREFIX.length), 'base64url');
    if (raw.length < IV_LENGTH + TAG_LENGTH + 1) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.sealKey, raw.subarray(0, IV_LENGTH));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_LENGTH));
      const text = Buffer.concat([decipher.update(raw.subarray(IV_LENGTH, raw.length - TAG_LENGTH)), decipher.final()]).toString('utf8');
      return text.split('\n');
    } catch {
      return undefined;
    }
  }

  /** `<sip:USER@host:port;transport=xx>` naming our listener of `protocol` (a hidden Contact). */
  localUri(stack: Stack, protocol: TransportProtocol, user: string): string {
    return this.value(stack, protocol, user).replace(/;lr>$/, '>');
  }

  /** The flow token for a flow id. */
  flowToken(flowId: string): string {
    return Buffer.from(flowId, 'utf8').toString('base64url') + '.' + this.mac(flowId);
  }

  /** The signed marker for a dialog with this Call-ID. */
  marker(callId: string): string {
    return MARKER_PREFIX + this.mac('rr\0' + callId);
  }

  /** Checks a URI user part against both forms; `callId` is the request's, for markers. */
  check(user: string | undefined, callId: string | undefined): TokenCheck {
    if (user === undefined) return { valid: false };
    const dot = user.indexOf('.');
    if (dot <= 0 || user.length - dot - 1 !== MAC_LENGTH) return { valid: false };
    const mac = user.slice(dot + 1);
    if (user.startsWith(MARKER_PREFIX)) {
      if (callId === undefined) return { valid: false };
      return { valid: equalText(mac, this.mac('rr\0' + callId)) };
    }
    const flowId = Buffer.from(user.slice(0, dot), 'base64url').toString('utf8');
    if (flowId.length === 0 || !equalText(mac, this.mac(flowId))) return { valid: false };
    return { valid: true, flowId };
  }

  /**
   * The Record-Route values for one branch, top first (§16.6 step 4). Two when the legs use different
   * transports or either is connection-oriented (RFC 5658 §4): the top one faces the outbound leg (our
   * listener for its transport, the outbound flow's token when the target names a flow), the second the
   * inbound leg (our listener it arrived on, the inbound flow's token unless it is UDP). One value, with a
   * marker, when both legs are UDP. Throws TypeError when there is no listener for a leg's transport.
   */
  values(stack: Stack, legs: RecordRouteLegs, callId: string): string[] {
    const inProto = legs.inbound.protocol;
    const outProto = legs.outbound.protocol;
    const marker = this.marker(callId);
    if (inProto === outProto && !isConnectionOriented(inProto)) {
      return [this.value(stack, outProto, marker)];
    }
    const outFlow = legs.outbound.flowId;
    const outUser = outFlow === undefined ? marker : this.flowToken(outFlow);
    const inUser = isConnectionOriented(inProto) ? this.flowToken(legs.inbound.id) : marker;
    return [this.value(stack, outProto, outUser), this.value(stack, inProto, inUser)];
  }

  /** Adds the values of `values()` on top of the request's Record-Route. */
  insert(request: SipRequest, stack: Stack, legs: RecordRouteLegs): void {
    const values = this.values(stack, legs, request.callId ?? '');
    for (let i = values.length - 1; i >= 0; i--) request.prepend('Record-Route', values[i]!);
  }

  /** `<sip:USER@host:port;transport=xx;lr>` for our listener of `protocol`. */
  private value(stack: Stack, protocol: TransportProtocol, user: string): string {
    const a = stack.advertisedAddress(protocol);
    if (a === undefined) throw new TypeError(`no ${protocol} listener to Record-Route with`);
    const host = a.host.includes(':') && !a.host.startsWith('[') ? `[${a.host}]` : a.host;
    return `<sip:${user}@${host}:${a.port};transport=${uriTransport(protocol)};lr>`;
  }

  private mac(data: string): string {
    return this.keyed.mac(data).slice(0, MAC_LENGTH);
  }
}

/** RFC 7118 §5.2 registers only `ws`, used for WS and WSS alike. */
function uriTransport(protocol: TransportProtocol): string {
  return protocol === 'wss' ? 'ws' : protocol;
}
