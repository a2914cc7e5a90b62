/**
 * The SIP transport layer: UDP, TCP, TLS, WS and WSS listeners, the connection table, CRLF and WebSocket
 * keep-alives, and the TLS certificate for the listeners that need one.
 */
export * from './types.js';
export { unbracket } from './address.js';
export { TransportLayer, type TransportLayerOptions } from './transport-layer.js';
export { loadOrCreateCertificate, type CertificateOptions, type LoadedCertificate } from './certificate.js';
