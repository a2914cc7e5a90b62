/**
 * SIP MESSAGE (RFC 3428) in: a message from an authenticated user (or a trusted source: an SMS from
 * FreeSWITCH) to a user or a group of ours is stored, answered 202 Accepted at once (RFC 3428 §7: the
 * server has taken it, delivery comes later), and handed to delivery.
 *
 * Bodies: `text/plain` and friends as they are; `message/cpim` (RFC 3862) as it is too, with its IMDN
 * request (RFC 5438 §6: `imdn.Message-ID`, `imdn.Disposition-Notification`) kept so receipts find it. An
 * IMDN itself (a `message/imdn+xml` document, CPIM-wrapped or bare) is not a chat message: it records
 * "delivered"/"displayed" at the reader's device and goes on to the original sender's devices.
 * When the sender asked for a processing notification the server sends one: `stored` when no device of
 * a recipient is online, else `processed` (§7.2.1.3).
 */
import type { Stack } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import type { SipRequest } from '../src/sip/index.js';
import type { ServerTransaction } from '../src/transaction/index.js';
import type { Flow } from '../src/transport/types.js';
import type { ConversationRecord, MessageRepository, StoredMessage } from '../platform/store/index.js';
import { type ChatService, isGroupId } from './chat-service.js';
import { CpimError, imdnRequest, parseCpim } from './cpim.js';
import { type DeviceDirectory, aorOfUser, deviceKey } from './devices.js';
import { ImdnError, imdnCpim, parseImdn } from './imdn.js';
import type { SendLimits } from './send-limits.js';
import { ChatError } from './types.js';

const IMDN_TYPE = 'message/imdn+xml';

export interface SipMessagingOptions {
  stack: Pick<Stack, 'respond'>;
  chat: ChatService;
  repo: MessageRepository;
  limits: SendLimits;
  devices: DeviceDirectory;
  logger: Logger;
  clock?: () => number;
}

/** SIP status of a refusal. */
const SIP_STATUS: Record<ChatError['code'], [number, string]> = {
  'not-found': [404, 'Not Found'],
  forbidden: [403, 'Forbidden'],
  'too-large': [413, 'Request Entity Too Large'],
  'unsupported-type': [415, 'Unsupported Media Type'],
  'rate-limited': [503, 'Service Unavailable (too many messages)'],
  'group-full': [403, 'Forbidden'],
  invalid: [400, 'Bad Request'],
};

export class SipMessaging {
  private readonly opts: SipMessagingOptions;
  private readonly log: Logger;
  private readonly clock: () => number;
  readonly counters = { received: 0, refused: 0, receipts: 0 };

