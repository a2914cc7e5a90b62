/**
 * The chat phone of bench/chat, a `UdpUa` of support/udp-ua.ts (one UDP socket and the project's own SIP message
 * layer), as bench/push-wake-ua.ts: a hundred SIP.js phones would cost the bench process more than the server,
 * and the bench must see the instant each message arrives.
 *
 * A `ChatPhone` registers (REGISTER → 401 → REGISTER with Authorization → 200), then sends MESSAGEs (RFC 3428)
 * and answers every MESSAGE the server delivers with 200 (each retransmission too), recording when each
 * bench message arrived. Sending authenticates as a phone does (a `DigestSession`): the first MESSAGE is
 * challenged (407), the next ones carry Proxy-Authorization for the same nonce with the nonce-count one higher
 * each time (RFC 2617 §3.2.2, RFC 3261 §22.3), so a message costs one transaction, not two; a stale=true
 * challenge (the nonce expired) is answered once with the new nonce. Requests are retransmitted as RFC 3261
 * §17.1.2.2 asks of a non-INVITE client transaction over UDP (T1 = 500 ms doubling to T2 = 4 s), and given up
 * after Timer F (32 s).
 */
import { type SipRequest, createResponse } from '../src/sip/index.js';
import { DigestSession, type OutgoingRequest, type Reply, UdpUa, hex } from '../support/udp-ua.js';
import { BENCH_DOMAIN, type BenchUser } from './lib.js';

/** A bench message's body: `bench <run> <index>`, so that a delivery names the message it is. */
export function benchBody(run: string, index: number): string {
  return `bench ${run} ${index}`;
}

/** The run and index of a bench message's body, or undefined for anything else (a system message). */
export function parseBenchBody(body: string): { run: string; index: number } | undefined {
  const m = /^bench (\S+) (\d+)$/.exec(body);
  return m === null ? undefined : { run: m[1]!, index: Number(m[2]) };
}

/** What the phone saw of the server's deliveries. */
export interface Delivered {
  run: string;
  index: number;
  /** performance.now() when the first copy arrived. */
  at: number;
}

export class ChatPhone {
  private readonly ua: UdpUa;
  /** Credentials of MESSAGEs: the proxy challenge they answer, and its nonce-count. */
  private readonly messageAuth: DigestSession;
  private readonly callIdBase = hex(8);
  private cseq = 0;
  private readonly tag = hex(4);
  /** Call-IDs of MESSAGEs received (a retransmission is answered again, counted once). */
  private readonly seen = new Set<string>();
  /** Called for the first copy of every bench message delivered to this phone. */
  onDelivered: ((d: Delivered) => void) | undefined;
  /** MESSAGEs received that were not bench messages (system notes of a group, receipts). */
  others = 0;
  /** Retransmissions this phone received (MESSAGEs from the server). */
  retransmissionsReceived = 0;

  private constructor(readonly user: BenchUser, serverPort: number) {
    this.ua = new UdpUa({ address: '127.0.0.1', port: serverPort }, (req, reply) => this.request(req, reply));
    this.messageAuth = new DigestSession(user);
  }

  static async open(user: BenchUser, serverPort: number): Promise<ChatPhone> {
    const phone = new ChatPhone(user, serverPort);
    await phone.ua.bind();
    return phone;
  }

  get aor(): string {
    return `sip:${this.user.username}@${BENCH_DOMAIN}`;
  }

  /** Retransmissions of requests this phone sent. */
  get retransmissionsSent(): number {
    return this.ua.retransmissionsSent;
  }

  close(): void {
    this.ua.close();
  }

  /** REGISTER (Expires 3600) with digest; resolves with the final status. */
  async register(): Promise<number> {
    const uri = `sip:${BENCH_DOMAIN}`;
    const r = await new DigestSession(this.user).send('REGISTER', uri, (credentials) => this.ua.transact(this.build('REGISTER', uri, this.aor, [
      `Contact: <sip:${this.user.username}@${this.ua.local};transport=udp>`, 'Expires: 3600', ...credentials,
    ], '', 'register')));
    return r.status;
  }

  /** Sends one MESSAGE to `to` (a SIP URI) with a text/plain body; resolves with the final status (0: none). */
  async message(to: string, body: string): Promise<number> {
    const r = await this.messageAuth.send('MESSAGE', to, (credentials) => this.ua.transact(this.build('MESSAGE', to, to, [
      'Content-Type: text/plain;charset=utf-8', ...credentials,
    ], body, 'message')));
    return r.status;
  }

  private build(method: string, ruri: string, to: string, headers: string[], body: string, kind: string): OutgoingRequest {
    const cseq = ++this.cseq;
    return this.ua.request({ method, ruri, from: this.aor, tag: this.tag, to, callId: `${this.callIdBase}-${kind}-${cseq}`, cseq, headers, body });
  }

  /** The UAS: 200 to every MESSAGE (and anything else but ACK). */
  private request(req: SipRequest, reply: Reply): void {
    const callId = req.callId ?? '';
    reply(createResponse(req, 200, { toTag: this.tag }));
    if (req.method !== 'MESSAGE') return;
    if (this.seen.has(callId)) {
      this.retransmissionsReceived++;
      return;
    }
    this.seen.add(callId);
    const bench = parseBenchBody(req.body.toString('utf8'));
    if (bench === undefined) this.others++;
    else this.onDelivered?.({ ...bench, at: performance.now() });
  }
}
