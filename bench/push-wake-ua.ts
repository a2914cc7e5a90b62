/**
 * The user agents of bench/push-wake, on raw sockets and the project's own SIP message layer (src/sip:
 * parser, stream framer, digest, response builder): a thousand SIP.js phones would cost the bench process
 * more than the server, and the bench must see the instant each message arrives.
 *
 * - `SleepingApp`: an iOS app with a VoIP push token. It registers over TCP with the RFC 8599 pn-* Contact
 *   parameters and a +sip.instance, then sleeps (its connection closes, no un-REGISTER). `wake()` is what
 *   iOS does on the push: a new connection and a REGISTER; the INVITE that follows is answered 200, the BYE
 *   200. It records when its REGISTER was answered and when each INVITE arrived.
 * - `Caller`: alice on one UDP socket, placing calls with digest (INVITE → 407 → ACK → INVITE with
 *   Proxy-Authorization → 200 → ACK along the Record-Route set → BYE).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import {
  type SipRequest, SipResponse, StreamFramer, buildCredentials, createResponse, parseChallenge, parseMessage, serializeMessage,
} from '../src/sip/index.js';
import { BENCH_DOMAIN, type BenchUser } from './lib.js';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const branch = (): string => `z9hG4bK${hex(8)}`;

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

/** A request as text: the request line, the header lines, Content-Length and the body. */
function request(line: string, headers: string[], body = ''): string {
  return [line, ...headers, ...(body === '' ? [] : ['Content-Type: application/sdp']), `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
}

/** The Authorization (or Proxy-Authorization) value answering the challenge `value` (MD5). */
function credentials(user: BenchUser, value: string, method: string, uri: string): string {
  return buildCredentials(parseChallenge(value), { username: user.username, password: user.password, method, uri, nc: 1, cnonce: hex(4) });
}

/** The APNs side of a sleeping app: what its Contact tells the server. */
export interface ApnsApp {
  /** `<team id>.<bundle id>.voip`, the pn-param of an iOS VoIP app. */
  pnParam: string;
}

export class SleepingApp {
  /** The app's VoIP push token (64 hex digits, as APNs gives an iOS device). */
  readonly token = hex(32);
  private readonly instance = randomUUID();
  private socket: Socket | undefined;
  /** performance.now() when the REGISTER of the last wake was answered 200. */
  registeredAt = 0;
  /** performance.now() of the first copy of each INVITE received, by Call-ID. */
  readonly invites = new Map<string, number>();

  constructor(
    readonly user: BenchUser,
    private readonly app: ApnsApp,
    private readonly server: { port: number },
  ) {}

  /** Connects and registers (digest); resolves once the REGISTER is answered 200. */
  wake(timeoutMs = 10_000): Promise<void> {
    const socket = connect(this.server.port, '127.0.0.1');
    socket.setNoDelay(true);
    this.socket = socket;
    const callId = hex(8);
    const aor = `sip:${this.user.username}@${BENCH_DOMAIN}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.user.username}: no REGISTER answer in ${timeoutMs} ms`)), timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      socket.on('error', fail);
      socket.on('connect', () => {
        const contact = `<sip:${this.user.username}@127.0.0.1:${socket.localPort};transport=tcp;pn-provider=apns;pn-prid=${this.token};pn-param=${this.app.pnParam}>`;
        const register = (cseq: number, auth?: string): string => request(`REGISTER sip:${BENCH_DOMAIN} SIP/2.0`, [
          `Via: SIP/2.0/TCP 127.0.0.1:${socket.localPort};branch=${branch()};rport`, 'Max-Forwards: 70',
          `From: <${aor}>;tag=${callId.slice(0, 8)}`, `To: <${aor}>`, `Call-ID: ${callId}`, `CSeq: ${cseq} REGISTER`,
          `Contact: ${contact};+sip.instance="<urn:uuid:${this.instance}>"`, 'Expires: 3600', ...(auth === undefined ? [] : [`Authorization: ${auth}`]),
        ]);
        const framer = new StreamFramer({ maxMessageSize: 65_535 });
        socket.on('data', (data: Buffer) => {
          for (const item of framer.push(data)) {
            if (item.kind !== 'message') continue;
            const m = parseMessage(item.data);
            if (!(m instanceof SipResponse)) {
              this.answer(socket, m, contact);
              continue;
            }
            if (m.callId !== callId) continue;
            if (m.status === 401) socket.write(register(2, credentials(this.user, m.get('www-authenticate') ?? '', 'REGISTER', `sip:${BENCH_DOMAIN}`)));
            else if (m.status === 200) {
              this.registeredAt = performance.now();
              clearTimeout(timer);
              resolve();
            } else if (m.status >= 300) fail(new Error(`${this.user.username}: REGISTER answered ${m.status}`));
          }
        });
        socket.write(register(1));
      });
    });
  }

  /** The app is killed in the background: its connection closes without an un-REGISTER. */
  sleep(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  /** A UAS: 200 with SDP to an INVITE (Record-Route copied, RFC 3261 §12.1.1), 200 to anything else but ACK. */
  private answer(socket: Socket, req: SipRequest, contact: string): void {
    if (req.method === 'ACK') return;
    const callId = req.callId ?? '';
    if (req.method === 'INVITE' && !this.invites.has(callId)) this.invites.set(callId, performance.now());
    const headers: Array<[string, string]> = [...req.getAll('record-route').map((v): [string, string] => ['Record-Route', v]), ['Contact', contact]];
    const res = createResponse(req, 200, { toTag: callId.slice(0, 8), headers, ...(req.method === 'INVITE' ? { body: SDP, contentType: 'application/sdp' } : {}) });
    socket.write(serializeMessage(res));
  }
}

/** How one call of the Caller went. */
export interface CallOutcome {
  callee: string;
  callId: string;
  /** The final status of the INVITE with credentials (0: none before the time limit). */
  status: number;
  /** performance.now() at the first INVITE, at its 200, at the BYE's 200 (0: not reached). */
  startedAt: number;
  answeredAt: number;
  endedAt: number;
}

interface CallState {
  outcome: CallOutcome;
  tag: string;
  holdMs: number;
  /** The INVITE with credentials went out (a retransmitted 407 is only ACKed). */
  authenticated: boolean;
  done(): void;
}

export class Caller {
  private readonly socket: UdpSocket = createSocket('udp4');
  private readonly calls = new Map<string, CallState>();

  private constructor(private readonly user: BenchUser, private readonly server: { port: number }) {
    this.socket.on('message', (data) => {
      const m = parseMessage(data);
      if (m instanceof SipResponse) this.receive(m);
    });
  }

  static async open(user: BenchUser, server: { port: number }): Promise<Caller> {
    const caller = new Caller(user, server);
    await new Promise<void>((resolve) => caller.socket.bind(0, '127.0.0.1', resolve));
    return caller;
  }

  /** Calls `callee`, holds the answered call `holdMs`, hangs up; resolves with the outcome, at the latest after `timeoutMs`. */
  call(callee: string, holdMs: number, timeoutMs: number): Promise<CallOutcome> {
    const callId = hex(10);
    const outcome: CallOutcome = { callee, callId, status: 0, startedAt: performance.now(), answeredAt: 0, endedAt: 0 };
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(), timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.calls.delete(callId);
        resolve(outcome);
      };
      const state: CallState = { outcome, tag: hex(4), holdMs, authenticated: false, done: finish };
      this.calls.set(callId, state);
      this.send(this.invite(state, 1));
    });
  }

  close(): void {
    this.socket.close();
  }

  private send(text: string): void {
    this.socket.send(text, this.server.port, '127.0.0.1');
  }

  private get local(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  /** The headers every request of a call starts with (the To of in-dialog requests comes with the tag). */
  private dialogHeaders(s: CallState, via: string, to: string, cseq: string): string[] {
    return [
      `Via: SIP/2.0/UDP ${this.local};branch=${via};rport`, 'Max-Forwards: 70', `From: <sip:${this.user.username}@${BENCH_DOMAIN}>;tag=${s.tag}`,
      `To: ${to}`, `Call-ID: ${s.outcome.callId}`, `CSeq: ${cseq}`,
    ];
  }

  private invite(s: CallState, cseq: number, auth?: string): string {
    const ruri = `sip:${s.outcome.callee}@${BENCH_DOMAIN}`;
    return request(`INVITE ${ruri} SIP/2.0`, [
      ...this.dialogHeaders(s, branch(), `<${ruri}>`, `${cseq} INVITE`), `Contact: <sip:${this.user.username}@${this.local}>`,
      ...(auth === undefined ? [] : [`Proxy-Authorization: ${auth}`]),
    ], SDP);
  }

  private receive(m: SipResponse): void {
    const s = this.calls.get(m.callId ?? '');
    const cseq = m.cseq;
    if (s === undefined || cseq === undefined || m.status < 200) return;
    if (cseq.method === 'BYE') {
      s.outcome.endedAt = performance.now();
      return s.done();
    }
    if (cseq.method !== 'INVITE') return;
    const to = m.get('to') ?? '';
    if (m.status >= 300) {
      // The ACK of a non-2xx final answer: the branch of the INVITE it answers, its To tag (RFC 3261 §17.1.1.3).
      this.send(request(`ACK sip:${s.outcome.callee}@${BENCH_DOMAIN} SIP/2.0`, this.dialogHeaders(s, m.topVia?.branch ?? '', to, `${cseq.seq} ACK`)));
    }
    if (m.status === 407 && cseq.seq === 1) {
      if (s.authenticated) return;
      s.authenticated = true;
      const auth = credentials(this.user, m.get('proxy-authenticate') ?? '', 'INVITE', `sip:${s.outcome.callee}@${BENCH_DOMAIN}`);
      return this.send(this.invite(s, 2, auth));
    }
    if (cseq.seq !== 2) return;
    if (m.status >= 300) {
      s.outcome.status = m.status;
      return s.done();
    }
    // 200: ACK it (each retransmission too) to its Contact along the Record-Route set reversed (§12.1.2), then hang up after the hold.
    const target = String(m.contact[0]?.uri ?? '');
    const routes = m.recordRoute.reverse().map((r) => `Route: ${r.toString()}`);
    const inDialog = (method: string, seq: number): string => request(`${method} ${target} SIP/2.0`, [...this.dialogHeaders(s, branch(), to, `${seq} ${method}`), ...routes]);
    this.send(inDialog('ACK', 2));
    if (s.outcome.answeredAt !== 0) return;
    s.outcome.status = m.status;
    s.outcome.answeredAt = performance.now();
    setTimeout(() => this.send(inDialog('BYE', 3)), s.holdMs);
  }
}