  constructor(options: SipMessagingOptions) {
    this.opts = options;
    this.log = categoryLogger(options.logger, 'messaging');
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Takes a MESSAGE for `recipient` (`user@domain` of ours, or `group-…@domain`). `sender` is the
   * authenticated user, or a trusted source's From. Resolves false, having answered nothing, when the
   * recipient is a group that does not exist (the router answers 404).
   */
  async take(req: SipRequest, tx: ServerTransaction, sender: string, recipient: string): Promise<boolean> {
    const at = recipient.lastIndexOf('@');
    const [name, domain] = [recipient.slice(0, at), recipient.slice(at + 1)];
    let conversation: ConversationRecord | undefined;
    try {
      if (isGroupId(name)) {
        conversation = await this.opts.chat.conversation(name);
        if (conversation === undefined || conversation.domain !== domain) return false;
        if (!(await this.opts.chat.isMember(conversation.id, sender))) throw new ChatError('forbidden', 'not a member of the group');
      } else {
        conversation = await this.opts.chat.directConversation(sender, recipient);
      }
      await this.accept(req, tx, sender, conversation, recipient);
    } catch (err) {
      if (!(err instanceof ChatError)) throw err;
      this.counters.refused++;
      const [status, reason] = SIP_STATUS[err.code];
      const headers: Array<[string, string]> = [];
      if (err.retryAfterS !== undefined) headers.push(['Retry-After', String(err.retryAfterS)]);
      if (err.code === 'unsupported-type') headers.push(['Accept', 'text/plain, message/cpim, message/imdn+xml']);
      this.log.info({ from: sender, to: recipient, code: err.code, reason: err.message }, 'chat message refused');
      this.opts.stack.respond(tx, status, { reason: reason === 'Forbidden' ? `Forbidden (${err.message})` : reason, headers });
    }
    return true;
  }

  private async accept(req: SipRequest, tx: ServerTransaction, sender: string, conversation: ConversationRecord, recipient: string): Promise<void> {
    const contentType = req.get('content-type')?.trim() ?? '';
    const mediaType = req.contentType ?? '';
    if (req.body.length === 0) throw new ChatError('invalid', 'a MESSAGE without a body');
    this.opts.chat.checkBody(mediaType === IMDN_TYPE ? 'message/cpim' : mediaType, req.body.length);
    let imdnId: string | undefined;
    let notify: string[] | undefined;
    let inner: string | undefined;
    if (mediaType === 'message/cpim') {
      try {
        const cpim = parseCpim(req.body.toString('utf8'));
        inner = cpim.contentType.toLowerCase().split(';')[0]!.trim();
        const request = imdnRequest(cpim);
        imdnId = request?.messageId;
        notify = request?.dispositions;
        if (inner === IMDN_TYPE) return await this.receipt(req, tx, sender, conversation, recipient, cpim.body);
      } catch (err) {
        if (err instanceof CpimError) throw new ChatError('invalid', `malformed CPIM: ${err.message}`);
        throw err;
      }
    } else if (mediaType === IMDN_TYPE) {
      return this.receipt(req, tx, sender, conversation, recipient, req.body.toString('utf8'));
    }
    this.opts.limits.take(sender, conversation.id);
    const stored = await this.opts.chat.post({
      conversation, sender, kind: 'text', contentType, body: req.body, imdnId, notify, originDevice: this.senderDevice(sender, tx.flow),
    });
    this.counters.received++;
    this.opts.stack.respond(tx, 202, { headers: [['X-Message-Id', stored.id]] });
    if (notify?.includes('processing') === true && imdnId !== undefined) await this.processing(stored, conversation, recipient, imdnId);
  }

  /** A receipt from `reader`'s device: recorded, then on to the original sender. */
  private async receipt(req: SipRequest, tx: ServerTransaction, reader: string, conversation: ConversationRecord, recipient: string, xml: string): Promise<void> {
    let notice;
    try {
      notice = parseImdn(xml);
    } catch (err) {
      if (err instanceof ImdnError) throw new ChatError('invalid', `malformed IMDN: ${err.message}`);
      throw err;
    }
    if (notice === undefined) throw new ChatError('invalid', 'not an IMDN document');
    this.counters.receipts++;
    // The receipt is addressed to the original sender (RFC 5438 §7.1.1.1), whose message it names.
    const original = await this.opts.repo.findByImdnId(recipient, notice.messageId);
    const device = this.senderDevice(reader, tx.flow) ?? 'unknown';
    const at = this.clock();
    let home = conversation;
    if (original !== undefined) {
      home = (await this.opts.chat.conversation(original.conversationId)) ?? conversation;
      if (notice.status === 'delivered') await this.opts.repo.receipt(original.seq, reader, device, 'delivered', at);
      if (notice.status === 'displayed') {
        await this.opts.repo.receipt(original.seq, reader, device, 'displayed', at);
        // Read on one device is read on all: the unread count follows.
        await this.opts.repo.markRead(original.conversationId, reader, original.seq);
      }
    }
    await this.opts.chat.post({
      conversation: home, sender: reader, kind: 'imdn', contentType: req.get('content-type') ?? IMDN_TYPE, body: req.body,
      refSeq: original?.seq, recipients: [recipient], originDevice: device,
    });
    this.opts.stack.respond(tx, 202);
  }

  /** RFC 5438 §7.2.1.3: the server's own notification, `stored` or `processed`, to the sender's devices. */
  private async processing(message: StoredMessage, conversation: ConversationRecord, recipient: string, imdnId: string): Promise<void> {
    // A group's message is processed (fanned out); a user's is stored until one of its devices is online.
    const online = conversation.kind === 'group' || this.opts.devices.lookup(aorOfUser(recipient)).some((b) => !this.opts.devices.isAsleep(b));
    const body = imdnCpim({
      from: aorOfUser(recipient),
      to: aorOfUser(message.sender),
      dateTime: this.clock(),
      imdn: { messageId: imdnId, dateTime: message.createdAt, recipientUri: aorOfUser(recipient), notification: 'processing', status: online ? 'processed' : 'stored' },
    });
    await this.opts.chat.post({
      conversation, sender: recipient, kind: 'imdn', contentType: 'message/cpim', body: Buffer.from(body, 'utf8'), refSeq: message.seq, recipients: [message.sender],
    });
  }

  /** The sender's device the request came from: the binding on this connection (or UDP address). */
  private senderDevice(sender: string, flow: Flow): string | undefined {
    for (const b of this.opts.devices.lookup(aorOfUser(sender))) {
      if (b.flow !== undefined && b.flow.id === flow.id) return deviceKey(b);
      if (flow.protocol === 'udp' && b.received.protocol === 'udp' && b.received.address === flow.remote.address && b.received.port === flow.remote.port) return deviceKey(b);
    }
    return undefined;
  }
}
