/**
 * The UDP side of a SIP user agent for tests and benches that need hundreds of them (a SIP.js phone each would
 * cost the process more than the server): one socket, the project's SIP message layer (src/sip: parser, digest,
 * response builder). Used by bench/chat-ua.ts, bench/presence.ts and test/helpers/presence-watcher.ts.
 *
 * - `UdpUa`: requests built with a fresh branch, each sent as a non-INVITE client transaction over UDP
 *   (RFC 3261 §17.1.2.2: retransmitted from T1 = 500 ms doubling to T2 = 4 s, at T2 once a provisional answer
 *   came, given up after Timer F, 32 s); requests from the server (all but ACK) handed to the user with a way
 *   to answer them where they came from (RFC 3581 style).
 * - `DigestSession`: one account's credentials over a run of requests: the 401 or 407 challenge is answered
 *   (RFC 3261 §22.2, §22.3), and later requests carry credentials for the same nonce with the nonce-count one
 *   higher each time (RFC 2617 §3.2.2), so a request costs one transaction, not two.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import {
  type DigestChallenge, type SipRequest, SipResponse, buildCredentials, parseChallenge, parseMessage, serializeMessage,
} from '../src/sip/index.js';

export const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const T1_MS = 500;
const T2_MS = 4000;
const TIMER_F_MS = 64 * T1_MS;

/** A request ready to send, and the branch its transaction is known by. */
export interface OutgoingRequest {
  text: string;
  branch: string;
}

/** The final answer of a client transaction (status 0: Timer F fired, `res` absent). */
export interface TransactionResult {
  status: number;
  res?: SipResponse;
}

export interface RequestFields {
  method: string;
  ruri: string;
  /** The From URI (the sender's address of record) and its tag. */
  from: string;
  tag: string;
  /** The To URI, and its tag in a dialog. */
  to: string;
  toTag?: string;
  callId: string;
  cseq: number;
  /** Header lines after CSeq (Contact, Event, credentials …). */
  headers: readonly string[];
  body?: string;
}

/** Answers a request from the server: the response goes back where the request came from. */
export type Reply = (res: SipResponse) => void;

interface Pending {
  done(status: number, res?: SipResponse): void;
  interval: number;
  retransmit: NodeJS.Timeout | undefined;
  expires: NodeJS.Timeout;
}

export class UdpUa {
  private readonly socket: Socket = createSocket('udp4');
  private readonly pending = new Map<string, Pending>();
  /** Retransmissions of requests this UA sent. */
  retransmissionsSent = 0;

  /** `onRequest` gets every request from the server but ACK (unparsable datagrams are dropped). */
  constructor(private readonly server: { address: string; port: number }, onRequest: (req: SipRequest, reply: Reply) => void) {
    this.socket.on('message', (data, from) => {
      let m;
      try {
        m = parseMessage(data);
      } catch {
        return;
      }
      if (m instanceof SipResponse) this.response(m);
      else if (m.method !== 'ACK') onRequest(m, (res) => this.socket.send(serializeMessage(res), from.port, from.address));
    });
  }

  /** Binds the socket to an ephemeral port of 127.0.0.1. */
  async bind(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
  }

  /** `127.0.0.1:port` of the socket (for Via and Contact). */
  get local(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  /** Ends every transaction in progress (status 0) and closes the socket. */
  close(): void {
    for (const p of this.pending.values()) p.done(0);
    this.socket.close();
  }

  /** A request from this UA's socket, with a fresh branch and Max-Forwards 70. */
  request(f: RequestFields): OutgoingRequest {
    const branch = `z9hG4bK${hex(8)}`;
    const body = f.body ?? '';
    const lines = [
      `${f.method} ${f.ruri} SIP/2.0`, `Via: SIP/2.0/UDP ${this.local};branch=${branch};rport`, 'Max-Forwards: 70',
      `From: <${f.from}>;tag=${f.tag}`, `To: <${f.to}>${f.toTag === undefined ? '' : `;tag=${f.toTag}`}`, `Call-ID: ${f.callId}`,
      `CSeq: ${f.cseq} ${f.method}`, ...f.headers, `Content-Length: ${Buffer.byteLength(body)}`, '', body,
    ];
    return { text: lines.join('\r\n'), branch };
  }

  /** One non-INVITE client transaction over UDP (RFC 3261 §17.1.2): retransmitted until a final answer or Timer F. */
  transact({ text, branch }: OutgoingRequest): Promise<TransactionResult> {
    return new Promise((resolve) => {
      const send = (): void => this.socket.send(text, this.server.port, this.server.address);
      const p: Pending = {
        interval: T1_MS,
        done: (status, res) => {
          clearTimeout(p.retransmit);
          clearTimeout(p.expires);
          this.pending.delete(branch);
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
      this.pending.set(branch, p);
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
}

/** The challenge header of a 401 and a 407, and the header that answers it (RFC 3261 §22.2, §22.3). */
const CHALLENGES: Readonly<Record<number, { challenge: string; credentials: string }>> = {
  401: { challenge: 'www-authenticate', credentials: 'Authorization' },
  407: { challenge: 'proxy-authenticate', credentials: 'Proxy-Authorization' },
};

/**
 * Digest authentication of one account over a run of requests. The first request goes without credentials; a
 * 401 or 407 is answered with credentials for its nonce; the next requests carry credentials for that nonce
 * straight away, the nonce-count one higher each time (RFC 2617 §3.2.2). A 401/407 to credentials is final,
 * unless it says stale=true (the nonce expired, or its count was taken): the new nonce is then tried once.
 */
export class DigestSession {
  private challenge: { ch: DigestChallenge; header: string } | undefined;
  private nc = 0;

  constructor(private readonly account: { username: string; password: string }) {}

  /**
   * Sends `method` to `uri` through `attempt`, which builds the request with the given credentials header
   * lines (none or one), sends it and resolves with its final answer; resolves with the last answer.
   */
  async send(method: string, uri: string, attempt: (credentials: string[]) => Promise<TransactionResult>): Promise<TransactionResult> {
    let stale = false;
    for (;;) {
      const c = this.challenge;
      const credentials = c === undefined ? [] : [`${c.header}: ${buildCredentials(c.ch, {
        username: this.account.username, password: this.account.password, method, uri, nc: ++this.nc, cnonce: hex(4),
      })}`];
      const r = await attempt(credentials);
      const names = CHALLENGES[r.status];
      if (names === undefined || r.res === undefined) return r;
      const ch = parseChallenge(r.res.get(names.challenge) ?? '', names.challenge);
      // Refused credentials (not stale), or a second stale nonce in a row: final.
      if (credentials.length > 0 && (ch.stale !== true || stale)) return r;
      stale = credentials.length > 0;
      this.challenge = { ch, header: names.credentials };
      this.nc = 0;
    }
  }
}
