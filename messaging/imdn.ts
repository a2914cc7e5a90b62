/**
 * Instant Message Disposition Notifications (RFC 5438): the `message/imdn+xml` document a recipient (or
 * this server, for "stored") sends back to say a message was delivered, displayed or processed, and the
 * CPIM envelope it travels in (§7.1.1.1).
 *
 * The XML is read and written with platform/xml (safe-xml.ts), shared with the presence documents: no DTD,
 * a size cap, only the predefined entities, and namespaces resolved from the xmlns attributes, so
 * `<i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn">` is an IMDN and `<imdn>` in another namespace is not
 * (RFC 5438 §7.2.1 names elements by namespace, not by prefix).
 */
import { randomBytes } from 'node:crypto';
import { SafeXmlError, escapeXml as escapeXmlText, parseSafeXml, type XmlElement } from '../platform/xml/index.js';
import { IMDN_NS, buildCpim } from './cpim.js';

/** The XML namespace of the IMDN document (RFC 5438 §7.2.1). */
export const IMDN_XML_NS = 'urn:ietf:params:xml:ns:imdn';
export const IMDN_CONTENT_TYPE = 'message/imdn+xml';
/** Largest IMDN document read (characters): a real one is a few hundred. */
export const IMDN_MAX_SIZE = 16_384;

export type ImdnKind = 'delivery' | 'display' | 'processing';
export type ImdnStatus = 'delivered' | 'failed' | 'displayed' | 'processed' | 'stored' | 'forbidden' | 'error';

/** The statuses each kind of notification may carry (RFC 5438 §7.2.1.1 – §7.2.1.3). */
export const IMDN_STATUSES: Readonly<Record<ImdnKind, readonly ImdnStatus[]>> = {
  delivery: ['delivered', 'failed', 'forbidden', 'error'],
  display: ['displayed', 'forbidden', 'error'],
  processing: ['processed', 'stored', 'forbidden', 'error'],
};

/** One notification, as written (buildImdn) or read (parseImdn). */
export interface ImdnNotification {
  /** The `imdn.Message-ID` of the message this reports on. */
  messageId: string;
  /** The DateTime of the message this reports on (a copy of its CPIM DateTime, §7.2.1). */
  dateTime: string;
  /** Who the notification is about: the recipient (a URI). Optional on input (the schema's minOccurs=0). */
  recipientUri?: string | undefined;
  /** The recipient as the sender addressed it, when it differs (e.g. a group's URI). */
  originalRecipientUri?: string | undefined;
  notification: ImdnKind;
  status: ImdnStatus;
}

export interface BuildImdnOptions {
  messageId: string;
  /** RFC 3339 text as the message carried it, or ms since the epoch. */
  dateTime: string | number;
  recipientUri: string;
  originalRecipientUri?: string | undefined;
  notification: ImdnKind;
  status: ImdnStatus;
}

export type ImdnErrorCode = 'MESSAGING_ERR_IMDN';

/** A malformed IMDN document, or a notification that cannot be written (a status its kind does not have). */
export class ImdnError extends Error {
  readonly code: ImdnErrorCode = 'MESSAGING_ERR_IMDN';

  constructor(message: string) {
    super(message);
    this.name = 'ImdnError';
  }
}

/** The platform's refusal, as this module's error (callers and tests know MESSAGING_ERR_IMDN). */
function imdnError(err: unknown): unknown {
  return err instanceof SafeXmlError ? new ImdnError(err.message) : err;
}

function escapeXml(what: string, text: string): string {
  try {
    return escapeXmlText(what, text);
  } catch (err) {
    throw imdnError(err);
  }
}

const dateTimeText = (dateTime: string | number): string => (typeof dateTime === 'number' ? new Date(dateTime).toISOString() : dateTime);

/** The `message/imdn+xml` document of RFC 5438 §7.2.1 (UTF-8, every value XML-escaped). */
export function buildImdn(options: BuildImdnOptions): string {
  const { notification, status } = options;
  if (!IMDN_STATUSES[notification].includes(status)) throw new ImdnError(`a ${notification} notification has no status ${status}`);
  const element = (name: string, value: string | undefined) => (value === undefined ? '' : `  <${name}>${escapeXml(name, value)}</${name}>\r\n`);
  return '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    + `<imdn xmlns="${IMDN_XML_NS}">\r\n`
    + element('message-id', options.messageId)
    + element('datetime', dateTimeText(options.dateTime))
    + element('recipient-uri', options.recipientUri)
    + element('original-recipient-uri', options.originalRecipientUri)
    + `  <${notification}-notification>\r\n    <status>\r\n      <${status}/>\r\n    </status>\r\n  </${notification}-notification>\r\n`
    + '</imdn>\r\n';
}

