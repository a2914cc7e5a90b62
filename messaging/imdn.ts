/**
 * Instant Message Disposition Notifications (RFC 5438): the `message/imdn+xml` document a recipient (or
 * this server, for "stored") sends back to say a message was delivered, displayed or processed, and the
 * CPIM envelope it travels in (§7.1.1.1).
 *
 * The XML is read with fast-xml-parser rather than by hand: the same parser will read presence documents
 * (PIDF, RFC 3863), which are larger and nest deeper, and its validator gives well-formedness checks we
 * would otherwise have to write. Three things are done here on top of it, because the library does not:
 * a document with a DTD is refused before parsing (no entity can be declared, so none can expand), the five
 * predefined entities and character references are decoded by us (processEntities off), and namespaces are
 * resolved from the xmlns attributes, so `<i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn">` is an IMDN and
 * `<imdn>` in another namespace is not (RFC 5438 §7.2.1 names elements by namespace, not by prefix).
 */
import { randomBytes } from 'node:crypto';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
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

/** Characters XML 1.0 §2.2 does not allow at all (escaping cannot help). */
const NOT_XML = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;

function escapeXml(what: string, text: string): string {
  if (NOT_XML.test(text)) throw new ImdnError(`${what}: a control character cannot be written in XML`);
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
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

type XmlValue = string | XmlObject | XmlValue[];
interface XmlObject {
  [key: string]: XmlValue;
}

/** An element with its name resolved: namespace URN (undefined: none) and local name. */
interface XmlElement {
  ns: string | undefined;
  local: string;
  node: XmlValue;
  /** prefix → URN in force inside this element ('' is the default namespace). */
  scope: ReadonlyMap<string, string>;
}

const ATTR = '@_';
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: ATTR,
  removeNSPrefix: false,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

const ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** The predefined entities and character references (XML 1.0 §4.1, §4.6); any other `&` is malformed. */
function decodeXml(text: string): string {
  return text.replace(/&([^;&\s]{0,10});?/g, (match, ref: string) => {
    let code: number | undefined;
    if (/^#[0-9]{1,7}$/.test(ref)) code = Number(ref.slice(1));
    else if (/^#x[0-9a-fA-F]{1,6}$/.test(ref)) code = Number.parseInt(ref.slice(2), 16);
    else if (match.endsWith(';') && ENTITIES[ref] !== undefined) return ENTITIES[ref]!;
    if (code === undefined || !match.endsWith(';') || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) throw new ImdnError(`not an XML reference: ${match.slice(0, 16)}`);
    return String.fromCodePoint(code);
  });
}

function isObject(node: XmlValue): node is XmlObject {
  return typeof node === 'object' && !Array.isArray(node);
}

/** The scope inside an element: its parent's, with its own xmlns / xmlns:p attributes on top. */
function scopeOf(node: XmlValue, parent: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  if (!isObject(node)) return parent;
  let scope: Map<string, string> | undefined;
  for (const [key, value] of Object.entries(node)) {
    if (key !== `${ATTR}xmlns` && !key.startsWith(`${ATTR}xmlns:`)) continue;
    scope ??= new Map(parent);
    scope.set(key === `${ATTR}xmlns` ? '' : key.slice(ATTR.length + 6), decodeXml(String(value)));
  }
  return scope ?? parent;
}

function resolve(name: string, node: XmlValue, parent: ReadonlyMap<string, string>): XmlElement {
  const scope = scopeOf(node, parent);
  const colon = name.indexOf(':');
  const prefix = colon === -1 ? '' : name.slice(0, colon);
  const ns = scope.get(prefix);
  if (ns === undefined && prefix !== '') throw new ImdnError(`undeclared namespace prefix ${prefix.slice(0, 32)}`);
  return { ns: ns === '' ? undefined : ns, local: colon === -1 ? name : name.slice(colon + 1), node, scope };
}

/** The child elements of an element, in document order per name (repeated names come as arrays). */
function childrenOf(element: XmlElement): XmlElement[] {
  if (!isObject(element.node)) return [];
  const out: XmlElement[] = [];
  for (const [key, value] of Object.entries(element.node)) {
    if (key.startsWith(ATTR) || key === '#text') continue;
    for (const node of Array.isArray(value) ? value : [value]) out.push(resolve(key, node, element.scope));
  }
  return out;
}

function textOf(element: XmlElement): string {
  const node = element.node;
  if (typeof node === 'string') return decodeXml(node);
  if (isObject(node) && typeof node['#text'] === 'string') return decodeXml(node['#text']);
  return '';
}

/** The one child `local` in the IMDN namespace; a repeated one is malformed. */
function child(parent: XmlElement, local: string): XmlElement | undefined {
  const found = childrenOf(parent).filter((c) => c.ns === IMDN_XML_NS && c.local === local);
  if (found.length > 1) throw new ImdnError(`<${local}> appears more than once`);
  return found[0];
}

/**
 * Reads a `message/imdn+xml` document. Undefined when it is well-formed XML but not an IMDN (another root
 * element or namespace); ImdnError when it is not well-formed, has a DTD, is over IMDN_MAX_SIZE, or is
 * an IMDN missing what RFC 5438 §7.2.1 requires (message-id, datetime, one notification with one status).
 */
export function parseImdn(xml: string): ImdnNotification | undefined {
  if (xml.length > IMDN_MAX_SIZE) throw new ImdnError(`larger than ${IMDN_MAX_SIZE} characters`);
  // No DTD: an IMDN has none, and entity declarations are the way to make a small document expand.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new ImdnError('a document type declaration is not allowed');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new ImdnError(`not well-formed XML: ${valid.err.msg.slice(0, 120)}`);
  const doc = parser.parse(xml) as XmlObject;
  const roots = Object.entries(doc).filter(([key]) => !key.startsWith('?') && !key.startsWith(ATTR) && key !== '#text');
  if (roots.length !== 1 || Array.isArray(roots[0]![1])) throw new ImdnError('not one root element');
  const root = resolve(roots[0]![0], roots[0]![1], new Map());
  if (root.ns !== IMDN_XML_NS || root.local !== 'imdn') return undefined;

  const required = (local: string): string => {
    const value = child(root, local) === undefined ? '' : textOf(child(root, local)!);
    if (value === '') throw new ImdnError(`<${local}> is missing`);
    return value;
  };
  const optional = (local: string): string | undefined => {
    const element = child(root, local);
    const value = element === undefined ? '' : textOf(element);
    return value === '' ? undefined : value;
  };
  const messageId = required('message-id');
  const dateTime = required('datetime');
  const kinds = (['delivery', 'display', 'processing'] as const).filter((k) => child(root, `${k}-notification`) !== undefined);
  if (kinds.length !== 1) throw new ImdnError(kinds.length === 0 ? 'no notification element' : 'more than one notification element');
  const notification = kinds[0]!;
  const status = child(child(root, `${notification}-notification`)!, 'status');
  const values = status === undefined ? [] : childrenOf(status).filter((c) => c.ns === IMDN_XML_NS);
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
