/**
 * A lightweight watcher for tests that need hundreds of them (a SIP.js phone each would cost the test process
 * more than the server): one UDP socket, the project's SIP message layer (src/sip: parser, digest, response
 * builder), one subscription (RFC 6665) at a time.
 *
 * `subscribe` sends SUBSCRIBE, answers the 407 with Proxy-Authorization (RFC 3261 §22.3) and resolves on the
 * 200 (its To tag and Contact make the dialog). Every NOTIFY is answered 200, each retransmission too, and
 * recorded once (by CSeq) in `notifies`. `unsubscribe` sends SUBSCRIBE Expires 0 in the dialog. Requests are
 * retransmitted as a non-INVITE client transaction over UDP (§17.1.2.2: T1 = 500 ms doubling to T2 = 4 s) and
 * given up after Timer F (32 s).
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { type SipRequest, SipResponse, buildCredentials, createResponse, parseChallenge, parseMessage, serializeMessage } from '../../src/sip/index.js';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const T1_MS = 500;
const T2_MS = 4000;
const TIMER_F_MS = 64 * T1_MS;

/** A NOTIFY as the watcher received it (the first copy). */
export interface WatcherNotify {
  cseq: number;
  subscriptionState: string;
  contentType: string;
  body: string;
  /** performance.now() when it arrived. */
  at: number;
}

export interface WatcherAccount {
  username: string;
  domain: string;
  password: string;
}

interface Pending {
  done(status: number, res?: SipResponse): void;
  interval: number;
  retransmit: NodeJS.Timeout | undefined;
  expires: NodeJS.Timeout;
}

export class UdpWatcher {
  private readonly socket: Socket = createSocket('udp4');
  private readonly pending = new Map<string, Pending>();
  private readonly tag = hex(4);
  private readonly callId = `${hex(8)}@watcher`;
  private cseq = 0;
  private event = '';
  private presentity = '';
  /** The dialog, once the SUBSCRIBE was answered 200. */
  private remoteTag: string | undefined;
  private remoteTarget: string | undefined;
  private readonly seen = new Set<number>();
  readonly notifies: WatcherNotify[] = [];
  /** Called for the first copy of every NOTIFY. */
  onNotify: ((n: WatcherNotify) => void) | undefined;

  private constructor(readonly account: WatcherAccount, private readonly server: { address: string; port: number }) {
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

  /** A watcher bound to an ephemeral port of 127.0.0.1, sending to the server's UDP listener. */
  static async open(account: WatcherAccount, server: { address: string; port: number }): Promise<UdpWatcher> {
    const w = new UdpWatcher(account, server);
    await new Promise<void>((resolve) => w.socket.bind(0, '127.0.0.1', resolve));
    return w;
  }

  get aor(): string {
    return `sip:${this.account.username}@${this.account.domain}`;
  }

  private get local(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  close(): void {
    for (const p of this.pending.values()) p.done(0);
    this.socket.close();
  }

  /** SUBSCRIBE `presentity` (a SIP URI) to `event` with digest; resolves with the final status (0: none). */
  async subscribe(presentity: string, event: string, expires = 600): Promise<number> {
    this.event = event;
    this.presentity = presentity;
    const first = await this.transact(this.build(presentity, expires, []));
    if (first.status !== 407 || first.res === undefined) return this.accepted(first);
    const ch = parseChallenge(first.res.get('proxy-authenticate') ?? '', 'proxy-authenticate');
    const auth = buildCredentials(ch, { username: this.account.username, password: this.account.password, method: 'SUBSCRIBE', uri: presentity, nc: 1, cnonce: hex(4) });
    return this.accepted(await this.transact(this.build(presentity, expires, [`Proxy-Authorization: ${auth}`])));
  }

  /** SUBSCRIBE Expires 0 in the dialog (RFC 6665 §4.2.1.4); resolves with the final status. */
  async unsubscribe(): Promise<number> {
    if (this.remoteTag === undefined || this.remoteTarget === undefined) throw new Error('not subscribed');
    return (await this.transact(this.build(this.remoteTarget, 0, [], this.remoteTag))).status;
  }

  private accepted(r: { status: number; res?: SipResponse }): number {
    if (r.status >= 200 && r.status < 300 && r.res !== undefined) {
      this.remoteTag = r.res.to?.tag;
      this.remoteTarget = r.res.contact[0]?.uri.toString();
    }
    return r.status;
  }

  private build(ruri: string, expires: number, extra: string[], toTag?: string): { text: string; branch: string } {
    const branch = `z9hG4bK${hex(8)}`;
    const lines = [
      `SUBSCRIBE ${ruri} SIP/2.0`, `Via: SIP/2.0/UDP ${this.local};branch=${branch};rport`, 'Max-Forwards: 70',
      `From: <${this.aor}>;tag=${this.tag}`, `To: <${this.presentity}>${toTag === undefined ? '' : `;tag=${toTag}`}`,
      `Call-ID: ${this.callId}`, `CSeq: ${++this.cseq} SUBSCRIBE`, `Contact: <sip:${this.account.username}@${this.local}>`,
      `Event: ${this.event}`, `Expires: ${expires}`, ...extra, 'Content-Length: 0', '', '',
    ];
    return { text: lines.join('\r\n'), branch };
  }

  /** One non-INVITE client transaction over UDP (RFC 3261 §17.1.2): retransmitted until a final answer or Timer F. */
  private transact(req: { text: string; branch: string }): Promise<{ status: number; res?: SipResponse }> {
    return new Promise((resolve) => {
      const send = (): void => this.socket.send(req.text, this.server.port, this.server.address);
      const p: Pending = {
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
      const schedule = (): void => {
        p.retransmit = setTimeout(() => {
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
      p.interval = T2_MS;
      return;
    }
    p.done(res.status, res);
  }

  /** 200 to every NOTIFY (and anything else but ACK), back where it came from; each NOTIFY recorded once. */
  private request(req: SipRequest, port: number, address: string): void {
    if (req.method === 'ACK') return;
    this.socket.send(serializeMessage(createResponse(req, req.method === 'NOTIFY' ? 200 : 405)), port, address);
    if (req.method !== 'NOTIFY' || req.callId !== this.callId) return;
    const cseq = req.cseq?.seq ?? 0;
    if (this.seen.has(cseq)) return;
    this.seen.add(cseq);
    const n: WatcherNotify = {
      cseq,
      subscriptionState: req.get('subscription-state') ?? '',
      contentType: req.contentType ?? '',
      body: req.body.toString('utf8'),
      at: performance.now(),
    };
    this.notifies.push(n);
    this.onNotify?.(n);
  }
}
