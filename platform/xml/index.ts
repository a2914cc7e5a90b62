export {
  SafeXmlError, XML_MAX_DEPTH, XML_NS, childrenNamed, decodeXml, escapeXml, firstChild, parseSafeXml, stripNonXml,
  type ParseSafeXmlOptions, type SafeXmlErrorCode, type XmlElement,
} from './safe-xml.js';
