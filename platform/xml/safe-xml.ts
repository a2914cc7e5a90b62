/**
 * Reading and writing the small XML documents SIP carries (IMDN, RFC 5438; PIDF, RFC 3863; dialog-info,
 * RFC 4235) without trusting the sender. One copy of this code, used by messaging/ and presence/.
 *
 * The XML is read with fast-xml-parser (its validator gives well-formedness checks we would otherwise have
 * to write), in document order (`preserveOrder`: PIDF's activities and notes are "the first", RFC 4480 §3).
 * Four things are done here on top of it, because the library does not:
 * - a document with a DTD is refused before parsing: no entity can be declared, so none can expand (the
 *   "billion laughs"); the documents we read never have one;
 * - a size cap, checked before anything else, and a nesting cap, so a document costs a bounded amount;
 * - the five predefined entities and character references are decoded by us (processEntities off), and any
 *   other `&` is malformed (XML 1.0 §4.1, §4.6);
 * - namespaces are resolved from the xmlns attributes (Namespaces in XML 1.0 §6), so an element is named by
 *   its URN and local name, never by its prefix: `<i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn">` is an IMDN
 *   and `<imdn>` in another namespace is not.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export type SafeXmlErrorCode =
  | 'XML_ERR_TOO_LARGE' // over the caller's size limit
  | 'XML_ERR_DTD' // a document type declaration
  | 'XML_ERR_MALFORMED'; // not well-formed, an unknown entity, an undeclared prefix, too deep

/** A document refused by parseSafeXml, or a value escapeXml cannot write. Messages never quote much input. */
export class SafeXmlError extends Error {
  readonly code: SafeXmlErrorCode;

  constructor(code: SafeXmlErrorCode, message: string) {
    super(message);
    this.name = 'SafeXmlError';
    this.code = code;
  }
}

/** The namespace the `xml` prefix is bound to without a declaration (Namespaces in XML 1.0 §3). */
export const XML_NS = 'http://www.w3.org/XML/1998/namespace';
/** Deepest element nesting read: the documents we read nest at most six levels. */
export const XML_MAX_DEPTH = 32;

/** One element, its name resolved: namespace URN (undefined: none) and local name; children in document order. */
export interface XmlElement {
  readonly ns: string | undefined;
  readonly local: string;
  /** Attributes by their name as written (`entity`, `xml:lang`), values decoded; xmlns declarations excluded. */
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** The element's own character data (not its children's), decoded; the parser trims each text run. */
  readonly text: string;
}

export interface ParseSafeXmlOptions {
  /** Largest document read, in characters; larger is refused before parsing. */
  maxSize: number;
}

/** Characters XML 1.0 §2.2 does not allow at all (escaping cannot help); with `u`, a lone surrogate too. */
const NOT_XML = /[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]/u;
const NOT_XML_ALL = new RegExp(NOT_XML.source, 'gu');
const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/**
 * Text safe inside an element or a quoted attribute: the five markup characters escaped. A character XML
 * cannot carry at all (a control character) is refused (XML_ERR_MALFORMED), naming `what`, not quoting it.
 */
