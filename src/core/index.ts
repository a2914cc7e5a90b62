export { Stack, type DrainOptions, type StackLimits, type StackOptions, type StackStats } from './stack.js';
export type { SourceGate, StackTransport, StackUser } from './types.js';
export { ALLOWED_METHODS, OPTIONS_HEADERS, answerAtOwnAddress, answerCancel } from './server-answers.js';
export { resolve } from './resolver.js';
export { checkRequest, type Rejection, type RequestLimits } from './request-checks.js';
export { isNextHopFailure } from './next-hop.js';
