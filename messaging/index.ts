/**
 * Chat: one-to-one and group messages over SIP MESSAGE (RFC 3428) and the HTTP API, stored once and
 * sealed, delivered to every device of every recipient and to the sender's other devices, in order and
 * once each, offline devices at their next REGISTER (woken by a push when they can be), with receipts
 * (RFC 5438) and files encrypted at rest.
 *
 * `createMessaging` composes the parts; the routing policy hands it MESSAGEs (`sip.take`), the HTTP
 * server mounts `chatRoutes(chat)` and `fileRoutes(...)`.
 */
import type { Stack } from '../src/core/index.js';
import { type Logger, categoryLogger } from '../src/log/index.js';
import type { InboxEntry, MessageRepository } from '../platform/store/index.js';
import { ChatService, type Sealer } from './chat-service.js';
import { Delivery, type DeliveryStats, type OutgoingMessage } from './delivery.js';
import { type DeviceDirectory, aorOfUser } from './devices.js';
import { imdnCpim } from './imdn.js';
import { SendLimits } from './send-limits.js';
import { SipMessaging } from './sip-messaging.js';

export { ChatService, type MeetingReader, type Sealer, directId, guestOfSender, guestSender, isGroupId, meetingGroupId, newId } from './chat-service.js';
export { Delivery, type DeliveryStats } from './delivery.js';
export { type DeviceDirectory, deviceKey, aorOfUser, userOfAor } from './devices.js';
export { SendLimits } from './send-limits.js';
export { SipMessaging } from './sip-messaging.js';
export * from './types.js';

/** How often retention runs. */
const RETENTION_INTERVAL_MS = 3_600_000;

export interface MessagingOptions {
  maxBodySize: number;
  ratePerMinute: number;
  floodPer10s: number;
  maxGroupMembers: number;
  /** 0: forever. */
  retentionDays: number;
  deliveryTimeoutMs: number;
}

export interface MessagingDeps {
  stack: Pick<Stack, 'sendRequest' | 'respond'>;
  repo: MessageRepository;
  sealer: Sealer;
  devices: DeviceDirectory;
  domains: string[];
  userExists(user: string): Promise<boolean>;
  /** A file's ciphertext goes (retention). */
  removeFile?: (location: string) => Promise<void>;
  options: MessagingOptions;
  logger: Logger;
  /** ms since the epoch; Date.now by default (tests). */
  clock?: () => number;
}

export interface MessagingStats extends DeliveryStats {
  received: number;
  refused: number;
  receipts: number;
}

export interface Messaging {
  readonly chat: ChatService;
  readonly sip: SipMessaging;
  readonly delivery: Delivery;
  start(): void;
  stop(): void;
  stats(): MessagingStats;
  /** Deletes what is older than messaging.retentionDays now (also run hourly). */
  purge(): Promise<{ messages: number; files: number }>;
}

export function createMessaging(deps: MessagingDeps): Messaging {
  const log = categoryLogger(deps.logger, 'messaging');
  const limits = new SendLimits({ ratePerMinute: deps.options.ratePerMinute, floodPer10s: deps.options.floodPer10s });
  const chat = new ChatService({
    repo: deps.repo,
    sealer: deps.sealer,
    domains: deps.domains,
    userExists: deps.userExists,
    limits,
    maxGroupMembers: deps.options.maxGroupMembers,
    maxBodySize: deps.options.maxBodySize,
    clock: deps.clock,
    // RFC 5438 §7.1.1.1: read through the API, the sender who asked for it gets a display notification.
    displayReceipt: (message, reader, at) => (message.imdnId === undefined ? undefined : {
      contentType: 'message/cpim',
      body: Buffer.from(imdnCpim({
        from: aorOfUser(reader),
        to: aorOfUser(message.sender),
        dateTime: at,
        imdn: { messageId: message.imdnId, dateTime: message.createdAt, recipientUri: aorOfUser(reader), notification: 'display', status: 'displayed' },
      }), 'utf8'),
    }),
    logger: deps.logger,
  });
  const render = async (entry: InboxEntry): Promise<OutgoingMessage | undefined> => {
    const m = entry.message;
    const conversation = await chat.conversation(m.conversationId);
    if (conversation === undefined) return undefined;
    // A receipt goes to the original sender; a message to its group, or to the other user of the pair
    // (the sender's own devices see whom they wrote to).
    const to = m.kind === 'imdn' ? aorOfUser(entry.user) : await chat.uriFor(conversation, m.sender);
    const from = chat.senderOf(m);
    return { from: from.uri, fromName: from.name, to, contentType: m.contentType, body: chat.openBody(m) };
  };
  const delivery = new Delivery({ stack: deps.stack, repo: deps.repo, devices: deps.devices, render, timeoutMs: deps.options.deliveryTimeoutMs, logger: deps.logger });
  chat.onStored((message, recipients, text) => {
    delivery.announce(recipients);
    for (const user of recipients) {
      const own = user === message.sender;
      const push = message.kind === 'text' && !own ? { id: message.id, from: chat.senderOf(message).uri, body: text } : undefined;
      delivery.kick(user, push, own ? message.originDevice : undefined);
    }
  });
  const sip = new SipMessaging({ stack: deps.stack, chat, repo: deps.repo, limits, devices: deps.devices, logger: deps.logger });
  let timer: NodeJS.Timeout | undefined;
  const purge = async (): Promise<{ messages: number; files: number }> => {
    if (deps.options.retentionDays <= 0) return { messages: 0, files: 0 };
    const result = await deps.repo.purge((deps.clock ?? Date.now)() - deps.options.retentionDays * 86_400_000);
    for (const f of result.files) await deps.removeFile?.(f.location).catch((err: Error) => log.warn({ err: err.message, file: f.id }, 'an expired chat file could not be deleted'));
    if (result.messages > 0 || result.files.length > 0) log.info({ messages: result.messages, files: result.files.length, retentionDays: deps.options.retentionDays }, 'old chat messages and files deleted');
    return { messages: result.messages, files: result.files.length };
  };
  return {
    chat,
    sip,
    delivery,
    start() {
      delivery.start();
      if (deps.options.retentionDays > 0) {
        const run = (): void => void purge().catch((err: Error) => log.warn({ err: err.message }, 'chat retention failed; it runs again in an hour'));
        run();
        timer = setInterval(run, RETENTION_INTERVAL_MS);
        timer.unref();
      }
    },
    stop() {
      clearInterval(timer);
      delivery.stop();
    },
    stats: () => ({ ...delivery.stats(), ...sip.counters }),
    purge,
  };
}
