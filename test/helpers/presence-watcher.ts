/**
 * A lightweight watcher for tests that need hundreds of them (a SIP.js phone each would cost the test process
 * more than the server): a `UdpUa` of support/udp-ua.ts (one UDP socket, the project's SIP message layer), one
 * subscription (RFC 6665) at a time.
 *
 * `subscribe` sends SUBSCRIBE, answers the 407 with Proxy-Authorization (RFC 3261 §22.3) and resolves on the
 * 200 (its To tag and Contact make the dialog). Every NOTIFY is answered 200, each retransmission too, and
 * recorded once (by CSeq) in `notifies`. `unsubscribe` sends SUBSCRIBE Expires 0 in the dialog. Requests are
 * retransmitted as a non-INVITE client transaction over UDP (§17.1.2.2: T1 = 500 ms doubling to T2 = 4 s) and
 * given up after Timer F (32 s).
 */
import { type SipRequest, createResponse } from '../../src/sip/index.js';
import { DigestSession, type OutgoingRequest, type Reply, type TransactionResult, UdpUa, hex } from '../../support/udp-ua.js';

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

export class UdpWatcher {
  private readonly ua: UdpUa;
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

  private constructor(readonly account: WatcherAccount, server: { address: string; port: number }) {
    this.ua = new UdpUa(server, (req, reply) => this.request(req, reply));
  }

  /** A watcher bound to an ephemeral port of 127.0.0.1, sending to the server's UDP listener. */
  static async open(account: WatcherAccount, server: { address: string; port: number }): Promise<UdpWatcher> {
    const w = new UdpWatcher(account, server);
    await w.ua.bind();
    return w;
  }

  get aor(): string {
    return `sip:${this.account.username}@${this.account.domain}`;
  }

  close(): void {
    this.ua.close();
  }

  /** SUBSCRIBE `presentity` (a SIP URI) to `event` with digest; resolves with the final status (0: none). */
  async subscribe(presentity: string, event: string, expires = 600): Promise<number> {
    this.event = event;
    this.presentity = presentity;
    const r = await new DigestSession(this.account).send('SUBSCRIBE', presentity, (credentials) => this.ua.transact(this.build(presentity, expires, credentials)));
    return this.accepted(r);
  }

  /** SUBSCRIBE Expires 0 in the dialog (RFC 6665 §4.2.1.4); resolves with the final status. */
  async unsubscribe(): Promise<number> {
    if (this.remoteTag === undefined || this.remoteTarget === undefined) throw new Error('not subscribed');
    return (await this.ua.transact(this.build(this.remoteTarget, 0, [], this.remoteTag))).status;
  }

  private accepted(r: TransactionResult): number {
    if (r.status >= 200 && r.status < 300 && r.res !== undefined) {
      this.remoteTag = r.res.to?.tag;
      this.remoteTarget = r.res.contact[0]?.uri.toString();
    }
    return r.status;
  }

  private build(ruri: string, expires: number, extra: string[], toTag?: string): OutgoingRequest {
    return this.ua.request({
      method: 'SUBSCRIBE', ruri, from: this.aor, tag: this.tag, to: this.presentity, toTag,
      callId: this.callId, cseq: ++this.cseq, headers: [
        `Contact: <sip:${this.account.username}@${this.ua.local}>`, `Event: ${this.event}`, `Expires: ${expires}`, ...extra,
      ],
    });
  }

  /** 200 to every NOTIFY (405 to anything else but ACK); each NOTIFY of the subscription recorded once. */
  private request(req: SipRequest, reply: Reply): void {
    reply(createResponse(req, req.method === 'NOTIFY' ? 200 : 405));
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
