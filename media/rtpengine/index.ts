/** The rtpengine control layer: bencode, the ng client of one node, and the pool of nodes. */
export { encode as bencode, decode as bdecode, BencodeError } from './bencode.js';
export { NgClient } from './ng-client.js';
export { RtpenginePool } from './rtpengine-pool.js';
export { RtpengineError, type RtpengineErrorCode } from './rtpengine-error.js';
export { parseRtpengineNode, rtpengineNodeId } from './node-spec.js';
export type * from './types.js';
