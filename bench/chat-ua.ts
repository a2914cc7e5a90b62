/**
 * The chat phone of bench/chat, on one UDP socket and the project's own SIP message layer (src/sip: parser,
 * digest, response builder), as bench/push-wake-ua.ts: a hundred SIP.js phones would cost the bench process
 * more than the server, and the bench must see the instant each message arrives.
 *
 * A `ChatPhone` registers (REGISTER → 401 → REGISTER with Authorization → 200), then sends MESSAGEs (RFC 3428)
 * and answers every MESSAGE the server delivers with 200 (each retransmission too), recording when each
 * bench message arrived. Sending authenticates as a phone does: the first MESSAGE is challenged (407), the
 * next ones carry Proxy-Authorization for the same nonce with the nonce-count one higher each time (RFC 2617
 * §3.2.2, RFC 3261 §22.3), so a message costs one transaction, not two; a stale=true challenge (the nonce
 * expired) is answered once with the new nonce. Requests are retransmitted as RFC 3261 §17.1.2.2 asks of a
 * non-INVITE client transaction over UDP (T1 = 500 ms doubling to T2 = 4 s), and given up after Timer F (32 s).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import {
  type DigestChallenge, type SipRequest, SipResponse, buildCredentials, createResponse, parseChallenge, parseMessage, serializeMessage,
} from '../src/sip/index.js';
import { BENCH_DOMAIN, type BenchUser } from './lib.js';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const T1_MS = 500;
const T2_MS = 4000;
const TIMER_F_MS = 64 * T1_MS;

/** A bench message's body: `bench <run> <index>`, so that a delivery names the message it is. */
export function benchBody(run: string, index: number): string {
  return `bench ${run} ${index}`;
}

/** The run and index of a bench message's body, or undefined for anything else (a system message). */
export function parseBenchBody(body: string): { run: string; index: number } | undefined {
  const m = /^bench (\S+) (\d+)$/.exec(body);
  return m === null ? undefined : { run: m[1]!, index: Number(m[2]) };
}

interface Pending {
  text: string;
  /** Resolves with the final status (0: Timer F fired). */
  done(status: number, res?: SipResponse): void;
  retransmit: NodeJS.Timeout | undefined;
  interval: number;
  expires: NodeJS.Timeout;
}

/** What the phone saw of the server's deliveries. */
export interface Delivered {
  run: string;
  index: number;
  /** performance.now() when the first copy arrived. */
  at: number;
}

export class ChatPhone {
  private readonly socket: Socket = createSocket('udp4');
  private readonly pending = new Map<string, Pending>();
  /** The proxy challenge MESSAGEs answer, and the last nonce-count used with it. */
  private proxyChallenge: DigestChallenge | undefined;
  private nc = 0;
  private readonly callIdBase = hex(8);
  private cseq = 0;
  private readonly tag = hex(4);
  /** Call-IDs of MESSAGEs received (a retransmission is answered again, counted once). */
  private readonly seen = new Set<string>();
  /** Called for the first copy of every bench message delivered to this phone. */
  onDelivered: ((d: Delivered) => void) | undefined;
  /** MESSAGEs received that were not bench messages (system notes of a group, receipts). */
  others = 0;
  /** Retransmissions this phone sent (requests) and received (MESSAGEs from the server). */
  retransmissionsSent = 0;
  retransmissionsReceived = 0;

  private constructor(readonly user: BenchUser, private readonly serverPort: number) {
    this.socket.on('message', (data, from) => {
      let m;
      try {
        m = parseMessage(data);
      } catch {
        return;
      }
      if (m instanceof SipResponse) this.response(m);
      else this.request(m, from.port, from.address);
    });
  }

  static async open(user: BenchUser, serverPort: number): Promise<ChatPhone> {
    const phone = new ChatPhone(user, serverPort);
    await new Promise<void>((resolve) => phone.socket.bind(0, '127.0.0.1', resolve));
    return phone;
  }

  get aor(): string {
    return `sip:${this.user.username}@${BENCH_DOMAIN}`;
  }