export function escapeXml(what: string, text: string): string {
  if (NOT_XML.test(text)) throw new SafeXmlError('XML_ERR_MALFORMED', `${what}: a control character cannot be written in XML`);
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Text with the characters XML cannot carry removed: for values a document must carry anyway (a user's note). */
export function stripNonXml(text: string): string {
  return text.replace(NOT_XML_ALL, '');
}

const ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** The predefined entities and character references (XML 1.0 §4.1, §4.6); any other `&` is malformed. */
export function decodeXml(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^;&\s]{0,10});?/g, (match, ref: string) => {
    let code: number | undefined;
    if (/^#[0-9]{1,7}$/.test(ref)) code = Number(ref.slice(1));
    else if (/^#x[0-9a-fA-F]{1,6}$/.test(ref)) code = Number.parseInt(ref.slice(2), 16);
    else if (match.endsWith(';') && ENTITIES[ref] !== undefined) return ENTITIES[ref]!;
    if (code === undefined || !match.endsWith(';') || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      throw new SafeXmlError('XML_ERR_MALFORMED', `not an XML reference: ${match.slice(0, 16)}`);
    }
    return String.fromCodePoint(code);
  });
}

// fast-xml-parser's ordered output: an element is `{ name: Node[], ':@'?: { '@_attr': value } }`, text is
// `{ '#text': string }`, CDATA `{ '#cdata': [{ '#text': string }] }` (kept apart: its text is not decoded).
type OrderedNode = Record<string, unknown>;

const ATTR = '@_';
const ATTRS = ':@';
const TEXT = '#text';
const CDATA = '#cdata';
const parser = new XMLParser({
  preserveOrder: true,
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
  cdataPropName: CDATA,
  maxNestedTags: XML_MAX_DEPTH,
});

function elementName(node: OrderedNode): string | undefined {
  for (const key of Object.keys(node)) if (key !== ATTRS && key !== TEXT && key !== CDATA) return key;
  return undefined;
}

function build(node: OrderedNode, name: string, parentScope: ReadonlyMap<string, string>, depth: number): XmlElement {
  if (depth > XML_MAX_DEPTH) throw new SafeXmlError('XML_ERR_MALFORMED', `nested deeper than ${XML_MAX_DEPTH} elements`);
  const rawAttrs = (node[ATTRS] ?? {}) as Record<string, unknown>;
  let scope: Map<string, string> | undefined;
  const attributes = new Map<string, string>();
  for (const [key, value] of Object.entries(rawAttrs)) {
    const attr = key.startsWith(ATTR) ? key.slice(ATTR.length) : key;
    const decoded = decodeXml(String(value));
    if (attr === 'xmlns' || attr.startsWith('xmlns:')) {
      scope ??= new Map(parentScope);
      scope.set(attr === 'xmlns' ? '' : attr.slice(6), decoded);
    } else {
      attributes.set(attr, decoded);
    }
  }
  const inScope = scope ?? parentScope;
  const colon = name.indexOf(':');
  const prefix = colon === -1 ? '' : name.slice(0, colon);
  const ns = prefix === 'xml' ? XML_NS : inScope.get(prefix);
  if (ns === undefined && prefix !== '') throw new SafeXmlError('XML_ERR_MALFORMED', `undeclared namespace prefix ${prefix.slice(0, 32)}`);

  const children: XmlElement[] = [];
  let text = '';
  for (const item of (node[name] ?? []) as OrderedNode[]) {
    if (typeof item[TEXT] === 'string' || typeof item[TEXT] === 'number') {
      text += decodeXml(String(item[TEXT]));
    } else if (Array.isArray(item[CDATA])) {
      for (const part of item[CDATA] as OrderedNode[]) text += String(part[TEXT] ?? '');
    } else {
      const childName = elementName(item);
      if (childName !== undefined) children.push(build(item, childName, inScope, depth + 1));
    }
  }
  return { ns: ns === '' ? undefined : ns, local: colon === -1 ? name : name.slice(colon + 1), attributes, children, text };
}

/**
 * Reads a document into its root element, or throws SafeXmlError: over `maxSize` (XML_ERR_TOO_LARGE), a DTD
 * (XML_ERR_DTD), not well-formed, not one root element, an unknown entity, an undeclared prefix, or nested
 * deeper than XML_MAX_DEPTH (XML_ERR_MALFORMED).
 */
export function parseSafeXml(xml: string, options: ParseSafeXmlOptions): XmlElement {
  if (xml.length > options.maxSize) throw new SafeXmlError('XML_ERR_TOO_LARGE', `larger than ${options.maxSize} characters`);
  // No DTD: entity declarations are the way to make a small document expand.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new SafeXmlError('XML_ERR_DTD', 'a document type declaration is not allowed');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new SafeXmlError('XML_ERR_MALFORMED', `not well-formed XML: ${valid.err.msg.slice(0, 120)}`);
  let doc: OrderedNode[];
  try {
    doc = parser.parse(xml) as OrderedNode[];
  } catch (err) {
    // The parser's own refusals (a name like __proto__, nesting over maxNestedTags).
    throw new SafeXmlError('XML_ERR_MALFORMED', `not well-formed XML: ${(err as Error).message.slice(0, 120)}`);
  }
  const roots = doc.filter((node) => elementName(node) !== undefined);
  if (roots.length !== 1 || doc.some((node) => typeof node[TEXT] === 'string' && node[TEXT] !== '')) {
    throw new SafeXmlError('XML_ERR_MALFORMED', 'not one root element');
  }
  return build(roots[0]!, elementName(roots[0]!)!, new Map(), 1);
}

/** The child elements named `{ns}local`, in document order. */
export function childrenNamed(parent: XmlElement, ns: string | undefined, local: string): XmlElement[] {
  return parent.children.filter((c) => c.ns === ns && c.local === local);
}

/** The first child element named `{ns}local`, if any. */
export function firstChild(parent: XmlElement, ns: string | undefined, local: string): XmlElement | undefined {
  return parent.children.find((c) => c.ns === ns && c.local === local);
}