// ---- reading ----

/** The one child `local` in the IMDN namespace; a repeated one is malformed. */
function child(parent: XmlElement, local: string): XmlElement | undefined {
  const found = parent.children.filter((c) => c.ns === IMDN_XML_NS && c.local === local);
  if (found.length > 1) throw new ImdnError(`<${local}> appears more than once`);
  return found[0];
}

/**
 * Reads a `message/imdn+xml` document. Undefined when it is well-formed XML but not an IMDN (another root
 * element or namespace); ImdnError when it is not well-formed, has a DTD, is over IMDN_MAX_SIZE, or is
 * an IMDN missing what RFC 5438 §7.2.1 requires (message-id, datetime, one notification with one status).
 */
export function parseImdn(xml: string): ImdnNotification | undefined {
  let root: XmlElement;
  try {
    root = parseSafeXml(xml, { maxSize: IMDN_MAX_SIZE });
  } catch (err) {
    throw imdnError(err);
  }
  if (root.ns !== IMDN_XML_NS || root.local !== 'imdn') return undefined;

  const required = (local: string): string => {
    const value = child(root, local)?.text ?? '';
    if (value === '') throw new ImdnError(`<${local}> is missing`);
    return value;
  };
  const optional = (local: string): string | undefined => {
    const element = child(root, local);
    const value = element?.text ?? '';
    return value === '' ? undefined : value;
  };
  const messageId = required('message-id');
  const dateTime = required('datetime');
  const kinds = (['delivery', 'display', 'processing'] as const).filter((k) => child(root, `${k}-notification`) !== undefined);
  if (kinds.length !== 1) throw new ImdnError(kinds.length === 0 ? 'no notification element' : 'more than one notification element');
  const notification = kinds[0]!;
  const status = child(child(root, `${notification}-notification`)!, 'status');
  const values = status === undefined ? [] : status.children.filter((c) => c.ns === IMDN_XML_NS);
  if (values.length !== 1) throw new ImdnError(`<${notification}-notification> needs one status`);
  const value = values[0]!.local as ImdnStatus;
  if (!IMDN_STATUSES[notification].includes(value)) throw new ImdnError(`a ${notification} notification has no status ${value.slice(0, 32)}`);
  return {
    messageId, dateTime, recipientUri: optional('recipient-uri'), originalRecipientUri: optional('original-recipient-uri'), notification, status: value,
  };
}

// ---- the CPIM envelope ----

export interface ImdnCpimOptions {
  /** The recipient of the original message, who the notification comes from (a URI or a name-addr). */
  from: string;
  /** The original sender (a URI or a name-addr). */
  to: string;
  /** When the notification is sent (RFC 3339 text or ms since the epoch). */
  dateTime: string | number;
  /** The notification's own `imdn.Message-ID`; a fresh one (newImdnMessageId) when absent. */
  messageId?: string | undefined;
  /** The document (see buildImdn). */
  imdn: BuildImdnOptions;
}

/** A new IMDN Message-ID: 96 random bits, base64url (RFC 5438 §6.3: unique, at least 32 bits of randomness). */
export function newImdnMessageId(): string {
  return randomBytes(12).toString('base64url');
}

const addr = (uri: string): string => (uri.includes('<') ? uri : `<${uri}>`);

/**
 * The whole `message/cpim` body of a notification as a server sends it (RFC 5438 §7.1.1.1): From, To,
 * DateTime, the imdn namespace, the notification's own Message-ID, and the document as the inner part with
 * `Content-Disposition: notification`. It asks for no notification itself (§7.1.1.1: an IMDN never does).
 */
export function imdnCpim(options: ImdnCpimOptions): string {
  return buildCpim({
    headers: [
      ['From', addr(options.from)],
      ['To', addr(options.to)],
      ['DateTime', dateTimeText(options.dateTime)],
      ['NS', `imdn <${IMDN_NS}>`],
      ['imdn.Message-ID', options.messageId ?? newImdnMessageId()],
    ],
    contentType: IMDN_CONTENT_TYPE,
    contentHeaders: [['Content-Type', IMDN_CONTENT_TYPE], ['Content-Disposition', 'notification']],
    body: buildImdn(options.imdn),
  });
}