  private get local(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  close(): void {
    for (const p of this.pending.values()) p.done(0);
    this.socket.close();
  }

  /** REGISTER (Expires 3600) with digest; resolves with the final status. */
  async register(): Promise<number> {
    const uri = `sip:${BENCH_DOMAIN}`;
    const build = (auth?: string): { text: string; branch: string } => this.build('REGISTER', uri, this.aor, [
      `Contact: <sip:${this.user.username}@${this.local};transport=udp>`, 'Expires: 3600',
      ...(auth === undefined ? [] : [`Authorization: ${auth}`]),
    ], '', 'register');
    const first = await this.transact(build());
    if (first.status !== 401 || first.res === undefined) return first.status;
    const ch = parseChallenge(first.res.get('www-authenticate') ?? '');
    const auth = buildCredentials(ch, { username: this.user.username, password: this.user.password, method: 'REGISTER', uri, nc: 1, cnonce: hex(4) });
    return (await this.transact(build(auth))).status;
  }

  /** Sends one MESSAGE to `to` (a SIP URI) with a text/plain body; resolves with the final status (0: none). */
  async message(to: string, body: string): Promise<number> {
    let stale = false;
    for (let attempt = 0; attempt < 3; attempt++) {
      const auth = this.proxyChallenge === undefined ? undefined : buildCredentials(this.proxyChallenge, {
        username: this.user.username, password: this.user.password, method: 'MESSAGE', uri: to, nc: ++this.nc, cnonce: hex(4),
      });
      const r = await this.transact(this.build('MESSAGE', to, to, [
        'Content-Type: text/plain;charset=utf-8', ...(auth === undefined ? [] : [`Proxy-Authorization: ${auth}`]),
      ], body, 'message'));
      if (r.status !== 407 || r.res === undefined) return r.status;
      // A first challenge, or stale=true (the nonce expired, or its count was taken): the new nonce, once.
      const ch = parseChallenge(r.res.get('proxy-authenticate') ?? '', 'proxy-authenticate');
      if (auth !== undefined && ch.stale !== true) return r.status;
      if (stale) return r.status;
      stale = auth !== undefined;
      this.proxyChallenge = ch;
      this.nc = 0;
    }
    return 407;
  }

  private build(method: string, ruri: string, to: string, extra: string[], body: string, kind: string): { text: string; branch: string } {
    const branch = `z9hG4bK${hex(8)}`;
    const seq = ++this.cseq;
    const lines = [
      `${method} ${ruri} SIP/2.0`, `Via: SIP/2.0/UDP ${this.local};branch=${branch};rport`, 'Max-Forwards: 70',
      `From: <${this.aor}>;tag=${this.tag}`, `To: <${to}>`, `Call-ID: ${this.callIdBase}-${kind}-${seq}`, `CSeq: ${seq} ${method}`,
      ...extra, `Content-Length: ${Buffer.byteLength(body)}`, '', body,
    ];
    return { text: lines.join('\r\n'), branch };
  }

  /** One non-INVITE client transaction over UDP (RFC 3261 §17.1.2): retransmitted until a final answer or Timer F. */
  private transact(req: { text: string; branch: string }): Promise<{ status: number; res?: SipResponse }> {
    return new Promise((resolve) => {
      const send = (): void => this.socket.send(req.text, this.serverPort, '127.0.0.1');
      const p: Pending = {
        text: req.text,
        interval: T1_MS,
        done: (status, res) => {
          clearTimeout(p.retransmit);
          clearTimeout(p.expires);
          this.pending.delete(req.branch);
          resolve(res === undefined ? { status } : { status, res });
        },
        retransmit: undefined,
        expires: setTimeout(() => p.done(0), TIMER_F_MS),
      };
      // Timer E: min(2 × interval, T2) after each retransmission (§17.1.2.2).
      const schedule = (): void => {
        p.retransmit = setTimeout(() => {
          this.retransmissionsSent++;
          send();
          p.interval = Math.min(p.interval * 2, T2_MS);
          schedule();
        }, p.interval);
      };
      schedule();
      this.pending.set(req.branch, p);
      send();
    });
  }

  private response(res: SipResponse): void {
    const p = this.pending.get(res.topVia?.branch ?? '');
    if (p === undefined) return;
    if (res.status < 200) {
      // A provisional answer: retransmit at T2 from now on (§17.1.2.2).
      p.interval = T2_MS;
      return;
    }
    p.done(res.status, res);
  }

  /** The UAS: 200 to every MESSAGE (and anything else but ACK), back where it came from (RFC 3581 style). */
  private request(req: SipRequest, port: number, address: string): void {
    if (req.method === 'ACK') return;
    const callId = req.callId ?? '';
    this.socket.send(serializeMessage(createResponse(req, 200, { toTag: this.tag })), port, address);
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
