/**
 * The user agents of bench/push-wake, written here on raw sockets: a thousand SIP.js phones would cost the
 * bench process more than the server, and the bench must see the instant each message arrives.
 *
 * - `SleepingApp`: an iOS app with a VoIP push token. It registers over TCP with the RFC 8599 pn-* Contact
 *   parameters and a +sip.instance, then "sleeps" (its connection closes, no un-REGISTER). `wake()` is what
 *   iOS does on the push: a new connection and a REGISTER; the INVITE that follows is answered 200, the BYE
 *   200. It records when its REGISTER was answered and when (and how often) an INVITE arrived.
 * - `Caller`: alice on one UDP socket, placing calls with digest (INVITE → 407 → ACK → INVITE with
 *   Proxy-Authorization → 200 → ACK along the Record-Route set → BYE).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { BENCH_DOMAIN, type BenchUser } from './lib.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

const COMPACT: Record<string, string> = { v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length' };

/** A SIP message as the bench needs it: the first line, the headers in order (lower-case names), the body. */
interface Message {
  first: string;
  headers: Array<[string, string]>;
  body: string;
}

function parse(text: string): Message {
  const end = text.indexOf('\r\n\r\n');
  const lines = text.slice(0, end).split('\r\n');
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.push([COMPACT[name] ?? name, line.slice(colon + 1).trim()]);
  }
  return { first: lines[0]!, headers, body: text.slice(end + 4) };
}

const header = (m: Message, name: string): string => m.headers.find(([n]) => n === name)?.[1] ?? '';
const all = (m: Message, name: string): string[] => m.headers.filter(([n]) => n === name).flatMap(([, v]) => v.split(/,(?=\s*<)/).map((s) => s.trim()));
const status = (m: Message): number => (m.first.startsWith('SIP/2.0 ') ? Number(m.first.slice(8, 11)) : 0);
const cseqMethod = (m: Message): string => header(m, 'cseq').split(/\s+/)[1] ?? '';

function param(value: string, name: string): string | undefined {
  return new RegExp(`${name}="?([^",]*)"?`, 'i').exec(value)?.[1];
}

/** The Authorization (or Proxy-Authorization) value answering a digest challenge (MD5, qop=auth when offered). */
function digest(user: BenchUser, challenge: string, method: string, uri: string): string {
  const realm = param(challenge, 'realm') ?? BENCH_DOMAIN;
  const nonce = param(challenge, 'nonce') ?? '';
  const opaque = param(challenge, 'opaque');
  const qop = param(challenge, 'qop') !== undefined;
  const cnonce = hex(4);
  const ha1 = md5(`${user.username}:${realm}:${user.password}`);
  const ha2 = md5(`${method}:${uri}`);
  const response = qop ? md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`) : md5(`${ha1}:${nonce}:${ha2}`);
  return `Digest username="${user.username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5`
    + (qop ? `, qop=auth, nc=00000001, cnonce="${cnonce}"` : '') + (opaque === undefined ? '' : `, opaque="${opaque}"`);
}

/** A UAS's response: Via, Record-Route, From, Call-ID, CSeq copied, To with our tag. */
function respond(req: Message, code: string, contact: string, body = ''): string {
  const to = header(req, 'to');
  return [
    `SIP/2.0 ${code}`,
    ...req.headers.filter(([n]) => n === 'via' || n === 'record-route').map(([n, v]) => `${n === 'via' ? 'Via' : 'Record-Route'}: ${v}`),
    `From: ${header(req, 'from')}`, `To: ${to.includes(';tag=') ? to : `${to};tag=${md5(header(req, 'call-id')).slice(0, 8)}`}`,
    `Call-ID: ${header(req, 'call-id')}`, `CSeq: ${header(req, 'cseq')}`, `Contact: ${contact}`,
    ...(body === '' ? [] : ['Content-Type: application/sdp']), `Content-Length: ${Buffer.byteLength(body)}`, '', body,
  ].join('\r\n');
}

