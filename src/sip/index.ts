/**
 * The SIP message layer: model, parser, serializer, stream framer, URIs, typed headers and digest math.
 * No I/O happens here.
 */
export { SipParseError, type SipParseErrorCode } from './errors.js';
export { parseMessage, type ParseOptions } from './parser.js';
export { serializeMessage } from './serializer.js';
export { StreamFramer, type FramerItem, type StreamFramerOptions } from './framer.js';
export { SipMessage, type HeaderField, type CSeq, type EventHeader, parseCSeq, makeField } from './sip-message.js';
export { SipRequest, type SipRequestInit } from './sip-request.js';
export { SipResponse, type SipResponseInit, reasonPhrase } from './sip-response.js';
export { Via, parseVia, MAGIC_COOKIE } from './via.js';
export { NameAddr, parseNameAddrs } from './name-addr.js';
export { headerKey, headerDisplayName } from './header-names.js';
export { type ParamValue, quote, unquote, isToken, parseTokenList } from './grammar.js';
export {
  SipUri, TelUri, AbsoluteUri, type Uri, type UriParamValue,
  parseUri, parseSipUri, uriEquals, unescapeUriPart, escapeUriUser, isIpv4, isIpv6Reference,
} from './uri.js';
export * from './digest.js';
export { KeyedMac, digestOf, equalText } from './fast-hash.js';
export {
  createResponse, type ResponseOptions, utf8ToWire, wireToUtf8, randomToken, newBranch, newTag, newCallId,
} from './builders.js';
export { MessageCounters, type MessageCountsView, type MethodCount, type ResponseCount, COUNTED_METHODS, OTHER_METHOD } from './message-counters.js';
export { PUSH_PROVIDERS, type PushParams, type PushProvider, parsePushParams } from './push-params.js';
