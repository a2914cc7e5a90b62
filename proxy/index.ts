/**
 * The proxy module: the RFC 3261 §16 stateful proxy core, Record-Route with flow tokens, loose routing,
 * next-hop resolution, loop detection, and the routing policy that composes them with the registrar.
 */
export { ProxyCore } from './proxy-core.js';
export { Router, type RouterDeps, type MessagingRouting, type PresenceRouting, targetOf } from './routing.js';
export { RecordRoute } from './record-route.js';
export { MediaHook } from './media-hook.js';
export { looseRoute, forwardStateless } from './loose-route.js';
export { resolve } from '../src/core/index.js';
export { isLoop, loopBranch } from './loop-detection.js';
export type * from './types.js';