/** Splits a TCP byte stream into SIP messages by Content-Length. */
function framer(onMessage: (m: Message) => void): (data: Buffer) => void {
  let buffer = '';
  return (data) => {
    buffer += data.toString('latin1');
    for (;;) {
      while (buffer.startsWith('\r\n')) buffer = buffer.slice(2); // keep-alive CRLFs
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec(buffer.slice(0, end + 2))?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      onMessage(parse(buffer.slice(0, end + 4 + length)));
      buffer = buffer.slice(end + 4 + length);
    }
  };
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
  /** performance.now() of each INVITE received (a retransmission counts once: by Call-ID). */
  readonly invites = new Map<string, number>();
  /** Call-IDs of the BYEs answered. */
  readonly byes = new Set<string>();

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
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.user.username}: no REGISTER answer in ${timeoutMs} ms`)), timeoutMs);
      socket.on('error', (err) => (clearTimeout(timer), reject(err)));
      socket.on('connect', () => {
        const contact = this.contact(socket);
        const register = (cseq: number, auth?: string): string => [
          `REGISTER sip:${BENCH_DOMAIN} SIP/2.0`, `Via: SIP/2.0/TCP 127.0.0.1:${socket.localPort};branch=z9hG4bK${hex(6)};rport`,
          'Max-Forwards: 70', `From: <sip:${this.user.username}@${BENCH_DOMAIN}>;tag=${callId.slice(0, 8)}`,
          `To: <sip:${this.user.username}@${BENCH_DOMAIN}>`, `Call-ID: ${callId}`, `CSeq: ${cseq} REGISTER`,
          `Contact: ${contact};+sip.instance="<urn:uuid:${this.instance}>"`, 'Expires: 3600',
          ...(auth === undefined ? [] : [`Authorization: ${auth}`]), 'Content-Length: 0', '', '',
        ].join('\r\n');
        socket.on('data', framer((m) => {
          if (status(m) === 0) return this.answer(socket, m, contact);
          if (header(m, 'call-id') !== callId) return;
          if (status(m) === 401) socket.write(register(2, digest(this.user, header(m, 'www-authenticate'), 'REGISTER', `sip:${BENCH_DOMAIN}`)));
          else if (status(m) === 200) {
            this.registeredAt = performance.now();
            clearTimeout(timer);
            resolve();
          } else if (status(m) >= 300) {
            clearTimeout(timer);
            reject(new Error(`${this.user.username}: REGISTER answered ${m.first}`));
          }
        }));
        socket.write(register(1));
      });
    });
  }

  /** The app is killed in the background: its connection closes without an un-REGISTER. */
  sleep(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private contact(socket: Socket): string {
    return `<sip:${this.user.username}@127.0.0.1:${socket.localPort};transport=tcp;pn-provider=apns;pn-prid=${this.token};pn-param=${this.app.pnParam}>`;
  }

  private answer(socket: Socket, req: Message, contact: string): void {
    const method = req.first.slice(0, req.first.indexOf(' '));
    const callId = header(req, 'call-id');
    if (method === 'INVITE') {
      if (!this.invites.has(callId)) this.invites.set(callId, performance.now());
      socket.write(respond(req, '200 OK', contact, SDP));
    } else if (method === 'BYE') {
      this.byes.add(callId);
      socket.write(respond(req, '200 OK', contact));
    } else if (method !== 'ACK') socket.write(respond(req, '200 OK', contact));
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
  callId: string;
  tag: string;
  branch: string;
  holdMs: number;
  /** The INVITE with credentials went out (a retransmitted 407 is only ACKed). */
  authenticated: boolean;
  done(): void;
}

export class Caller {
  private readonly socket: UdpSocket = createSocket('udp4');
  private readonly calls = new Map<string, CallState>();

  private constructor(private readonly user: BenchUser, private readonly server: { port: number }) {
    this.socket.on('message', (data) => this.receive(parse(data.toString('latin1'))));
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
      const state: CallState = { outcome, callId, tag: hex(4), branch: `z9hG4bK${hex(8)}`, holdMs, authenticated: false, done: finish };
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

  private invite(s: CallState, cseq: number, auth?: string): string {
    const ruri = `sip:${s.outcome.callee}@${BENCH_DOMAIN}`;
    return [
      `INVITE ${ruri} SIP/2.0`, `Via: SIP/2.0/UDP ${this.local};branch=${s.branch};rport`, 'Max-Forwards: 70',
      `From: <sip:${this.user.username}@${BENCH_DOMAIN}>;tag=${s.tag}`, `To: <${ruri}>`, `Call-ID: ${s.callId}`, `CSeq: ${cseq} INVITE`,
      `Contact: <sip:${this.user.username}@${this.local}>`, ...(auth === undefined ? [] : [`Proxy-Authorization: ${auth}`]),
      'Content-Type: application/sdp', `Content-Length: ${SDP.length}`, '', SDP,
    ].join('\r\n');
  }

  /** A request inside the dialog the 200 `ok` set up: to its Contact, along its Record-Route set reversed (RFC 3261 §12.1.2). */
  private inDialog(s: CallState, ok: Message, method: string, cseq: number, branch = `z9hG4bK${hex(8)}`): string {
    const target = /<([^>]+)>/.exec(header(ok, 'contact'))?.[1] ?? '';
    const routes = all(ok, 'record-route').reverse();
    return [
      `${method} ${target} SIP/2.0`, `Via: SIP/2.0/UDP ${this.local};branch=${branch};rport`, 'Max-Forwards: 70',
      ...routes.map((r) => `Route: ${r}`), `From: <sip:${this.user.username}@${BENCH_DOMAIN}>;tag=${s.tag}`, `To: ${header(ok, 'to')}`,
      `Call-ID: ${s.callId}`, `CSeq: ${cseq} ${method}`, 'Content-Length: 0', '', '',
    ].join('\r\n');
  }

  private receive(m: Message): void {
    const s = this.calls.get(header(m, 'call-id'));
    const code = status(m);
    if (s === undefined || code === 0 || code < 200) return;
    const method = cseqMethod(m);
    const cseq = Number(header(m, 'cseq').split(/\s+/)[0]);
    if (method === 'BYE') {
      s.outcome.endedAt = performance.now();
      return s.done();
    }
    if (method !== 'INVITE') return;
    if (code >= 300) this.ackFailure(s, m, cseq);
    if (code === 407 && cseq === 1) {
      if (s.authenticated) return;
      s.authenticated = true;
      s.branch = `z9hG4bK${hex(8)}`;
      return this.send(this.invite(s, 2, digest(this.user, header(m, 'proxy-authenticate'), 'INVITE', `sip:${s.outcome.callee}@${BENCH_DOMAIN}`)));
    }
    if (cseq !== 2) return;
    if (code >= 300) {
      s.outcome.status = code;
      return s.done();
    }
    // 200: ACK it (each retransmission too), then hang up after the hold.
    this.send(this.inDialog(s, m, 'ACK', 2));
    if (s.outcome.answeredAt !== 0) return;
    s.outcome.status = code;
    s.outcome.answeredAt = performance.now();
    setTimeout(() => this.send(this.inDialog(s, m, 'BYE', 3)), s.holdMs);
  }

  /** The ACK of a non-2xx final answer: the branch of the INVITE it answers, its To tag (RFC 3261 §17.1.1.3). */
  private ackFailure(s: CallState, answer: Message, cseq: number): void {
    this.send([
      `ACK sip:${s.outcome.callee}@${BENCH_DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP ${this.local};branch=${/;branch=([^;,\s]+)/.exec(header(answer, 'via'))?.[1]};rport`, 'Max-Forwards: 70',
      `From: <sip:${this.user.username}@${BENCH_DOMAIN}>;tag=${s.tag}`, `To: ${header(answer, 'to')}`, `Call-ID: ${s.callId}`, `CSeq: ${cseq} ACK`,
      'Content-Length: 0', '', '',
    ].join('\r\n'));
  }
}
